//! A tree's warm spares: a session's first start takes a parked spare; its restart after a
//! SIGKILL resumes cold (no claim can resume); spares count toward `max_sessions` and give up
//! their place to a session; with the credential gateway, the claimed spare's own token is
//! adopted by its session (real CLI, fake Messages API as the upstream).

use claude_supervisor::{
    ClaudeSupervisor, Credential, GatewayConfig, SessionSpec, StartPath, SupervisorError,
};
use claude_testing::envs::{FakeEnv, RealEnv, assert_group_gone};
use claude_testing::fake_claude::Scenario;

/// `fut`, or a panic naming `step` if it has not finished within 60 s (a hang is a failure).
async fn bounded<T>(step: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(60), fut)
        .await
        .unwrap_or_else(|_| panic!("{step}: no answer within 60 s"))
}

fn cold_reason(start: &StartPath) -> &str {
    match start {
        StartPath::ColdFallback { reason } => reason,
        other => panic!("expected a cold start with a reason, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_takes_a_spare_a_restart_resumes_cold_and_spares_yield_their_places() {
    let env = FakeEnv::new();
    let options = || env.options(&Scenario::new()).build().unwrap();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .max_sessions(2)
        .warm_spares(1, options())
        .start()
        .await
        .expect("tree starts");
    let pool = tree.warm_spares().expect("a pool");
    bounded("the first spare", pool.ready()).await;
    let spare = pool.parked_pids()[0];

    // The first start claims the spare.
    let a = tree
        .start_session(SessionSpec::new("a", options()))
        .await
        .unwrap();
    let health = a.health().await.unwrap();
    assert!(health.start.is_warm(), "{:?}", health.start);
    assert_eq!(health.pid, Some(spare));
    assert!(a.ask("hello").await.unwrap().text().contains("hello"));

    // The pool refills, into the tree's second place.
    bounded("the refill", pool.ready()).await;
    let second_spare = pool.parked_pids()[0];
    assert_eq!(tree.health().await.spares.unwrap().claimed, 1);

    // A second session takes that place from the spare (and starts cold: none is parked).
    let b = bounded("b", tree.start_session(SessionSpec::new("b", options())))
        .await
        .expect("a parked spare gives up its place");
    assert_group_gone(second_spare as i32).await;
    let b_health = b.health().await.unwrap();
    assert!(
        cold_reason(&b_health.start).contains("no spare"),
        "{:?}",
        b_health.start
    );
    // Now the places are the sessions': a third is refused.
    let refused = tree
        .start_session(SessionSpec::new("c", options()))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, SupervisorError::TooManySessions { limit: 2, .. }),
        "{refused}"
    );

    // A restart resumes the conversation: cold, and it says so.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(spare as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let answer = bounded("the restart", a.ask("after the crash"))
        .await
        .expect("answered after a restart");
    assert!(answer.text().contains("after the crash"));
    let health = a.health().await.unwrap();
    assert_ne!(health.pid, Some(spare));
    assert!(
        cold_reason(&health.start).contains("resuming"),
        "{:?}",
        health.start
    );

    // A freed place goes back to the pool.
    bounded("terminate b", tree.terminate_session("b"))
        .await
        .unwrap();
    bounded("the refill after b", pool.ready()).await;
    assert_eq!(pool.stats().parked, 1);

    bounded("shutdown", tree.shutdown()).await;
    assert_eq!(pool.stats().parked, 0, "the tree stopped its spares");
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_gateway_a_claimed_spare_talks_with_its_own_token_adopted_by_the_session() {
    const KEY: &str = "sk-ant-spares-REAL";
    let Some(env) = RealEnv::start().await else {
        return;
    };
    env.api.require_api_key(KEY);
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .gateway(GatewayConfig::new(
            env.api.base_url(),
            Credential::ApiKey(KEY.into()),
        ))
        .warm_spares(1, env.options().build().unwrap())
        .start()
        .await
        .expect("tree starts");
    let pool = tree.warm_spares().unwrap();
    pool.ready().await;
    let spare = pool.parked_pids()[0];
    let spare_env = std::fs::read(format!("/proc/{spare}/environ")).unwrap();
    let spare_env = String::from_utf8_lossy(&spare_env).replace('\0', "\n");
    assert!(!spare_env.contains(KEY), "the real key reached a spare");
    assert!(
        spare_env.contains("ANTHROPIC_API_KEY=sk-ant-gw-"),
        "a token"
    );

    let project = env.sandbox.work_dir().join("claimed");
    std::fs::create_dir_all(&project).unwrap();
    let session = tree
        .start_session(SessionSpec::new(
            "claimed",
            env.options().cwd(&project).build().unwrap(),
        ))
        .await
        .unwrap();
    let health = session.health().await.unwrap();
    assert!(health.start.is_warm(), "{:?}", health.start);
    let out = session.ask("through the gateway").await.unwrap();
    assert!(
        !out.is_error(),
        "{:?} {}",
        out.result,
        env.api.describe_log()
    );
    assert_eq!(out.text(), "mock reply to: through the gateway");
    let stats = tree.gateway_stats().unwrap();
    assert!(
        stats.sessions["claimed"].requests >= 1,
        "counted as the session's: {stats:?}"
    );
    assert!(
        !stats.sessions.keys().any(|k| k.contains("spare")),
        "{stats:?}"
    );
    tree.shutdown().await;
    assert_group_gone(spare as i32).await;
}

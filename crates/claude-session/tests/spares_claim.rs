//! Warm spares on fake-claude (which speaks `--await-claim` as the real CLI was measured to):
//! a session takes a parked spare and claims it for its own directory and prompts; one whose
//! spawn-time options differ, or that resumes, starts cold and says why; a refused claim
//! discards the spare; a spare that dies parked is replaced, never handed out; and under churn
//! no spare goes to two sessions and no process is left.

#[path = "support/common.rs"]
mod support;

use std::collections::HashSet;

use claude_protocol::PermissionMode;
use claude_session::{Session, SessionConfig, SparePool, SparePoolError, StartPath};
use claude_testing::fake_claude::{Recording, Scenario};
use serde_json::Value;
use support::{FakeEnv, assert_group_gone};

/// A pool of `size` spares of the env's fake-claude, with the env's spawn-time options.
async fn pool(env: &FakeEnv, size: usize) -> SparePool {
    let template = env
        .config("pool", &Scenario::default())
        .build()
        .expect("template");
    let pool = SparePool::builder(template)
        .size(size)
        .build()
        .expect("pool");
    pool.ready().await;
    pool
}

/// The `claim_session` requests fake-claude process `pid` received.
fn claims_received(env: &FakeEnv, pid: u32) -> Vec<Value> {
    Recording::read(&env.path("record"))
        .expect("recording")
        .iter()
        .filter(|r| r.pid == Some(pid))
        .flat_map(|r| r.stdin_json())
        .filter(|v| v["request"]["subtype"] == "claim_session")
        .map(|v| v["request"].clone())
        .collect()
}

#[tokio::test]
async fn a_session_takes_a_parked_spare_claims_it_and_runs_turns_in_its_own_directory() {
    let env = FakeEnv::new();
    let pool = pool(&env, 1).await;
    let spare_pid = pool.parked_pids()[0];
    let project = env.path("project");
    std::fs::create_dir_all(&project).unwrap();

    let options = env
        .options(&Scenario::default())
        .cwd(&project)
        .system_prompt("CLAIMED-PROMPT")
        .append_system_prompt("APPENDED")
        .permission_mode(PermissionMode::AcceptEdits)
        .build()
        .unwrap();
    let config = SessionConfig::builder("warm", env.cli_path())
        .options(options)
        .init_timeout("20s")
        .spares(pool.clone())
        .build()
        .unwrap();
    let session = Session::start(config).await.expect("warm start");
    let health = session.health().await.unwrap();
    assert!(
        matches!(health.start, StartPath::Warm { .. }),
        "{:?}",
        health.start
    );
    assert_eq!(health.pid, Some(spare_pid), "the session runs the spare");
    let answer = session.query("hello").await.unwrap().final_text().await;
    assert!(answer.unwrap().contains("hello"));

    // The pool launches a replacement; the claimed one is the session's alone.
    pool.ready().await;
    let stats = pool.stats();
    assert_eq!((stats.parked, stats.claimed, stats.launched), (1, 1, 2));
    assert_ne!(pool.parked_pids()[0], spare_pid);

    session.stop().await.unwrap();
    assert_group_gone(spare_pid as i32).await;
    let claims = claims_received(&env, spare_pid);
    assert_eq!(claims.len(), 1, "{claims:?}");
    let claim = &claims[0];
    assert_eq!(claim["cwd"], project.to_str().unwrap());
    assert_eq!(
        claim["system_prompt"],
        serde_json::json!(["CLAIMED-PROMPT"])
    );
    assert_eq!(claim["append_system_prompt"], "APPENDED");
    assert_eq!(claim["permission_mode"], "acceptEdits");

    pool.shutdown().await;
    assert_eq!(pool.stats().parked, 0);
    env.assert_all_gone().await;
}

#[tokio::test]
async fn a_session_whose_spawn_options_differ_or_that_resumes_starts_cold_and_says_why() {
    let env = FakeEnv::new();
    let pool = pool(&env, 1).await;
    let spare_pid = pool.parked_pids()[0];

    let cases = [
        (
            "model",
            env.options(&Scenario::default()).model("other-model"),
            "the CLI's arguments",
        ),
        (
            "env",
            env.options(&Scenario::default()).env("MY_PROJECT_VAR", "1"),
            "environment variable MY_PROJECT_VAR",
        ),
        (
            "resume",
            env.options(&Scenario::default())
                .resume("00000000-0000-4000-8000-000000000001"),
            "resuming a conversation",
        ),
    ];
    for (name, options, why) in cases {
        let config = SessionConfig::builder(name, env.cli_path())
            .options(options.build().unwrap())
            .init_timeout("20s")
            .spares(pool.clone())
            .build()
            .unwrap();
        let session = Session::start(config).await.expect("cold start");
        let health = session.health().await.unwrap();
        match &health.start {
            StartPath::ColdFallback { reason } => {
                assert!(reason.contains(why), "{name}: {reason}")
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_ne!(health.pid, Some(spare_pid));
        session.stop().await.unwrap();
    }
    // Nothing took the spare.
    assert_eq!(pool.parked_pids(), vec![spare_pid]);
    assert_eq!(pool.stats().claimed, 0);

    // A session without a pool says it started cold, plainly.
    let plain = env.session("plain", &Scenario::default()).await;
    assert_eq!(plain.health().await.unwrap().start, StartPath::Cold);
    plain.stop().await.unwrap();

    pool.shutdown().await;
    env.assert_all_gone().await;
}

#[tokio::test]
async fn a_refused_claim_discards_the_spare_and_the_session_starts_cold() {
    let env = FakeEnv::new();
    let pool = pool(&env, 1).await;
    let spare_pid = pool.parked_pids()[0];
    // bypassPermissions cannot be claimed onto a spare spawned without the dangerous flag.
    let options = env
        .options(&Scenario::default())
        .permission_mode(PermissionMode::BypassPermissions)
        .build()
        .unwrap();
    let config = SessionConfig::builder("refused", env.cli_path())
        .options(options)
        .init_timeout("20s")
        .spares(pool.clone())
        .build()
        .unwrap();
    let session = Session::start(config)
        .await
        .expect("cold start after the refusal");
    let health = session.health().await.unwrap();
    match &health.start {
        StartPath::ColdFallback { reason } => {
            assert!(reason.contains("permission_mode_not_claimable"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // The refused spare is gone, not parked again.
    assert_group_gone(spare_pid as i32).await;
    assert!(!pool.parked_pids().contains(&spare_pid));
    assert!(
        session
            .query("still works")
            .await
            .unwrap()
            .final_text()
            .await
            .is_ok()
    );
    session.stop().await.unwrap();
    pool.shutdown().await;
    env.assert_all_gone().await;
}

#[tokio::test]
async fn a_spare_that_dies_parked_is_replaced_and_never_handed_out() {
    let env = FakeEnv::new();
    let pool = pool(&env, 1).await;
    let dead = pool.parked_pids()[0];
    // Our own child, by pid.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dead as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_group_gone(dead as i32).await;
    // Replaced: the pool parks a new one. (Its exit watch may lag the reaping by a moment, so
    // `ready` can still count the dead one once: bounded retries.)
    for attempt in 0.. {
        pool.ready().await;
        if pool.parked_pids() != vec![dead] {
            break;
        }
        assert!(attempt < 500, "the dead spare was never replaced");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let fresh = pool.parked_pids()[0];
    assert_ne!(fresh, dead);
    assert!(pool.stats().died >= 1);

    let config = env
        .config("after-death", &Scenario::default())
        .spares(pool.clone())
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let health = session.health().await.unwrap();
    assert!(health.start.is_warm(), "{:?}", health.start);
    assert_eq!(health.pid, Some(fresh));
    session.stop().await.unwrap();
    pool.shutdown().await;
    env.assert_all_gone().await;
}

#[tokio::test]
async fn a_pool_under_churn_hands_each_spare_to_one_session_and_leaks_no_process() {
    let env = FakeEnv::new();
    let pool = pool(&env, 2).await;
    let mut warm_pids = Vec::new();
    let mut cold = 0;
    // 100 sessions, 4 at a time, each started, asked one turn and stopped.
    for batch in 0..25 {
        let starts = (0..4).map(|i| {
            let config = env
                .config(&format!("churn-{batch}-{i}"), &Scenario::default())
                .spares(pool.clone())
                .build()
                .unwrap();
            async move {
                let session = Session::start(config).await.expect("start");
                let health = session.health().await.unwrap();
                let text = session.query("ping").await.unwrap().final_text().await;
                assert!(text.unwrap().contains("ping"));
                session.stop().await.unwrap();
                (health.start, health.pid.unwrap())
            }
        });
        for (start, pid) in futures::future::join_all(starts).await {
            match start {
                StartPath::Warm { .. } => warm_pids.push(pid),
                StartPath::ColdFallback { reason } => {
                    assert!(reason.contains("no spare"), "{reason}");
                    cold += 1;
                }
                StartPath::Cold => panic!("a session with a pool says Cold"),
                other => panic!("{other:?}"),
            }
        }
    }
    let distinct: HashSet<u32> = warm_pids.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        warm_pids.len(),
        "a spare went to two sessions"
    );
    assert!(!warm_pids.is_empty(), "no session ever got a spare");
    let stats = pool.stats();
    assert_eq!(stats.claimed as usize, warm_pids.len());
    assert_eq!(stats.misses as usize, cold);
    assert_eq!(warm_pids.len() + cold, 100);
    pool.shutdown().await;
    // Every process fake-claude recorded here (sessions and spares) is gone and reaped.
    env.assert_all_gone().await;
    let recorded = env.pids().len() as u64;
    assert_eq!(recorded, stats.launched + cold as u64);
}

#[tokio::test]
async fn a_pool_refuses_a_bad_size_or_a_template_that_resumes() {
    let env = FakeEnv::new();
    let template = || env.config("bad", &Scenario::default()).build().unwrap();
    for size in [0, claude_session::MAX_SPARES + 1] {
        let err = SparePool::builder(template())
            .size(size)
            .build()
            .unwrap_err();
        assert!(
            matches!(err, SparePoolError::Invalid { option: "size", .. }),
            "{err}"
        );
    }
    let resuming = env
        .config("bad", &Scenario::default())
        .options(
            env.options(&Scenario::default())
                .resume("00000000-0000-4000-8000-000000000001")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = SparePool::builder(resuming).build().unwrap_err();
    assert!(err.to_string().contains("resuming"), "{err}");
    assert!(err.to_string().contains("spare pool `bad`"), "{err}");
}

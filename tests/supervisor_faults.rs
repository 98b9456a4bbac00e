//! The Claude supervisor under faults only fake-claude produces on demand: a CLI that always
//! crashes (meltdown), and many sessions started and terminated concurrently under limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use claude_supervisor::{ClaudeSupervisor, SessionSpec, SupervisorError, SupervisorEventKind};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::{Fault, FaultRule, Scenario, Turn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_that_always_crashes_fails_its_session_only_and_callers_hear_of_it() {
    let env = FakeEnv::new();
    // Every process crashes in its first turn; every restart fails before init.
    let mut scenario = Scenario::new().fault_on_turn(1, Fault::crash_mid_turn(3, "boom"));
    for start in 2..=8 {
        scenario = scenario.fault_rule(FaultRule {
            on_turn: None,
            on_start: Some(start),
            fault: Fault::exit_before_init(4, "still broken"),
        });
    }
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .session(
            SessionSpec::new("doomed", env.options(&scenario).build().unwrap())
                .intensity(3, Duration::from_secs(5)),
        )
        .start()
        .await
        .unwrap();
    let mut events = tree.events();
    let doomed = tree.session("doomed").unwrap();
    let err = doomed.ask("hello").await.unwrap_err();
    assert!(
        err.session_error()
            .and_then(|e| e.exit_status())
            .and_then(|s| s.code())
            == Some(3),
        "{err:?}"
    );
    let reason = loop {
        let event = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .expect("the session fails")
            .unwrap();
        if let SupervisorEventKind::Failed { reason } = event.kind {
            break reason;
        }
    };
    assert!(reason.contains("restart intensity"), "{reason}");
    assert!(
        reason.contains("still broken"),
        "the last error is named: {reason}"
    );
    match doomed.ask("again").await {
        Err(SupervisorError::Failed { reason, .. }) => {
            assert!(reason.contains("restart intensity"), "{reason}")
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    let health = tree.health().await;
    assert_eq!((health.failed, health.total), (1, 1));
    assert!(health.down.is_none(), "the tree is still up");
    // Intensity 3: the crash plus restart attempts until the fourth restart in the window.
    assert_eq!(
        env.pids().len(),
        4,
        "one process, then 3 failed restart attempts: {:?}",
        env.pids()
    );
    tree.shutdown().await;
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sessions_started_and_terminated_concurrently_stay_within_the_limit() {
    const LIMIT: usize = 8;
    let _ = tracing_subscriber::fmt()
        .with_env_filter("supervision=debug,claude_supervisor=info,claude_session=warn")
        .with_test_writer()
        .try_init();
    let env = Arc::new(FakeEnv::new());
    let scenario = Scenario::new().default_turn(Turn::echo().slow(3, 20));
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .max_sessions(LIMIT)
        .start()
        .await
        .unwrap();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (tree, stop, max_seen) = (tree.clone(), stop.clone(), max_seen.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let live = tree.list_sessions().len();
                max_seen.fetch_max(live, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let refused = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (tree, env, scenario, refused) =
            (tree.clone(), env.clone(), scenario.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let name = format!("user-{i}");
            let spec = SessionSpec::new(name.clone(), env.options(&scenario).build().unwrap());
            match tree.start_session(spec).await {
                Ok(handle) => {
                    let out = handle.ask(format!("hello from {name}")).await.unwrap();
                    assert_eq!(
                        out.final_text(),
                        Some(format!("fake reply to: hello from {name}").as_str())
                    );
                    tree.terminate_session(&name).await.unwrap();
                }
                Err(SupervisorError::TooManySessions { limit, .. }) => {
                    assert_eq!(limit, LIMIT);
                    refused.fetch_add(1, Ordering::SeqCst);
                }
                Err(other) => panic!("unexpected: {other:?}"),
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    sampler.await.unwrap();
    assert!(
        max_seen.load(Ordering::SeqCst) <= LIMIT,
        "at most {LIMIT} live, saw {}",
        max_seen.load(Ordering::SeqCst)
    );
    assert!(refused.load(Ordering::SeqCst) < 50, "some sessions ran");
    assert!(
        tree.list_sessions().is_empty(),
        "{:?}",
        tree.list_sessions()
    );
    // Every exit was one the tree caused itself (terminate): none may count as a restart.
    assert_eq!(tree.health().await.restarts, 0, "no session was restarted");
    tree.shutdown().await;
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_limit_refuses_the_extra_session_of_that_group_only() {
    let env = FakeEnv::new();
    let options = || env.options(&Scenario::new()).build().unwrap();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .max_sessions_per_group(1)
        .start()
        .await
        .unwrap();
    tree.start_session(SessionSpec::new("a", options()).group("tenant-1"))
        .await
        .unwrap();
    match tree
        .start_session(SessionSpec::new("b", options()).group("tenant-1"))
        .await
    {
        Err(SupervisorError::GroupFull { name, group, limit }) => {
            assert_eq!((name.as_str(), group.as_str(), limit), ("b", "tenant-1", 1));
        }
        other => panic!("expected GroupFull, got {other:?}"),
    }
    tree.start_session(SessionSpec::new("c", options()).group("tenant-2"))
        .await
        .unwrap();
    tree.terminate_session("a").await.unwrap();
    tree.start_session(SessionSpec::new("b", options()).group("tenant-1"))
        .await
        .unwrap();
    let names: Vec<_> = tree.list_sessions().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["b", "c"]);
    tree.shutdown().await;
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_never_resume_the_same_conversation_at_once() {
    let env = FakeEnv::new();
    let store = claude_supervisor::MemoryStore::new();
    for name in ["first", "second"] {
        let mut record = claude_supervisor::SessionRecord::new(name, "fp");
        record.session_id = Some("0b7c3a52-9f0e-4d2b-8a51-3f1e2d4c5b6a".into());
        claude_supervisor::SessionStore::save(&store, &record)
            .await
            .unwrap();
    }
    let options = || env.options(&Scenario::new()).build().unwrap();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .store(store)
        .start()
        .await
        .unwrap();
    tree.start_session(SessionSpec::new("first", options()))
        .await
        .unwrap();
    match tree
        .start_session(SessionSpec::new("second", options()))
        .await
    {
        Err(SupervisorError::Leased {
            name,
            session_id,
            holder,
        }) => {
            assert_eq!(name, "second");
            assert_eq!(holder, "first");
            assert_eq!(session_id, "0b7c3a52-9f0e-4d2b-8a51-3f1e2d4c5b6a");
        }
        other => panic!("expected Leased, got {other:?}"),
    }
    assert_eq!(
        tree.list_sessions().len(),
        1,
        "the refused session left nothing behind"
    );
    // Once the holder is gone, the conversation is free.
    tree.terminate_session("first").await.unwrap();
    tree.start_session(SessionSpec::new("second", options()))
        .await
        .unwrap();
    tree.shutdown().await;
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_session_can_get_its_own_config_dir() {
    let env = FakeEnv::new();
    let root = env.path("agents");
    let options = || env.options(&Scenario::new()).build().unwrap();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .config_dir_per_session(&root)
        .session(SessionSpec::new("planner", options()))
        .session(SessionSpec::new("coder", options()))
        .start()
        .await
        .unwrap();
    for name in ["planner", "coder"] {
        tree.session(name).unwrap().ask("hi").await.unwrap();
    }
    let mut dirs: Vec<String> = claude_testing::fake_claude::Recording::read(&env.path("record"))
        .unwrap()
        .into_iter()
        .map(|r| r.env["CLAUDE_CONFIG_DIR"].clone())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs,
        [
            root.join("coder").display().to_string(),
            root.join("planner").display().to_string()
        ]
    );
    tree.shutdown().await;
    env.assert_all_gone().await;
}

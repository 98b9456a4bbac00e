//! Sessions tied to their owner, and admin calls that stay whole when their caller goes away
//! (fake-claude).

use std::future::Future;
use std::time::Duration;

use claude_supervisor::{
    ClaudeSupervisor, MemoryStore, SessionSpec, SessionState, SupervisorEvent, SupervisorEventKind,
};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::Scenario;

async fn wait_for(
    events: &mut tokio::sync::broadcast::Receiver<SupervisorEvent>,
    name: &str,
    pred: impl Fn(&SupervisorEventKind) -> bool,
) {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("the event arrives")
            .unwrap();
        if e.session.as_deref() == Some(name) && pred(&e.kind) {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owned_session_whose_owner_panics_is_gone_and_resumes_when_started_again() {
    let env = FakeEnv::new();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .store(MemoryStore::new())
        .max_sessions(1)
        .start()
        .await
        .unwrap();
    let mut events = tree.events();
    let spec = SessionSpec::new("owned", env.options(&Scenario::new()).build().unwrap());
    let owner = tokio::spawn({
        let (tree, spec) = (tree.clone(), spec.clone());
        async move {
            let session = tree.start_owned(spec).await.unwrap();
            session.ask("remember: blue").await.unwrap();
            panic!("the owner dies");
        }
    });
    assert!(owner.await.unwrap_err().is_panic());
    wait_for(&mut events, "owned", |k| {
        matches!(k, SupervisorEventKind::Terminated)
    })
    .await;
    assert!(
        tree.list_sessions().is_empty(),
        "{:?}",
        tree.list_sessions()
    );
    env.assert_all_gone().await;
    // Its place is free (the limit is 1) and its conversation resumes by name.
    let again = tree.start_session(spec).await.unwrap();
    let history = again.ask("HISTORY?").await.unwrap();
    assert_eq!(history.text(), r#"history: ["remember: blue"]"#);
    // A detached guard leaves the session running.
    tree.terminate_session("owned").await.unwrap();
    let spec2 = SessionSpec::new("kept", env.options(&Scenario::new()).build().unwrap());
    let kept = tree.start_owned(spec2).await.unwrap().detach();
    tokio::task::yield_now().await;
    assert_eq!(kept.state(), SessionState::Running);
    tree.shutdown().await;
    env.assert_all_gone().await;
}

/// Polls `fut` at most `n` times, then drops it; whether it finished.
async fn poll_then_drop<F: Future>(fut: F, n: usize) -> bool {
    let mut fut = std::pin::pin!(fut);
    for _ in 0..n {
        if futures::poll!(fut.as_mut()).is_ready() {
            return true;
        }
        tokio::task::yield_now().await;
    }
    false
}

fn generation_of(tree: &ClaudeSupervisor, name: &str) -> u64 {
    tree.list_sessions()
        .into_iter()
        .find(|s| s.name == name)
        .map(|s| s.generation)
        .unwrap_or_else(|| panic!("{name} is listed"))
}

/// Waits (on the tree's events, bounded) until `name` runs an instance of at least `generation`.
async fn wait_for_generation(tree: &ClaudeSupervisor, name: &str, generation: u64) {
    let mut events = tree.events();
    for _ in 0..400 {
        let running = tree.list_sessions().into_iter().any(|s| {
            s.name == name && s.generation >= generation && s.state == SessionState::Running
        });
        if running {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), events.recv()).await;
    }
    panic!(
        "{name} never ran generation {generation}: {:?}",
        tree.list_sessions()
    );
}

/// The tree is consistent: each listed session is running (no ghost in `starting`), the
/// processes alive are exactly the listed sessions', and the admission count agrees (a new
/// session fits iff the limit allows it).
async fn settle_and_check(tree: &ClaudeSupervisor, env: &FakeEnv) {
    let mut events = tree.events();
    for _ in 0..400 {
        let listed = tree.list_sessions();
        if listed
            .iter()
            .all(|s| matches!(s.state, SessionState::Running))
        {
            break;
        }
        // Waiting on the tree's own events, bounded.
        let _ = tokio::time::timeout(Duration::from_millis(50), events.recv()).await;
    }
    let listed = tree.list_sessions();
    assert!(
        listed.iter().all(|s| s.state == SessionState::Running),
        "no ghost: {listed:?}"
    );
    let live: Vec<u32> = listed.iter().filter_map(|s| s.pid).collect();
    assert_eq!(
        live.len(),
        listed.len(),
        "every listed session has its process"
    );
    for name in listed.iter().map(|s| s.name.clone()) {
        // An abandoned terminate (or an owned session's guard) may have got there first.
        match tree.terminate_session(&name).await {
            Ok(()) | Err(claude_supervisor::SupervisorError::NotFound { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(tree.list_sessions().is_empty());
    for pid in env.pids() {
        claude_testing::envs::assert_group_gone(pid).await;
    }
    // The one place is free again.
    let probe = tree
        .start_session(SessionSpec::new(
            "probe",
            env.options(&Scenario::new()).build().unwrap(),
        ))
        .await
        .expect("the admission place was not leaked");
    drop(probe);
    tree.terminate_session("probe").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_an_admin_call_at_any_await_point_leaves_the_tree_consistent() {
    let env = FakeEnv::new();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .max_sessions(1)
        .start()
        .await
        .unwrap();
    let spec = || SessionSpec::new("victim", env.options(&Scenario::new()).build().unwrap());
    for n in 0..8 {
        // start_session
        poll_then_drop(tree.start_session(spec()), n).await;
        settle_and_check(&tree, &env).await;
        // start_owned: an abandoned guard terminates its session
        poll_then_drop(tree.start_owned(spec()), n).await;
        settle_and_check(&tree, &env).await;
        // terminate_session, restart_session and forget_session of a running session
        tree.start_session(spec()).await.unwrap();
        poll_then_drop(tree.terminate_session("victim"), n).await;
        settle_and_check(&tree, &env).await;
        tree.start_session(spec()).await.unwrap();
        let before = generation_of(&tree, "victim");
        let finished = poll_then_drop(tree.restart_session("victim"), n).await;
        if n > 0 && !finished {
            // Polled once, the restart runs on in its own task (its documented cancel
            // safety): the tree settles once the new instance is up, not before it began.
            wait_for_generation(&tree, "victim", before + 1).await;
        }
        settle_and_check(&tree, &env).await;
        tree.start_session(spec()).await.unwrap();
        poll_then_drop(tree.forget_session("victim"), n).await;
        settle_and_check(&tree, &env).await;
    }
    tree.shutdown().await;
}

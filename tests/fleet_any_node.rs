//! Any node of a fleet answers for every session: its health lists the whole fleet with each
//! session's owner, a start of a name another node runs says who runs it, and a terminate from
//! a node that does not run the session ends it fleet-wide (its lease revoked: the owner is
//! fenced out and stops its CLI, nobody takes it over, its record stays).

use std::time::Duration;

use claude_supervisor::store::SessionStore;
use claude_supervisor::{
    ClaudeSupervisor, FleetConfig, MemoryStore, SessionSpec, SupervisorError, SupervisorEventKind,
};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::Scenario;

fn scenario() -> Scenario {
    Scenario::new()
}

async fn node(id: &str, env: &FakeEnv, store: &MemoryStore) -> ClaudeSupervisor {
    let options = env.options(&scenario()).build().unwrap();
    let fleet = FleetConfig::new(id, move |r| {
        Some(SessionSpec::new(r.name.clone(), options.clone()))
    })
    .ttl(Duration::from_millis(800))
    .heartbeat(Duration::from_millis(100));
    ClaudeSupervisor::builder()
        .name(id)
        .cli_path(env.cli_path())
        .store(store.clone())
        .fleet(fleet)
        .start()
        .await
        .unwrap()
}

/// Waits (bounded) until `done` holds.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_does_not_run_a_session_lists_it_refuses_it_and_terminates_it() {
    let store = MemoryStore::new();
    let (ea, eb) = (FakeEnv::new(), FakeEnv::new());
    let a = node("a", &ea, &store).await;
    let b = node("b", &eb, &store).await;
    let mut a_events = a.events();
    for name in ["s1", "s2"] {
        let spec = SessionSpec::new(name, ea.options(&scenario()).build().unwrap());
        a.start_session(spec)
            .await
            .unwrap()
            .ask(format!("hello from {name}"))
            .await
            .unwrap();
    }

    // b's health shows the whole fleet: both sessions, owned by a; both nodes alive.
    eventually("b sees both nodes", async || {
        let fleet = b.health().await.fleet.expect("a fleet node");
        fleet.nodes.len() == 2
    })
    .await;
    let health = b.health().await;
    assert_eq!(health.total, 0, "b runs nothing itself");
    let fleet = health.fleet.expect("a fleet node");
    assert_eq!(fleet.node, "b");
    assert_eq!(fleet.error, None);
    assert_eq!(fleet.nodes.get("a"), Some(&2), "{:?}", fleet.nodes);
    assert_eq!(fleet.nodes.get("b"), Some(&0), "{:?}", fleet.nodes);
    let owners: Vec<(&str, &str)> = fleet
        .sessions
        .iter()
        .map(|s| (s.name.as_str(), s.owner.as_str()))
        .collect();
    assert_eq!(owners, [("s1", "a"), ("s2", "a")]);

    // Starting a name a runs, on b: typed, naming the owner (a server forwards on this).
    match b
        .start_session(SessionSpec::new(
            "s1",
            eb.options(&scenario()).build().unwrap(),
        ))
        .await
    {
        Err(SupervisorError::OwnedElsewhere { name, owner }) => {
            assert_eq!((name.as_str(), owner.as_str()), ("s1", "a"));
        }
        other => panic!("expected OwnedElsewhere, got {other:?}"),
    }

    // Terminated from b: a is fenced out at once and stops its CLI at its next heartbeat.
    let s1 = a.session("s1").unwrap();
    let pid = a
        .list_sessions()
        .into_iter()
        .find(|s| s.name == "s1")
        .and_then(|s| s.pid)
        .expect("s1 runs on a");
    b.terminate_session("s1").await.unwrap();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), a_events.recv())
            .await
            .expect("a hears of it")
            .unwrap();
        if event.session.as_deref() == Some("s1")
            && matches!(event.kind, SupervisorEventKind::Terminated)
        {
            break;
        }
    }
    assert!(a.session("s1").is_none(), "a forgot it");
    claude_testing::envs::assert_group_gone(pid as i32).await;
    match s1.ask("still there?").await {
        Err(SupervisorError::Unavailable { reason, .. }) => {
            assert!(reason.contains("terminated from another node"), "{reason}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // Nobody takes it over (several heartbeats later), and the fleet no longer lists it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(a.session("s1").is_none() && b.session("s1").is_none());
    let fleet = a.health().await.fleet.unwrap();
    assert!(fleet.sessions.iter().all(|s| s.name != "s1"), "{fleet:?}");
    assert_eq!(fleet.nodes.get("a"), Some(&1));
    // Its record stays: started again (here on b), it resumes its conversation.
    let record = store.load("s1").await.unwrap().expect("the record stays");
    assert!(record.session_id.is_some());
    let again = b
        .start_session(SessionSpec::new(
            "s1",
            eb.options(&scenario()).build().unwrap(),
        ))
        .await
        .unwrap();
    assert_eq!(
        again.ask("HISTORY?").await.unwrap().text(),
        r#"history: ["hello from s1"]"#
    );
    assert_eq!(b.owner_of("s1").await.unwrap().as_deref(), Some("b"));

    // A name no node holds.
    assert!(matches!(
        b.terminate_session("nobody").await,
        Err(SupervisorError::NotFound { .. })
    ));
    a.shutdown().await;
    b.shutdown().await;
    ea.assert_all_gone().await;
    eb.assert_all_gone().await;
}

//! Placement when a node's sessions are taken over: the survivors share them out, none past its
//! per-node cap; a session terminated on purpose is not taken over (its lease is released).

use std::time::Duration;

use claude_supervisor::{ClaudeSupervisor, FleetConfig, MemoryStore, SessionSpec};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::Scenario;

async fn node(
    id: &str,
    env: &FakeEnv,
    store: &MemoryStore,
    cap: Option<usize>,
) -> ClaudeSupervisor {
    let options = env.options(&Scenario::new()).build().unwrap();
    let mut fleet = FleetConfig::new(id, move |r| {
        Some(SessionSpec::new(r.name.clone(), options.clone()))
    })
    .ttl(Duration::from_millis(600))
    .heartbeat(Duration::from_millis(100));
    if let Some(cap) = cap {
        fleet = fleet.max_sessions_per_node(cap);
    }
    ClaudeSupervisor::builder()
        .name(id)
        .cli_path(env.cli_path())
        .store(store.clone())
        .fleet(fleet)
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_share_a_dead_node_s_sessions_within_their_caps() {
    let store = MemoryStore::new();
    let (ea, eb, ec) = (FakeEnv::new(), FakeEnv::new(), FakeEnv::new());
    let a = node("a", &ea, &store, None).await;
    for i in 0..6 {
        let spec = SessionSpec::new(
            format!("s{i}"),
            ea.options(&Scenario::new()).build().unwrap(),
        );
        a.start_session(spec)
            .await
            .unwrap()
            .ask(format!("hello {i}"))
            .await
            .unwrap();
    }
    // Terminated on purpose: ends fleet-wide, nobody takes it over.
    a.terminate_session("s5").await.unwrap();
    let b = node("b", &eb, &store, Some(2)).await;
    let c = node("c", &ec, &store, None).await;
    // a dies: its heartbeat stops, its leases are left to expire.
    a.shutdown().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (nb, nc) = (b.list_sessions().len(), c.list_sessions().len());
        assert!(nb <= 2, "b holds {nb}, past its cap of 2");
        if nb + nc == 5 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "b {nb}, c {nc}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A little longer: nothing moves past the caps, nothing is claimed twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (nb, nc) = (b.list_sessions().len(), c.list_sessions().len());
    assert_eq!((nb, nc), (2, 3), "fewest first, b capped at 2");
    for s in b.list_sessions().into_iter().chain(c.list_sessions()) {
        assert_ne!(s.name, "s5", "a terminated session is not taken over");
    }
    let owners = b.fleet_sessions().await.unwrap();
    assert_eq!(owners.len(), 5, "{owners:?}");
    for s in &owners {
        assert!(!s.expired, "{s:?}");
        let holder = if s.owner == "b" { &b } else { &c };
        assert_eq!(s.owner, holder.node_id().unwrap());
        let h = holder.session(&s.name).expect("runs on its owner");
        let answer = h.ask("HISTORY?").await.unwrap().text();
        let n = s.name.trim_start_matches('s');
        assert_eq!(answer, format!("history: [\"hello {n}\"]"), "{}", s.name);
    }
    b.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_a_working_directory_gets_its_own_under_the_data_dir() {
    let store = MemoryStore::new();
    let env = FakeEnv::new();
    let data = env.path("data");
    let mut options = env.options(&Scenario::new()).build().unwrap();
    options.cwd = None;
    let fleet = FleetConfig::new("a", |_| None).data_dir(&data);
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .store(store)
        .fleet(fleet)
        .start()
        .await
        .unwrap();
    let h = tree
        .start_session(SessionSpec::new("user-7", options))
        .await
        .unwrap();
    h.ask("hello").await.unwrap();
    let id = h.session_id().unwrap();
    let dir = data.join("user-7");
    assert!(dir.is_dir(), "{}", dir.display());
    let file = claude_testing::fake_claude::session_file(&env.path("config"), &dir, &id);
    assert!(
        file.exists(),
        "the CLI ran in {}: {}",
        dir.display(),
        file.display()
    );
    tree.shutdown().await;
}

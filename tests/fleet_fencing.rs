//! A node that lost a session's lease without noticing (its heartbeat late, another owner
//! since): the turn it runs on its stale CLI is refused by the store (fencing), the caller is
//! told who owns the session, the stale CLI is stopped, and the conversation does not fork.

use std::time::Duration;

use claude_supervisor::store::SessionStore;
use claude_supervisor::{
    ClaudeSupervisor, FleetConfig, MemoryStore, SessionSpec, SessionState, SupervisorError,
    SupervisorEventKind,
};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::Scenario;

async fn user_prompts(store: &MemoryStore, name: &str) -> Vec<String> {
    let id = store.load(name).await.unwrap().unwrap().session_id.unwrap();
    store
        .load_entries(name, &id)
        .await
        .unwrap()
        .iter()
        .flat_map(|f| f.entries.clone())
        .filter_map(|e| e.parse().ok())
        .filter(|v| v["type"] == "user")
        .filter_map(|v| v["message"]["content"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_owner_s_turn_is_refused_and_its_cli_stopped() {
    let env = FakeEnv::new();
    let store = MemoryStore::new();
    let options = env.options(&Scenario::new()).build().unwrap();
    let spec_options = options.clone();
    // A heartbeat far beyond the TTL: the lease expires and is taken while the node is unaware
    // (what a frozen or cut-off node sees when it comes back).
    let fleet = FleetConfig::new("a", move |r| {
        Some(SessionSpec::new(r.name.clone(), spec_options.clone()))
    })
    .ttl(Duration::from_millis(200))
    .heartbeat(Duration::from_secs(3600));
    let node = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .store(store.clone())
        .fleet(fleet)
        .start()
        .await
        .unwrap();
    let mut events = node.events();
    let h = node
        .start_session(SessionSpec::new("s", options))
        .await
        .unwrap();
    h.ask("one").await.unwrap();
    assert_eq!(node.owner_of("s").await.unwrap().as_deref(), Some("a"));
    let pid = node.list_sessions()[0].pid.expect("a running CLI");
    assert_eq!(node.list_sessions()[0].node.as_deref(), Some("a"));

    // The lease expires; another node takes it (a new, greater token).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let taken = store
        .acquire_lease("s", "b", Duration::from_secs(60))
        .await
        .expect("an expired lease is taken over");

    match h.ask("stale").await {
        Err(SupervisorError::OwnedElsewhere { owner, .. }) => assert_eq!(owner, "b"),
        other => panic!("a stale turn must say who owns the session, got {other:?}"),
    }
    // The store refused the stale turn's writes: one conversation, without it.
    assert_eq!(user_prompts(&store, "s").await, vec!["one".to_owned()]);
    let lost = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let e = events.recv().await.unwrap();
            if let SupervisorEventKind::LeaseLost { owner } = e.kind {
                return owner;
            }
        }
    })
    .await
    .expect("LeaseLost in time");
    assert_eq!(lost.as_deref(), Some("b"));
    // The stale CLI is stopped, the session gone from this node, the handle typed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stale CLI {pid} still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(node.session("s").is_none());
    assert_eq!(h.state(), SessionState::Gone);
    assert!(matches!(
        h.ask("again").await,
        Err(SupervisorError::OwnedElsewhere { owner, .. }) if owner == "b"
    ));
    // The new owner's lease was never disturbed.
    let leases = store.list_leases().await.unwrap();
    let now = leases.iter().find(|l| l.lease.name == "s").unwrap();
    assert_eq!(now.lease, taken);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_needs_a_store_with_leases() {
    #[derive(Debug)]
    struct RecordsOnly(MemoryStore);
    impl SessionStore for RecordsOnly {
        fn load<'a>(
            &'a self,
            name: &'a str,
        ) -> futures::future::BoxFuture<
            'a,
            Result<Option<claude_supervisor::SessionRecord>, claude_supervisor::StoreError>,
        > {
            self.0.load(name)
        }
        fn save<'a>(
            &'a self,
            record: &'a claude_supervisor::SessionRecord,
        ) -> futures::future::BoxFuture<'a, Result<(), claude_supervisor::StoreError>> {
            self.0.save(record)
        }
        fn delete<'a>(
            &'a self,
            name: &'a str,
        ) -> futures::future::BoxFuture<'a, Result<(), claude_supervisor::StoreError>> {
            self.0.delete(name)
        }
        fn list(
            &self,
        ) -> futures::future::BoxFuture<
            '_,
            Result<Vec<claude_supervisor::SessionRecord>, claude_supervisor::StoreError>,
        > {
            self.0.list()
        }
    }
    let env = FakeEnv::new();
    let started = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .store(RecordsOnly(MemoryStore::new()))
        .fleet(FleetConfig::new("a", |_| None))
        .start()
        .await;
    assert!(matches!(
        started,
        Err(SupervisorError::FleetUnsupported { .. })
    ));
}

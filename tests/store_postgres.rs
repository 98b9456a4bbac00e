//! `PostgresStore` on a real PostgreSQL server (`claude_testing::postgres::TempPostgres`):
//! the conformance suite, migrations on connect, fencing across two connections, a clear error
//! for an unreachable server, and a session resuming in a brand-new config dir from it.

#![cfg(feature = "postgres")]

use std::time::Duration;

use claude_supervisor::store::{PostgresStore, SessionStore, TranscriptEntry, conformance};
use claude_supervisor::{ClaudeSupervisor, SessionSpec, StoreError};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::{Scenario, session_file};
use claude_testing::postgres::TempPostgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_conformance_suite() {
    let Some(pg) = TempPostgres::start() else {
        return;
    };
    let n = std::sync::atomic::AtomicUsize::new(0);
    conformance::run_all(|| {
        // A fresh database per check: each starts from an empty schema.
        let url = pg.create_database(&format!(
            "c{}",
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        async move { PostgresStore::connect(&url).await.expect("connect") }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_two_connections_share_one_fenced_store() {
    let Some(pg) = TempPostgres::start() else {
        return;
    };
    let url = pg.create_database("fleet");
    // Two supervisors connecting at once both migrate safely (an advisory lock).
    let (a, b) = tokio::join!(PostgresStore::connect(&url), PostgresStore::connect(&url));
    let (a, b) = (a.expect("a connects"), b.expect("b connects"));
    let lease_a = a
        .acquire_lease("agent", "host-a", Duration::ZERO)
        .await
        .unwrap();
    let entry = |u: &str| TranscriptEntry::from_value(&serde_json::json!({"uuid": u}));
    a.append_entries("agent", "s", "s.jsonl", &[entry("u1")], Some(lease_a.token))
        .await
        .unwrap();
    // b takes over the expired lease; a's late write is refused, b's goes through.
    let lease_b = b
        .acquire_lease("agent", "host-b", Duration::from_secs(600))
        .await
        .unwrap();
    assert!(lease_b.token > lease_a.token);
    let late = a
        .append_entries("agent", "s", "s.jsonl", &[entry("u2")], Some(lease_a.token))
        .await;
    assert!(
        matches!(late, Err(StoreError::StaleFence { token, current, .. }) if token == lease_a.token && current == lease_b.token),
        "{late:?}"
    );
    b.append_entries("agent", "s", "s.jsonl", &[entry("u3")], Some(lease_b.token))
        .await
        .unwrap();
    let keys: Vec<String> = a.load_entries("agent", "s").await.unwrap()[0]
        .entries
        .iter()
        .map(|e| e.key.clone())
        .collect();
    assert_eq!(keys, vec!["u1", "u3"]);
    // Reconnecting does not migrate again (or fail on existing tables).
    PostgresStore::connect(&url).await.expect("reconnect");
}

#[tokio::test]
async fn an_unreachable_store_names_its_url_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    // A socket directory where no server listens.
    let url = format!(
        "postgresql://app:hunter2@localhost:5432/agents?host={}",
        dir.path().display()
    );
    let err = PostgresStore::connect(&url).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Database { .. }), "{err:?}");
    assert!(!text.contains("hunter2"), "the password leaked: {text}");
    assert!(
        text.contains("postgresql://app:***@localhost:5432/agents"),
        "the URL is named: {text}"
    );
    assert!(text.contains("connecting to"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_resumes_in_a_brand_new_config_dir_from_postgres() {
    let Some(pg) = TempPostgres::start() else {
        return;
    };
    let url = pg.create_database("agents");
    let run = |env: &FakeEnv, store: PostgresStore| {
        let options = env.options(&Scenario::new()).build().unwrap();
        let cli = env.cli_path();
        async move {
            ClaudeSupervisor::builder()
                .cli_path(cli)
                .store(store)
                .session(SessionSpec::new("agent", options))
                .start()
                .await
                .unwrap()
        }
    };
    let first = FakeEnv::new();
    let tree = run(&first, PostgresStore::connect(&url).await.unwrap()).await;
    let agent = tree.session("agent").unwrap();
    agent.ask("my name is Ada").await.unwrap();
    let id = agent.session_id().unwrap();
    tree.shutdown().await;

    let fresh = FakeEnv::new();
    let tree = run(&fresh, PostgresStore::connect(&url).await.unwrap()).await;
    let agent = tree.session("agent").unwrap();
    agent.ask("what is my name?").await.unwrap();
    assert_eq!(agent.session_id().as_deref(), Some(id.as_str()));
    let text = std::fs::read_to_string(session_file(
        &fresh.path("config"),
        &fresh.path("work"),
        &id,
    ))
    .expect("the session file was written from the store");
    assert!(text.contains("my name is Ada"), "{text}");
    tree.shutdown().await;
}

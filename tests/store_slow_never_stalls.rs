//! A store that hangs (a database behind a partition) never stalls a session: its records are
//! written by a saver task of their own, latest first, so turns go on being answered while a
//! write hangs, and the latest record lands once the store answers again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use claude_supervisor::store::SessionStore;
use claude_supervisor::{ClaudeSupervisor, MemoryStore, SessionRecord, SessionSpec, StoreError};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::Scenario;
use futures::future::BoxFuture;
use tokio::sync::Notify;

/// Record writes hang while `hang` is set, until `release` is notified. No transcripts, so
/// only the record path is exercised.
#[derive(Clone, Debug, Default)]
struct HangingStore {
    inner: MemoryStore,
    hang: Arc<AtomicBool>,
    release: Arc<Notify>,
    writes: Arc<AtomicUsize>,
}

impl SessionStore for HangingStore {
    fn load<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        self.inner.load(name)
    }
    fn save<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if self.hang.load(Ordering::SeqCst) {
                self.release.notified().await;
            }
            self.writes.fetch_add(1, Ordering::SeqCst);
            self.inner.save(record).await
        })
    }
    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.delete(name)
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<SessionRecord>, StoreError>> {
        self.inner.list()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_are_answered_while_the_store_hangs_and_the_latest_record_lands_after() {
    let env = FakeEnv::new();
    let store = HangingStore::default();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .store(store.clone())
        .session(SessionSpec::new(
            "agent",
            env.options(&Scenario::new()).build().unwrap(),
        ))
        .start()
        .await
        .unwrap();
    let agent = tree.session("agent").unwrap();
    agent.ask("one").await.unwrap();

    // The store hangs: every record write from now on waits for the release.
    store.hang.store(true, Ordering::SeqCst);
    for prompt in ["two", "three", "four"] {
        let out = tokio::time::timeout(Duration::from_secs(30), agent.ask(prompt))
            .await
            .unwrap_or_else(|_| panic!("`{prompt}` was not answered while the store hangs"))
            .unwrap();
        assert_eq!(
            out.final_text(),
            Some(format!("fake reply to: {prompt}").as_str())
        );
    }
    let health = tokio::time::timeout(Duration::from_secs(30), tree.health())
        .await
        .expect("health answers while the store hangs");
    assert_eq!(health.running, 1);

    // It answers again: the latest record (four turns) is what it holds.
    store.hang.store(false, Ordering::SeqCst);
    store.release.notify_waiters();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(record) = store.inner.load("agent").await.unwrap()
            && record.totals.turns == 4
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the latest record never landed"
        );
        store.release.notify_waiters();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Records that piled up while a write hung were replaced, not queued one by one.
    assert!(
        store.writes.load(Ordering::SeqCst) < 2 + 3 * 3,
        "{} writes",
        store.writes.load(Ordering::SeqCst)
    );
    tree.shutdown().await;
    env.assert_all_gone().await;
}

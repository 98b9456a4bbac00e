//! The store conformance suite on every embedded backend, and what it must catch.

use claude_supervisor::store::conformance;
use claude_supervisor::{FileStore, MemoryStore, SessionRecord, SessionStore};

#[tokio::test]
async fn memory_store_passes_the_conformance_suite() {
    conformance::run_all(|| async { MemoryStore::new() }).await;
}

#[tokio::test]
async fn file_store_passes_the_conformance_suite() {
    let root = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    conformance::run_all(|| {
        let dir = root.path().join(
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .to_string(),
        );
        async move { FileStore::open(dir).unwrap() }
    })
    .await;
}

/// A store that forgets every record it is given: the suite must fail it.
#[derive(Debug)]
struct Forgetful(MemoryStore);

impl SessionStore for Forgetful {
    fn load<'a>(
        &'a self,
        name: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Option<SessionRecord>, claude_supervisor::StoreError>>
    {
        self.0.load(name)
    }
    fn save<'a>(
        &'a self,
        _: &'a SessionRecord,
    ) -> futures::future::BoxFuture<'a, Result<(), claude_supervisor::StoreError>> {
        Box::pin(async { Ok(()) })
    }
    fn delete<'a>(
        &'a self,
        name: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), claude_supervisor::StoreError>> {
        self.0.delete(name)
    }
    fn list(
        &self,
    ) -> futures::future::BoxFuture<'_, Result<Vec<SessionRecord>, claude_supervisor::StoreError>>
    {
        self.0.list()
    }
}

#[tokio::test]
async fn the_suite_fails_a_store_that_loses_records() {
    let caught = tokio::spawn(conformance::run_all(|| async {
        Forgetful(MemoryStore::new())
    }))
    .await;
    let panic = caught.expect_err("the suite must fail a store that loses records");
    let message = panic.into_panic();
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("records: load after save"), "{text}");
}

#[tokio::test]
async fn a_store_without_transcripts_or_leases_still_passes_the_record_checks() {
    // The trait's defaults: only records (what user stores written before transcripts have).
    #[derive(Debug)]
    struct RecordsOnly(MemoryStore);
    impl SessionStore for RecordsOnly {
        fn load<'a>(
            &'a self,
            name: &'a str,
        ) -> futures::future::BoxFuture<
            'a,
            Result<Option<SessionRecord>, claude_supervisor::StoreError>,
        > {
            self.0.load(name)
        }
        fn save<'a>(
            &'a self,
            r: &'a SessionRecord,
        ) -> futures::future::BoxFuture<'a, Result<(), claude_supervisor::StoreError>> {
            self.0.save(r)
        }
        fn delete<'a>(
            &'a self,
            name: &'a str,
        ) -> futures::future::BoxFuture<'a, Result<(), claude_supervisor::StoreError>> {
            self.0.delete(name)
        }
        fn list(
            &self,
        ) -> futures::future::BoxFuture<'_, Result<Vec<SessionRecord>, claude_supervisor::StoreError>>
        {
            self.0.list()
        }
    }
    conformance::run_all(|| async { RecordsOnly(MemoryStore::new()) }).await;
}

#[tokio::test]
async fn a_file_store_skips_a_torn_line_and_appends_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let e = |u: &str| {
        claude_supervisor::store::TranscriptEntry::from_value(&serde_json::json!({"uuid": u}))
    };
    store
        .append_entries("n", "s", "s.jsonl", &[e("u1")], None)
        .await
        .unwrap();
    // A crash mid-append leaves a torn last line.
    let path = dir.path().join("transcripts/n/s/s%2Ejsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"uuid\":\"u2\",\"ty");
    std::fs::write(&path, text).unwrap();
    store
        .append_entries("n", "s", "s.jsonl", &[e("u3")], None)
        .await
        .unwrap();
    let files = store.load_entries("n", "s").await.unwrap();
    let keys: Vec<&str> = files[0].entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        vec!["u1", "", "u3"],
        "the torn line is kept undecoded"
    );
    assert!(files[0].entries[1].parse().is_err());
}

//! The conformance suite every [`SessionStore`] must pass.
//!
//! Run it against your own backend from a test:
//!
//! ```no_run
//! # async fn example() {
//! use claude_supervisor::{MemoryStore, store::conformance};
//! conformance::run_all(|| async { MemoryStore::new() }).await;
//! # }
//! ```
//!
//! Each check gets a fresh store from `make` and panics, naming the check and what differed, on
//! the first failure. Stores whose [`holds_transcripts`](SessionStore::holds_transcripts) is
//! `false` skip the transcript checks; stores that answer the lease calls with
//! [`StoreError::Unsupported`] skip the lease checks (both loudly).

use std::future::Future;
use std::time::Duration;

use serde_json::json;

use super::{SessionRecord, SessionStore, StoreError, TranscriptEntry};

/// Runs every check, each on a fresh store from `make`.
///
/// # Panics
///
/// On the first check that fails, naming it.
pub async fn run_all<S, F, Fut>(make: F)
where
    S: SessionStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    records_round_trip(&make().await).await;
    let store = make().await;
    if store.holds_transcripts() {
        transcripts_append_in_order_and_once(&store).await;
        transcripts_keep_files_and_conversations_apart(&make().await).await;
    } else {
        eprintln!("conformance: {store:?} holds no transcripts; transcript checks skipped");
    }
    let store = make().await;
    match store
        .acquire_lease("probe", "owner", Duration::from_secs(60))
        .await
    {
        Err(StoreError::Unsupported { .. }) => {
            eprintln!("conformance: {store:?} has no leases; lease checks skipped");
        }
        _ => {
            leases_are_exclusive_until_they_expire(&make().await).await;
            fencing_tokens_only_grow_and_stale_writes_are_refused(&make().await).await;
            leases_are_listed_and_renewed_together(&make().await).await;
            a_revoked_lease_fences_its_holder_out(&make().await).await;
        }
    }
}

fn entry(uuid: &str, text: &str) -> TranscriptEntry {
    TranscriptEntry::from_value(&json!({"uuid": uuid, "type": "user", "text": text}))
}

/// Records are saved, replaced, listed by name and deleted.
pub async fn records_round_trip(store: &dyn SessionStore) {
    let mut a = SessionRecord::new("a/ü 1", "fp");
    a.session_id = Some("s1".into());
    store.save(&a).await.expect("records: save");
    assert_eq!(
        store.load("a/ü 1").await.expect("records: load"),
        Some(a.clone()),
        "records: load after save"
    );
    a.session_id = Some("s2".into());
    store.save(&a).await.expect("records: save again");
    assert_eq!(
        store.load("a/ü 1").await.expect("records: load"),
        Some(a.clone()),
        "records: a save replaces"
    );
    assert_eq!(
        store.load("missing").await.expect("records: load"),
        None,
        "records: unknown name"
    );
    store
        .save(&SessionRecord::new("0", "fp"))
        .await
        .expect("records: save");
    let names: Vec<String> = store
        .list()
        .await
        .expect("records: list")
        .into_iter()
        .map(|r| r.name)
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec!["0".to_owned(), "a/ü 1".to_owned()],
        "records: list"
    );
    store.delete("0").await.expect("records: delete");
    store
        .delete("0")
        .await
        .expect("records: deleting twice is not an error");
    assert_eq!(
        store.load("0").await.expect("records: load"),
        None,
        "records: deleted"
    );
}

/// Entries come back in append order; an entry whose key the file has is not stored again (a
/// retried batch), and entries without a `uuid` are keyed by their text.
pub async fn transcripts_append_in_order_and_once(store: &dyn SessionStore) {
    let file = "s1.jsonl";
    let first = [entry("u1", "one"), entry("u2", "two")];
    assert_eq!(
        store
            .append_entries("n", "s1", file, &first, None)
            .await
            .expect("transcripts: append"),
        2,
        "transcripts: new entries counted"
    );
    let no_uuid = TranscriptEntry::from_value(&json!({"type": "last-prompt", "lastPrompt": "two"}));
    let retry = [entry("u2", "two"), entry("u3", "three"), no_uuid.clone()];
    assert_eq!(
        store
            .append_entries("n", "s1", file, &retry, None)
            .await
            .expect("transcripts: append"),
        2,
        "transcripts: a retried entry is skipped"
    );
    assert_eq!(
        store
            .append_entries("n", "s1", file, &[no_uuid], None)
            .await
            .expect("transcripts: append"),
        0,
        "transcripts: an entry without uuid is keyed by its text"
    );
    let files = store
        .load_entries("n", "s1")
        .await
        .expect("transcripts: load");
    assert_eq!(files.len(), 1, "transcripts: one file");
    assert_eq!(files[0].file, file);
    let keys: Vec<&str> = files[0].entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(&keys[..3], &["u1", "u2", "u3"], "transcripts: append order");
    assert_eq!(keys.len(), 4, "transcripts: every distinct entry once");
    for (got, want) in files[0].entries.iter().zip(first.iter()) {
        assert_eq!(
            got.parse().expect("transcripts: stored text is JSON"),
            want.parse().unwrap(),
            "transcripts: text kept"
        );
    }
    assert!(
        store
            .load_entries("n", "other")
            .await
            .expect("transcripts: load")
            .is_empty(),
        "transcripts: unknown conversation"
    );
}

/// Files of one conversation, conversations of one session and sessions are kept apart; the main
/// file comes first.
pub async fn transcripts_keep_files_and_conversations_apart(store: &dyn SessionStore) {
    let sub = "s1/subagents/agent-a.jsonl";
    store
        .append_entries("n", "s1", sub, &[entry("x", "sub")], None)
        .await
        .expect("transcripts: append");
    store
        .append_entries("n", "s1", "s1.jsonl", &[entry("u1", "main")], None)
        .await
        .expect("transcripts: append");
    store
        .append_entries(
            "n",
            "s2",
            "s2.jsonl",
            &[entry("u1", "other conversation")],
            None,
        )
        .await
        .expect("transcripts: append");
    store
        .append_entries("m", "s1", "s1.jsonl", &[entry("u9", "other session")], None)
        .await
        .expect("transcripts: append");
    let files = store
        .load_entries("n", "s1")
        .await
        .expect("transcripts: load");
    let names: Vec<&str> = files.iter().map(|f| f.file.as_str()).collect();
    assert_eq!(
        names,
        vec!["s1.jsonl", sub],
        "transcripts: the main file first, then the subagents'"
    );
    assert_eq!(
        files[0].entries.len(),
        1,
        "transcripts: the same uuid in another conversation is another entry"
    );
    assert_eq!(files[0].entries[0].key, "u1");
    assert_eq!(
        store
            .load_entries("m", "s1")
            .await
            .expect("transcripts: load")[0]
            .entries[0]
            .key,
        "u9",
        "transcripts: sessions apart"
    );
}

/// One owner at a time; the owner extends its own lease (same token); an expired lease goes to
/// the next owner with a greater token.
pub async fn leases_are_exclusive_until_they_expire(store: &dyn SessionStore) {
    let long = Duration::from_secs(600);
    let a = store
        .acquire_lease("n", "a", long)
        .await
        .expect("leases: a free lease is granted");
    assert_eq!((a.name.as_str(), a.owner.as_str()), ("n", "a"));
    match store.acquire_lease("n", "b", long).await {
        Err(StoreError::LeaseHeld { owner, token, .. }) => {
            assert_eq!((owner.as_str(), token), ("a", a.token), "leases: held by a")
        }
        other => panic!("leases: a held lease must be refused to another owner, got {other:?}"),
    }
    let again = store
        .acquire_lease("n", "a", long)
        .await
        .expect("leases: the owner re-acquires");
    assert_eq!(again.token, a.token, "leases: re-acquiring keeps the token");
    store
        .acquire_lease("other", "b", long)
        .await
        .expect("leases: names are independent");
    // A zero TTL makes the lease expire at once.
    let short = store
        .renew_lease(&a, Duration::ZERO)
        .await
        .expect("leases: renew");
    assert_eq!(short.token, a.token);
    let b = store
        .acquire_lease("n", "b", long)
        .await
        .expect("leases: an expired lease goes to the next owner");
    assert!(
        b.token > a.token,
        "leases: a new owner gets a greater token ({} after {})",
        b.token,
        a.token
    );
}

/// A write carrying a stale token is refused; the current one's goes through; tokens are never
/// reused, even after a release.
pub async fn fencing_tokens_only_grow_and_stale_writes_are_refused(store: &dyn SessionStore) {
    let a = store
        .acquire_lease("n", "a", Duration::ZERO)
        .await
        .expect("fencing: acquire");
    let rec = SessionRecord::new("n", "fp");
    store
        .save_fenced(&rec, Some(a.token))
        .await
        .expect("fencing: the owner writes");
    let b = store
        .acquire_lease("n", "b", Duration::from_secs(600))
        .await
        .expect("fencing: takeover");
    assert!(b.token > a.token, "fencing: tokens grow");
    match store.save_fenced(&rec, Some(a.token)).await {
        Err(StoreError::StaleFence { token, current, .. }) => assert_eq!(
            (token, current),
            (a.token, b.token),
            "fencing: names both tokens"
        ),
        other => {
            panic!("fencing: a record write with a stale token must be refused, got {other:?}")
        }
    }
    if store.holds_transcripts() {
        match store
            .append_entries("n", "s1", "s1.jsonl", &[entry("u1", "late")], Some(a.token))
            .await
        {
            Err(StoreError::StaleFence { .. }) => {}
            other => panic!(
                "fencing: a transcript write with a stale token must be refused, got {other:?}"
            ),
        }
    }
    match store.renew_lease(&a, Duration::from_secs(600)).await {
        Err(StoreError::StaleFence { .. }) => {}
        other => panic!("fencing: renewing a replaced lease must be refused, got {other:?}"),
    }
    store
        .save_fenced(&rec, Some(b.token))
        .await
        .expect("fencing: the new owner writes");
    if store.holds_transcripts() {
        store
            .append_entries("n", "s1", "s1.jsonl", &[entry("u1", "ok")], Some(b.token))
            .await
            .expect("fencing: the new owner appends");
    }
    store
        .release_lease(&a)
        .await
        .expect("fencing: releasing a replaced lease is a no-op");
    store
        .acquire_lease("n", "c", Duration::from_secs(600))
        .await
        .expect_err("fencing: b still holds it");
    store.release_lease(&b).await.expect("fencing: release");
    let c = store
        .acquire_lease("n", "c", Duration::from_secs(600))
        .await
        .expect("fencing: a released lease is free");
    assert!(
        c.token > b.token,
        "fencing: a token is never reused after a release"
    );
    match store.save_fenced(&rec, Some(b.token)).await {
        Err(StoreError::StaleFence { .. }) => {}
        other => panic!("fencing: a released owner's write must be refused, got {other:?}"),
    }
}

/// `revoke_lease` ends a lease whoever holds it, live or expired: its holder can neither renew
/// it nor write with its token, it is no longer listed, and the next lease gets a greater token.
pub async fn a_revoked_lease_fences_its_holder_out(store: &dyn SessionStore) {
    let long = Duration::from_secs(600);
    let a = store
        .acquire_lease("n", "a", long)
        .await
        .expect("revoke: acquire");
    let revoked = store
        .revoke_lease("n")
        .await
        .expect("revoke: revoke a live lease");
    assert_eq!(
        revoked.as_ref().map(|l| (l.owner.as_str(), l.token)),
        Some(("a", a.token)),
        "revoke: returns the lease it ended"
    );
    match store.renew_lease(&a, long).await {
        Err(StoreError::StaleFence { .. }) => {}
        other => panic!("revoke: renewing a revoked lease must be refused, got {other:?}"),
    }
    match store
        .save_fenced(&SessionRecord::new("n", "fp"), Some(a.token))
        .await
    {
        Err(StoreError::StaleFence { .. }) => {}
        other => panic!("revoke: a revoked holder's write must be refused, got {other:?}"),
    }
    let listed = store.list_leases().await.expect("revoke: list");
    assert!(
        listed.iter().all(|l| l.lease.name != "n"),
        "revoke: a revoked lease is not listed: {listed:?}"
    );
    assert_eq!(
        store.revoke_lease("n").await.expect("revoke: again"),
        None,
        "revoke: nothing left to revoke"
    );
    assert_eq!(
        store.revoke_lease("never").await.expect("revoke: unknown"),
        None,
        "revoke: an unknown name has no lease"
    );
    let b = store
        .acquire_lease("n", "b", Duration::ZERO)
        .await
        .expect("revoke: a revoked lease is free");
    assert!(b.token > a.token, "revoke: tokens still grow");
    let expired = store
        .revoke_lease("n")
        .await
        .expect("revoke: revoke an expired lease");
    assert_eq!(
        expired.map(|l| l.token),
        Some(b.token),
        "revoke: an expired lease is revoked too"
    );
}

/// `list_leases` shows the current leases (not released ones) with their expiry by the store's
/// clock; `renew_leases` renews many at once and refuses a replaced one in its own slot.
pub async fn leases_are_listed_and_renewed_together(store: &dyn SessionStore) {
    let long = Duration::from_secs(600);
    let a = store
        .acquire_lease("a", "n1", long)
        .await
        .expect("leases: a");
    let b = store
        .acquire_lease("b", "n1", Duration::ZERO)
        .await
        .expect("leases: b");
    let c = store
        .acquire_lease("c", "n2", long)
        .await
        .expect("leases: c");
    store.release_lease(&c).await.expect("leases: release c");
    let listed = store.list_leases().await.expect("leases: list");
    let seen: Vec<(&str, &str, bool)> = listed
        .iter()
        .map(|s| (s.lease.name.as_str(), s.lease.owner.as_str(), s.expired))
        .collect();
    assert_eq!(
        seen,
        vec![("a", "n1", false), ("b", "n1", true)],
        "leases: current leases in name order, a released one left out"
    );
    let taken = store
        .acquire_lease("b", "n2", long)
        .await
        .expect("leases: an expired lease is taken over");
    let renewed = store
        .renew_leases(&[a.clone(), b.clone()], long)
        .await
        .expect("leases: renew together");
    assert_eq!(renewed.len(), 2, "leases: one result per lease");
    assert_eq!(
        renewed[0].as_ref().expect("leases: a is renewed").token,
        a.token,
        "leases: a renewal keeps the token"
    );
    match &renewed[1] {
        Err(StoreError::StaleFence { token, current, .. }) => {
            assert_eq!(
                (*token, *current),
                (b.token, taken.token),
                "leases: b was taken over"
            )
        }
        other => panic!("leases: renewing a replaced lease must be refused, got {other:?}"),
    }
}

//! An in-memory store, for tests and for sessions that need not outlive the process.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::transcript::{LeaseRow, ttl_ms};
use super::{
    Lease, LeaseStatus, SessionRecord, SessionStore, StoreError, TranscriptEntry, TranscriptFile,
    now_ms,
};

/// Keeps records, transcripts and leases in memory; clones share them.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

/// A file's entries in order, and their keys.
type StoredFile = (Vec<TranscriptEntry>, HashSet<String>);

#[derive(Debug, Default)]
struct Inner {
    records: BTreeMap<String, SessionRecord>,
    /// (name, session id) → file → its entries and their keys.
    transcripts: BTreeMap<(String, String), BTreeMap<String, StoredFile>>,
    leases: BTreeMap<String, LeaseRow>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the stored text of the entry `key` of `file` (to test how a corrupt entry is
    /// handled). Returns whether the entry was found.
    pub fn corrupt_entry(
        &self,
        name: &str,
        session_id: &str,
        file: &str,
        key: &str,
        text: &str,
    ) -> bool {
        let mut inner = self.inner();
        let Some((entries, _)) = inner
            .transcripts
            .get_mut(&(name.to_owned(), session_id.to_owned()))
            .and_then(|files| files.get_mut(file))
        else {
            return false;
        };
        match entries.iter_mut().find(|e| e.key == key) {
            Some(e) => {
                e.line = text.to_owned();
                true
            }
            None => false,
        }
    }
}

fn check_fence(inner: &Inner, name: &str, fence: Option<u64>) -> Result<(), StoreError> {
    match inner.leases.get(name) {
        Some(row) => row.check(name, fence),
        None => LeaseRow::default().check(name, fence),
    }
}

impl SessionStore for MemoryStore {
    fn load<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        let found = self.inner().records.get(name).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn save<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner()
            .records
            .insert(record.name.clone(), record.clone());
        Box::pin(async { Ok(()) })
    }

    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut inner = self.inner();
        inner.records.remove(name);
        inner.transcripts.retain(|(n, _), _| n != name);
        Box::pin(async { Ok(()) })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<SessionRecord>, StoreError>> {
        let all = self.inner().records.values().cloned().collect();
        Box::pin(async move { Ok(all) })
    }

    fn holds_transcripts(&self) -> bool {
        true
    }

    fn append_entries<'a>(
        &'a self,
        name: &'a str,
        session_id: &'a str,
        file: &'a str,
        entries: &'a [TranscriptEntry],
        fence: Option<u64>,
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        let result = (|| {
            let mut inner = self.inner();
            check_fence(&inner, name, fence)?;
            let (stored, keys) = inner
                .transcripts
                .entry((name.to_owned(), session_id.to_owned()))
                .or_default()
                .entry(file.to_owned())
                .or_default();
            let mut added = 0;
            for e in entries {
                if keys.insert(e.key.clone()) {
                    stored.push(e.clone());
                    added += 1;
                }
            }
            Ok(added)
        })();
        Box::pin(async move { result })
    }

    fn load_entries<'a>(
        &'a self,
        name: &'a str,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<TranscriptFile>, StoreError>> {
        let files = self
            .inner()
            .transcripts
            .get(&(name.to_owned(), session_id.to_owned()))
            .map(|files| {
                files
                    .iter()
                    .map(|(file, (entries, _))| TranscriptFile {
                        file: file.clone(),
                        entries: entries.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Box::pin(async move { Ok(super::main_file_first(files, session_id)) })
    }

    fn save_fenced<'a>(
        &'a self,
        record: &'a SessionRecord,
        fence: Option<u64>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let result = (|| {
            let mut inner = self.inner();
            check_fence(&inner, &record.name, fence)?;
            inner.records.insert(record.name.clone(), record.clone());
            Ok(())
        })();
        Box::pin(async move { result })
    }

    fn acquire_lease<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        let result = self
            .inner()
            .leases
            .entry(name.to_owned())
            .or_default()
            .acquire(name, owner, ttl_ms(ttl), now_ms());
        Box::pin(async move { result })
    }

    fn renew_lease<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        let result = self
            .inner()
            .leases
            .entry(lease.name.clone())
            .or_default()
            .renew(lease, ttl_ms(ttl), now_ms());
        Box::pin(async move { result })
    }

    fn list_leases(&self) -> BoxFuture<'_, Result<Vec<LeaseStatus>, StoreError>> {
        let now = now_ms();
        let list = self
            .inner()
            .leases
            .values()
            .filter_map(|row| row.status(now))
            .collect();
        Box::pin(async move { Ok(list) })
    }

    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>> {
        if let Some(row) = self.inner().leases.get_mut(&lease.name) {
            row.release(lease);
        }
        Box::pin(async { Ok(()) })
    }

    fn revoke_lease<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Lease>, StoreError>> {
        let revoked = self.inner().leases.get_mut(name).and_then(LeaseRow::revoke);
        Box::pin(async move { Ok(revoked) })
    }
}

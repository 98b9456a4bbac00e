//! Where a session's state lives outside the runtime (the hybrid pattern).
//!
//! A [`SessionRecord`] per session name keeps what is needed to pick a conversation up again
//! after the runtime stops — the latest session id, a fingerprint of the options it ran with, its
//! working directory, its cost totals and timestamps. The supervisor saves it as the session id
//! changes and turns finish, and on start resumes every named session it finds.
//!
//! Two stores ship: [`FileStore`] (a directory of JSON files, written atomically) and
//! [`MemoryStore`] (for tests). Implement [`SessionStore`] for anything else (a database, a KV
//! service).

mod file;
mod memory;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use claude_session::CostTotals;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use file::FileStore;
pub(crate) use file::encode as encode_name;
pub use memory::MemoryStore;

/// What is kept of one named session between runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionRecord {
    /// The session's name (the key).
    pub name: String,
    /// The latest session id of its conversation, if it has had one.
    pub session_id: Option<String>,
    /// A fingerprint of the options it ran with, to notice a configuration change.
    pub options_fingerprint: String,
    /// Its working directory.
    pub cwd: Option<PathBuf>,
    /// Cost totals across all its processes and runs.
    pub totals: CostTotals,
    /// When the record was first written (milliseconds since the Unix epoch).
    pub created_at_ms: u64,
    /// When the record was last written (milliseconds since the Unix epoch).
    pub updated_at_ms: u64,
}

impl SessionRecord {
    /// A fresh record for `name`.
    pub fn new(name: impl Into<String>, options_fingerprint: impl Into<String>) -> Self {
        let now = now_ms();
        Self {
            name: name.into(),
            session_id: None,
            options_fingerprint: options_fingerprint.into(),
            cwd: None,
            totals: CostTotals::default(),
            created_at_ms: now,
            updated_at_ms: now,
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing failed.
    #[error("session store: {action} `{path}`: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A record could not be decoded.
    #[error("session store: record `{path}` is not valid: {source}")]
    Corrupt {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The store's own failure.
    #[error("session store: {0}")]
    Other(String),
}

/// Keeps [`SessionRecord`]s by session name.
///
/// Every method is async and returns a boxed future, so the trait is object safe
/// (`Arc<dyn SessionStore>`).
pub trait SessionStore: Send + Sync + std::fmt::Debug + 'static {
    /// The record of `name`, if there is one.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be read.
    fn load<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>>;

    /// Writes `record` (replacing any earlier one of the same name). A crash mid-write must
    /// leave either the old record or the new one, never a broken one.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be written.
    fn save<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes the record of `name`, if there is one.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be written.
    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Every record.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be read.
    fn list(&self) -> BoxFuture<'_, Result<Vec<SessionRecord>, StoreError>>;
}

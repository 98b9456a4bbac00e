//! Where a session's state lives outside the runtime (the hybrid pattern).
//!
//! A [`SessionRecord`] per session name keeps what is needed to pick a conversation up again
//! after the runtime stops — the latest session id, a fingerprint of the options it ran with, its
//! working directory, its cost totals and timestamps. The supervisor saves it as the session id
//! changes and turns finish, and on start resumes every named session it finds.
//!
//! Two stores ship: [`FileStore`] (a directory of JSON files, written atomically) and
//! [`MemoryStore`] (for tests). Implement [`SessionStore`] for anything else (a database, a KV
//! service), and run [`conformance::run_all`] against it.
//!
//! A store may also hold the conversations themselves ([`SessionStore::holds_transcripts`]):
//! the lines the CLI writes to its session files, mirrored as the CLI writes them
//! (`--session-mirror`), so that a session resumes on a host (or in a config dir) that has never
//! seen its files. And it may hold leases ([`Lease`]): who owns a session, until when, and a
//! fencing token that only grows, which every write of the owner carries, so that a write of an
//! owner that has lost its lease is refused ([`StoreError::StaleFence`]).

pub mod conformance;
mod file;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod transcript;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use claude_session::CostTotals;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use file::FileStore;
pub(crate) use file::encode as encode_name;
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, redact_url};
pub use transcript::{Lease, LeaseStatus, TranscriptEntry, TranscriptFile};

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
    /// A database failed (the URL is shown without its password).
    #[error("session store: {action} `{url}`: {source}")]
    Database {
        /// The database's URL, its password replaced by `***`.
        url: String,
        /// What was being done.
        action: &'static str,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store does not implement this part of the interface.
    #[error("session store: this store does not support {what}")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },
    /// Another owner holds the session's lease.
    #[error(
        "session store: the lease of `{name}` is held by `{owner}` (token {token}) until {expires_at_ms} ms"
    )]
    LeaseHeld {
        /// The session name.
        name: String,
        /// Who holds it.
        owner: String,
        /// Its fencing token.
        token: u64,
        /// When it expires (milliseconds since the Unix epoch).
        expires_at_ms: u64,
    },
    /// A write carried a fencing token older than the session's current one: its writer lost
    /// the lease, and the write was refused.
    #[error(
        "session store: write to `{name}` refused: fencing token {token} is stale (current {current})"
    )]
    StaleFence {
        /// The session name.
        name: String,
        /// The token the write carried.
        token: u64,
        /// The current token.
        current: u64,
    },
    /// A store method panicked (the panic is contained: it fails this call only).
    #[error("session store: `{method}` panicked: {message}")]
    Panicked {
        /// The method.
        method: &'static str,
        /// The panic's message.
        message: String,
    },
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

    /// Whether this store keeps transcripts ([`append_entries`](Self::append_entries),
    /// [`load_entries`](Self::load_entries)); the supervisor mirrors conversations into stores
    /// that do. Default: `false`.
    fn holds_transcripts(&self) -> bool {
        false
    }

    /// Appends `entries` to transcript `file` (relative to the CLI's project folder, e.g.
    /// `<id>.jsonl` or `<id>/subagents/agent-<x>.jsonl`) of conversation `session_id` of the
    /// session `name`, in order, skipping every entry whose [`key`](TranscriptEntry::key) the file
    /// already has (so a retried batch is stored once). Returns how many were new. With a
    /// `fence`, the write is refused ([`StoreError::StaleFence`]) unless it is the session's
    /// current lease token.
    ///
    /// # Errors
    ///
    /// [`StoreError`]; [`StoreError::Unsupported`] by default.
    fn append_entries<'a>(
        &'a self,
        name: &'a str,
        session_id: &'a str,
        file: &'a str,
        entries: &'a [TranscriptEntry],
        fence: Option<u64>,
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        let _ = (name, session_id, file, entries, fence);
        Box::pin(async {
            Err(StoreError::Unsupported {
                what: "transcripts",
            })
        })
    }

    /// Every transcript file of conversation `session_id` of `name`, each with its entries in
    /// append order (the main file first, then the others by name). A line the store cannot
    /// decode is returned as it is: the caller reports and skips it.
    ///
    /// # Errors
    ///
    /// [`StoreError`]; [`StoreError::Unsupported`] by default.
    fn load_entries<'a>(
        &'a self,
        name: &'a str,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<TranscriptFile>, StoreError>> {
        let _ = (name, session_id);
        Box::pin(async {
            Err(StoreError::Unsupported {
                what: "transcripts",
            })
        })
    }

    /// Writes `record` only if `fence` is the session's current lease token (see
    /// [`save`](Self::save)); without a fence, it is [`save`](Self::save).
    ///
    /// # Errors
    ///
    /// [`StoreError::StaleFence`]; [`StoreError::Unsupported`] by default with a fence.
    fn save_fenced<'a>(
        &'a self,
        record: &'a SessionRecord,
        fence: Option<u64>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        match fence {
            None => self.save(record),
            Some(_) => Box::pin(async { Err(StoreError::Unsupported { what: "leases" }) }),
        }
    }

    /// Takes the lease of `name` for `owner` for `ttl`: granted when nobody holds it, it has
    /// expired, or `owner` holds it already (then it is extended, same token). A newly granted
    /// lease gets a token greater than every earlier token of `name`.
    ///
    /// # Errors
    ///
    /// [`StoreError::LeaseHeld`] when another owner holds it; [`StoreError::Unsupported`] by
    /// default.
    fn acquire_lease<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        let _ = (name, owner, ttl);
        Box::pin(async { Err(StoreError::Unsupported { what: "leases" }) })
    }

    /// Extends `lease` by `ttl` from now, if it is still the current one (even if it has
    /// expired, as long as nobody took it since).
    ///
    /// # Errors
    ///
    /// [`StoreError::StaleFence`] when another lease replaced it; [`StoreError::Unsupported`]
    /// by default.
    fn renew_lease<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        let _ = (lease, ttl);
        Box::pin(async { Err(StoreError::Unsupported { what: "leases" }) })
    }

    /// Extends each of `leases` by `ttl` from now (a fleet node's heartbeat), one result per
    /// lease, in order. The default renews them one by one; a database does it in one statement.
    ///
    /// # Errors
    ///
    /// A store that cannot be reached fails the whole call; a replaced lease is
    /// [`StoreError::StaleFence`] in its own slot.
    fn renew_leases<'a>(
        &'a self,
        leases: &'a [Lease],
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<Vec<Result<Lease, StoreError>>, StoreError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(leases.len());
            for lease in leases {
                match self.renew_lease(lease, ttl).await {
                    Err(e @ StoreError::StaleFence { .. }) => out.push(Err(e)),
                    Err(e) => return Err(e),
                    Ok(l) => out.push(Ok(l)),
                }
            }
            Ok(out)
        })
    }

    /// Every current (not released) lease, in name order, each marked expired or not by the
    /// store's clock: who owns what in a fleet.
    ///
    /// # Errors
    ///
    /// [`StoreError`]; [`StoreError::Unsupported`] by default.
    fn list_leases(&self) -> BoxFuture<'_, Result<Vec<LeaseStatus>, StoreError>> {
        Box::pin(async { Err(StoreError::Unsupported { what: "leases" }) })
    }

    /// Gives `lease` up (a no-op if it is no longer the current one). The token is not reused.
    ///
    /// # Errors
    ///
    /// [`StoreError`]; [`StoreError::Unsupported`] by default.
    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = lease;
        Box::pin(async { Err(StoreError::Unsupported { what: "leases" }) })
    }

    /// Ends the current lease of `name`, whoever holds it, live or expired (a session
    /// terminated from another node of the fleet): from now on its holder's renewals and fenced
    /// writes are refused, and nobody takes the session over. Returns the lease it ended
    /// (`None`: nobody held one). The token is not reused.
    ///
    /// # Errors
    ///
    /// [`StoreError`]; [`StoreError::Unsupported`] by default.
    fn revoke_lease<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Lease>, StoreError>> {
        let _ = name;
        Box::pin(async { Err(StoreError::Unsupported { what: "leases" }) })
    }
}

/// A shared store is a store: the tree and the program around it (a server that also reads
/// records) can hold the same one (`Arc<dyn SessionStore>` or `Arc<S>`).
impl<S: SessionStore + ?Sized> SessionStore for Arc<S> {
    fn load<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        (**self).load(name)
    }
    fn save<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).save(record)
    }
    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).delete(name)
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<SessionRecord>, StoreError>> {
        (**self).list()
    }
    fn holds_transcripts(&self) -> bool {
        (**self).holds_transcripts()
    }
    fn append_entries<'a>(
        &'a self,
        name: &'a str,
        session_id: &'a str,
        file: &'a str,
        entries: &'a [TranscriptEntry],
        fence: Option<u64>,
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        (**self).append_entries(name, session_id, file, entries, fence)
    }
    fn load_entries<'a>(
        &'a self,
        name: &'a str,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<TranscriptFile>, StoreError>> {
        (**self).load_entries(name, session_id)
    }
    fn save_fenced<'a>(
        &'a self,
        record: &'a SessionRecord,
        fence: Option<u64>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).save_fenced(record, fence)
    }
    fn acquire_lease<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        (**self).acquire_lease(name, owner, ttl)
    }
    fn renew_lease<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        (**self).renew_lease(lease, ttl)
    }
    fn renew_leases<'a>(
        &'a self,
        leases: &'a [Lease],
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<Vec<Result<Lease, StoreError>>, StoreError>> {
        (**self).renew_leases(leases, ttl)
    }
    fn list_leases(&self) -> BoxFuture<'_, Result<Vec<LeaseStatus>, StoreError>> {
        (**self).list_leases()
    }
    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).release_lease(lease)
    }
    fn revoke_lease<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Lease>, StoreError>> {
        (**self).revoke_lease(name)
    }
}

/// Orders a conversation's files: its main file (`<id>.jsonl`) first, then the rest by name.
pub(crate) fn main_file_first(
    mut files: Vec<TranscriptFile>,
    session_id: &str,
) -> Vec<TranscriptFile> {
    let main = format!("{session_id}.jsonl");
    files.sort_by(|a, b| (a.file != main, &a.file).cmp(&(b.file != main, &b.file)));
    files
}

//! [`ClaudeSupervisor`]: named Claude Code sessions, each its own failure domain, in an OTP tree.
//!
//! ```text
//! root (one_for_one)
//! ├── leases                      the lease keeper: conversation id → session
//! └── sessions (dynamic)          one temporary child per named session
//!     ├── "reviewer" (rest_for_one, its own intensity: 5 in 30 s by default)
//!     │   ├── keeper              owns the session's state: ledger, lease, hibernation, waiters
//!     │   └── instance            owns one `Session` → one claude CLI process
//!     └── "user-42" …
//! ```
//!
//! A session that exhausts its own restart intensity is `failed`; nothing else notices.
//! [`ClaudeSupervisor::restart_session`] revives it. The tree's supervisors never wait on a
//! CLI: an instance starts at once and launches its CLI from a task it owns, so `health()`,
//! `list_sessions()` and every admin call answer from published state in bounded time. The
//! tree's one map of names holds each session's [`entry`] with its admission places.

mod entry;
mod error;
mod fleet;
mod gone;
mod handle;
mod health;
mod instance;
mod keeper;
mod leases;
mod mirror;
mod name;
mod owned;
mod spec;

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use claude_session::{Launcher, SessionConfig, SessionEventKind, SessionLedger};
use dashmap::DashMap;
use futures::FutureExt;
use serde::Serialize;
use supervision::{
    ChildError, ChildKind, ChildSpec, DynamicFlags, DynamicSupervisor, DynamicSupervisorRef,
    Shutdown, StartError, StartOutcome, Strategy, Supervisor, SupervisorFlags, SupervisorRef,
};
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::time::Instant;

pub use entry::SessionState;
pub use error::SupervisorError;
pub use fleet::{FleetConfig, FleetHealth, FleetSession, SpecForRecord};
pub use handle::SessionHandle;
pub use health::{SessionInfo, SessionReport, TreeHealth};
pub use name::{MAX_NAME_LEN, validate_name};
pub use owned::OwnedSession;
pub use spec::{DurationError, LostConversation, SessionSpec};

use crate::store::{MemoryStore, SessionRecord, SessionStore, StoreError, now_ms};
use entry::{Ending, Entry, Slot};
use keeper::{Keeper, KeeperArgs};
use leases::Leases;

/// Something that happened in the tree.
#[derive(Clone, Debug, Serialize)]
pub struct SupervisorEvent {
    /// The session it is about (none for tree-wide events).
    pub session: Option<String>,
    /// What happened.
    pub kind: SupervisorEventKind,
}

/// The kinds of [`SupervisorEvent`].
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SupervisorEventKind {
    /// A lifecycle event of one session (turns, frames skipped, process exits, …).
    Session(SessionEventKind),
    /// An instance of the session started (`generation` counts its starts).
    Started {
        /// 1 for the first start, +1 for each restart or wake-up.
        generation: u64,
        /// Whether it resumed an earlier conversation.
        resumed: bool,
    },
    /// An instance failed to start.
    StartFailed {
        /// Why.
        error: String,
    },
    /// The session's CLI died; its supervisor is restarting it.
    Restarting,
    /// The CLI did not have the conversation the session was to resume; per the session's
    /// [`LostConversation`] policy it starts a fresh one, or fails.
    ConversationLost {
        /// The conversation that was lost.
        session_id: String,
    },
    /// The session exhausted its own restart intensity (or failed by policy).
    Failed {
        /// Why.
        reason: String,
    },
    /// The session was hibernated after its idle timeout.
    Hibernated,
    /// The session was terminated.
    Terminated,
    /// A store operation failed (the session keeps serving from memory). Transcript entries
    /// the store refused are kept and retried until it takes them
    /// ([`StoreRecovered`](Self::StoreRecovered)).
    StoreFailed {
        /// Why.
        error: String,
    },
    /// The store took the transcript entries it had refused: nothing of the conversation was
    /// lost while it was down.
    StoreRecovered {
        /// How many entries were waiting.
        entries: usize,
    },
    /// A stored transcript entry could not be decoded when the conversation was written back
    /// for a resume: it was skipped, the rest was written.
    TranscriptEntrySkipped {
        /// The conversation.
        session_id: String,
        /// The transcript file (relative to the CLI's project folder).
        file: String,
        /// The entry's position in the file (from 0).
        index: usize,
        /// Why it could not be decoded.
        error: String,
    },
    /// This node lost the session's lease (another node took it over, or it expired here
    /// while the store was out of reach): its CLI was stopped here, and this node writes
    /// nothing more for it.
    LeaseLost {
        /// The node that holds it now, when known.
        owner: Option<String>,
    },
    /// This node took the session over from a silent node (its lease had expired).
    TakenOver {
        /// The node that held it.
        from: String,
    },
    /// A request of the session found a budget at the credential gateway spent (the
    /// session's own, or its budget group's) and was refused with 429. Sent once per limit
    /// and window: the first refusal of the window.
    BudgetExceeded {
        /// The budget group, when it was the group's budget (else the session's own).
        group: Option<String>,
        /// The limit, e.g. `30 requests per 1m` or `$5.00 per 1day`.
        limit: String,
        /// How long until the limit's window ends and requests are admitted again.
        #[serde(with = "humantime_serde")]
        resets_in: Duration,
    },
    /// The tree gave up (too many failed sessions, or its root exited on its own).
    Meltdown {
        /// Why.
        reason: String,
    },
}

/// What the tree's actors and handles share: configuration, the one map of names, the bus.
pub(crate) struct Tree {
    name: String,
    cli: PathBuf,
    launcher: Option<Arc<dyn Launcher>>,
    store: Arc<dyn SessionStore>,
    entries: DashMap<String, Slot>,
    leases: Leases,
    sessions: watch::Sender<Option<DynamicSupervisorRef>>,
    max_sessions: Option<(usize, Arc<Semaphore>)>,
    max_per_group: Option<usize>,
    groups: DashMap<String, Arc<Semaphore>>,
    events: broadcast::Sender<SupervisorEvent>,
    restart_wait: Duration,
    call_timeout: Duration,
    config_dir_root: Option<PathBuf>,
    failure_limit: Option<(usize, Duration)>,
    /// When recent sessions failed, for `failure_limit` (only the subtree watchers touch it).
    failures: Mutex<VecDeque<Instant>>,
    shutting_down: AtomicBool,
    root: watch::Sender<Option<SupervisorRef>>,
    down: watch::Sender<Option<String>>,
    /// This node's part in a fleet, if it is in one.
    fleet: Option<Arc<fleet::Fleet>>,
    /// The credential gateway the sessions' CLIs talk to, if one is configured.
    gateway: Option<crate::gateway::Gateway>,
    /// The tree's credential, handed to each CLI in its environment, when the gateway was
    /// turned off ([`ClaudeSupervisorBuilder::without_gateway`]).
    direct_credential: Option<crate::Credential>,
    /// The tree's warm spares ([`ClaudeSupervisorBuilder::warm_spares`]), set once at start.
    spares: std::sync::OnceLock<claude_session::SparePool>,
}

impl Tree {
    /// The fencing token this node's writes for `name` carry (in a fleet).
    fn fence(&self, name: &str) -> Option<u64> {
        self.fleet.as_ref().and_then(|f| f.fence(name))
    }

    /// A fenced write for `name` was refused: tell the fleet's heartbeat (it stops the session).
    fn report_store_error(&self, name: &str, error: &StoreError) {
        if let (Some(fleet), StoreError::StaleFence { .. }) = (&self.fleet, error) {
            fleet.report_stale(name);
        }
    }

    fn emit(&self, session: Option<&str>, kind: SupervisorEventKind) {
        let _ = self.events.send(SupervisorEvent {
            session: session.map(str::to_owned),
            kind,
        });
    }

    fn entry(&self, name: &str) -> Option<Arc<Entry>> {
        self.entries.get(name).map(|s| s.entry.clone())
    }

    fn sessions_sup(&self, name: &str) -> Result<DynamicSupervisorRef, SupervisorError> {
        self.sessions
            .borrow()
            .clone()
            .ok_or_else(|| SupervisorError::Unavailable {
                name: name.to_owned(),
                reason: self
                    .down
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| "the tree is not running".into()),
            })
    }

    /// Hands the session's record to its saver, a task of its own that writes the latest
    /// record (records that pile up while a write runs are replaced, not queued): the keeper
    /// never waits on the store, so a slow or unreachable store never stalls a session. A
    /// failing or panicking store is reported, never fatal.
    fn save(self: &Arc<Self>, entry: &Arc<Entry>) {
        let record = SessionRecord {
            name: entry.name().to_owned(),
            session_id: entry.ledger.session_id(),
            options_fingerprint: fingerprint(&entry.spec.options),
            cwd: entry.spec.options.cwd.clone(),
            totals: entry.ledger.totals(),
            created_at_ms: entry.created_at_ms.load(Ordering::Relaxed),
            updated_at_ms: now_ms(),
        };
        entry.record.send_modify(|(n, r)| {
            *n += 1;
            *r = Some(record);
        });
        if !entry.saver.swap(true, Ordering::SeqCst) {
            tokio::spawn(save_records(
                Arc::downgrade(self),
                entry.name().to_owned(),
                entry.record.subscribe(),
                entry.saved.clone(),
            ));
        }
    }

    /// Writes one record (fenced in a fleet); a failure is reported.
    async fn write_record(&self, record: &SessionRecord) {
        let name = record.name.as_str();
        let fence = self.fence(name);
        if self.fleet.is_some() && fence.is_none() {
            // This node does not own the session (any more): it writes nothing for it.
            return;
        }
        let saved = contained("save", || self.store.save_fenced(record, fence)).await;
        if let Err(e) = saved {
            self.report_store_error(name, &e);
            tracing::error!(session = name, error = %e, "could not save the session record");
            self.emit(
                Some(name),
                SupervisorEventKind::StoreFailed {
                    error: e.to_string(),
                },
            );
        }
    }

    /// Waits (at most `limit`) until every session's latest record is written.
    async fn records_saved(&self, limit: Duration) {
        let entries: Vec<Arc<Entry>> = self.entries.iter().map(|s| s.entry.clone()).collect();
        let all = futures::future::join_all(entries.iter().map(|e| record_saved(e)));
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!("the store did not take every session's last record within {limit:?}");
        }
    }

    async fn load(&self, name: &str) -> Result<Option<SessionRecord>, StoreError> {
        contained("load", || self.store.load(name)).await
    }

    /// Takes the admission places of `spec` (atomically: no check-then-act).
    fn admit(
        &self,
        spec: &SessionSpec,
    ) -> Result<Vec<tokio::sync::OwnedSemaphorePermit>, SupervisorError> {
        let name = spec.name.clone();
        let mut permits = Vec::new();
        if let Some((limit, sem)) = &self.max_sessions {
            // A session comes before a warm spare: a parked spare gives up its place.
            let place = sem
                .clone()
                .try_acquire_owned()
                .ok()
                .or_else(|| self.spares.get().and_then(|pool| pool.give_up_place()));
            permits.push(place.ok_or_else(|| SupervisorError::TooManySessions {
                name: name.clone(),
                limit: *limit,
            })?);
        }
        if let (Some(limit), Some(group)) = (self.max_per_group, &spec.group) {
            let sem = self
                .groups
                .entry(group.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(limit)))
                .clone();
            permits.push(
                sem.try_acquire_owned()
                    .map_err(|_| SupervisorError::GroupFull {
                        name: name.clone(),
                        group: group.clone(),
                        limit,
                    })?,
            );
        }
        Ok(permits)
    }

    /// Removes `name` from the map (freeing its places); forgets an empty group's semaphore.
    fn remove(&self, name: &str) -> Option<Arc<Entry>> {
        let (_, slot) = self.entries.remove(name)?;
        if let Some(gateway) = &self.gateway {
            gateway.revoke(name);
        }
        let entry = slot.entry.clone();
        drop(slot);
        if let (Some(limit), Some(group)) = (self.max_per_group, &entry.spec.group) {
            self.groups
                .remove_if(group, |_, sem| sem.available_permits() == limit);
        }
        self.leases.release_all(name);
        if let Some(pool) = self.spares.get() {
            // Its place is free: the pool may take it for a spare.
            pool.wake();
        }
        if let Some(fleet) = &self.fleet {
            // A session that ends here ends fleet-wide: nobody takes it over.
            fleet.release_detached(self.store.clone(), name);
        }
        Some(entry)
    }

    /// Reserves the name of `spec`: validated, admitted, in the map (state `starting`), with a
    /// fresh ledger. Synchronous, so that a caller who goes away right after sees either nothing
    /// or a listed session that its start task settles.
    fn reserve(&self, spec: SessionSpec) -> Result<Arc<Entry>, SupervisorError> {
        validate_name(&spec.name)?;
        let name = spec.name.clone();
        if self.entries.contains_key(&name) {
            return Err(SupervisorError::AlreadyExists { name });
        }
        flags_of(&spec).map_err(|source| SupervisorError::Flags {
            supervisor: name.clone(),
            source,
        })?;
        let permits = self.admit(&spec)?;
        let entry = Entry::new(spec, SessionLedger::new(), now_ms());
        match self.entries.entry(name.clone()) {
            dashmap::Entry::Occupied(_) => Err(SupervisorError::AlreadyExists { name }),
            dashmap::Entry::Vacant(v) => {
                if let Some(gateway) = &self.gateway {
                    // The session's token lives as long as its name: kept across restarts,
                    // revoked in `remove`.
                    gateway.issue(&name, entry.spec.budget_group.as_deref());
                }
                v.insert(Slot {
                    entry: entry.clone(),
                    _permits: permits,
                });
                Ok(entry)
            }
        }
    }

    /// Restores the reserved entry's ledger from the store; on failure the name is released.
    async fn restore(&self, entry: &Arc<Entry>) -> Result<(), SupervisorError> {
        let record = match self.load(entry.name()).await {
            Ok(record) => record,
            Err(e) => {
                self.remove(entry.name());
                return Err(e.into());
            }
        };
        if let Some(r) = record {
            if r.options_fingerprint != fingerprint(&entry.spec.options) {
                tracing::info!(
                    session = entry.name(),
                    "options changed since the conversation was saved; resuming it anyway"
                );
            }
            entry.ledger.restore_from(r.session_id, r.totals);
            entry
                .created_at_ms
                .store(r.created_at_ms, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Creates the entry of `spec` (validated, admitted, its record loaded) and puts it in the
    /// map. Nothing is kept on failure.
    async fn insert(&self, spec: SessionSpec) -> Result<Arc<Entry>, SupervisorError> {
        let entry = self.reserve(spec)?;
        self.claim(&entry).await?;
        self.restore(&entry).await?;
        Ok(entry)
    }

    /// In a fleet, takes the session's lease before anything is loaded or launched; on failure
    /// the name is released here.
    async fn claim(&self, entry: &Arc<Entry>) -> Result<(), SupervisorError> {
        let Some(fleet) = &self.fleet else {
            return Ok(());
        };
        if let Err(e) = fleet.claim(self, entry.name()).await {
            self.entries.remove(entry.name());
            if let Some(gateway) = &self.gateway {
                gateway.revoke(entry.name());
            }
            return Err(e);
        }
        Ok(())
    }

    /// Starts the session's subtree under the sessions supervisor (fast: its CLI launches from
    /// the instance's own task).
    async fn start_subtree(self: &Arc<Self>, entry: &Arc<Entry>) -> Result<(), SupervisorError> {
        let sessions = self.sessions_sup(entry.name())?;
        entry.ending.send_replace(None);
        sessions
            .start_child(subtree_spec(self, entry))
            .await
            .map_err(|source| SupervisorError::Tree {
                supervisor: self.name.clone(),
                action: "start a session's subtree",
                source,
            })?;
        Ok(())
    }

    /// Stops a session's subtree on purpose (`ending` says why), waiting until it is gone.
    async fn stop_subtree(&self, entry: &Entry, ending: Ending) -> Result<(), SupervisorError> {
        entry.ending.send_replace(Some(ending));
        let Ok(sessions) = self.sessions_sup(entry.name()) else {
            return Ok(());
        };
        match sessions.terminate_child(entry.name()).await {
            Ok(()) | Err(ChildError::NotFound { .. }) => Ok(()),
            Err(source) => Err(SupervisorError::Tree {
                supervisor: self.name.clone(),
                action: "stop a session's subtree",
                source,
            }),
        }
    }

    /// A session whose restart type does not restart its CLI has ended: forget it.
    async fn end_session(&self, name: &str, reason: &str) {
        let Some(entry) = self.entry(name) else {
            return;
        };
        let _ = self.stop_subtree(&entry, Ending::Terminated).await;
        entry.view.send_modify(|v| {
            v.state = SessionState::Gone;
            v.reason = Some(reason.to_owned());
        });
        self.remove(name);
        self.emit(Some(name), SupervisorEventKind::Terminated);
    }

    /// The session's subtree exited: on purpose, or because it exhausted its intensity.
    fn subtree_exited(self: &Arc<Self>, entry: &Arc<Entry>, subtree: &SupervisorRef) {
        entry.subtree.send_if_modified(|s| {
            if s.as_ref()
                .is_some_and(|s| s.cell().get_id() == subtree.cell().get_id())
            {
                *s = None;
                true
            } else {
                false
            }
        });
        let ending = *entry.ending.borrow();
        match ending {
            Some(Ending::Terminated) => {
                entry.view.send_modify(|v| {
                    v.state = SessionState::Gone;
                    v.reason.get_or_insert_with(|| "terminated".into());
                });
            }
            Some(Ending::Restarting) => {}
            None if self.shutting_down.load(Ordering::SeqCst) => {
                entry.view.send_modify(|v| {
                    v.state = SessionState::Gone;
                    v.reason = Some("the supervisor was shut down".into());
                });
            }
            Some(Ending::Failing) | None => {
                let mut reason = String::new();
                entry.view.send_modify(|v| {
                    let last = v
                        .reason
                        .clone()
                        .unwrap_or_else(|| "no error was reported".into());
                    reason = if ending == Some(Ending::Failing) {
                        last
                    } else {
                        format!(
                            "reached its restart intensity ({} in {}); last error: {last}",
                            entry.spec.intensity,
                            humantime::format_duration(entry.spec.period)
                        )
                    };
                    v.state = SessionState::Failed;
                    v.reason = Some(reason.clone());
                    v.pid = None;
                    v.up_since = None;
                });
                tracing::error!(session = entry.name(), %reason, "session failed");
                self.emit(
                    Some(entry.name()),
                    SupervisorEventKind::Failed {
                        reason: reason.clone(),
                    },
                );
                self.leases.release_all(entry.name());
                self.count_failure();
            }
        }
    }

    /// Counts a failed session toward the tree's failure limit; past it the tree gives up.
    fn count_failure(self: &Arc<Self>) {
        let Some((limit, period)) = self.failure_limit else {
            return;
        };
        let now = Instant::now();
        let over = {
            let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            failures.push_back(now);
            while failures
                .front()
                .is_some_and(|t| now.duration_since(*t) > period)
            {
                failures.pop_front();
            }
            failures.len() > limit
        };
        if over {
            let reason = format!(
                "more than {limit} sessions failed within {}",
                humantime::format_duration(period)
            );
            tracing::error!(supervisor = %self.name, %reason, "the tree gives up");
            self.emit(
                None,
                SupervisorEventKind::Meltdown {
                    reason: reason.clone(),
                },
            );
            let tree = self.clone();
            tokio::spawn(async move { tree.stop(reason).await });
        }
    }

    /// Stops the whole tree (sessions concurrently, each by its recipe) and marks every entry.
    async fn stop(self: &Arc<Self>, reason: String) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let root = self.root.borrow().clone();
        if let Some(pool) = self.spares.get() {
            // No session may take a spare now, and none outlives the tree.
            pool.shutdown().await;
        }
        if let Some(root) = root {
            root.stop().await;
        }
        if let Some(gateway) = &self.gateway {
            // Every CLI is gone: nothing may use the real credential any more.
            gateway.shutdown();
        }
        // What the sessions said last (their final totals) is in the store before the tree
        // says it is down.
        self.records_saved(RECORDS_AT_STOP).await;
        for slot in self.entries.iter() {
            slot.entry.view.send_modify(|v| {
                if !matches!(v.state, SessionState::Failed) {
                    v.state = SessionState::Gone;
                }
                v.reason.get_or_insert_with(|| reason.clone());
            });
        }
        self.down.send_if_modified(|d| {
            if d.is_none() {
                *d = Some(reason.clone());
                true
            } else {
                false
            }
        });
    }
}

/// A session's record saver: writes the latest record asked for, one write at a time, until
/// the session's entry is gone (its last record written first).
async fn save_records(
    tree: std::sync::Weak<Tree>,
    name: String,
    mut records: watch::Receiver<(u64, Option<SessionRecord>)>,
    saved: watch::Sender<u64>,
) {
    loop {
        let (n, record) = records.borrow_and_update().clone();
        if let Some(record) = record {
            let Some(tree) = tree.upgrade() else { return };
            tree.write_record(&record).await;
        }
        saved.send_replace(n);
        if records.changed().await.is_err() {
            // The entry is gone; a record asked for at the very end was read above.
            tracing::trace!(session = %name, "record saver done");
            return;
        }
    }
}

/// Resolves once the latest record asked of `entry` is written (or reported failed).
async fn record_saved(entry: &Entry) {
    let wanted = entry.record.borrow().0;
    let mut saved = entry.saved.subscribe();
    let _ = saved.wait_for(|n| *n >= wanted).await;
}

/// How long a stopping tree waits for its sessions' last records to be written.
const RECORDS_AT_STOP: Duration = Duration::from_secs(10);

/// Takes the name at once (synchronously) and runs the rest of a start in a task: in a fleet
/// the session's lease first, then its record, then its subtree and first launch.
fn start_task(
    tree: Arc<Tree>,
    spec: SessionSpec,
) -> tokio::task::JoinHandle<Result<SessionHandle, SupervisorError>> {
    let reserved = tree.reserve(spec);
    tokio::spawn(async move {
        let entry = reserved?;
        tree.claim(&entry).await?;
        tree.restore(&entry).await?;
        let first = entry.arm_first();
        if let Err(e) = tree.start_subtree(&entry).await {
            tree.remove(entry.name());
            return Err(e);
        }
        let mut view = entry.view.subscribe();
        let outcome = tokio::select! {
            first = first => first.unwrap_or_else(|_| Err(SupervisorError::Unavailable {
                name: entry.name().to_owned(),
                reason: "the session's first start was abandoned".into(),
            })),
            _ = view.wait_for(|v| matches!(v.state, SessionState::Failed | SessionState::Gone)) => {
                let reason = entry.view.borrow().reason.clone().unwrap_or_default();
                Err(SupervisorError::Failed { name: entry.name().to_owned(), reason })
            }
        };
        match outcome {
            Ok(()) => Ok(SessionHandle::new(tree.clone(), entry)),
            Err(e) => {
                let _ = tree.stop_subtree(&entry, Ending::Terminated).await;
                tree.remove(entry.name());
                Err(e)
            }
        }
    })
}

/// Runs a store method with its panics contained: a panic, whether in the call or in the future
/// it returns, becomes [`StoreError::Panicked`] for this call only.
async fn contained<'a, T>(
    method: &'static str,
    call: impl FnOnce() -> futures::future::BoxFuture<'a, Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let panicked = |panic: Box<dyn std::any::Any + Send>| StoreError::Panicked {
        method,
        message: instance::panic_message(&panic),
    };
    let future = std::panic::catch_unwind(AssertUnwindSafe(call)).map_err(panicked)?;
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(panicked(panic)))
}

/// The flags of a session's own supervisor.
fn flags_of(spec: &SessionSpec) -> Result<SupervisorFlags, supervision::FlagsError> {
    let mut flags = SupervisorFlags::builder()
        .strategy(Strategy::RestForOne)
        .intensity(spec.intensity)
        .period(spec.period);
    if let Some(backoff) = spec.backoff {
        flags = flags.backoff(backoff);
    }
    flags.build()
}

/// The child spec of a session's subtree under the sessions supervisor: temporary (a failed
/// session is not restarted by the tree; `restart_session` starts a new subtree).
fn subtree_spec(tree: &Arc<Tree>, entry: &Arc<Entry>) -> ChildSpec {
    let (weak, entry) = (Arc::downgrade(tree), entry.clone());
    ChildSpec::builder(entry.name().to_owned())
        .kind(ChildKind::Supervisor)
        .restart(supervision::RestartType::Temporary)
        .shutdown(Shutdown::Infinity)
        .start(move |args| {
            let (weak, entry) = (weak.clone(), entry.clone());
            async move { start_subtree_actor(weak, entry, args).await }
        })
        .build()
        .expect("a validated name and a start function make a valid spec")
}

async fn start_subtree_actor(
    weak: Weak<Tree>,
    entry: Arc<Entry>,
    args: supervision::StartArgs,
) -> Result<StartOutcome, StartError> {
    let tree = weak
        .upgrade()
        .ok_or_else(|| StartError::new("the tree is gone"))?;
    let flags = flags_of(&entry.spec).map_err(StartError::from_error)?;
    let keeper = {
        let (tree, entry) = (tree.clone(), entry.clone());
        ChildSpec::builder("keeper")
            .shutdown(Shutdown::Timeout(Duration::from_secs(5)))
            .start(move |args| {
                let (tree, entry) = (tree.clone(), entry.clone());
                async move {
                    let subtree = SupervisorRef::from_cell(args.supervisor().clone())
                        .ok_or_else(|| StartError::new("the session's supervisor is gone"))?;
                    let keeper = KeeperArgs {
                        tree,
                        entry,
                        subtree,
                    };
                    args.spawn_linked(None, Keeper, keeper).await
                }
            })
            .build()
            .map_err(StartError::from_error)?
    };
    let sup = Supervisor::start_linked(None, flags, Vec::new(), args.supervisor().clone())
        .await
        .map_err(StartError::from_error)?;
    entry.subtree.send_replace(Some(sup.clone()));
    sup.start_child(keeper)
        .await
        .map_err(StartError::from_error)?;
    sup.start_child(instance::child_spec(&tree, &entry))
        .await
        .map_err(StartError::from_error)?;
    let (watch_tree, watch_entry, watch_sup) = (tree.clone(), entry.clone(), sup.clone());
    tokio::spawn(async move {
        watch_sup.wait().await;
        watch_tree.subtree_exited(&watch_entry, &watch_sup);
    });
    Ok(StartOutcome::Started(sup.cell()))
}

/// A stable, build-independent fingerprint of options (FNV-1a over their debug form, without the
/// resume-related fields a restart changes).
fn fingerprint(options: &claude_protocol::ClaudeOptions) -> String {
    let mut o = options.clone();
    o.resume = None;
    o.continue_conversation = false;
    o.fork_session = false;
    o.session_id = None;
    o.resume_session_at = None;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{o:?}").bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Builds a [`ClaudeSupervisor`].
#[must_use]
pub struct ClaudeSupervisorBuilder {
    name: String,
    cli: Option<PathBuf>,
    sessions: Vec<SessionSpec>,
    store: Arc<dyn SessionStore>,
    max_sessions: Option<usize>,
    max_per_group: Option<usize>,
    launcher: Option<Arc<dyn Launcher>>,
    restart_wait: Duration,
    call_timeout: Duration,
    config_dir_root: Option<PathBuf>,
    failure_limit: Option<(usize, Duration)>,
    fleet: Option<FleetConfig>,
    gateway: Option<crate::GatewayConfig>,
    credential: Option<crate::Credential>,
    without_gateway: bool,
    warm_spares: Option<(usize, claude_protocol::ClaudeOptions)>,
}

impl std::fmt::Debug for ClaudeSupervisorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaudeSupervisorBuilder")
            .field("name", &self.name)
            .field("sessions", &self.sessions)
            .field("max_sessions", &self.max_sessions)
            .field("failure_limit", &self.failure_limit)
            .field("fleet", &self.fleet)
            .field("gateway", &self.gateway)
            .field("warm_spares", &self.warm_spares.as_ref().map(|(n, _)| n))
            .finish_non_exhaustive()
    }
}

impl ClaudeSupervisorBuilder {
    /// The tree's name, used in errors and traces (default `claude`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The CLI to run (default: found by [`claude_protocol::find_cli`]).
    pub fn cli_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.cli = Some(path.into());
        self
    }

    /// A static session, started with the tree, in the order added.
    pub fn session(mut self, spec: SessionSpec) -> Self {
        self.sessions.push(spec);
        self
    }

    /// Where sessions' records live (default: in memory). With a [`FileStore`](crate::FileStore),
    /// named sessions resume their conversations after the program restarts.
    pub fn store(mut self, store: impl SessionStore) -> Self {
        self.store = Arc::new(store);
        self
    }

    /// At most `n` sessions at once (running, restarting, hibernated and failed ones count).
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = Some(n);
        self
    }

    /// At most `n` sessions per group (see [`SessionSpec::group`]).
    pub fn max_sessions_per_group(mut self, n: usize) -> Self {
        self.max_per_group = Some(n);
        self
    }

    /// Where the CLIs run (default: locally).
    pub fn launcher(mut self, launcher: impl Launcher) -> Self {
        self.launcher = Some(Arc::new(launcher));
        self
    }

    /// How long a query waits for a restarting session to come back (default 30 s).
    pub fn restart_wait(mut self, wait: Duration) -> Self {
        self.restart_wait = wait;
        self
    }

    /// The bound on every internal call into one of the tree's actors (default 10 s).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Keeps `size` warm spare CLIs started with `options` (their spawn-time part: model, tools,
    /// settings, MCP config, environment…), so that a new session skips the CLI's start-up: a
    /// session whose spec's options match them, apart from what a claim sets (working
    /// directory, added directories, permission mode, system and appended prompt), takes a
    /// parked spare on its first start; any other, and every restart or wake-up (they resume a
    /// conversation, which no claim can), starts cold. The session's health
    /// (`instance.start`) says which path it took, and why.
    ///
    /// Spares count toward [`max_sessions`](Self::max_sessions) (a new session takes a parked
    /// spare's place before the limit refuses it), run in the tree's launcher and containment,
    /// are refilled in the background and stopped with the tree. With the credential gateway,
    /// each spare has a gateway token of its own, which the claiming session adopts (its budgets,
    /// its traffic, revoked with it). See `docs/warm-spares.md`.
    ///
    /// # Errors
    ///
    /// [`start`](Self::start) fails with [`SupervisorError::WarmSpares`] for a size of 0 or over
    /// [`claude_session::MAX_SPARES`], options that resume a conversation, or a tree with
    /// [`config_dir_per_session`](Self::config_dir_per_session) (a config dir per session is
    /// fixed at spawn: no spare could serve one).
    pub fn warm_spares(mut self, size: usize, options: claude_protocol::ClaudeOptions) -> Self {
        self.warm_spares = Some((size, options));
        self
    }

    /// Gives each session its own Claude config dir, `<root>/<name>` (isolation of several agents
    /// in one container).
    pub fn config_dir_per_session(mut self, root: impl Into<PathBuf>) -> Self {
        self.config_dir_root = Some(root.into());
        self
    }

    /// The tree gives up (stops every session and exits, a meltdown) when more than `limit`
    /// sessions fail within `period`. Default: never — a failed session fails alone.
    pub fn failed_sessions_limit(mut self, limit: usize, period: Duration) -> Self {
        self.failure_limit = Some((limit, period));
        self
    }

    /// Makes this supervisor a node of a fleet (see [`FleetConfig`]): each session is owned
    /// by one node at a time through its lease in the store, which must keep leases
    /// ([`PostgresStore`](crate::store::PostgresStore) for several machines). Sessions of a node
    /// that stops renewing its leases are taken over by the others. A static session another
    /// node owns is left to it.
    pub fn fleet(mut self, config: FleetConfig) -> Self {
        self.fleet = Some(config);
        self
    }

    /// Keeps the real API credential out of the sessions: the tree serves a credential gateway
    /// on loopback (see [`gateway`](crate::gateway)) and launches every CLI with the gateway's
    /// URL and a token of its own session instead of the credential. Without it, a tree with a
    /// [`credential`](Self::credential) gets a gateway with the default settings.
    pub fn gateway(mut self, config: crate::GatewayConfig) -> Self {
        self.gateway = Some(config);
        self
    }

    /// The tree's API credential. **The gateway is on by default with it**: the tree serves a
    /// credential gateway ([`GatewayConfig::new`](crate::GatewayConfig::new) to
    /// [`GatewayConfig::default_upstream`](crate::GatewayConfig::default_upstream): this
    /// process's `ANTHROPIC_BASE_URL`, else the Anthropic API) and no CLI ever sees the
    /// credential. For other gateway settings (budgets, timeouts, another upstream) pass a
    /// [`gateway`](Self::gateway) config instead, with the credential in it; giving both is a
    /// [`GatewayError::ConflictingCredentials`](crate::GatewayError::ConflictingCredentials).
    ///
    /// [`without_gateway`](Self::without_gateway) turns the gateway off: each CLI then gets the
    /// credential in its environment, where its tools can read it.
    pub fn credential(mut self, credential: crate::Credential) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Turns the gateway off for a tree with a [`credential`](Self::credential): each CLI gets
    /// it in its environment instead (`ANTHROPIC_API_KEY` for an API key, `ANTHROPIC_AUTH_TOKEN`
    /// for a bearer token) — readable by every tool the agent runs. The less safe choice, for a
    /// CLI that cannot reach this process (a remote launcher; see `docs/deployment-patterns.md`).
    pub fn without_gateway(mut self) -> Self {
        self.without_gateway = true;
        self
    }

    /// Starts the tree, then every static session (concurrently); returns once each static
    /// session is running or has failed. A static session that cannot start (a lost
    /// conversation, a CLI that fails every start) never stops the tree from starting: it is
    /// listed as `failed`.
    ///
    /// # Errors
    ///
    /// [`SupervisorError`]: a CLI that cannot be found, an invalid or duplicate session name,
    /// invalid intensity flags, an admission limit, the store (the tree is stopped again).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future mid-start stops what was started when the tree's last handle goes;
    /// sessions already started keep starting until then.
    pub async fn start(self) -> Result<ClaudeSupervisor, SupervisorError> {
        let cli = match self.cli.clone() {
            Some(cli) => cli,
            None => {
                claude_protocol::find_cli(None).map_err(|source| SupervisorError::CliNotFound {
                    supervisor: self.name.clone(),
                    source,
                })?
            }
        };
        if self.warm_spares.is_some() && self.config_dir_root.is_some() {
            return Err(SupervisorError::WarmSpares {
                supervisor: self.name.clone(),
                reason: "`config_dir_per_session` gives each session a config dir of its own, \
                    which is fixed when a CLI starts: no spare could serve a session"
                    .into(),
            });
        }
        let (events, _) = broadcast::channel(4096);
        let (fleet, lost) = match self.fleet {
            Some(config) => {
                if let Err(source) = contained("list_leases", || self.store.list_leases()).await {
                    return Err(SupervisorError::FleetUnsupported {
                        supervisor: self.name.clone(),
                        source,
                    });
                }
                let (fleet, lost) = fleet::Fleet::new(config);
                (Some(Arc::new(fleet)), Some(lost))
            }
            None => (None, None),
        };
        let gateway_config = match (self.gateway, &self.credential, self.without_gateway) {
            (Some(_), Some(_), _) => {
                return Err(SupervisorError::Gateway {
                    supervisor: self.name.clone(),
                    source: crate::GatewayError::ConflictingCredentials,
                });
            }
            (Some(config), None, _) => Some(config),
            (None, Some(credential), false) => Some(crate::GatewayConfig::new(
                crate::GatewayConfig::default_upstream(),
                credential.clone(),
            )),
            (None, _, _) => None,
        };
        let direct_credential = match (&gateway_config, self.without_gateway) {
            (None, true) => self.credential.clone(),
            _ => None,
        };
        let gateway = match gateway_config {
            Some(config) => Some(
                crate::gateway::Gateway::start(config, events.clone())
                    .await
                    .map_err(|source| SupervisorError::Gateway {
                        supervisor: self.name.clone(),
                        source,
                    })?,
            ),
            None => None,
        };
        let tree = Arc::new(Tree {
            name: self.name.clone(),
            cli,
            launcher: self.launcher,
            store: self.store,
            entries: DashMap::new(),
            leases: Leases::new(self.call_timeout),
            sessions: watch::channel(None).0,
            max_sessions: self.max_sessions.map(|n| (n, Arc::new(Semaphore::new(n)))),
            max_per_group: self.max_per_group,
            groups: DashMap::new(),
            events,
            restart_wait: self.restart_wait,
            call_timeout: self.call_timeout,
            config_dir_root: self.config_dir_root,
            failure_limit: self.failure_limit,
            failures: Mutex::new(VecDeque::new()),
            shutting_down: AtomicBool::new(false),
            root: watch::channel(None).0,
            down: watch::channel(None).0,
            fleet,
            gateway,
            direct_credential,
            spares: std::sync::OnceLock::new(),
        });

        let flags = SupervisorFlags::builder()
            .strategy(Strategy::OneForOne)
            .intensity(3)
            .period(Duration::from_secs(5))
            .build()
            .map_err(|source| SupervisorError::Flags {
                supervisor: tree.name.clone(),
                source,
            })?;
        let sessions_spec = {
            let slot = tree.sessions.clone();
            ChildSpec::builder("sessions")
                .kind(ChildKind::Supervisor)
                .start(move |args| {
                    let slot = slot.clone();
                    async move {
                        let flags = DynamicFlags::builder()
                            .build()
                            .map_err(StartError::from_error)?;
                        let sup = DynamicSupervisor::start_linked(
                            Some(format!("sessions-{}", uuid_like())),
                            flags,
                            args.supervisor().clone(),
                        )
                        .await
                        .map_err(StartError::from_error)?;
                        slot.send_replace(Some(sup.clone()));
                        Ok(StartOutcome::Started(sup.cell()))
                    }
                })
                .build()
                .map_err(|e| SupervisorError::Unavailable {
                    name: "sessions".into(),
                    reason: e.to_string(),
                })?
        };
        let root = Supervisor::start(None, flags, vec![tree.leases.child_spec(), sessions_spec])
            .await
            .map_err(|source| SupervisorError::RootStart {
                supervisor: tree.name.clone(),
                source,
            })?;
        tree.root.send_replace(Some(root.clone()));
        tokio::spawn(watch_root(Arc::downgrade(&tree), root.clone()));
        let supervisor = ClaudeSupervisor {
            inner: Arc::new(Inner { tree: tree.clone() }),
        };

        if let Some(lost) = lost {
            tokio::spawn(fleet::run(Arc::downgrade(&tree), lost));
        }
        let mut entries = Vec::new();
        for spec in self.sessions {
            match tree.insert(spec).await {
                Ok(entry) => entries.push(entry),
                Err(SupervisorError::OwnedElsewhere { name, owner }) => {
                    tracing::info!(session = %name, %owner, "a static session is owned by another node");
                }
                Err(e) => {
                    tree.stop("a static session was refused".into()).await;
                    return Err(e);
                }
            }
        }
        if let Some((size, options)) = self.warm_spares {
            // After the static sessions took their places: a spare never keeps one from them.
            if let Err(e) = start_spares(&tree, size, options) {
                tree.stop("the warm spares could not be set up".into())
                    .await;
                return Err(e);
            }
        }
        for entry in &entries {
            if let Err(e) = tree.start_subtree(entry).await {
                tree.stop("a static session could not be started".into())
                    .await;
                return Err(e);
            }
        }
        for entry in &entries {
            let mut view = entry.view.subscribe();
            let _ = view
                .wait_for(|v| {
                    matches!(
                        v.state,
                        SessionState::Running | SessionState::Failed | SessionState::Gone
                    )
                })
                .await;
        }
        Ok(supervisor)
    }
}

/// Starts the tree's warm spare pool: spares of `options` made into a session's config, holding
/// places of `max_sessions`; with the gateway, each with a token of its own, adopted by the
/// session that claims it and revoked when it retires unclaimed.
fn start_spares(
    tree: &Arc<Tree>,
    size: usize,
    options: claude_protocol::ClaudeOptions,
) -> Result<(), SupervisorError> {
    let template = instance::spare_template(tree, options)?;
    let mut pool = claude_session::SparePool::builder(template).size(size);
    if let Some((_, places)) = &tree.max_sessions {
        pool = pool.places(places.clone());
    }
    if tree.gateway.is_some() {
        let weak = Arc::downgrade(tree);
        let issue = weak.clone();
        let adopt = weak.clone();
        pool = pool
            .spare_env(crate::gateway::API_KEY_ENV, move |spare| {
                issue
                    .upgrade()
                    .and_then(|t| Some(t.gateway.as_ref()?.issue_spare(spare)))
                    .map(|token| token.expose().into())
                    .unwrap_or_default()
            })
            .on_claim(move |spare, session| {
                if let Some(tree) = adopt.upgrade()
                    && let Some(gateway) = &tree.gateway
                {
                    gateway.adopt(spare, session);
                }
            })
            .on_retire(move |spare| {
                if let Some(tree) = weak.upgrade()
                    && let Some(gateway) = &tree.gateway
                {
                    gateway.revoke(spare);
                }
            });
    }
    let pool = pool.build().map_err(|e| SupervisorError::WarmSpares {
        supervisor: tree.name.clone(),
        reason: e.to_string(),
    })?;
    let _ = tree.spares.set(pool);
    Ok(())
}

/// Awaits an admin call's task; a task that panicked (a bug) is reported, not propagated.
async fn join<T>(
    task: tokio::task::JoinHandle<Result<T, SupervisorError>>,
    call: &str,
) -> Result<T, SupervisorError> {
    task.await.unwrap_or_else(|join| {
        Err(SupervisorError::Unavailable {
            name: String::new(),
            reason: format!("the {call} task failed: {join}"),
        })
    })
}

/// A short unique suffix for actor names (ractor's registry is process-global).
fn uuid_like() -> String {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// When the root exits on its own, every session is gone and every waiting caller is told why.
async fn watch_root(tree: Weak<Tree>, root: SupervisorRef) {
    root.wait().await;
    let Some(tree) = tree.upgrade() else { return };
    let shut_down = tree.shutting_down.load(Ordering::SeqCst);
    let reason = if shut_down {
        tree.down
            .borrow()
            .clone()
            .unwrap_or_else(|| "the supervisor was shut down".into())
    } else {
        "the supervisor's root exited: reached max restart intensity".to_owned()
    };
    if !shut_down {
        tracing::error!(supervisor = %tree.name, %reason, "supervision tree exited");
        tree.emit(
            None,
            SupervisorEventKind::Meltdown {
                reason: reason.clone(),
            },
        );
    }
    tree.stop(reason).await;
}

struct Inner {
    tree: Arc<Tree>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle to the tree is gone: stop it (every session by its shutdown recipe).
        self.tree.shutting_down.store(true, Ordering::SeqCst);
        if let Some(root) = self.tree.root.borrow().clone() {
            root.cell().stop(Some("shutdown:supervisor dropped".into()));
        }
    }
}

/// A running tree of named Claude Code sessions. Cheap to clone; dropping the last clone stops
/// the tree.
///
/// # Examples
///
/// ```no_run
/// use claude_supervisor::{ClaudeOptions, ClaudeSupervisor, FileStore, SessionSpec};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let tree = ClaudeSupervisor::builder()
///     .store(FileStore::open("/var/lib/agents")?)
///     .session(SessionSpec::new("reviewer", ClaudeOptions::builder().model("sonnet").build()?))
///     .start()
///     .await?;
/// let reviewer = tree.session("reviewer").expect("started with the tree");
/// let review = reviewer.ask("Review this diff: ...").await?;
/// println!("{}", review.text());
/// tree.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClaudeSupervisor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ClaudeSupervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaudeSupervisor")
            .field("name", &self.inner.tree.name)
            .finish_non_exhaustive()
    }
}

impl ClaudeSupervisor {
    /// A builder with the defaults: an in-memory store, no limits, each session with its own
    /// intensity of 5 restarts in 30 s.
    pub fn builder() -> ClaudeSupervisorBuilder {
        ClaudeSupervisorBuilder {
            name: "claude".into(),
            cli: None,
            sessions: Vec::new(),
            store: Arc::new(MemoryStore::new()),
            max_sessions: None,
            max_per_group: None,
            launcher: None,
            restart_wait: Duration::from_secs(30),
            call_timeout: Duration::from_secs(10),
            config_dir_root: None,
            failure_limit: None,
            fleet: None,
            gateway: None,
            credential: None,
            without_gateway: false,
            warm_spares: None,
        }
    }

    fn tree(&self) -> &Arc<Tree> {
        &self.inner.tree
    }

    /// Starts a session at run time and returns its handle once its first CLI is ready.
    ///
    /// If the store has a record of this name, the session resumes that conversation.
    ///
    /// # Errors
    ///
    /// [`SupervisorError::InvalidName`], [`SupervisorError::AlreadyExists`], an admission limit
    /// ([`SupervisorError::TooManySessions`], [`SupervisorError::GroupFull`]), the store's
    /// error, and the first start's error ([`SupervisorError::Start`], `Config`, `Panicked`,
    /// …). A failed start keeps nothing: the name and its admission place are free again.
    ///
    /// # Cancel safety
    ///
    /// The start runs in a task of its own and completes (or rolls back) whether or not the
    /// future is polled to its end.
    pub async fn start_session(&self, spec: SessionSpec) -> Result<SessionHandle, SupervisorError> {
        join(self.spawn_start(spec), "start").await
    }

    /// Takes the name at once (synchronously) and runs the rest of the start in a task.
    fn spawn_start(
        &self,
        spec: SessionSpec,
    ) -> tokio::task::JoinHandle<Result<SessionHandle, SupervisorError>> {
        start_task(self.tree().clone(), spec)
    }

    /// Starts a session owned by the returned guard: when the guard is dropped (its owner
    /// returned, was cancelled or panicked), the session is terminated by the normal recipe, its
    /// conversation kept in the store. See [`OwnedSession`].
    ///
    /// # Errors
    ///
    /// As [`start_session`](Self::start_session).
    ///
    /// # Cancel safety
    ///
    /// As [`start_session`](Self::start_session); a session whose start completes after the
    /// future was dropped has no owner and is terminated at once.
    pub async fn start_owned(&self, spec: SessionSpec) -> Result<OwnedSession, SupervisorError> {
        let (tree, start) = (self.clone(), self.spawn_start(spec));
        // The guard is made inside a task: if the caller goes away meanwhile, the guard is
        // dropped with the task's result, and the session with it.
        let task = tokio::spawn(async move {
            let handle = join(start, "start").await?;
            Ok(OwnedSession::new(tree, handle))
        });
        join(task, "start").await
    }

    /// Stops a session for good (by its shutdown recipe) and forgets it. Its record stays in the
    /// store, so starting the same name later resumes its conversation (see
    /// [`forget_session`](Self::forget_session) to remove it too).
    ///
    /// In a fleet it works from any node: for a session another node runs (or an orphan whose
    /// node died), it revokes the session's lease in the store. From that moment the owner's
    /// writes for it are refused (a turn that finishes there is not stored, and its caller is
    /// told so) and nobody takes it over; the owner stops its CLI at its next heartbeat.
    ///
    /// # Errors
    ///
    /// [`SupervisorError::NotFound`] (in a fleet: no node holds it); the tree's or the store's
    /// error.
    ///
    /// # Cancel safety
    ///
    /// The termination runs in a task of its own and completes whether or not the future is
    /// polled to its end.
    pub async fn terminate_session(&self, name: &str) -> Result<(), SupervisorError> {
        let tree = self.tree().clone();
        let name = name.to_owned();
        let task = tokio::spawn(async move {
            let Some(entry) = tree.entry(&name) else {
                // In a fleet, a session another node runs (or nobody, its owner dead) ends by
                // its lease: revoked here, its owner is fenced out and stops it.
                return match &tree.fleet {
                    Some(fleet) => fleet.revoke(&tree, &name).await,
                    None => Err(SupervisorError::NotFound { name }),
                };
            };
            tree.stop_subtree(&entry, Ending::Terminated).await?;
            entry.view.send_modify(|v| {
                v.state = SessionState::Gone;
                v.reason = Some("terminated".into());
            });
            // Its last record is in the store when this returns (a `forget_session` that
            // deletes it next is never overtaken by a late write).
            if tokio::time::timeout(RECORDS_AT_STOP, record_saved(&entry))
                .await
                .is_err()
            {
                tracing::warn!(session = %name, "the store did not take the session's last record in time");
            }
            tree.remove(&name);
            tree.emit(Some(&name), SupervisorEventKind::Terminated);
            Ok(())
        });
        task.await.unwrap_or_else(|join| {
            Err(SupervisorError::Unavailable {
                name: String::new(),
                reason: format!("the terminate task failed: {join}"),
            })
        })
    }

    /// Terminates the session if it runs, and removes its record from the store: its
    /// conversation is forgotten.
    ///
    /// # Errors
    ///
    /// The tree's or the store's error. Forgetting an unknown name is not an error.
    ///
    /// # Cancel safety
    ///
    /// As for [`terminate_session`](Self::terminate_session); the store's delete may be dropped.
    pub async fn forget_session(&self, name: &str) -> Result<(), SupervisorError> {
        match self.terminate_session(name).await {
            Ok(()) | Err(SupervisorError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let store = self.tree().store.clone();
        contained("delete", || store.delete(name)).await?;
        Ok(())
    }

    /// Restarts a session in a new CLI process that resumes its conversation: a running,
    /// restarting or hibernated one through its keeper, a failed one in a new subtree (with a
    /// fresh restart intensity).
    ///
    /// # Errors
    ///
    /// [`SupervisorError::NotFound`]; the new instance's start error.
    ///
    /// # Cancel safety
    ///
    /// The restart runs in a task of its own and completes whether or not the future is polled
    /// to its end.
    pub async fn restart_session(&self, name: &str) -> Result<SessionHandle, SupervisorError> {
        let tree = self.tree().clone();
        let name = name.to_owned();
        let task = tokio::spawn(async move {
            let entry = tree
                .entry(&name)
                .ok_or_else(|| SupervisorError::NotFound { name: name.clone() })?;
            let handle = SessionHandle::new(tree.clone(), entry.clone());
            if entry.state() == SessionState::Failed || entry.subtree().is_none() {
                let _ = tree.stop_subtree(&entry, Ending::Restarting).await;
                entry.view.send_modify(|v| {
                    v.state = SessionState::Restarting;
                    v.reason = None;
                    v.lost = None;
                });
                let first = entry.arm_first();
                tree.start_subtree(&entry).await?;
                first.await.unwrap_or_else(|_| {
                    Err(SupervisorError::Unavailable {
                        name: name.clone(),
                        reason: "the restart was abandoned".into(),
                    })
                })?;
            } else {
                handle.restart_instance().await?;
            }
            Ok(handle)
        });
        task.await.unwrap_or_else(|join| {
            Err(SupervisorError::Unavailable {
                name: String::new(),
                reason: format!("the restart task failed: {join}"),
            })
        })
    }

    /// The handle of a session, if one of this name exists. The handle stays valid across
    /// restarts and hibernation.
    pub fn session(&self, name: &str) -> Option<SessionHandle> {
        let tree = self.tree();
        tree.entry(name)
            .map(|entry| SessionHandle::new(tree.clone(), entry))
    }

    /// The node of the fleet that owns `name` by the store's leases (this node's own id for a
    /// session it runs; `None` when nobody holds it). Without a fleet: this tree's name if it
    /// runs the session.
    ///
    /// # Errors
    ///
    /// The store's error.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe (a read).
    pub async fn owner_of(&self, name: &str) -> Result<Option<String>, SupervisorError> {
        let tree = self.tree();
        match &tree.fleet {
            Some(fleet) => fleet.owner_of(tree, name).await,
            None => Ok(tree.entry(name).map(|_| tree.name.clone())),
        }
    }

    /// Every session of the fleet with its owner, from the store's leases (in name order): the
    /// fleet-wide list, from any node. Without a fleet: this tree's sessions, owned by it.
    ///
    /// # Errors
    ///
    /// The store's error.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe (a read).
    pub async fn fleet_sessions(&self) -> Result<Vec<FleetSession>, SupervisorError> {
        let tree = self.tree();
        match &tree.fleet {
            Some(_) => fleet::fleet_sessions(tree).await,
            None => Ok(self
                .list_sessions()
                .into_iter()
                .map(|s| FleetSession {
                    name: s.name,
                    owner: tree.name.clone(),
                    expired: false,
                    token: 0,
                })
                .collect()),
        }
    }

    /// The tree's warm spare pool, if it keeps one ([`ClaudeSupervisorBuilder::warm_spares`]):
    /// its [`stats`](claude_session::SparePool::stats), and [`ready`](claude_session::SparePool::ready)
    /// to wait until its spares are parked.
    pub fn warm_spares(&self) -> Option<claude_session::SparePool> {
        self.tree().spares.get().cloned()
    }

    /// Where the credential gateway listens (`127.0.0.1`, an ephemeral port), if the tree has
    /// one ([`ClaudeSupervisorBuilder::gateway`]).
    pub fn gateway_addr(&self) -> Option<std::net::SocketAddr> {
        self.tree().gateway.as_ref().map(|g| g.addr())
    }

    /// The credential gateway's traffic counters (per session, and the requests it refused), if
    /// the tree has one. Answers from counters: it never waits.
    pub fn gateway_stats(&self) -> Option<crate::GatewayStats> {
        self.tree().gateway.as_ref().map(|g| g.stats())
    }

    /// This node's id in its fleet, if it is in one.
    pub fn node_id(&self) -> Option<&str> {
        self.tree().fleet.as_ref().map(|f| f.node_id())
    }

    /// A point-in-time list of the sessions, in name order. Answers from published state: it
    /// never waits on a session.
    pub fn list_sessions(&self) -> Vec<SessionInfo> {
        let mut list: Vec<SessionInfo> = self
            .tree()
            .entries
            .iter()
            .map(|slot| health::info(&slot.entry, self.tree().fleet.as_ref().map(|f| f.node_id())))
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Subscribes to the tree's events: every session's lifecycle events, starts, restarts,
    /// failures, lost conversations, hibernations, terminations and meltdowns.
    pub fn events(&self) -> broadcast::Receiver<SupervisorEvent> {
        self.tree().events.subscribe()
    }

    /// A health report of the whole tree, from published state plus each running instance's
    /// own snapshot (each asked concurrently, each bounded by a short timeout).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn health(&self) -> TreeHealth {
        health::collect(self.tree()).await
    }

    /// A one-turn connectivity check: runs `prompt` in a throw-away session with the options of
    /// `name` (no resume, nothing persisted), and returns how long the turn took.
    ///
    /// # Errors
    ///
    /// [`SupervisorError::NotFound`]; the throw-away session's error.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the throw-away session (see [`claude_session::query`]).
    pub async fn ping(&self, name: &str) -> Result<Duration, SupervisorError> {
        let tree = self.tree();
        let entry = tree
            .entry(name)
            .ok_or_else(|| SupervisorError::NotFound { name: name.into() })?;
        let mut o = entry.spec.options.clone();
        o.resume = None;
        o.continue_conversation = false;
        o.session_id = None;
        o.no_session_persistence = true;
        if let Some(gateway) = &tree.gateway {
            let token = gateway
                .token(name)
                .ok_or_else(|| SupervisorError::NotFound { name: name.into() })?;
            gateway.apply(&mut o, Some(&token));
        }
        let ping_name = format!("{name}.ping");
        let mut builder = SessionConfig::builder(ping_name.clone(), tree.cli.clone()).options(o);
        if let Some(launcher) = &tree.launcher {
            builder = builder.launcher_arc(launcher.clone());
        }
        let config = builder.build().map_err(|source| SupervisorError::Config {
            name: ping_name,
            source,
        })?;
        let started = Instant::now();
        let out = claude_session::query("ping", config).await?;
        if out.is_error() {
            return Err(SupervisorError::Unavailable {
                name: name.into(),
                reason: format!("the ping turn failed: {}", out.result.errors().join("; ")),
            });
        }
        Ok(started.elapsed())
    }

    /// Stops the tree: every session concurrently, each by its shutdown recipe; returns when
    /// every CLI process has exited and been reaped.
    ///
    /// # Cancel safety
    ///
    /// The shutdown runs in a task of its own and completes even if the future is dropped.
    pub async fn shutdown(&self) {
        let tree = self.tree().clone();
        let _ = tokio::spawn(async move { tree.stop("the supervisor was shut down".into()).await })
            .await;
    }

    /// Why the tree has exited (shut down, or gave up), or `None` while it runs. Answers from
    /// published state: it never waits.
    pub fn exit_reason(&self) -> Option<String> {
        self.tree().down.borrow().clone()
    }

    /// Resolves once the tree has exited, with the reason (shut down, or gave up).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn wait(&self) -> String {
        let mut down = self.tree().down.subscribe();
        match down.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => "the supervisor is gone".into(),
        }
    }
}

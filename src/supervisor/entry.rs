//! A named session's entry in the tree's one map of names, and what it publishes.
//!
//! The entry holds what outlives the session's actors: its spec, its ledger (session id and
//! cost totals, shared with the running `Session` by design), and two `watch` channels the
//! session's keeper writes and everyone else reads: the [`View`] (state, generation, pid,
//! activity) and the keeper's own address. Admission permits live beside the entry in the map,
//! so removing the name frees its place.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use claude_session::SessionLedger;
use ractor::ActorRef;
use serde::Serialize;
use supervision::SupervisorRef;
use tokio::sync::{OwnedSemaphorePermit, oneshot, watch};

use super::keeper::KeeperMsg;
use super::spec::SessionSpec;

/// Where a named session is in its life: the one status type of the facade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionState {
    /// Its first CLI is starting.
    Starting,
    /// A CLI is running and ready for turns.
    Running,
    /// Its CLI died or is being replaced; a new one is on the way.
    Restarting,
    /// Hibernated after its idle timeout: no process; the next query wakes it.
    Hibernated,
    /// It exhausted its own restart intensity (or its conversation was lost under the `Fail`
    /// policy); [`restart_session`](crate::ClaudeSupervisor::restart_session) revives it.
    Failed,
    /// Terminated, or its tree is gone.
    Gone,
}

/// What the keeper publishes about its session.
#[derive(Clone, Debug)]
pub(crate) struct View {
    pub(crate) state: SessionState,
    /// Why the session is failed or gone; else the last error it met, if any.
    pub(crate) reason: Option<String>,
    /// Instances started so far (1 for the first, +1 per restart or wake-up).
    pub(crate) generation: u64,
    pub(crate) pid: Option<u32>,
    pub(crate) up_since: Option<SystemTime>,
    pub(crate) last_activity: SystemTime,
    pub(crate) restarts: u64,
    pub(crate) busy: bool,
    /// The conversation the CLI no longer had, when that failed the session.
    pub(crate) lost: Option<String>,
    /// The node of the fleet that took the session over from this one.
    pub(crate) moved_to: Option<String>,
}

impl View {
    fn new() -> Self {
        Self {
            state: SessionState::Starting,
            reason: None,
            generation: 0,
            pid: None,
            up_since: None,
            last_activity: SystemTime::now(),
            restarts: 0,
            busy: false,
            lost: None,
            moved_to: None,
        }
    }
}

/// Why the tree itself is ending a session's subtree (so that its exit is not a failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    Terminated,
    Restarting,
    Failing,
}

/// The outcome of a session's very first launch, for whoever is waiting in `start_session`.
pub(crate) type FirstOutcome = Result<(), super::SupervisorError>;

pub(crate) struct Entry {
    pub(crate) spec: SessionSpec,
    pub(crate) ledger: SessionLedger,
    pub(crate) created_at_ms: std::sync::atomic::AtomicU64,
    pub(crate) view: watch::Sender<View>,
    pub(crate) keeper: watch::Sender<Option<ActorRef<KeeperMsg>>>,
    pub(crate) subtree: watch::Sender<Option<SupervisorRef>>,
    /// Set by the tree before it stops the subtree on purpose; read by the subtree's exit watcher.
    pub(crate) ending: watch::Sender<Option<Ending>>,
    /// Taken once, by the first launch (success or failure).
    pub(crate) first: Mutex<Option<oneshot::Sender<FirstOutcome>>>,
    /// Transcript entries on their way to the store, across the session's instances.
    pub(crate) backlog: Arc<super::mirror::Backlog>,
    /// The session's record on its way to the store: the latest wins (see `Tree::save`). The
    /// number counts the records asked for; the saver publishes the last one it finished.
    pub(crate) record: watch::Sender<(u64, Option<crate::store::SessionRecord>)>,
    pub(crate) saved: watch::Sender<u64>,
    pub(crate) saver: std::sync::atomic::AtomicBool,
}

impl Entry {
    pub(crate) fn new(spec: SessionSpec, ledger: SessionLedger, created_at_ms: u64) -> Arc<Self> {
        Arc::new(Self {
            spec,
            ledger,
            created_at_ms: std::sync::atomic::AtomicU64::new(created_at_ms),
            view: watch::channel(View::new()).0,
            keeper: watch::channel(None).0,
            subtree: watch::channel(None).0,
            ending: watch::channel(None).0,
            first: Mutex::new(None),
            backlog: Arc::default(),
            record: watch::channel((0, None)).0,
            saved: watch::channel(0).0,
            saver: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.spec.name
    }

    pub(crate) fn state(&self) -> SessionState {
        self.view.borrow().state
    }

    pub(crate) fn keeper(&self) -> Option<ActorRef<KeeperMsg>> {
        self.keeper.borrow().clone()
    }

    pub(crate) fn subtree(&self) -> Option<SupervisorRef> {
        self.subtree.borrow().clone()
    }

    /// Arms the first-launch report; returns where it will arrive.
    pub(crate) fn arm_first(&self) -> oneshot::Receiver<FirstOutcome> {
        let (tx, rx) = oneshot::channel();
        *self.first.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }

    pub(crate) fn report_first(&self, outcome: FirstOutcome) {
        if let Some(tx) = self.first.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(outcome);
        }
    }
}

/// The map's value: the entry and the admission places it holds (freed when the name goes).
pub(crate) struct Slot {
    pub(crate) entry: Arc<Entry>,
    pub(crate) _permits: Vec<OwnedSemaphorePermit>,
}

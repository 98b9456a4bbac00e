//! The tree's health report: counts from published state, each instance's own snapshot.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use claude_session::{CostTotals, HealthSnapshot};
use serde::Serialize;

use std::sync::Arc;

use super::entry::{Entry, SessionState};
use super::{SessionHandle, Tree};

/// One session in [`ClaudeSupervisor::list_sessions`](crate::ClaudeSupervisor::list_sessions).
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The name.
    pub name: String,
    /// Its state.
    pub state: SessionState,
    /// Why it is failed or gone, or the last error it met.
    pub reason: Option<String>,
    /// Its group, if any.
    pub group: Option<String>,
    /// Its conversation's latest session id.
    pub session_id: Option<String>,
    /// The newest instance's generation (0 before the first start).
    pub generation: u64,
    /// Restarts of its CLI after exits (not counting wake-ups).
    pub restarts: u64,
    /// The running CLI's pid.
    pub pid: Option<u32>,
    /// Milliseconds since the running instance came up.
    pub uptime_ms: Option<u64>,
    /// When the session last had activity (a query, a turn), in ms since the Unix epoch.
    pub last_activity_ms: u64,
    /// Whether a turn is running.
    pub busy: bool,
    /// Turns finished, across all its processes.
    pub turns: u64,
    /// The fleet node that runs it (this node's id), when the tree is a fleet node.
    pub node: Option<String>,
}

/// One session in a [`TreeHealth`].
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct SessionReport {
    /// The session, as listed.
    #[serde(flatten)]
    pub info: SessionInfo,
    /// The running instance's snapshot (none when not running, or when it did not answer
    /// within the report's bound).
    pub instance: Option<HealthSnapshot>,
    /// Cost totals across its processes.
    pub cost: CostTotals,
    /// Resident memory of everything the running instance started (its containment), or of
    /// the CLI alone where nothing better is known.
    pub memory_bytes: Option<u64>,
}

/// A point-in-time report of the whole tree, serialisable with serde.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct TreeHealth {
    /// The tree's name.
    pub supervisor: String,
    /// Whether the tree is running; if not, why it exited.
    pub down: Option<String>,
    /// Sessions, in name order.
    pub sessions: Vec<SessionReport>,
    /// All sessions.
    pub total: usize,
    /// Sessions running now.
    pub running: usize,
    /// Sessions starting for the first time.
    pub starting: usize,
    /// Sessions restarting.
    pub restarting: usize,
    /// Sessions hibernated.
    pub hibernated: usize,
    /// Sessions failed.
    pub failed: usize,
    /// Restarts of all sessions' CLIs.
    pub restarts: u64,
    /// Turns finished, all sessions.
    pub turns: u64,
    /// Resident memory of all running sessions that reported it.
    pub memory_bytes: u64,
    /// Cost totals of all sessions.
    pub cost: CostTotals,
    /// In a fleet: every session of the fleet with its owner, and the live nodes (from the
    /// store's leases; `sessions` above are this node's own).
    pub fleet: Option<super::fleet::FleetHealth>,
    /// The warm spares, if the tree keeps any: parked, launching, claimed, died, misses.
    pub spares: Option<claude_session::SpareStats>,
}

fn ms_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(super) fn info(entry: &Entry, node: Option<&str>) -> SessionInfo {
    let view = entry.view.borrow();
    SessionInfo {
        name: entry.name().to_owned(),
        state: view.state,
        reason: view.reason.clone(),
        group: entry.spec.group.clone(),
        session_id: entry.ledger.session_id(),
        generation: view.generation,
        restarts: view.restarts,
        pid: view.pid,
        uptime_ms: view
            .up_since
            .and_then(|t| t.elapsed().ok())
            .map(|d| d.as_millis() as u64),
        last_activity_ms: ms_since_epoch(view.last_activity),
        busy: view.busy,
        turns: entry.ledger.totals().turns,
        node: node.map(str::to_owned),
    }
}

/// How long the report waits for one instance's own snapshot.
const SNAPSHOT_BOUND: Duration = Duration::from_millis(250);

pub(super) async fn collect(tree: &Arc<Tree>) -> TreeHealth {
    let fleet = async {
        match &tree.fleet {
            Some(fleet) => Some(super::fleet::health(tree, fleet).await),
            None => None,
        }
    };
    let entries: Vec<_> = tree.entries.iter().map(|s| s.entry.clone()).collect();
    let reports = futures::future::join(
        fleet,
        futures::future::join_all(entries.into_iter().map(|entry| async move {
            let info = info(&entry, tree.fleet.as_ref().map(|f| f.node_id()));
            let instance = if info.state == SessionState::Running {
                let handle = SessionHandle::new(tree.clone(), entry.clone());
                tokio::time::timeout(SNAPSHOT_BOUND, handle.health())
                    .await
                    .ok()
                    .flatten()
            } else {
                None
            };
            SessionReport {
                cost: entry.ledger.totals(),
                memory_bytes: instance.as_ref().and_then(|i| i.rss_bytes),
                info,
                instance,
            }
        })),
    )
    .await;
    let (fleet, mut sessions) = reports;
    sessions.sort_by(|a, b| a.info.name.cmp(&b.info.name));
    let count = |state: SessionState| sessions.iter().filter(|s| s.info.state == state).count();
    let mut cost = CostTotals::default();
    for s in &sessions {
        cost.add(&s.cost);
    }
    TreeHealth {
        supervisor: tree.name.clone(),
        down: tree.down.borrow().clone(),
        total: sessions.len(),
        running: count(SessionState::Running),
        starting: count(SessionState::Starting),
        restarting: count(SessionState::Restarting),
        hibernated: count(SessionState::Hibernated),
        failed: count(SessionState::Failed),
        restarts: sessions.iter().map(|s| s.info.restarts).sum(),
        turns: sessions.iter().map(|s| s.info.turns).sum(),
        memory_bytes: sessions.iter().filter_map(|s| s.memory_bytes).sum(),
        sessions,
        cost,
        fleet,
        spares: tree.spares.get().map(claude_session::SparePool::stats),
    }
}

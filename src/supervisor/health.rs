//! The tree's health report.

use claude_session::{CostTotals, HealthSnapshot};
use serde::Serialize;
use supervision::SupervisorRef;

use super::Shared;
use super::slot::SessionState;

/// One session in [`ClaudeSupervisor::list_sessions`](crate::ClaudeSupervisor::list_sessions).
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The name.
    pub name: String,
    /// Its state.
    pub state: SessionState,
    /// Its group, if any.
    pub group: Option<String>,
    /// Its conversation's latest session id.
    pub session_id: Option<String>,
    /// The generation of the running instance.
    pub generation: Option<u64>,
}

/// One session in a [`TreeHealth`].
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct SessionReport {
    /// The session, as listed.
    #[serde(flatten)]
    pub info: SessionInfo,
    /// The running instance's snapshot (none when hibernated, restarting or gone).
    pub instance: Option<HealthSnapshot>,
    /// Cost totals across its processes.
    pub cost: CostTotals,
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
    /// Sessions running now.
    pub running: usize,
    /// Sessions hibernated.
    pub hibernated: usize,
    /// Sessions starting or restarting.
    pub restarting: usize,
    /// Restarts the tree has made (its restart log).
    pub restarts: usize,
    /// Restarts within the current intensity window.
    pub restarts_in_window: usize,
    /// Meltdowns (0, or 1 once the tree melted down).
    pub meltdowns: usize,
    /// Cost totals of all sessions.
    pub cost: CostTotals,
}

pub(super) async fn collect(shared: &Shared, root: &SupervisorRef) -> TreeHealth {
    let slots: Vec<_> = shared.slots.iter().map(|s| s.value().clone()).collect();
    let mut sessions = Vec::with_capacity(slots.len());
    let mut cost = CostTotals::default();
    for slot in slots {
        let instance = match slot.current() {
            Some(session) => session.health().await.ok(),
            None => None,
        };
        let totals = slot.ledger.totals();
        cost.add(&totals);
        sessions.push(SessionReport {
            info: SessionInfo {
                name: slot.name().to_owned(),
                state: slot.reported_state(),
                group: slot.spec.group.clone(),
                session_id: slot.ledger.session_id(),
                generation: shared.registry.lookup(slot.name()).map(|r| r.generation),
            },
            instance,
            cost: totals,
        });
    }
    sessions.sort_by(|a, b| a.info.name.cmp(&b.info.name));
    let count = |state: SessionState| sessions.iter().filter(|s| s.info.state == state).count();
    let down = shared.down.borrow().clone();
    let snapshot = root.inspect().await.ok();
    TreeHealth {
        supervisor: shared.name.clone(),
        meltdowns: usize::from(down.as_deref().is_some_and(|d| d.contains("melted down"))),
        down,
        running: count(SessionState::Running),
        hibernated: count(SessionState::Hibernated),
        restarting: count(SessionState::Restarting) + count(SessionState::Starting),
        restarts: snapshot.as_ref().map_or(0, |s| s.restart_log.len()),
        restarts_in_window: snapshot.as_ref().map_or(0, |s| s.restarts_in_window),
        sessions,
        cost,
    }
}

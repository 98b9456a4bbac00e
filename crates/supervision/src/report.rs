//! Supervisor reports as `tracing` events (item O1).
//!
//! Every event has target [`TARGET`] and the fields `supervisor`, `child_id`, `restart_type`,
//! `reason` and `context`; `context` is one of the constants below.

use crate::child::{ChildId, RestartType};

/// The `tracing` target of every supervisor report.
pub const TARGET: &str = "supervision";
/// A child instance started (first start or restart).
pub const CHILD_STARTED: &str = "child_started";
/// A child exited by itself (not stopped by its supervisor).
pub const CHILD_TERMINATED: &str = "child_terminated";
/// A restart was decided and counted.
pub const CHILD_RESTARTING: &str = "child_restarting";
/// A start function failed.
pub const START_ERROR: &str = "start_error";
/// A child did not stop within its shutdown timeout and was killed.
pub const SHUTDOWN_ERROR: &str = "shutdown_error";
/// The supervisor shuts down: a meltdown or an auto-shutdown.
pub const SHUTDOWN: &str = "shutdown";
/// The reason of a meltdown report.
pub const MELTDOWN_REASON: &str = "reached max restart intensity";

fn rt(r: RestartType) -> &'static str {
    match r {
        RestartType::Permanent => "permanent",
        RestartType::Transient => "transient",
        RestartType::Temporary => "temporary",
    }
}

pub(crate) fn started(sup: &str, id: &ChildId, r: RestartType, generation: u64, actor: &str) {
    tracing::info!(target: TARGET, supervisor = sup, child_id = %id, restart_type = rt(r),
        reason = "", context = CHILD_STARTED, generation, actor_id = actor, "child started");
}

pub(crate) fn terminated(sup: &str, id: &ChildId, r: RestartType, reason: &str, normal: bool) {
    if normal {
        tracing::info!(target: TARGET, supervisor = sup, child_id = %id, restart_type = rt(r),
            reason, context = CHILD_TERMINATED, normal, "child exited");
    } else {
        tracing::warn!(target: TARGET, supervisor = sup, child_id = %id, restart_type = rt(r),
            reason, context = CHILD_TERMINATED, normal, "child exited");
    }
}

pub(crate) fn restarting(sup: &str, id: &ChildId, r: RestartType, reason: &str, restarts: u64) {
    tracing::info!(target: TARGET, supervisor = sup, child_id = %id, restart_type = rt(r),
        reason, context = CHILD_RESTARTING, restarts, "restarting child");
}

pub(crate) fn start_error(sup: &str, id: &ChildId, r: RestartType, reason: &str) {
    tracing::error!(target: TARGET, supervisor = sup, child_id = %id, restart_type = rt(r),
        reason, context = START_ERROR, "child failed to start");
}

pub(crate) fn shutdown_error(sup: &str, id: &ChildId, r: RestartType, reason: &str) {
    tracing::error!(target: TARGET, supervisor = sup, child_id = %id, restart_type = rt(r),
        reason, context = SHUTDOWN_ERROR, "child did not stop in time");
}

pub(crate) fn shutdown(sup: &str, id: &ChildId, r: RestartType, reason: &str) {
    tracing::error!(target: TARGET, supervisor = sup, child_id = %id, restart_type = rt(r),
        reason, context = SHUTDOWN, "supervisor shutting down");
}

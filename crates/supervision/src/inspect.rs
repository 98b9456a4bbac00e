//! What a supervisor tells about its children: `which_children`, `count_children`, `inspect`.

use ractor::ActorCell;
use serde::{Deserialize, Serialize};

use crate::child::{ChildId, ChildKind, RestartType};
use crate::flags::Strategy;

/// A child's status, in [`ChildInfo`] (`which_children`) and in [`ChildSnapshot`] (`inspect`).
/// Serialised in snake_case: `"running"`, `"restarting"`, `"not_running"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChildStatus {
    /// Running (its actor is [`ChildInfo::cell`], and [`ChildSnapshot::actor_id`]).
    Running,
    /// A restart was decided and is under way (backoff or a failed attempt being retried).
    Restarting,
    /// The spec is kept with no running instance.
    NotRunning,
}

/// One row of `which_children`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChildInfo {
    /// The child id.
    pub id: ChildId,
    /// Running, restarting or not running.
    pub status: ChildStatus,
    /// The running instance: `Some` exactly when `status` is [`ChildStatus::Running`].
    pub cell: Option<ActorCell>,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// The restart type.
    pub restart: RestartType,
    /// The generation of the current (or last) instance; 0 if never started.
    pub generation: u64,
}

/// The answer of `count_children` (OTP's `count_children`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChildCounts {
    /// All child specs, running or not.
    pub specs: usize,
    /// Running children.
    pub active: usize,
    /// Specs of kind supervisor.
    pub supervisors: usize,
    /// Specs of kind worker.
    pub workers: usize,
}

/// One child in a [`SupervisorSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChildSnapshot {
    /// The child id.
    pub id: ChildId,
    /// Its status.
    pub status: ChildStatus,
    /// The running actor's id: `Some` exactly when `status` is [`ChildStatus::Running`].
    pub actor_id: Option<String>,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// The restart type.
    pub restart: RestartType,
    /// Whether it is significant.
    pub significant: bool,
    /// The generation of the current (or last) instance.
    pub generation: u64,
    /// Restarts of this child decided by the supervisor.
    pub restarts: u64,
}

/// One entry of the restart log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RestartRecord {
    /// The child whose exit caused the restart.
    pub child: ChildId,
    /// Its exit reason.
    pub reason: String,
    /// Milliseconds since the supervisor started (tokio clock).
    pub at_ms: u64,
}

/// A serialisable snapshot of a supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SupervisorSnapshot {
    /// The supervisor's name (or actor id).
    pub supervisor: String,
    /// The strategy.
    pub strategy: Strategy,
    /// Maximum restarts in the period.
    pub intensity: u32,
    /// The period, in milliseconds.
    pub period_ms: u64,
    /// Restarts currently inside the window.
    pub restarts_in_window: usize,
    /// The children, in start order.
    pub children: Vec<ChildSnapshot>,
    /// The last restarts (at most 256), oldest first.
    pub restart_log: Vec<RestartRecord>,
}

//! Error types, one per failure area.

use std::time::Duration;

use ractor::ActorCell;

use crate::child::{ChildId, StartError};

/// A child spec failed validation.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The id is empty.
    #[error("child spec has an empty id")]
    EmptyId,
    /// No start function was given.
    #[error("child spec `{child}` has no start function")]
    MissingStart {
        /// The child id.
        child: ChildId,
    },
    /// `significant` was set on a permanent child.
    #[error("child spec `{child}`: a permanent child cannot be significant")]
    SignificantPermanent {
        /// The child id.
        child: ChildId,
    },
}

/// Supervisor flags failed validation.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FlagsError {
    /// The intensity period is zero.
    #[error("supervisor flags: period must be greater than zero")]
    ZeroPeriod,
    /// The backoff parameters are invalid.
    #[error("supervisor flags: invalid backoff: {reason}")]
    InvalidBackoff {
        /// What is wrong.
        reason: String,
    },
}

/// A supervisor failed to start.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// The flags are invalid.
    #[error("supervisor `{supervisor}`: {source}")]
    InvalidFlags {
        /// The supervisor.
        supervisor: String,
        /// The flag error.
        source: FlagsError,
    },
    /// Two static children have the same id.
    #[error("supervisor `{supervisor}`: duplicate child id `{child}`")]
    DuplicateChildId {
        /// The supervisor.
        supervisor: String,
        /// The duplicated id.
        child: ChildId,
    },
    /// A significant child under auto-shutdown `never`.
    #[error("supervisor `{supervisor}`: child `{child}` is significant but auto-shutdown is never")]
    SignificantUnderNever {
        /// The supervisor.
        supervisor: String,
        /// The child.
        child: ChildId,
    },
    /// A static child failed to start; the children before it were stopped.
    #[error("supervisor `{supervisor}`: child `{child}` failed to start: {source}")]
    ChildStartFailed {
        /// The supervisor.
        supervisor: String,
        /// The child that failed.
        child: ChildId,
        /// The cause.
        source: StartError,
    },
    /// The supervisor actor could not be spawned.
    #[error("supervisor `{supervisor}` could not be spawned: {reason}")]
    Spawn {
        /// The supervisor.
        supervisor: String,
        /// ractor's spawn error.
        reason: String,
    },
}

/// A child administration call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ChildError {
    /// The id is in use by a running child.
    #[error("supervisor `{supervisor}`: child `{child}` is already started")]
    AlreadyStarted {
        /// The supervisor.
        supervisor: String,
        /// The child.
        child: ChildId,
        /// The running instance.
        cell: ActorCell,
    },
    /// The id is in use by a stopped child spec.
    #[error("supervisor `{supervisor}`: child `{child}` is already present")]
    AlreadyPresent {
        /// The supervisor.
        supervisor: String,
        /// The child.
        child: ChildId,
    },
    /// No child with this id.
    #[error("supervisor `{supervisor}`: child `{child}` not found")]
    NotFound {
        /// The supervisor.
        supervisor: String,
        /// The child.
        child: ChildId,
    },
    /// The child is running (restart/delete need it stopped).
    #[error("supervisor `{supervisor}`: child `{child}` is running")]
    Running {
        /// The supervisor.
        supervisor: String,
        /// The child.
        child: ChildId,
    },
    /// The child is being restarted.
    #[error("supervisor `{supervisor}`: child `{child}` is restarting")]
    Restarting {
        /// The supervisor.
        supervisor: String,
        /// The child.
        child: ChildId,
    },
    /// The dynamic supervisor is full.
    #[error("supervisor `{supervisor}`: max children ({max}) reached")]
    MaxChildren {
        /// The supervisor.
        supervisor: String,
        /// The limit.
        max: usize,
    },
    /// The start function failed; no spec was kept.
    #[error("supervisor `{supervisor}`: child `{child}` failed to start: {source}")]
    StartFailed {
        /// The supervisor.
        supervisor: String,
        /// The child.
        child: ChildId,
        /// The cause.
        source: StartError,
    },
    /// A significant child under auto-shutdown `never`.
    #[error("supervisor `{supervisor}`: child `{child}` is significant but auto-shutdown is never")]
    SignificantUnderNever {
        /// The supervisor.
        supervisor: String,
        /// The child.
        child: ChildId,
    },
    /// The supervisor did not answer within the call's bounded wait (see
    /// [`SupervisorRef::with_query_timeout`](crate::SupervisorRef::with_query_timeout) and
    /// [`SupervisorRef::with_change_timeout`](crate::SupervisorRef::with_change_timeout)). It is
    /// alive but busy (a long start function, a child's shutdown, a backlog of requests): the
    /// request stays queued and a change is still carried out later.
    #[error("supervisor `{supervisor}` did not answer `{call}` within {waited:?}")]
    Timeout {
        /// The supervisor.
        supervisor: String,
        /// The call: `start_child`, `terminate_child`, `restart_child`, `delete_child`,
        /// `which_children`, `count_children` or `inspect`.
        call: &'static str,
        /// How long we waited.
        waited: Duration,
    },
    /// The supervisor did not answer (it has exited or is exiting).
    #[error("supervisor `{supervisor}` is unavailable: {reason}")]
    Unavailable {
        /// The supervisor.
        supervisor: String,
        /// Why.
        reason: String,
    },
}

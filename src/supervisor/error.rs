//! What the Claude supervisor's operations can fail with.

use std::time::Duration;

use claude_session::SessionError;

use crate::store::StoreError;

/// A supervisor operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// A session's CLI could not be started.
    #[error("session `{name}` could not start: {source}")]
    Start {
        /// The session.
        name: String,
        /// Why.
        #[source]
        source: SessionError,
    },
    /// The tree could not be started or administered.
    #[error("supervisor `{supervisor}`: {detail}")]
    Tree {
        /// The supervisor.
        supervisor: String,
        /// What went wrong.
        detail: String,
    },
    /// A session of this name exists already.
    #[error("session `{name}` already exists")]
    AlreadyExists {
        /// The session.
        name: String,
    },
    /// No session of this name.
    #[error("no session named `{name}`")]
    NotFound {
        /// The name.
        name: String,
    },
    /// The limit of live sessions is reached.
    #[error("cannot start session `{name}`: the limit of {limit} sessions is reached")]
    TooManySessions {
        /// The session that was refused.
        name: String,
        /// The limit.
        limit: usize,
    },
    /// The limit of sessions of a group is reached.
    #[error(
        "cannot start session `{name}`: group `{group}` already has its limit of {limit} sessions"
    )]
    GroupFull {
        /// The session that was refused.
        name: String,
        /// The group.
        group: String,
        /// The limit.
        limit: usize,
    },
    /// Another session holds the lease on the conversation this one would resume.
    #[error(
        "session `{name}` cannot resume conversation {session_id}: session `{holder}` holds it"
    )]
    Leased {
        /// The session.
        name: String,
        /// The conversation.
        session_id: String,
        /// Who holds it.
        holder: String,
    },
    /// The session did not come back from a restart within the wait limit.
    #[error("session `{name}` is restarting and was not back within {}", humantime::format_duration(*.waited))]
    RestartTimeout {
        /// The session.
        name: String,
        /// How long the caller waited.
        waited: Duration,
    },
    /// The session is gone: terminated, or its supervisor shut down or melted down.
    #[error("session `{name}` is unavailable: {reason}")]
    Unavailable {
        /// The session.
        name: String,
        /// Why (e.g. `supervisor melted down: reached max restart intensity`).
        reason: String,
    },
    /// The session answered with an error.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The session store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

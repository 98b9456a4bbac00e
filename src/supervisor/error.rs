//! What the Claude supervisor's operations can fail with.

use std::time::Duration;

use claude_session::{SessionError, TurnOutput};

use crate::store::StoreError;

/// A supervisor operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// A session name breaks the rules of [`validate_name`](crate::validate_name).
    #[error("invalid session name `{name}`: {reason}")]
    InvalidName {
        /// The name (cut to a little over the length limit).
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A session's CLI could not be started.
    #[error("session `{name}` could not start: {source}")]
    Start {
        /// The session.
        name: String,
        /// Why.
        #[source]
        source: SessionError,
    },
    /// A session's configuration is invalid.
    #[error("session `{name}`: {source}")]
    Config {
        /// The session.
        name: String,
        /// What is wrong.
        #[source]
        source: claude_session::ConfigError,
    },
    /// A session's start panicked in user code (a `configure` closure, a launcher, a callback).
    #[error("session `{name}`: {what} panicked: {message}")]
    Panicked {
        /// The session.
        name: String,
        /// The code that panicked.
        what: &'static str,
        /// The panic's message.
        message: String,
    },
    /// The tree's own machinery failed (a supervisor call was refused or timed out).
    #[error("supervisor `{supervisor}`: {action}: {source}")]
    Tree {
        /// The supervisor.
        supervisor: String,
        /// What was being done.
        action: &'static str,
        /// Why it failed.
        #[source]
        source: supervision::ChildError,
    },
    /// The tree's flags are invalid.
    #[error("supervisor `{supervisor}`: {source}")]
    Flags {
        /// The supervisor.
        supervisor: String,
        /// Why.
        #[source]
        source: supervision::FlagsError,
    },
    /// The tree's root could not be started.
    #[error("supervisor `{supervisor}` could not start: {source}")]
    RootStart {
        /// The supervisor.
        supervisor: String,
        /// Why.
        #[source]
        source: supervision::SupervisorError,
    },
    /// No CLI was given and none was found.
    #[error("supervisor `{supervisor}`: {source}")]
    CliNotFound {
        /// The supervisor.
        supervisor: String,
        /// Where it was looked for.
        #[source]
        source: claude_protocol::DiscoveryError,
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
    /// Another node of the fleet owns the session (holds its lease): ask that node.
    #[error("session `{name}` is owned by node `{owner}` of the fleet")]
    OwnedElsewhere {
        /// The session.
        name: String,
        /// The node that owns it.
        owner: String,
    },
    /// A fleet needs a store that keeps leases.
    #[error(
        "supervisor `{supervisor}` cannot join a fleet: its store has no usable leases: {source}"
    )]
    FleetUnsupported {
        /// The supervisor.
        supervisor: String,
        /// The store's answer.
        #[source]
        source: StoreError,
    },
    /// The CLI does not have the conversation the session was to resume, and the session's
    /// [`LostConversation`](crate::LostConversation) policy is `Fail`.
    #[error("session `{name}`: the CLI has no conversation {session_id} to resume")]
    ConversationLost {
        /// The session.
        name: String,
        /// The conversation that was lost.
        session_id: String,
    },
    /// The session did not come back from a restart within the wait limit.
    #[error("session `{name}` is restarting and was not back within {}", humantime::format_duration(*.waited))]
    RestartTimeout {
        /// The session.
        name: String,
        /// How long the caller waited.
        waited: Duration,
    },
    /// The session exhausted its own restart intensity and is failed until
    /// [`restart_session`](crate::ClaudeSupervisor::restart_session) revives it.
    #[error("session `{name}` has failed: {reason}")]
    Failed {
        /// The session.
        name: String,
        /// Why (the intensity reached, and the last error).
        reason: String,
    },
    /// The session is gone: terminated, or its supervisor shut down or gave up.
    #[error("session `{name}` is unavailable: {reason}")]
    Unavailable {
        /// The session.
        name: String,
        /// Why.
        reason: String,
    },
    /// The tree's credential gateway could not start.
    #[error("supervisor `{supervisor}`: {source}")]
    Gateway {
        /// The supervisor.
        supervisor: String,
        /// Why.
        #[source]
        source: crate::gateway::GatewayError,
    },
    /// The tree's warm spare pool could not be set up.
    #[error("supervisor `{supervisor}`: warm spares: {reason}")]
    WarmSpares {
        /// The supervisor.
        supervisor: String,
        /// Why.
        reason: String,
    },
    /// An internal call did not answer in time (the session's keeper is stuck or gone).
    #[error("session `{name}`: no answer to `{call}` within {}", humantime::format_duration(*.timeout))]
    CallTimeout {
        /// The session.
        name: String,
        /// The call.
        call: &'static str,
        /// The limit.
        timeout: Duration,
    },
    /// A turn ended, but not in success: interrupted, cut by a shutdown, out of turns or
    /// budget, an API error. The output holds every frame that arrived (`output.text()` is the
    /// partial answer).
    #[error("session `{name}`: the turn ended with `{subtype}`: {reason}")]
    TurnFailed {
        /// The session.
        name: String,
        /// The `result`'s subtype (`error_during_execution`, `error_max_turns`, `success` for an
        /// API error, …).
        subtype: String,
        /// Why: the result's errors, its terminal reason, or its text.
        reason: String,
        /// The whole turn as it arrived.
        output: Box<TurnOutput>,
    },
    /// A turn failed before its `result` (the CLI died, a stall, a timeout), with the frames that
    /// came first.
    #[error("session `{name}`: the turn was cut: {source}")]
    TurnCut {
        /// The session.
        name: String,
        /// The frames that arrived before the failure.
        partial: Vec<claude_protocol::Message>,
        /// Why it failed.
        #[source]
        source: Box<SessionError>,
    },
    /// The session answered with an error.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The session store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SupervisorError {
    /// The session error underneath, if there is one (a cut turn's cause, a failed start's).
    pub fn session_error(&self) -> Option<&SessionError> {
        match self {
            Self::Session(e) | Self::Start { source: e, .. } => Some(e),
            Self::TurnCut { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The text that arrived before a turn failed (empty for other errors).
    pub fn partial_text(&self) -> String {
        match self {
            Self::TurnFailed { output, .. } => output.assistant_text(),
            Self::TurnCut { partial, .. } => assistant_text(partial),
            _ => String::new(),
        }
    }

    /// Judges a collected turn: `Ok` only for a complete, successful one.
    pub(crate) fn judge(name: &str, output: TurnOutput) -> Result<TurnOutput, SupervisorError> {
        if !output.is_error() {
            return Ok(output);
        }
        let result = &output.result;
        let reason = if !result.errors().is_empty() {
            result.errors().join("; ")
        } else if let Some(terminal) = &result.terminal_reason {
            terminal.clone()
        } else if let Some(text) = &result.result {
            text.clone()
        } else {
            "the CLI reported an error".to_owned()
        };
        Err(Self::TurnFailed {
            name: name.to_owned(),
            subtype: result.subtype.as_str().to_owned(),
            reason,
            output: Box::new(output),
        })
    }
}

fn assistant_text(messages: &[claude_protocol::Message]) -> String {
    let mut text = String::new();
    for message in messages {
        if let claude_protocol::Message::Assistant(a) = message
            && a.parent_tool_use_id().is_none()
        {
            for block in &a.message.content {
                if let Some(t) = block.as_text() {
                    text.push_str(t);
                }
            }
        }
    }
    text
}

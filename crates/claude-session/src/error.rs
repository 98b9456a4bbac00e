//! What can go wrong in a session, with what a caller needs to act on it.

use std::process::ExitStatus;
use std::time::Duration;

use crate::launcher::LaunchError;

/// How a CLI process ended, for error messages: `exit code 3`, `signal 9 (SIGKILL)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitInfo(pub ExitStatus);

impl ExitInfo {
    /// The exit code, when the process exited rather than being signalled.
    pub fn code(&self) -> Option<i32> {
        self.0.code()
    }

    /// The signal that ended the process, if one did.
    pub fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.0.signal()
    }
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code(), self.signal()) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(sig)) => match nix::sys::signal::Signal::try_from(sig) {
                Ok(name) => write!(f, "signal {sig} ({name})"),
                Err(_) => write!(f, "signal {sig}"),
            },
            (None, None) => write!(f, "{}", self.0),
        }
    }
}

/// Formats a stderr tail for an error message.
fn tail(stderr: &str) -> String {
    if stderr.is_empty() {
        "(stderr was empty)".to_owned()
    } else {
        format!("stderr tail: {stderr}")
    }
}

/// A session failed to do what was asked of it.
///
/// Every variant names the session; those about the process carry its exit status and the tail
/// of its stderr.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The options do not make a valid command line.
    #[error("session `{session}`: invalid options: {source}")]
    Options {
        /// The session.
        session: String,
        /// What is wrong with them.
        #[source]
        source: claude_protocol::OptionsError,
    },
    /// The CLI could not be launched.
    #[error("session `{session}`: {source}")]
    Launch {
        /// The session.
        session: String,
        /// Why.
        #[source]
        source: LaunchError,
    },
    /// The launcher did not finish launching the CLI within the init timeout.
    #[error("session `{session}`: the launcher did not start the CLI within {}", humantime::format_duration(*.timeout))]
    LaunchTimeout {
        /// The session.
        session: String,
        /// The bound (the init timeout).
        timeout: Duration,
    },
    /// The CLI exited before the session was ready.
    #[error("session `{session}`: the CLI exited during start-up ({status}); {}", tail(.stderr_tail))]
    ExitedDuringStart {
        /// The session.
        session: String,
        /// How it exited.
        status: ExitInfo,
        /// The last of its stderr.
        stderr_tail: String,
    },
    /// The CLI did not answer `initialize` in time.
    #[error("session `{session}`: no answer to `initialize` within {}; {}", humantime::format_duration(*.timeout), tail(.stderr_tail))]
    InitTimeout {
        /// The session.
        session: String,
        /// The init timeout.
        timeout: Duration,
        /// The last of its stderr.
        stderr_tail: String,
    },
    /// The CLI answered `initialize` with an error.
    #[error("session `{session}`: the CLI refused `initialize`: {message}")]
    InitRejected {
        /// The session.
        session: String,
        /// The CLI's error message.
        message: String,
    },
    /// The CLI is older than the oldest supported version (`claude_protocol::SUPPORTED_CLI`);
    /// it was stopped after answering `initialize`.
    #[error(
        "session `{session}`: the Claude CLI is version {found}, older than the oldest supported {minimum}; {}",
        claude_protocol::SUPPORTED_CLI.install_hint()
    )]
    CliTooOld {
        /// The session.
        session: String,
        /// The version the CLI reported.
        found: claude_protocol::CliVersion,
        /// The oldest supported version.
        minimum: claude_protocol::CliVersion,
    },
    /// The CLI process exited while the session was running.
    #[error("session `{session}`: the CLI exited unexpectedly ({status}){}; {}", .turn.map(|t| format!(" during turn {t}")).unwrap_or_default(), tail(.stderr_tail))]
    Exited {
        /// The session.
        session: String,
        /// The turn that was running, if one was.
        turn: Option<u64>,
        /// How it exited.
        status: ExitInfo,
        /// The last of its stderr.
        stderr_tail: String,
    },
    /// The CLI closed its stdout, or writing to its stdin failed, while it ran.
    #[error("session `{session}`: lost the CLI's pipes: {detail}; {}", tail(.stderr_tail))]
    Disconnected {
        /// The session.
        session: String,
        /// What happened.
        detail: String,
        /// The last of its stderr.
        stderr_tail: String,
    },
    /// The turn took longer than the turn timeout.
    #[error("session `{session}`: turn {turn} exceeded the turn timeout of {}", humantime::format_duration(*.timeout))]
    TurnTimeout {
        /// The session.
        session: String,
        /// The turn.
        turn: u64,
        /// The turn timeout.
        timeout: Duration,
    },
    /// The turn exceeded the turn timeout and did not end within the control timeout of the
    /// interrupt that followed, so the CLI was stopped. The timed-out turn itself failed with
    /// [`TurnTimeout`](Self::TurnTimeout); this is the error of the turns queued behind it and
    /// of the session's (abnormal) exit.
    #[error("session `{session}`: turn {turn} exceeded the turn timeout of {} and ignored the interrupt for {}; the CLI was stopped", humantime::format_duration(*.timeout), humantime::format_duration(*.control))]
    TurnTimeoutIgnored {
        /// The session.
        session: String,
        /// The turn that timed out.
        turn: u64,
        /// The turn timeout.
        timeout: Duration,
        /// How long the interrupt was given (the control timeout).
        control: Duration,
    },
    /// The turn received no frame for the stall timeout, and did not end when interrupted.
    #[error("session `{session}`: turn {turn} stalled: no frame for {}; the CLI was stopped", humantime::format_duration(*.idle))]
    Stalled {
        /// The session.
        session: String,
        /// The turn.
        turn: u64,
        /// How long it was silent.
        idle: Duration,
    },
    /// Everything the session ran went past its memory limit; the CLI was stopped.
    #[error(
        "session `{session}`: memory limit of {limit_bytes} bytes exceeded ({usage_bytes} bytes in use, enforced by {enforced_by}); the CLI was stopped"
    )]
    MemoryLimitExceeded {
        /// The session.
        session: String,
        /// The limit.
        limit_bytes: u64,
        /// The usage seen.
        usage_bytes: u64,
        /// `cgroup` or `check` (see [`SessionEventKind::MemoryLimitExceeded`](crate::SessionEventKind::MemoryLimitExceeded)).
        enforced_by: &'static str,
    },
    /// The turn queue was full and the queue policy is to reject.
    #[error("session `{session}`: the turn queue is full ({capacity} queued)")]
    QueueFull {
        /// The session.
        session: String,
        /// The queue's capacity.
        capacity: usize,
    },
    /// The turn was cancelled before it started.
    #[error("session `{session}`: turn {turn} was cancelled before it started")]
    Cancelled {
        /// The session.
        session: String,
        /// The turn.
        turn: u64,
    },
    /// The session was stopped while the turn was queued or running.
    #[error("session `{session}`: the session was stopped")]
    Stopped {
        /// The session.
        session: String,
    },
    /// The session's actor is not running.
    #[error("session `{session}`: the session is not running")]
    NotRunning {
        /// The session.
        session: String,
    },
    /// The session's actor did not answer a call in time: it is stuck (in a launcher's signal
    /// that hangs, say). For `stop`, the actor was then killed, which kills the CLI's group.
    #[error("session `{session}`: the session did not answer `{request}` within {}", humantime::format_duration(*.timeout))]
    Unresponsive {
        /// The session.
        session: String,
        /// What was asked (`health`, `interrupt`, a control request's subtype, `stop`).
        request: String,
        /// The bound.
        timeout: Duration,
    },
    /// A control request got no answer in time.
    #[error("session `{session}`: no answer to control request `{subtype}` within {}", humantime::format_duration(*.timeout))]
    ControlTimeout {
        /// The session.
        session: String,
        /// The request's subtype.
        subtype: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The CLI answered a control request with an error.
    #[error("session `{session}`: control request `{subtype}` failed: {message}")]
    ControlRejected {
        /// The session.
        session: String,
        /// The request's subtype.
        subtype: String,
        /// The CLI's error message.
        message: String,
    },
    /// An answer from the CLI did not have the expected shape.
    #[error("session `{session}`: unexpected answer to `{subtype}`: {detail}")]
    UnexpectedAnswer {
        /// The session.
        session: String,
        /// The request's subtype.
        subtype: String,
        /// What was wrong.
        detail: String,
    },
}

impl SessionError {
    /// The session this error is about.
    pub fn session(&self) -> &str {
        match self {
            Self::Options { session, .. }
            | Self::Launch { session, .. }
            | Self::LaunchTimeout { session, .. }
            | Self::ExitedDuringStart { session, .. }
            | Self::InitTimeout { session, .. }
            | Self::InitRejected { session, .. }
            | Self::CliTooOld { session, .. }
            | Self::Exited { session, .. }
            | Self::Disconnected { session, .. }
            | Self::TurnTimeout { session, .. }
            | Self::TurnTimeoutIgnored { session, .. }
            | Self::Stalled { session, .. }
            | Self::MemoryLimitExceeded { session, .. }
            | Self::QueueFull { session, .. }
            | Self::Cancelled { session, .. }
            | Self::Stopped { session }
            | Self::NotRunning { session }
            | Self::Unresponsive { session, .. }
            | Self::ControlTimeout { session, .. }
            | Self::ControlRejected { session, .. }
            | Self::UnexpectedAnswer { session, .. } => session,
        }
    }

    /// The exit status of the CLI, when the error is about its exit.
    pub fn exit_status(&self) -> Option<ExitInfo> {
        match self {
            Self::ExitedDuringStart { status, .. } | Self::Exited { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The tail of the CLI's stderr, when the error carries one.
    pub fn stderr_tail(&self) -> Option<&str> {
        match self {
            Self::ExitedDuringStart { stderr_tail, .. }
            | Self::InitTimeout { stderr_tail, .. }
            | Self::Exited { stderr_tail, .. }
            | Self::Disconnected { stderr_tail, .. } => Some(stderr_tail),
            _ => None,
        }
    }

    /// Whether the error means the CLI process is gone (a supervisor would restart the session).
    pub fn is_process_failure(&self) -> bool {
        matches!(
            self,
            Self::Exited { .. }
                | Self::Disconnected { .. }
                | Self::Stalled { .. }
                | Self::MemoryLimitExceeded { .. }
                | Self::TurnTimeoutIgnored { .. }
                | Self::ExitedDuringStart { .. }
        )
    }
}

//! Typed lifecycle events, on a broadcast channel per session.

use std::sync::Arc;

use serde::Serialize;

use crate::ledger::TurnCost;

/// Something that happened to a session.
#[derive(Clone, Debug, Serialize)]
pub struct SessionEvent {
    /// The session's name.
    pub session: Arc<str>,
    /// What happened.
    pub kind: SessionEventKind,
}

/// The kinds of [`SessionEvent`].
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionEventKind {
    /// The CLI process was launched.
    Spawned {
        /// Its pid, where known.
        pid: Option<u32>,
        /// The how-many-th process of this session instance (1 for the first).
        process: u64,
    },
    /// The CLI reported a version newer than the newest tested one
    /// (`claude_protocol::SUPPORTED_CLI`); the session runs it anyway. Sent once per process,
    /// before [`SessionEventKind::Initialized`].
    CliVersionUntested {
        /// The version the CLI reported.
        found: claude_protocol::CliVersion,
        /// The newest version the suite was run with.
        newest_tested: claude_protocol::CliVersion,
    },
    /// The CLI answered `initialize`; the session is ready.
    Initialized {
        /// The CLI's version, as it reported it.
        cli_version: Option<String>,
    },
    /// A turn was written to the CLI.
    TurnStarted {
        /// The turn's number in this session instance.
        turn: u64,
    },
    /// A turn ended with its `result`.
    TurnFinished {
        /// The turn.
        turn: u64,
        /// Whether the result was an error (judged by `is_error`).
        is_error: bool,
        /// What the turn cost.
        cost: TurnCost,
    },
    /// A turn failed without a `result` (process exit, stall, timeout, stop).
    TurnFailed {
        /// The turn.
        turn: u64,
        /// Why.
        error: String,
    },
    /// A stdout line was skipped; the session lives on.
    FrameSkipped {
        /// Why it was skipped.
        reason: SkipReason,
        /// The line's length in bytes.
        len: usize,
        /// The parse error, for malformed lines.
        detail: Option<String>,
    },
    /// A frame arrived outside any turn (status, keep-alive, echoes of runtime commands, …).
    Unrouted {
        /// The frame's `type` (and subtype, for `system`).
        frame_type: String,
    },
    /// The session id changed (a new conversation, a fork, or `conversation_reset`).
    SessionIdChanged {
        /// The new id.
        session_id: String,
    },
    /// The CLI does not have the conversation it was asked to resume (its first turn said "No
    /// conversation found with session ID"); the process exits after this turn.
    ConversationNotFound {
        /// The conversation it was asked to resume.
        session_id: String,
    },
    /// The CLI process exited.
    ProcessExited {
        /// Its exit status, as text.
        status: String,
        /// Whether the runtime asked it to stop.
        expected: bool,
    },
    /// The shutdown recipe had to signal the process group.
    Signalled {
        /// `SIGTERM` or `SIGKILL`.
        signal: &'static str,
    },
    /// Everything the session runs (the CLI and its tools) went past the session's memory
    /// limit: the CLI is stopped, and a supervisor restarts it with its conversation.
    MemoryLimitExceeded {
        /// The limit, in bytes.
        limit_bytes: u64,
        /// The usage seen, in bytes (for a kernel-enforced limit: the cgroup's usage when its
        /// OOM killer fired, which is at the limit).
        usage_bytes: u64,
        /// What enforced it: `cgroup` (the kernel's OOM killer in the session's memory cgroup)
        /// or `check` (the session's own sampling).
        enforced_by: &'static str,
    },
}

/// Why a stdout line was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SkipReason {
    /// Longer than the line limit.
    Oversize,
    /// Not valid JSON.
    Malformed,
}

//! A point-in-time health report of one session, serialisable with serde.

use serde::Serialize;

use crate::containment::{Containment, ContainmentReport};
use crate::ledger::CostTotals;

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionStatus {
    /// Launching the CLI and waiting for `initialize`.
    Starting,
    /// Idle, ready for a turn.
    Ready,
    /// Running a turn.
    Busy,
    /// Shutting down.
    Stopping,
}

/// A snapshot of a session's health.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct HealthSnapshot {
    /// The session's name.
    pub name: String,
    /// Where it is in its life.
    pub status: SessionStatus,
    /// The CLI's pid (it leads its own process group).
    pub pid: Option<u32>,
    /// Time since the CLI was launched.
    #[serde(with = "float_secs")]
    pub uptime: std::time::Duration,
    /// The current conversation's session id.
    pub session_id: Option<String>,
    /// Turns waiting behind the running one.
    pub queue_len: usize,
    /// Turns finished by this instance.
    pub turns: u64,
    /// Time since the last frame from the CLI, if any arrived.
    #[serde(with = "float_secs_opt")]
    pub last_frame_age: Option<std::time::Duration>,
    /// Cost totals of the session (across restarts, when the ledger is shared).
    pub cost: CostTotals,
    /// Resident memory of the CLI process alone in bytes (Linux), if readable; see
    /// [`containment`](Self::containment) for the whole tree.
    pub rss_bytes: Option<u64>,
    /// The CLI's version, as it reported it at `initialize`.
    pub cli_version: Option<String>,
    /// The containment of everything the session's CLI started: the mechanism in use, its
    /// cgroups, the memory and process count of the whole tree, the memory limit.
    pub containment: Option<ContainmentReport>,
    /// A handle on that containment (not serialised). It stays valid after the session has
    /// stopped: [`Containment::wait_gone`] is what a supervisor awaits before resuming the
    /// conversation in a new process.
    #[serde(skip)]
    pub process_tree: Option<Containment>,
    /// How the CLI process was started: cold, or claimed from a warm spare (and if a pool was
    /// set but not used, why).
    pub start: StartPath,
}

/// How a session's CLI process was started.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "path", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StartPath {
    /// Spawned for the session; it has no spare pool.
    Cold,
    /// Spawned for the session although it has a spare pool: why no spare served it (its
    /// spawn-time options differ from the pool's, it resumes a conversation, no spare was
    /// parked, the claim was refused, …).
    ColdFallback {
        /// Why, in words.
        reason: String,
    },
    /// A warm spare of the session's pool, claimed with `claim_session`.
    Warm {
        /// How long the spare had been parked before the claim.
        #[serde(with = "float_secs")]
        parked: std::time::Duration,
    },
}

impl StartPath {
    /// Whether the process came from a warm spare.
    pub fn is_warm(&self) -> bool {
        matches!(self, Self::Warm { .. })
    }
}

/// Reads a process's resident set size from `/proc/<pid>/status`.
pub(crate) fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

mod float_secs {
    pub(super) fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

mod float_secs_opt {
    pub(super) fn serialize<S: serde::Serializer>(
        d: &Option<std::time::Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

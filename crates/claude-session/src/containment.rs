//! Containment: every process a session starts — the CLI, its tools, their detached, `setsid`,
//! `nohup` or daemonised descendants, MCP servers — is held by a mechanism the kernel enforces,
//! and is gone when the session stops, fails, restarts or hibernates, or when the host process
//! dies (SIGKILL included).
//!
//! A [`Launcher`](crate::Launcher) picks the mechanism per launch from a [`ContainmentPolicy`]
//! (by default the first of [`ContainmentKind::AUTO_ORDER`] this machine allows) and returns a
//! [`Containment`]: a cloneable handle that signals, measures and waits for the whole tree, and
//! only ever signals what provably belongs to it (pidfds, never bare pids that may have been
//! reused; see `docs/deployment-patterns.md` for the guarantee of each mechanism).
//!
//! On Linux the local launchers run a *keeper* between the host and the CLI: a fork of the host
//! that never execs, holds a lifeline pipe to the host, reaps, forwards stop signals, and kills
//! the rest of the tree when the CLI exits or the host goes away.

#[cfg(target_os = "linux")]
mod cgroup;
#[cfg(target_os = "linux")]
mod keeper;
#[cfg(target_os = "linux")]
mod local;
#[cfg(target_os = "linux")]
pub(crate) mod sys;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::egress::EgressReport;
use crate::launcher::GroupSignal;

#[cfg(target_os = "linux")]
pub(crate) use local::{SpawnRequest, resolve_user, spawn};

/// The mechanism that holds a session's processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContainmentKind {
    /// A PID namespace whose init (pid 1) is the session's own keeper-spawned init, the CLI its
    /// pid 2. When the init exits — because the CLI exited, the session killed it, or its
    /// parent (the keeper) died — the kernel kills every process of the namespace, however
    /// detached. Needs `CAP_SYS_ADMIN` (root, or a user namespace).
    PidNamespace,
    /// A cgroup v2 created for the launch; killed with `cgroup.kill` (Linux ≥ 5.14), which the
    /// kernel applies to every member atomically, new forks included. Needs a writable cgroup v2
    /// hierarchy (root, or a delegated subtree).
    CgroupV2,
    /// A cgroup v1 `freezer` cgroup created for the launch; killed by freezing it, SIGKILLing
    /// every member and thawing it, until it is empty. Needs a writable v1 freezer hierarchy.
    CgroupV1,
    /// The keeper is a child subreaper (`PR_SET_CHILD_SUBREAPER`): orphans of the CLI's tree are
    /// re-parented to it instead of the host's init, and it kills its children until it has none
    /// left. Needs nothing; holds as long as the keeper lives (it dies only by SIGKILL).
    Subreaper,
    /// The CLI leads its own process group, which is killed while its leader is unreaped.
    /// Processes that leave the group (`setsid`, daemons) escape.
    ProcessGroup,
    /// A launcher's own mechanism (a custom [`GroupSignaller`]).
    External,
}

impl ContainmentKind {
    /// The order [`ContainmentPolicy::auto`] tries. A cgroup v2 comes first: it removes every
    /// process however detached, atomically, and is invisible to the CLI and its tools (they see
    /// the host's pids and `/proc`). A PID namespace holds even when the keeper itself is
    /// SIGKILLed, but its processes see other pids than the host does (a pid a tool prints is
    /// not a host pid), so it comes second; require it for the strongest guarantee.
    pub const AUTO_ORDER: [ContainmentKind; 5] = [
        ContainmentKind::CgroupV2,
        ContainmentKind::PidNamespace,
        ContainmentKind::CgroupV1,
        ContainmentKind::Subreaper,
        ContainmentKind::ProcessGroup,
    ];

    /// Its name, as in health reports (`pid_namespace`, `cgroup_v2`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ContainmentKind::PidNamespace => "pid_namespace",
            ContainmentKind::CgroupV2 => "cgroup_v2",
            ContainmentKind::CgroupV1 => "cgroup_v1",
            ContainmentKind::Subreaper => "subreaper",
            ContainmentKind::ProcessGroup => "process_group",
            ContainmentKind::External => "external",
        }
    }

    /// Whether it removes processes that left the CLI's process group (`setsid`, `nohup … &`,
    /// double forks).
    pub fn removes_detached(self) -> bool {
        !matches!(
            self,
            ContainmentKind::ProcessGroup | ContainmentKind::External
        )
    }
}

impl fmt::Display for ContainmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which containment a launch gets: mechanisms tried in order, whether one is required, and
/// whether cgroups are also created for accounting (memory, process count, a memory limit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainmentPolicy {
    order: Vec<ContainmentKind>,
    required: bool,
    accounting_cgroups: bool,
}

impl Default for ContainmentPolicy {
    fn default() -> Self {
        Self::auto()
    }
}

impl ContainmentPolicy {
    /// The first mechanism of [`ContainmentKind::AUTO_ORDER`] that this machine allows (the
    /// default); never fails, since [`ProcessGroup`](ContainmentKind::ProcessGroup) always works
    /// (on Linux).
    pub fn auto() -> Self {
        Self {
            order: ContainmentKind::AUTO_ORDER.to_vec(),
            required: false,
            accounting_cgroups: true,
        }
    }

    /// Exactly `kind`: a launch fails with
    /// [`LaunchError::ContainmentUnavailable`](crate::LaunchError::ContainmentUnavailable) when
    /// this machine does not allow it.
    pub fn require(kind: ContainmentKind) -> Self {
        Self {
            order: vec![kind],
            required: true,
            accounting_cgroups: true,
        }
    }

    /// `kinds` in this order, falling back to a plain process group if none is available.
    pub fn prefer(kinds: impl IntoIterator<Item = ContainmentKind>) -> Self {
        let mut order: Vec<ContainmentKind> = kinds.into_iter().collect();
        if !order.contains(&ContainmentKind::ProcessGroup) {
            order.push(ContainmentKind::ProcessGroup);
        }
        Self {
            order,
            required: false,
            accounting_cgroups: true,
        }
    }

    /// Whether to create cgroups for accounting (memory, process count) and for a memory limit
    /// even when the mechanism itself is not a cgroup (default true). Without them memory is
    /// the sum of the processes' proportional set sizes, and a memory limit is checked rather
    /// than enforced by the kernel.
    #[must_use]
    pub fn accounting_cgroups(mut self, yes: bool) -> Self {
        self.accounting_cgroups = yes;
        self
    }

    /// The mechanisms, in the order tried.
    pub fn order(&self) -> &[ContainmentKind] {
        &self.order
    }

    /// Whether the (single) mechanism is required.
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// Whether accounting cgroups are created.
    pub fn uses_accounting_cgroups(&self) -> bool {
        self.accounting_cgroups
    }
}

/// What this machine allows, per mechanism: `Ok` or why not. A PID namespace is reported as
/// available until a launch has found otherwise (it is only known by trying).
pub fn available_mechanisms() -> Vec<(ContainmentKind, Result<(), String>)> {
    ContainmentKind::AUTO_ORDER
        .iter()
        .map(|&kind| (kind, availability(kind)))
        .collect()
}

#[cfg(target_os = "linux")]
fn availability(kind: ContainmentKind) -> Result<(), String> {
    local::availability(kind)
}

#[cfg(not(target_os = "linux"))]
fn availability(kind: ContainmentKind) -> Result<(), String> {
    match kind {
        ContainmentKind::ProcessGroup => Ok(()),
        other => Err(format!("{other} needs Linux")),
    }
}

/// Where a memory figure comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MemorySource {
    /// The cgroup's own counter (`memory.current` / `memory.usage_in_bytes`, page cache
    /// included).
    Cgroup,
    /// The sum of the processes' proportional set sizes (`Pss` in `smaps_rollup`).
    Pss,
    /// The sum of the processes' resident set sizes (shared pages counted in each).
    Rss,
}

/// What enforces a memory limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MemoryEnforcement {
    /// The kernel, through the session's memory cgroup: allocation past the limit triggers the
    /// cgroup's OOM killer, which the session notices and restarts on.
    Cgroup,
    /// The session, by sampling the tree's memory every check interval.
    Checked,
}

impl MemoryEnforcement {
    /// `cgroup` or `check`.
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryEnforcement::Cgroup => "cgroup",
            MemoryEnforcement::Checked => "check",
        }
    }
}

/// Usage of everything in a containment, at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ContainmentUsage {
    /// How many processes are in it (the keeper and the namespace's init, ours, not counted).
    pub processes: Option<usize>,
    /// Their memory, in bytes.
    pub memory_bytes: Option<u64>,
    /// Where [`memory_bytes`](Self::memory_bytes) comes from.
    pub memory_source: Option<MemorySource>,
    /// Processes the kernel's OOM killer killed in the session's memory cgroup.
    pub oom_kills: Option<u64>,
}

/// Which processes a containment covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContainmentScope {
    /// The CLI and everything it starts.
    Cli,
    /// Only the local client of a remote CLI (`ssh`, `docker exec`, `kubectl exec`): the remote
    /// CLI ends when its stdin closes or its client's session ends.
    LocalClient,
}

/// A serialisable description of a session's containment, for health reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ContainmentReport {
    /// The mechanism.
    pub mechanism: ContainmentKind,
    /// Which processes it covers.
    pub scope: ContainmentScope,
    /// The cgroup directories created for the launch.
    pub cgroups: Vec<PathBuf>,
    /// The tree's usage now.
    pub usage: ContainmentUsage,
    /// The session's memory limit, if it has one.
    pub memory_limit_bytes: Option<u64>,
    /// What enforces it.
    pub memory_limit_enforced_by: Option<MemoryEnforcement>,
    /// The session's egress policy and what enforces it, if it has one (`None`: no policy, its
    /// processes connect wherever the host can).
    pub egress: Option<EgressReport>,
}

/// The operations behind a [`Containment`]: signal everything a launch started, tell whether
/// any of it is left, measure it. Implemented by the local launchers (see
/// [`crate::spawn_contained`]); a custom launcher implements it for its own mechanism (only
/// [`signal`](Self::signal) is required).
pub trait GroupSignaller: Send + Sync + fmt::Debug + 'static {
    /// The mechanism (default [`ContainmentKind::External`]).
    fn kind(&self) -> ContainmentKind {
        ContainmentKind::External
    }

    /// [`Terminate`](GroupSignal::Terminate): asks the CLI (and what it started) to stop.
    /// [`Kill`](GroupSignal::Kill): kills everything in the containment. Signals only what
    /// provably belongs to it; a containment already empty is not an error.
    ///
    /// # Errors
    ///
    /// A failure to deliver.
    fn signal(&self, signal: GroupSignal) -> io::Result<()>;

    /// Whether any process of it is still alive (`None`: the backend cannot tell).
    fn group_alive(&self) -> Option<bool> {
        None
    }

    /// Usage of everything in it.
    fn usage(&self) -> ContainmentUsage {
        ContainmentUsage::default()
    }

    /// Which processes it covers.
    fn scope(&self) -> ContainmentScope {
        ContainmentScope::Cli
    }

    /// The cgroup directories it created.
    fn cgroups(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    /// The memory limit it was given, and what enforces it.
    fn memory_limit(&self) -> Option<(u64, MemoryEnforcement)> {
        None
    }

    /// The egress policy it was given and what enforces it (`None`: it was given none, or does
    /// not know of egress policies; a session with a policy then reports it as not enforced).
    fn egress(&self) -> Option<EgressReport> {
        None
    }

    /// A future that resolves when the process holding the containment together (the local
    /// keeper) has exited, so that waiting for the containment to empty is an event, not a
    /// poll (`None`: the backend has no such event; [`Containment::wait_gone`] then polls
    /// [`group_alive`](Self::group_alive)).
    fn exited(&self) -> Option<futures::future::BoxFuture<'static, ()>> {
        None
    }
}

/// A handle on every process one launch started: cloneable, `Send + Sync`.
///
/// Get it from [`LaunchedProcess::containment`](crate::LaunchedProcess::containment), or from a
/// session's [`HealthSnapshot::process_tree`](crate::HealthSnapshot::process_tree) (it stays
/// valid after the session has stopped). It never signals a process that does not provably
/// belong to the launch: a reused pid cannot be hit.
///
/// When the last clone of a local containment is dropped, its keeper kills whatever is left.
#[derive(Clone)]
pub struct Containment {
    backend: Arc<dyn GroupSignaller>,
}

impl fmt::Debug for Containment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.backend, f)
    }
}

/// How long [`Containment::wait_gone`] waits after its kill for the tree to vanish.
const KILL_GRACE: Duration = Duration::from_secs(5);

impl Containment {
    /// A containment backed by `backend`.
    pub fn new(backend: impl GroupSignaller) -> Self {
        Self {
            backend: Arc::new(backend),
        }
    }

    /// A containment backed by a shared backend.
    pub fn from_arc(backend: Arc<dyn GroupSignaller>) -> Self {
        Self { backend }
    }

    /// The mechanism.
    pub fn kind(&self) -> ContainmentKind {
        self.backend.kind()
    }

    /// Signals the containment (see [`GroupSignaller::signal`]).
    ///
    /// # Errors
    ///
    /// A failure to deliver.
    pub fn signal(&self, signal: GroupSignal) -> io::Result<()> {
        self.backend.signal(signal)
    }

    /// Kills everything in it.
    ///
    /// # Errors
    ///
    /// A failure to deliver.
    pub fn kill(&self) -> io::Result<()> {
        self.backend.signal(GroupSignal::Kill)
    }

    /// Whether nothing of it is left (`None`: cannot tell).
    pub fn is_empty(&self) -> Option<bool> {
        self.backend.group_alive().map(|alive| !alive)
    }

    /// The backend, to hand to [`LaunchedProcess::signaller`](crate::LaunchedProcess::signaller).
    pub fn backend(&self) -> Arc<dyn GroupSignaller> {
        self.backend.clone()
    }

    /// Usage of everything in it now.
    pub fn usage(&self) -> ContainmentUsage {
        self.backend.usage()
    }

    /// The memory limit it was given, and what enforces it.
    pub fn memory_limit(&self) -> Option<(u64, MemoryEnforcement)> {
        self.backend.memory_limit()
    }

    /// A serialisable report: mechanism, scope, cgroups, usage, memory limit.
    pub fn report(&self) -> ContainmentReport {
        let limit = self.backend.memory_limit();
        ContainmentReport {
            mechanism: self.backend.kind(),
            scope: self.backend.scope(),
            cgroups: self.backend.cgroups(),
            usage: self.backend.usage(),
            memory_limit_bytes: limit.map(|(b, _)| b),
            memory_limit_enforced_by: limit.map(|(_, e)| e),
            egress: self.backend.egress(),
        }
    }

    /// Waits until nothing of the launch is left, for at most `deadline`; then kills what is
    /// left (only what provably belongs to it) and waits up to 5 s more. This is what to await
    /// before resuming a conversation in a new process.
    ///
    /// A backend that cannot tell whether anything is left ([`is_empty`](Self::is_empty) is
    /// `None`) is killed at once and taken at its word.
    ///
    /// # Errors
    ///
    /// [`ContainmentError::StillAlive`] when something is left after the kill.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only observes, and the kill (once sent) is not undone.
    pub async fn wait_gone(&self, deadline: Duration) -> Result<(), ContainmentError> {
        const POLL: Duration = Duration::from_millis(20);
        if self.is_empty().is_none() {
            let _ = self.kill();
            return Ok(());
        }
        let start = tokio::time::Instant::now();
        // The keeper empties the containment before it exits: wait for that exit as an event
        // (a pidfd turning readable), then confirm below.
        if self.is_empty() == Some(false)
            && let Some(exited) = self.backend.exited()
        {
            let _ = tokio::time::timeout(deadline, exited).await;
        }
        while start.elapsed() < deadline {
            if self.is_empty() == Some(true) {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
        if self.is_empty() == Some(true) {
            return Ok(());
        }
        tracing::warn!(mechanism = %self.kind(), ?deadline, "processes still alive at the deadline: killing them");
        self.kill().map_err(|source| ContainmentError::Signal {
            mechanism: self.kind(),
            source,
        })?;
        let killed = tokio::time::Instant::now();
        while killed.elapsed() < KILL_GRACE {
            if self.is_empty() == Some(true) {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
        Err(ContainmentError::StillAlive {
            mechanism: self.kind(),
            waited: deadline + KILL_GRACE,
            processes: self.usage().processes,
        })
    }
}

/// A containment did not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainmentError {
    /// Processes were still alive after the deadline and the kill.
    #[error(
        "{mechanism} containment: processes still alive after {} and a kill ({} left)",
        humantime::format_duration(*.waited),
        .processes.map_or_else(|| "how many unknown".to_owned(), |n| n.to_string())
    )]
    StillAlive {
        /// The mechanism.
        mechanism: ContainmentKind,
        /// How long it waited in all.
        waited: Duration,
        /// How many were left, where known.
        processes: Option<usize>,
    },
    /// The kill could not be delivered.
    #[error("{mechanism} containment: could not kill: {source}")]
    Signal {
        /// The mechanism.
        mechanism: ContainmentKind,
        /// Why.
        #[source]
        source: io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_fall_back_to_a_process_group_unless_required() {
        assert_eq!(
            ContainmentPolicy::auto().order(),
            ContainmentKind::AUTO_ORDER
        );
        let p = ContainmentPolicy::prefer([ContainmentKind::CgroupV2]);
        assert_eq!(
            p.order(),
            [ContainmentKind::CgroupV2, ContainmentKind::ProcessGroup]
        );
        assert!(!p.is_required());
        let r = ContainmentPolicy::require(ContainmentKind::PidNamespace);
        assert_eq!(r.order(), [ContainmentKind::PidNamespace]);
        assert!(r.is_required());
        assert_eq!(
            serde_json::to_value(ContainmentKind::CgroupV1).unwrap(),
            "cgroup_v1"
        );
    }
}

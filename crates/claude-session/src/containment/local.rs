//! The local containment (Linux): spawning through the keeper, and the host-side handle on what
//! it holds.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use nix::libc;

use super::cgroup::{self, CgroupDir, Hierarchy};
use super::keeper::{self, KillPlan, Mode, Plan, Step};
use super::sys::{self, PidFd};
use super::{
    ContainmentKind, ContainmentScope, ContainmentUsage, GroupSignaller, MemoryEnforcement,
    MemorySource,
};
use crate::egress::netns::Sandbox;
use crate::egress::{EgressMechanism, EgressReport};
use crate::launcher::{GroupSignal, LaunchContext, LaunchError, LaunchedProcess};

pub(crate) use super::keeper::UserIds;

/// 0: not tried, 1: works, 2: refused.
static PID_NAMESPACE: AtomicU8 = AtomicU8::new(0);
static PID_NAMESPACE_WHY: Mutex<String> = Mutex::new(String::new());

pub(super) fn availability(kind: ContainmentKind) -> Result<(), String> {
    let probe = cgroup::probe();
    let notes = || probe.notes.join("; ");
    match kind {
        ContainmentKind::PidNamespace => match PID_NAMESPACE.load(Ordering::SeqCst) {
            2 => Err(PID_NAMESPACE_WHY
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()),
            _ => Ok(()),
        },
        ContainmentKind::CgroupV2 => match &probe.v2 {
            Some(v2) if v2.kill => Ok(()),
            Some(v2) => Err(format!(
                "cgroup v2 under {} has no cgroup.kill (Linux < 5.14)",
                v2.dir.display()
            )),
            None => Err(notes()),
        },
        ContainmentKind::CgroupV1 => match &probe.v1_freezer {
            Some(_) => Ok(()),
            None => Err(notes()),
        },
        ContainmentKind::Subreaper | ContainmentKind::ProcessGroup => Ok(()),
        ContainmentKind::External => Err("not a local mechanism".to_owned()),
    }
}

/// The uid, gid and groups of `user`, looked up before `fork` (the lookup allocates).
pub(crate) fn resolve_user(user: &str) -> Result<UserIds, LaunchError> {
    let found = nix::unistd::User::from_name(user)
        .map_err(|e| LaunchError::UserLookup {
            user: user.to_owned(),
            source: io::Error::from(e),
        })?
        .ok_or_else(|| LaunchError::NoSuchUser {
            user: user.to_owned(),
        })?;
    let name = CString::new(user).map_err(|_| LaunchError::NoSuchUser {
        user: user.to_owned(),
    })?;
    let groups = nix::unistd::getgrouplist(&name, found.gid)
        .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_else(|_| vec![found.gid.as_raw()]);
    Ok(UserIds {
        uid: found.uid.as_raw(),
        gid: found.gid.as_raw(),
        groups,
    })
}

/// What to spawn: a fresh command for each attempt (program, args, env, cwd; stdio is set here).
pub(crate) struct SpawnRequest<'a> {
    pub(crate) make: &'a dyn Fn() -> tokio::process::Command,
    pub(crate) program: &'a str,
    pub(crate) user: Option<UserIds>,
    pub(crate) ctx: &'a LaunchContext,
    pub(crate) scope: ContainmentScope,
}

enum Attempt {
    /// This mechanism is not available here: try the next.
    Unavailable(String),
    Failed(LaunchError),
}

/// Spawns the command contained by the first mechanism of the policy this machine allows.
pub(crate) fn spawn(req: &SpawnRequest<'_>) -> Result<LaunchedProcess, LaunchError> {
    let policy = &req.ctx.containment;
    let mut egress = Egress::prepare(req)?;
    let mut tried = Vec::new();
    for &kind in policy.order() {
        if let Err(reason) = availability(kind) {
            tried.push(format!("{kind}: {reason}"));
            continue;
        }
        match try_spawn(kind, req, &mut egress) {
            Ok(launched) => return Ok(launched),
            Err(Attempt::Unavailable(reason)) => {
                tracing::debug!(session = %req.ctx.session, %kind, %reason, "containment not available");
                tried.push(format!("{kind}: {reason}"));
            }
            Err(Attempt::Failed(e)) => return Err(e),
        }
    }
    Err(LaunchError::ContainmentUnavailable {
        required: policy.is_required().then(|| policy.order()[0]),
        tried: tried.join("; "),
    })
}

fn io_unavailable(what: &str, e: &io::Error) -> Attempt {
    Attempt::Unavailable(format!("{what}: {e}"))
}

/// The launch's egress control: none asked for, asked for but not enforced (and why), or the
/// session's network namespace.
enum Egress {
    Unrestricted,
    NotEnforced(EgressReport),
    Namespace(EgressReport, Option<Sandbox>),
}

impl Egress {
    /// Makes the session's network namespace if its policy asks for one and this launch can
    /// have one; fails only when the policy is required and cannot be enforced.
    fn prepare(req: &SpawnRequest<'_>) -> Result<Egress, LaunchError> {
        let Some(policy) = &req.ctx.egress else {
            return Ok(Egress::Unrestricted);
        };
        let made = if req.scope == ContainmentScope::LocalClient {
            Err("the CLI runs on another host (a remote command prefix): a network namespace here would hold only its local client".to_owned())
        } else {
            Sandbox::create(policy)
                .and_then(|mut sandbox| {
                    sandbox.serve(req.ctx.session.clone())?;
                    Ok(sandbox)
                })
                .map_err(|e| e.to_string())
        };
        match made {
            Ok(sandbox) => Ok(Egress::Namespace(
                EgressReport::enforced(policy, EgressMechanism::NetworkNamespace),
                Some(sandbox),
            )),
            Err(reason) if policy.is_required() => Err(LaunchError::EgressUnavailable {
                session: req.ctx.session.to_string(),
                reason,
            }),
            Err(reason) => {
                tracing::warn!(session = %req.ctx.session, %reason, "the session's egress policy is not enforced");
                Ok(Egress::NotEnforced(EgressReport::not_enforced(
                    policy, reason,
                )))
            }
        }
    }

    /// The namespace the keeper joins, or -1.
    fn netns(&self) -> RawFd {
        match self {
            Egress::Namespace(_, Some(sandbox)) => sandbox.fd(),
            _ => -1,
        }
    }

    fn report(&self) -> Option<EgressReport> {
        match self {
            Egress::Unrestricted => None,
            Egress::NotEnforced(report) | Egress::Namespace(report, _) => Some(report.clone()),
        }
    }
}

fn try_spawn(
    kind: ContainmentKind,
    req: &SpawnRequest<'_>,
    egress: &mut Egress,
) -> Result<LaunchedProcess, Attempt> {
    let ctx = req.ctx;
    let probe = cgroup::probe();
    let name = cgroup::dir_name(&ctx.session, &ctx.launch_id);
    let mut dirs: Vec<CgroupDir> = Vec::new();
    let remove_all = |dirs: &[CgroupDir]| {
        for d in dirs {
            let _ = d.remove();
        }
    };
    // A plain process group gets no cgroup: the processes that escape it would keep one busy
    // (and counted) long after the launch, which is not what it promises.
    let accounting =
        ctx.containment.uses_accounting_cgroups() && kind != ContainmentKind::ProcessGroup;

    // Cgroups: the mechanism's own, plus accounting ones where available.
    if kind == ContainmentKind::CgroupV2 || (accounting && probe.v2.is_some()) {
        match &probe.v2 {
            Some(v2) => match CgroupDir::create(Hierarchy::V2, &v2.dir, &name) {
                Ok(d) => dirs.push(d),
                Err(e) if kind == ContainmentKind::CgroupV2 => {
                    return Err(io_unavailable("creating the cgroup v2", &e));
                }
                Err(e) => tracing::warn!(error = %e, "no accounting cgroup v2"),
            },
            None => return Err(Attempt::Unavailable(probe.notes.join("; "))),
        }
    }
    if kind == ContainmentKind::CgroupV1 {
        let Some(parent) = &probe.v1_freezer else {
            return Err(Attempt::Unavailable(probe.notes.join("; ")));
        };
        match CgroupDir::create(Hierarchy::V1Freezer, parent, &name) {
            Ok(d) => dirs.push(d),
            Err(e) => {
                remove_all(&dirs);
                return Err(io_unavailable("creating the v1 freezer cgroup", &e));
            }
        }
    }
    if accounting
        && !dirs.iter().any(CgroupDir::has_memory)
        && let Some(parent) = &probe.v1_memory
    {
        match CgroupDir::create(Hierarchy::V1Memory, parent, &name) {
            Ok(d) => dirs.push(d),
            Err(e) => tracing::warn!(error = %e, "no accounting v1 memory cgroup"),
        }
    }
    let memory_limit = match ctx.memory_limit {
        None => None,
        Some(bytes) => match dirs.iter().find(|d| d.has_memory()) {
            Some(dir) => match dir.set_memory_limit(bytes) {
                Ok(()) => Some((bytes, MemoryEnforcement::Cgroup)),
                Err(e) => {
                    tracing::warn!(error = %e, cgroup = %dir.path.display(), "cannot set the memory limit: it will be checked instead");
                    Some((bytes, MemoryEnforcement::Checked))
                }
            },
            None => Some((bytes, MemoryEnforcement::Checked)),
        },
    };

    let result = spawn_keeper(kind, req, &dirs, egress.netns());
    match result {
        Ok(parts) => Ok(finish_launch(kind, req, parts, dirs, memory_limit, egress)),
        Err(e) => {
            remove_all(&dirs);
            Err(e)
        }
    }
}

struct Spawned {
    child: tokio::process::Child,
    keeper_pid: i32,
    keeper: PidFd,
    reported: Option<i32>,
    lifeline: OwnedFd,
}

fn c_files(dirs: &[CgroupDir], name: &str) -> Result<Vec<CString>, Attempt> {
    dirs.iter()
        .map(|d| d.c_file(name))
        .collect::<io::Result<_>>()
        .map_err(|e| Attempt::Failed(LaunchError::Other(format!("a cgroup path: {e}"))))
}

fn spawn_keeper(
    kind: ContainmentKind,
    req: &SpawnRequest<'_>,
    dirs: &[CgroupDir],
    netns: RawFd,
) -> Result<Spawned, Attempt> {
    let failed = |what: &str, e: io::Error| {
        Attempt::Failed(LaunchError::Containment {
            mechanism: kind,
            step: what.to_owned(),
            source: e,
        })
    };
    let (lifeline_r, lifeline_w) = sys::pipe().map_err(|e| failed("creating the lifeline", e))?;
    let (report_r, report_w) = sys::pipe().map_err(|e| failed("creating a pipe", e))?;
    let (diag_r, diag_w) = sys::pipe().map_err(|e| failed("creating a pipe", e))?;
    let mut join: Vec<OwnedFd> = Vec::new();
    for (dir, path) in dirs.iter().zip(c_files(dirs, "cgroup.procs")?) {
        let fd = sys::open(&path, libc::O_WRONLY);
        if fd < 0 {
            return Err(Attempt::Unavailable(format!(
                "cannot open {}: {}",
                dir.file("cgroup.procs").display(),
                io::Error::last_os_error()
            )));
        }
        // SAFETY: a fresh descriptor from open(2), owned by nobody else.
        #[allow(unsafe_code)]
        join.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let find = |h: Hierarchy| dirs.iter().find(|d| d.hierarchy == h);
    let kill = match kind {
        ContainmentKind::PidNamespace => KillPlan::Namespace,
        ContainmentKind::CgroupV2 => {
            let d =
                find(Hierarchy::V2).ok_or_else(|| Attempt::Unavailable("no v2 cgroup".into()))?;
            KillPlan::CgroupV2 {
                kill: d
                    .c_file("cgroup.kill")
                    .map_err(|e| failed("a cgroup path", e))?,
                procs: d
                    .c_file("cgroup.procs")
                    .map_err(|e| failed("a cgroup path", e))?,
            }
        }
        ContainmentKind::CgroupV1 => {
            let d = find(Hierarchy::V1Freezer)
                .ok_or_else(|| Attempt::Unavailable("no v1 freezer cgroup".into()))?;
            KillPlan::CgroupV1 {
                state: d
                    .c_file("freezer.state")
                    .map_err(|e| failed("a cgroup path", e))?,
                procs: d
                    .c_file("cgroup.procs")
                    .map_err(|e| failed("a cgroup path", e))?,
            }
        }
        ContainmentKind::Subreaper => KillPlan::Children,
        _ => KillPlan::Group,
    };
    let mode = match kind {
        ContainmentKind::PidNamespace => Mode::Namespace,
        ContainmentKind::ProcessGroup => Mode::Group,
        _ => Mode::Subreaper,
    };
    let plan = Plan {
        mode,
        kill,
        join: join.iter().map(AsRawFd::as_raw_fd).collect(),
        rmdir: dirs
            .iter()
            .map(CgroupDir::c_path)
            .collect::<io::Result<_>>()
            .map_err(|e| failed("a cgroup path", e))?,
        oom_files: dirs
            .iter()
            .filter(|d| d.has_memory())
            .filter_map(|d| {
                d.c_file(match d.hierarchy {
                    Hierarchy::V2 => "memory.events",
                    _ => "memory.oom_control",
                })
                .ok()
            })
            .collect(),
        lifeline: lifeline_r.as_raw_fd(),
        report: report_w.as_raw_fd(),
        diag: diag_w.as_raw_fd(),
        host: std::process::id() as i32,
        user: req.user.clone(),
        netns,
    };
    let mut cmd = (req.make)();
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    // SAFETY: the closure runs in the forked child before exec and makes only async-signal-safe
    // syscalls on data prepared here (see keeper.rs); it allocates nothing.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || keeper::run(&plan));
    }
    let spawned = cmd.spawn();
    // The host's copies of the child's ends: only the keeper may hold them from now on.
    drop((lifeline_r, report_w, diag_w, join));
    let child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let mut byte = [0u8; 1];
            let step = (sys::read_nonblocking(&diag_r, &mut byte) == 1)
                .then(|| Step::from_byte(byte[0]))
                .flatten();
            return Err(classify_spawn_error(kind, req, step, e));
        }
    };
    let keeper_pid = child.id().map(|p| p as i32).ok_or_else(|| {
        Attempt::Failed(LaunchError::Other(
            "the keeper exited before it was seen".into(),
        ))
    })?;
    // The keeper is our child and unreaped (nothing waits on it yet): its pid is its own.
    let keeper = PidFd::open(keeper_pid).map_err(|e| failed("pidfd_open (Linux ≥ 5.3)", e))?;
    let mut buf = [0u8; 4];
    let reported =
        (sys::read_nonblocking(&report_r, &mut buf) == 4).then(|| i32::from_le_bytes(buf));
    if kind == ContainmentKind::PidNamespace {
        PID_NAMESPACE.store(1, Ordering::SeqCst);
    }
    Ok(Spawned {
        child,
        keeper_pid,
        keeper,
        reported,
        lifeline: lifeline_w,
    })
}

fn classify_spawn_error(
    kind: ContainmentKind,
    req: &SpawnRequest<'_>,
    step: Option<Step>,
    e: io::Error,
) -> Attempt {
    match step {
        Some(Step::Unshare)
            if matches!(
                e.raw_os_error(),
                Some(libc::EPERM | libc::EINVAL | libc::ENOSPC | libc::EUSERS | libc::ENOSYS)
            ) =>
        {
            let why = format!("unshare(CLONE_NEWPID) refused: {e}");
            *PID_NAMESPACE_WHY.lock().unwrap_or_else(|p| p.into_inner()) = why.clone();
            PID_NAMESPACE.store(2, Ordering::SeqCst);
            Attempt::Unavailable(why)
        }
        Some(Step::Subreaper) => {
            Attempt::Unavailable(format!("{}: {e}", Step::Subreaper.describe()))
        }
        Some(Step::JoinCgroup) => {
            Attempt::Unavailable(format!("{}: {e}", Step::JoinCgroup.describe()))
        }
        Some(step) => Attempt::Failed(LaunchError::Containment {
            mechanism: kind,
            step: step.describe().to_owned(),
            source: e,
        }),
        // No step: exec itself failed.
        None => Attempt::Failed(crate::launcher::exec_error(req.program, e)),
    }
}

/// The children of `pid` (`/proc/<pid>/task/<pid>/children`), oldest first.
fn children_of(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|t| {
            t.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn finish_launch(
    kind: ContainmentKind,
    req: &SpawnRequest<'_>,
    spawned: Spawned,
    dirs: Vec<CgroupDir>,
    memory_limit: Option<(u64, MemoryEnforcement)>,
    egress: &mut Egress,
) -> LaunchedProcess {
    let Spawned {
        mut child,
        keeper_pid,
        keeper,
        reported,
        lifeline,
    } = spawned;
    let mut init = None;
    let mut ns = None;
    let mut cli_pid = reported;
    if kind == ContainmentKind::PidNamespace {
        if let Some(init_pid) = reported {
            // The init is the keeper's only forked child. The pidfd names the init if, once it is
            // open, the keeper (unreaped, so its children list is its own) still has that child.
            if let Ok(fd) = PidFd::open(init_pid)
                && children_of(keeper_pid).contains(&init_pid)
            {
                init = Some((init_pid, fd));
            }
            cli_pid = children_of(init_pid).first().copied();
        }
        ns = std::fs::File::open(format!("/proc/{keeper_pid}/ns/pid_for_children"))
            .ok()
            .and_then(|f| {
                let meta = f.metadata().ok()?;
                Some((f, meta.dev(), meta.ino()))
            });
    }
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    // The namespace's relays serve as long as the keeper lives (they go with it: nothing of the
    // session is left to use them).
    let egress_report = egress.report();
    let mut sandbox = match egress {
        Egress::Namespace(_, sandbox) => sandbox.take(),
        _ => None,
    };
    if let Some(kept) = sandbox.take() {
        match keeper.exit_future() {
            Ok(exited) => {
                tokio::spawn(async move {
                    exited.await;
                    drop(kept);
                });
            }
            Err(_) => sandbox = Some(kept),
        }
    }
    let signaller = std::sync::Arc::new(LocalContainment {
        kind,
        scope: req.scope,
        keeper_pid,
        keeper,
        init,
        ns,
        dirs,
        lifeline: Mutex::new(Some(lifeline)),
        memory_limit,
        egress: egress_report,
        _sandbox: sandbox,
    });
    tracing::debug!(session = %req.ctx.session, %kind, keeper = keeper_pid, cli = ?cli_pid, "launched in containment");
    LaunchedProcess {
        stdin: Box::pin(stdin.expect("stdin is piped")),
        stdout: Box::pin(stdout.expect("stdout is piped")),
        stderr: Box::pin(stderr.expect("stderr is piped")),
        pid: cli_pid.map(|p| p as u32),
        signaller,
        exit: Box::pin(async move { child.wait().await }),
    }
}

/// The host side of a local containment.
struct LocalContainment {
    kind: ContainmentKind,
    scope: ContainmentScope,
    keeper_pid: i32,
    keeper: PidFd,
    /// The namespace's init, with its pid.
    init: Option<(i32, PidFd)>,
    /// The PID namespace (kept open so that its inode names it alone), device and inode.
    ns: Option<(std::fs::File, u64, u64)>,
    dirs: Vec<CgroupDir>,
    /// The write end of the keeper's lifeline: closing it tells the keeper to kill everything.
    lifeline: Mutex<Option<OwnedFd>>,
    memory_limit: Option<(u64, MemoryEnforcement)>,
    egress: Option<EgressReport>,
    /// The session's network namespace, when no keeper exit event could take it.
    _sandbox: Option<Sandbox>,
}

impl std::fmt::Debug for LocalContainment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalContainment")
            .field("kind", &self.kind)
            .field("keeper", &self.keeper_pid)
            .field("init", &self.init.as_ref().map(|(p, _)| *p))
            .field(
                "cgroups",
                &self.dirs.iter().map(|d| &d.path).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl LocalContainment {
    fn cgroups_empty(&self) -> bool {
        self.dirs
            .iter()
            .all(|d| d.procs().is_none_or(|p| p.is_empty()))
    }

    /// The processes of the tree (not the keeper, not the init).
    fn pids(&self) -> Option<Vec<i32>> {
        let ours =
            |p: &i32| *p != self.keeper_pid && self.init.as_ref().is_none_or(|(i, _)| i != p);
        for h in [Hierarchy::V2, Hierarchy::V1Memory, Hierarchy::V1Freezer] {
            if let Some(dir) = self.dirs.iter().find(|d| d.hierarchy == h) {
                return dir.procs().map(|p| p.into_iter().filter(ours).collect());
            }
        }
        let all = std::fs::read_dir("/proc").ok()?;
        let pids = all
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok());
        if let Some((_, dev, ino)) = &self.ns {
            return Some(
                pids.filter(|pid| {
                    std::fs::metadata(format!("/proc/{pid}/ns/pid"))
                        .is_ok_and(|m| m.dev() == *dev && m.ino() == *ino)
                })
                .filter(ours)
                .collect(),
            );
        }
        // Subreaper / process group: the keeper's descendants.
        let parents: Vec<(i32, i32)> = pids
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let after = stat.get(stat.rfind(')')? + 1..)?;
                let ppid = after.split_whitespace().nth(1)?.parse().ok()?;
                Some((pid, ppid))
            })
            .collect();
        let mut out = Vec::new();
        let mut frontier = vec![self.keeper_pid];
        while let Some(parent) = frontier.pop() {
            for &(pid, ppid) in &parents {
                if ppid == parent && !out.contains(&pid) {
                    out.push(pid);
                    frontier.push(pid);
                }
            }
        }
        Some(out)
    }
}

fn smaps_field(pid: i32, file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl GroupSignaller for LocalContainment {
    fn kind(&self) -> ContainmentKind {
        self.kind
    }

    fn egress(&self) -> Option<EgressReport> {
        self.egress.clone()
    }

    fn signal(&self, signal: GroupSignal) -> io::Result<()> {
        match signal {
            GroupSignal::Terminate => {
                self.keeper.signal(libc::SIGTERM)?;
            }
            GroupSignal::Kill => {
                // The kernel's own kill first where it is the mechanism: atomic, and
                // independent of the keeper. (Accounting cgroups of other mechanisms are left
                // alone, so that each mechanism keeps exactly its documented guarantee.)
                if self.kind == ContainmentKind::CgroupV2 {
                    for d in self.dirs.iter().filter(|d| d.hierarchy == Hierarchy::V2) {
                        let _ = d.kill();
                    }
                }
                let keeper_alive = self.keeper.signal(libc::SIGUSR1)?;
                if !keeper_alive && !self.cgroups_empty() {
                    // The keeper is gone (someone SIGKILLed it): the cgroups are still ours.
                    for d in &self.dirs {
                        let _ = match d.hierarchy {
                            Hierarchy::V2 => d.kill(),
                            Hierarchy::V1Freezer => d.freeze_and_kill(),
                            Hierarchy::V1Memory => Ok(()),
                        };
                    }
                }
            }
        }
        Ok(())
    }

    fn exited(&self) -> Option<futures::future::BoxFuture<'static, ()>> {
        self.keeper.exit_future().ok()
    }

    fn group_alive(&self) -> Option<bool> {
        let init_gone = self.init.as_ref().is_none_or(|(_, fd)| fd.exited());
        Some(!(self.keeper.exited() && init_gone && self.cgroups_empty()))
    }

    fn usage(&self) -> ContainmentUsage {
        let pids = self.pids();
        let memory_dir = self.dirs.iter().find(|d| d.has_memory());
        let (memory_bytes, memory_source) = match memory_dir.and_then(CgroupDir::memory_bytes) {
            Some(bytes) => (Some(bytes), Some(MemorySource::Cgroup)),
            None => match &pids {
                Some(pids) => {
                    let pss: Option<u64> = pids
                        .iter()
                        .map(|&p| smaps_field(p, "smaps_rollup", "Pss:"))
                        .sum();
                    match pss {
                        Some(b) => (Some(b), Some(MemorySource::Pss)),
                        None => (
                            Some(
                                pids.iter()
                                    .filter_map(|&p| smaps_field(p, "status", "VmRSS:"))
                                    .sum(),
                            ),
                            Some(MemorySource::Rss),
                        ),
                    }
                }
                None => (None, None),
            },
        };
        ContainmentUsage {
            processes: pids.map(|p| p.len()),
            memory_bytes,
            memory_source,
            oom_kills: memory_dir.and_then(CgroupDir::oom_kills),
        }
    }

    fn scope(&self) -> ContainmentScope {
        self.scope
    }

    fn cgroups(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.path.clone()).collect()
    }

    fn memory_limit(&self) -> Option<(u64, MemoryEnforcement)> {
        self.memory_limit
    }
}

impl Drop for LocalContainment {
    fn drop(&mut self) {
        // Hanging up the lifeline makes the keeper kill whatever is left, wait for it, and
        // remove the cgroups; removing them here too covers a keeper that was already gone.
        drop(
            self.lifeline
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        if !self.keeper.exited() {
            return;
        }
        let dirs = std::mem::take(&mut self.dirs);
        let kind = self.kind;
        let left: Vec<CgroupDir> = dirs
            .into_iter()
            .filter(|d| {
                if kind == ContainmentKind::CgroupV2
                    && d.hierarchy == Hierarchy::V2
                    && d.procs().is_some_and(|p| !p.is_empty())
                {
                    let _ = d.kill();
                }
                d.remove().is_err()
            })
            .collect();
        if left.is_empty() {
            return;
        }
        // Members still exiting (zombies that another process reaps) keep a cgroup busy for a
        // moment: retry off the caller's thread, for a bounded time.
        let spawned = std::thread::Builder::new()
            .name("cgroup-cleanup".into())
            .spawn(move || {
                let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
                let mut left = left;
                while !left.is_empty() && std::time::Instant::now() < until {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    left.retain(|d| d.remove().is_err());
                }
                for d in left {
                    tracing::warn!(cgroup = %d.path.display(), "cgroup still busy: left in place");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the cgroup cleanup");
        }
    }
}

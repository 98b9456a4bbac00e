//! The keeper: the small process of ours that every contained launch runs between the host and the
//! CLI (Linux).
//!
//! It is the spawned child itself (tokio's `Child`), held back in `pre_exec`: it never execs.
//!
//! ```text
//! host ──(tokio Child)──► keeper K ──fork──► CLI            (cgroup / subreaper / group modes)
//! host ──(tokio Child)──► keeper K ──fork──► init R (pid 1) ──fork──► CLI   (PID namespace)
//! ```
//!
//! The process that returns from the `pre_exec` closure is the one `std` execs: the CLI. The
//! keeper (and, in a PID namespace, its init) stay inside the closure, run a loop of plain
//! syscalls, and leave with `_exit`. Everything between `fork` and `_exit` is async-signal-safe:
//! no allocation, no lock, no `std` I/O — only what the host prepared before `fork` (descriptors,
//! C strings) and the helpers of `sys.rs`.
//!
//! What the keeper does:
//! - **Lifeline.** It holds the read end of a pipe whose only write end lives in the host. When
//!   the host dies (even by SIGKILL) or drops the containment, the pipe hangs up and the keeper
//!   kills everything in the containment, removes its cgroups and exits.
//! - **Exit.** When the CLI exits, the keeper kills what is left (the CLI's process group, the
//!   cgroup, its orphans) and waits for it to be gone, then exits *with the CLI's status* (a signal
//!   is re-raised), so the host sees the CLI's exit only once nothing of it is left.
//! - **Signals from the host** (only from the host: the sender's pid is checked): SIGTERM, SIGINT,
//!   SIGHUP and SIGQUIT are forwarded to the CLI's process group (in a namespace: to every process
//!   of the namespace); SIGUSR1 means "kill everything now".
//! - **Reaping.** In every mode but the plain process group the keeper is a child subreaper:
//!   orphans of the CLI's tree are re-parented to it (not to the host's init), it reaps them, and
//!   it can find them to kill them. In a PID namespace the init reaps them.
//!
//! The keeper only signals processes it provably owns: its own unreaped children (whose pids
//! cannot be reused while they are unreaped), the process group of its unreaped CLI child, every
//! process of its own PID namespace (`kill(-1)` from the init), or a cgroup the host created for
//! this launch alone.
// Syscall sites: this whole file runs between fork and exec in a child of a multi-threaded
// process, where only raw async-signal-safe syscalls are allowed; there is no safe wrapper that
// is also guaranteed not to allocate.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

use nix::libc;

use super::sys;

/// How the keeper and the CLI are arranged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A new PID namespace whose init (pid 1) is ours; the CLI is its pid 2.
    Namespace,
    /// The keeper is a child subreaper; the CLI is its child.
    Subreaper,
    /// The keeper is a plain parent; the CLI leads its own process group.
    Group,
}

/// How the keeper kills everything.
#[derive(Debug)]
pub(crate) enum KillPlan {
    /// SIGKILL to the namespace's init: the kernel kills every process of the namespace.
    Namespace,
    /// `1` into the cgroup's `cgroup.kill` (cgroup v2, Linux ≥ 5.14).
    CgroupV2 {
        /// `<dir>/cgroup.kill`.
        kill: CString,
        /// `<dir>/cgroup.procs`.
        procs: CString,
    },
    /// Freeze the cgroup (v1 freezer), SIGKILL every listed process, thaw; until it is empty.
    CgroupV1 {
        /// `<dir>/freezer.state`.
        state: CString,
        /// `<dir>/cgroup.procs`.
        procs: CString,
    },
    /// SIGKILL every child of the (subreaper) keeper, again and again as orphans reach it.
    Children,
    /// SIGKILL the CLI's process group while its leader is unreaped.
    Group,
}

/// The uid, gid and supplementary groups to switch to before exec, resolved by the host.
#[derive(Debug, Clone)]
pub(crate) struct UserIds {
    pub(crate) uid: libc::uid_t,
    pub(crate) gid: libc::gid_t,
    pub(crate) groups: Vec<libc::gid_t>,
}

/// Everything the keeper needs, prepared by the host before `fork`.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) mode: Mode,
    pub(crate) kill: KillPlan,
    /// `cgroup.procs` descriptors (write-only) the CLI's tree joins before exec.
    pub(crate) join: Vec<RawFd>,
    /// The launch's cgroup directories, removed when everything is gone (unless the kernel's OOM
    /// killer acted in one: the host reads that after the exit, and removes them itself).
    pub(crate) rmdir: Vec<CString>,
    /// The memory cgroups' event files (`memory.events`, `memory.oom_control`).
    pub(crate) oom_files: Vec<CString>,
    /// Read end of the lifeline.
    pub(crate) lifeline: RawFd,
    /// Write end of the report pipe: the keeper writes its child's pid there.
    pub(crate) report: RawFd,
    /// Write end of the diagnostics pipe: one byte naming the step that failed.
    pub(crate) diag: RawFd,
    /// The host's pid (the only sender whose signals the keeper obeys).
    pub(crate) host: i32,
    pub(crate) user: Option<UserIds>,
    /// A network namespace to join before anything is forked (egress control), or -1.
    pub(crate) netns: RawFd,
}

/// The step of the keeper that failed, as written on the diagnostics pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Step {
    HostGone = 1,
    SignalMask = 2,
    Unshare = 3,
    Subreaper = 4,
    Pipe = 5,
    Fork = 6,
    JoinCgroup = 7,
    ProcessGroup = 8,
    SetGroups = 9,
    SetGid = 10,
    SetUid = 11,
    ParentDeathSignal = 12,
    JoinNetwork = 13,
}

impl Step {
    pub(crate) fn from_byte(b: u8) -> Option<Step> {
        use Step::*;
        Some(match b {
            1 => HostGone,
            2 => SignalMask,
            3 => Unshare,
            4 => Subreaper,
            5 => Pipe,
            6 => Fork,
            7 => JoinCgroup,
            8 => ProcessGroup,
            9 => SetGroups,
            10 => SetGid,
            11 => SetUid,
            12 => ParentDeathSignal,
            13 => JoinNetwork,
            _ => return None,
        })
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Step::HostGone => "the host exited before the CLI started",
            Step::SignalMask => "blocking signals in the keeper",
            Step::Unshare => "unshare(CLONE_NEWPID)",
            Step::Subreaper => "prctl(PR_SET_CHILD_SUBREAPER)",
            Step::Pipe => "creating the keeper's pipes",
            Step::Fork => "fork",
            Step::JoinCgroup => "moving the CLI into its cgroup (writing cgroup.procs)",
            Step::ProcessGroup => "setpgid",
            Step::SetGroups => "setgroups",
            Step::SetGid => "setgid",
            Step::SetUid => "setuid",
            Step::ParentDeathSignal => "prctl(PR_SET_PDEATHSIG)",
            Step::JoinNetwork => "setns(CLONE_NEWNET) into the session's network namespace",
        }
    }
}

/// How long the keeper waits for what is left to be gone before it gives up and exits anyway (a
/// process stuck in uninterruptible sleep cannot be hurried).
const REST_DEADLINE_MS: u64 = 10_000;

/// The signals the keeper and the init take through `signalfd`/`sigwaitinfo` instead of handlers.
fn keeper_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill our own sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
        ] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

fn fail(plan: &Plan, step: Step) -> io::Error {
    let error = sys::last_error();
    sys::write_all(plan.diag, &[step as u8]);
    error
}

fn fail_with(plan: &Plan, step: Step, errno: i32) -> io::Error {
    sys::write_all(plan.diag, &[step as u8]);
    io::Error::from_raw_os_error(errno)
}

/// The `pre_exec` body. Runs in the spawned child (the keeper); returns `Ok` only in the process
/// that is to exec the CLI. The keeper and the init never return.
pub(crate) fn run(plan: &Plan) -> io::Result<()> {
    // SAFETY (whole function): raw syscalls on our own stack data and the plan's descriptors.
    unsafe {
        if libc::getppid() != plan.host {
            return Err(fail_with(plan, Step::HostGone, libc::ESRCH));
        }
        // Default disposition for SIGCHLD (the host may have changed it), then block the keeper's
        // signals: they are read synchronously, so the host's inherited handlers never run here.
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGCHLD, &dfl, std::ptr::null_mut());
        let set = keeper_signals();
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(fail(plan, Step::SignalMask));
        }
        // The session's network namespace (egress control): the keeper joins it first, so that
        // the CLI and everything it starts are born in it.
        if plan.netns >= 0 && libc::setns(plan.netns, libc::CLONE_NEWNET) != 0 {
            return Err(fail(plan, Step::JoinNetwork));
        }
        let mut own_mount_ns = false;
        match plan.mode {
            Mode::Namespace => {
                // With a mount namespace too where allowed, so that the init can mount the
                // namespace's own /proc: the tools' `ps`, `pgrep` and `kill` then agree with the
                // pids they see.
                if libc::unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS) == 0 {
                    own_mount_ns = true;
                } else if libc::unshare(libc::CLONE_NEWPID) != 0 {
                    return Err(fail(plan, Step::Unshare));
                }
            }
            Mode::Subreaper => {
                if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 {
                    return Err(fail(plan, Step::Subreaper));
                }
            }
            Mode::Group => {}
        }
        // In a namespace: a lifeline from the keeper to the init (so that the init can tell
        // whether the keeper died before its parent-death signal was armed), and a pipe for the
        // CLI's status (the init cannot re-raise a signal: pid 1 ignores its own signals).
        let mut keeper_line = [-1 as RawFd; 2];
        let mut status_pipe = [-1 as RawFd; 2];
        if plan.mode == Mode::Namespace
            && (libc::pipe2(keeper_line.as_mut_ptr(), libc::O_CLOEXEC) != 0
                || libc::pipe2(status_pipe.as_mut_ptr(), libc::O_CLOEXEC) != 0)
        {
            return Err(fail(plan, Step::Pipe));
        }
        let me = libc::getpid();
        let child = libc::fork();
        if child < 0 {
            return Err(fail(plan, Step::Fork));
        }
        if child == 0 {
            return match plan.mode {
                Mode::Namespace => init_main(plan, keeper_line, status_pipe, own_mount_ns),
                _ => {
                    for &fd in &plan.join {
                        if !sys::write_all(fd, b"0") {
                            return Err(fail(plan, Step::JoinCgroup));
                        }
                    }
                    prepare_cli(plan, me)
                }
            };
        }
        sys::write_all(plan.report, &child.to_le_bytes());
        keeper_main(plan, child, keeper_line[1], status_pipe[0])
    }
}

/// In the process that will exec the CLI: its own process group, the user switch, an empty signal
/// mask, and death with its parent (`parent` is the keeper's pid, or 1 for the init).
fn prepare_cli(plan: &Plan, parent: i32) -> io::Result<()> {
    // SAFETY: raw syscalls on our own data.
    unsafe {
        if libc::setpgid(0, 0) != 0 {
            return Err(fail(plan, Step::ProcessGroup));
        }
        if let Some(user) = &plan.user {
            if libc::getuid() == 0
                && libc::setgroups(user.groups.len() as _, user.groups.as_ptr()) != 0
            {
                return Err(fail(plan, Step::SetGroups));
            }
            if libc::setgid(user.gid) != 0 {
                return Err(fail(plan, Step::SetGid));
            }
            if libc::setuid(user.uid) != 0 {
                return Err(fail(plan, Step::SetUid));
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        // After the user switch: a credential change clears the parent-death signal.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(fail(plan, Step::ParentDeathSignal));
        }
        if libc::getppid() != parent {
            return Err(fail_with(plan, Step::HostGone, libc::ESRCH));
        }
    }
    Ok(())
}

/// The namespace's init (pid 1): joins the cgroups, forks the CLI (pid 2), then reaps orphans and
/// forwards the keeper's signals until the CLI exits. Its exit makes the kernel kill every other
/// process of the namespace.
fn init_main(
    plan: &Plan,
    keeper_line: [RawFd; 2],
    status_pipe: [RawFd; 2],
    own_mount_ns: bool,
) -> io::Result<()> {
    // SAFETY: raw syscalls on our own data.
    unsafe {
        sys::close(keeper_line[1]);
        sys::close(status_pipe[0]);
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(fail(plan, Step::ParentDeathSignal));
        }
        // getppid() is 0 for a namespace's init whoever the parent is, so the keeper's liveness
        // is read from its lifeline: a hang-up means it died before the signal was armed.
        let mut pfd = libc::pollfd {
            fd: keeper_line[0],
            events: libc::POLLIN,
            revents: 0,
        };
        if libc::poll(&mut pfd, 1, 0) > 0 && pfd.revents & libc::POLLHUP != 0 {
            return Err(fail_with(plan, Step::HostGone, libc::ESRCH));
        }
        sys::close(keeper_line[0]);
        if own_mount_ns {
            mount_own_proc();
        }
        for &fd in &plan.join {
            if !sys::write_all(fd, b"0") {
                return Err(fail(plan, Step::JoinCgroup));
            }
        }
        let cli = libc::fork();
        if cli < 0 {
            return Err(fail(plan, Step::Fork));
        }
        if cli == 0 {
            return prepare_cli(plan, 1);
        }
        let status_w = status_pipe[1];
        sys::close_all_except(&[status_w]);
        let set = keeper_signals();
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let sig = libc::sigwaitinfo(&set, &mut info);
            if sig < 0 {
                continue;
            }
            match sig {
                libc::SIGCHLD => loop {
                    let mut status = 0;
                    let pid = libc::waitpid(-1, &mut status, libc::WNOHANG);
                    if pid <= 0 {
                        break;
                    }
                    if pid == cli {
                        sys::write_all(status_w, &status.to_le_bytes());
                        libc::_exit(0);
                    }
                },
                // Only from outside the namespace (the keeper): si_pid is 0 then. A tool's
                // `kill 1` is not a request to stop the session.
                libc::SIGTERM | libc::SIGINT | libc::SIGHUP | libc::SIGQUIT
                    if info.si_pid() == 0 =>
                {
                    libc::kill(-1, sig);
                }
                _ => {}
            }
        }
    }
}

/// In the init, which has a mount namespace of its own (never call it otherwise: it would change
/// the host's mount propagation): stop mount events from propagating back to the host (slave),
/// then mount a procfs of the new PID namespace over `/proc`. Best effort: if it fails, the tools
/// see the host's `/proc`.
fn mount_own_proc() {
    // SAFETY: mount(2) with constant C strings.
    unsafe {
        let own_ns = libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_SLAVE,
            std::ptr::null(),
        ) == 0;
        if own_ns {
            libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            );
        }
    }
}

struct Keeper<'a> {
    plan: &'a Plan,
    /// The keeper's child: the CLI, or the namespace's init.
    child: i32,
    child_status: Option<i32>,
    status_r: RawFd,
    lifeline: RawFd,
    host_gone: bool,
}

/// The keeper's loop: never returns.
fn keeper_main(plan: &Plan, child: i32, keeper_line_w: RawFd, status_r: RawFd) -> ! {
    // SAFETY: raw syscalls on our own data.
    unsafe {
        // Keep only the lifeline and the namespace pipes: the stdio pipes, the exec-error socket
        // and the cgroup descriptors belong to the CLI, and holding them would delay the host's
        // EOFs (and its `spawn`, which waits for the exec-error socket to close).
        sys::close_all_except(&[plan.lifeline, keeper_line_w, status_r]);
        let set = keeper_signals();
        let sfd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC);
        let mut k = Keeper {
            plan,
            child,
            child_status: None,
            status_r,
            lifeline: plan.lifeline,
            host_gone: false,
        };
        if sfd < 0 {
            // Cannot listen: the CLI cannot be contained, so it does not run.
            k.kill_all();
            k.finish();
        }
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: sfd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: k.lifeline,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let n = libc::poll(fds.as_mut_ptr(), 2, -1);
            if n < 0 {
                continue;
            }
            if fds[1].revents != 0 {
                // The host is gone (or let go of the containment): nothing of it may stay.
                sys::close(k.lifeline);
                k.lifeline = -1;
                k.host_gone = true;
                k.kill_all();
            }
            if fds[0].revents & libc::POLLIN != 0 {
                let mut info: libc::signalfd_siginfo = std::mem::zeroed();
                let size = std::mem::size_of::<libc::signalfd_siginfo>();
                let buf = std::slice::from_raw_parts_mut((&raw mut info).cast::<u8>(), size);
                if sys::read(sfd, buf) == size as isize {
                    let from_host = info.ssi_pid as i32 == plan.host;
                    match info.ssi_signo as i32 {
                        libc::SIGCHLD => k.reap(),
                        sig @ (libc::SIGTERM | libc::SIGINT | libc::SIGHUP | libc::SIGQUIT)
                            if from_host =>
                        {
                            k.forward(sig)
                        }
                        libc::SIGUSR1 if from_host => k.kill_all(),
                        _ => {}
                    }
                }
            }
            if k.child_status.is_some() {
                k.finish();
            }
        }
    }
}

impl Keeper<'_> {
    /// Reaps every exited child. The CLI's process group is killed while its leader is still
    /// unreaped (so its group id cannot have been reused).
    fn reap(&mut self) {
        // SAFETY: raw syscalls on our own data.
        unsafe {
            loop {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                let r = libc::waitid(
                    libc::P_ALL,
                    0,
                    &mut info,
                    libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                );
                let pid = info.si_pid();
                if r != 0 || pid == 0 {
                    return;
                }
                if pid == self.child && self.plan.mode != Mode::Namespace {
                    libc::killpg(pid, libc::SIGKILL);
                }
                let mut status = 0;
                if libc::waitpid(pid, &mut status, libc::WNOHANG) == pid && pid == self.child {
                    self.child_status = Some(status);
                }
            }
        }
    }

    /// Forwards a stop signal from the host to the CLI's process group (in a namespace: to its
    /// init, which sends it to every process of the namespace).
    fn forward(&self, sig: i32) {
        if self.child_status.is_some() {
            return;
        }
        // SAFETY: signals to our unreaped child, or to the group it leads.
        unsafe {
            if self.plan.mode == Mode::Namespace {
                libc::kill(self.child, sig);
            } else {
                libc::killpg(self.child, sig);
            }
        }
    }

    /// Kills everything in the containment, once. What dies is reaped by `reap` and `finish`.
    fn kill_all(&mut self) {
        // SAFETY: signals only to our unreaped child, the group it leads, or our own cgroup.
        unsafe {
            if self.child_status.is_none() {
                if self.plan.mode != Mode::Namespace {
                    libc::killpg(self.child, libc::SIGKILL);
                }
                libc::kill(self.child, libc::SIGKILL);
            }
        }
        match &self.plan.kill {
            KillPlan::Namespace | KillPlan::Group => {}
            KillPlan::CgroupV2 { kill, .. } => {
                sys::write_file(kill, b"1");
            }
            KillPlan::CgroupV1 { state, procs } => freezer_kill_once(state, procs),
            KillPlan::Children => kill_children_once(),
        }
    }

    /// The CLI has exited: kill what is left, wait until it is gone, exit with the CLI's status.
    fn finish(&mut self) -> ! {
        let deadline = sys::now_ms() + REST_DEADLINE_MS;
        match &self.plan.kill {
            KillPlan::Namespace | KillPlan::Group => {}
            KillPlan::CgroupV2 { kill, procs } => {
                while sys::for_each_pid_in(procs, |_| {}) > 0 && sys::now_ms() < deadline {
                    sys::write_file(kill, b"1");
                    self.reap_orphans();
                    sys::sleep_ms(2);
                }
            }
            KillPlan::CgroupV1 { state, procs } => {
                while sys::for_each_pid_in(procs, |_| {}) > 0 && sys::now_ms() < deadline {
                    freezer_kill_once(state, procs);
                    self.reap_orphans();
                    sys::sleep_ms(2);
                }
            }
            KillPlan::Children => {}
        }
        if self.plan.mode == Mode::Subreaper {
            // Orphans reach us as their parents die: kill and reap until we have no child left.
            while sys::now_ms() < deadline {
                kill_children_once();
                if self.reap_orphans() {
                    break;
                }
                sys::sleep_ms(1);
            }
        }
        // The cgroups go with the launch (so that none is left behind when the host exits before
        // it lets go of the containment), unless the host still has to read an OOM kill there.
        if self.host_gone || !self.plan.oom_files.iter().any(|f| oom_kills(f) > 0) {
            // Members still being reaped keep a cgroup busy for a moment: retry until the
            // deadline.
            loop {
                let mut busy = false;
                for dir in &self.plan.rmdir {
                    // SAFETY: a valid C string; rmdir of an (empty) cgroup.
                    let r = unsafe { libc::rmdir(dir.as_ptr()) };
                    if r != 0 && sys::last_error().raw_os_error() == Some(libc::EBUSY) {
                        busy = true;
                    }
                }
                if !busy || sys::now_ms() >= deadline {
                    break;
                }
                self.reap_orphans();
                sys::sleep_ms(5);
            }
        }
        let mut status = self.child_status.unwrap_or(libc::SIGKILL);
        if self.plan.mode == Mode::Namespace {
            let mut buf = [0u8; 4];
            if sys::read(self.status_r, &mut buf) == 4 {
                status = i32::from_le_bytes(buf);
            }
        }
        exit_like(status)
    }

    /// Reaps exited children without blocking; true when there is no child left at all.
    fn reap_orphans(&mut self) -> bool {
        // SAFETY: waitpid on our own children.
        unsafe {
            loop {
                let mut status = 0;
                let pid = libc::waitpid(-1, &mut status, libc::WNOHANG);
                if pid > 0 {
                    if pid == self.child {
                        self.child_status = Some(status);
                    }
                    continue;
                }
                return pid < 0;
            }
        }
    }
}

/// The `oom_kill` count in a memory cgroup's event file (0 when unreadable; fork-safe).
fn oom_kills(path: &std::ffi::CStr) -> u64 {
    let fd = sys::open(path, libc::O_RDONLY);
    if fd < 0 {
        return 0;
    }
    let mut buf = [0u8; 512];
    let n = sys::read(fd, &mut buf);
    sys::close(fd);
    let text = buf.get(..n.max(0) as usize).unwrap_or_default();
    const KEY: &[u8] = b"oom_kill ";
    let mut i = 0;
    while i + KEY.len() <= text.len() {
        let at_line_start = i == 0 || text[i - 1] == b'\n';
        if at_line_start && text[i..].starts_with(KEY) {
            let mut value: u64 = 0;
            for &b in &text[i + KEY.len()..] {
                if !b.is_ascii_digit() {
                    break;
                }
                value = value.saturating_mul(10).saturating_add(u64::from(b - b'0'));
            }
            return value;
        }
        i += 1;
    }
    0
}

/// SIGKILLs every child of the keeper (they are unreaped, so their pids are theirs).
fn kill_children_once() {
    const CHILDREN: &std::ffi::CStr = c"/proc/thread-self/children";
    sys::for_each_pid_in(CHILDREN, |pid| {
        // SAFETY: a signal to one of our own unreaped children.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    });
}

/// Freezes a v1 freezer cgroup, SIGKILLs every process in it (frozen processes cannot exit, so
/// no listed pid can be reused meanwhile), and thaws it so that they die.
fn freezer_kill_once(state: &std::ffi::CStr, procs: &std::ffi::CStr) {
    sys::write_file(state, b"FROZEN");
    let until = sys::now_ms() + 1000;
    let mut frozen = false;
    while sys::now_ms() < until {
        let fd = sys::open(state, libc::O_RDONLY);
        if fd >= 0 {
            let mut buf = [0u8; 16];
            let n = sys::read(fd, &mut buf);
            sys::close(fd);
            if n >= 6 && buf.starts_with(b"FROZEN") {
                frozen = true;
                break;
            }
        }
        sys::sleep_ms(1);
    }
    if frozen {
        sys::for_each_pid_in(procs, |pid| {
            // SAFETY: a signal to a frozen member of our own cgroup.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        });
    }
    sys::write_file(state, b"THAWED");
}

/// Exits with `status` as `waitpid` reported it: the same code, or the same signal.
fn exit_like(status: i32) -> ! {
    // SAFETY: raw syscalls; the process ends here.
    unsafe {
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            // Reproduce the signal, without a core dump of the keeper.
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
            let mut one: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut one);
            libc::sigaddset(&mut one, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
            libc::kill(libc::getpid(), sig);
            libc::_exit(128 + sig);
        }
        libc::_exit(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kills_are_read_from_either_event_file() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = dir.path().join("memory.oom_control");
        std::fs::write(&v1, "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n").unwrap();
        let v2 = dir.path().join("memory.events");
        std::fs::write(
            &v2,
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        let c = |p: &std::path::Path| CString::new(p.to_str().unwrap()).unwrap();
        assert_eq!(oom_kills(&c(&v1)), 3);
        assert_eq!(oom_kills(&c(&v2)), 1);
        assert_eq!(oom_kills(&c(&dir.path().join("missing"))), 0);
    }
}

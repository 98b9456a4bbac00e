//! The default launcher: a child process on this machine.

use std::io;
use std::process::Stdio;
use std::sync::Arc;

use claude_protocol::CommandSpec;
use futures::future::BoxFuture;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::{GroupSignal, GroupSignaller, LaunchError, LaunchedProcess, Launcher};

/// Runs the CLI as a child of this process, in a process group of its own, set to die with its
/// host (on Linux, a parent-death signal), with all three pipes captured.
///
/// The parent-death signal fires when the *thread* that spawned the child exits; tokio's worker
/// threads live as long as the runtime, so in practice the CLI dies when the runtime or the process
/// does. A supervisor that is shut down normally stops its sessions by the full recipe long
/// before that.
#[derive(Clone, Debug, Default)]
pub struct LocalLauncher {
    _private: (),
}

impl LocalLauncher {
    /// A local launcher.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Launcher for LocalLauncher {
    fn launch<'a>(
        &'a self,
        spec: &'a CommandSpec,
    ) -> BoxFuture<'a, Result<LaunchedProcess, LaunchError>> {
        Box::pin(async move { launch_local(spec) })
    }
}

fn launch_local(spec: &CommandSpec) -> Result<LaunchedProcess, LaunchError> {
    spec.write_spill_files()
        .map_err(|source| LaunchError::SpillFile {
            path: spec
                .spill_files
                .first()
                .map(|f| f.path.display().to_string())
                .unwrap_or_default(),
            source,
        })?;
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args);
    for name in &spec.env_remove {
        cmd.env_remove(name);
    }
    for (name, value) in &spec.env {
        cmd.env(name, value);
    }
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    if let Some(user) = &spec.user {
        let found = nix::unistd::User::from_name(user)
            .map_err(|e| LaunchError::Other(format!("could not look up user `{user}`: {e}")))?
            .ok_or_else(|| LaunchError::Other(format!("no such user `{user}`")))?;
        cmd.uid(found.uid.as_raw()).gid(found.gid.as_raw());
    }
    spawn_grouped(cmd, &spec.program.display().to_string())
}

/// Spawns `cmd` with its three pipes captured, in a process group of its own, killed on drop and
/// (on Linux) set to die with its host; the process is the group's leader, so the returned
/// signaller reaches everything it starts in the group.
pub(super) fn spawn_grouped(
    mut cmd: tokio::process::Command,
    program: &str,
) -> Result<LaunchedProcess, LaunchError> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    set_parent_death_signal(&mut cmd);
    let mut child = cmd.spawn().map_err(|source| LaunchError::Spawn {
        program: program.to_owned(),
        source,
    })?;
    let pid = child.id();
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(LaunchError::Other(
            "the child's pipes were not captured".into(),
        ));
    };
    let signaller = Arc::new(LocalGroup {
        pgid: pid.map(|p| p as i32),
    });
    Ok(LaunchedProcess {
        stdin: Box::pin(stdin),
        stdout: Box::pin(stdout),
        stderr: Box::pin(stderr),
        pid,
        signaller,
        exit: Box::pin(async move { child.wait().await }),
    })
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_parent_death_signal(cmd: &mut tokio::process::Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec, and only makes two
    // async-signal-safe syscalls (prctl, getppid) and may return an error; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            // The parent may have died between fork and prctl: then no signal would ever come.
            if nix::unistd::getppid().as_raw() as u32 != parent {
                return Err(io::Error::other("parent exited before exec"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_cmd: &mut tokio::process::Command) {}

#[derive(Debug)]
struct LocalGroup {
    pgid: Option<i32>,
}

impl GroupSignaller for LocalGroup {
    fn signal(&self, signal: GroupSignal) -> io::Result<()> {
        let Some(pgid) = self.pgid else { return Ok(()) };
        let sig = match signal {
            GroupSignal::Terminate => Signal::SIGTERM,
            GroupSignal::Kill => Signal::SIGKILL,
        };
        match killpg(Pid::from_raw(pgid), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(io::Error::from(e)),
        }
    }

    fn group_alive(&self) -> Option<bool> {
        let pgid = self.pgid?;
        // Signal 0 checks for existence without sending anything.
        Some(killpg(Pid::from_raw(pgid), None).is_ok())
    }
}

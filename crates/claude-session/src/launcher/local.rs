//! The default launcher: a child process on this machine, contained.

use claude_protocol::CommandSpec;
use futures::future::BoxFuture;

use super::{LaunchContext, LaunchError, LaunchedProcess, Launcher};
use crate::containment::ContainmentScope;

/// Runs the CLI on this machine, in the containment the session's
/// [`ContainmentPolicy`](crate::ContainmentPolicy) asks for (by default the strongest this
/// machine allows: a PID namespace, a cgroup, a subreaper, or a process group), with all three
/// pipes captured.
///
/// The environment is the [`CommandSpec`]'s: with [`env_clear`](CommandSpec::env_clear) (the
/// session's default [`EnvPolicy::Clean`](crate::EnvPolicy::Clean)) only its variables, else
/// this process's environment minus its removals plus its variables. The working directory, the
/// program and the user are checked before anything is started, each failure with its own
/// [`LaunchError`].
///
/// Everything the CLI starts dies with the host process, even when it is killed with SIGKILL:
/// the keeper between the host and the CLI holds a lifeline to the host (see
/// `docs/deployment-patterns.md`).
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
        Box::pin(async move { launch_local(spec, &LaunchContext::for_spec(spec)) })
    }

    fn launch_with<'a>(
        &'a self,
        spec: &'a CommandSpec,
        ctx: &'a LaunchContext,
    ) -> BoxFuture<'a, Result<LaunchedProcess, LaunchError>> {
        Box::pin(async move { launch_local(spec, ctx) })
    }

    fn preflight(&self, spec: &CommandSpec) -> Result<(), LaunchError> {
        preflight_local(spec)
    }
}

/// The checks of a local launch: working directory, program, user.
pub(super) fn preflight_local(spec: &CommandSpec) -> Result<(), LaunchError> {
    if let Some(cwd) = &spec.cwd {
        super::check_cwd(cwd)?;
    }
    super::check_program(
        spec.program.as_os_str(),
        spec.cwd.as_deref(),
        super::spec_path_var(spec).as_deref(),
    )?;
    if let Some(user) = &spec.user {
        #[cfg(target_os = "linux")]
        crate::containment::resolve_user(user)?;
        #[cfg(not(target_os = "linux"))]
        if nix::unistd::User::from_name(user).ok().flatten().is_none() {
            return Err(LaunchError::NoSuchUser { user: user.clone() });
        }
    }
    Ok(())
}

pub(super) fn write_spill_files(spec: &CommandSpec) -> Result<(), LaunchError> {
    spec.write_spill_files()
        .map_err(|source| LaunchError::SpillFile {
            path: spec
                .spill_files
                .first()
                .map(|f| f.path.display().to_string())
                .unwrap_or_default(),
            source,
        })
}

fn launch_local(spec: &CommandSpec, ctx: &LaunchContext) -> Result<LaunchedProcess, LaunchError> {
    preflight_local(spec)?;
    write_spill_files(spec)?;
    let make = || {
        let mut cmd = tokio::process::Command::new(&spec.program);
        cmd.args(&spec.args);
        if spec.env_clear {
            cmd.env_clear();
        }
        for name in &spec.env_remove {
            cmd.env_remove(name);
        }
        for (name, value) in &spec.env {
            cmd.env(name, value);
        }
        if let Some(cwd) = &spec.cwd {
            cmd.current_dir(cwd);
        }
        cmd
    };
    spawn_with_user(
        &make,
        &spec.program.display().to_string(),
        spec.user.as_deref(),
        ctx,
        ContainmentScope::Cli,
    )
}

/// Spawns the command that `make` builds (program, arguments, environment, working directory;
/// stdio is set here) in the containment `ctx` asks for, with its three pipes captured. This is
/// what [`LocalLauncher`] and [`CommandPrefixLauncher`](crate::CommandPrefixLauncher) use; a
/// custom launcher that starts a local process gets the same containment from it.
///
/// `make` is called once per mechanism tried.
///
/// # Errors
///
/// [`LaunchError`]: the program cannot be executed, the required containment is not available,
/// setting the containment up failed.
pub fn spawn_contained(
    make: impl Fn() -> tokio::process::Command,
    ctx: &LaunchContext,
) -> Result<LaunchedProcess, LaunchError> {
    let program = make().as_std().get_program().to_string_lossy().into_owned();
    spawn_with_user(&make, &program, None, ctx, ContainmentScope::Cli)
}

#[cfg(target_os = "linux")]
pub(super) fn spawn_with_user(
    make: &dyn Fn() -> tokio::process::Command,
    program: &str,
    user: Option<&str>,
    ctx: &LaunchContext,
    scope: ContainmentScope,
) -> Result<LaunchedProcess, LaunchError> {
    let user = user.map(crate::containment::resolve_user).transpose()?;
    crate::containment::spawn(&crate::containment::SpawnRequest {
        make,
        program,
        user,
        ctx,
        scope,
    })
}

#[cfg(not(target_os = "linux"))]
pub(super) fn spawn_with_user(
    make: &dyn Fn() -> tokio::process::Command,
    program: &str,
    user: Option<&str>,
    ctx: &LaunchContext,
    _scope: ContainmentScope,
) -> Result<LaunchedProcess, LaunchError> {
    plain::spawn(make, program, user, ctx)
}

/// Without Linux: a plain process group, killed on drop.
#[cfg(not(target_os = "linux"))]
mod plain {
    use std::io;
    use std::process::Stdio;

    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;

    use super::super::{GroupSignal, LaunchContext, LaunchError, LaunchedProcess};
    use crate::containment::{ContainmentKind, GroupSignaller};

    #[derive(Debug)]
    struct Group(i32);

    impl GroupSignaller for Group {
        fn kind(&self) -> ContainmentKind {
            ContainmentKind::ProcessGroup
        }

        fn signal(&self, signal: GroupSignal) -> io::Result<()> {
            let sig = match signal {
                GroupSignal::Terminate => Signal::SIGTERM,
                GroupSignal::Kill => Signal::SIGKILL,
            };
            match killpg(Pid::from_raw(self.0), sig) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
                Err(e) => Err(io::Error::from(e)),
            }
        }
    }

    pub(super) fn spawn(
        make: &dyn Fn() -> tokio::process::Command,
        program: &str,
        user: Option<&str>,
        ctx: &LaunchContext,
    ) -> Result<LaunchedProcess, LaunchError> {
        if ctx.containment.is_required()
            && ctx.containment.order() != [ContainmentKind::ProcessGroup]
        {
            return Err(LaunchError::ContainmentUnavailable {
                required: ctx.containment.order().first().copied(),
                tried: "only a process group is available without Linux".into(),
            });
        }
        let mut cmd = make();
        if let Some(user) = user {
            let found = nix::unistd::User::from_name(user)
                .ok()
                .flatten()
                .ok_or_else(|| LaunchError::NoSuchUser { user: user.into() })?;
            cmd.uid(found.uid.as_raw()).gid(found.gid.as_raw());
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| super::super::exec_error(program, e))?;
        let pid = child.id();
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        Ok(LaunchedProcess {
            stdin: Box::pin(stdin.expect("stdin is piped")),
            stdout: Box::pin(stdout.expect("stdout is piped")),
            stderr: Box::pin(stderr.expect("stderr is piped")),
            pid,
            signaller: std::sync::Arc::new(Group(pid.map_or(0, |p| p as i32))),
            exit: Box::pin(async move { child.wait().await }),
        })
    }
}

//! Where the CLI process runs: the [`Launcher`] seam.
//!
//! A launcher turns a [`CommandSpec`] (program, argv, environment, working directory, spill files)
//! into a running process, held in a [`Containment`] chosen by the [`LaunchContext`]'s
//! [`ContainmentPolicy`](crate::ContainmentPolicy), and hands back its three pipes, the
//! containment (signal, measure and wait for everything the process starts), and a future that
//! resolves when it exits. The session actor never touches `std::process` itself, so the same
//! supervision, restarts and resume work over any launcher: [`LocalLauncher`] (the default) runs
//! the CLI here; [`CommandPrefixLauncher`] runs it through a wrapper (`ssh HOST --`,
//! `docker exec -i CONTAINER`, `kubectl exec -i POD --`, `unshare`, …) while the supervisor
//! stays home; users can write their own, and reuse the local containment with
//! [`spawn_contained`].

mod command_prefix;
mod local;

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::Arc;

use claude_protocol::CommandSpec;
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};

pub use command_prefix::CommandPrefixLauncher;
pub use local::{LocalLauncher, spawn_contained};

pub use crate::containment::GroupSignaller;
use crate::containment::{Containment, ContainmentKind, ContainmentPolicy};
use crate::egress::EgressPolicy;

/// Starts the CLI process described by a [`CommandSpec`].
///
/// Implementations must hold everything the process starts in the returned containment (its
/// [`GroupSignaller`], so that all of it can be signalled and waited for together) and must reap
/// the process: the `exit` future of [`LaunchedProcess`] resolves only once it has been waited
/// for. [`spawn_contained`] does both for a process on this machine.
pub trait Launcher: Send + Sync + fmt::Debug + 'static {
    /// Launches the process with a context derived from the spec
    /// ([`LaunchContext::for_spec`]: the automatic containment, no memory limit).
    ///
    /// # Errors
    ///
    /// [`LaunchError`] when the process cannot be started: a missing working directory, a
    /// program that is missing or not executable, a user that does not exist, spill files that
    /// cannot be written, …
    ///
    /// # Cancel safety
    ///
    /// Implementations should not leave a process behind when this future is dropped; the local
    /// launchers spawn synchronously, so there is no point at which they could.
    fn launch<'a>(
        &'a self,
        spec: &'a CommandSpec,
    ) -> BoxFuture<'a, Result<LaunchedProcess, LaunchError>>;

    /// Launches the process contained as `ctx` asks (its containment policy and memory limit).
    /// This is what a session calls. The default ignores `ctx` and calls
    /// [`launch`](Self::launch); the session then refuses the result if the policy required a
    /// mechanism the returned containment is not.
    ///
    /// # Errors
    ///
    /// As for [`launch`](Self::launch), and
    /// [`LaunchError::ContainmentUnavailable`] when a required mechanism is not available.
    ///
    /// # Cancel safety
    ///
    /// As for [`launch`](Self::launch).
    fn launch_with<'a>(
        &'a self,
        spec: &'a CommandSpec,
        ctx: &'a LaunchContext,
    ) -> BoxFuture<'a, Result<LaunchedProcess, LaunchError>> {
        let _ = ctx;
        self.launch(spec)
    }

    /// Checks now what [`launch`](Self::launch) would refuse (a missing working directory, a
    /// program that is not executable, an unknown user), where the launcher can tell from here.
    /// The default checks nothing.
    ///
    /// # Errors
    ///
    /// The [`LaunchError`] the launch would fail with.
    fn preflight(&self, spec: &CommandSpec) -> Result<(), LaunchError> {
        let _ = spec;
        Ok(())
    }

    /// Whether the file `path` exists where this launcher runs the CLI (a resume checks whether
    /// the CLI has its session file). The default looks on this machine.
    ///
    /// # Errors
    ///
    /// [`LaunchError::Staging`] when it cannot be told.
    ///
    /// # Cancel safety
    ///
    /// Only reads; safe to drop.
    fn file_exists<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<bool, LaunchError>> {
        Box::pin(async move { Ok(path.is_file()) })
    }

    /// Writes `bytes` to the file `path` where this launcher runs the CLI, creating its folders,
    /// replacing any earlier file, readable by its owner only (a session file written from a
    /// store before a resume). The default writes on this machine.
    ///
    /// # Errors
    ///
    /// [`LaunchError::Staging`] when it cannot be written.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the file partly written; the next staging replaces it.
    fn stage_file<'a>(
        &'a self,
        path: &'a Path,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<(), LaunchError>> {
        Box::pin(async move { stage_locally(path, bytes) })
    }
}

/// Writes `bytes` to `path` on this machine (folders created, mode 0600, synced).
pub(crate) fn stage_locally(path: &Path, bytes: &[u8]) -> Result<(), LaunchError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let failed = |e: io::Error| LaunchError::Staging {
        action: "write",
        path: path.to_owned(),
        reason: e.to_string(),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(failed)?;
    f.write_all(bytes).map_err(failed)?;
    f.sync_all().map_err(failed)
}

/// Set in every session process's environment to the session's name (inherited by everything
/// it starts unless a tool clears its environment), so that its processes can be found.
pub const SESSION_ENV: &str = "CLAUDE_SUPERVISOR_SESSION";

/// Set in every session process's environment to the launch's id ([`LaunchContext::launch_id`]).
pub const LAUNCH_ID_ENV: &str = "CLAUDE_SUPERVISOR_LAUNCH";

/// What a launch is for: the session, a per-launch id, how to contain it, its memory limit.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LaunchContext {
    /// The session's name.
    pub session: Arc<str>,
    /// Unique per launch (also in the process's environment as
    /// [`LAUNCH_ID_ENV`](crate::LAUNCH_ID_ENV)).
    pub launch_id: String,
    /// Which containment to use.
    pub containment: ContainmentPolicy,
    /// A memory limit for everything in the containment, in bytes.
    pub memory_limit: Option<u64>,
    /// Where the launch's processes may connect (`None`: anywhere the host can).
    pub egress: Option<EgressPolicy>,
}

impl LaunchContext {
    /// A context for `session` with a fresh launch id, the automatic containment policy and no
    /// memory limit.
    pub fn new(session: impl Into<Arc<str>>) -> Self {
        Self {
            session: session.into(),
            launch_id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            containment: ContainmentPolicy::auto(),
            memory_limit: None,
            egress: None,
        }
    }

    /// The context a bare [`Launcher::launch`] uses: the session and launch id from the spec's
    /// [`SESSION_ENV`] and [`LAUNCH_ID_ENV`] variables (when it has them), the automatic
    /// containment, no memory limit.
    pub fn for_spec(spec: &CommandSpec) -> Self {
        let var = |name: &str| {
            spec.env
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        let mut ctx = Self::new(var(SESSION_ENV).unwrap_or_else(|| "process".to_owned()));
        if let Some(id) = var(LAUNCH_ID_ENV) {
            ctx.launch_id = id;
        }
        ctx
    }

    /// With this containment policy.
    #[must_use]
    pub fn containment(mut self, policy: ContainmentPolicy) -> Self {
        self.containment = policy;
        self
    }

    /// With this memory limit.
    #[must_use]
    pub fn memory_limit(mut self, bytes: Option<u64>) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// With this egress policy.
    #[must_use]
    pub fn egress(mut self, policy: Option<EgressPolicy>) -> Self {
        self.egress = policy;
        self
    }
}

/// A process that a [`Launcher`] started.
pub struct LaunchedProcess {
    /// The process's stdin: JSON lines go here.
    pub stdin: Pin<Box<dyn AsyncWrite + Send>>,
    /// The process's stdout: JSON lines come from here.
    pub stdout: Pin<Box<dyn AsyncRead + Send>>,
    /// The process's stderr, drained into the session's stderr tail.
    pub stderr: Pin<Box<dyn AsyncRead + Send>>,
    /// The OS process id of the CLI (or of the wrapper that runs it), where there is one on this
    /// machine. It leads its own process group.
    pub pid: Option<u32>,
    /// Signals, measures and waits for everything the process starts: its containment (see
    /// [`containment`](Self::containment) for the handle).
    pub signaller: Arc<dyn GroupSignaller>,
    /// Resolves with the exit status once the process has exited and been reaped.
    pub exit: BoxFuture<'static, io::Result<ExitStatus>>,
}

impl LaunchedProcess {
    /// A handle on the process's containment (a clone of [`signaller`](Self::signaller)).
    pub fn containment(&self) -> Containment {
        Containment::from_arc(self.signaller.clone())
    }
}

impl fmt::Debug for LaunchedProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchedProcess")
            .field("pid", &self.pid)
            .field("signaller", &self.signaller)
            .finish_non_exhaustive()
    }
}

/// The signals the shutdown recipe sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupSignal {
    /// SIGTERM: ask to stop.
    Terminate,
    /// SIGKILL: stop now, everything.
    Kill,
}

/// A process could not be launched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// The working directory does not exist.
    #[error("the working directory `{}` does not exist", .path.display())]
    CwdNotFound {
        /// The directory.
        path: PathBuf,
    },
    /// The working directory is not a directory.
    #[error("the working directory `{}` is not a directory", .path.display())]
    CwdNotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The program does not exist (or is not on `PATH`).
    #[error("the program `{program}` does not exist{}", if *.searched_path { " on PATH" } else { "" })]
    ProgramNotFound {
        /// The program.
        program: String,
        /// Whether it was looked up on `PATH` (a bare name).
        searched_path: bool,
    },
    /// The program exists but cannot be executed.
    #[error("the program `{program}` is not executable: {reason}")]
    ProgramNotExecutable {
        /// The program.
        program: String,
        /// Why (a directory, no execute permission, not an executable format, …).
        reason: String,
    },
    /// The user to run as does not exist.
    #[error("no such user `{user}`")]
    NoSuchUser {
        /// The user.
        user: String,
    },
    /// The user could not be looked up.
    #[error("could not look up user `{user}`: {source}")]
    UserLookup {
        /// The user.
        user: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// No mechanism of the containment policy is available here (for a required one: that one).
    #[error("{}: {tried}", match .required { Some(kind) => format!("the required containment `{kind}` is not available"), None => "no containment mechanism is available".to_owned() })]
    ContainmentUnavailable {
        /// The required mechanism, if the policy required one.
        required: Option<ContainmentKind>,
        /// Each mechanism tried and why it is not available.
        tried: String,
    },
    /// The session's egress policy is required but cannot be enforced here.
    #[error("session `{session}`: its egress policy is required but cannot be enforced: {reason}")]
    EgressUnavailable {
        /// The session.
        session: String,
        /// Why (no privilege for a network namespace, a remote launcher, …).
        reason: String,
    },
    /// Setting up the containment failed.
    #[error("{mechanism} containment: {step} failed: {source}")]
    Containment {
        /// The mechanism.
        mechanism: ContainmentKind,
        /// The step that failed.
        step: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The program could not be started for another reason.
    #[error("could not start `{program}`: {source}")]
    Spawn {
        /// The program that was to run.
        program: String,
        /// Why it could not.
        #[source]
        source: io::Error,
    },
    /// A spill file (a payload kept out of argv) could not be written.
    #[error("could not write spill file `{path}`: {source}")]
    SpillFile {
        /// The file.
        path: String,
        /// Why it could not be written.
        #[source]
        source: io::Error,
    },
    /// A file could not be checked or written where the CLI runs (see [`Launcher::stage_file`]).
    #[error("could not {action} `{}` where the CLI runs: {reason}", .path.display())]
    Staging {
        /// What was being done (`check`, `write`).
        action: &'static str,
        /// The file, on the CLI's side.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The launcher's own failure, described by it.
    #[error("{0}")]
    Other(String),
}

/// The error for an `exec` of `program` that failed with `e`.
pub(crate) fn exec_error(program: &str, e: io::Error) -> LaunchError {
    match e.raw_os_error() {
        Some(nix::libc::ENOENT) => LaunchError::ProgramNotFound {
            program: program.to_owned(),
            searched_path: !program.contains('/'),
        },
        Some(nix::libc::EACCES | nix::libc::ENOEXEC | nix::libc::EISDIR) => {
            LaunchError::ProgramNotExecutable {
                program: program.to_owned(),
                reason: e.to_string(),
            }
        }
        _ => LaunchError::Spawn {
            program: program.to_owned(),
            source: e,
        },
    }
}

/// Checks that `cwd` is an existing directory.
pub(crate) fn check_cwd(cwd: &Path) -> Result<(), LaunchError> {
    match std::fs::metadata(cwd) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(LaunchError::CwdNotADirectory {
            path: cwd.to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(LaunchError::CwdNotFound {
            path: cwd.to_owned(),
        }),
        // Unreadable (a permission problem, say): leave the verdict to the launch itself.
        Err(_) => Ok(()),
    }
}

/// Checks that `program` names an executable file: a path as is (relative to `cwd`), a bare name
/// on `path_var`.
pub(crate) fn check_program(
    program: &OsStr,
    cwd: Option<&Path>,
    path_var: Option<&OsStr>,
) -> Result<(), LaunchError> {
    use std::os::unix::fs::PermissionsExt;
    let name = program.to_string_lossy().into_owned();
    let candidates: Vec<PathBuf> = if name.contains('/') {
        let p = PathBuf::from(program);
        vec![match cwd {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p,
        }]
    } else {
        std::env::split_paths(path_var.unwrap_or_default())
            .map(|dir| dir.join(program))
            .collect()
    };
    let mut not_executable = None;
    for candidate in &candidates {
        let Ok(meta) = std::fs::metadata(candidate) else {
            continue;
        };
        if meta.is_dir() {
            not_executable = Some(format!("`{}` is a directory", candidate.display()));
        } else if meta.permissions().mode() & 0o111 == 0 {
            not_executable = Some(format!(
                "`{}` has no execute permission (mode {:o})",
                candidate.display(),
                meta.permissions().mode() & 0o7777
            ));
        } else if nix::unistd::access(candidate.as_path(), nix::unistd::AccessFlags::X_OK).is_err()
        {
            not_executable = Some(format!(
                "`{}` may not be executed by this user",
                candidate.display()
            ));
        } else {
            return Ok(());
        }
        if name.contains('/') {
            break;
        }
    }
    Err(match not_executable {
        Some(reason) => LaunchError::ProgramNotExecutable {
            program: name,
            reason,
        },
        None => LaunchError::ProgramNotFound {
            searched_path: !program.to_string_lossy().contains('/'),
            program: name,
        },
    })
}

/// The `PATH` a spec's program is looked up on: the spec's own, else (unless it clears the
/// environment) this process's.
pub(crate) fn spec_path_var(spec: &CommandSpec) -> Option<std::ffi::OsString> {
    spec.env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| {
            if spec.env_clear {
                None
            } else {
                std::env::var_os("PATH")
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_path_has_its_own_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(
            matches!(check_cwd(&missing), Err(LaunchError::CwdNotFound { path }) if path == missing)
        );
        let file = dir.path().join("file");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        assert!(matches!(
            check_cwd(&file),
            Err(LaunchError::CwdNotADirectory { .. })
        ));
        assert!(check_cwd(dir.path()).is_ok());

        let e = check_program(file.as_os_str(), None, None).unwrap_err();
        assert!(matches!(e, LaunchError::ProgramNotExecutable { .. }), "{e}");
        assert!(e.to_string().contains("no execute permission"), "{e}");
        let e = check_program(dir.path().as_os_str(), None, None).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let e = check_program(missing.as_os_str(), None, None).unwrap_err();
        assert!(
            matches!(
                e,
                LaunchError::ProgramNotFound {
                    searched_path: false,
                    ..
                }
            ),
            "{e}"
        );
        let e = check_program(
            OsStr::new("surely-not-a-program-x9"),
            None,
            Some(OsStr::new("/bin:/usr/bin")),
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not exist on PATH"), "{e}");
        assert!(check_program(OsStr::new("sh"), None, Some(OsStr::new("/usr/bin:/bin"))).is_ok());
    }
}

//! Where the CLI process runs: the [`Launcher`] seam.
//!
//! A launcher turns a [`CommandSpec`] (program, argv, environment, working directory, spill files)
//! into a running process and hands back its three pipes, a way to signal its whole process group,
//! and a future that resolves (and reaps) when it exits. The session actor never touches
//! `std::process` itself, so the same supervision, restarts and resume work over any launcher:
//! [`LocalLauncher`] (the default) runs the CLI here; [`CommandPrefixLauncher`] runs it through a
//! wrapper (`ssh HOST --`, `docker exec -i CONTAINER`, `kubectl exec -i POD --`, `unshare`, …)
//! while the supervisor stays home; users can write their own.

mod command_prefix;
mod local;

use std::fmt;
use std::io;
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::Arc;

use claude_protocol::CommandSpec;
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};

pub use command_prefix::CommandPrefixLauncher;
pub use local::LocalLauncher;

/// Starts the CLI process described by a [`CommandSpec`].
///
/// Implementations must start the process in a process group of its own (so that everything it
/// starts can be signalled together) and must reap it: the `exit` future of [`LaunchedProcess`]
/// resolves only once the process has been waited for.
pub trait Launcher: Send + Sync + fmt::Debug + 'static {
    /// Launches the process.
    ///
    /// # Errors
    ///
    /// [`LaunchError`] when the process cannot be started (missing program, spill files that
    /// cannot be written, …).
    ///
    /// # Cancel safety
    ///
    /// Implementations should not leave a process behind when this future is dropped; the local
    /// launcher spawns synchronously, so there is no point at which it could.
    fn launch<'a>(
        &'a self,
        spec: &'a CommandSpec,
    ) -> BoxFuture<'a, Result<LaunchedProcess, LaunchError>>;
}

/// A process that a [`Launcher`] started.
pub struct LaunchedProcess {
    /// The process's stdin: JSON lines go here.
    pub stdin: Pin<Box<dyn AsyncWrite + Send>>,
    /// The process's stdout: JSON lines come from here.
    pub stdout: Pin<Box<dyn AsyncRead + Send>>,
    /// The process's stderr, drained into the session's stderr tail.
    pub stderr: Pin<Box<dyn AsyncRead + Send>>,
    /// The OS process id, where there is one on this machine.
    pub pid: Option<u32>,
    /// Signals the process's whole group.
    pub signaller: Arc<dyn GroupSignaller>,
    /// Resolves with the exit status once the process has exited and been reaped.
    pub exit: BoxFuture<'static, io::Result<ExitStatus>>,
}

impl fmt::Debug for LaunchedProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaunchedProcess")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// The signals the shutdown recipe sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupSignal {
    /// SIGTERM: ask to stop.
    Terminate,
    /// SIGKILL: stop now.
    Kill,
}

/// Sends a signal to every process of a launched process's group.
pub trait GroupSignaller: Send + Sync + fmt::Debug {
    /// Signals the whole group. A group that no longer exists is not an error.
    ///
    /// # Errors
    ///
    /// Any other failure to deliver the signal.
    fn signal(&self, signal: GroupSignal) -> io::Result<()>;

    /// Whether any process of the group is still alive, where the launcher can tell.
    fn group_alive(&self) -> Option<bool> {
        None
    }
}

/// A process could not be launched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// The program could not be started.
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
    /// The launcher's own failure, described by it.
    #[error("{0}")]
    Other(String),
}

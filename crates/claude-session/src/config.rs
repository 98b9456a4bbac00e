//! How a session is set up: its name, its CLI options, where its process runs, and its limits.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use claude_protocol::ClaudeOptions;

use crate::callbacks::Callbacks;
use crate::launcher::{Launcher, LocalLauncher};
use crate::ledger::SessionLedger;

/// What [`Session::query`](crate::Session::query) does when the turn queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueuePolicy {
    /// Wait until a place frees up (the default).
    #[default]
    Wait,
    /// Fail at once with [`SessionError::QueueFull`](crate::SessionError::QueueFull).
    Reject,
}

/// The time limits of a session. Every duration also accepts a humantime string in the builder.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// From launch to the answer to `initialize`.
    pub init: Duration,
    /// A whole turn, from dispatch to its `result`; `None`: no limit (the default).
    pub turn: Option<Duration>,
    /// A busy session that receives no frame for this long is interrupted, and failed if the
    /// interrupt does not end the turn within `control`; `None`: no stall detection. Time spent
    /// waiting on one of our callbacks does not count.
    pub stall: Option<Duration>,
    /// How long an interrupt (or any control request) may take to be answered.
    pub control: Duration,
    /// Shutdown: after stdin is closed, how long the CLI gets to exit by itself.
    pub stdin_grace: Duration,
    /// Shutdown: after SIGTERM to the group, how long before SIGKILL.
    pub term_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            init: Duration::from_secs(60),
            turn: None,
            stall: Some(Duration::from_secs(300)),
            control: Duration::from_secs(10),
            stdin_grace: Duration::from_secs(5),
            term_grace: Duration::from_secs(2),
        }
    }
}

/// Everything a session needs to start.
///
/// Built with [`SessionConfig::builder`]; cheap to clone (a supervisor keeps one to restart the
/// session with).
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub(crate) name: Arc<str>,
    pub(crate) options: ClaudeOptions,
    pub(crate) cli_path: PathBuf,
    pub(crate) launcher: Arc<dyn Launcher>,
    pub(crate) timeouts: Timeouts,
    pub(crate) max_line_bytes: usize,
    pub(crate) stderr_tail_bytes: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) queue_policy: QueuePolicy,
    pub(crate) stream_buffer: usize,
    pub(crate) interrupt_on_drop: bool,
    pub(crate) ledger: SessionLedger,
    pub(crate) events_capacity: usize,
    pub(crate) callbacks: Option<Callbacks>,
}

impl SessionConfig {
    /// Starts a builder for a session called `name` running the CLI at `cli_path`.
    ///
    /// Find the CLI with [`claude_protocol::find_cli`].
    pub fn builder(name: impl Into<String>, cli_path: impl Into<PathBuf>) -> SessionConfigBuilder {
        SessionConfigBuilder {
            config: SessionConfig {
                name: Arc::from(name.into()),
                options: ClaudeOptions::default(),
                cli_path: cli_path.into(),
                launcher: Arc::new(LocalLauncher::new()),
                timeouts: Timeouts::default(),
                max_line_bytes: 64 * 1024 * 1024,
                stderr_tail_bytes: 16 * 1024,
                queue_capacity: 16,
                queue_policy: QueuePolicy::Wait,
                stream_buffer: 256,
                interrupt_on_drop: true,
                ledger: SessionLedger::new(),
                events_capacity: 1024,
                callbacks: None,
            },
            error: None,
        }
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CLI options.
    pub fn options(&self) -> &ClaudeOptions {
        &self.options
    }

    /// The ledger shared by every instance of this session (session id, cost totals).
    pub fn ledger(&self) -> &SessionLedger {
        &self.ledger
    }

    /// The time limits.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// The callbacks (permission, hooks, in-process MCP servers), if any.
    pub fn callbacks(&self) -> Option<&Callbacks> {
        self.callbacks.as_ref()
    }

    /// The options the CLI is launched with: the configured ones plus what the callbacks need.
    pub(crate) fn launch_options(&self) -> ClaudeOptions {
        match &self.callbacks {
            Some(callbacks) => callbacks.apply_to_options(&self.options),
            None => self.options.clone(),
        }
    }

    /// The `initialize` request for `options` (from [`launch_options`](Self::launch_options)),
    /// with the callbacks' hook registrations and server names.
    pub(crate) fn initialize_request(
        &self,
        options: &ClaudeOptions,
    ) -> claude_protocol::InitializeRequest {
        let mut request = options.initialize_request();
        if let Some(callbacks) = &self.callbacks {
            callbacks.contribute(&mut request);
        }
        request
    }
}

/// Builds a [`SessionConfig`]; see [`SessionConfig::builder`].
#[derive(Debug)]
#[must_use]
pub struct SessionConfigBuilder {
    config: SessionConfig,
    error: Option<ConfigError>,
}

/// A session configuration value is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session `{session}`: invalid `{option}`: {reason}")]
pub struct ConfigError {
    /// The session.
    pub session: String,
    /// The option.
    pub option: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl SessionConfigBuilder {
    fn fail(&mut self, option: &'static str, reason: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(ConfigError {
                session: self.config.name.to_string(),
                option,
                reason: reason.into(),
            });
        }
    }

    fn duration(&mut self, option: &'static str, value: impl IntoDuration) -> Option<Duration> {
        match value.into_duration() {
            Ok(d) if d.is_zero() => {
                self.fail(option, "must be greater than zero");
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.fail(option, e);
                None
            }
        }
    }

    /// The CLI options (model, permission mode, resume, …).
    pub fn options(mut self, options: ClaudeOptions) -> Self {
        self.config.options = options;
        self
    }

    /// Where the CLI runs (default: [`LocalLauncher`]).
    pub fn launcher(mut self, launcher: impl Launcher) -> Self {
        self.config.launcher = Arc::new(launcher);
        self
    }

    /// Like [`launcher`](Self::launcher), with a shared launcher.
    pub fn launcher_arc(mut self, launcher: Arc<dyn Launcher>) -> Self {
        self.config.launcher = launcher;
        self
    }

    /// Time from launch to the answer to `initialize` (default 60 s). Accepts a `Duration` or a
    /// humantime string such as `"30s"`.
    pub fn init_timeout(mut self, value: impl IntoDuration) -> Self {
        if let Some(d) = self.duration("init_timeout", value) {
            self.config.timeouts.init = d;
        }
        self
    }

    /// Limit for a whole turn (default: none).
    pub fn turn_timeout(mut self, value: impl IntoDuration) -> Self {
        if let Some(d) = self.duration("turn_timeout", value) {
            self.config.timeouts.turn = Some(d);
        }
        self
    }

    /// Silence after which a busy session is interrupted, then failed (default 5 min). Time the
    /// CLI spends waiting on one of our callbacks (a permission, a hook) is not silence.
    pub fn stall_timeout(mut self, value: impl IntoDuration) -> Self {
        if let Some(d) = self.duration("stall_timeout", value) {
            self.config.timeouts.stall = Some(d);
        }
        self
    }

    /// Turns stall detection off.
    pub fn no_stall_timeout(mut self) -> Self {
        self.config.timeouts.stall = None;
        self
    }

    /// Deadline for answers to control requests, interrupts included (default 10 s).
    pub fn control_timeout(mut self, value: impl IntoDuration) -> Self {
        if let Some(d) = self.duration("control_timeout", value) {
            self.config.timeouts.control = d;
        }
        self
    }

    /// Shutdown: time the CLI gets to exit after stdin closes (default 5 s).
    pub fn stdin_grace(mut self, value: impl IntoDuration) -> Self {
        if let Some(d) = self.duration("stdin_grace", value) {
            self.config.timeouts.stdin_grace = d;
        }
        self
    }

    /// Shutdown: time between SIGTERM and SIGKILL to the group (default 2 s).
    pub fn term_grace(mut self, value: impl IntoDuration) -> Self {
        if let Some(d) = self.duration("term_grace", value) {
            self.config.timeouts.term_grace = d;
        }
        self
    }

    /// Longest stdout line accepted (default 64 MiB); longer lines are skipped and reported.
    pub fn max_line_bytes(mut self, bytes: usize) -> Self {
        if bytes < 1024 {
            self.fail(
                "max_line_bytes",
                format!("{bytes} is below the minimum of 1024"),
            );
        }
        self.config.max_line_bytes = bytes;
        self
    }

    /// How much of the CLI's stderr is kept for error messages (default 16 KiB).
    pub fn stderr_tail_bytes(mut self, bytes: usize) -> Self {
        if bytes == 0 {
            self.fail("stderr_tail_bytes", "must be greater than zero");
        }
        self.config.stderr_tail_bytes = bytes;
        self
    }

    /// How many turns may wait behind the running one (default 16), and what happens when the
    /// queue is full.
    pub fn queue(mut self, capacity: usize, policy: QueuePolicy) -> Self {
        self.config.queue_capacity = capacity;
        self.config.queue_policy = policy;
        self
    }

    /// About how many frames a turn's stream buffers before the session waits for its reader
    /// (default 256). Frames travel in batches of up to 64 (one hand-off per batch, not per
    /// frame), so the bound is rounded up to whole batches. A slow reader slows its own session,
    /// never another.
    pub fn stream_buffer(mut self, frames: usize) -> Self {
        if frames == 0 {
            self.fail("stream_buffer", "must be greater than zero");
        }
        self.config.stream_buffer = frames;
        self
    }

    /// Whether dropping a running turn's stream interrupts the turn (default true). When false,
    /// the turn runs to its end and its frames are discarded.
    pub fn interrupt_on_drop(mut self, yes: bool) -> Self {
        self.config.interrupt_on_drop = yes;
        self
    }

    /// A ledger shared with earlier instances of this session, so that the session id and the
    /// cost totals carry over a restart.
    pub fn ledger(mut self, ledger: SessionLedger) -> Self {
        self.config.ledger = ledger;
        self
    }

    /// Typed callbacks: a permission callback, hooks, in-process MCP servers (see
    /// [`Callbacks`]). They answer the CLI's `can_use_tool`, `hook_callback` and `mcp_message`
    /// requests unless [`StartOptions::control_handler`](crate::StartOptions::control_handler)
    /// is given.
    pub fn callbacks(mut self, callbacks: Callbacks) -> Self {
        self.config.callbacks = Some(callbacks);
        self
    }

    /// Capacity of the lifecycle event channel (default 1024).
    pub fn events_capacity(mut self, capacity: usize) -> Self {
        if capacity == 0 {
            self.fail("events_capacity", "must be greater than zero");
        }
        self.config.events_capacity = capacity;
        self
    }

    /// Validates and returns the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first invalid value.
    pub fn build(mut self) -> Result<SessionConfig, ConfigError> {
        if self.config.name.is_empty() {
            self.fail("name", "must not be empty");
        }
        if self.config.cli_path.as_os_str().is_empty() {
            self.fail("cli_path", "must not be empty");
        }
        if let Some(callbacks) = self.config.callbacks.clone() {
            if let Err(reason) = callbacks.check(&self.config.options) {
                self.fail("callbacks", reason);
            }
            for warning in callbacks.unreachable_warnings(&self.config.options) {
                tracing::warn!(session = %self.config.name, "{warning}");
            }
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.config),
        }
    }
}

/// A duration given as a [`Duration`] or as a humantime string (`"30s"`, `"5m"`).
pub trait IntoDuration {
    /// Converts, or says why not.
    ///
    /// # Errors
    ///
    /// A string that humantime cannot parse.
    fn into_duration(self) -> Result<Duration, String>;
}

impl IntoDuration for Duration {
    fn into_duration(self) -> Result<Duration, String> {
        Ok(self)
    }
}

impl IntoDuration for &str {
    fn into_duration(self) -> Result<Duration, String> {
        humantime::parse_duration(self).map_err(|e| format!("`{self}` is not a duration: {e}"))
    }
}

impl IntoDuration for String {
    fn into_duration(self) -> Result<Duration, String> {
        self.as_str().into_duration()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humantime_strings_and_errors_name_the_option() {
        let c = SessionConfig::builder("s", "/bin/claude")
            .init_timeout("30s")
            .stall_timeout("5m")
            .build()
            .unwrap();
        assert_eq!(c.timeouts.init, Duration::from_secs(30));
        assert_eq!(c.timeouts.stall, Some(Duration::from_secs(300)));
        let e = SessionConfig::builder("s1", "/bin/claude")
            .turn_timeout("soon")
            .build()
            .unwrap_err();
        assert_eq!(e.option, "turn_timeout");
        assert!(e.to_string().contains("session `s1`"), "{e}");
        assert!(e.to_string().contains("`soon`"), "{e}");
        let e = SessionConfig::builder("s", "/bin/claude")
            .init_timeout("0s")
            .build()
            .unwrap_err();
        assert_eq!(e.option, "init_timeout");
    }
}

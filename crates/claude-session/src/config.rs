//! How a session is set up: its name, its CLI options, where its process runs, and its limits.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use claude_protocol::{ClaudeOptions, CommandSpec};

use crate::callbacks::Callbacks;
use crate::containment::ContainmentPolicy;
use crate::egress::EgressPolicy;
use crate::launcher::{LAUNCH_ID_ENV, Launcher, LocalLauncher, SESSION_ENV};
use crate::ledger::SessionLedger;

/// Which of the host's environment variables a session's CLI gets.
///
/// The default is [`Clean`](Self::Clean) with [`EnvPolicy::DEFAULT_KEEP`]: the CLI runs tools
/// that an agent chooses (shell commands, scripts, MCP servers), and every variable of the host
/// reaches all of them — the host's API tokens, proxy settings, cloud credentials, database URLs.
/// A clean environment passes only what the CLI needs to run and to authenticate, plus what the
/// session's options set explicitly; anything else must be asked for by name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvPolicy {
    /// The host's whole environment, minus the options' removals, plus the options' variables.
    Inherit,
    /// Only the host variables named in `keep` (a name ending in `*` keeps every variable with
    /// that prefix), plus the options' variables.
    Clean {
        /// The host variables to pass on.
        keep: Vec<String>,
    },
}

impl Default for EnvPolicy {
    fn default() -> Self {
        Self::clean()
    }
}

impl EnvPolicy {
    /// What [`clean`](Self::clean) keeps: the search path, the user's identity and home (where
    /// the CLI finds its login), the terminal and locale, the temporary directory, the
    /// credentials the CLI itself reads, and the switches that select a cloud provider.
    pub const DEFAULT_KEEP: &'static [&'static str] = &[
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "TERM",
        "TZ",
        "TMPDIR",
        "LANG",
        "LANGUAGE",
        "LC_*",
        "ANTHROPIC_API_KEY",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "CLAUDE_CODE_USE_BEDROCK",
        "CLAUDE_CODE_USE_VERTEX",
        "CLAUDE_CODE_USE_FOUNDRY",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "CLOUD_ML_REGION",
        "ANTHROPIC_VERTEX_PROJECT_ID",
    ];

    /// A clean environment keeping [`DEFAULT_KEEP`](Self::DEFAULT_KEEP) (the default).
    pub fn clean() -> Self {
        Self::Clean {
            keep: Self::DEFAULT_KEEP.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// A clean environment keeping only `names`.
    pub fn clean_keeping<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::Clean {
            keep: names.into_iter().map(Into::into).collect(),
        }
    }

    /// Also keeps `name` (a trailing `*` keeps a prefix); no effect on [`Inherit`](Self::Inherit).
    #[must_use]
    pub fn keep(mut self, name: impl Into<String>) -> Self {
        if let Self::Clean { keep } = &mut self {
            let name = name.into();
            if !keep.contains(&name) {
                keep.push(name);
            }
        }
        self
    }

    /// No longer keeps `name` (exactly as listed); no effect on [`Inherit`](Self::Inherit).
    #[must_use]
    pub fn without(mut self, name: &str) -> Self {
        if let Self::Clean { keep } = &mut self {
            keep.retain(|k| k != name);
        }
        self
    }

    /// Whether `name` is kept.
    pub fn keeps(&self, name: &str) -> bool {
        match self {
            Self::Inherit => true,
            Self::Clean { keep } => keep.iter().any(|k| match k.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => k == name,
            }),
        }
    }

    /// The variables of `host` that a clean policy passes on (`None` for
    /// [`Inherit`](Self::Inherit): everything is inherited).
    pub fn resolve(
        &self,
        host: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Option<Vec<(OsString, OsString)>> {
        match self {
            Self::Inherit => None,
            Self::Clean { .. } => Some(
                host.into_iter()
                    .filter(|(k, _)| k.to_str().is_some_and(|k| self.keeps(k)))
                    .collect(),
            ),
        }
    }
}

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
    pub(crate) env_policy: EnvPolicy,
    pub(crate) home: Option<PathBuf>,
    pub(crate) containment: ContainmentPolicy,
    pub(crate) memory_limit: Option<u64>,
    pub(crate) egress: Option<EgressPolicy>,
    pub(crate) memory_check_interval: Duration,
    pub(crate) spares: Option<crate::SparePool>,
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
                env_policy: EnvPolicy::default(),
                home: None,
                containment: ContainmentPolicy::default(),
                memory_limit: None,
                egress: None,
                memory_check_interval: Duration::from_secs(1),
                spares: None,
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

    /// Which of the host's environment variables the CLI gets.
    pub fn env_policy(&self) -> &EnvPolicy {
        &self.env_policy
    }

    /// The session's own home directory, if it has one.
    pub fn home(&self) -> Option<&Path> {
        self.home.as_deref()
    }

    /// How the session's processes are contained.
    pub fn containment(&self) -> &ContainmentPolicy {
        &self.containment
    }

    /// The memory limit for everything the session runs, in bytes.
    pub fn memory_limit(&self) -> Option<u64> {
        self.memory_limit
    }

    /// Where the session's processes may connect (`None`: anywhere the host can).
    pub fn egress(&self) -> Option<&EgressPolicy> {
        self.egress.as_ref()
    }

    /// Checks now what a launch would refuse — a working directory that does not exist or is
    /// not a directory, a CLI that is missing or not executable, a user that does not exist —
    /// where the launcher can tell from here (the local launchers can). A session checks the
    /// same at every launch; a configuration is built once and reused for restarts, so what
    /// counts is the file system at launch.
    ///
    /// # Errors
    ///
    /// [`SessionError::Options`](crate::SessionError::Options) or
    /// [`SessionError::Launch`](crate::SessionError::Launch) with the typed cause.
    pub fn preflight(&self) -> Result<(), crate::SessionError> {
        let options = self.launch_options();
        // Spill paths only: nothing is written by a preflight.
        let spill_dir = std::env::temp_dir().join("claude-session-preflight");
        let mut spec = options
            .command(&self.cli_path, Some(&spill_dir))
            .map_err(|source| crate::SessionError::Options {
                session: self.name.to_string(),
                source,
            })?;
        self.apply_environment(&mut spec, "preflight");
        self.launcher
            .preflight(&spec)
            .map_err(|source| crate::SessionError::Launch {
                session: self.name.to_string(),
                source,
            })
    }

    /// Applies the environment policy, the session's home and the session markers to a spec
    /// built from the options: `[kept host variables] [home] [options' variables] [markers]`,
    /// later ones winning.
    pub(crate) fn apply_environment(&self, spec: &mut CommandSpec, launch_id: &str) {
        let mut env = match self.env_policy.resolve(std::env::vars_os()) {
            Some(mut kept) => {
                spec.env_clear = true;
                // The options' removals apply to what is inherited, kept variables included.
                kept.retain(|(k, _)| !spec.env_remove.contains(k));
                kept
            }
            None => Vec::new(),
        };
        if let Some(home) = &self.home {
            for (name, path) in home_vars(home) {
                env.push((name.into(), path.into_os_string()));
            }
        }
        env.append(&mut spec.env);
        env.push((SESSION_ENV.into(), self.name.as_ref().into()));
        env.push((LAUNCH_ID_ENV.into(), launch_id.into()));
        spec.env = env;
    }

    /// Creates the session's home directories (before a launch).
    pub(crate) fn prepare_home(&self) -> std::io::Result<()> {
        if let Some(home) = &self.home {
            for (_, dir) in home_vars(home) {
                std::fs::create_dir_all(dir)?;
            }
        }
        Ok(())
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

/// The variables that give a session its own home: `HOME`, the CLI's config dir, the XDG dirs.
fn home_vars(home: &Path) -> [(&'static str, PathBuf); 6] {
    [
        ("HOME", home.to_owned()),
        ("CLAUDE_CONFIG_DIR", home.join(".claude")),
        ("XDG_CONFIG_HOME", home.join(".config")),
        ("XDG_CACHE_HOME", home.join(".cache")),
        ("XDG_DATA_HOME", home.join(".local/share")),
        ("XDG_STATE_HOME", home.join(".local/state")),
    ]
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

    /// Which of the host's environment variables the CLI (and so every tool it runs) gets
    /// (default [`EnvPolicy::clean`]: an allow-list; see [`EnvPolicy`] for why).
    pub fn env_policy(mut self, policy: EnvPolicy) -> Self {
        self.config.env_policy = policy;
        self
    }

    /// Gives the session its own home: `HOME=<dir>`, `CLAUDE_CONFIG_DIR=<dir>/.claude` and the
    /// XDG directories under it, created before each launch. The CLI's login, settings,
    /// conversations and caches then live there, apart from the host user's and other sessions'.
    /// Variables set in the options still win.
    pub fn isolated_home(mut self, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        if !dir.is_absolute() {
            self.fail(
                "isolated_home",
                format!("`{}` is not an absolute path", dir.display()),
            );
        }
        self.config.home = Some(dir);
        self
    }

    /// How the session's processes are contained (default [`ContainmentPolicy::auto`]: the
    /// strongest mechanism this machine allows). [`ContainmentPolicy::require`] makes a launch
    /// fail when the mechanism is not available.
    pub fn containment(mut self, policy: ContainmentPolicy) -> Self {
        self.config.containment = policy;
        self
    }

    /// A memory limit for everything the session runs (the CLI and its tools), in bytes. The
    /// session's memory cgroup enforces it where there is one, else the session checks it every
    /// [`memory_check_interval`](Self::memory_check_interval). Exceeding it stops the CLI with
    /// [`SessionError::MemoryLimitExceeded`](crate::SessionError::MemoryLimitExceeded) and a
    /// [`SessionEventKind::MemoryLimitExceeded`](crate::SessionEventKind::MemoryLimitExceeded)
    /// event, so that a supervisor restarts it with its conversation.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        if bytes < 16 * 1024 * 1024 {
            self.fail(
                "memory_limit",
                format!("{bytes} bytes is below the minimum of 16 MiB"),
            );
        }
        self.config.memory_limit = Some(bytes);
        self
    }

    /// Where the session's processes — the CLI, its tools, what they start — may connect: only
    /// the policy's addresses (see [`EgressPolicy`] for how it is enforced, and where it cannot
    /// be). Remember the address the CLI itself needs: its API endpoint (`ANTHROPIC_BASE_URL`),
    /// unless a gateway adds its own with [`egress_allow`](Self::egress_allow).
    pub fn egress(mut self, policy: EgressPolicy) -> Self {
        self.config.egress = Some(policy);
        self
    }

    /// Adds `addr` to the session's egress policy, if it has one (a supervisor adds its
    /// credential gateway's address this way, whatever policy the session was given).
    pub fn egress_allow(mut self, addr: std::net::SocketAddr) -> Self {
        if let Some(policy) = self.config.egress.take() {
            self.config.egress = Some(policy.allow(addr));
        }
        self
    }

    /// Takes the session's CLI from this pool of warm spares when its spawn-time options match
    /// the pool's (else it starts cold; [`HealthSnapshot::start`](crate::HealthSnapshot::start)
    /// says which path it took, and why). See [`SparePool`](crate::SparePool).
    pub fn spares(mut self, pool: crate::SparePool) -> Self {
        self.config.spares = Some(pool);
        self
    }

    /// How often the tree's memory is sampled against the memory limit (default 1 s).
    pub fn memory_check_interval(mut self, value: impl IntoDuration) -> Self {
        if let Some(d) = self.duration("memory_check_interval", value) {
            self.config.memory_check_interval = d;
        }
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
        if let Some(cwd) = &self.config.options.cwd
            && cwd.as_os_str().is_empty()
        {
            self.fail("cwd", "must not be empty");
        }
        if let Some(user) = self.config.options.user.clone()
            && (user.is_empty() || user.contains(['\0', ':', '/']))
        {
            self.fail("user", format!("`{user}` is not a user name"));
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

    #[test]
    fn a_clean_policy_keeps_only_its_list_and_the_options_win() {
        let host = [
            ("PATH", "/usr/bin"),
            ("LC_ALL", "C"),
            ("DATABASE_URL", "postgres://secret"),
            ("ANTHROPIC_AUTH_TOKEN", "host-token"),
            ("HTTPS_PROXY", "http://proxy"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let kept = EnvPolicy::clean().resolve(host.clone()).unwrap();
        let names: Vec<_> = kept.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(names, ["PATH", "LC_ALL", "HOME"]);
        assert!(EnvPolicy::Inherit.resolve(host.clone()).is_none());
        let custom = EnvPolicy::clean().without("HOME").keep("DATABASE_URL");
        let names: Vec<_> = custom
            .resolve(host)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k.into_string().unwrap())
            .collect();
        assert_eq!(names, ["PATH", "LC_ALL", "DATABASE_URL"]);

        let config = SessionConfig::builder("env", "/bin/claude")
            .options(
                ClaudeOptions::builder()
                    .env("HOME", "/from/options")
                    .env_remove("PATH")
                    .build()
                    .unwrap(),
            )
            .isolated_home("/sessions/env")
            .build()
            .unwrap();
        let mut spec = config
            .launch_options()
            .command(Path::new("/bin/claude"), None)
            .unwrap();
        config.apply_environment(&mut spec, "launch-1");
        assert!(spec.env_clear);
        let last = |name: &str| {
            spec.env
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_str().unwrap().to_owned())
        };
        assert_eq!(last("HOME").as_deref(), Some("/from/options"));
        assert_eq!(
            last("CLAUDE_CONFIG_DIR").as_deref(),
            Some("/sessions/env/.claude")
        );
        assert_eq!(last(SESSION_ENV).as_deref(), Some("env"));
        assert_eq!(last(LAUNCH_ID_ENV).as_deref(), Some("launch-1"));
        assert_eq!(last("PATH"), None, "a removal beats a kept variable");
    }

    #[test]
    fn limits_and_homes_are_validated() {
        let e = SessionConfig::builder("s", "/bin/claude")
            .isolated_home("relative/home")
            .build()
            .unwrap_err();
        assert_eq!(e.option, "isolated_home");
        assert!(e.to_string().contains("relative/home"), "{e}");
        let e = SessionConfig::builder("s", "/bin/claude")
            .memory_limit(1024)
            .build()
            .unwrap_err();
        assert_eq!(e.option, "memory_limit");
        let e = SessionConfig::builder("s", "/bin/claude")
            .options(ClaudeOptions::builder().user("a:b").build().unwrap())
            .build()
            .unwrap_err();
        assert_eq!(e.option, "user");
    }
}

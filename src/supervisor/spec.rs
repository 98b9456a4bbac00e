//! [`SessionSpec`]: a named session's options, restart type, limits and grouping.

use std::sync::Arc;
use std::time::Duration;

use claude_protocol::ClaudeOptions;
use claude_session::SessionConfigBuilder;
use supervision::RestartType;

type Configure = Arc<dyn Fn(SessionConfigBuilder) -> SessionConfigBuilder + Send + Sync>;

/// How to run one named session under a [`ClaudeSupervisor`](crate::ClaudeSupervisor).
#[derive(Clone)]
pub struct SessionSpec {
    pub(crate) name: String,
    pub(crate) options: ClaudeOptions,
    pub(crate) restart: RestartType,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) group: Option<String>,
    pub(crate) configure: Option<Configure>,
}

impl std::fmt::Debug for SessionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSpec")
            .field("name", &self.name)
            .field("restart", &self.restart)
            .field("idle_timeout", &self.idle_timeout)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl SessionSpec {
    /// A permanent session called `name` running the CLI with `options`.
    pub fn new(name: impl Into<String>, options: ClaudeOptions) -> Self {
        Self {
            name: name.into(),
            options,
            restart: RestartType::Permanent,
            idle_timeout: None,
            group: None,
            configure: None,
        }
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When to restart it (default permanent: always).
    pub fn restart(mut self, restart: RestartType) -> Self {
        self.restart = restart;
        self
    }

    /// Hibernate the session after this long without a turn: its CLI is stopped (freeing its
    /// memory) while its handle stays valid; the next query resumes the conversation in a new
    /// process.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }

    /// Like [`idle_timeout`](Self::idle_timeout), from a humantime string (`"10m"`).
    ///
    /// # Errors
    ///
    /// The string is not a duration.
    pub fn idle_timeout_str(self, idle: &str) -> Result<Self, String> {
        let d = humantime_parse(idle)?;
        Ok(self.idle_timeout(d))
    }

    /// The group (tenant) the session counts toward, for per-group admission limits.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Adjusts the session's configuration (timeouts, queue, line limit, …) for every instance.
    pub fn configure(
        mut self,
        f: impl Fn(SessionConfigBuilder) -> SessionConfigBuilder + Send + Sync + 'static,
    ) -> Self {
        self.configure = Some(Arc::new(f));
        self
    }
}

fn humantime_parse(s: &str) -> Result<Duration, String> {
    use claude_session::IntoDuration;
    s.into_duration()
}

//! [`SessionSpec`]: a named session's options, restart policy, limits and grouping.

use std::sync::Arc;
use std::time::Duration;

use claude_protocol::ClaudeOptions;
use claude_session::SessionConfigBuilder;
use supervision::{Backoff, RestartType};

type Configure = Arc<dyn Fn(SessionConfigBuilder) -> SessionConfigBuilder + Send + Sync>;

/// What a session does when the CLI no longer has the conversation it was to resume (its session
/// file is gone: a fresh container, a wiped config dir, another host).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LostConversation {
    /// Start a fresh conversation, update the record, and emit
    /// [`SupervisorEventKind::ConversationLost`](crate::SupervisorEventKind::ConversationLost)
    /// (the default).
    #[default]
    StartFresh,
    /// Fail the session with [`SupervisorError::ConversationLost`](crate::SupervisorError::ConversationLost);
    /// no restart follows.
    Fail,
}

/// A duration string that humantime could not parse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{option}`: `{value}` is not a duration ({reason}); write e.g. \"30s\" or \"10m\"")]
pub struct DurationError {
    /// The option it was given for.
    pub option: &'static str,
    /// The value.
    pub value: String,
    /// Why it is not a duration.
    pub reason: String,
}

/// How to run one named session under a [`ClaudeSupervisor`](crate::ClaudeSupervisor).
///
/// Each session is its own failure domain: a small supervisor with its own restart intensity
/// (default 5 restarts in 30 s) over the session's actors. A session that exceeds it is
/// `failed`; no other session notices.
#[derive(Clone)]
pub struct SessionSpec {
    pub(crate) name: String,
    pub(crate) options: ClaudeOptions,
    pub(crate) restart: RestartType,
    pub(crate) intensity: u32,
    pub(crate) period: Duration,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) group: Option<String>,
    pub(crate) budget_group: Option<String>,
    pub(crate) lost_conversation: LostConversation,
    pub(crate) cli_path: Option<std::path::PathBuf>,
    pub(crate) configure: Option<Configure>,
}

impl std::fmt::Debug for SessionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSpec")
            .field("name", &self.name)
            .field("restart", &self.restart)
            .field("intensity", &self.intensity)
            .field("period", &self.period)
            .field("idle_timeout", &self.idle_timeout)
            .field("group", &self.group)
            .field("budget_group", &self.budget_group)
            .field("lost_conversation", &self.lost_conversation)
            .finish_non_exhaustive()
    }
}

impl SessionSpec {
    /// The default restart intensity of a session: at most 5 restarts…
    pub const DEFAULT_INTENSITY: u32 = 5;
    /// …within 30 s.
    pub const DEFAULT_PERIOD: Duration = Duration::from_secs(30);

    /// A permanent session called `name` running the CLI with `options`.
    pub fn new(name: impl Into<String>, options: ClaudeOptions) -> Self {
        Self {
            name: name.into(),
            options,
            restart: RestartType::Permanent,
            intensity: Self::DEFAULT_INTENSITY,
            period: Self::DEFAULT_PERIOD,
            backoff: None,
            idle_timeout: None,
            group: None,
            budget_group: None,
            lost_conversation: LostConversation::default(),
            cli_path: None,
            configure: None,
        }
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When to restart its CLI (default permanent: always).
    pub fn restart(mut self, restart: RestartType) -> Self {
        self.restart = restart;
        self
    }

    /// The session's own restart intensity: at most `intensity` restarts of its CLI within
    /// `period`; one more and the session is `failed` (default 5 in 30 s). A period of zero is
    /// refused when the session starts.
    pub fn intensity(mut self, intensity: u32, period: Duration) -> Self {
        self.intensity = intensity;
        self.period = period;
        self
    }

    /// A delay before each restart of the session's CLI (none by default).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
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
    /// [`DurationError`] when the string is not a duration.
    pub fn idle_timeout_str(self, idle: &str) -> Result<Self, DurationError> {
        let d = humantime::parse_duration(idle).map_err(|e| DurationError {
            option: "idle_timeout",
            value: idle.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(self.idle_timeout(d))
    }

    /// The group (tenant) the session counts toward, for per-group admission limits.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// The budget group whose budget at the credential gateway the session shares
    /// ([`GatewayConfig::group_budget`](crate::GatewayConfig::group_budget)); its own
    /// [`session_budget`](crate::GatewayConfig::session_budget) applies too.
    pub fn budget_group(mut self, group: impl Into<String>) -> Self {
        self.budget_group = Some(group.into());
        self
    }

    /// The CLI to run for this session (default: the tree's).
    pub fn cli_path(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.cli_path = Some(path.into());
        self
    }

    /// The CLI options this session runs with.
    pub fn options(&self) -> &ClaudeOptions {
        &self.options
    }

    /// What to do when the CLI no longer has the conversation to resume (default: start fresh).
    pub fn on_lost_conversation(mut self, policy: LostConversation) -> Self {
        self.lost_conversation = policy;
        self
    }

    /// Adjusts the session's configuration (timeouts, queue, line limit, callbacks, …) for every
    /// instance. The closure runs in the session's own actors; a panic in it fails that session
    /// only, with [`SupervisorError::Panicked`](crate::SupervisorError::Panicked).
    pub fn configure(
        mut self,
        f: impl Fn(SessionConfigBuilder) -> SessionConfigBuilder + Send + Sync + 'static,
    ) -> Self {
        self.configure = Some(Arc::new(f));
        self
    }
}

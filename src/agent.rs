//! [`Agent`]: one agent described in one place — in Rust, or in a config file through serde.
//!
//! The layers below keep their own types (`ClaudeOptions` for the CLI's flags, the session's
//! config for its timeouts and queue, [`SessionSpec`] for the tree's restart policy); an
//! `Agent` reaches all three, so a user starts from one builder. It derives `Deserialize`
//! (`deny_unknown_fields`, durations as humantime strings such as `"30s"`), so the same agent can
//! live in a TOML or JSON file — the server's config uses this type.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use claude_protocol::{ClaudeOptions, OptionsError, PermissionMode};
use serde::{Deserialize, Serialize};
use supervision::RestartType;

use crate::supervisor::{LostConversation, SessionSpec};

/// One agent: its name, its prompt settings, tools and permissions, where it runs, its limits
/// and its restart policy.
///
/// # Examples
///
/// ```
/// use claude_supervisor::{Agent, PermissionMode};
///
/// let agent = Agent::new("reviewer")
///     .model("sonnet")
///     .append_system_prompt("You review diffs. Be brief.")
///     .allow_tools(["Read", "Grep"])
///     .permission_mode(PermissionMode::Plan)
///     .turn_timeout(std::time::Duration::from_secs(300))
///     .intensity(5, std::time::Duration::from_secs(30));
///
/// let from_toml: Agent = serde_json::from_value(serde_json::json!({
///     "name": "reviewer",
///     "model": "sonnet",
///     "append_system_prompt": "You review diffs. Be brief.",
///     "allowed_tools": ["Read", "Grep"],
///     "permission_mode": "plan",
///     "turn_timeout": "5m",
///     "intensity": 5,
///     "period": "30s",
/// }))?;
/// assert_eq!(agent, from_toml);
/// let spec = agent.spec()?; // what `ClaudeSupervisor::start_session` takes
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Agent {
    /// The session's name (see [`validate_name`](crate::validate_name)).
    pub name: String,
    /// The CLI to run for this agent (default: the tree's, or the usual discovery).
    pub cli_path: Option<PathBuf>,
    /// `--model`.
    pub model: Option<String>,
    /// `--fallback-model`.
    pub fallback_model: Option<String>,
    /// `--system-prompt` (replaces the CLI's own).
    pub system_prompt: Option<String>,
    /// `--append-system-prompt`.
    pub append_system_prompt: Option<String>,
    /// `--allowedTools`.
    pub allowed_tools: Vec<String>,
    /// `--disallowedTools`.
    pub disallowed_tools: Vec<String>,
    /// `--permission-mode`.
    pub permission_mode: Option<PermissionMode>,
    /// The working directory.
    pub cwd: Option<PathBuf>,
    /// `--add-dir`, each.
    pub add_dirs: Vec<PathBuf>,
    /// `--max-turns`.
    pub max_turns: Option<u32>,
    /// `--max-budget-usd`.
    pub max_budget_usd: Option<f64>,
    /// `--include-partial-messages`: text deltas as they stream.
    pub include_partial_messages: bool,
    /// Environment variables for the CLI.
    pub env: BTreeMap<String, String>,
    /// Environment variables removed from what the CLI would get.
    pub env_remove: Vec<String>,
    /// Other CLI flags, by name (`"--betas" = "x"`; an empty value for a bare flag).
    pub extra_args: BTreeMap<String, String>,
    /// When its CLI is restarted (default permanent).
    pub restart: RestartType,
    /// Its own restart intensity: restarts allowed within `period` (default 5).
    pub intensity: Option<u32>,
    /// The intensity's window (default 30 s).
    #[serde(with = "humantime_serde")]
    pub period: Option<Duration>,
    /// Hibernate after this long without a turn.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    /// From launch to the answer to `initialize` (default 60 s).
    #[serde(with = "humantime_serde")]
    pub init_timeout: Option<Duration>,
    /// A whole turn (default: no limit).
    #[serde(with = "humantime_serde")]
    pub turn_timeout: Option<Duration>,
    /// Silence after which a busy turn is interrupted (default 5 min).
    #[serde(with = "humantime_serde")]
    pub stall_timeout: Option<Duration>,
    /// The group (tenant) it counts toward, for per-group limits.
    pub group: Option<String>,
    /// What to do when the CLI no longer has its conversation (default: start fresh).
    pub on_lost_conversation: LostConversation,
}

/// An [`Agent`] that does not make a valid session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// Its CLI options are invalid.
    #[error("agent `{name}`: {source}")]
    Options {
        /// The agent.
        name: String,
        /// What is wrong.
        #[source]
        source: OptionsError,
    },
}

impl Agent {
    /// An agent called `name` with every default.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// The CLI to run for this agent.
    pub fn cli_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.cli_path = Some(path.into());
        self
    }

    /// `--model`.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// `--system-prompt`: replaces the CLI's system prompt.
    pub fn system_prompt(mut self, text: impl Into<String>) -> Self {
        self.system_prompt = Some(text.into());
        self
    }

    /// `--append-system-prompt`.
    pub fn append_system_prompt(mut self, text: impl Into<String>) -> Self {
        self.append_system_prompt = Some(text.into());
        self
    }

    /// Adds allowed tools.
    pub fn allow_tools<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tools: I) -> Self {
        self.allowed_tools.extend(tools.into_iter().map(Into::into));
        self
    }

    /// Adds disallowed tools.
    pub fn disallow_tools<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tools: I) -> Self {
        self.disallowed_tools
            .extend(tools.into_iter().map(Into::into));
        self
    }

    /// `--permission-mode`.
    pub fn permission_mode(mut self, mode: PermissionMode) -> Self {
        self.permission_mode = Some(mode);
        self
    }

    /// The working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// `--add-dir`.
    pub fn add_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.add_dirs.push(dir.into());
        self
    }

    /// `--max-turns`.
    pub fn max_turns(mut self, n: u32) -> Self {
        self.max_turns = Some(n);
        self
    }

    /// `--max-budget-usd`.
    pub fn max_budget_usd(mut self, usd: f64) -> Self {
        self.max_budget_usd = Some(usd);
        self
    }

    /// `--include-partial-messages`.
    pub fn include_partial_messages(mut self, on: bool) -> Self {
        self.include_partial_messages = on;
        self
    }

    /// Sets an environment variable for the CLI.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Removes an environment variable from what the CLI would get.
    pub fn env_remove(mut self, name: impl Into<String>) -> Self {
        self.env_remove.push(name.into());
        self
    }

    /// Another CLI flag (an empty value for a bare flag).
    pub fn extra_arg(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_args.insert(name.into(), value.into());
        self
    }

    /// When its CLI is restarted.
    pub fn restart(mut self, restart: RestartType) -> Self {
        self.restart = restart;
        self
    }

    /// Its own restart intensity.
    pub fn intensity(mut self, intensity: u32, period: Duration) -> Self {
        self.intensity = Some(intensity);
        self.period = Some(period);
        self
    }

    /// Hibernate after this long without a turn.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }

    /// From launch to the answer to `initialize`.
    pub fn init_timeout(mut self, limit: Duration) -> Self {
        self.init_timeout = Some(limit);
        self
    }

    /// A whole turn.
    pub fn turn_timeout(mut self, limit: Duration) -> Self {
        self.turn_timeout = Some(limit);
        self
    }

    /// Silence after which a busy turn is interrupted.
    pub fn stall_timeout(mut self, limit: Duration) -> Self {
        self.stall_timeout = Some(limit);
        self
    }

    /// The group it counts toward.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// What to do when the CLI no longer has its conversation.
    pub fn on_lost_conversation(mut self, policy: LostConversation) -> Self {
        self.on_lost_conversation = policy;
        self
    }

    /// The CLI options of this agent (the protocol layer).
    ///
    /// # Errors
    ///
    /// [`AgentError::Options`] naming the invalid option.
    pub fn options(&self) -> Result<ClaudeOptions, AgentError> {
        let mut b = ClaudeOptions::builder();
        if let Some(v) = &self.model {
            b = b.model(v.clone());
        }
        if let Some(v) = &self.fallback_model {
            b = b.fallback_model(v.clone());
        }
        if let Some(v) = &self.system_prompt {
            b = b.system_prompt(v.clone());
        }
        if let Some(v) = &self.append_system_prompt {
            b = b.append_system_prompt(v.clone());
        }
        if !self.allowed_tools.is_empty() {
            b = b.allowed_tools(self.allowed_tools.iter().cloned());
        }
        if !self.disallowed_tools.is_empty() {
            b = b.disallowed_tools(self.disallowed_tools.iter().cloned());
        }
        if let Some(v) = &self.permission_mode {
            b = b.permission_mode(v.clone());
        }
        if let Some(v) = &self.cwd {
            b = b.cwd(v.clone());
        }
        for dir in &self.add_dirs {
            b = b.add_dir(dir.clone());
        }
        if let Some(v) = self.max_turns {
            b = b.max_turns(v);
        }
        if let Some(v) = self.max_budget_usd {
            b = b.max_budget_usd(v);
        }
        b = b.include_partial_messages(self.include_partial_messages);
        for (k, v) in &self.env {
            b = b.env(k.clone(), v.clone());
        }
        for k in &self.env_remove {
            b = b.env_remove(k.clone());
        }
        for (k, v) in &self.extra_args {
            b = b.extra_arg(k.clone(), (!v.is_empty()).then(|| v.clone()));
        }
        b.build().map_err(|source| AgentError::Options {
            name: self.name.clone(),
            source,
        })
    }

    /// The tree's spec of this agent (all three layers: options, session limits, restart
    /// policy), for [`ClaudeSupervisor::start_session`](crate::ClaudeSupervisor::start_session)
    /// or a static session.
    ///
    /// # Errors
    ///
    /// [`AgentError::Options`] naming the invalid option.
    pub fn spec(&self) -> Result<SessionSpec, AgentError> {
        let mut spec = SessionSpec::new(self.name.clone(), self.options()?)
            .restart(self.restart)
            .intensity(
                self.intensity.unwrap_or(SessionSpec::DEFAULT_INTENSITY),
                self.period.unwrap_or(SessionSpec::DEFAULT_PERIOD),
            )
            .on_lost_conversation(self.on_lost_conversation);
        if let Some(cli) = &self.cli_path {
            spec = spec.cli_path(cli.clone());
        }
        if let Some(idle) = self.idle_timeout {
            spec = spec.idle_timeout(idle);
        }
        if let Some(group) = &self.group {
            spec = spec.group(group.clone());
        }
        let (init, turn, stall) = (self.init_timeout, self.turn_timeout, self.stall_timeout);
        if init.is_some() || turn.is_some() || stall.is_some() {
            spec = spec.configure(move |mut b| {
                if let Some(d) = init {
                    b = b.init_timeout(d);
                }
                if let Some(d) = turn {
                    b = b.turn_timeout(d);
                }
                if let Some(d) = stall {
                    b = b.stall_timeout(d);
                }
                b
            });
        }
        Ok(spec)
    }
}

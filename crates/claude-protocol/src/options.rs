//! [`ClaudeOptions`]: what to start the CLI with, turned into argv and environment.

use std::collections::hash_map::DefaultHasher;
use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::control::InitializeRequest;
use crate::permission::PermissionMode;

/// The environment variable naming the SDK that started the CLI.
pub const ENTRYPOINT_ENV: &str = "CLAUDE_CODE_ENTRYPOINT";
/// Our value for [`ENTRYPOINT_ENV`].
pub const ENTRYPOINT: &str = "sdk-rust";
/// Set by the CLI for its children; always removed so a nested CLI does not think it runs
/// inside Claude Code.
pub const CLAUDECODE_ENV: &str = "CLAUDECODE";
/// Payloads larger than this (bytes) go to spill files by default.
pub const DEFAULT_SPILL_THRESHOLD: usize = 8 * 1024;

/// Why options are invalid. Every variant names the options involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// Two options that cannot be combined.
    #[error("options `{first}` and `{second}` cannot be used together")]
    Conflict {
        /// One option.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// An option that needs another.
    #[error("option `{option}` requires {requires}")]
    Requires {
        /// The option set.
        option: &'static str,
        /// What it needs.
        requires: &'static str,
    },
    /// A bad value.
    #[error("option `{option}` is invalid: {reason}")]
    Invalid {
        /// The option.
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// A payload too large for argv, with no spill directory to put it in.
    #[error(
        "option `{option}` is {size} bytes, over the {limit}-byte limit for argv, and no spill \
         directory was given to write it to a file"
    )]
    TooLarge {
        /// The option.
        option: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The settings file could not be read to merge `sandbox` into it.
    #[error("option `settings`: cannot read {path} to merge `sandbox` into it: {reason}")]
    SettingsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The system prompt.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SystemPrompt {
    /// Replace the default system prompt with this text (`--system-prompt=…`, or
    /// `--system-prompt-file` when large).
    Text(String),
    /// Read the system prompt from this file (`--system-prompt-file=…`).
    File(PathBuf),
}

/// The base tool set (`--tools`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Tools {
    /// These built-in tools only; an empty list means none (`--tools=`).
    List(Vec<String>),
    /// The default set (`--tools=default`; the SDKs' `claude_code` preset).
    Default,
}

/// Where MCP servers come from (`--mcp-config`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum McpServers {
    /// Server name → config (`{"command":…}`, `{"type":"http","url":…}`, or
    /// `{"type":"sdk","name":…}` for an in-process server); sent as `{"mcpServers":{…}}`.
    Map(Map<String, Value>),
    /// A config file.
    Path(PathBuf),
}

impl McpServers {
    /// The config of an in-process ("sdk") server named `name`.
    pub fn sdk_server(name: &str) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), Value::from("sdk"));
        m.insert("name".into(), Value::from(name));
        Value::Object(m)
    }
}

/// Settings (`--settings`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Settings {
    /// A settings object.
    Json(Value),
    /// A settings file.
    Path(PathBuf),
}

/// A settings source (`--setting-sources`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SettingSource {
    /// `~/.claude/settings.json`.
    User,
    /// `.claude/settings.json`.
    Project,
    /// `.claude/settings.local.json`.
    Local,
}

impl SettingSource {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Project => "project",
            Self::Local => "local",
        }
    }
}

/// Extended thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Thinking {
    /// `--thinking=adaptive`.
    Adaptive,
    /// `--max-thinking-tokens=N`.
    Enabled {
        /// The token budget.
        budget_tokens: u32,
    },
    /// `--thinking=disabled`.
    Disabled,
}

/// Effort level (`--effort`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effort {
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high`.
    High,
    /// `xhigh`.
    Xhigh,
    /// `max`.
    Max,
    /// Any other level, as spelled.
    Other(String),
}

impl Effort {
    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Xhigh => "xhigh",
            Self::Max => "max",
            Self::Other(s) => s,
        }
    }
}

/// A file to write before starting the CLI (a payload kept out of argv).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpillFile {
    /// Where (under the spill directory); named by content hash.
    pub path: PathBuf,
    /// What.
    pub contents: String,
}

/// Everything needed to start the CLI. Write [`spill_files`](Self::spill_files) first
/// ([`CommandSpec::write_spill_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandSpec {
    /// The executable.
    pub program: PathBuf,
    /// The arguments (without the program).
    pub args: Vec<OsString>,
    /// Variables to set on top of the inherited environment (or of an empty one, with
    /// [`env_clear`](Self::env_clear)).
    pub env: Vec<(OsString, OsString)>,
    /// Variables to remove from the inherited environment (always `CLAUDECODE`).
    pub env_remove: Vec<OsString>,
    /// Start from an empty environment: the process gets only [`env`](Self::env), nothing of
    /// the launching process's own environment (default false).
    pub env_clear: bool,
    /// The working directory, if not inherited.
    pub cwd: Option<PathBuf>,
    /// Files to write before starting.
    pub spill_files: Vec<SpillFile>,
    /// The user to run as (for the launcher; this crate starts nothing).
    pub user: Option<String>,
}

impl CommandSpec {
    /// A spec that runs `program` with no arguments, the inherited environment and working
    /// directory, no spill files and no user switch (for launchers and tests that start
    /// something other than the CLI; the CLI's own spec comes from [`ClaudeOptions::command`]).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            env_clear: false,
            cwd: None,
            spill_files: Vec::new(),
            user: None,
        }
    }

    /// Writes the spill files (mode 0600 on Unix), creating their directories.
    pub fn write_spill_files(&self) -> std::io::Result<()> {
        for f in &self.spill_files {
            if let Some(dir) = f.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut open = std::fs::OpenOptions::new();
            open.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                open.mode(0o600);
            }
            let mut file = open.open(&f.path)?;
            std::io::Write::write_all(&mut file, f.contents.as_bytes())?;
        }
        Ok(())
    }

    /// A `std::process::Command` with program, args, env and cwd applied (stdio untouched).
    pub fn to_std_command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.program);
        c.args(&self.args);
        if self.env_clear {
            c.env_clear();
        }
        for k in &self.env_remove {
            c.env_remove(k);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(cwd) = &self.cwd {
            c.current_dir(cwd);
        }
        c
    }
}

/// Options for one CLI process, covering what the official SDKs expose.
///
/// Build with [`ClaudeOptions::builder`]; [`ClaudeOptions::command`] turns them into a
/// [`CommandSpec`], [`ClaudeOptions::initialize_request`] into the `initialize` body that
/// carries the large payloads (agents, JSON schema; hooks are added by the session).
///
/// Every option with a value is passed as one `--flag=value` token, so a value beginning
/// with `-` (a resume id, a model, a system prompt) can never be read as another flag.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClaudeOptions {
    /// `--model`.
    pub model: Option<String>,
    /// `--fallback-model` (comma-separated list on the wire).
    pub fallback_model: Option<String>,
    /// `--system-prompt` / `--system-prompt-file`.
    pub system_prompt: Option<SystemPrompt>,
    /// `--append-system-prompt` (`--append-system-prompt-file` when large).
    pub append_system_prompt: Option<String>,
    /// `--tools`.
    pub tools: Option<Tools>,
    /// `--allowedTools`.
    pub allowed_tools: Vec<String>,
    /// `--disallowedTools`.
    pub disallowed_tools: Vec<String>,
    /// `--permission-mode`.
    pub permission_mode: Option<PermissionMode>,
    /// `--permission-prompt-tool` (`stdio`: ask us with `can_use_tool`).
    pub permission_prompt_tool: Option<String>,
    /// `--max-turns`.
    pub max_turns: Option<u32>,
    /// `--max-budget-usd`.
    pub max_budget_usd: Option<f64>,
    /// `--add-dir`, one per directory.
    pub add_dirs: Vec<PathBuf>,
    /// `--mcp-config`.
    pub mcp_servers: Option<McpServers>,
    /// `--strict-mcp-config`.
    pub strict_mcp_config: bool,
    /// `--settings`.
    pub settings: Option<Settings>,
    /// Sandbox settings, merged into `settings` as its `sandbox` key.
    pub sandbox: Option<Value>,
    /// `--setting-sources`; `Some(vec![])` loads none.
    pub setting_sources: Option<Vec<SettingSource>>,
    /// Custom agents (name → definition); sent in `initialize`.
    pub agents: Option<Map<String, Value>>,
    /// `--continue`.
    pub continue_conversation: bool,
    /// `--resume=ID`.
    pub resume: Option<String>,
    /// `--fork-session`.
    pub fork_session: bool,
    /// `--session-id=UUID`.
    pub session_id: Option<String>,
    /// `--resume-session-at=MESSAGE_UUID`.
    pub resume_session_at: Option<String>,
    /// `--session-mirror` (hidden flag): the CLI also prints each batch of lines it appends to
    /// its session file as a `transcript_mirror` frame, for an external store to keep.
    pub session_mirror: bool,
    /// `--include-partial-messages`.
    pub include_partial_messages: bool,
    /// `--include-hook-events`.
    pub include_hook_events: bool,
    /// `--replay-user-messages`.
    pub replay_user_messages: bool,
    /// JSON schema for structured output; sent in `initialize` as `jsonSchema`.
    pub json_schema: Option<Value>,
    /// `--thinking` / `--max-thinking-tokens`.
    pub thinking: Option<Thinking>,
    /// `--max-thinking-tokens` (older spelling of `Thinking::Enabled`).
    pub max_thinking_tokens: Option<u32>,
    /// `--effort`.
    pub effort: Option<Effort>,
    /// `--betas`.
    pub betas: Vec<String>,
    /// `--plugin-dir`, one per directory.
    pub plugin_dirs: Vec<PathBuf>,
    /// `--no-session-persistence`.
    pub no_session_persistence: bool,
    /// `--bare`.
    pub bare: bool,
    /// The working directory.
    pub cwd: Option<PathBuf>,
    /// Variables to set.
    pub env: Vec<(OsString, OsString)>,
    /// Variables to remove.
    pub env_remove: Vec<OsString>,
    /// The user to run as (passed through to [`CommandSpec::user`]).
    pub user: Option<String>,
    /// Raw flags: `(name without dashes, value)`; `None` is a bare `--name`.
    pub extra_args: Vec<(String, Option<String>)>,
    /// Payloads over this many bytes go to spill files.
    pub spill_threshold: usize,
}

impl Default for ClaudeOptions {
    fn default() -> Self {
        Self {
            model: None,
            fallback_model: None,
            system_prompt: None,
            append_system_prompt: None,
            tools: None,
            allowed_tools: Vec::new(),
            disallowed_tools: Vec::new(),
            permission_mode: None,
            permission_prompt_tool: None,
            max_turns: None,
            max_budget_usd: None,
            add_dirs: Vec::new(),
            mcp_servers: None,
            strict_mcp_config: false,
            settings: None,
            sandbox: None,
            setting_sources: None,
            agents: None,
            continue_conversation: false,
            resume: None,
            fork_session: false,
            session_id: None,
            resume_session_at: None,
            session_mirror: false,
            include_partial_messages: false,
            include_hook_events: false,
            replay_user_messages: false,
            json_schema: None,
            thinking: None,
            max_thinking_tokens: None,
            effort: None,
            betas: Vec::new(),
            plugin_dirs: Vec::new(),
            no_session_persistence: false,
            bare: false,
            cwd: None,
            env: Vec::new(),
            env_remove: Vec::new(),
            user: None,
            extra_args: Vec::new(),
            spill_threshold: DEFAULT_SPILL_THRESHOLD,
        }
    }
}

/// Flags this crate manages; `extra_args` may not repeat them.
const MANAGED_FLAGS: &[&str] = &[
    "output-format",
    "input-format",
    "verbose",
    "print",
    "model",
    "fallback-model",
    "system-prompt",
    "system-prompt-file",
    "append-system-prompt",
    "append-system-prompt-file",
    "tools",
    "allowedTools",
    "allowed-tools",
    "disallowedTools",
    "disallowed-tools",
    "permission-mode",
    "permission-prompt-tool",
    "max-turns",
    "max-budget-usd",
    "add-dir",
    "mcp-config",
    "strict-mcp-config",
    "settings",
    "setting-sources",
    "agents",
    "continue",
    "resume",
    "fork-session",
    "session-id",
    "resume-session-at",
    "include-partial-messages",
    "include-hook-events",
    "replay-user-messages",
    "json-schema",
    "thinking",
    "max-thinking-tokens",
    "effort",
    "betas",
    "plugin-dir",
    "no-session-persistence",
    "bare",
];

/// Whether `s` is a UUID in the 8-4-4-4-12 hex form.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn check_text(option: &'static str, s: &str) -> Result<(), OptionsError> {
    if s.contains('\0') {
        return Err(OptionsError::Invalid {
            option,
            reason: "contains a NUL byte".into(),
        });
    }
    Ok(())
}

fn check_nonempty(option: &'static str, s: &str) -> Result<(), OptionsError> {
    check_text(option, s)?;
    if s.trim().is_empty() {
        return Err(OptionsError::Invalid {
            option,
            reason: "is empty".into(),
        });
    }
    Ok(())
}

fn check_list(option: &'static str, items: &[String]) -> Result<(), OptionsError> {
    for i in items {
        check_nonempty(option, i)?;
    }
    Ok(())
}

impl ClaudeOptions {
    /// A builder with everything unset.
    pub fn builder() -> ClaudeOptionsBuilder {
        ClaudeOptionsBuilder {
            options: ClaudeOptions::default(),
        }
    }

    /// A builder starting from these options.
    pub fn to_builder(&self) -> ClaudeOptionsBuilder {
        ClaudeOptionsBuilder {
            options: self.clone(),
        }
    }

    /// These options changed to resume `session_id` (for a restart): sets `resume`, and
    /// clears `continue_conversation`, `fork_session`, `session_id` and `resume_session_at`
    /// (the fork or the fixed id already happened in the first process).
    pub fn resuming(&self, session_id: impl Into<String>) -> ClaudeOptions {
        let mut o = self.clone();
        o.resume = Some(session_id.into());
        o.continue_conversation = false;
        o.fork_session = false;
        o.session_id = None;
        o.resume_session_at = None;
        o
    }

    /// Checks every option and every combination.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.continue_conversation && self.resume.is_some() {
            return Err(OptionsError::Conflict {
                first: "continue_conversation",
                second: "resume",
            });
        }
        if self.fork_session && !(self.continue_conversation || self.resume.is_some()) {
            return Err(OptionsError::Requires {
                option: "fork_session",
                requires: "`resume` or `continue_conversation`",
            });
        }
        if self.session_id.is_some() && !self.fork_session {
            if self.resume.is_some() {
                return Err(OptionsError::Conflict {
                    first: "session_id",
                    second: "resume",
                });
            }
            if self.continue_conversation {
                return Err(OptionsError::Conflict {
                    first: "session_id",
                    second: "continue_conversation",
                });
            }
        }
        if self.resume_session_at.is_some() && self.resume.is_none() {
            return Err(OptionsError::Requires {
                option: "resume_session_at",
                requires: "`resume`",
            });
        }
        if let Some(id) = &self.session_id {
            if !is_uuid(id) {
                return Err(OptionsError::Invalid {
                    option: "session_id",
                    reason: format!("{id:?} is not a UUID (8-4-4-4-12 hex digits)"),
                });
            }
        }
        if let Some(r) = &self.resume {
            check_nonempty("resume", r)?;
        }
        if let Some(r) = &self.resume_session_at {
            check_nonempty("resume_session_at", r)?;
        }
        if let Some(m) = &self.model {
            check_nonempty("model", m)?;
        }
        if let Some(m) = &self.fallback_model {
            check_nonempty("fallback_model", m)?;
            if self.model.as_deref() == Some(m.as_str()) {
                return Err(OptionsError::Invalid {
                    option: "fallback_model",
                    reason: "is the same as `model`".into(),
                });
            }
        }
        match &self.system_prompt {
            Some(SystemPrompt::Text(t)) => check_text("system_prompt", t)?,
            Some(SystemPrompt::File(p)) if p.as_os_str().is_empty() => {
                return Err(OptionsError::Invalid {
                    option: "system_prompt",
                    reason: "the file path is empty".into(),
                });
            }
            Some(SystemPrompt::File(_)) => {}
            None => {}
        }
        if let Some(t) = &self.append_system_prompt {
            check_text("append_system_prompt", t)?;
        }
        if let Some(Tools::List(t)) = &self.tools {
            check_list("tools", t)?;
        }
        check_list("allowed_tools", &self.allowed_tools)?;
        check_list("disallowed_tools", &self.disallowed_tools)?;
        check_list("betas", &self.betas)?;
        if let Some(mode) = &self.permission_mode {
            check_nonempty("permission_mode", mode.as_str())?;
        }
        if let Some(t) = &self.permission_prompt_tool {
            check_nonempty("permission_prompt_tool", t)?;
        }
        if self.max_turns == Some(0) {
            return Err(OptionsError::Invalid {
                option: "max_turns",
                reason: "must be at least 1".into(),
            });
        }
        if let Some(b) = self.max_budget_usd {
            if !b.is_finite() || b <= 0.0 {
                return Err(OptionsError::Invalid {
                    option: "max_budget_usd",
                    reason: format!("must be a positive amount, got {b}"),
                });
            }
        }
        if self.thinking.is_some() && self.max_thinking_tokens.is_some() {
            return Err(OptionsError::Conflict {
                first: "thinking",
                second: "max_thinking_tokens",
            });
        }
        if self.max_thinking_tokens == Some(0)
            || self.thinking == Some(Thinking::Enabled { budget_tokens: 0 })
        {
            return Err(OptionsError::Invalid {
                option: "max_thinking_tokens",
                reason: "must be at least 1 (use `Thinking::Disabled` to turn thinking off)".into(),
            });
        }
        if let Some(Effort::Other(e)) = &self.effort {
            check_nonempty("effort", e)?;
        }
        if let Some(s) = &self.json_schema {
            if !s.is_object() {
                return Err(OptionsError::Invalid {
                    option: "json_schema",
                    reason: "must be a JSON object".into(),
                });
            }
        }
        if let Some(agents) = &self.agents {
            for (name, def) in agents {
                if name.is_empty() || !def.is_object() {
                    return Err(OptionsError::Invalid {
                        option: "agents",
                        reason: format!("agent {name:?} must have a name and an object definition"),
                    });
                }
            }
        }
        if let Some(McpServers::Map(m)) = &self.mcp_servers {
            for (name, cfg) in m {
                if name.is_empty() || !cfg.is_object() {
                    return Err(OptionsError::Invalid {
                        option: "mcp_servers",
                        reason: format!("server {name:?} must have a name and an object config"),
                    });
                }
            }
        }
        if let Some(Settings::Json(v)) = &self.settings {
            if !v.is_object() {
                return Err(OptionsError::Invalid {
                    option: "settings",
                    reason: "must be a JSON object".into(),
                });
            }
        }
        if let Some(s) = &self.sandbox {
            if !s.is_object() {
                return Err(OptionsError::Invalid {
                    option: "sandbox",
                    reason: "must be a JSON object".into(),
                });
            }
        }
        for (k, _) in &self.env {
            let key = k.to_string_lossy();
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(OptionsError::Invalid {
                    option: "env",
                    reason: format!("{key:?} is not a valid variable name"),
                });
            }
            if key == CLAUDECODE_ENV {
                return Err(OptionsError::Invalid {
                    option: "env",
                    reason:
                        "CLAUDECODE cannot be set: the CLI would believe it runs inside Claude Code"
                            .into(),
                });
            }
        }
        for (name, value) in &self.extra_args {
            if name.is_empty() || name.starts_with('-') || name.contains('=') {
                return Err(OptionsError::Invalid {
                    option: "extra_args",
                    reason: format!(
                        "flag {name:?} must be a bare name without leading dashes or `=`"
                    ),
                });
            }
            if MANAGED_FLAGS.contains(&name.as_str()) {
                return Err(OptionsError::Invalid {
                    option: "extra_args",
                    reason: format!("--{name} is set by a typed option; use that instead"),
                });
            }
            if let Some(v) = value {
                check_text("extra_args", v)?;
            }
        }
        if self.spill_threshold == 0 {
            return Err(OptionsError::Invalid {
                option: "spill_threshold",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// The `initialize` request body: `hooks: null` (the session adds its hooks), agents,
    /// `jsonSchema`, and the names of in-process ("sdk") MCP servers.
    pub fn initialize_request(&self) -> InitializeRequest {
        let mut req = InitializeRequest::new();
        req.agents = self.agents.clone().map(Value::Object);
        req.json_schema = self.json_schema.clone();
        if let Some(McpServers::Map(m)) = &self.mcp_servers {
            req.sdk_mcp_servers = m
                .iter()
                .filter(|(_, cfg)| cfg.get("type").and_then(Value::as_str) == Some("sdk"))
                .map(|(name, _)| name.clone())
                .collect();
        }
        req
    }

    /// The settings value to pass, with `sandbox` merged in (reads a settings file only
    /// when a sandbox must be merged into it).
    fn settings_arg(&self) -> Result<Option<SettingsArg>, OptionsError> {
        match (&self.settings, &self.sandbox) {
            (None, None) => Ok(None),
            (Some(Settings::Path(p)), None) => Ok(Some(SettingsArg::Path(p.clone()))),
            (Some(Settings::Json(v)), None) => Ok(Some(SettingsArg::Json(v.to_string()))),
            (settings, Some(sandbox)) => {
                let mut obj = match settings {
                    Some(Settings::Json(Value::Object(m))) => m.clone(),
                    Some(Settings::Json(_)) | None => Map::new(),
                    Some(Settings::Path(p)) => {
                        let text =
                            std::fs::read_to_string(p).map_err(|e| OptionsError::SettingsFile {
                                path: p.clone(),
                                reason: e.to_string(),
                            })?;
                        match serde_json::from_str::<Value>(&text) {
                            Ok(Value::Object(m)) => m,
                            Ok(_) => {
                                return Err(OptionsError::SettingsFile {
                                    path: p.clone(),
                                    reason: "not a JSON object".into(),
                                });
                            }
                            Err(e) => {
                                return Err(OptionsError::SettingsFile {
                                    path: p.clone(),
                                    reason: e.to_string(),
                                });
                            }
                        }
                    }
                };
                obj.insert("sandbox".into(), sandbox.clone());
                Ok(Some(SettingsArg::Json(Value::Object(obj).to_string())))
            }
        }
    }

    /// The command line and environment for these options.
    ///
    /// `spill_dir` receives payloads over [`spill_threshold`](Self::spill_threshold)
    /// (system prompts, settings, MCP config): the argv then names the file. Without a
    /// spill directory a too-large payload is [`OptionsError::TooLarge`]. Use one spill
    /// directory per process you start; file names are content hashes.
    pub fn command(
        &self,
        program: &Path,
        spill_dir: Option<&Path>,
    ) -> Result<CommandSpec, OptionsError> {
        self.validate()?;
        let mut args: Vec<OsString> = [
            "--output-format",
            "stream-json",
            "--verbose",
            "--input-format",
            "stream-json",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let mut spill_files = Vec::new();
        let threshold = self.spill_threshold;
        let mut spill = |option: &'static str,
                         stem: &str,
                         ext: &str,
                         contents: String|
         -> Result<Option<PathBuf>, OptionsError> {
            if contents.len() <= threshold {
                return Ok(None);
            }
            let Some(dir) = spill_dir else {
                return Err(OptionsError::TooLarge {
                    option,
                    size: contents.len(),
                    limit: threshold,
                });
            };
            let mut h = DefaultHasher::new();
            contents.hash(&mut h);
            let path = dir.join(format!("{stem}-{:016x}.{ext}", h.finish()));
            spill_files.push(SpillFile {
                path: path.clone(),
                contents,
            });
            Ok(Some(path))
        };
        fn flag(args: &mut Vec<OsString>, name: &str, value: impl AsRef<std::ffi::OsStr>) {
            let mut s = OsString::from(format!("--{name}="));
            s.push(value.as_ref());
            args.push(s);
        }

        if let Some(m) = &self.model {
            flag(&mut args, "model", m);
        }
        if let Some(m) = &self.fallback_model {
            flag(&mut args, "fallback-model", m);
        }
        match &self.system_prompt {
            Some(SystemPrompt::Text(t)) => {
                match spill("system_prompt", "system-prompt", "txt", t.clone())? {
                    Some(path) => flag(&mut args, "system-prompt-file", path),
                    None => flag(&mut args, "system-prompt", t),
                }
            }
            Some(SystemPrompt::File(p)) => flag(&mut args, "system-prompt-file", p),
            None => {}
        }
        if let Some(t) = &self.append_system_prompt {
            match spill(
                "append_system_prompt",
                "append-system-prompt",
                "txt",
                t.clone(),
            )? {
                Some(path) => flag(&mut args, "append-system-prompt-file", path),
                None => flag(&mut args, "append-system-prompt", t),
            }
        }
        match &self.tools {
            Some(Tools::List(t)) => flag(&mut args, "tools", t.join(",")),
            Some(Tools::Default) => flag(&mut args, "tools", "default"),
            None => {}
        }
        if !self.allowed_tools.is_empty() {
            flag(&mut args, "allowedTools", self.allowed_tools.join(","));
        }
        if !self.disallowed_tools.is_empty() {
            flag(
                &mut args,
                "disallowedTools",
                self.disallowed_tools.join(","),
            );
        }
        if let Some(m) = &self.permission_mode {
            flag(&mut args, "permission-mode", m.as_str());
        }
        if let Some(t) = &self.permission_prompt_tool {
            flag(&mut args, "permission-prompt-tool", t);
        }
        if let Some(n) = self.max_turns {
            flag(&mut args, "max-turns", n.to_string());
        }
        if let Some(b) = self.max_budget_usd {
            flag(&mut args, "max-budget-usd", b.to_string());
        }
        for d in &self.add_dirs {
            flag(&mut args, "add-dir", d);
        }
        match &self.mcp_servers {
            Some(McpServers::Map(m)) => {
                let mut wrapper = Map::new();
                wrapper.insert("mcpServers".into(), Value::Object(m.clone()));
                let json = Value::Object(wrapper).to_string();
                match spill("mcp_servers", "mcp-config", "json", json.clone())? {
                    Some(path) => flag(&mut args, "mcp-config", path),
                    None => flag(&mut args, "mcp-config", json),
                }
            }
            Some(McpServers::Path(p)) => flag(&mut args, "mcp-config", p),
            None => {}
        }
        if self.strict_mcp_config {
            args.push("--strict-mcp-config".into());
        }
        match self.settings_arg()? {
            Some(SettingsArg::Path(p)) => flag(&mut args, "settings", p),
            Some(SettingsArg::Json(json)) => {
                match spill("settings", "settings", "json", json.clone())? {
                    Some(path) => flag(&mut args, "settings", path),
                    None => flag(&mut args, "settings", json),
                }
            }
            None => {}
        }
        if let Some(sources) = &self.setting_sources {
            let s: Vec<&str> = sources.iter().map(|s| s.as_str()).collect();
            flag(&mut args, "setting-sources", s.join(","));
        }
        if self.continue_conversation {
            args.push("--continue".into());
        }
        if let Some(r) = &self.resume {
            flag(&mut args, "resume", r);
        }
        if self.fork_session {
            args.push("--fork-session".into());
        }
        if let Some(id) = &self.session_id {
            flag(&mut args, "session-id", id);
        }
        if let Some(at) = &self.resume_session_at {
            flag(&mut args, "resume-session-at", at);
        }
        if self.session_mirror {
            args.push("--session-mirror".into());
        }
        if self.include_partial_messages {
            args.push("--include-partial-messages".into());
        }
        if self.include_hook_events {
            args.push("--include-hook-events".into());
        }
        if self.replay_user_messages {
            args.push("--replay-user-messages".into());
        }
        match self.thinking {
            Some(Thinking::Adaptive) => flag(&mut args, "thinking", "adaptive"),
            Some(Thinking::Disabled) => flag(&mut args, "thinking", "disabled"),
            Some(Thinking::Enabled { budget_tokens }) => {
                flag(&mut args, "max-thinking-tokens", budget_tokens.to_string())
            }
            None => {}
        }
        if let Some(n) = self.max_thinking_tokens {
            flag(&mut args, "max-thinking-tokens", n.to_string());
        }
        if let Some(e) = &self.effort {
            flag(&mut args, "effort", e.as_str());
        }
        if !self.betas.is_empty() {
            flag(&mut args, "betas", self.betas.join(","));
        }
        for d in &self.plugin_dirs {
            flag(&mut args, "plugin-dir", d);
        }
        if self.no_session_persistence {
            args.push("--no-session-persistence".into());
        }
        if self.bare {
            args.push("--bare".into());
        }
        for (name, value) in &self.extra_args {
            match value {
                Some(v) => flag(&mut args, name, v),
                None => args.push(format!("--{name}").into()),
            }
        }

        let mut env = self.env.clone();
        if !env.iter().any(|(k, _)| k == ENTRYPOINT_ENV) {
            env.push((ENTRYPOINT_ENV.into(), ENTRYPOINT.into()));
        }
        let mut env_remove: Vec<OsString> = vec![CLAUDECODE_ENV.into()];
        for k in &self.env_remove {
            if !env_remove.contains(k) && !env.iter().any(|(set, _)| set == k) {
                env_remove.push(k.clone());
            }
        }
        Ok(CommandSpec {
            program: program.to_path_buf(),
            args,
            env,
            env_remove,
            env_clear: false,
            cwd: self.cwd.clone(),
            spill_files,
            user: self.user.clone(),
        })
    }
}

enum SettingsArg {
    Path(PathBuf),
    Json(String),
}

/// Builds [`ClaudeOptions`]; [`build`](Self::build) validates.
#[derive(Debug, Clone)]
#[must_use]
pub struct ClaudeOptionsBuilder {
    options: ClaudeOptions,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident : $ty:ty => $field:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: impl Into<$ty>) -> Self {
                self.options.$field = Some(value.into());
                self
            }
        )*
    };
}

macro_rules! flags {
    ($($(#[$doc:meta])* $name:ident => $field:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, on: bool) -> Self {
                self.options.$field = on;
                self
            }
        )*
    };
}

impl ClaudeOptionsBuilder {
    setters! {
        /// `--model`.
        model: String => model,
        /// `--fallback-model`.
        fallback_model: String => fallback_model,
        /// `--append-system-prompt`.
        append_system_prompt: String => append_system_prompt,
        /// `--permission-mode`.
        permission_mode: PermissionMode => permission_mode,
        /// `--permission-prompt-tool` (`"stdio"` for `can_use_tool` requests).
        permission_prompt_tool: String => permission_prompt_tool,
        /// `--mcp-config`.
        mcp_servers: McpServers => mcp_servers,
        /// `--settings`.
        settings: Settings => settings,
        /// Sandbox settings (merged into `settings`).
        sandbox: Value => sandbox,
        /// `--resume=ID`.
        resume: String => resume,
        /// `--session-id=UUID`.
        session_id: String => session_id,
        /// `--resume-session-at=UUID`.
        resume_session_at: String => resume_session_at,
        /// JSON schema for structured output (sent in `initialize`).
        json_schema: Value => json_schema,
        /// `--thinking` / `--max-thinking-tokens`.
        thinking: Thinking => thinking,
        /// `--effort`.
        effort: Effort => effort,
        /// The working directory.
        cwd: PathBuf => cwd,
        /// The user to run as.
        user: String => user,
        /// `--tools`.
        tools: Tools => tools,
    }

    flags! {
        /// `--continue`.
        continue_conversation => continue_conversation,
        /// `--fork-session`.
        fork_session => fork_session,
        /// `--strict-mcp-config`.
        strict_mcp_config => strict_mcp_config,
        /// `--session-mirror`: mirror the session file's lines as `transcript_mirror` frames.
        session_mirror => session_mirror,
        /// `--include-partial-messages`.
        include_partial_messages => include_partial_messages,
        /// `--include-hook-events`.
        include_hook_events => include_hook_events,
        /// `--replay-user-messages`.
        replay_user_messages => replay_user_messages,
        /// `--no-session-persistence`.
        no_session_persistence => no_session_persistence,
        /// `--bare`.
        bare => bare,
    }

    /// `--system-prompt=TEXT` (a file when large).
    pub fn system_prompt(mut self, text: impl Into<String>) -> Self {
        self.options.system_prompt = Some(SystemPrompt::Text(text.into()));
        self
    }

    /// `--system-prompt-file=PATH`.
    pub fn system_prompt_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.options.system_prompt = Some(SystemPrompt::File(path.into()));
        self
    }

    /// `--allowedTools`.
    pub fn allowed_tools<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tools: I) -> Self {
        self.options.allowed_tools = tools.into_iter().map(Into::into).collect();
        self
    }

    /// `--disallowedTools`.
    pub fn disallowed_tools<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        tools: I,
    ) -> Self {
        self.options.disallowed_tools = tools.into_iter().map(Into::into).collect();
        self
    }

    /// `--max-turns`.
    pub fn max_turns(mut self, n: u32) -> Self {
        self.options.max_turns = Some(n);
        self
    }

    /// `--max-budget-usd`.
    pub fn max_budget_usd(mut self, usd: f64) -> Self {
        self.options.max_budget_usd = Some(usd);
        self
    }

    /// `--max-thinking-tokens`.
    pub fn max_thinking_tokens(mut self, n: u32) -> Self {
        self.options.max_thinking_tokens = Some(n);
        self
    }

    /// `--add-dir` (repeatable).
    pub fn add_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.options.add_dirs.push(dir.into());
        self
    }

    /// Adds one MCP server to the map (switching from a config file to a map).
    pub fn mcp_server(mut self, name: impl Into<String>, config: Value) -> Self {
        let mut map = match self.options.mcp_servers.take() {
            Some(McpServers::Map(m)) => m,
            _ => Map::new(),
        };
        map.insert(name.into(), config);
        self.options.mcp_servers = Some(McpServers::Map(map));
        self
    }

    /// `--setting-sources`.
    pub fn setting_sources(mut self, sources: impl IntoIterator<Item = SettingSource>) -> Self {
        self.options.setting_sources = Some(sources.into_iter().collect());
        self
    }

    /// Adds one custom agent (sent in `initialize`).
    pub fn agent(mut self, name: impl Into<String>, definition: Value) -> Self {
        self.options
            .agents
            .get_or_insert_with(Map::new)
            .insert(name.into(), definition);
        self
    }

    /// `--betas`.
    pub fn betas<I: IntoIterator<Item = S>, S: Into<String>>(mut self, betas: I) -> Self {
        self.options.betas = betas.into_iter().map(Into::into).collect();
        self
    }

    /// `--plugin-dir` (repeatable).
    pub fn plugin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.options.plugin_dirs.push(dir.into());
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.options.env.push((key.into(), value.into()));
        self
    }

    /// Removes an inherited environment variable.
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.options.env_remove.push(key.into());
        self
    }

    /// A raw flag: `--name` (`value: None`) or `--name=value`.
    pub fn extra_arg(mut self, name: impl Into<String>, value: Option<String>) -> Self {
        self.options.extra_args.push((name.into(), value));
        self
    }

    /// Payloads over this many bytes go to spill files.
    pub fn spill_threshold(mut self, bytes: usize) -> Self {
        self.options.spill_threshold = bytes;
        self
    }

    /// Validates and returns the options.
    pub fn build(self) -> Result<ClaudeOptions, OptionsError> {
        self.options.validate()?;
        Ok(self.options)
    }
}

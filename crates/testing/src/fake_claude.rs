//! The scenario language of `fake-claude`, a scripted fake of the Claude Code CLI.
//!
//! `fake-claude` is spawned exactly like the real CLI (two-way `stream-json` mode) and speaks the
//! same protocol as 2.1.329 (or, with [`Scenario::cli_version`](Scenario#structfield.cli_version),
//! the shape of 2.1.332): nothing is printed until the first input, `initialize` and the other
//! control requests are answered, each `user` line gives `system/init`, one `assistant` line per
//! content block, optional `stream_event`s and a `result` whose `total_cost_usd` and `modelUsage`
//! are cumulative for the process. Sessions are kept on disk like the real CLI
//! (`$CLAUDE_CONFIG_DIR/projects/<mangled cwd>/<id>.jsonl`, else `$HOME/.claude/projects/…`), so
//! `--resume`, `--fork-session` and `--continue` work across processes.
//!
//! # Selecting behaviour
//!
//! Every knob comes from the environment (the runtime passes it through):
//!
//! | variable | meaning |
//! |---|---|
//! | [`ENV_SCENARIO`] (`FAKE_CLAUDE_SCENARIO`) | a [`Scenario`] as JSON |
//! | [`ENV_SCENARIO_FILE`] (`FAKE_CLAUDE_SCENARIO_FILE`) | path of a file holding that JSON |
//! | [`ENV_STATE_DIR`] (`FAKE_CLAUDE_STATE_DIR`) | a directory counting process starts (`start-<n>` files), for faults keyed on the start number |
//! | [`ENV_RECORD_DIR`] (`FAKE_CLAUDE_RECORD_DIR`) | record argv, environment and stdin of every process (see [`Recording`]) |
//! | [`ENV_LOAD_FRAMES`] (`FAKE_CLAUDE_LOAD_FRAMES`) | load mode: every turn emits this many frames |
//! | `FAKE_CLAUDE_REPLAY` | replay mode: every user line is answered with this file's bytes (a pre-built turn) in one write; the emitter of `claude-session/benches/turn_throughput.rs` |
//!
//! Flags it honours besides the two-way `stream-json` set include `--resume`, `--continue`,
//! `--fork-session`, `--session-id`, `--model`, `--permission-mode`,
//! `--include-partial-messages`, `--session-mirror`, and `--await-claim` (a pre-warmed spare,
//! parked until a `claim_session` control request, with the real CLI's refusals; see
//! `docs/warm-spares.md`).
//!
//! # The JSON shape
//!
//! ```json
//! {
//!   "turns": [ {"text": "hi"}, {"tool": {"command": "echo hi"}} ],
//!   "default_turn": {"pieces": 5},
//!   "cost_per_turn": 0.001,
//!   "model": "claude-opus-5-5",
//!   "load_frames": null,
//!   "cli_version": "2.1.332",
//!   "faults": [
//!     {"on_turn": 2, "fault": {"kind": "crash_mid_turn", "exit_code": 3, "stderr": "boom"}},
//!     {"on_start": 1, "fault": {"kind": "exit_before_init", "exit_code": 7, "stderr": "no"}}
//!   ]
//! }
//! ```
//!
//! Turns are numbered from 1 per process: turn `n` uses `turns[n-1]`, later turns `default_turn`
//! (or the default: reply `fake reply to: <prompt>`). A prompt that is exactly `HISTORY?` is
//! answered with `history: ["earlier prompt", …]` (a JSON array of the earlier user prompts of the
//! conversation, including those loaded by `--resume`).
//!
//! Like 2.1.329, a `result`'s `total_cost_usd` and `modelUsage` are cumulative for the process
//! (they restart at zero in a new process and after a `conversation_reset`), while `usage` and
//! `model_usage_since_last_result` are the turn's own figures.
//!
//! Faults ([`Fault`]) sit in [`FaultRule`]s: `on_turn` (1-based, per process) and `on_start`
//! (the process start number from [`ENV_STATE_DIR`], 1 for the first process) restrict where a
//! fault fires; an absent key means "every". Process-level faults (`exit_before_init`,
//! `hang`, `stubborn_grandchild`, `ignore_sigterm`, `refuse_resume`) without `on_turn` fire at
//! process start.
//!
//! # Builders
//!
//! ```
//! use claude_testing::fake_claude::{Fault, Scenario, Turn};
//! let env = Scenario::new()
//!     .turn(Turn::text("hi"))
//!     .fault_on_turn(2, Fault::crash_mid_turn(3, "boom"))
//!     .to_env();
//! assert_eq!(env[0].0, "FAKE_CLAUDE_SCENARIO");
//! ```
//!
//! `fake-claude --version` prints `<version> (Claude Code)` like the real CLI (the scenario's
//! `cli_version`, else [`FAKE_VERSION`]) and exits 0, so the version probe and the supported
//! range can be tested with it.
//!
//! Tests of other packages find the binary with [`fake_claude_path`].

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

use claude_protocol::CliVersion;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Environment variable holding a [`Scenario`] as JSON.
pub const ENV_SCENARIO: &str = "FAKE_CLAUDE_SCENARIO";
/// Environment variable holding the path of a file with a [`Scenario`] as JSON.
pub const ENV_SCENARIO_FILE: &str = "FAKE_CLAUDE_SCENARIO_FILE";
/// Environment variable naming the state directory that counts process starts.
pub const ENV_STATE_DIR: &str = "FAKE_CLAUDE_STATE_DIR";
/// Environment variable naming the directory where each process records argv, env and stdin.
pub const ENV_RECORD_DIR: &str = "FAKE_CLAUDE_RECORD_DIR";
/// Environment variable turning on load mode: every turn emits this many frames.
pub const ENV_LOAD_FRAMES: &str = "FAKE_CLAUDE_LOAD_FRAMES";
/// Environment variable overriding the binary found by [`fake_claude_path`].
pub const ENV_BIN: &str = "FAKE_CLAUDE_BIN";

/// The version fake-claude reports by default (with `"fake": true` beside it): the pinned one.
/// [`Scenario::cli_version`] picks another.
pub const FAKE_VERSION: CliVersion = claude_protocol::SUPPORTED_CLI.pinned;
/// From this version on, fake-claude's frames carry the fields 2.1.332 added: `sandbox_enabled`
/// in `system/init` and the `initialize` answer, the new capability names, and
/// `begun_message_ids` in `result` (with `--include-partial-messages`).
pub const FIELDS_OF_2_1_332: CliVersion = CliVersion::new(2, 1, 332);
/// The model reported when neither `--model` nor the scenario names one.
pub const DEFAULT_MODEL: &str = "claude-opus-5-5";
/// The prompt answered with the list of earlier prompts of the conversation.
pub const HISTORY_PROMPT: &str = "HISTORY?";

/// What one `fake-claude` process does: scripted turns, costs and faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Scripts of turns 1, 2, … of each process.
    pub turns: Vec<Turn>,
    /// The script of turns beyond `turns` (default: [`Turn::default`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_turn: Option<Turn>,
    /// Cost of each turn in USD, added to the cumulative `total_cost_usd` (default 0.001).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_per_turn: Option<f64>,
    /// The model reported when `--model` is absent (default [`DEFAULT_MODEL`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Load mode for every turn: emit this many frames of 300–800 bytes, then the `result`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_frames: Option<usize>,
    /// Faults, each with where it fires.
    pub faults: Vec<FaultRule>,
    /// The CLI version to impersonate (default [`FAKE_VERSION`]): printed by `--version` and
    /// reported in `system/init` and the `initialize` answer; from [`FIELDS_OF_2_1_332`] on,
    /// the frames have that release's shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cli_version: Option<CliVersion>,
}

/// The script of one turn. Every field is optional; the default echoes the prompt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Turn {
    /// The final reply text (default `fake reply to: <prompt>`, or `tool result was: <output>`
    /// after a tool).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Number of `text_delta` pieces the reply is streamed in (default 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pieces: Option<usize>,
    /// Delay between pieces in milliseconds (default 0). Interrupts cut the stream between pieces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub piece_delay_ms: Option<u64>,
    /// A tool call made before the final reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<ToolCall>,
    /// Load mode for this turn: emit this many frames, then the `result`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_frames: Option<usize>,
    /// End with an API error: `subtype:"success"`, `is_error:true`, `result` = this text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_error: Option<String>,
    /// Cost of this turn in USD (overrides `cost_per_turn`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

/// A tool call of a turn. The Bash-like tool really runs `command` with `sh -c` in the cwd.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// The shell command to run.
    pub command: String,
    /// The tool name reported (default `Bash`). A name `mcp__<server>__<tool>` calls that tool
    /// of the runtime's in-process MCP server (an `mcp_message` with `tools/call`, the tool
    /// input as its arguments) instead of running `command`.
    #[serde(default = "default_tool_name")]
    pub name: String,
}

fn default_tool_name() -> String {
    "Bash".to_owned()
}

/// A fault and where it fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Only on this turn of each process (1-based); absent: every turn (or process start, for
    /// process-level faults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_turn: Option<u32>,
    /// Only in the process with this start number (see [`ENV_STATE_DIR`]); absent: every process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_start: Option<u32>,
    /// The fault.
    pub fault: Fault,
}

/// A misbehaviour of the fake CLI. JSON: an object with `"kind"` in snake case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Fault {
    /// Write `stderr` and exit with `exit_code` at start, before reading any input.
    ExitBeforeInit {
        /// The exit code.
        exit_code: i32,
        /// Written to stderr (with a newline) before exiting.
        stderr: String,
    },
    /// Exit in the middle of a turn, after `after_frames` frames of it (the `system/init` counts).
    CrashMidTurn {
        /// The exit code.
        exit_code: i32,
        /// Written to stderr (with a newline) before exiting.
        stderr: String,
        /// Frames of the turn written before the crash (default 2: init and one more).
        #[serde(default = "default_after_frames")]
        after_frames: usize,
    },
    /// No output at all from this point on (process start, or the arrival of the turn's user
    /// line); control requests are never answered; stdin is still read (and recorded); closing it
    /// does not end the process.
    Hang,
    /// Stream the reply in `pieces` pieces with `delay_ms` between them.
    SlowStream {
        /// Number of `text_delta` pieces.
        pieces: usize,
        /// Delay between pieces in milliseconds.
        delay_ms: u64,
    },
    /// Write `line` (not JSON) on stdout after the turn's `system/init`; the turn then goes on.
    MalformedLine {
        /// The line (default `{"type":"assistant", this is not json`).
        #[serde(default = "default_malformed")]
        line: String,
    },
    /// Write one valid JSON `assistant` line of exactly `bytes` bytes (newline excluded) after the
    /// turn's `system/init`; the turn then goes on.
    OversizeLine {
        /// The length of the line.
        bytes: usize,
    },
    /// Write `bytes` bytes on stderr (in lines) after the turn's `system/init`.
    StderrFlood {
        /// How many bytes.
        bytes: usize,
    },
    /// Start `sh -c 'trap "" TERM; while :; do sleep 1; done'` in fake-claude's own process group
    /// (it ignores SIGTERM; SIGKILL to the group removes it). Its pid is written on stderr as
    /// `fake-claude: grandchild pid N`.
    StubbornGrandchild {
        /// Make fake-claude itself ignore SIGTERM too.
        #[serde(default)]
        fake_ignores_sigterm: bool,
    },
    /// fake-claude ignores SIGTERM (only SIGKILL ends it).
    IgnoreSigterm,
    /// Give the turn (and the rest of the process) a new session id. With `conversation_reset`,
    /// a `{"type":"conversation_reset",…}` line announces it first, the history starts empty and
    /// the cumulative cost restarts from zero; otherwise only `system/init` and `result` carry
    /// the new id (history kept).
    RotateSessionId {
        /// Announce with a `conversation_reset` line.
        #[serde(default)]
        conversation_reset: bool,
    },
    /// Refuse `--resume` even of a known id, like an unknown id: the first `user` line gets a
    /// `result` `error_during_execution` with `errors:["No conversation found with session ID: …"]`
    /// and the process exits 1.
    RefuseResume,
}

fn default_after_frames() -> usize {
    2
}

fn default_malformed() -> String {
    "{\"type\":\"assistant\", this is not json".to_owned()
}

impl Fault {
    /// [`Fault::CrashMidTurn`] after 2 frames (init and one more).
    pub fn crash_mid_turn(exit_code: i32, stderr: &str) -> Self {
        Fault::CrashMidTurn {
            exit_code,
            stderr: stderr.to_owned(),
            after_frames: 2,
        }
    }

    /// [`Fault::ExitBeforeInit`].
    pub fn exit_before_init(exit_code: i32, stderr: &str) -> Self {
        Fault::ExitBeforeInit {
            exit_code,
            stderr: stderr.to_owned(),
        }
    }

    /// [`Fault::SlowStream`].
    pub fn slow_stream(pieces: usize, delay_ms: u64) -> Self {
        Fault::SlowStream { pieces, delay_ms }
    }

    /// [`Fault::MalformedLine`] with the default line.
    pub fn malformed_line() -> Self {
        Fault::MalformedLine {
            line: default_malformed(),
        }
    }

    /// [`Fault::OversizeLine`].
    pub fn oversize_line(bytes: usize) -> Self {
        Fault::OversizeLine { bytes }
    }

    /// [`Fault::StderrFlood`].
    pub fn stderr_flood(bytes: usize) -> Self {
        Fault::StderrFlood { bytes }
    }

    /// Whether this fault acts on the whole process (fires at start when no `on_turn` is given).
    pub fn is_process_level(&self) -> bool {
        matches!(
            self,
            Fault::ExitBeforeInit { .. }
                | Fault::Hang
                | Fault::StubbornGrandchild { .. }
                | Fault::IgnoreSigterm
                | Fault::RefuseResume
        )
    }
}

impl Turn {
    /// A turn replying `text`.
    pub fn text(text: &str) -> Self {
        Turn {
            text: Some(text.to_owned()),
            ..Turn::default()
        }
    }

    /// A turn echoing the prompt (`fake reply to: <prompt>`).
    pub fn echo() -> Self {
        Turn::default()
    }

    /// A turn that runs `command` with the Bash tool, then replies `tool result was: <output>`.
    pub fn tool(command: &str) -> Self {
        Turn {
            tool: Some(ToolCall {
                command: command.to_owned(),
                name: default_tool_name(),
            }),
            ..Turn::default()
        }
    }

    /// Stream the reply in `pieces` pieces with `delay_ms` between them.
    pub fn slow(mut self, pieces: usize, delay_ms: u64) -> Self {
        self.pieces = Some(pieces);
        self.piece_delay_ms = Some(delay_ms);
        self
    }

    /// Set the final reply text.
    pub fn with_text(mut self, text: &str) -> Self {
        self.text = Some(text.to_owned());
        self
    }

    /// Load mode: emit `frames` frames, then the `result`.
    pub fn load(mut self, frames: usize) -> Self {
        self.load_frames = Some(frames);
        self
    }

    /// End the turn with an API error (`is_error:true`, `subtype:"success"`).
    pub fn api_error(mut self, message: &str) -> Self {
        self.api_error = Some(message.to_owned());
        self
    }

    /// The cost of this turn in USD.
    pub fn cost(mut self, usd: f64) -> Self {
        self.cost_usd = Some(usd);
        self
    }
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The JSON did not parse as a [`Scenario`].
    #[error("invalid fake-claude scenario ({source_name}): {error}")]
    Json {
        /// Where it came from (variable or file).
        source_name: String,
        /// The parse error.
        error: serde_json::Error,
    },
    /// The scenario file could not be read.
    #[error("cannot read fake-claude scenario file {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
}

impl Scenario {
    /// An empty scenario: every turn echoes its prompt, no faults.
    pub fn new() -> Self {
        Scenario::default()
    }

    /// Append the script of the next turn.
    pub fn turn(mut self, turn: Turn) -> Self {
        self.turns.push(turn);
        self
    }

    /// The script of turns beyond those given with [`Scenario::turn`].
    pub fn default_turn(mut self, turn: Turn) -> Self {
        self.default_turn = Some(turn);
        self
    }

    /// A fault on every turn / at every process start.
    pub fn fault(self, fault: Fault) -> Self {
        self.fault_rule(FaultRule {
            on_turn: None,
            on_start: None,
            fault,
        })
    }

    /// A fault on turn `turn` (1-based) of every process.
    pub fn fault_on_turn(self, turn: u32, fault: Fault) -> Self {
        self.fault_rule(FaultRule {
            on_turn: Some(turn),
            on_start: None,
            fault,
        })
    }

    /// A fault only in the process with start number `start` (needs [`ENV_STATE_DIR`]).
    pub fn fault_on_start(self, start: u32, fault: Fault) -> Self {
        self.fault_rule(FaultRule {
            on_turn: None,
            on_start: Some(start),
            fault,
        })
    }

    /// A fault with explicit keys.
    pub fn fault_rule(mut self, rule: FaultRule) -> Self {
        self.faults.push(rule);
        self
    }

    /// The cost of each turn in USD (default 0.001).
    pub fn cost_per_turn(mut self, usd: f64) -> Self {
        self.cost_per_turn = Some(usd);
        self
    }

    /// The CLI version to impersonate (see [`Scenario::cli_version`](Scenario#structfield.cli_version)).
    pub fn cli_version(mut self, version: CliVersion) -> Self {
        self.cli_version = Some(version);
        self
    }

    /// The version impersonated: the scenario's, else [`FAKE_VERSION`].
    pub fn version(&self) -> CliVersion {
        self.cli_version.unwrap_or(FAKE_VERSION)
    }

    /// The model reported when `--model` is absent.
    pub fn model(mut self, model: &str) -> Self {
        self.model = Some(model.to_owned());
        self
    }

    /// Load mode for every turn.
    pub fn load_frames(mut self, frames: usize) -> Self {
        self.load_frames = Some(frames);
        self
    }

    /// The scenario as JSON.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and enums always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The environment selecting this scenario: `[("FAKE_CLAUDE_SCENARIO", json)]`.
    pub fn to_env(&self) -> Vec<(String, String)> {
        vec![(ENV_SCENARIO.to_owned(), self.to_json())]
    }

    /// Parse a scenario from JSON.
    pub fn from_json(json: &str) -> Result<Self, ScenarioError> {
        serde_json::from_str(json).map_err(|error| ScenarioError::Json {
            source_name: "json".to_owned(),
            error,
        })
    }

    /// The scenario selected by the environment ([`ENV_SCENARIO`], else [`ENV_SCENARIO_FILE`],
    /// else the default), with [`ENV_LOAD_FRAMES`] applied.
    pub fn from_env() -> Result<Self, ScenarioError> {
        let mut scenario = if let Some(json) = std::env::var_os(ENV_SCENARIO) {
            let json = json.to_string_lossy();
            serde_json::from_str(&json).map_err(|error| ScenarioError::Json {
                source_name: ENV_SCENARIO.to_owned(),
                error,
            })?
        } else if let Some(path) = std::env::var_os(ENV_SCENARIO_FILE) {
            let path = PathBuf::from(path);
            let json = std::fs::read_to_string(&path).map_err(|error| ScenarioError::Io {
                path: path.clone(),
                error,
            })?;
            serde_json::from_str(&json).map_err(|error| ScenarioError::Json {
                source_name: path.display().to_string(),
                error,
            })?
        } else {
            Scenario::default()
        };
        if let Some(n) = std::env::var(ENV_LOAD_FRAMES)
            .ok()
            .and_then(|v| v.trim().parse().ok())
        {
            scenario.load_frames = Some(n);
        }
        Ok(scenario)
    }

    /// The script of turn `n` (1-based).
    pub fn turn_script(&self, n: u32) -> Turn {
        let index = n.saturating_sub(1) as usize;
        self.turns
            .get(index)
            .or(self.default_turn.as_ref())
            .cloned()
            .unwrap_or_default()
    }

    /// The faults that fire on turn `turn` of the process with start number `start`.
    pub fn turn_faults(&self, start: u32, turn: u32) -> Vec<&Fault> {
        self.faults
            .iter()
            .filter(|r| r.on_start.is_none_or(|s| s == start))
            .filter(|r| match r.on_turn {
                Some(t) => t == turn,
                None => !r.fault.is_process_level(),
            })
            .map(|r| &r.fault)
            .collect()
    }

    /// The process-level faults that fire at the start of the process with start number `start`.
    pub fn start_faults(&self, start: u32) -> Vec<&Fault> {
        self.faults
            .iter()
            .filter(|r| r.on_start.is_none_or(|s| s == start))
            .filter(|r| r.on_turn.is_none() && r.fault.is_process_level())
            .map(|r| &r.fault)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions on disk

/// The cwd as the CLI names its project directory: every non-alphanumeric char turned into `-`,
/// cut and hashed past 200 characters (the one rule, [`claude_protocol::transcript`]'s).
pub fn mangle_cwd(cwd: &Path) -> String {
    claude_protocol::transcript::project_folder_name(cwd)
}

/// The configuration directory: `$CLAUDE_CONFIG_DIR`, else `$HOME/.claude`.
pub fn config_dir_from_env() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|h| PathBuf::from(h).join(".claude"))
}

/// Where a session is stored: `<config_dir>/projects/<mangled cwd>/<session_id>.jsonl`.
pub fn session_file(config_dir: &Path, cwd: &Path, session_id: &str) -> PathBuf {
    config_dir
        .join("projects")
        .join(mangle_cwd(cwd))
        .join(format!("{session_id}.jsonl"))
}

// ---------------------------------------------------------------------------------------------
// Process starts

/// How many processes have started with this state directory (counts `start-<n>` files).
pub fn start_count(state_dir: &Path) -> u32 {
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return 0;
    };
    let count = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix("start-")
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// Claim the next start number in `state_dir` (1 for the first process), race-free: each start
/// creates `start-<n>` with `create_new`.
pub fn claim_start_number(state_dir: &Path) -> io::Result<u32> {
    std::fs::create_dir_all(state_dir)?;
    let mut n = start_count(state_dir).max(1);
    loop {
        let path = state_dir.join(format!("start-{n}"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Recording

/// Reader of the files `fake-claude` writes under [`ENV_RECORD_DIR`].
///
/// Layout: one subdirectory per process, numbered `1`, `2`, … in order of start (claimed with
/// `create_dir`, so concurrent starts get distinct numbers), holding `argv.json` (a JSON array,
/// argv\[0\] first), `env.json` (a JSON object of the whole environment), `pid` (decimal) and
/// `stdin.jsonl` (every stdin line as received, appended and flushed per line).
#[derive(Debug, Clone, Copy)]
pub struct Recording;

/// What one `fake-claude` process recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessRecording {
    /// The number of the subdirectory (1-based, in order of start).
    pub index: u32,
    /// The subdirectory.
    pub dir: PathBuf,
    /// The process id.
    pub pid: Option<u32>,
    /// The command line, argv\[0\] first.
    pub argv: Vec<String>,
    /// The environment.
    pub env: BTreeMap<String, String>,
    /// Every stdin line as received (without the newline).
    pub stdin: Vec<String>,
}

impl Recording {
    /// Read every process recording under `dir`, ordered by index.
    pub fn read(dir: &Path) -> io::Result<Vec<ProcessRecording>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let Some(index) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            out.push(ProcessRecording::read(index, &entry.path())?);
        }
        out.sort_by_key(|r| r.index);
        Ok(out)
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl ProcessRecording {
    fn read(index: u32, dir: &Path) -> io::Result<Self> {
        let read_opt = |name: &str| match std::fs::read_to_string(dir.join(name)) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        };
        let argv = match read_opt("argv.json")? {
            Some(s) => serde_json::from_str(&s).map_err(invalid)?,
            None => Vec::new(),
        };
        let env = match read_opt("env.json")? {
            Some(s) => serde_json::from_str(&s).map_err(invalid)?,
            None => BTreeMap::new(),
        };
        let pid = read_opt("pid")?.and_then(|s| s.trim().parse().ok());
        let stdin = read_opt("stdin.jsonl")?
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(ProcessRecording {
            index,
            dir: dir.to_owned(),
            pid,
            argv,
            env,
            stdin,
        })
    }

    /// The stdin lines that parse as JSON.
    pub fn stdin_json(&self) -> Vec<Value> {
        self.stdin
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Whether `flag` (e.g. `--verbose`) appears, alone or as `flag=value`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.argv
            .iter()
            .skip(1)
            .any(|a| a == flag || a.strip_prefix(flag).is_some_and(|r| r.starts_with('=')))
    }

    /// The value of `flag`, given as `flag=value` or `flag value`.
    pub fn flag_value(&self, flag: &str) -> Option<&str> {
        let mut args = self.argv.iter().skip(1);
        while let Some(a) = args.next() {
            if a == flag {
                return args.next().map(String::as_str);
            }
            if let Some(v) = a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
                return Some(v);
            }
        }
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Finding the binary

/// The path of the `fake-claude` binary, building it if needed; for tests of any package.
///
/// Order: [`ENV_BIN`] if set; else `fake-claude` next to the running test executable
/// (`target/<profile>/deps/<test>` → `target/<profile>/fake-claude`), rebuilt with
/// `$CARGO build -p claude-testing --bin fake-claude` (same target dir and profile) when it is
/// missing or older than the sources of `claude-testing`. Done once per process.
///
/// # Panics
///
/// When the binary is missing and cannot be built (no `CARGO`, or the build fails); the message
/// says what to run.
pub fn fake_claude_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| match locate_or_build() {
        Ok(p) => p,
        Err(msg) => panic!("fake_claude_path: {msg}"),
    })
    .clone()
}

fn exe_name() -> String {
    format!("fake-claude{}", std::env::consts::EXE_SUFFIX)
}

fn locate_or_build() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(ENV_BIN).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{ENV_BIN}={} is not a file", p.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut profile_dir = exe
        .parent()
        .ok_or("test executable has no parent directory")?
        .to_owned();
    if profile_dir
        .file_name()
        .is_some_and(|n| n == "deps" || n == "examples")
    {
        profile_dir.pop();
    }
    let candidate = profile_dir.join(exe_name());
    let sources = newest_source_mtime();
    let fresh = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|bin| sources.is_none_or(|src| bin >= src))
    };
    if fresh(&candidate) {
        return Ok(candidate);
    }
    let cargo = std::env::var_os("CARGO").ok_or_else(|| {
        format!(
            "{} is missing or stale and CARGO is not set; run `cargo build -p claude-testing --bin fake-claude` \
             or set {ENV_BIN}",
            candidate.display()
        )
    })?;
    let target_dir = profile_dir
        .parent()
        .ok_or("no target directory above the profile directory")?;
    let profile = profile_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let mut cmd = Command::new(&cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .args([
            "-p",
            "claude-testing",
            "--bin",
            "fake-claude",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--target-dir")
        .arg(target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    cmd.stderr(std::process::Stdio::inherit());
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", Path::new(&cargo).display()))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo build -p claude-testing --bin fake-claude` failed ({})",
            output.status
        ));
    }
    // Prefer the path cargo reports; fall back to the expected place.
    let reported = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "fake-claude")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from));
    match reported {
        Some(p) if p.is_file() => Ok(p),
        _ if candidate.is_file() => Ok(candidate),
        _ => Err(format!(
            "built fake-claude but found no binary at {}",
            candidate.display()
        )),
    }
}

fn newest_source_mtime() -> Option<SystemTime> {
    fn walk(dir: &Path, newest: &mut Option<SystemTime>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.filter_map(Result::ok) {
            let path = e.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if let Ok(m) = e.metadata().and_then(|m| m.modified()) {
                if newest.is_none_or(|n| m > n) {
                    *newest = Some(m);
                }
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut newest = std::fs::metadata(root.join("Cargo.toml"))
        .and_then(|m| m.modified())
        .ok();
    walk(&root.join("src"), &mut newest);
    newest
}

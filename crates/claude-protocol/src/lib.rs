//! The Claude Code CLI's stream-json wire format: plain data and serde, no async, no
//! processes (except the short `--version` probe).
//!
//! # A guided tour
//!
//! * **Reading the CLI.** Every stdout line becomes a [`Message`] with
//!   [`Message::from_json_line`]. Parsing is *lossless*: every struct keeps unknown keys in
//!   an `extra` map, an unknown `type` becomes [`Message::Unknown`], an unknown `system`
//!   subtype [`SystemMessage::Other`], an unknown block [`ContentBlock::Unknown`], and a
//!   known type that does not fit its typed form [`Message::Malformed`] (with the reason).
//!   [`Message::to_value`] always gives back JSON equal to the input. Only invalid JSON or
//!   a non-object fails ([`ParseError`]). A session's stdout reader uses
//!   [`Message::from_slice`], which types the frames the CLI prints in bulk straight from the
//!   line's bytes (no intermediate `serde_json::Value`; `stream_event` payloads are typed as
//!   [`SseEvent`]) with the same outcomes.
//! * **Writing to the CLI.** [`UserInput`] / [`UserMessage`] make the user frame;
//!   [`ControlRequest`] with a [`ControlRequestBody`] and ids from [`RequestIdGenerator`]
//!   make control requests; [`ControlResponse::success`] / [`ControlResponse::error`]
//!   answer the CLI's `can_use_tool` / `hook_callback` / `mcp_message` requests.
//! * **Starting the CLI.** [`ClaudeOptions::builder`] validates options;
//!   [`ClaudeOptions::command`] gives a [`CommandSpec`] (argv, env, spill files);
//!   [`ClaudeOptions::initialize_request`] gives the `initialize` body carrying agents and
//!   the JSON schema.
//! * **Finding the CLI.** [`find_cli`] and [`probe_version`]; the supported versions (a
//!   minimum, the pinned one, the tested ones) are [`SUPPORTED_CLI`], and
//!   [`SupportedCli::support`] says where a version stands.
//!
//! Nullable wire fields that may also be absent are `Option<Option<T>>`: `None` = absent,
//! `Some(None)` = `null`; accessors such as [`AssistantMessage::parent_tool_use_id`] flatten
//! them. List fields of [`ResultMessage`] are `Option<Vec<_>>` for the same reason, with
//! accessors ([`ResultMessage::errors`]).
//!
//! # Examples
//!
//! Reading lines:
//!
//! ```
//! use claude_protocol::{ContentBlock, Message, SystemMessage};
//!
//! let init = r#"{"type":"system","subtype":"init","cwd":"/w","session_id":"s1","tools":[],
//!     "mcp_servers":[],"model":"claude-opus-5-5","permissionMode":"default","brand_new_key":1}"#;
//! let msg = Message::from_json_line(init)?;
//! assert_eq!(msg.session_id(), Some("s1"));
//! let Message::System(SystemMessage::Init(i)) = &msg else { panic!() };
//! assert_eq!(i.model, "claude-opus-5-5");
//! assert_eq!(i.extra["brand_new_key"], 1); // unknown keys are kept
//!
//! let line = r#"{"type":"assistant","message":{"id":"m1","model":"c","content":
//!     [{"type":"text","text":"hi"}],"stop_reason":null},"parent_tool_use_id":null,"session_id":"s1"}"#;
//! let Message::Assistant(a) = Message::from_json_line(line)? else { panic!() };
//! assert!(matches!(&a.message.content[0], ContentBlock::Text { text, .. } if text == "hi"));
//!
//! let result = r#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 500",
//!     "session_id":"s1","num_turns":1,"duration_ms":12,"total_cost_usd":0}"#;
//! let Message::Result(r) = Message::from_json_line(result)? else { panic!() };
//! assert!(r.is_error); // an API error: subtype success, is_error true
//!
//! let future = Message::from_json_line(r#"{"type":"hologram","x":1}"#)?;
//! assert!(matches!(future, Message::Unknown(_)));
//! assert_eq!(future.to_json_line(), r#"{"type":"hologram","x":1}"#);
//! # Ok::<(), claude_protocol::ParseError>(())
//! ```
//!
//! Writing frames:
//!
//! ```
//! use claude_protocol::{ControlRequest, ControlRequestBody, ControlResponse, Message,
//!     RequestIdGenerator, UserInput};
//!
//! let ids = RequestIdGenerator::new();
//! let interrupt = ControlRequest::new(ids.next_id(), ControlRequestBody::Interrupt);
//! let line = Message::from(interrupt).to_json_line();
//! assert!(line.starts_with(r#"{"type":"control_request","request_id":"req_1_"#));
//!
//! let allow = ControlResponse::success("their-id", serde_json::json!({}));
//! assert_eq!(
//!     Message::from(allow).to_json_line(),
//!     r#"{"type":"control_response","response":{"subtype":"success","request_id":"their-id","response":{}}}"#
//! );
//! let _user_line = UserInput::text("hello").to_json_line();
//! ```
//!
//! Options to a command line:
//!
//! ```
//! use std::path::Path;
//! use claude_protocol::{ClaudeOptions, PermissionMode};
//!
//! let opts = ClaudeOptions::builder()
//!     .model("claude-opus-5-5")
//!     .permission_mode(PermissionMode::AcceptEdits)
//!     .resume("-starts-with-a-dash")
//!     .max_turns(5)
//!     .build()?;
//! let spec = opts.command(Path::new("/usr/local/bin/claude"), None)?;
//! assert!(spec.args.contains(&"--resume=-starts-with-a-dash".into()));
//! assert!(spec.env_remove.contains(&"CLAUDECODE".into()));
//!
//! let err = ClaudeOptions::builder().continue_conversation(true).resume("x").build().unwrap_err();
//! assert!(err.to_string().contains("continue_conversation") && err.to_string().contains("resume"));
//! # Ok::<(), claude_protocol::OptionsError>(())
//! ```

mod capability;
mod content;
mod control;
mod discovery;
mod error;
mod message;
mod options;
mod permission;
mod result;
mod serde_util;
mod stream;
mod system;
pub mod transcript;
mod usage;

pub use capability::{Capability, SandboxEnabled};
pub use content::{ApiMessage, ContentBlock, UserApiMessage, UserContent};
pub use control::{
    AgentInfo, CanUseToolRequest, ControlCancelRequest, ControlError, ControlRequest,
    ControlRequestBody, ControlResponse, ControlResponseBody, ControlSuccess, HookCallbackRequest,
    HookMatcher, HooksConfig, InitializeRequest, InitializeResponse, McpMessageRequest, ModelInfo,
    PermissionDecision, RequestId, RequestIdGenerator, SlashCommand,
};
pub use discovery::{
    CACHE_ENV, CLI_NPM_PACKAGE, CLI_PATH_ENV, CliLocator, CliSupport, CliVersion,
    DEFAULT_PROBE_TIMEOUT, DiscoveryError, MIN_SUPPORTED_VERSION, PINNED_VERSION, SUPPORTED_CLI,
    SupportedCli, VersionParseError, find_cli, probe_version, probe_version_with_timeout,
};
pub use error::ParseError;
pub use message::{
    AssistantMessage, CommandLifecycle, ConversationReset, KeepAlive, MalformedMessage, Message,
    PromptSuggestion, RateLimitEvent, StreamEvent, UserInput, UserMessage,
};
pub use options::{
    CLAUDECODE_ENV, ClaudeOptions, ClaudeOptionsBuilder, CommandSpec, DEFAULT_SPILL_THRESHOLD,
    ENTRYPOINT, ENTRYPOINT_ENV, Effort, McpServers, OptionsError, SettingSource, Settings,
    SpillFile, SystemPrompt, Thinking, Tools, is_uuid,
};
pub use permission::PermissionMode;
pub use result::{PermissionDenial, ResultMessage, ResultSubtype};
pub use stream::{
    ContentBlockDelta, ContentBlockStart, ContentBlockStop, Delta, MessageDelta, MessageDeltaBody,
    MessageStart, MessageStop, SseEvent,
};
pub use system::{
    ApiRetryMessage, CompactBoundaryMessage, InitMessage, McpServerStatus, PermissionDeniedMessage,
    StatusMessage, SystemMessage, UiInvalidateMessage,
};
pub use usage::{ModelUsage, Usage};

//! The Claude Code CLI's stream-json wire format.

mod content;
mod control;
mod discovery;
mod error;
mod message;
mod options;
mod permission;
mod result;
mod serde_util;
mod system;
mod usage;

pub use content::{ApiMessage, ContentBlock, UserApiMessage, UserContent};
pub use control::{
    AgentInfo, CanUseToolRequest, ControlCancelRequest, ControlError, ControlRequest,
    ControlRequestBody, ControlResponse, ControlResponseBody, ControlSuccess, HookCallbackRequest,
    HookMatcher, HooksConfig, InitializeRequest, InitializeResponse, McpMessageRequest, ModelInfo,
    PermissionDecision, RequestId, RequestIdGenerator, SlashCommand,
};
pub use discovery::{
    CACHE_ENV, CLI_PATH_ENV, CliLocator, CliVersion, DEFAULT_PROBE_TIMEOUT, DiscoveryError,
    MIN_SUPPORTED_VERSION, PINNED_VERSION, VersionParseError, find_cli, probe_version,
    probe_version_with_timeout,
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
pub use system::{
    ApiRetryMessage, CompactBoundaryMessage, InitMessage, McpServerStatus, PermissionDeniedMessage,
    StatusMessage, SystemMessage, UiInvalidateMessage,
};
pub use usage::{ModelUsage, Usage};

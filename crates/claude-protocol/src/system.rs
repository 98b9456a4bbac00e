//! `type: "system"` lines.

use serde::de::MapAccess;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::capability::{Capability, SandboxEnabled};
use crate::permission::PermissionMode;
use crate::serde_util::{Tagged, Tags, deserialize_tagged, double_option, wire_struct};

/// A `system` line, by `subtype`. Subtypes this crate does not model are kept whole in
/// [`SystemMessage::Other`] (without the `type` key, which [`crate::Message`] owns).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "subtype", rename_all = "snake_case")]
#[non_exhaustive]
// `Init` is the largest variant and the most common one (one per turn): boxing it would cost an
// allocation per turn and change the public pattern `SystemMessage::Init(init)` for every user.
#[allow(clippy::large_enum_variant)]
pub enum SystemMessage {
    /// `init`: starts every turn.
    Init(InitMessage),
    /// `status`: e.g. `requesting`, or a permission-mode change.
    Status(StatusMessage),
    /// `api_retry`: the CLI retries an API call.
    ApiRetry(ApiRetryMessage),
    /// `permission_denied`: a tool call was refused by rules or mode.
    PermissionDenied(PermissionDeniedMessage),
    /// `ui_invalidate`: a UI-only notification.
    UiInvalidate(UiInvalidateMessage),
    /// `compact_boundary`: the conversation was compacted here.
    CompactBoundary(CompactBoundaryMessage),
    /// Any other subtype, kept whole (including `subtype`).
    #[serde(untagged)]
    Other(Value),
}

impl SystemMessage {
    /// The `subtype` as on the wire.
    pub fn subtype(&self) -> &str {
        match self {
            Self::Init(_) => "init",
            Self::Status(_) => "status",
            Self::ApiRetry(_) => "api_retry",
            Self::PermissionDenied(_) => "permission_denied",
            Self::UiInvalidate(_) => "ui_invalidate",
            Self::CompactBoundary(_) => "compact_boundary",
            Self::Other(v) => v.get("subtype").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// The `session_id`, if present.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Self::Init(m) => Some(&m.session_id),
            Self::Status(m) => m.session_id.as_deref(),
            Self::ApiRetry(m) => m.session_id.as_deref(),
            Self::PermissionDenied(m) => m.session_id.as_deref(),
            Self::UiInvalidate(m) => m.session_id.as_deref(),
            Self::CompactBoundary(m) => m.session_id.as_deref(),
            Self::Other(v) => v.get("session_id").and_then(Value::as_str),
        }
    }

    /// The `init` message, if this is one.
    pub fn as_init(&self) -> Option<&InitMessage> {
        match self {
            Self::Init(m) => Some(m),
            _ => None,
        }
    }
}

impl Tagged for SystemMessage {
    const TAG: &'static [&'static str] = &["subtype"];
    const NAME: &'static str = "system message";

    fn visit_variant<'de, A: MapAccess<'de>>(
        tag: &str,
        map: A,
        tags: Tags,
    ) -> Result<Option<Self>, A::Error> {
        Ok(Some(match tag {
            "init" => Self::Init(InitMessage::visit_fields(map, tags)?),
            "status" => Self::Status(StatusMessage::visit_fields(map, tags)?),
            "api_retry" => Self::ApiRetry(ApiRetryMessage::visit_fields(map, tags)?),
            "permission_denied" => {
                Self::PermissionDenied(PermissionDeniedMessage::visit_fields(map, tags)?)
            }
            "ui_invalidate" => Self::UiInvalidate(UiInvalidateMessage::visit_fields(map, tags)?),
            "compact_boundary" => {
                Self::CompactBoundary(CompactBoundaryMessage::visit_fields(map, tags)?)
            }
            _ => return Ok(None),
        }))
    }

    fn catch_all(value: Value) -> Self {
        Self::Other(value)
    }
}

impl<'de> Deserialize<'de> for SystemMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_tagged(d)
    }
}

/// One entry of `mcp_servers` in `system/init`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct McpServerStatus {
    /// Server name.
    pub name: String,
    /// `connected`, `failed`, `pending`, `needs-auth`, …
    pub status: String,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `system/init`: session facts; printed at the start of every turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct InitMessage {
    /// The session id (new on `--fork-session`, kept on `--resume`).
    pub session_id: String,
    /// The working directory.
    pub cwd: String,
    /// The tools available to the model.
    pub tools: Vec<String>,
    /// MCP servers and their status.
    pub mcp_servers: Vec<McpServerStatus>,
    /// The model in use.
    pub model: String,
    /// `permissionMode`.
    #[serde(rename = "permissionMode")]
    pub permission_mode: PermissionMode,
    /// The CLI version (`2.1.329`); [`InitMessage::cli_version`] parses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_code_version: Option<String>,
    /// `apiKeySource` (`ANTHROPIC_API_KEY`, `none`, …).
    #[serde(
        rename = "apiKeySource",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub api_key_source: Option<String>,
    /// Slash commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slash_commands: Option<Vec<String>>,
    /// Agent names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<Vec<String>>,
    /// Skill names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skills: Option<Vec<String>>,
    /// Plugins (`{name, path, source}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<Vec<Value>>,
    /// The output style.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_style: Option<String>,
    /// Capability flags of this CLI build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<Capability>>,
    /// `sandbox_enabled` (since 2.1.332): whether tools run in the CLI's sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_enabled: Option<SandboxEnabled>,
    /// `additional_directories` (from `--add-dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_directories: Option<Vec<String>>,
    /// The line's uuid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Keys this crate does not model (new ones appear in every release).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl InitMessage {
    /// `claude_code_version`, parsed (`None` when absent or not `X.Y.Z`).
    pub fn cli_version(&self) -> Option<crate::CliVersion> {
        self.claude_code_version.as_deref()?.parse().ok()
    }

    /// The capability flags; empty when absent.
    pub fn capabilities(&self) -> &[Capability] {
        self.capabilities.as_deref().unwrap_or(&[])
    }

    /// Whether the CLI lists `capability`.
    pub fn has_capability(&self, capability: &Capability) -> bool {
        self.capabilities().contains(capability)
    }
}

/// `system/status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StatusMessage {
    /// `None` = absent, `Some(None)` = `null`, else e.g. `requesting`, `compacting`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub status: Option<Option<String>>,
    /// `permissionMode`, when the status reports a mode change.
    #[serde(
        rename = "permissionMode",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub permission_mode: Option<PermissionMode>,
    /// The session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The line's uuid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `system/api_retry`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ApiRetryMessage {
    /// The attempt number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u64>,
    /// The retry limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u64>,
    /// The delay before the retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay_ms: Option<u64>,
    /// The HTTP status, when there was one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub error_status: Option<Option<u64>>,
    /// The error kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// The session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The line's uuid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `system/permission_denied`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PermissionDeniedMessage {
    /// The tool refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// The `tool_use` id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    /// Why (human readable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The kind of decision (`subcommandResults`, `rule`, `mode`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_reason_type: Option<String>,
    /// The session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The line's uuid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `system/ui_invalidate`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UiInvalidateMessage {
    /// The UI event (`ui.render`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The line's uuid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `system/compact_boundary`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CompactBoundaryMessage {
    /// `{trigger, pre_tokens, …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact_metadata: Option<Value>,
    /// The session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The line's uuid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

wire_struct!(McpServerStatus {
    req name: "name",
    req status: "status",
});

wire_struct!(InitMessage {
    req session_id: "session_id",
    req cwd: "cwd",
    req tools: "tools",
    req mcp_servers: "mcp_servers",
    req model: "model",
    req permission_mode: "permissionMode",
    opt claude_code_version: "claude_code_version",
    opt api_key_source: "apiKeySource",
    opt slash_commands: "slash_commands",
    opt agents: "agents",
    opt skills: "skills",
    opt plugins: "plugins",
    opt output_style: "output_style",
    opt capabilities: "capabilities",
    opt sandbox_enabled: "sandbox_enabled",
    opt additional_directories: "additional_directories",
    opt uuid: "uuid",
});

wire_struct!(StatusMessage {
    dbl status: "status",
    opt permission_mode: "permissionMode",
    opt session_id: "session_id",
    opt uuid: "uuid",
});

wire_struct!(ApiRetryMessage {
    opt attempt: "attempt",
    opt max_retries: "max_retries",
    opt retry_delay_ms: "retry_delay_ms",
    dbl error_status: "error_status",
    opt error: "error",
    opt session_id: "session_id",
    opt uuid: "uuid",
});

wire_struct!(PermissionDeniedMessage {
    opt tool_name: "tool_name",
    opt tool_use_id: "tool_use_id",
    opt message: "message",
    opt decision_reason_type: "decision_reason_type",
    opt session_id: "session_id",
    opt uuid: "uuid",
});

wire_struct!(UiInvalidateMessage {
    opt event: "event",
    opt session_id: "session_id",
    opt uuid: "uuid",
});

wire_struct!(CompactBoundaryMessage {
    opt compact_metadata: "compact_metadata",
    opt session_id: "session_id",
    opt uuid: "uuid",
});

//! The control protocol: `control_request`, `control_response`, `control_cancel_request`.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::capability::{Capability, SandboxEnabled};
use crate::permission::PermissionMode;
use crate::serde_util::double_option;

/// A control request id. Ours look like `req_<n>_<8 hex digits>` (as the official SDKs
/// make them); the CLI's are UUIDs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub String);

impl RequestId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> Self {
        id.0
    }
}

impl From<&RequestId> for String {
    fn from(id: &RequestId) -> Self {
        id.0.clone()
    }
}

impl From<String> for RequestId {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// Makes unique [`RequestId`]s: `req_<n>_<random hex>`, `n` counting from 1.
/// Thread-safe; share one per session.
#[derive(Debug)]
pub struct RequestIdGenerator {
    counter: AtomicU64,
    salt: u64,
}

impl Default for RequestIdGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestIdGenerator {
    /// A generator with a fresh random salt.
    pub fn new() -> Self {
        Self {
            counter: AtomicU64::new(0),
            salt: random_u64(),
        }
    }

    /// The next id.
    pub fn next_id(&self) -> RequestId {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(self.salt ^ n);
        let r = h.finish() as u32;
        RequestId(format!("req_{n}_{r:08x}"))
    }
}

fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A `control_request` line, either direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ControlRequest {
    /// The id the answer must carry.
    pub request_id: String,
    /// The body, by `subtype`.
    pub request: ControlRequestBody,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ControlRequest {
    /// A request with the given id and body.
    pub fn new(request_id: impl Into<String>, request: ControlRequestBody) -> Self {
        Self {
            request_id: request_id.into(),
            request,
            extra: Map::new(),
        }
    }
}

/// The `request` of a `control_request`, by `subtype`.
///
/// Ours → CLI: `initialize`, `interrupt`, `set_model`, `set_permission_mode`,
/// `mcp_status`, `get_context_usage`. CLI → ours: `can_use_tool`, `hook_callback`,
/// `mcp_message`. Anything else is kept whole in [`ControlRequestBody::Unknown`].
///
/// The unit-like variants carry no extra keys: a body with unexpected keys for them is not
/// representable exactly, and [`crate::Message::from_value`] then keeps the line raw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "subtype", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ControlRequestBody {
    /// `initialize`: the first request of a session; carries hooks, agents, schema.
    Initialize(InitializeRequest),
    /// `interrupt`: stop the running turn. Answer: `{"still_queued":[…]}`.
    Interrupt,
    /// `set_model`: `null` goes back to the default model.
    SetModel {
        /// The model, or `None` for the default.
        model: Option<String>,
    },
    /// `set_permission_mode`.
    SetPermissionMode {
        /// The new mode.
        mode: PermissionMode,
    },
    /// `mcp_status`. Answer: `{"mcpServers":[…]}`.
    McpStatus,
    /// `get_context_usage`. Answer: token categories, `totalTokens`, `maxTokens`, …
    GetContextUsage,
    /// `can_use_tool` (CLI → us, with `--permission-prompt-tool stdio`).
    CanUseTool(CanUseToolRequest),
    /// `hook_callback` (CLI → us).
    HookCallback(HookCallbackRequest),
    /// `mcp_message` (CLI → us): JSON-RPC for an in-process MCP server.
    McpMessage(McpMessageRequest),
    /// Any other subtype, kept whole (including `subtype`).
    #[serde(untagged)]
    Unknown(Value),
}

impl ControlRequestBody {
    /// The `subtype` as on the wire.
    pub fn subtype(&self) -> &str {
        match self {
            Self::Initialize(_) => "initialize",
            Self::Interrupt => "interrupt",
            Self::SetModel { .. } => "set_model",
            Self::SetPermissionMode { .. } => "set_permission_mode",
            Self::McpStatus => "mcp_status",
            Self::GetContextUsage => "get_context_usage",
            Self::CanUseTool(_) => "can_use_tool",
            Self::HookCallback(_) => "hook_callback",
            Self::McpMessage(_) => "mcp_message",
            Self::Unknown(v) => v.get("subtype").and_then(Value::as_str).unwrap_or(""),
        }
    }
}

/// One hook matcher in `initialize.hooks`: `{"matcher", "hookCallbackIds", "timeout"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HookMatcher {
    /// Tool-name pattern, or `None` (`null`) for every tool.
    pub matcher: Option<String>,
    /// Our callback ids; `hook_callback` requests name one of them.
    #[serde(rename = "hookCallbackIds")]
    pub hook_callback_ids: Vec<String>,
    /// Timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl HookMatcher {
    /// A matcher with the given pattern and callback ids.
    pub fn new(matcher: Option<String>, hook_callback_ids: Vec<String>) -> Self {
        Self {
            matcher,
            hook_callback_ids,
            timeout: None,
            extra: Map::new(),
        }
    }
}

/// Hook registrations: event name (`PreToolUse`, `PostToolUse`, `UserPromptSubmit`, `Stop`,
/// …) → matchers.
pub type HooksConfig = BTreeMap<String, Vec<HookMatcher>>;

/// The `initialize` request body (camelCase keys on the wire).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InitializeRequest {
    /// `None` = key absent, `Some(None)` = `"hooks": null` (what [`InitializeRequest::new`]
    /// sends), `Some(Some(map))` = registrations.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub hooks: Option<Option<HooksConfig>>,
    /// `sdkMcpServers`: names of in-process MCP servers (omitted when empty).
    #[serde(
        rename = "sdkMcpServers",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sdk_mcp_servers: Vec<String>,
    /// `agents`: name → `{description, prompt, tools, model, …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<Value>,
    /// `jsonSchema`: structured-output schema.
    #[serde(
        rename = "jsonSchema",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub json_schema: Option<Value>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl InitializeRequest {
    /// `{"subtype":"initialize","hooks":null}`.
    pub fn new() -> Self {
        Self {
            hooks: Some(None),
            ..Self::default()
        }
    }

    /// The hook registrations, if any.
    pub fn hooks(&self) -> Option<&HooksConfig> {
        self.hooks.as_ref().and_then(Option::as_ref)
    }

    /// Sets the hook registrations (`None` → `"hooks": null`).
    pub fn set_hooks(&mut self, hooks: Option<HooksConfig>) {
        self.hooks = Some(hooks);
    }
}

/// `can_use_tool`: may the tool run? Answer with [`PermissionDecision`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CanUseToolRequest {
    /// The tool.
    pub tool_name: String,
    /// Its input.
    pub input: Value,
    /// Rules the CLI suggests (`addRules`, `addDirectories`, `setMode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_suggestions: Option<Vec<Value>>,
    /// A path outside the allowed directories, when that is the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_path: Option<String>,
    /// Why the CLI asks (`subcommandResults`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_reason_type: Option<String>,
    /// The `tool_use` id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    /// Keys this crate does not model (`display_name`, `description`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `hook_callback`: one of our hooks fired. Answer `{}` to continue, or hook output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HookCallbackRequest {
    /// The callback id we registered in `initialize`.
    pub callback_id: String,
    /// The hook input (`hook_event_name`, `tool_name`, `tool_input`, `session_id`, …).
    pub input: Value,
    /// The `tool_use` id (or a prompt id), when there is one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub tool_use_id: Option<Option<String>>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl HookCallbackRequest {
    /// `input.hook_event_name`.
    pub fn hook_event_name(&self) -> Option<&str> {
        self.input.get("hook_event_name").and_then(Value::as_str)
    }
}

/// `mcp_message`: a JSON-RPC message for an in-process ("sdk") MCP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct McpMessageRequest {
    /// The server name from `--mcp-config`.
    pub server_name: String,
    /// The JSON-RPC message.
    pub message: Value,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The answer to `can_use_tool`, serialised into a success response.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PermissionDecision {
    /// `{"behavior":"allow","updatedInput":…}`; the CLI needs `updatedInput` (send the
    /// original input to run unchanged).
    Allow {
        /// The input to run the tool with.
        updated_input: Value,
        /// Permission updates to apply (`updatedPermissions`).
        updated_permissions: Option<Vec<Value>>,
    },
    /// `{"behavior":"deny","message":…}`; shows in `result.permission_denials`.
    Deny {
        /// Why.
        message: String,
        /// Also interrupt the turn.
        interrupt: bool,
    },
}

impl PermissionDecision {
    /// The `response` value for [`ControlResponse::success`].
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        match self {
            Self::Allow {
                updated_input,
                updated_permissions,
            } => {
                m.insert("behavior".into(), "allow".into());
                m.insert("updatedInput".into(), updated_input.clone());
                if let Some(p) = updated_permissions {
                    m.insert("updatedPermissions".into(), Value::Array(p.clone()));
                }
            }
            Self::Deny { message, interrupt } => {
                m.insert("behavior".into(), "deny".into());
                m.insert("message".into(), message.clone().into());
                if *interrupt {
                    m.insert("interrupt".into(), true.into());
                }
            }
        }
        Value::Object(m)
    }
}

/// A `control_response` line, either direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ControlResponse {
    /// The body, by `subtype`.
    pub response: ControlResponseBody,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `response` of a `control_response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "subtype", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ControlResponseBody {
    /// `success`.
    Success(ControlSuccess),
    /// `error`.
    Error(ControlError),
    /// Any other subtype, kept whole.
    #[serde(untagged)]
    Unknown(Value),
}

/// A successful control answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ControlSuccess {
    /// The request answered.
    pub request_id: String,
    /// The answer (`{}` when there is nothing to say).
    #[serde(default)]
    pub response: Value,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A failed control answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ControlError {
    /// The request answered.
    pub request_id: String,
    /// The error text (e.g. `Unsupported control request subtype: X`).
    pub error: String,
    /// A machine-readable code (e.g. `unsupported_request`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ControlResponse {
    /// `{"type":"control_response","response":{"subtype":"success","request_id":…,"response":…}}`.
    pub fn success(request_id: impl Into<String>, response: Value) -> Self {
        Self {
            response: ControlResponseBody::Success(ControlSuccess {
                request_id: request_id.into(),
                response,
                extra: Map::new(),
            }),
            extra: Map::new(),
        }
    }

    /// `{"type":"control_response","response":{"subtype":"error","request_id":…,"error":…}}`.
    pub fn error(request_id: impl Into<String>, error: impl Into<String>) -> Self {
        Self {
            response: ControlResponseBody::Error(ControlError {
                request_id: request_id.into(),
                error: error.into(),
                error_code: None,
                extra: Map::new(),
            }),
            extra: Map::new(),
        }
    }

    /// The id of the request answered.
    pub fn request_id(&self) -> Option<&str> {
        match &self.response {
            ControlResponseBody::Success(s) => Some(&s.request_id),
            ControlResponseBody::Error(e) => Some(&e.request_id),
            ControlResponseBody::Unknown(v) => v.get("request_id").and_then(Value::as_str),
        }
    }

    /// Whether the subtype is `success`.
    pub fn is_success(&self) -> bool {
        matches!(self.response, ControlResponseBody::Success(_))
    }

    /// `Ok(response)` for success, `Err(error text)` otherwise.
    pub fn into_result(self) -> Result<Value, String> {
        match self.response {
            ControlResponseBody::Success(s) => Ok(s.response),
            ControlResponseBody::Error(e) => Err(e.error),
            ControlResponseBody::Unknown(v) => Err(format!("unknown control response: {v}")),
        }
    }
}

/// `control_cancel_request`: the CLI gave up on one of its requests; send no answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ControlCancelRequest {
    /// The request cancelled.
    pub request_id: String,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ControlCancelRequest {
    /// A cancel for `request_id`.
    pub fn new(request_id: impl Into<String>) -> Self {
        Self {
            request_id: request_id.into(),
            extra: Map::new(),
        }
    }
}

/// One slash command in the `initialize` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SlashCommand {
    /// The command name (without `/`).
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `argumentHint`.
    #[serde(
        rename = "argumentHint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub argument_hint: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One agent in the `initialize` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentInfo {
    /// The agent name.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One model in the `initialize` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelInfo {
    /// The value to pass to `--model` / `set_model`.
    pub value: String,
    /// `displayName`.
    #[serde(
        rename = "displayName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The success `response` of `initialize` (2.1.329 and 2.1.332 shapes), lossless.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InitializeResponse {
    /// Slash commands and skills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<SlashCommand>>,
    /// Agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<Vec<AgentInfo>>,
    /// Models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<ModelInfo>>,
    /// Account facts (`tokenSource`, `apiKeySource`, `apiProvider`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Value>,
    /// The CLI's pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u64>,
    /// The CLI version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_code_version: Option<String>,
    /// The permission mode in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_permission_mode: Option<PermissionMode>,
    /// The output style.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_style: Option<String>,
    /// Capability flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<Capability>>,
    /// `sandbox_enabled` (since 2.1.332): whether tools run in the CLI's sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_enabled: Option<SandboxEnabled>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl InitializeResponse {
    /// Reads the `response` value of a successful `initialize` answer.
    pub fn from_value(value: Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(value)
    }

    /// `claude_code_version`, parsed (`None` when absent or not `X.Y.Z`).
    pub fn cli_version(&self) -> Option<crate::CliVersion> {
        self.claude_code_version.as_deref()?.parse().ok()
    }

    /// The capability flags; empty when absent.
    pub fn capabilities(&self) -> &[Capability] {
        self.capabilities.as_deref().unwrap_or(&[])
    }
}

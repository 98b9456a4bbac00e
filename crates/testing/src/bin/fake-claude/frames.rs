//! Frames in the shape of Claude Code 2.1.329's output, or 2.1.332's when the scenario
//! impersonates that version or a newer one.

use std::time::{SystemTime, UNIX_EPOCH};

use claude_protocol::CliVersion;
use claude_testing::fake_claude::FIELDS_OF_2_1_332;
use serde_json::{Map, Value, json};

/// Whether frames of `version` carry the fields 2.1.332 added.
pub(crate) fn has_2_1_332_fields(version: CliVersion) -> bool {
    version >= FIELDS_OF_2_1_332
}

/// The `capabilities` of `system/init` (`in_init`) or of the `initialize` answer.
fn capabilities(version: CliVersion, in_init: bool) -> Value {
    let mut caps = vec!["interrupt_receipt_v1"];
    if has_2_1_332_fields(version) {
        caps.push("mcp_call_soft_error_result_v1");
        if in_init {
            caps.push("withdrawn_tools_v1");
        }
    }
    json!(caps)
}

pub(crate) fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An id like `msg_fake_<24 hex>` / `toolu_fake_<24 hex>`.
pub(crate) fn new_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_fake_{}", &hex[..24])
}

/// Now as `2026-11-20T23:55:10.208Z`.
pub(crate) fn now_iso() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

pub(crate) const TOOLS: &[&str] = &[
    "Task",
    "Bash",
    "Edit",
    "Glob",
    "Grep",
    "NotebookEdit",
    "Read",
    "TodoWrite",
    "WebFetch",
    "WebSearch",
    "Write",
];
const SLASH_COMMANDS: &[&str] = &[
    "compact",
    "context",
    "cost",
    "init",
    "review",
    "security-review",
];

pub(crate) fn system_init(
    version: CliVersion,
    session_id: &str,
    cwd: &str,
    model: &str,
    permission_mode: &str,
) -> Value {
    let mut init = json!({
        "type": "system",
        "subtype": "init",
        "cwd": cwd,
        "session_id": session_id,
        "tools": TOOLS,
        "mcp_servers": [],
        "model": model,
        "permissionMode": permission_mode,
        "slash_commands": SLASH_COMMANDS,
        "apiKeySource": "ANTHROPIC_API_KEY",
        "claude_code_version": version,
        "fake": true,
        "output_style": "default",
        "agents": ["general-purpose", "Explore", "Plan"],
        "skills": [],
        "plugins": [],
        "capabilities": capabilities(version, true),
        "analytics_disabled": true,
        "uuid": new_uuid(),
        "original_cwd": cwd,
        "additional_directories": [],
    });
    if has_2_1_332_fields(version) {
        init["sandbox_enabled"] = json!(false);
    }
    init
}

/// The API message body of an assistant line holding one content block.
pub(crate) fn message(id: &str, model: &str, block: Value, input_tokens: u64) -> Value {
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [block],
        "stop_reason": null,
        "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        "context_management": null,
    })
}

pub(crate) fn assistant(session_id: &str, message: Value) -> Value {
    json!({
        "type": "assistant",
        "message": message,
        "parent_tool_use_id": null,
        "session_id": session_id,
        "uuid": new_uuid(),
        "timestamp": now_iso(),
        "request_id": new_id("req"),
    })
}

pub(crate) fn user(session_id: &str, content: Value, extra: Option<Map<String, Value>>) -> Value {
    let mut v = json!({
        "type": "user",
        "message": {"role": "user", "content": content},
        "parent_tool_use_id": null,
        "session_id": session_id,
        "uuid": new_uuid(),
        "timestamp": now_iso(),
    });
    if let (Some(extra), Some(obj)) = (extra, v.as_object_mut()) {
        obj.extend(extra);
    }
    v
}

pub(crate) fn stream_event(session_id: &str, message_id: &str, event: Value) -> Value {
    json!({
        "type": "stream_event",
        "event": event,
        "session_id": session_id,
        "parent_tool_use_id": null,
        "uuid": new_uuid(),
        "api_message_id": message_id,
    })
}

pub(crate) fn usage(input_tokens: u64, output_tokens: u64) -> Value {
    json!({
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "output_tokens_details": {"thinking_tokens": 0},
        "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
        "service_tier": "standard",
        "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
        "inference_geo": "",
        "iterations": [],
        "speed": "standard",
        "fallback_credit": null,
    })
}

pub(crate) fn model_usage_entry(model: &str, input: u64, output: u64, cost: f64) -> Value {
    json!({
        "inputTokens": input,
        "outputTokens": output,
        "cacheReadInputTokens": 0,
        "cacheCreationInputTokens": 0,
        "webSearchRequests": 0,
        "costUSD": cost,
        "contextWindow": 1_000_000,
        "maxOutputTokens": 128_000,
        "thinkingTokens": 0,
        "canonicalModel": model,
        "provider": "firstParty",
        "costBasis": "list",
    })
}

/// The success payload of the `initialize` answer.
pub(crate) fn initialize_response(
    version: CliVersion,
    model: &str,
    permission_mode: &str,
) -> Value {
    let mut answer = json!({
        "commands": SLASH_COMMANDS.iter().map(|c| json!({"name": c, "description": format!("/{c}"), "argumentHint": "", "builtin": true})).collect::<Vec<_>>(),
        "agents": [
            {"name": "general-purpose", "description": "General-purpose agent."},
            {"name": "Explore", "description": "Fast read-only search agent."},
            {"name": "Plan", "description": "Planning agent."},
        ],
        "output_style": "default",
        "available_output_styles": ["default", "Explanatory", "Learning"],
        "models": [
            {"value": "default", "resolvedModel": model, "displayName": "Default (recommended)", "description": "The default model"},
            {"value": "claude-opus-5-5", "resolvedModel": "claude-opus-5-5", "displayName": "Opus 5.5", "description": "Opus"},
            {"value": "claude-haiku-4-5", "resolvedModel": "claude-haiku-4-5", "displayName": "Haiku 4.5", "description": "Haiku"},
        ],
        "account": {"tokenSource": "none", "apiKeySource": "ANTHROPIC_API_KEY", "apiProvider": "firstParty"},
        "pid": std::process::id(),
        "claude_code_version": version,
        "fake": true,
        "current_permission_mode": permission_mode,
        "analytics_disabled": true,
        "session_state": "idle",
        "capabilities": capabilities(version, false),
    });
    if has_2_1_332_fields(version) {
        answer["sandbox_enabled"] = json!(false);
    }
    answer
}

pub(crate) fn context_usage(history_messages: usize) -> Value {
    let messages = 50 * history_messages as u64;
    let total = 10_000 + messages;
    json!({
        "categories": [
            {"id": "system_prompt", "name": "System prompt", "tokens": 2000, "kind": "used"},
            {"id": "system_tools", "name": "System tools", "tokens": 8000, "kind": "used"},
            {"id": "messages", "name": "Messages", "tokens": messages, "kind": "used"},
            {"id": "free_space", "name": "Free space", "tokens": 200_000 - total, "kind": "free"},
        ],
        "totalTokens": total,
        "maxTokens": 200_000,
        "rawMaxTokens": 200_000,
        "percentage": total * 100 / 200_000,
    })
}

//! The request log: what the CLI sent, and helpers to read it.

use std::collections::BTreeMap;

use serde_json::Value;

/// What kind of request the fake API saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestKind {
    /// A `POST /v1/messages` of the agent loop: it offers tools (the CLI's main requests always do).
    Main,
    /// A `POST /v1/messages` without tools: a side request of the CLI (title, summary, checks…).
    Side,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
    /// Any other method or path (answered 404).
    Other,
}

/// One request as the fake API received it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// Position in the log, from 0.
    pub seq: usize,
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// The path without the query, e.g. `/v1/messages`.
    pub path: String,
    /// The query string without `?`, e.g. `beta=true`.
    pub query: Option<String>,
    /// All headers (lower-case names; values that are not UTF-8 are dropped).
    pub headers: BTreeMap<String, String>,
    /// The JSON body (`Value::Null` if the body was empty or not JSON).
    pub body: Value,
    /// What kind of request this was.
    pub kind: RequestKind,
    /// A one-line description of what the fake answered.
    pub reply: String,
}

impl RecordedRequest {
    /// The `model` of the body.
    pub fn model(&self) -> Option<&str> {
        self.body.get("model").and_then(Value::as_str)
    }

    /// Whether the body asked for streaming (`"stream": true`).
    pub fn is_stream(&self) -> bool {
        self.body.get("stream").and_then(Value::as_bool) == Some(true)
    }

    /// The `system` prompt as one string (text blocks joined with `\n`), if any.
    pub fn system_text(&self) -> Option<String> {
        match self.body.get("system")? {
            Value::String(s) => Some(s.clone()),
            Value::Array(blocks) => Some(
                blocks
                    .iter()
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            _ => None,
        }
    }

    /// The `messages` array (empty if absent).
    pub fn messages(&self) -> &[Value] {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The names of the offered `tools`.
    pub fn tool_names(&self) -> Vec<String> {
        self.body
            .get("tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A header value by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The user's text of the last message, if it is a user message with text (see [`latest_user_text`]).
    pub fn latest_user_text(&self) -> Option<String> {
        latest_user_text(&self.body)
    }

    /// The tool results of the last message, if it is a user message carrying any.
    pub fn latest_tool_results(&self) -> Vec<ToolResult> {
        latest_tool_results(&self.body)
    }
}

/// One `tool_result` block of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolResult {
    /// The `tool_use_id` it answers.
    pub tool_use_id: String,
    /// Its content as text (text blocks joined with `\n`).
    pub content: String,
    /// Its `is_error` flag.
    pub is_error: bool,
}

/// Whether a text block is one the CLI adds by itself (`<system-reminder>` and similar).
fn is_injected(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("<system-reminder>")
        || t.starts_with("<local-command")
        || t.starts_with("<command-name>")
}

/// The user-written texts of one message's `content` (string, or the text blocks of an array),
/// leaving out blocks the CLI injects (`<system-reminder>…`).
fn texts_of_content(content: &Value) -> Vec<String> {
    match content {
        Value::String(s) if !is_injected(s) => vec![s.clone()],
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .filter(|t| !is_injected(t))
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Every user-written text of a request, oldest first: the text content of each `user` message
/// (tool results and `<system-reminder>` blocks left out).
///
/// Use it to check what history the CLI sent, e.g. after `--resume`.
pub fn user_texts_of(request: &RecordedRequest) -> Vec<String> {
    request
        .messages()
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .filter_map(|m| m.get("content"))
        .flat_map(texts_of_content)
        .collect()
}

/// Every assistant text of a request, oldest first (text blocks of `assistant` messages).
pub fn assistant_texts_of(request: &RecordedRequest) -> Vec<String> {
    request
        .messages()
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .filter_map(|m| m.get("content"))
        .flat_map(texts_of_content)
        .collect()
}

/// The last `user` or `assistant` message: the CLI (2.1.329) may append `system`-role messages
/// (environment notes) after the user's message, which are skipped.
fn last_message(body: &Value) -> Option<&Value> {
    body.get("messages")?.as_array()?.iter().rev().find(|m| {
        matches!(
            m.get("role").and_then(Value::as_str),
            Some("user" | "assistant")
        )
    })
}

/// The user's text in the last message of a request body: the last user-written text block of
/// the last `user`/`assistant` message (trailing `system`-role messages skipped), if that
/// message is a `user` one. `None` when the last message carries
/// only tool results or injected blocks.
pub fn latest_user_text(body: &Value) -> Option<String> {
    let last = last_message(body)?;
    if last.get("role").and_then(Value::as_str) != Some("user") {
        return None;
    }
    texts_of_content(last.get("content")?).pop()
}

/// The `tool_result` blocks of the last message of a request body.
pub fn latest_tool_results(body: &Value) -> Vec<ToolResult> {
    let Some(last) = last_message(body) else {
        return Vec::new();
    };
    if last.get("role").and_then(Value::as_str) != Some("user") {
        return Vec::new();
    }
    let Some(blocks) = last.get("content").and_then(Value::as_array) else {
        return Vec::new();
    };
    blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        .map(|b| ToolResult {
            tool_use_id: b
                .get("tool_use_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            content: match b.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => String::new(),
            },
            is_error: b.get("is_error").and_then(Value::as_bool) == Some(true),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn latest_text_skips_reminders_and_tool_results() {
        let body = json!({"messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": [{"type": "text", "text": "reply"}]},
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>x</system-reminder>"},
                {"type": "text", "text": "second"}
            ]},
            {"role": "system", "content": "environment notes"}
        ]});
        assert_eq!(latest_user_text(&body).as_deref(), Some("second"));
        let body = json!({"messages": [
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "out", "is_error": false}
            ]}
        ]});
        assert_eq!(latest_user_text(&body), None);
        let results = latest_tool_results(&body);
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].content, "out");
        assert_eq!(results[0].tool_use_id, "t1");
    }
}

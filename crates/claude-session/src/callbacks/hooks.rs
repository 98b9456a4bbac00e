//! Hooks: the CLI calls the host at points of its loop (before and after a tool, on a prompt, when
//! it stops, …); the host observes, adds context, changes a tool's input, or vetoes.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

/// A point in the CLI's loop where hooks run.
///
/// Order within one turn (measured on 2.1.329): `UserPromptSubmit` → `PreToolUse` →
/// (the tool runs) → `PostToolUse` (or `PostToolUseFailure`) → … → `Stop`, all before the
/// turn's `result`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum HookEvent {
    /// Before a tool runs; can deny, allow, ask, or change its input.
    PreToolUse,
    /// After a tool succeeded; sees `tool_response`, can add context or block.
    PostToolUse,
    /// After a tool failed; sees the `error`.
    PostToolUseFailure,
    /// A prompt was submitted; can add context or block it.
    UserPromptSubmit,
    /// The agent is about to end its turn; can block (make it go on).
    Stop,
    /// A subagent starts.
    SubagentStart,
    /// A subagent is about to stop.
    SubagentStop,
    /// Before the conversation is compacted.
    PreCompact,
    /// The CLI would notify a user.
    Notification,
    /// A permission dialog would be shown.
    PermissionRequest,
    /// A session starts. The CLI runs these before `initialize` registers SDK hooks in some
    /// versions, so a callback may not fire; register it in settings instead when it must.
    SessionStart,
    /// A session ends (often as the process exits: the answer may not be awaited).
    SessionEnd,
    /// An event this crate does not name yet, by its wire name.
    Other(String),
}

impl HookEvent {
    /// The wire name, e.g. `PreToolUse`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::PreToolUse => "PreToolUse",
            Self::PostToolUse => "PostToolUse",
            Self::PostToolUseFailure => "PostToolUseFailure",
            Self::UserPromptSubmit => "UserPromptSubmit",
            Self::Stop => "Stop",
            Self::SubagentStart => "SubagentStart",
            Self::SubagentStop => "SubagentStop",
            Self::PreCompact => "PreCompact",
            Self::Notification => "Notification",
            Self::PermissionRequest => "PermissionRequest",
            Self::SessionStart => "SessionStart",
            Self::SessionEnd => "SessionEnd",
            Self::Other(name) => name,
        }
    }

    /// The event of a wire name (unknown names become [`HookEvent::Other`]).
    pub fn from_name(name: &str) -> Self {
        match name {
            "PreToolUse" => Self::PreToolUse,
            "PostToolUse" => Self::PostToolUse,
            "PostToolUseFailure" => Self::PostToolUseFailure,
            "UserPromptSubmit" => Self::UserPromptSubmit,
            "Stop" => Self::Stop,
            "SubagentStart" => Self::SubagentStart,
            "SubagentStop" => Self::SubagentStop,
            "PreCompact" => Self::PreCompact,
            "Notification" => Self::Notification,
            "PermissionRequest" => Self::PermissionRequest,
            "SessionStart" => Self::SessionStart,
            "SessionEnd" => Self::SessionEnd,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for HookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a hook callback receives: the common fields typed, the event-specific ones where the
/// event has them, and the whole input in [`raw`](Self::raw).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HookInput {
    /// The session (its name in this runtime) the hook fired in.
    pub session: Arc<str>,
    /// The event (`hook_event_name`).
    pub event: HookEvent,
    /// The CLI's conversation id (`session_id`).
    pub session_id: Option<String>,
    /// The conversation's transcript file.
    pub transcript_path: Option<String>,
    /// The CLI's working directory.
    pub cwd: Option<String>,
    /// The permission mode in force.
    pub permission_mode: Option<String>,
    /// The tool (tool events).
    pub tool_name: Option<String>,
    /// The tool's input (tool events).
    pub tool_input: Option<Value>,
    /// The tool's output (`PostToolUse`).
    pub tool_response: Option<Value>,
    /// The tool's error (`PostToolUseFailure`).
    pub error: Option<Value>,
    /// The `tool_use` id (tool events).
    pub tool_use_id: Option<String>,
    /// The prompt (`UserPromptSubmit`).
    pub prompt: Option<String>,
    /// The whole `input` object as sent.
    pub raw: Value,
}

impl HookInput {
    pub(crate) fn new(session: Arc<str>, raw: Value, tool_use_id: Option<String>) -> Self {
        let text = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_owned);
        let value = |k: &str| raw.get(k).filter(|v| !v.is_null()).cloned();
        Self {
            session,
            event: HookEvent::from_name(
                raw.get("hook_event_name")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            ),
            session_id: text("session_id"),
            transcript_path: text("transcript_path"),
            cwd: text("cwd"),
            permission_mode: text("permission_mode"),
            tool_name: text("tool_name"),
            tool_input: value("tool_input"),
            tool_response: value("tool_response"),
            error: value("error"),
            tool_use_id: text("tool_use_id").or(tool_use_id),
            prompt: text("prompt"),
            raw,
        }
    }
}

/// What a hook callback answers. [`HookOutput::proceed`] (also the `Default`) changes nothing.
///
/// # Examples
///
/// ```
/// use claude_session::HookOutput;
///
/// // PreToolUse: veto the call; the model sees the reason as the tool's error.
/// let veto = HookOutput::deny("no network access");
/// // PostToolUse / UserPromptSubmit: tell the model something.
/// let note = HookOutput::proceed().additional_context("the file is generated; do not edit it");
/// // PreToolUse: run the tool with a different input.
/// let safer = HookOutput::allow().updated_input(serde_json::json!({"command": "ls"}));
/// // Any event: stop the agent altogether.
/// let halt = HookOutput::stop("budget exhausted");
/// # let _ = (veto, note, safer, halt);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[must_use]
pub struct HookOutput {
    continue_: Option<bool>,
    stop_reason: Option<String>,
    suppress_output: bool,
    system_message: Option<String>,
    block_reason: Option<String>,
    permission_decision: Option<(&'static str, Option<String>)>,
    updated_input: Option<Value>,
    additional_context: Option<String>,
    raw: Option<Value>,
}

impl HookOutput {
    /// Go on unchanged (`{}`).
    pub fn proceed() -> Self {
        Self::default()
    }

    /// `PreToolUse`: do not run the tool (`permissionDecision: "deny"`); the reason is the tool's
    /// error result and the call is listed in `result.permission_denials`.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self {
            permission_decision: Some(("deny", Some(reason.into()))),
            ..Self::default()
        }
    }

    /// `PreToolUse`: run the tool without asking (`permissionDecision: "allow"`).
    pub fn allow() -> Self {
        Self {
            permission_decision: Some(("allow", None)),
            ..Self::default()
        }
    }

    /// `PreToolUse`: ask as if no rule allowed it (`permissionDecision: "ask"`).
    pub fn ask(reason: impl Into<String>) -> Self {
        Self {
            permission_decision: Some(("ask", Some(reason.into()))),
            ..Self::default()
        }
    }

    /// Block (`decision: "block"`): `PostToolUse` reports the reason to the model,
    /// `UserPromptSubmit` drops the prompt, `Stop`/`SubagentStop` make the agent go on.
    pub fn block(reason: impl Into<String>) -> Self {
        Self {
            block_reason: Some(reason.into()),
            ..Self::default()
        }
    }

    /// Stop the agent (`continue: false`, with `stopReason`).
    pub fn stop(reason: impl Into<String>) -> Self {
        Self {
            continue_: Some(false),
            stop_reason: Some(reason.into()),
            ..Self::default()
        }
    }

    /// An answer written by hand, sent as is (for fields this type does not model).
    pub fn raw(value: Value) -> Self {
        Self {
            raw: Some(value),
            ..Self::default()
        }
    }

    /// `PreToolUse`: the input to run the tool with (`updatedInput`).
    pub fn updated_input(mut self, input: Value) -> Self {
        self.updated_input = Some(input);
        self
    }

    /// Context for the model (`additionalContext`; `PostToolUse`, `UserPromptSubmit`,
    /// `SessionStart`, …).
    pub fn additional_context(mut self, text: impl Into<String>) -> Self {
        self.additional_context = Some(text.into());
        self
    }

    /// A message shown to the user (`systemMessage`).
    pub fn system_message(mut self, text: impl Into<String>) -> Self {
        self.system_message = Some(text.into());
        self
    }

    /// Hide the hook's output from the transcript (`suppressOutput`).
    pub fn suppress_output(mut self) -> Self {
        self.suppress_output = true;
        self
    }

    /// The wire answer for a hook of `event`.
    pub fn to_value(&self, event: &HookEvent) -> Value {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut out = Map::new();
        if let Some(c) = self.continue_ {
            out.insert("continue".into(), c.into());
        }
        if let Some(r) = &self.stop_reason {
            out.insert("stopReason".into(), r.clone().into());
        }
        if self.suppress_output {
            out.insert("suppressOutput".into(), true.into());
        }
        if let Some(m) = &self.system_message {
            out.insert("systemMessage".into(), m.clone().into());
        }
        if let Some(r) = &self.block_reason {
            out.insert("decision".into(), "block".into());
            out.insert("reason".into(), r.clone().into());
        }
        let mut specific = Map::new();
        if let Some((decision, reason)) = &self.permission_decision {
            specific.insert("permissionDecision".into(), (*decision).into());
            if let Some(r) = reason {
                specific.insert("permissionDecisionReason".into(), r.clone().into());
            }
        }
        if let Some(i) = &self.updated_input {
            specific.insert("updatedInput".into(), i.clone());
        }
        if let Some(c) = &self.additional_context {
            specific.insert("additionalContext".into(), c.clone().into());
        }
        if !specific.is_empty() {
            let mut with_name = Map::new();
            with_name.insert("hookEventName".into(), event.as_str().into());
            with_name.extend(specific);
            out.insert("hookSpecificOutput".into(), Value::Object(with_name));
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_have_the_shapes_the_cli_expects() {
        let pre = HookEvent::PreToolUse;
        assert_eq!(HookOutput::proceed().to_value(&pre), json!({}));
        assert_eq!(
            HookOutput::deny("blocked by test hook").to_value(&pre),
            json!({"hookSpecificOutput": {"hookEventName": "PreToolUse",
                "permissionDecision": "deny", "permissionDecisionReason": "blocked by test hook"}})
        );
        assert_eq!(
            HookOutput::allow()
                .updated_input(json!({"command": "ls"}))
                .to_value(&pre),
            json!({"hookSpecificOutput": {"hookEventName": "PreToolUse",
                "permissionDecision": "allow", "updatedInput": {"command": "ls"}}})
        );
        assert_eq!(
            HookOutput::block("no")
                .additional_context("ctx")
                .to_value(&HookEvent::PostToolUse),
            json!({"decision": "block", "reason": "no",
                "hookSpecificOutput": {"hookEventName": "PostToolUse", "additionalContext": "ctx"}})
        );
        assert_eq!(
            HookOutput::stop("enough")
                .system_message("bye")
                .to_value(&HookEvent::Stop),
            json!({"continue": false, "stopReason": "enough", "systemMessage": "bye"})
        );
        assert_eq!(
            HookOutput::raw(json!({"async": true})).to_value(&pre),
            json!({"async": true})
        );
    }

    #[test]
    fn inputs_are_typed_from_what_2_1_329_sends() {
        let raw = json!({"session_id": "s", "transcript_path": "/t", "cwd": "/w",
            "permission_mode": "default", "hook_event_name": "PostToolUse", "tool_name": "Bash",
            "tool_input": {"command": "echo hooked"},
            "tool_response": {"stdout": "hooked", "stderr": ""},
            "tool_use_id": "toolu_1", "duration_ms": 35});
        let input = HookInput::new(Arc::from("me"), raw, None);
        assert_eq!(input.event, HookEvent::PostToolUse);
        assert_eq!(input.tool_name.as_deref(), Some("Bash"));
        assert_eq!(input.tool_response.unwrap()["stdout"], "hooked");
        assert_eq!(input.tool_use_id.as_deref(), Some("toolu_1"));
        assert_eq!(&*input.session, "me");
        for name in [
            "Stop",
            "SubagentStart",
            "PreCompact",
            "SessionEnd",
            "Brand_New",
        ] {
            assert_eq!(HookEvent::from_name(name).as_str(), name);
        }
    }
}

//! The permission callback (`can_use_tool`): the host decides whether a tool call may run.

use std::sync::Arc;

use claude_protocol::{CanUseToolRequest, PermissionDecision};
use serde_json::Value;

/// A tool call the CLI asks the host to approve.
///
/// The CLI asks only for calls that would otherwise prompt a user: read-only commands and tools
/// allowed by rules (`allowed_tools`, settings) run without asking.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PermissionRequest {
    /// The session (its name in this runtime) the request comes from.
    pub session: Arc<str>,
    /// The tool, e.g. `Bash` or `mcp__server__tool`.
    pub tool_name: String,
    /// The tool's input as the model wrote it.
    pub input: Value,
    /// Rules the CLI suggests (`addRules`, `addDirectories`, `setMode`), as sent.
    pub suggestions: Vec<Value>,
    /// The `tool_use` id of the call.
    pub tool_use_id: Option<String>,
    /// A path outside the allowed directories, when that is why the CLI asks.
    pub blocked_path: Option<String>,
    /// Why the CLI asks (`subcommandResults`, …).
    pub decision_reason: Option<String>,
    /// The whole request, for keys this crate does not model.
    pub raw: CanUseToolRequest,
}

impl PermissionRequest {
    pub(crate) fn new(session: Arc<str>, raw: CanUseToolRequest) -> Self {
        Self {
            session,
            tool_name: raw.tool_name.clone(),
            input: raw.input.clone(),
            suggestions: raw.permission_suggestions.clone().unwrap_or_default(),
            tool_use_id: raw.tool_use_id.clone(),
            blocked_path: raw.blocked_path.clone(),
            decision_reason: raw.decision_reason_type.clone(),
            raw,
        }
    }
}

/// The host's answer to a [`PermissionRequest`].
///
/// # Examples
///
/// ```
/// use claude_session::Permission;
///
/// let once = Permission::allow();
/// let safer = Permission::allow_with_input(serde_json::json!({"command": "ls -la"}));
/// let no = Permission::deny("not on a Friday");
/// let stop = Permission::deny("this must not happen").and_interrupt();
/// # let _ = (once, safer, no, stop);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct Permission {
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Allow {
        input: Option<Value>,
        rules: Option<Vec<Value>>,
    },
    Deny {
        message: String,
        interrupt: bool,
    },
}

impl Permission {
    /// Run the tool, once, with its input unchanged.
    pub fn allow() -> Self {
        Self {
            kind: Kind::Allow {
                input: None,
                rules: None,
            },
        }
    }

    /// Run the tool with a changed input.
    pub fn allow_with_input(input: Value) -> Self {
        Self {
            kind: Kind::Allow {
                input: Some(input),
                rules: None,
            },
        }
    }

    /// Do not run the tool; `message` is the tool's error result (the model sees it) and the call
    /// is listed in the turn's `result.permission_denials`.
    pub fn deny(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Deny {
                message: message.into(),
                interrupt: false,
            },
        }
    }

    /// For an allow: also apply these permission updates (`updatedPermissions`, e.g. one of the
    /// request's [`suggestions`](PermissionRequest::suggestions)), so that later calls do not ask.
    /// No effect on a deny.
    pub fn with_rules(mut self, rules: Vec<Value>) -> Self {
        if let Kind::Allow { rules: r, .. } = &mut self.kind {
            *r = Some(rules);
        }
        self
    }

    /// For a deny: also interrupt the turn. No effect on an allow.
    pub fn and_interrupt(mut self) -> Self {
        if let Kind::Deny { interrupt, .. } = &mut self.kind {
            *interrupt = true;
        }
        self
    }

    /// Whether this allows the call.
    pub fn is_allow(&self) -> bool {
        matches!(self.kind, Kind::Allow { .. })
    }

    /// The wire answer; an allow without a changed input sends the original input back (the CLI
    /// requires `updatedInput`).
    pub(crate) fn into_decision(self, original_input: &Value) -> PermissionDecision {
        match self.kind {
            Kind::Allow { input, rules } => PermissionDecision::Allow {
                updated_input: input.unwrap_or_else(|| original_input.clone()),
                updated_permissions: rules,
            },
            Kind::Deny { message, interrupt } => PermissionDecision::Deny { message, interrupt },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_have_the_shapes_the_cli_expects() {
        let input = json!({"command": "echo hi", "description": "d"});
        assert_eq!(
            Permission::allow().into_decision(&input).to_value(),
            json!({"behavior": "allow", "updatedInput": input})
        );
        assert_eq!(
            Permission::allow_with_input(json!({"command": "echo safe"}))
                .with_rules(vec![json!({"type": "setMode", "mode": "acceptEdits"})])
                .into_decision(&input)
                .to_value(),
            json!({"behavior": "allow", "updatedInput": {"command": "echo safe"},
                   "updatedPermissions": [{"type": "setMode", "mode": "acceptEdits"}]})
        );
        assert_eq!(
            Permission::deny("no").into_decision(&input).to_value(),
            json!({"behavior": "deny", "message": "no"})
        );
        assert_eq!(
            Permission::deny("no")
                .and_interrupt()
                .into_decision(&input)
                .to_value(),
            json!({"behavior": "deny", "message": "no", "interrupt": true})
        );
    }
}

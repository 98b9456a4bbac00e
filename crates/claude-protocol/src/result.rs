//! `type: "result"`: the end of one turn.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::serde_util::{Key, double_option, js_f64_opt, wire_struct};
use crate::usage::{ModelUsage, Usage};

/// `result.subtype`. Judge failure by [`ResultMessage::is_error`], not by this: an API
/// error is reported as `success` with `is_error: true`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResultSubtype {
    /// `success` (also used for API errors, with `is_error: true`).
    Success,
    /// `error_during_execution` (interrupt, unknown resume id, …).
    ErrorDuringExecution,
    /// `error_max_turns`.
    ErrorMaxTurns,
    /// `error_max_budget_usd`.
    ErrorMaxBudgetUsd,
    /// `error_max_structured_output_retries`.
    ErrorMaxStructuredOutputRetries,
    /// Any other subtype, as on the wire.
    #[serde(untagged)]
    Other(String),
}

impl ResultSubtype {
    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Success => "success",
            Self::ErrorDuringExecution => "error_during_execution",
            Self::ErrorMaxTurns => "error_max_turns",
            Self::ErrorMaxBudgetUsd => "error_max_budget_usd",
            Self::ErrorMaxStructuredOutputRetries => "error_max_structured_output_retries",
            Self::Other(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for ResultSubtype {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Key::deserialize(d)?;
        Ok(match s.as_str() {
            "success" => Self::Success,
            "error_during_execution" => Self::ErrorDuringExecution,
            "error_max_turns" => Self::ErrorMaxTurns,
            "error_max_budget_usd" => Self::ErrorMaxBudgetUsd,
            "error_max_structured_output_retries" => Self::ErrorMaxStructuredOutputRetries,
            _ => Self::Other(s.into_string()),
        })
    }
}

impl fmt::Display for ResultSubtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `permission_denials`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PermissionDenial {
    /// The tool refused.
    pub tool_name: String,
    /// The `tool_use` id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    /// The input the tool would have run with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_input: Option<Value>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

wire_struct!(PermissionDenial {
    req tool_name: "tool_name",
    opt tool_use_id: "tool_use_id",
    opt tool_input: "tool_input",
});

/// A `result` line. Cost and `modelUsage` are **cumulative per CLI process**.
///
/// Vector and map fields are `Option` so that "absent" and "empty" both round-trip; use
/// the accessors ([`errors`](Self::errors), [`permission_denials`](Self::permission_denials),
/// [`model_usage`](Self::model_usage)) for the ergonomic view.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ResultMessage {
    /// The subtype.
    pub subtype: ResultSubtype,
    /// Whether the turn failed. The one field to judge success by.
    pub is_error: bool,
    /// The final text (absent on some errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The session id.
    pub session_id: String,
    /// API round trips in this turn.
    pub num_turns: u64,
    /// Wall time of the turn.
    pub duration_ms: u64,
    /// Time spent in API calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_api_ms: Option<u64>,
    /// Cumulative cost of this CLI process.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "js_f64_opt")]
    pub total_cost_usd: Option<f64>,
    /// Usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// `modelUsage`: model name → usage, cumulative per process.
    #[serde(
        rename = "modelUsage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub model_usage: Option<BTreeMap<String, ModelUsage>>,
    /// Tool calls denied during the turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_denials: Option<Vec<PermissionDenial>>,
    /// Why the turn ended (`completed`, `aborted_streaming`, `aborted_tools`, `max_turns`,
    /// `api_error`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_reason: Option<String>,
    /// Error texts (e.g. `No conversation found with session ID: …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
    /// `None` = absent, `Some(None)` = `null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub stop_reason: Option<Option<String>>,
    /// `begun_message_ids` (since 2.1.332, only with `--include-partial-messages`): the ids of
    /// the API messages that began streaming in this turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub begun_message_ids: Option<Vec<String>>,
    /// Structured output (with a JSON schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_output: Option<Value>,
    /// The line's uuid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

wire_struct!(ResultMessage {
    req subtype: "subtype",
    req is_error: "is_error",
    opt result: "result",
    req session_id: "session_id",
    req num_turns: "num_turns",
    req duration_ms: "duration_ms",
    opt duration_api_ms: "duration_api_ms",
    opt total_cost_usd: "total_cost_usd",
    opt usage: "usage",
    opt model_usage: "modelUsage",
    opt permission_denials: "permission_denials",
    opt terminal_reason: "terminal_reason",
    opt errors: "errors",
    dbl stop_reason: "stop_reason",
    opt begun_message_ids: "begun_message_ids",
    opt structured_output: "structured_output",
    opt uuid: "uuid",
});

impl ResultMessage {
    /// Error texts; empty when absent.
    pub fn errors(&self) -> &[String] {
        self.errors.as_deref().unwrap_or(&[])
    }

    /// Denied tool calls; empty when absent.
    pub fn permission_denials(&self) -> &[PermissionDenial] {
        self.permission_denials.as_deref().unwrap_or(&[])
    }

    /// Per-model usage; empty when absent.
    pub fn model_usage(&self) -> BTreeMap<&str, &ModelUsage> {
        self.model_usage
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
            .collect()
    }

    /// The ids of the API messages that began streaming in this turn; empty when absent.
    pub fn begun_message_ids(&self) -> &[String] {
        self.begun_message_ids.as_deref().unwrap_or(&[])
    }

    /// The stop reason, if given.
    pub fn stop_reason(&self) -> Option<&str> {
        self.stop_reason.as_ref().and_then(|r| r.as_deref())
    }
}

//! Token usage and per-model usage.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::serde_util::{js_f64_opt, wire_struct};

/// Token usage (Messages API `usage`, snake_case).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Usage {
    /// Input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Tokens written to the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Tokens read from the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// Keys this crate does not model (`server_tool_use`, `service_tier`, `cache_creation`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Per-model usage (`modelUsage` in `result`, camelCase). Cumulative per CLI process.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ModelUsage {
    /// `inputTokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// `outputTokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// `cacheReadInputTokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// `cacheCreationInputTokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// `webSearchRequests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_search_requests: Option<u64>,
    /// `costUSD`.
    #[serde(
        rename = "costUSD",
        default,
        skip_serializing_if = "Option::is_none",
        with = "js_f64_opt"
    )]
    pub cost_usd: Option<f64>,
    /// `contextWindow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    /// `maxOutputTokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

wire_struct!(Usage {
    opt input_tokens: "input_tokens",
    opt output_tokens: "output_tokens",
    opt cache_creation_input_tokens: "cache_creation_input_tokens",
    opt cache_read_input_tokens: "cache_read_input_tokens",
});

wire_struct!(ModelUsage {
    opt input_tokens: "inputTokens",
    opt output_tokens: "outputTokens",
    opt cache_read_input_tokens: "cacheReadInputTokens",
    opt cache_creation_input_tokens: "cacheCreationInputTokens",
    opt web_search_requests: "webSearchRequests",
    opt cost_usd: "costUSD",
    opt context_window: "contextWindow",
    opt max_output_tokens: "maxOutputTokens",
});

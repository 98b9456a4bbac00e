//! Content blocks and the API message an `assistant` line carries.

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::serde_util::{
    Tagged, Tags, deserialize_tagged, double_option, fast_mode, visit_fields, wire_struct,
};
use crate::usage::Usage;

/// One content block of a message (Messages API shape).
///
/// Unknown block types are kept whole in [`ContentBlock::Unknown`]; every typed variant
/// keeps unknown keys in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContentBlock {
    /// `{"type":"text","text":…}`.
    Text {
        /// The text.
        text: String,
        /// Keys this crate does not model (e.g. `citations`).
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// `{"type":"thinking","thinking":…,"signature":…}`.
    Thinking {
        /// The thinking text.
        thinking: String,
        /// The signature, when present.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
        /// Keys this crate does not model.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// `{"type":"redacted_thinking","data":…}`.
    RedactedThinking {
        /// The opaque data.
        data: String,
        /// Keys this crate does not model.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// `{"type":"tool_use","id":…,"name":…,"input":{…}}`.
    ToolUse {
        /// The tool use id (`toolu_…`).
        id: String,
        /// The tool name (`Bash`, `mcp__server__tool`, …).
        name: String,
        /// The tool input.
        input: Value,
        /// Keys this crate does not model.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// `{"type":"tool_result","tool_use_id":…,"content":…,"is_error":…}`.
    ToolResult {
        /// The id of the `tool_use` this answers.
        tool_use_id: String,
        /// A string or an array of blocks; absent when the tool printed nothing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Value>,
        /// Whether the tool failed; absent means not stated.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        /// Keys this crate does not model.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// `{"type":"image","source":{"type":"base64","media_type":…,"data":…}}`.
    Image {
        /// The image source (`base64`, `url`, `file`).
        source: Value,
        /// Keys this crate does not model.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// `{"type":"document","source":{…}}`.
    Document {
        /// The document source.
        source: Value,
        /// Keys this crate does not model.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// A server-side tool call (`server_tool_use`, e.g. web search).
    ServerToolUse {
        /// The id (`srvtoolu_…`).
        id: String,
        /// The server tool name.
        name: String,
        /// The tool input.
        input: Value,
        /// Keys this crate does not model.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// `web_search_tool_result`.
    WebSearchToolResult {
        /// The `server_tool_use` id this answers.
        tool_use_id: String,
        /// Results or an error object.
        content: Value,
        /// Keys this crate does not model.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// `web_fetch_tool_result`.
    WebFetchToolResult {
        /// The `server_tool_use` id this answers.
        tool_use_id: String,
        /// The fetched document or an error object.
        content: Value,
        /// Keys this crate does not model.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// `code_execution_tool_result`.
    CodeExecutionToolResult {
        /// The `server_tool_use` id this answers.
        tool_use_id: String,
        /// The execution result.
        content: Value,
        /// Keys this crate does not model.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// `mcp_tool_use` (MCP connector).
    McpToolUse {
        /// The id.
        id: String,
        /// The tool name.
        name: String,
        /// The MCP server name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server_name: Option<String>,
        /// The tool input.
        input: Value,
        /// Keys this crate does not model.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// `mcp_tool_result` (MCP connector).
    McpToolResult {
        /// The `mcp_tool_use` id this answers.
        tool_use_id: String,
        /// The result content.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Value>,
        /// Whether the call failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        /// Keys this crate does not model.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// Any block type this crate does not know, kept whole (including `type`).
    #[serde(untagged)]
    Unknown(Value),
}

impl ContentBlock {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text {
            text: text.into(),
            extra: Map::new(),
        }
    }

    /// A base64 image block (`media_type` e.g. `image/png`).
    pub fn image_base64(media_type: impl Into<String>, data: impl Into<String>) -> Self {
        let mut source = Map::new();
        source.insert("type".into(), Value::from("base64"));
        source.insert("media_type".into(), Value::from(media_type.into()));
        source.insert("data".into(), Value::from(data.into()));
        Self::Image {
            source: Value::Object(source),
            extra: Map::new(),
        }
    }

    /// An image block pointing at a URL.
    pub fn image_url(url: impl Into<String>) -> Self {
        let mut source = Map::new();
        source.insert("type".into(), Value::from("url"));
        source.insert("url".into(), Value::from(url.into()));
        Self::Image {
            source: Value::Object(source),
            extra: Map::new(),
        }
    }

    /// The block's `type` as on the wire.
    pub fn type_name(&self) -> &str {
        match self {
            Self::Text { .. } => "text",
            Self::Thinking { .. } => "thinking",
            Self::RedactedThinking { .. } => "redacted_thinking",
            Self::ToolUse { .. } => "tool_use",
            Self::ToolResult { .. } => "tool_result",
            Self::Image { .. } => "image",
            Self::Document { .. } => "document",
            Self::ServerToolUse { .. } => "server_tool_use",
            Self::WebSearchToolResult { .. } => "web_search_tool_result",
            Self::WebFetchToolResult { .. } => "web_fetch_tool_result",
            Self::CodeExecutionToolResult { .. } => "code_execution_tool_result",
            Self::McpToolUse { .. } => "mcp_tool_use",
            Self::McpToolResult { .. } => "mcp_tool_result",
            Self::Unknown(v) => v.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// The text of a `text` block.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Whether this block fell into [`ContentBlock::Unknown`].
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown(_))
    }
}

impl Tagged for ContentBlock {
    const TAG: &'static [&'static str] = &["type"];
    const NAME: &'static str = "content block";

    fn visit_variant<'de, A: MapAccess<'de>>(
        tag: &str,
        map: A,
        tags: Tags,
    ) -> Result<Option<Self>, A::Error> {
        use ContentBlock as B;
        let block = match tag {
            "text" => visit_fields!(map, tags, B::Text { req text: "text" }),
            "thinking" => visit_fields!(map, tags, B::Thinking {
                req thinking: "thinking",
                opt signature: "signature",
            }),
            "redacted_thinking" => {
                visit_fields!(map, tags, B::RedactedThinking { req data: "data" })
            }
            "tool_use" => visit_fields!(map, tags, B::ToolUse {
                req id: "id",
                req name: "name",
                req input: "input",
            }),
            "tool_result" => visit_fields!(map, tags, B::ToolResult {
                req tool_use_id: "tool_use_id",
                opt content: "content",
                opt is_error: "is_error",
            }),
            "image" => visit_fields!(map, tags, B::Image { req source: "source" }),
            "document" => visit_fields!(map, tags, B::Document { req source: "source" }),
            "server_tool_use" => visit_fields!(map, tags, B::ServerToolUse {
                req id: "id",
                req name: "name",
                req input: "input",
            }),
            "web_search_tool_result" => visit_fields!(map, tags, B::WebSearchToolResult {
                req tool_use_id: "tool_use_id",
                req content: "content",
            }),
            "web_fetch_tool_result" => visit_fields!(map, tags, B::WebFetchToolResult {
                req tool_use_id: "tool_use_id",
                req content: "content",
            }),
            "code_execution_tool_result" => visit_fields!(map, tags, B::CodeExecutionToolResult {
                req tool_use_id: "tool_use_id",
                req content: "content",
            }),
            "mcp_tool_use" => visit_fields!(map, tags, B::McpToolUse {
                req id: "id",
                req name: "name",
                opt server_name: "server_name",
                req input: "input",
            }),
            "mcp_tool_result" => visit_fields!(map, tags, B::McpToolResult {
                req tool_use_id: "tool_use_id",
                opt content: "content",
                opt is_error: "is_error",
            }),
            _ => return Ok(None),
        };
        block.map(Some)
    }

    fn catch_all(value: Value) -> Self {
        Self::Unknown(value)
    }
}

impl<'de> Deserialize<'de> for ContentBlock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_tagged(d)
    }
}

/// The Messages API message inside an `assistant` line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ApiMessage {
    /// The API message id; all `assistant` lines of one API message share it.
    pub id: String,
    /// The model that answered (`<synthetic>` for CLI-made error messages).
    pub model: String,
    /// Always `assistant` in practice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The content blocks (the CLI prints one block per line).
    pub content: Vec<ContentBlock>,
    /// Partial usage (the final figures are in `result`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// `None` = absent, `Some(None)` = `null` (usual while streaming), `Some(Some(r))`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub stop_reason: Option<Option<String>>,
    /// `type` (always `message` in practice).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
    /// `None` = absent, `Some(None)` = `null` (usual), `Some(Some(s))` = the stop sequence met.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub stop_sequence: Option<Option<String>>,
    /// `context_management` as is (`None` = absent; `null` is `Some(Value::Null)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_management: Option<Value>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

wire_struct!(ApiMessage {
    req id: "id",
    req model: "model",
    opt role: "role",
    req content: "content",
    opt usage: "usage",
    dbl stop_reason: "stop_reason",
    opt message_type: "type",
    dbl stop_sequence: "stop_sequence",
    any context_management: "context_management",
});

impl ApiMessage {
    /// The stop reason, if one was given.
    pub fn stop_reason(&self) -> Option<&str> {
        self.stop_reason.as_ref().and_then(|r| r.as_deref())
    }

    /// All text blocks joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(ContentBlock::as_text)
            .collect()
    }
}

/// The content of a user message: a string or blocks.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum UserContent {
    /// Plain text.
    Text(String),
    /// Content blocks (text, images, tool results, …).
    Blocks(Vec<ContentBlock>),
    /// Anything else, kept as is.
    Other(Value),
}

impl<'de> Deserialize<'de> for UserContent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !fast_mode() {
            // Tolerant: any array is blocks (a block that does not fit is `Unknown`).
            return Ok(match Value::deserialize(d)? {
                Value::String(s) => Self::Text(s),
                Value::Array(items) => Self::Blocks(
                    items
                        .into_iter()
                        .map(ContentBlock::from_value_tolerant)
                        .collect(),
                ),
                other => Self::Other(other),
            });
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UserContent;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of content blocks")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<UserContent, E> {
                Ok(UserContent::Text(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<UserContent, E> {
                Ok(UserContent::Text(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UserContent, A::Error> {
                let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(b) = seq.next_element()? {
                    blocks.push(b);
                }
                Ok(UserContent::Blocks(blocks))
            }
            // Anything else is rare (`Other`): the fast path bails out and the line is retyped
            // the tolerant way (the default `visit_*` errors do that).
        }
        d.deserialize_any(V)
    }
}

impl From<String> for UserContent {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<&str> for UserContent {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<Vec<ContentBlock>> for UserContent {
    fn from(b: Vec<ContentBlock>) -> Self {
        Self::Blocks(b)
    }
}

/// The `message` of a `user` line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UserApiMessage {
    /// Must be `user` for lines we write (anything else kills the CLI).
    pub role: String,
    /// Text or blocks.
    pub content: UserContent,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

wire_struct!(UserApiMessage {
    req role: "role",
    req content: "content",
});

impl UserApiMessage {
    /// A `role: user` message.
    pub fn new(content: impl Into<UserContent>) -> Self {
        Self {
            role: "user".into(),
            content: content.into(),
            extra: Map::new(),
        }
    }
}

//! The Messages API streaming events a `stream_event` line carries (with
//! `--include-partial-messages`), typed.

use serde::de::MapAccess;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::content::{ApiMessage, ContentBlock};
use crate::serde_util::{Tagged, Tags, deserialize_tagged, double_option, wire_struct};
use crate::usage::Usage;

/// The SSE event of a `stream_event` line, by `type`.
///
/// Unknown event types (and known ones whose fields do not fit) are kept whole in
/// [`SseEvent::Unknown`]; every typed variant keeps unknown keys in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SseEvent {
    /// `message_start`: the API message begins (empty `content`).
    MessageStart(MessageStart),
    /// `content_block_start`: a block begins at `index`.
    ContentBlockStart(ContentBlockStart),
    /// `content_block_delta`: more of the block at `index`.
    ContentBlockDelta(ContentBlockDelta),
    /// `content_block_stop`: the block at `index` is complete.
    ContentBlockStop(ContentBlockStop),
    /// `message_delta`: the stop reason and final usage.
    MessageDelta(MessageDelta),
    /// `message_stop`: the API message is complete.
    MessageStop(MessageStop),
    /// Any other event (`ping`, `error`, a future one), kept whole (including `type`).
    #[serde(untagged)]
    Unknown(Value),
}

impl SseEvent {
    /// The event's `type` as on the wire (`""` for an untyped value without one).
    pub fn event_type(&self) -> &str {
        match self {
            Self::MessageStart(_) => "message_start",
            Self::ContentBlockStart(_) => "content_block_start",
            Self::ContentBlockDelta(_) => "content_block_delta",
            Self::ContentBlockStop(_) => "content_block_stop",
            Self::MessageDelta(_) => "message_delta",
            Self::MessageStop(_) => "message_stop",
            Self::Unknown(v) => v.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// The JSON value of the event (as on the wire).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|e| {
            // Our types serialise to objects with string keys; nothing here can fail.
            Value::from(format!("serialization error: {e}"))
        })
    }

    /// Whether this event (or its delta) fell into a catch-all variant.
    pub fn is_unknown(&self) -> bool {
        match self {
            Self::Unknown(_) => true,
            Self::ContentBlockStart(s) => s.content_block.is_unknown(),
            Self::ContentBlockDelta(d) => matches!(d.delta, Delta::Unknown(_)),
            _ => false,
        }
    }
}

impl Tagged for SseEvent {
    const TAG: &'static [&'static str] = &["type"];
    const NAME: &'static str = "stream event";

    fn visit_variant<'de, A: MapAccess<'de>>(
        tag: &str,
        map: A,
        tags: Tags,
    ) -> Result<Option<Self>, A::Error> {
        Ok(Some(match tag {
            "message_start" => Self::MessageStart(MessageStart::visit_fields(map, tags)?),
            "content_block_start" => {
                Self::ContentBlockStart(ContentBlockStart::visit_fields(map, tags)?)
            }
            "content_block_delta" => {
                Self::ContentBlockDelta(ContentBlockDelta::visit_fields(map, tags)?)
            }
            "content_block_stop" => {
                Self::ContentBlockStop(ContentBlockStop::visit_fields(map, tags)?)
            }
            "message_delta" => Self::MessageDelta(MessageDelta::visit_fields(map, tags)?),
            "message_stop" => Self::MessageStop(MessageStop::visit_fields(map, tags)?),
            _ => return Ok(None),
        }))
    }

    fn catch_all(value: Value) -> Self {
        Self::Unknown(value)
    }
}

impl<'de> Deserialize<'de> for SseEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_tagged(d)
    }
}

/// `message_start`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct MessageStart {
    /// The API message so far (no content yet, initial usage).
    pub message: ApiMessage,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
wire_struct!(MessageStart { req message: "message" });

/// `content_block_start`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ContentBlockStart {
    /// The block's index in the message.
    pub index: u64,
    /// The block as it starts (e.g. a `text` block with empty text).
    pub content_block: ContentBlock,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
wire_struct!(ContentBlockStart {
    req index: "index",
    req content_block: "content_block",
});

/// `content_block_delta`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ContentBlockDelta {
    /// The block's index in the message.
    pub index: u64,
    /// The delta.
    pub delta: Delta,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
wire_struct!(ContentBlockDelta {
    req index: "index",
    req delta: "delta",
});

/// `content_block_stop`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ContentBlockStop {
    /// The block's index in the message.
    pub index: u64,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
wire_struct!(ContentBlockStop { req index: "index" });

/// `message_delta`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct MessageDelta {
    /// The top-level changes (`stop_reason`, …).
    pub delta: MessageDeltaBody,
    /// The usage so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Keys this crate does not model (`context_management`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
wire_struct!(MessageDelta {
    req delta: "delta",
    opt usage: "usage",
});

/// The `delta` of a `message_delta`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct MessageDeltaBody {
    /// `None` = absent, `Some(None)` = `null`, else e.g. `end_turn`, `tool_use`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub stop_reason: Option<Option<String>>,
    /// `None` = absent, `Some(None)` = `null`, else the stop sequence met.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub stop_sequence: Option<Option<String>>,
    /// Keys this crate does not model (`container`, `stop_details`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
wire_struct!(MessageDeltaBody {
    dbl stop_reason: "stop_reason",
    dbl stop_sequence: "stop_sequence",
});

/// `message_stop`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct MessageStop {
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
wire_struct!(MessageStop {});

/// The `delta` of a `content_block_delta`, by `type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Delta {
    /// `text_delta`: more text.
    TextDelta {
        /// The text.
        text: String,
        /// Keys this crate does not model.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// `input_json_delta`: more of a tool input's JSON text.
    InputJsonDelta {
        /// A fragment of JSON text.
        partial_json: String,
        /// Keys this crate does not model.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// `thinking_delta`: more thinking text.
    ThinkingDelta {
        /// The thinking text.
        thinking: String,
        /// Keys this crate does not model.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// `signature_delta`: the thinking block's signature.
    SignatureDelta {
        /// The signature.
        signature: String,
        /// Keys this crate does not model.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// Any other delta (`citations_delta`, a future one), kept whole (including `type`).
    #[serde(untagged)]
    Unknown(Value),
}

impl Delta {
    /// The text of a `text_delta`.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::TextDelta { text, .. } => Some(text),
            _ => None,
        }
    }
}

impl Tagged for Delta {
    const TAG: &'static [&'static str] = &["type"];
    const NAME: &'static str = "delta";

    fn visit_variant<'de, A: MapAccess<'de>>(
        tag: &str,
        map: A,
        tags: Tags,
    ) -> Result<Option<Self>, A::Error> {
        use crate::serde_util::visit_fields;
        let delta = match tag {
            "text_delta" => visit_fields!(map, tags, Delta::TextDelta { req text: "text" }),
            "input_json_delta" => visit_fields!(map, tags, Delta::InputJsonDelta {
                req partial_json: "partial_json",
            }),
            "thinking_delta" => visit_fields!(map, tags, Delta::ThinkingDelta {
                req thinking: "thinking",
            }),
            "signature_delta" => visit_fields!(map, tags, Delta::SignatureDelta {
                req signature: "signature",
            }),
            _ => return Ok(None),
        };
        delta.map(Some)
    }

    fn catch_all(value: Value) -> Self {
        Self::Unknown(value)
    }
}

impl<'de> Deserialize<'de> for Delta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_tagged(d)
    }
}

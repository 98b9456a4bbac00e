//! The top-level [`Message`]: one line of stream-json, either direction.

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::content::{ApiMessage, ContentBlock, UserApiMessage, UserContent};
use crate::control::{ControlCancelRequest, ControlRequest, ControlResponse};
use crate::error::ParseError;
use crate::result::ResultMessage;
use crate::serde_util::{
    FAST_PATH_BAIL, FastGuard, Key, Tagged, Tags, double_option, json_kind, wire_struct,
};
use crate::stream::{Delta, SseEvent};
use crate::system::SystemMessage;

/// One stream-json line, either direction.
///
/// Parsing ([`Message::from_json_line`], [`Message::from_value`], `Deserialize`) fails
/// only on invalid JSON or a line that is not a JSON object. An unknown `type` becomes
/// [`Message::Unknown`]; a known `type` whose known fields have the wrong shape, or whose
/// typed form would not re-serialise to the same JSON, becomes [`Message::Malformed`] with
/// the reason. Either way [`Message::to_value`] gives back JSON equal to the input.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// `system` (init, status, api_retry, …).
    System(SystemMessage),
    /// `assistant`: one content block per line.
    Assistant(AssistantMessage),
    /// `user`: our input, its replay, or tool results.
    User(UserMessage),
    /// `result`: the end of a turn.
    Result(ResultMessage),
    /// `stream_event` (with `--include-partial-messages`).
    StreamEvent(StreamEvent),
    /// `control_request`.
    ControlRequest(ControlRequest),
    /// `control_response`.
    ControlResponse(ControlResponse),
    /// `control_cancel_request`.
    ControlCancelRequest(ControlCancelRequest),
    /// `rate_limit_event`.
    RateLimitEvent(RateLimitEvent),
    /// `command_lifecycle` (queued / started / completed of a user line with a uuid).
    CommandLifecycle(CommandLifecycle),
    /// `prompt_suggestion` (with `--prompt-suggestions`).
    PromptSuggestion(PromptSuggestion),
    /// `conversation_reset`: cumulative totals restart; the session id may change.
    ConversationReset(ConversationReset),
    /// `keep_alive`.
    KeepAlive(KeepAlive),
    /// A `type` this crate does not know, kept whole.
    Unknown(Value),
    /// A known `type` that did not fit its typed form, kept whole with the reason.
    Malformed(MalformedMessage),
}

/// A line of a known `type` that could not be typed exactly; see [`Message::Malformed`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MalformedMessage {
    /// The `type` of the line.
    pub type_name: String,
    /// Why it was not typed.
    pub reason: String,
    /// The whole line.
    pub raw: Value,
}

const KNOWN_TYPES: &[&str] = &[
    "system",
    "assistant",
    "user",
    "result",
    "stream_event",
    "control_request",
    "control_response",
    "control_cancel_request",
    "rate_limit_event",
    "command_lifecycle",
    "prompt_suggestion",
    "conversation_reset",
    "keep_alive",
];

impl Message {
    /// Parses one line (surrounding whitespace is ignored).
    pub fn from_json_line(line: &str) -> Result<Message, ParseError> {
        let value: Value =
            serde_json::from_str(line.trim()).map_err(|e| ParseError::InvalidJson {
                source: e,
                line_len: line.len(),
            })?;
        Self::from_value(value)
    }

    /// Types a JSON value. Fails only if it is not an object.
    ///
    /// The typed form is checked to re-serialise to JSON equivalent to the input (numbers
    /// compare by value); if it would not, the line is kept whole as [`Message::Malformed`].
    pub fn from_value(value: Value) -> Result<Message, ParseError> {
        Self::from_value_checked(value, true)
    }

    /// Parses one line from bytes, for hot paths (a session's stdout reader).
    ///
    /// Like [`Message::from_json_line`], except that the typed form is trusted rather than
    /// re-serialised and compared with the input: every typed struct keeps unknown keys, and the
    /// transcript tests prove the typed forms exact on real CLI output. A known `type` whose
    /// fields have the wrong shape is still [`Message::Malformed`], never an error.
    ///
    /// The frames the CLI prints in bulk (`stream_event`, `assistant`, `user`, `result`,
    /// `system` of a known subtype, and the small frames) are typed in one pass over the bytes,
    /// with no intermediate [`Value`] (only unknown keys become `Value`s, in `extra`). Any other
    /// line — a control frame, an unknown type, a wrong shape, a duplicate tag — is typed
    /// through a `Value` as [`Message::from_value`] does (without its re-serialisation check),
    /// so the outcome is the same either way; the transcript tests check both agree on every
    /// recorded line.
    pub fn from_slice(line: &[u8]) -> Result<Message, ParseError> {
        // The fast path types the line straight from its bytes (no `Value` but for unknown
        // keys). It covers the frames the CLI prints in bulk, laid out as the CLI lays them out
        // (`type` first, `subtype` next for `system`); anything else — another key order, an
        // unknown type, a field of the wrong shape, invalid JSON — makes it bail out, and the
        // line is typed the old way through a `Value`, which gives every documented outcome
        // (`Unknown`, `Malformed` with its reason, `ParseError`).
        if let Some(m) = Self::from_slice_fast(line) {
            return Ok(m);
        }
        let value: Value = serde_json::from_slice(line).map_err(|e| ParseError::InvalidJson {
            source: e,
            line_len: line.len(),
        })?;
        Self::from_value_checked(value, false)
    }

    fn from_value_checked(value: Value, verify: bool) -> Result<Message, ParseError> {
        let Value::Object(mut map) = value else {
            return Err(ParseError::NotAnObject {
                kind: json_kind(&value),
            });
        };
        let type_name = match map.get("type") {
            Some(Value::String(t)) if KNOWN_TYPES.contains(&t.as_str()) => t.clone(),
            Some(Value::String(_)) | None => return Ok(Message::Unknown(Value::Object(map))),
            Some(other) => {
                let reason = format!("`type` is {}, not a string", json_kind(other));
                return Ok(Message::Malformed(MalformedMessage {
                    type_name: String::new(),
                    reason,
                    raw: Value::Object(map),
                }));
            }
        };
        // Type the body from a borrow: no copy of the map, and the original stays at hand for
        // the fallback. `type` goes out of the body while typing (the typed forms do not hold
        // it) and back in afterwards (JSON objects are unordered: the value is equivalent).
        // `shift_*`, not `remove`/`insert`: the kept-whole forms (`Malformed`, an `Other` one
        // level down) re-emit the keys in the order they came in.
        let type_index = map.keys().position(|k| k == "type");
        let type_value = map.shift_remove("type");
        let body = Value::Object(map);
        let typed = Self::typed(&type_name, &body);
        let Value::Object(mut map) = body else {
            unreachable!("built as an object above")
        };
        if let (Some(i), Some(type_value)) = (type_index, type_value) {
            map.shift_insert(i, "type".to_owned(), type_value);
        }
        let typed = match typed {
            Ok(m) => m,
            Err(e) => {
                return Ok(Message::Malformed(MalformedMessage {
                    type_name,
                    reason: e.to_string(),
                    raw: Value::Object(map),
                }));
            }
        };
        if verify {
            let original = Value::Object(map);
            if !crate::serde_util::json_equivalent(&typed.to_value(), &original) {
                return Ok(Message::Malformed(MalformedMessage {
                    type_name,
                    reason: "the typed form would not re-serialise to the same JSON".into(),
                    raw: original,
                }));
            }
        }
        Ok(typed)
    }

    fn typed(type_name: &str, body: &Value) -> Result<Message, serde_json::Error> {
        fn de<'a, T: Deserialize<'a>>(body: &'a Value) -> Result<T, serde_json::Error> {
            T::deserialize(body)
        }
        Ok(match type_name {
            "system" => Message::System(de(body)?),
            "assistant" => Message::Assistant(de(body)?),
            "user" => Message::User(de(body)?),
            "result" => Message::Result(de(body)?),
            "stream_event" => Message::StreamEvent(de(body)?),
            "control_request" => Message::ControlRequest(de(body)?),
            "control_response" => Message::ControlResponse(de(body)?),
            "control_cancel_request" => Message::ControlCancelRequest(de(body)?),
            "rate_limit_event" => Message::RateLimitEvent(de(body)?),
            "command_lifecycle" => Message::CommandLifecycle(de(body)?),
            "prompt_suggestion" => Message::PromptSuggestion(de(body)?),
            "conversation_reset" => Message::ConversationReset(de(body)?),
            "keep_alive" => Message::KeepAlive(de(body)?),
            other => {
                let mut m = body.as_object().cloned().unwrap_or_default();
                m.insert("type".into(), Value::from(other));
                Message::Unknown(Value::Object(m))
            }
        })
    }

    /// The JSON value of this message (equal to the parsed input, if it was parsed).
    pub fn to_value(&self) -> Value {
        fn with_type<T: Serialize>(t: &str, inner: &T) -> Value {
            let mut out = Map::new();
            out.insert("type".into(), Value::from(t));
            match serde_json::to_value(inner) {
                Ok(Value::Object(m)) => out.extend(m),
                // Our types always serialise to objects (maps with string keys); an
                // untyped `Other(Value)` could hold a non-object only if built by hand.
                Ok(other) => {
                    out.insert("value".into(), other);
                }
                Err(e) => {
                    out.insert("serialization_error".into(), Value::from(e.to_string()));
                }
            }
            Value::Object(out)
        }
        match self {
            Message::System(m) => with_type("system", m),
            Message::Assistant(m) => with_type("assistant", m),
            Message::User(m) => with_type("user", m),
            Message::Result(m) => with_type("result", m),
            Message::StreamEvent(m) => with_type("stream_event", m),
            Message::ControlRequest(m) => with_type("control_request", m),
            Message::ControlResponse(m) => with_type("control_response", m),
            Message::ControlCancelRequest(m) => with_type("control_cancel_request", m),
            Message::RateLimitEvent(m) => with_type("rate_limit_event", m),
            Message::CommandLifecycle(m) => with_type("command_lifecycle", m),
            Message::PromptSuggestion(m) => with_type("prompt_suggestion", m),
            Message::ConversationReset(m) => with_type("conversation_reset", m),
            Message::KeepAlive(m) => with_type("keep_alive", m),
            Message::Unknown(v) => v.clone(),
            Message::Malformed(m) => m.raw.clone(),
        }
    }

    /// One line of JSON, without the trailing newline. Never contains a raw newline.
    pub fn to_json_line(&self) -> String {
        self.to_value().to_string()
    }

    /// The `type` as on the wire (`""` for an untyped value without one).
    pub fn type_name(&self) -> &str {
        match self {
            Message::System(_) => "system",
            Message::Assistant(_) => "assistant",
            Message::User(_) => "user",
            Message::Result(_) => "result",
            Message::StreamEvent(_) => "stream_event",
            Message::ControlRequest(_) => "control_request",
            Message::ControlResponse(_) => "control_response",
            Message::ControlCancelRequest(_) => "control_cancel_request",
            Message::RateLimitEvent(_) => "rate_limit_event",
            Message::CommandLifecycle(_) => "command_lifecycle",
            Message::PromptSuggestion(_) => "prompt_suggestion",
            Message::ConversationReset(_) => "conversation_reset",
            Message::KeepAlive(_) => "keep_alive",
            Message::Unknown(v) => v.get("type").and_then(Value::as_str).unwrap_or(""),
            Message::Malformed(m) => &m.type_name,
        }
    }

    /// The line's `session_id`, if it has one (for `hook_callback` requests: `input.session_id`).
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Message::System(m) => m.session_id(),
            Message::Assistant(m) => m.session_id.as_deref(),
            Message::User(m) => m.session_id.as_deref(),
            Message::Result(m) => Some(&m.session_id),
            Message::StreamEvent(m) => m.session_id.as_deref(),
            Message::ControlRequest(r) => match &r.request {
                crate::control::ControlRequestBody::HookCallback(h) => {
                    h.input.get("session_id").and_then(Value::as_str)
                }
                _ => None,
            },
            Message::ControlResponse(_)
            | Message::ControlCancelRequest(_)
            | Message::KeepAlive(_) => None,
            Message::RateLimitEvent(m) => m.session_id.as_deref(),
            Message::CommandLifecycle(m) => m.session_id.as_deref(),
            Message::PromptSuggestion(m) => m.session_id.as_deref(),
            Message::ConversationReset(m) => m.session_id.as_deref(),
            Message::Unknown(v) => v.get("session_id").and_then(Value::as_str),
            Message::Malformed(m) => m.raw.get("session_id").and_then(Value::as_str),
        }
    }

    /// Whether this line is kept raw ([`Message::Unknown`], [`Message::Malformed`]) or has
    /// a raw inner part (an unknown `system` subtype or control subtype).
    pub fn is_raw(&self) -> bool {
        use crate::control::{ControlRequestBody, ControlResponseBody};
        match self {
            Message::Unknown(_) | Message::Malformed(_) => true,
            Message::System(SystemMessage::Other(_)) => true,
            Message::ControlRequest(r) => matches!(r.request, ControlRequestBody::Unknown(_)),
            Message::ControlResponse(r) => matches!(r.response, ControlResponseBody::Unknown(_)),
            _ => false,
        }
    }
}

/// [`Message::from_slice`]'s fast path for a line that starts with `type` (most do): typed in
/// one pass.
struct FastMessage(Message);

/// Keys the fast path consumed before the body: met again (a duplicate), it bails out.
const TOP_TAGS: Tags = Tags::consumed(&["type"]);
const SYSTEM_TAGS: Tags = Tags::consumed(&["type", "subtype"]);
/// The same keys when the body is typed from a line whose `type` comes later (found by
/// [`Probe`]): skipped where they are met.
const TOP_SKIP: Tags = Tags::skip(&["type"]);
const SYSTEM_SKIP: Tags = Tags::skip(&["type", "subtype"]);

fn bail<E: serde::de::Error>() -> E {
    E::custom(FAST_PATH_BAIL)
}

/// Types the body of a line of type `t` from the rest of `m`. `subtype`: for `system`, the
/// subtype when already known (else it must be the next key).
fn fast_body<'de, A: MapAccess<'de>>(
    t: &str,
    subtype: Option<&str>,
    m: &mut A,
    top: Tags,
    system: Tags,
) -> Result<Message, A::Error> {
    Ok(match t {
        "stream_event" => Message::StreamEvent(StreamEvent::visit_fields(m, top)?),
        "assistant" => Message::Assistant(AssistantMessage::visit_fields(m, top)?),
        "user" => Message::User(UserMessage::visit_fields(m, top)?),
        "result" => Message::Result(ResultMessage::visit_fields(m, top)?),
        "system" => {
            let read;
            let sub = match subtype {
                Some(s) => s,
                None => {
                    read = match m.next_key::<Key<'_>>()? {
                        Some(k) if k.as_str() == "subtype" => m.next_value::<Key<'_>>()?,
                        _ => return Err(bail()),
                    };
                    read.as_str()
                }
            };
            // An unknown subtype (`Other`) is kept as a `Value`: the slow path.
            let sys = SystemMessage::visit_variant(sub, m, system)?;
            Message::System(sys.ok_or_else(bail)?)
        }
        "rate_limit_event" => Message::RateLimitEvent(RateLimitEvent::visit_fields(m, top)?),
        "command_lifecycle" => Message::CommandLifecycle(CommandLifecycle::visit_fields(m, top)?),
        "prompt_suggestion" => Message::PromptSuggestion(PromptSuggestion::visit_fields(m, top)?),
        "conversation_reset" => {
            Message::ConversationReset(ConversationReset::visit_fields(m, top)?)
        }
        "keep_alive" => Message::KeepAlive(KeepAlive::visit_fields(m, top)?),
        // Control frames (a few per turn) and unknown types: the slow path.
        _ => return Err(bail()),
    })
}

impl<'de> Deserialize<'de> for FastMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FastMessage;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a stream-json object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastMessage, A::Error> {
                match map.next_key::<Key<'_>>()? {
                    Some(k) if k.as_str() == "type" => {}
                    _ => return Err(bail()),
                }
                let t = map.next_value::<Key<'_>>()?;
                fast_body(t.as_str(), None, &mut map, TOP_TAGS, SYSTEM_TAGS).map(FastMessage)
            }
        }
        d.deserialize_map(V)
    }
}

/// The top-level `type` and `subtype` of a line whose `type` is not first (the CLI's `result`
/// lines), found in a scan that types nothing.
struct Probe<'a> {
    type_name: Option<Key<'a>>,
    subtype: Option<Key<'a>>,
    /// How many `type` / `subtype` keys: a duplicate goes the slow way.
    tags: usize,
}

impl<'de> Deserialize<'de> for Probe<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Probe<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a stream-json object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe<'de>, A::Error> {
                let mut p = Probe {
                    type_name: None,
                    subtype: None,
                    tags: 0,
                };
                while let Some(k) = map.next_key::<Key<'de>>()? {
                    match k.as_str() {
                        "type" => {
                            p.tags += 1;
                            p.type_name = Some(map.next_value()?);
                        }
                        "subtype" => {
                            p.tags += 1;
                            p.subtype = Some(map.next_value()?);
                        }
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(p)
            }
        }
        d.deserialize_map(V)
    }
}

/// The second pass after a [`Probe`]: the body of a line of a known type.
struct Known<'p>(&'p str, Option<&'p str>);

impl<'de> serde::de::DeserializeSeed<'de> for Known<'_> {
    type Value = Message;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Message, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Known<'_> {
    type Value = Message;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a stream-json object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        fast_body(self.0, self.1, &mut map, TOP_SKIP, SYSTEM_SKIP)
    }
}

impl Message {
    /// The fast path of [`Message::from_slice`]; `None` = type it the slow way.
    fn from_slice_fast(line: &[u8]) -> Option<Message> {
        let _fast = FastGuard::enter();
        // One UTF-8 check of the whole line, then `str` parsing: cheaper than `from_slice`'s
        // check of every string on its own (invalid UTF-8 goes the slow way, to its error).
        let line = std::str::from_utf8(line).ok()?;
        if line.starts_with(r#"{"type":"#) {
            return serde_json::from_str::<FastMessage>(line).ok().map(|m| m.0);
        }
        let probe: Probe<'_> = serde_json::from_str(line).ok()?;
        let t = probe.type_name.as_ref()?;
        // `subtype` matters only for `system`; elsewhere it is a field like any other.
        let (sub, tags) = match (t.as_str(), &probe.subtype) {
            ("system", Some(s)) => (Some(s.as_str()), 2),
            (_, Some(_)) => (None, 2),
            (_, None) => (None, 1),
        };
        if probe.tags != tags {
            return None;
        }
        let mut de = serde_json::Deserializer::from_str(line);
        let m = serde::de::DeserializeSeed::deserialize(Known(t.as_str(), sub), &mut de).ok()?;
        de.end().ok()?;
        Some(m)
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Message::from_value(v).map_err(serde::de::Error::custom)
    }
}

impl From<SystemMessage> for Message {
    fn from(m: SystemMessage) -> Self {
        Message::System(m)
    }
}
impl From<UserMessage> for Message {
    fn from(m: UserMessage) -> Self {
        Message::User(m)
    }
}
impl From<ControlRequest> for Message {
    fn from(m: ControlRequest) -> Self {
        Message::ControlRequest(m)
    }
}
impl From<ControlResponse> for Message {
    fn from(m: ControlResponse) -> Self {
        Message::ControlResponse(m)
    }
}
impl From<ControlCancelRequest> for Message {
    fn from(m: ControlCancelRequest) -> Self {
        Message::ControlCancelRequest(m)
    }
}

/// An `assistant` line: one content block of an API message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AssistantMessage {
    /// The API message.
    pub message: ApiMessage,
    /// `None` = absent, `Some(None)` = `null` (top level), `Some(Some(id))` inside a subagent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub parent_tool_use_id: Option<Option<String>>,
    /// The session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The line's uuid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// An error kind for CLI-made messages (e.g. `server_error` on API errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the CLI wrote the line (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The Messages API request id (`req_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

wire_struct!(AssistantMessage {
    req message: "message",
    dbl parent_tool_use_id: "parent_tool_use_id",
    opt session_id: "session_id",
    opt uuid: "uuid",
    opt error: "error",
    opt timestamp: "timestamp",
    opt request_id: "request_id",
});

impl AssistantMessage {
    /// The parent tool use id (set inside subagents).
    pub fn parent_tool_use_id(&self) -> Option<&str> {
        self.parent_tool_use_id.as_ref().and_then(|p| p.as_deref())
    }
}

/// A `user` line: what we write, what the CLI replays, or tool results.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UserMessage {
    /// `{"role":"user","content":…}`.
    pub message: UserApiMessage,
    /// `None` = absent, `Some(None)` = `null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub parent_tool_use_id: Option<Option<String>>,
    /// The session id (the CLI ignores the one we send).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The line's uuid (ours: the CLI reports `command_lifecycle` for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Tool output details (an object, or a string for errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_result: Option<Value>,
    /// `isReplay`: an echo of our input (`--replay-user-messages`).
    #[serde(rename = "isReplay", default, skip_serializing_if = "Option::is_none")]
    pub is_replay: Option<bool>,
    /// Keys this crate does not model (`timestamp`, `tool_result_meta`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

wire_struct!(UserMessage {
    req message: "message",
    dbl parent_tool_use_id: "parent_tool_use_id",
    opt session_id: "session_id",
    opt uuid: "uuid",
    opt tool_use_result: "tool_use_result",
    opt is_replay: "isReplay",
});

impl UserMessage {
    /// The frame the SDKs write:
    /// `{"type":"user","message":{"role":"user","content":…},"parent_tool_use_id":null,"session_id":"default"}`.
    pub fn new(content: impl Into<UserContent>) -> Self {
        Self {
            message: UserApiMessage::new(content),
            parent_tool_use_id: Some(None),
            session_id: Some("default".into()),
            uuid: None,
            tool_use_result: None,
            is_replay: None,
            extra: Map::new(),
        }
    }

    /// A text input frame.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(UserContent::Text(text.into()))
    }

    /// A block input frame (text, images, …).
    pub fn blocks(blocks: Vec<ContentBlock>) -> Self {
        Self::new(UserContent::Blocks(blocks))
    }

    /// Sets the uuid (the CLI then reports `command_lifecycle` for this input).
    pub fn with_uuid(mut self, uuid: impl Into<String>) -> Self {
        self.uuid = Some(uuid.into());
        self
    }

    /// Sets `parent_tool_use_id`.
    pub fn with_parent_tool_use_id(mut self, id: impl Into<String>) -> Self {
        self.parent_tool_use_id = Some(Some(id.into()));
        self
    }

    /// The parent tool use id.
    pub fn parent_tool_use_id(&self) -> Option<&str> {
        self.parent_tool_use_id.as_ref().and_then(|p| p.as_deref())
    }

    /// The tool results in this message.
    pub fn tool_results(&self) -> impl Iterator<Item = &ContentBlock> {
        let blocks: &[ContentBlock] = match &self.message.content {
            UserContent::Blocks(b) => b,
            _ => &[],
        };
        blocks
            .iter()
            .filter(|b| matches!(b, ContentBlock::ToolResult { .. }))
    }
}

/// Outgoing user input; a convenience over [`UserMessage`].
///
/// ```
/// use claude_protocol::UserInput;
/// let line = UserInput::text("hello").to_json_line();
/// assert_eq!(
///     serde_json::from_str::<serde_json::Value>(&line).unwrap(),
///     serde_json::json!({"type":"user","message":{"role":"user","content":"hello"},
///                        "parent_tool_use_id":null,"session_id":"default"})
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct UserInput(pub UserMessage);

impl UserInput {
    /// Text input.
    pub fn text(text: impl Into<String>) -> Self {
        Self(UserMessage::text(text))
    }

    /// Block input (text, images).
    pub fn blocks(blocks: Vec<ContentBlock>) -> Self {
        Self(UserMessage::blocks(blocks))
    }

    /// Sets the uuid.
    pub fn with_uuid(self, uuid: impl Into<String>) -> Self {
        Self(self.0.with_uuid(uuid))
    }

    /// The message.
    pub fn into_message(self) -> Message {
        Message::User(self.0)
    }

    /// The line to write (no trailing newline).
    pub fn to_json_line(&self) -> String {
        Message::User(self.0.clone()).to_json_line()
    }
}

impl From<UserInput> for Message {
    fn from(u: UserInput) -> Self {
        u.into_message()
    }
}

/// A `stream_event` line: one SSE event of the Messages API.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StreamEvent {
    /// The SSE event (`message_start`, `content_block_delta`, …), typed.
    pub event: SseEvent,
    /// `None` = absent, `Some(None)` = `null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub parent_tool_use_id: Option<Option<String>>,
    /// The session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The line's uuid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// The id of the API message the event belongs to (`msg_…`; since 2.1.332).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_message_id: Option<String>,
    /// Keys this crate does not model (`ttft_ms`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

wire_struct!(StreamEvent {
    req event: "event",
    dbl parent_tool_use_id: "parent_tool_use_id",
    opt session_id: "session_id",
    opt uuid: "uuid",
    opt api_message_id: "api_message_id",
});

impl StreamEvent {
    /// `event.type` (`None` for an untyped event without one).
    pub fn event_type(&self) -> Option<&str> {
        Some(self.event.event_type()).filter(|t| !t.is_empty())
    }

    /// The text of a `content_block_delta` / `text_delta`.
    pub fn text_delta(&self) -> Option<&str> {
        match &self.event {
            SseEvent::ContentBlockDelta(d) => match &d.delta {
                Delta::TextDelta { text, .. } => Some(text),
                _ => None,
            },
            _ => None,
        }
    }
}

macro_rules! simple_frame {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident ($key:literal) : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Default, Serialize)]
        #[non_exhaustive]
        pub struct $name {
            $(
                $(#[$fdoc])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: $ty,
            )*
            /// Keys this crate does not model.
            #[serde(flatten)]
            pub extra: Map<String, Value>,
        }
        wire_struct!($name { $(opt $field : $key),* });
    };
}

simple_frame!(
    /// `rate_limit_event`.
    RateLimitEvent {
        /// `{status, resetsAt, rateLimitType, …}`.
        rate_limit_info ("rate_limit_info"): Option<Value>,
        /// The session id.
        session_id ("session_id"): Option<String>,
        /// The line's uuid.
        uuid ("uuid"): Option<String>,
    }
);

simple_frame!(
    /// `command_lifecycle`: the state of a user line we sent with a `uuid`.
    CommandLifecycle {
        /// The uuid of our user line.
        command_uuid ("command_uuid"): Option<String>,
        /// `queued`, `started`, `completed`, …
        state ("state"): Option<String>,
        /// The session id.
        session_id ("session_id"): Option<String>,
        /// The line's uuid.
        uuid ("uuid"): Option<String>,
    }
);

simple_frame!(
    /// `prompt_suggestion`: a predicted next prompt.
    PromptSuggestion {
        /// The suggestion.
        suggestion ("suggestion"): Option<String>,
        /// The session id.
        session_id ("session_id"): Option<String>,
        /// The line's uuid.
        uuid ("uuid"): Option<String>,
    }
);

simple_frame!(
    /// `conversation_reset`: the conversation restarted (cumulative totals reset).
    ConversationReset {
        /// The (new) session id.
        session_id ("session_id"): Option<String>,
        /// The line's uuid.
        uuid ("uuid"): Option<String>,
    }
);

simple_frame!(
    /// `keep_alive`.
    KeepAlive {}
);

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    /// The CLI's lines of every recorded transcript (`.jsonl`, and the `<` side of `.timed`).
    fn recorded_cli_lines() -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/cli-transcripts");
        let mut out = Vec::new();
        for dir in std::fs::read_dir(&root).expect("list cli-transcripts") {
            let dir = dir.expect("dir entry").path();
            if !dir.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&dir).expect("list transcripts") {
                let f = f.expect("dir entry").path();
                let name = f
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_owned();
                let text = std::fs::read_to_string(&f).expect("read transcript");
                if name.ends_with(".jsonl.timed") {
                    for l in text.lines() {
                        let mut parts = l.splitn(3, '\t');
                        if let (Some(_), Some("<"), Some(json)) =
                            (parts.next(), parts.next(), parts.next())
                        {
                            out.push(json.to_owned());
                        }
                    }
                } else if name.ends_with(".jsonl") && name != "textout.jsonl" {
                    out.extend(
                        text.lines()
                            .filter(|l| !l.trim().is_empty())
                            .map(str::to_owned),
                    );
                }
            }
        }
        out
    }

    /// The fast path is not just a correct fallback: it types every recorded frame of the kinds
    /// the CLI prints in bulk, without retyping through a `Value`, and exactly as the verifying
    /// path does.
    #[test]
    fn the_fast_path_covers_every_recorded_hot_frame() {
        let lines = recorded_cli_lines();
        let mut fast = 0;
        for line in &lines {
            let verified = Message::from_json_line(line).expect("recorded lines parse");
            let hot = matches!(
                verified,
                Message::StreamEvent(_)
                    | Message::Assistant(_)
                    | Message::User(_)
                    | Message::Result(_)
                    | Message::System(_)
                    | Message::RateLimitEvent(_)
                    | Message::CommandLifecycle(_)
                    | Message::PromptSuggestion(_)
                    | Message::ConversationReset(_)
                    | Message::KeepAlive(_)
            );
            if !hot {
                continue;
            }
            match Message::from_slice_fast(line.as_bytes()) {
                Some(m) => assert_eq!(m, verified, "{line}"),
                None => panic!("the fast path bailed out on {line}"),
            }
            fast += 1;
        }
        assert!(
            fast > 400,
            "only {fast} hot frames of {} lines",
            lines.len()
        );
    }
}

//! Usage read from the responses as they stream through: the SSE events `message_start`
//! (`message.usage`: input and cache tokens) and `message_delta` (`usage.output_tokens`,
//! cumulative), or a JSON message's `usage`.
//!
//! The scanner sees each chunk after it was handed on (it never holds one back) and keeps only
//! the line it is in the middle of, and of an event only the data of the two events it reads
//! (the text deltas are skipped by their `event:` line). A JSON response is copied up to
//! [`MAX_JSON`] bytes to be read at its end (the copy is dropped past that, and its usage is
//! not counted).

use serde_json::Value;

/// The most of one SSE line, or of one event's data, the scanner keeps.
const MAX_LINE: usize = 1024 * 1024;
/// The most of a JSON response the scanner copies to read its usage.
pub(super) const MAX_JSON: usize = 8 * 1024 * 1024;

/// Tokens, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Usage {
    pub(super) input: u64,
    pub(super) output: u64,
    pub(super) cache_write: u64,
    pub(super) cache_read: u64,
}

impl Usage {
    pub(super) fn total(&self) -> u64 {
        self.input
            .saturating_add(self.output)
            .saturating_add(self.cache_write)
            .saturating_add(self.cache_read)
    }

    pub(super) fn is_zero(&self) -> bool {
        self.total() == 0
    }

    /// The fields `value` (a `usage` object) reports.
    fn read(value: &Value) -> [Option<u64>; 4] {
        let field = |name: &str| value.get(name).and_then(Value::as_u64);
        [
            field("input_tokens"),
            field("output_tokens"),
            field("cache_creation_input_tokens"),
            field("cache_read_input_tokens"),
        ]
    }

    /// Raises each field to what `reported` says (the API's counts are cumulative within a
    /// message); returns how much was added.
    fn raise(&mut self, reported: [Option<u64>; 4]) -> Usage {
        let mut added = Usage::default();
        let fields = [
            (&mut self.input, &mut added.input),
            (&mut self.output, &mut added.output),
            (&mut self.cache_write, &mut added.cache_write),
            (&mut self.cache_read, &mut added.cache_read),
        ];
        for ((seen, add), new) in fields.into_iter().zip(reported) {
            if let Some(new) = new.filter(|n| *n > *seen) {
                *add = new - *seen;
                *seen = new;
            }
        }
        added
    }
}

/// The name of the current SSE event, as far as the scanner cares (no allocation per event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EventName {
    /// No `event:` line yet: the data's own `type` decides.
    Unnamed,
    MessageStart,
    MessageDelta,
    /// Any other event (the text deltas, most of a stream): its data is skipped.
    Other,
}

impl EventName {
    fn of(name: &[u8]) -> EventName {
        match name {
            b"message_start" => EventName::MessageStart,
            b"message_delta" => EventName::MessageDelta,
            _ => EventName::Other,
        }
    }

    fn as_str(self) -> Option<&'static str> {
        match self {
            EventName::MessageStart => Some("message_start"),
            EventName::MessageDelta => Some("message_delta"),
            EventName::Unnamed | EventName::Other => None,
        }
    }
}

/// How the response's body is read.
#[derive(Debug)]
enum Mode {
    /// `text/event-stream`.
    Sse {
        line: Vec<u8>,
        /// The current line passed [`MAX_LINE`]: skip to its end.
        skipping: bool,
        /// The current event's name (from its `event:` line).
        event: EventName,
        /// The current event's data, unless the event is one the scanner skips.
        data: Vec<u8>,
        data_overflow: bool,
    },
    /// `application/json`: a copy, read at the end.
    Json { copy: Vec<u8>, overflow: bool },
    /// Anything else.
    Ignore,
}

/// Reads the usage out of one response's body, chunk by chunk.
#[derive(Debug)]
pub(super) struct Scanner {
    mode: Mode,
    model: Option<String>,
    seen: Usage,
}

impl Scanner {
    /// A scanner for a response of `content_type`.
    pub(super) fn new(content_type: Option<&str>) -> Scanner {
        let essence = content_type
            .and_then(|c| c.split(';').next())
            .map(|c| c.trim().to_ascii_lowercase());
        let mode = match essence.as_deref() {
            Some("text/event-stream") => Mode::Sse {
                line: Vec::new(),
                skipping: false,
                event: EventName::Unnamed,
                data: Vec::new(),
                data_overflow: false,
            },
            Some("application/json") => Mode::Json {
                copy: Vec::new(),
                overflow: false,
            },
            _ => Mode::Ignore,
        };
        Scanner {
            mode,
            model: None,
            seen: Usage::default(),
        }
    }

    /// The model the response named, once seen.
    pub(super) fn model(&self) -> &str {
        self.model.as_deref().unwrap_or("")
    }

    /// Everything the scanner counted so far.
    #[cfg(test)]
    pub(super) fn seen(&self) -> Usage {
        self.seen
    }

    /// Feeds a chunk; returns the usage it completed (zero until an event with usage ends).
    pub(super) fn feed(&mut self, chunk: &[u8]) -> Usage {
        let mut added = Usage::default();
        match &mut self.mode {
            Mode::Ignore => {}
            Mode::Json { copy, overflow } => {
                if !*overflow {
                    if copy.len() + chunk.len() > MAX_JSON {
                        *overflow = true;
                        *copy = Vec::new();
                        tracing::debug!(
                            "a JSON response is over {MAX_JSON} bytes: its usage is not counted"
                        );
                    } else {
                        copy.extend_from_slice(chunk);
                    }
                }
            }
            Mode::Sse { .. } => {
                let mut rest = chunk;
                while !rest.is_empty() {
                    let (piece, ended) = match memchr::memchr(b'\n', rest) {
                        Some(i) => (&rest[..i], Some(i + 1)),
                        None => (rest, None),
                    };
                    rest = ended.map_or(&[][..], |i| &rest[i..]);
                    let got = if ended.is_some() && self.line_is_empty() {
                        // A whole line inside this chunk (the usual case): read it in place.
                        self.on_line(piece.strip_suffix(b"\r").unwrap_or(piece))
                    } else if let Some(line) = self.push_line(piece, ended.is_some()) {
                        let got = self.on_line(line.strip_suffix(b"\r").unwrap_or(&line));
                        self.give_back(line);
                        got
                    } else {
                        Usage::default()
                    };
                    added = sum(added, got);
                }
            }
        }
        added
    }

    /// Whether no part of a line is kept from an earlier chunk.
    fn line_is_empty(&self) -> bool {
        match &self.mode {
            Mode::Sse { line, skipping, .. } => line.is_empty() && !*skipping,
            _ => true,
        }
    }

    /// Returns a line's buffer, emptied, for the next partial line.
    fn give_back(&mut self, mut buffer: Vec<u8>) {
        if let Mode::Sse { line, .. } = &mut self.mode {
            buffer.clear();
            *line = buffer;
        }
    }

    /// Adds `piece` to the current line; returns the line when `ended`.
    fn push_line(&mut self, piece: &[u8], ended: bool) -> Option<Vec<u8>> {
        let Mode::Sse { line, skipping, .. } = &mut self.mode else {
            return None;
        };
        if !*skipping {
            if line.len() + piece.len() > MAX_LINE {
                *skipping = true;
                *line = Vec::new();
            } else {
                line.extend_from_slice(piece);
            }
        }
        if !ended {
            return None;
        }
        if std::mem::take(skipping) {
            // A line too long to keep: not one the scanner reads (usage events are small).
            return None;
        }
        Some(std::mem::take(line))
    }

    /// One complete line of the event stream.
    fn on_line(&mut self, line: &[u8]) -> Usage {
        let Mode::Sse {
            event,
            data,
            data_overflow,
            ..
        } = &mut self.mode
        else {
            return Usage::default();
        };
        if line.is_empty() {
            // The event ends: read it if it is one with usage.
            let name = std::mem::replace(event, EventName::Unnamed);
            let overflow = std::mem::take(data_overflow);
            if overflow || data.is_empty() {
                return Usage::default();
            }
            let body = std::mem::take(data);
            let got = self.on_event(name.as_str(), &body);
            if let Mode::Sse { data, .. } = &mut self.mode {
                // Keep the buffer for the next event's data.
                *data = body;
                data.clear();
            }
            return got;
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        match field {
            b"event" => *event = EventName::of(value),
            b"data" => {
                let wanted = *event != EventName::Other;
                if wanted && !*data_overflow {
                    if data.len() + value.len() + 1 > MAX_LINE {
                        *data_overflow = true;
                        *data = Vec::new();
                    } else {
                        if !data.is_empty() {
                            data.push(b'\n');
                        }
                        data.extend_from_slice(value);
                    }
                }
            }
            _ => {}
        }
        Usage::default()
    }

    fn on_event(&mut self, name: Option<&str>, data: &[u8]) -> Usage {
        let Ok(value) = serde_json::from_slice::<Value>(data) else {
            return Usage::default();
        };
        let kind = value.get("type").and_then(Value::as_str).or(name);
        match kind {
            Some("message_start") => {
                let message = &value["message"];
                if let Some(model) = message.get("model").and_then(Value::as_str) {
                    self.model = Some(model.to_owned());
                }
                self.seen.raise(Usage::read(&message["usage"]))
            }
            Some("message_delta") => self.seen.raise(Usage::read(&value["usage"])),
            _ => Usage::default(),
        }
    }

    /// The body ended: a JSON response is read now.
    pub(super) fn finish(&mut self) -> Usage {
        let Mode::Json { copy, overflow } = &mut self.mode else {
            return Usage::default();
        };
        if *overflow {
            return Usage::default();
        }
        let copy = std::mem::take(copy);
        let Ok(value) = serde_json::from_slice::<Value>(&copy) else {
            return Usage::default();
        };
        if let Some(model) = value.get("model").and_then(Value::as_str) {
            self.model = Some(model.to_owned());
        }
        match value.get("usage") {
            Some(usage) => self.seen.raise(Usage::read(usage)),
            None => Usage::default(),
        }
    }
}

fn sum(a: Usage, b: Usage) -> Usage {
    Usage {
        input: a.input + b.input,
        output: a.output + b.output,
        cache_write: a.cache_write + b.cache_write,
        cache_read: a.cache_read + b.cache_read,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "event: message_start\r\n\
data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude-sonnet-4\",\"usage\":{\"input_tokens\":120,\"cache_creation_input_tokens\":30,\"cache_read_input_tokens\":7,\"output_tokens\":1}}}\r\n\
\r\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi message_delta\"}}\n\
\n\
event: message_delta\n\
data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":42}}\n\
\n\
event: message_stop\n\
data: {\"type\":\"message_stop\"}\n\n";

    fn expected() -> Usage {
        Usage {
            input: 120,
            output: 42,
            cache_write: 30,
            cache_read: 7,
        }
    }

    #[test]
    fn a_stream_is_read_whatever_its_chunking() {
        for size in [1, 2, 3, 7, 64, STREAM.len()] {
            let mut s = Scanner::new(Some("text/event-stream; charset=utf-8"));
            let mut total = Usage::default();
            for chunk in STREAM.as_bytes().chunks(size) {
                total = sum(total, s.feed(chunk));
            }
            total = sum(total, s.finish());
            assert_eq!(total, expected(), "chunks of {size}");
            assert_eq!(s.seen(), expected());
            assert_eq!(s.model(), "claude-sonnet-4");
        }
    }

    #[test]
    fn usage_counts_as_soon_as_its_event_ends() {
        let mut s = Scanner::new(Some("text/event-stream"));
        let cut = STREAM.find("event: content_block_delta").unwrap();
        let first = s.feed(&STREAM.as_bytes()[..cut]);
        assert_eq!((first.input, first.output), (120, 1), "message_start alone");
        let rest = s.feed(&STREAM.as_bytes()[cut..]);
        assert_eq!(
            rest.output, 41,
            "the cumulative output, minus what was counted"
        );
    }

    #[test]
    fn a_json_message_is_read_at_its_end_and_other_bodies_are_ignored() {
        let body = br#"{"id":"m","model":"claude-3-5-haiku","usage":{"input_tokens":5,"output_tokens":9}}"#;
        let mut s = Scanner::new(Some("application/json"));
        assert!(s.feed(&body[..10]).is_zero());
        assert!(s.feed(&body[10..]).is_zero());
        let u = s.finish();
        assert_eq!((u.input, u.output), (5, 9));
        assert_eq!(s.model(), "claude-3-5-haiku");
        let mut other = Scanner::new(Some("text/plain"));
        assert!(other.feed(body).is_zero() && other.finish().is_zero());
    }

    #[test]
    fn long_lines_and_events_are_skipped_without_being_kept() {
        let mut s = Scanner::new(Some("text/event-stream"));
        let long = format!("data: {}\n\n", "x".repeat(MAX_LINE + 10));
        assert!(s.feed(long.as_bytes()).is_zero());
        let Mode::Sse { line, data, .. } = &s.mode else {
            unreachable!()
        };
        assert!(line.capacity() <= MAX_LINE + 1 && data.is_empty());
        // The stream after it is still read.
        let mut total = Usage::default();
        for chunk in STREAM.as_bytes().chunks(5) {
            total = sum(total, s.feed(chunk));
        }
        assert_eq!(total, expected());
    }
}

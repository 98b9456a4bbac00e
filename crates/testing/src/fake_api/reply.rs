//! Scripted replies and how they are rendered: SSE for streaming requests, plain JSON otherwise.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

/// What the fake API answers to one `POST /v1/messages`.
///
/// Build one with the constructors ([`Reply::text`], [`Reply::bash`], [`Reply::slow`],
/// [`Reply::http_error`], [`Reply::sse_error`]) and hand it to
/// [`FakeApi::push_reply`](super::FakeApi::push_reply) or a rule.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Reply {
    /// One text block, streamed in a few pieces at once.
    Text(String),
    /// An optional text block, then a `tool_use` block (`stop_reason: "tool_use"`).
    ToolUse {
        /// Text block sent before the tool call (`None`: no text block).
        preamble: Option<String>,
        /// Tool name, e.g. `Bash`.
        name: String,
        /// Tool input, e.g. `{"command": "echo hi", "description": "…"}`.
        input: Value,
    },
    /// One text block streamed as `pieces` deltas with `delay` before each piece after the first.
    Slow {
        /// The whole text; split into `pieces` deltas of about equal length.
        text: String,
        /// Number of deltas (at least 1; fewer if the text has fewer characters).
        pieces: usize,
        /// Pause between two deltas.
        delay: Duration,
    },
    /// An HTTP error status with an Anthropic-style JSON error body.
    HttpError {
        /// The status code, e.g. 500.
        status: u16,
        /// The `error.message` of the body.
        message: String,
    },
    /// A streaming reply that starts (`message_start`) and then sends an SSE `error` event.
    ///
    /// The real CLI then retries the same request without streaming; that retry gets the
    /// next reply (queue, rules or default). A non-streaming request given this reply gets
    /// HTTP 529 with the same error instead.
    SseError {
        /// `error.type`, e.g. `overloaded_error`.
        error_type: String,
        /// `error.message`.
        message: String,
    },
}

impl Reply {
    /// A plain text reply.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::Text(text.into())
    }

    /// A `Bash` tool call running `command`, preceded by the text `I'll run a tool.`.
    pub fn bash(command: impl Into<String>) -> Reply {
        Reply::ToolUse {
            preamble: Some("I'll run a tool.".to_owned()),
            name: "Bash".to_owned(),
            input: json!({ "command": command.into(), "description": "Run a test command" }),
        }
    }

    /// A call of any tool with the given input and no text before it.
    pub fn tool_use(name: impl Into<String>, input: Value) -> Reply {
        Reply::ToolUse {
            preamble: None,
            name: name.into(),
            input,
        }
    }

    /// A slow text stream: `pieces` deltas with `delay` between two of them.
    pub fn slow(text: impl Into<String>, pieces: usize, delay: Duration) -> Reply {
        Reply::Slow {
            text: text.into(),
            pieces,
            delay,
        }
    }

    /// An HTTP error status (e.g. 500) with a JSON error body.
    pub fn http_error(status: u16, message: impl Into<String>) -> Reply {
        Reply::HttpError {
            status,
            message: message.into(),
        }
    }

    /// An SSE `error` event (of type `overloaded_error`) after `message_start`.
    pub fn sse_error(message: impl Into<String>) -> Reply {
        Reply::SseError {
            error_type: "overloaded_error".to_owned(),
            message: message.into(),
        }
    }

    /// A one-line description for the request log.
    pub(crate) fn summary(&self) -> String {
        match self {
            Reply::Text(text) => format!("text: {}", truncate(text, 80)),
            Reply::ToolUse { name, input, .. } => {
                format!("tool_use {name}: {}", truncate(&input.to_string(), 80))
            }
            Reply::Slow {
                text,
                pieces,
                delay,
            } => format!("slow {pieces}x{delay:?}: {}", truncate(text, 60)),
            Reply::HttpError { status, message } => format!("http {status}: {message}"),
            Reply::SseError {
                error_type,
                message,
            } => format!("sse error {error_type}: {message}"),
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// One content block of a reply, with its ids fixed.
enum Block {
    Text {
        pieces: Vec<String>,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

/// A rendered answer: status, content type, and the body as chunks (each with the pause before it).
pub(crate) struct Rendered {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) chunks: Vec<(Duration, Bytes)>,
}

/// Everything a rendering needs besides the reply.
pub(crate) struct RenderCtx<'a> {
    pub(crate) model: &'a str,
    pub(crate) stream: bool,
    pub(crate) input_tokens: u64,
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_fake_{}", uuid::Uuid::new_v4().simple())
}

/// Splits `text` into at most `n` pieces of about equal length (in chars), none empty.
fn split_pieces(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    let n = n.clamp(1, chars.len());
    let size = chars.len().div_ceil(n);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn output_tokens(blocks: &[Block]) -> u64 {
    let chars: usize = blocks
        .iter()
        .map(|b| match b {
            Block::Text { pieces } => pieces.iter().map(String::len).sum(),
            Block::ToolUse { input, .. } => input.to_string().len(),
        })
        .sum();
    (chars as u64 / 4).max(1)
}

fn error_body(error_type: &str, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": error_type, "message": message } })
}

fn sse_event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// Renders `reply` for one request.
pub(crate) fn render(reply: &Reply, ctx: &RenderCtx<'_>) -> Rendered {
    let (blocks, delay) = match reply {
        Reply::HttpError { status, message } => {
            let error_type = match status {
                400 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            return json_rendered(*status, &error_body(error_type, message));
        }
        Reply::SseError {
            error_type,
            message,
        } => {
            if !ctx.stream {
                return json_rendered(529, &error_body(error_type, message));
            }
            let msg_id = new_id("msg");
            let chunks = vec![
                (
                    Duration::ZERO,
                    sse_event("message_start", &message_start(&msg_id, ctx)),
                ),
                (
                    Duration::ZERO,
                    sse_event("error", &error_body(error_type, message)),
                ),
            ];
            return Rendered {
                status: 200,
                content_type: "text/event-stream",
                chunks,
            };
        }
        Reply::Text(text) => (
            vec![Block::Text {
                pieces: split_pieces(text, 3),
            }],
            Duration::ZERO,
        ),
        Reply::Slow {
            text,
            pieces,
            delay,
        } => (
            vec![Block::Text {
                pieces: split_pieces(text, *pieces),
            }],
            *delay,
        ),
        Reply::ToolUse {
            preamble,
            name,
            input,
        } => {
            let mut blocks = Vec::new();
            if let Some(text) = preamble {
                blocks.push(Block::Text {
                    pieces: split_pieces(text, 2),
                });
            }
            blocks.push(Block::ToolUse {
                id: new_id("toolu"),
                name: name.clone(),
                input: input.clone(),
            });
            (blocks, Duration::ZERO)
        }
    };
    let stop_reason = if blocks.iter().any(|b| matches!(b, Block::ToolUse { .. })) {
        "tool_use"
    } else {
        "end_turn"
    };
    if ctx.stream {
        render_sse(&blocks, stop_reason, delay, ctx)
    } else {
        render_json(&blocks, stop_reason, ctx)
    }
}

fn json_rendered(status: u16, body: &Value) -> Rendered {
    Rendered {
        status,
        content_type: "application/json",
        chunks: vec![(Duration::ZERO, Bytes::from(body.to_string()))],
    }
}

fn usage(ctx: &RenderCtx<'_>, output_tokens: u64) -> Value {
    json!({
        "input_tokens": ctx.input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    })
}

fn message_start(msg_id: &str, ctx: &RenderCtx<'_>) -> Value {
    json!({
        "type": "message_start",
        "message": {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": ctx.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage(ctx, 1),
        }
    })
}

fn render_json(blocks: &[Block], stop_reason: &str, ctx: &RenderCtx<'_>) -> Rendered {
    let content: Vec<Value> = blocks
        .iter()
        .map(|b| match b {
            Block::Text { pieces } => json!({ "type": "text", "text": pieces.concat() }),
            Block::ToolUse { id, name, input } => {
                json!({ "type": "tool_use", "id": id, "name": name, "input": input })
            }
        })
        .collect();
    let body = json!({
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": usage(ctx, output_tokens(blocks)),
    });
    json_rendered(200, &body)
}

fn render_sse(
    blocks: &[Block],
    stop_reason: &str,
    delay: Duration,
    ctx: &RenderCtx<'_>,
) -> Rendered {
    let msg_id = new_id("msg");
    let mut chunks = vec![(
        Duration::ZERO,
        sse_event("message_start", &message_start(&msg_id, ctx)),
    )];
    let mut push = |pause: Duration, name: &str, data: Value| {
        chunks.push((pause, sse_event(name, &data)));
    };
    for (index, block) in blocks.iter().enumerate() {
        match block {
            Block::Text { pieces } => {
                push(
                    Duration::ZERO,
                    "content_block_start",
                    json!({ "type": "content_block_start", "index": index,
                            "content_block": { "type": "text", "text": "" } }),
                );
                for (i, piece) in pieces.iter().enumerate() {
                    let pause = if i == 0 { Duration::ZERO } else { delay };
                    push(
                        pause,
                        "content_block_delta",
                        json!({ "type": "content_block_delta", "index": index,
                                "delta": { "type": "text_delta", "text": piece } }),
                    );
                }
            }
            Block::ToolUse { id, name, input } => {
                push(
                    Duration::ZERO,
                    "content_block_start",
                    json!({ "type": "content_block_start", "index": index,
                            "content_block": { "type": "tool_use", "id": id, "name": name,
                                               "input": {} } }),
                );
                for piece in split_pieces(&input.to_string(), 2) {
                    push(
                        Duration::ZERO,
                        "content_block_delta",
                        json!({ "type": "content_block_delta", "index": index,
                                "delta": { "type": "input_json_delta", "partial_json": piece } }),
                    );
                }
            }
        }
        push(
            Duration::ZERO,
            "content_block_stop",
            json!({ "type": "content_block_stop", "index": index }),
        );
    }
    push(
        Duration::ZERO,
        "message_delta",
        json!({ "type": "message_delta",
                "delta": { "stop_reason": stop_reason, "stop_sequence": null },
                "usage": { "output_tokens": output_tokens(blocks) } }),
    );
    push(
        Duration::ZERO,
        "message_stop",
        json!({ "type": "message_stop" }),
    );
    Rendered {
        status: 200,
        content_type: "text/event-stream",
        chunks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_pieces_keeps_text_and_count() {
        let pieces = split_pieces("abcdefghij", 3);
        assert_eq!(pieces.concat(), "abcdefghij");
        assert_eq!(pieces.len(), 3);
        assert_eq!(split_pieces("ab", 20), vec!["a", "b"]);
        assert_eq!(split_pieces("", 5), vec![""]);
    }
}

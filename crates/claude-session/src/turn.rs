//! Turns: what goes in (a [`Prompt`]), what comes out (a [`TurnStream`] of typed messages ending
//! with the turn's `result`), and helpers that collect it ([`TurnOutput`]).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use claude_protocol::{ContentBlock, InitializeResponse, Message, ResultMessage, UserInput};
use futures::{Stream, StreamExt};
use ractor::ActorRef;
use tokio::sync::{mpsc, oneshot};

use crate::actor::{Batch, SessionMsg, TurnOutcome};
use crate::error::SessionError;
use crate::ledger::TurnCost;

/// What a turn asks: text, or content blocks (text and images).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Prompt {
    /// Plain text.
    Text(String),
    /// Content blocks, e.g. `[ContentBlock::text(..), ContentBlock::image_base64(..)]`.
    Blocks(Vec<ContentBlock>),
}

impl Prompt {
    pub(crate) fn to_frame(&self) -> Message {
        match self {
            Self::Text(text) => UserInput::text(text.clone()).into_message(),
            Self::Blocks(blocks) => UserInput::blocks(blocks.clone()).into_message(),
        }
    }
}

impl From<&str> for Prompt {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for Prompt {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<Vec<ContentBlock>> for Prompt {
    fn from(blocks: Vec<ContentBlock>) -> Self {
        Self::Blocks(blocks)
    }
}

/// What the CLI said about itself in its answer to `initialize`.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    raw: serde_json::Value,
    typed: Option<InitializeResponse>,
}

impl ServerInfo {
    pub(crate) fn from_initialize(raw: serde_json::Value) -> Self {
        let typed = InitializeResponse::from_value(raw.clone()).ok();
        Self { raw, typed }
    }

    /// The answer as the CLI sent it.
    pub fn raw(&self) -> &serde_json::Value {
        &self.raw
    }

    /// The answer, typed (models, commands, agents, account, …), if it had the expected shape.
    pub fn initialize_response(&self) -> Option<&InitializeResponse> {
        self.typed.as_ref()
    }

    /// The CLI's version (`claude_code_version`).
    pub fn cli_version(&self) -> Option<&str> {
        self.typed
            .as_ref()
            .and_then(|t| t.claude_code_version.as_deref())
    }
}

/// The messages of one turn, ending with its `result`.
///
/// Yields `Ok(message)` for every frame of the turn, in order, the last being
/// [`Message::Result`]; or, if the turn fails without a result (the CLI died, the turn stalled
/// or timed out, the session stopped, the turn was cancelled), one `Err` and then the end.
/// A `result` with `is_error: true` is still `Ok`: judge it with
/// [`TurnOutput::is_error`] or `ResultMessage::is_error`.
///
/// Dropping the stream before the end interrupts the turn (unless the session was configured
/// with `interrupt_on_drop(false)`), or takes it out of the queue if it has not started; the
/// session stays usable.
#[derive(Debug)]
#[must_use = "a turn's frames are only read through its stream"]
pub struct TurnStream {
    session: Arc<str>,
    turn: u64,
    frames: mpsc::Receiver<Batch>,
    /// The rest of the batch being read.
    batch: std::vec::IntoIter<Message>,
    outcome: Option<oneshot::Receiver<TurnOutcome>>,
    saw_result: bool,
    done: bool,
    actor: ActorRef<SessionMsg>,
}

impl TurnStream {
    pub(crate) fn new(
        session: Arc<str>,
        turn: u64,
        frames: mpsc::Receiver<Batch>,
        outcome: oneshot::Receiver<TurnOutcome>,
        actor: ActorRef<SessionMsg>,
    ) -> Self {
        Self {
            session,
            turn,
            frames,
            batch: Vec::new().into_iter(),
            outcome: Some(outcome),
            saw_result: false,
            done: false,
            actor,
        }
    }

    /// The turn's number within its session instance.
    pub fn turn(&self) -> u64 {
        self.turn
    }

    /// Reads the whole turn.
    ///
    /// # Errors
    ///
    /// The turn failed without a `result` (see [`TurnStream`]).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the stream, which interrupts the turn (see [`TurnStream`]).
    pub async fn collect(self) -> Result<TurnOutput, SessionError> {
        self.collect_partial()
            .await
            .map_err(|partial| partial.error)
    }

    /// Reads the whole turn like [`collect`](Self::collect), and on failure keeps what arrived
    /// before it: a caller can tell a turn that never reached the CLI (no frame at all) from one
    /// that was cut after doing work.
    ///
    /// # Errors
    ///
    /// [`PartialTurn`]: the turn's error and the frames that came before it.
    ///
    /// # Cancel safety
    ///
    /// As for [`collect`](Self::collect).
    pub async fn collect_partial(mut self) -> Result<TurnOutput, PartialTurn> {
        let mut messages = Vec::new();
        while let Some(item) = self.next().await {
            match item {
                Ok(message) => messages.push(message),
                Err(error) => return Err(PartialTurn { messages, error }),
            }
        }
        let result = match messages.last() {
            Some(Message::Result(result)) => result.clone(),
            Some(Message::Malformed(bad)) => {
                let error = SessionError::UnexpectedAnswer {
                    session: self.session.to_string(),
                    subtype: "result".into(),
                    detail: bad.reason.clone(),
                };
                return Err(PartialTurn { messages, error });
            }
            _ => {
                let error = SessionError::Stopped {
                    session: self.session.to_string(),
                };
                return Err(PartialTurn { messages, error });
            }
        };
        // The per-turn cost comes from the actor once the result has been delivered.
        let cost = match self.outcome.take() {
            Some(rx) => rx.await.ok().and_then(Result::ok),
            None => None,
        };
        Ok(TurnOutput {
            messages,
            result,
            cost,
        })
    }

    /// Reads the whole turn and returns its final text: the `result` text, or else the
    /// concatenated assistant text.
    ///
    /// # Errors
    ///
    /// The turn failed without a `result`.
    ///
    /// # Cancel safety
    ///
    /// As for [`collect`](Self::collect).
    pub async fn final_text(self) -> Result<String, SessionError> {
        let out = self.collect().await?;
        Ok(out.text())
    }

    /// The text as it streams: the `text_delta`s of `stream_event` frames (which the CLI sends
    /// with `include_partial_messages`), then the end of the turn.
    ///
    /// Errors of the turn are passed through.
    pub fn text_deltas(self) -> impl Stream<Item = Result<String, SessionError>> + Send + Unpin {
        self.filter_map(|item| {
            futures::future::ready(match item {
                Ok(Message::StreamEvent(ev)) => ev.text_delta().map(|t| Ok(t.to_owned())),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
        })
    }
}

impl Stream for TurnStream {
    type Item = Result<Message, SessionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let next = match this.batch.next() {
            Some(msg) => Poll::Ready(Some(msg)),
            None => loop {
                match this.frames.poll_recv(cx) {
                    Poll::Ready(Some(batch)) => {
                        this.batch = batch.into_iter();
                        if let Some(msg) = this.batch.next() {
                            break Poll::Ready(Some(msg));
                        }
                    }
                    other => break other.map(|_| None),
                }
            },
        };
        match next {
            Poll::Ready(Some(msg)) => {
                if matches!(&msg, Message::Result(_))
                    || matches!(&msg, Message::Malformed(m) if m.type_name == "result")
                {
                    this.saw_result = true;
                    this.done = true;
                }
                Poll::Ready(Some(Ok(msg)))
            }
            Poll::Pending => Poll::Pending,
            // The session let go of the turn without a result: the outcome says why.
            Poll::Ready(None) => {
                let Some(outcome) = this.outcome.as_mut() else {
                    this.done = true;
                    return Poll::Ready(None);
                };
                match Pin::new(outcome).poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(result) => {
                        this.done = true;
                        this.outcome = None;
                        match result {
                            Ok(Err(e)) => Poll::Ready(Some(Err(e))),
                            Ok(Ok(_)) => Poll::Ready(None),
                            Err(_) => Poll::Ready(Some(Err(SessionError::Stopped {
                                session: this.session.to_string(),
                            }))),
                        }
                    }
                }
            }
        }
    }
}

use std::future::Future;

impl Drop for TurnStream {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.actor.cast(SessionMsg::CancelTurn(self.turn));
        }
    }
}

/// A tool call made during a turn, with its result when one came back.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ToolCall {
    /// The `tool_use` id.
    pub id: String,
    /// The tool's name (`Bash`, `mcp__server__tool`, …).
    pub name: String,
    /// The tool's input.
    pub input: serde_json::Value,
    /// The tool result's content, if a result came back.
    pub result: Option<serde_json::Value>,
    /// Whether the tool reported an error.
    pub is_error: bool,
}

/// A turn that failed before its `result`, with the frames that arrived first.
#[derive(Debug)]
#[non_exhaustive]
pub struct PartialTurn {
    /// The frames received before the failure, in order (empty: the CLI never began the turn).
    pub messages: Vec<Message>,
    /// Why the turn failed.
    pub error: SessionError,
}

/// A whole turn, collected.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TurnOutput {
    /// Every message of the turn, in order, the `result` last.
    pub messages: Vec<Message>,
    /// The turn's `result`.
    pub result: ResultMessage,
    /// What the turn cost, computed from the CLI's cumulative figures.
    pub cost: Option<TurnCost>,
}

impl TurnOutput {
    /// Whether the turn failed (the `result`'s `is_error`, the one field to judge by).
    pub fn is_error(&self) -> bool {
        self.result.is_error
    }

    /// The `result` text, when the CLI gave one.
    pub fn final_text(&self) -> Option<&str> {
        self.result.result.as_deref()
    }

    /// The answer: the `result` text, or else (when the CLI gave none) the assistant text.
    pub fn text(&self) -> String {
        match self.final_text() {
            Some(answer) => answer.to_owned(),
            None => self.assistant_text(),
        }
    }

    /// All assistant text of the turn (outside sub-agents), concatenated in order: what streamed,
    /// even when the turn was cut before its `result` text.
    pub fn assistant_text(&self) -> String {
        let mut text = String::new();
        for msg in &self.messages {
            if let Message::Assistant(a) = msg
                && a.parent_tool_use_id().is_none()
            {
                for block in &a.message.content {
                    if let Some(t) = block.as_text() {
                        text.push_str(t);
                    }
                }
            }
        }
        text
    }

    /// The tool calls of the turn, each with its result.
    pub fn tool_calls(&self) -> Vec<ToolCall> {
        let mut calls: Vec<ToolCall> = Vec::new();
        for msg in &self.messages {
            match msg {
                Message::Assistant(a) => {
                    for block in &a.message.content {
                        if let ContentBlock::ToolUse {
                            id, name, input, ..
                        } = block
                        {
                            calls.push(ToolCall {
                                id: id.clone(),
                                name: name.clone(),
                                input: input.clone(),
                                result: None,
                                is_error: false,
                            });
                        }
                    }
                }
                Message::User(u) => {
                    for block in u.tool_results() {
                        if let ContentBlock::ToolResult {
                            tool_use_id,
                            content,
                            is_error,
                            ..
                        } = block
                            && let Some(call) = calls.iter_mut().find(|c| &c.id == tool_use_id)
                        {
                            call.result = content.clone();
                            call.is_error = is_error.unwrap_or(false);
                        }
                    }
                }
                _ => {}
            }
        }
        calls
    }

    /// The session id the turn ran in.
    pub fn session_id(&self) -> &str {
        &self.result.session_id
    }
}

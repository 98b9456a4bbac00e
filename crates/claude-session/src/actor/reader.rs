//! The stdout reader: frames lines, parses them, and routes each frame. Nothing else.
//!
//! - Frames of the running turn go to that turn's bounded channel. When the caller reads slowly,
//!   frames wait in a backlog and the reader stops reading stdout (so the CLI slows down, not
//!   memory use), while it keeps answering commands. Once an interrupt is under way it reads on
//!   regardless, so that the interrupt's answer is seen even if the caller is not reading.
//! - Answers to our control requests resolve their waiters directly.
//! - Requests from the CLI (permissions, hooks, SDK MCP) are handed to the control handler, which
//!   runs them on tasks of their own: a slow callback never blocks this loop.
//! - The actor hears only of what changes its state: the end of a turn, a new session id.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use claude_protocol::{ControlResponse, Message};
use ractor::ActorRef;
use tokio::io::AsyncRead;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::{SessionMsg, TurnEnd};
use crate::events::{SessionEvent, SessionEventKind, SkipReason};
use crate::framing::{Framed, LineReader};
use crate::incoming::IncomingRequests;
use crate::ledger::TurnCost;

/// How many batches wait for a slow caller before the reader stops reading stdout.
const BACKLOG_LIMIT: usize = 4;

/// Frames go to a turn's stream in batches of at most this many: one channel send (and at most
/// one wake-up of the caller) per batch instead of per frame.
pub(crate) const BATCH_LIMIT: usize = 64;

/// Frames of one turn, in order.
pub(crate) type Batch = Vec<Message>;

/// The answer to one of our control requests: the `response` object, or the CLI's error message.
pub(crate) type ControlAnswer = Result<serde_json::Value, String>;

/// What the actor tells the reader.
#[derive(Debug)]
pub(crate) enum ReaderCmd {
    /// A turn is about to be written: route what follows to `sink`.
    BeginTurn {
        turn: u64,
        sink: mpsc::Sender<Batch>,
    },
    /// The turn was failed by the actor: discard its frames from now on.
    AbandonTurn { turn: u64 },
    /// A control request is about to be written: resolve `reply` with its answer.
    ExpectControl {
        request_id: String,
        reply: oneshot::Sender<ControlAnswer>,
    },
    /// An interrupt is under way: keep reading even when the caller does not.
    Draining,
}

/// When the last bytes arrived from the CLI, as milliseconds since `base`.
#[derive(Debug)]
pub(crate) struct Activity {
    base: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last bytes arrived, or since `since` if that is later.
    pub(crate) fn idle_since(&self, since: Instant) -> std::time::Duration {
        let last =
            self.base + std::time::Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Instant::now().saturating_duration_since(last.max(since))
    }

    /// Time since the last bytes arrived, if any did.
    pub(crate) fn last_frame_age(&self) -> Option<std::time::Duration> {
        let ms = self.last_ms.load(Ordering::Relaxed);
        (ms > 0).then(|| self.idle_since(self.base))
    }
}

struct RoutedTurn {
    id: u64,
    sink: Option<mpsc::Sender<Batch>>,
    /// Frames parsed since the last send.
    batch: Batch,
    backlog: VecDeque<Batch>,
    end: Option<TurnEnd>,
}

impl RoutedTurn {
    /// Sends the frames parsed so far, or queues them behind earlier batches.
    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let Some(sink) = &self.sink else { return };
        if !self.backlog.is_empty() {
            self.backlog.push_back(batch);
            return;
        }
        match sink.try_send(batch) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(batch)) => self.backlog.push_back(batch),
            Err(mpsc::error::TrySendError::Closed(_)) => self.sink = None,
        }
    }
}

pub(crate) struct Reader {
    session: Arc<str>,
    lines: LineReader<Pin<Box<dyn AsyncRead + Send>>>,
    commands: mpsc::UnboundedReceiver<ReaderCmd>,
    actor: ActorRef<SessionMsg>,
    events: broadcast::Sender<SessionEvent>,
    incoming: IncomingRequests,
    activity: Arc<Activity>,
    controls: HashMap<String, oneshot::Sender<ControlAnswer>>,
    turn: Option<RoutedTurn>,
    draining: bool,
    session_id: Option<String>,
}

enum Parsed {
    Frame(Box<Message>),
    Skipped {
        reason: SkipReason,
        len: usize,
        detail: Option<String>,
    },
}

impl Reader {
    pub(crate) fn new(
        session: Arc<str>,
        lines: LineReader<Pin<Box<dyn AsyncRead + Send>>>,
        commands: mpsc::UnboundedReceiver<ReaderCmd>,
        actor: ActorRef<SessionMsg>,
        events: broadcast::Sender<SessionEvent>,
        incoming: IncomingRequests,
        activity: Arc<Activity>,
    ) -> Self {
        Self {
            session,
            lines,
            commands,
            actor,
            events,
            incoming,
            activity,
            controls: HashMap::new(),
            turn: None,
            draining: false,
            session_id: None,
        }
    }

    fn backpressured(&self) -> bool {
        !self.draining
            && self
                .turn
                .as_ref()
                .is_some_and(|t| t.backlog.len() >= BACKLOG_LIMIT)
    }

    fn has_backlog(&self) -> bool {
        self.turn
            .as_ref()
            .is_some_and(|t| t.sink.is_some() && !t.backlog.is_empty())
    }

    pub(crate) async fn run(mut self) {
        let mut read_error = None;
        loop {
            while !self.backpressured() {
                let parsed = match self.lines.take() {
                    None => break,
                    Some(Framed::Line(line)) => match Message::from_slice(line) {
                        Ok(msg) => Parsed::Frame(Box::new(msg)),
                        Err(e) => Parsed::Skipped {
                            reason: SkipReason::Malformed,
                            len: line.len(),
                            detail: Some(e.to_string()),
                        },
                    },
                    Some(Framed::Oversize { len }) => Parsed::Skipped {
                        reason: SkipReason::Oversize,
                        len,
                        detail: None,
                    },
                };
                match parsed {
                    Parsed::Frame(msg) => self.route(*msg),
                    Parsed::Skipped {
                        reason,
                        len,
                        detail,
                    } => {
                        tracing::warn!(session = %self.session, ?reason, len, detail, "skipped a stdout line");
                        self.emit(SessionEventKind::FrameSkipped {
                            reason,
                            len,
                            detail,
                        });
                    }
                }
            }
            if let Some(t) = self.turn.as_mut() {
                t.flush();
            }
            self.finish_turn_if_delivered();
            if self.lines.is_done() && !self.has_backlog() {
                break;
            }
            let can_read = !self.backpressured() && !self.lines.is_done();
            let has_backlog = self.has_backlog();
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    // The actor is gone; nobody is left to route to.
                    None => return,
                },
                delivered = deliver(&mut self.turn), if has_backlog => {
                    if !delivered {
                        if let Some(t) = self.turn.as_mut() {
                            t.sink = None;
                            t.batch.clear();
                            t.backlog.clear();
                        }
                    }
                }
                read = self.lines.fill(), if can_read => match read {
                    Ok(_) => self.activity.touch(),
                    Err(e) => {
                        read_error = Some(e.to_string());
                        break;
                    }
                },
            }
        }
        let _ = self.actor.cast(SessionMsg::StdoutClosed(read_error));
    }

    fn command(&mut self, cmd: ReaderCmd) {
        match cmd {
            ReaderCmd::BeginTurn { turn, sink } => {
                self.draining = false;
                self.turn = Some(RoutedTurn {
                    id: turn,
                    sink: Some(sink),
                    batch: Vec::new(),
                    backlog: VecDeque::new(),
                    end: None,
                });
            }
            ReaderCmd::AbandonTurn { turn } => {
                if let Some(t) = self.turn.as_mut().filter(|t| t.id == turn) {
                    t.sink = None;
                    t.batch.clear();
                    t.backlog.clear();
                }
            }
            ReaderCmd::ExpectControl { request_id, reply } => {
                self.controls.insert(request_id, reply);
            }
            ReaderCmd::Draining => self.draining = true,
        }
    }

    fn emit(&self, kind: SessionEventKind) {
        let _ = self.events.send(SessionEvent {
            session: self.session.clone(),
            kind,
        });
    }

    fn note_session_id(&mut self, id: &str) {
        if self.session_id.as_deref() != Some(id) {
            self.session_id = Some(id.to_owned());
            let _ = self.actor.cast(SessionMsg::SessionId(id.to_owned()));
        }
    }

    fn route(&mut self, msg: Message) {
        let msg = match msg {
            Message::ControlResponse(resp) => {
                self.answer_control(resp);
                return;
            }
            Message::ControlRequest(req) => {
                self.incoming.dispatch(req);
                return;
            }
            Message::ControlCancelRequest(cancel) => {
                self.incoming.cancel(&cancel.request_id);
                return;
            }
            other => other,
        };
        match &msg {
            Message::Result(result) => {
                let id = result.session_id.clone();
                let end = TurnEnd {
                    is_error: result.is_error,
                    cumulative_usd: result.total_cost_usd,
                    usage: result.usage.as_ref().map(turn_cost_of).unwrap_or_default(),
                };
                self.note_session_id(&id);
                match self.turn.as_mut() {
                    Some(t) => t.end = Some(end),
                    None => {
                        self.emit(SessionEventKind::Unrouted {
                            frame_type: "result".into(),
                        });
                        return;
                    }
                }
            }
            // A `result` we could not type still ends the turn: judge it from its raw JSON.
            Message::Malformed(bad) if bad.type_name == "result" => {
                let raw = &bad.raw;
                let end = TurnEnd {
                    is_error: raw
                        .get("is_error")
                        .and_then(serde_json::Value::as_bool)
                        .unwrap_or(true),
                    cumulative_usd: raw
                        .get("total_cost_usd")
                        .and_then(serde_json::Value::as_f64),
                    usage: TurnCost::default(),
                };
                tracing::warn!(session = %self.session, reason = %bad.reason, "a `result` did not have the expected shape");
                match self.turn.as_mut() {
                    Some(t) => t.end = Some(end),
                    None => return,
                }
            }
            Message::System(system) => {
                if let Some(init) = system.as_init() {
                    let id = init.session_id.clone();
                    self.note_session_id(&id);
                }
            }
            Message::ConversationReset(_) => {
                let _ = self.actor.cast(SessionMsg::ConversationReset);
                if let Some(id) = msg.session_id().map(str::to_owned) {
                    self.note_session_id(&id);
                }
            }
            _ => {}
        }
        match self.turn.as_mut() {
            Some(t) => {
                if t.sink.is_some() {
                    t.batch.push(msg);
                    if t.batch.len() >= BATCH_LIMIT {
                        t.flush();
                    }
                }
            }
            None => self.emit(SessionEventKind::Unrouted {
                frame_type: frame_type(&msg),
            }),
        }
    }

    /// A turn is over once its `result` has reached the caller (or nobody is listening): only
    /// then may the actor write the next one.
    fn finish_turn_if_delivered(&mut self) {
        let done = self.turn.as_ref().is_some_and(|t| {
            t.end.is_some() && (t.sink.is_none() || (t.backlog.is_empty() && t.batch.is_empty()))
        });
        if done && let Some(t) = self.turn.take() {
            if let Some(end) = t.end {
                let _ = self
                    .actor
                    .cast(SessionMsg::TurnFinished { turn: t.id, end });
            }
        }
    }

    fn answer_control(&mut self, resp: ControlResponse) {
        let Some(waiter) = resp.request_id().and_then(|id| self.controls.remove(id)) else {
            tracing::debug!(session = %self.session, request_id = resp.request_id(), "answer to an unknown control request");
            return;
        };
        let _ = waiter.send(resp.into_result());
    }
}

/// A frame's `type`, with the subtype for `system` frames (`system/status`).
fn frame_type(msg: &Message) -> String {
    match msg {
        Message::System(s) => format!("system/{}", s.subtype()),
        other => other.type_name().to_owned(),
    }
}

/// Waits for room in the turn's channel and moves one frame over. False if the caller is gone.
async fn deliver(turn: &mut Option<RoutedTurn>) -> bool {
    let Some(t) = turn.as_mut() else { return true };
    let Some(sink) = t.sink.as_ref() else {
        return true;
    };
    match sink.reserve().await {
        Ok(permit) => {
            if let Some(batch) = t.backlog.pop_front() {
                permit.send(batch);
            }
            true
        }
        Err(_) => false,
    }
}

pub(crate) fn turn_cost_of(usage: &claude_protocol::Usage) -> TurnCost {
    TurnCost {
        cost_usd: 0.0,
        input_tokens: usage.input_tokens.unwrap_or(0),
        output_tokens: usage.output_tokens.unwrap_or(0),
        cache_read_input_tokens: usage.cache_read_input_tokens.unwrap_or(0),
        cache_creation_input_tokens: usage.cache_creation_input_tokens.unwrap_or(0),
    }
}

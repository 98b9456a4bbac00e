//! The stdout reader: frames lines, parses them, and routes each frame. Nothing else.
//!
//! - Frames of the running turn go to that turn's bounded channel. When the caller reads slowly,
//!   frames wait in a backlog and the reader stops reading stdout (so the CLI slows down, not
//!   memory use), while it keeps answering commands. Once an interrupt is under way it reads on
//!   regardless, so that the interrupt's answer is seen even if the caller is not reading. Time
//!   the turn spends held up by its caller stops the stall clock (see [`Activity`]): a slow
//!   consumer slows its own turn and is never reported as a stalled CLI.
//! - Answers to our control requests resolve their waiters directly.
//! - Requests from the CLI (permissions, hooks, SDK MCP) are handed to the control handler, which
//!   runs them on tasks of their own: a slow callback never blocks this loop.
//! - The actor hears only of what changes its state: the end of a turn, a new session id.
//! - `transcript_mirror` frames go to the mirror sink, never to a turn; with a sink, a turn's
//!   `result` is held (and stdout not read) until the sink has answered the turn's barrier.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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

/// When the last bytes arrived from the CLI, and the clock the stall detector reads.
///
/// Two clocks: `last_ms` is when bytes last arrived (reported in health as the last frame's age);
/// `progress_ms` is when the CLI was last known not to be stalled: bytes arrived, it was waiting
/// on one of our callbacks, or it was held up by a caller who does not read. While the turn's
/// frames wait for the caller (`waiting_on_caller`), the stall clock stands still: the reader has
/// stopped reading, so the CLI's silence is ours, not its own.
#[derive(Debug)]
pub(crate) struct Activity {
    base: Instant,
    last_ms: AtomicU64,
    progress_ms: AtomicU64,
    waiting_on_caller: AtomicBool,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
            progress_ms: AtomicU64::new(0),
            waiting_on_caller: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// Bytes arrived from the CLI.
    pub(crate) fn touch(&self) {
        let ms = self.now_ms();
        self.last_ms.store(ms, Ordering::Relaxed);
        self.progress_ms.store(ms, Ordering::Relaxed);
    }

    /// The CLI is silent for a reason of ours (it waits on a callback): not a stall.
    pub(crate) fn excuse(&self) {
        self.progress_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Whether the running turn's frames wait for room in the caller's stream. On the way out
    /// of such a wait the stall clock restarts: the time the caller spent not reading was not
    /// the CLI's silence.
    pub(crate) fn set_waiting_on_caller(&self, waiting: bool) {
        if self.waiting_on_caller.swap(waiting, Ordering::Relaxed) != waiting {
            self.excuse();
        }
    }

    /// How long the CLI has been silent on its own account, counted from `since` at the
    /// earliest: zero while the caller holds the turn up.
    pub(crate) fn idle_since(&self, since: Instant) -> std::time::Duration {
        if self.waiting_on_caller.load(Ordering::Relaxed) {
            return std::time::Duration::ZERO;
        }
        self.since_ms(&self.progress_ms, since)
    }

    fn since_ms(&self, clock: &AtomicU64, since: Instant) -> std::time::Duration {
        let last = self.base + std::time::Duration::from_millis(clock.load(Ordering::Relaxed));
        Instant::now().saturating_duration_since(last.max(since))
    }

    /// Time since the last bytes arrived, if any did.
    pub(crate) fn last_frame_age(&self) -> Option<std::time::Duration> {
        let ms = self.last_ms.load(Ordering::Relaxed);
        (ms > 0).then(|| self.since_ms(&self.last_ms, self.base))
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
    mirror: Option<crate::MirrorSink>,
    /// A `result` held until the mirror sink answers the turn's barrier.
    held: Option<HeldResult>,
}

struct HeldResult {
    msg: Message,
    end: TurnEnd,
    ack: oneshot::Receiver<()>,
}

// A stack temporary, moved once into `route`: boxing the frame would cost an allocation per
// frame on the hot path.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    Frame(Message),
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
            mirror: None,
            held: None,
        }
    }

    /// Sends `transcript_mirror` frames (and each turn's barrier) to `mirror`.
    pub(crate) fn with_mirror(mut self, mirror: Option<crate::MirrorSink>) -> Self {
        self.mirror = mirror;
        self
    }

    fn backpressured(&self) -> bool {
        // A held `result` stops reading: what follows must not overtake it.
        self.held.is_some()
            || !self.draining
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

    /// Whether the turn waits on its caller rather than on the CLI: its frames wait for room in
    /// the caller's stream, and either the reader has stopped reading for them (so the CLI is
    /// held up by us) or the CLI has already ended the turn. A slow caller is not a stall.
    fn held_up_by_caller(&self) -> bool {
        self.turn.as_ref().is_some_and(|t| {
            t.sink.is_some() && !t.backlog.is_empty() && (t.end.is_some() || self.backpressured())
        })
    }

    pub(crate) async fn run(mut self) {
        let mut read_error = None;
        loop {
            while !self.backpressured() {
                let parsed = match self.lines.take() {
                    None => break,
                    Some(Framed::Line(line)) => match Message::from_slice(line) {
                        Ok(msg) => Parsed::Frame(msg),
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
                    Parsed::Frame(msg) => self.route(msg),
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
            self.activity
                .set_waiting_on_caller(self.held_up_by_caller());
            if self.lines.is_done() && !self.has_backlog() && self.held.is_none() {
                break;
            }
            let can_read = !self.backpressured() && !self.lines.is_done();
            let has_backlog = self.has_backlog();
            let holding = self.held.is_some();
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    // The actor is gone; nobody is left to route to.
                    None => return,
                },
                // The sink answered (or is gone): the `result` goes on to its turn.
                _ = held_ack(&mut self.held), if holding => self.release_held(),
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
            Message::Unknown(v)
                if v.get("type").and_then(serde_json::Value::as_str)
                    == Some(claude_protocol::transcript::TRANSCRIPT_MIRROR_TYPE) =>
            {
                self.mirror_frame(&v);
                return;
            }
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
                    conversation_not_found: conversation_not_found(result),
                };
                self.note_session_id(&id);
                match self.turn.as_mut() {
                    Some(t) => match &self.mirror {
                        Some(sink) => {
                            let (ack, rx) = oneshot::channel();
                            let _ = sink.send(crate::MirrorEvent::TurnEnd { turn: t.id, ack });
                            self.held = Some(HeldResult { msg, end, ack: rx });
                            return;
                        }
                        None => t.end = Some(end),
                    },
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
                    conversation_not_found: None,
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
        self.push_to_turn(msg);
    }

    fn push_to_turn(&mut self, msg: Message) {
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

    fn mirror_frame(&mut self, raw: &serde_json::Value) {
        let Some(sink) = &self.mirror else { return };
        match claude_protocol::transcript::TranscriptMirror::from_value(raw) {
            Some(frame) => {
                let _ = sink.send(crate::MirrorEvent::Entries(frame));
            }
            None => {
                tracing::warn!(session = %self.session, "a `transcript_mirror` frame without `filePath` or `entries`");
                self.emit(SessionEventKind::FrameSkipped {
                    reason: SkipReason::Malformed,
                    len: 0,
                    detail: Some(
                        "a `transcript_mirror` frame without `filePath` or `entries`".into(),
                    ),
                });
            }
        }
    }

    fn release_held(&mut self) {
        let Some(held) = self.held.take() else { return };
        if let Some(t) = self.turn.as_mut() {
            t.end = Some(held.end);
        }
        self.push_to_turn(held.msg);
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

/// The held `result`'s barrier answer (an error when the sink dropped it: released all the same).
async fn held_ack(held: &mut Option<HeldResult>) {
    match held.as_mut() {
        Some(h) => {
            let _ = (&mut h.ack).await;
        }
        None => std::future::pending().await,
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

/// The id in a `result`'s "No conversation found with session ID: <id>" error: the CLI was asked
/// to `--resume` a conversation it does not have (2.1.329 answers the first turn so, then exits 1).
fn conversation_not_found(result: &claude_protocol::ResultMessage) -> Option<String> {
    const PREFIX: &str = "No conversation found with session ID:";
    result.errors().iter().find_map(|e| {
        e.strip_prefix(PREFIX)
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
    })
}

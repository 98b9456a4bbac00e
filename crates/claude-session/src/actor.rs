//! The session actor: one ractor actor owning one CLI process.
//!
//! The actor holds the turn queue and the session's state; three tasks do the I/O
//! ([`reader`], [`writer`], the stderr drain) and one waits for the process to exit. The actor
//! writes a turn only when the previous one has ended, so each turn is routed exactly the frames
//! between its user line and its `result`.
//!
//! Exits: a stop asked for by the owner runs the shutdown recipe in `post_stop` and ends the
//! actor normally; a CLI that dies on its own fails the running and queued turns with its exit
//! status and stderr tail, and the actor *fails* (ractor's `ActorFailed`), so a supervisor restarts
//! it. Should the actor be killed outright (which skips `post_stop`), dropping its state SIGKILLs
//! the process group: no process outlives its session.

mod reader;
mod writer;

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use claude_protocol::{ControlRequest, ControlRequestBody, Message, RequestIdGenerator};
use futures::FutureExt;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{OwnedSemaphorePermit, broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

pub(crate) use reader::{Activity, BATCH_LIMIT, Batch, ControlAnswer, ReaderCmd};
pub(crate) use writer::WriterCmd;

use crate::config::SessionConfig;
use crate::containment::{Containment, ContainmentUsage, MemoryEnforcement};
use crate::error::{ExitInfo, SessionError};
use crate::events::{SessionEvent, SessionEventKind};
use crate::framing::LineReader;
use crate::health::{HealthSnapshot, SessionStatus, StartPath, rss_bytes};
use crate::incoming::{ControlHandler, IncomingRequests};
use crate::launcher::{GroupSignal, LaunchContext};
use crate::ledger::TurnCost;
use crate::stderr::StderrTail;
use crate::turn::{Prompt, ServerInfo};

/// How a turn ended, as far as its caller's outcome channel is concerned.
pub(crate) type TurnOutcome = Result<TurnCost, SessionError>;

/// A turn waiting in the queue.
#[derive(Debug)]
pub(crate) struct PendingTurn {
    pub(crate) id: u64,
    pub(crate) prompt: Prompt,
    pub(crate) frames: mpsc::Sender<Batch>,
    pub(crate) outcome: oneshot::Sender<TurnOutcome>,
    pub(crate) permit: OwnedSemaphorePermit,
}

/// What the reader saw in a turn's `result`.
#[derive(Debug, Clone)]
pub(crate) struct TurnEnd {
    pub(crate) is_error: bool,
    pub(crate) cumulative_usd: Option<f64>,
    pub(crate) usage: TurnCost,
    /// The conversation `--resume` asked for, when the CLI answered that it does not have it.
    pub(crate) conversation_not_found: Option<String>,
}

/// The actor's mailbox.
#[derive(Debug)]
pub(crate) enum SessionMsg {
    Query(PendingTurn),
    CancelTurn(u64),
    /// `deadline`: when the caller stops waiting (the call's control timeout, from the call).
    Interrupt {
        reply: oneshot::Sender<Result<bool, SessionError>>,
        deadline: Instant,
    },
    Control {
        // Boxed: the control bodies are large, and every message of the mailbox pays for the
        // largest variant.
        body: Box<ControlRequestBody>,
        reply: oneshot::Sender<Result<serde_json::Value, SessionError>>,
        deadline: Instant,
    },
    Health(oneshot::Sender<HealthSnapshot>),
    /// Stop taking turns if none is running or queued; answers whether it did.
    CloseIfIdle(oneshot::Sender<bool>),
    TurnFinished {
        turn: u64,
        end: TurnEnd,
    },
    SessionId(String),
    ConversationReset,
    StdoutClosed(Option<String>),
    PipeFailed(String),
    ProcessExited(Result<ExitStatus, String>),
    /// The process exited and the reader has reached the end of its stdout: every frame it read
    /// is in the mailbox ahead of this message.
    ExitSettled(Result<ExitStatus, String>),
    Tick,
    /// Time to sample the tree's memory against the memory limit.
    MemoryTick,
}

/// What `Session::start` hands the actor.
pub(crate) struct StartArgs {
    pub(crate) config: SessionConfig,
    pub(crate) events: broadcast::Sender<SessionEvent>,
    pub(crate) info: Arc<OnceLock<ServerInfo>>,
    pub(crate) handler: Option<Arc<dyn ControlHandler>>,
    /// Where `transcript_mirror` frames go (dropped without one).
    pub(crate) mirror: Option<crate::MirrorSink>,
    /// Cleared before the actor fails or stops any turn, so that a caller who has seen a turn
    /// fail can never hand the next one to this dying instance.
    pub(crate) accepting: Arc<AtomicBool>,
}

pub(crate) struct SessionActor;

/// One running CLI process and the tasks around it.
struct Process {
    number: u64,
    pid: Option<u32>,
    launched_at: Instant,
    writer: mpsc::UnboundedSender<WriterCmd>,
    reader: mpsc::UnboundedSender<ReaderCmd>,
    /// Everything the CLI started (named for what the shutdown recipe does with it).
    signaller: Containment,
    exit: watch::Receiver<Option<Result<ExitStatus, String>>>,
    stderr: StderrTail,
    activity: Arc<Activity>,
    incoming: IncomingRequests,
    reader_task: JoinHandle<()>,
    stderr_task: JoinHandle<()>,
    other_tasks: Vec<JoinHandle<()>>,
    _spill_dir: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        // The last line of defence (an actor killed outright skips `post_stop`): nothing in the
        // containment may outlive the session. Harmless when it is already empty, and it can
        // only reach this launch's processes (pidfds and the launch's own cgroups, never a bare
        // pid that may have been reused).
        let _ = self.signaller.signal(GroupSignal::Kill);
        self.incoming.abort_all();
        self.reader_task.abort();
        self.stderr_task.abort();
        for task in &self.other_tasks {
            task.abort();
        }
    }
}

impl Process {
    fn exit_status(&self) -> Option<Result<ExitStatus, String>> {
        self.exit.borrow().clone()
    }

    async fn wait_exit(&mut self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.exit.wait_for(Option::is_some))
            .await
            .is_ok()
    }

    /// Waits (bounded) for stdout and stderr to reach their ends, so that every frame has been
    /// routed and the stderr tail is complete before an error is built from them.
    async fn settle_output(&mut self, limit: Duration) {
        // A task awaited to its end once is not awaited again (its output is gone).
        let _ = tokio::time::timeout(limit, async {
            if !self.reader_task.is_finished() {
                let _ = (&mut self.reader_task).await;
            }
            if !self.stderr_task.is_finished() {
                let _ = (&mut self.stderr_task).await;
            }
        })
        .await;
    }

    fn send_frame(&self, frame: &Message) {
        match serde_json::to_vec(frame) {
            Ok(line) => {
                let _ = self.writer.send(WriterCmd::Line(line));
            }
            Err(e) => tracing::error!(error = %e, "could not serialise a frame"),
        }
    }

    /// Writes a control request; the receiver resolves with its answer.
    fn send_control(
        &self,
        ids: &RequestIdGenerator,
        body: ControlRequestBody,
    ) -> oneshot::Receiver<ControlAnswer> {
        let (tx, rx) = oneshot::channel();
        let request_id = ids.next_id().0;
        let _ = self.reader.send(ReaderCmd::ExpectControl {
            request_id: request_id.clone(),
            reply: tx,
        });
        self.send_frame(&Message::ControlRequest(ControlRequest::new(
            request_id, body,
        )));
        rx
    }
}

struct ActiveTurn {
    id: u64,
    outcome: Option<oneshot::Sender<TurnOutcome>>,
    _permit: OwnedSemaphorePermit,
    started: Instant,
    stall_interrupt_at: Option<Instant>,
    /// When the turn timeout fired and the turn was interrupted (and failed).
    timeout_interrupt_at: Option<Instant>,
    /// The turn's `tracing` span, from dispatch to its end.
    span: tracing::Span,
}

pub(crate) struct State {
    config: SessionConfig,
    events: broadcast::Sender<SessionEvent>,
    process: Process,
    status: SessionStatus,
    queue: VecDeque<PendingTurn>,
    active: Option<ActiveTurn>,
    ids: RequestIdGenerator,
    turns_done: u64,
    cli_version: Option<String>,
    /// Why the runtime itself is bringing the process down (a stall, a lost pipe), if it is.
    failure: Option<Failure>,
    ticker: Option<JoinHandle<()>>,
    /// Whether a turn runs: the ticker runs only then.
    busy: watch::Sender<bool>,
    memory_ticker: Option<JoinHandle<()>>,
    accepting: Arc<AtomicBool>,
    /// How the process was started: cold, or from a warm spare.
    start: StartPath,
}

#[derive(Debug, Clone)]
enum Failure {
    Stalled {
        turn: u64,
        idle: Duration,
    },
    TurnTimeoutIgnored {
        turn: u64,
        timeout: Duration,
        control: Duration,
    },
    Disconnected(String),
    MemoryLimit {
        limit_bytes: u64,
        usage_bytes: u64,
        enforced_by: MemoryEnforcement,
    },
}

impl Drop for State {
    fn drop(&mut self) {
        if let Some(t) = &self.ticker {
            t.abort();
        }
        if let Some(t) = &self.memory_ticker {
            t.abort();
        }
    }
}

impl State {
    fn name(&self) -> String {
        self.config.name.to_string()
    }

    fn emit(&self, kind: SessionEventKind) {
        let _ = self.events.send(SessionEvent {
            session: self.config.name.clone(),
            kind,
        });
    }

    fn stderr_tail(&self) -> String {
        self.process.stderr.text()
    }

    fn try_dispatch(&mut self) {
        if self.active.is_some() || self.status != SessionStatus::Ready {
            return;
        }
        let Some(turn) = self.queue.pop_front() else {
            return;
        };
        let _ = self.process.reader.send(ReaderCmd::BeginTurn {
            turn: turn.id,
            sink: turn.frames,
        });
        self.process.send_frame(&turn.prompt.to_frame());
        self.active = Some(ActiveTurn {
            id: turn.id,
            outcome: Some(turn.outcome),
            _permit: turn.permit,
            started: Instant::now(),
            stall_interrupt_at: None,
            timeout_interrupt_at: None,
            span: tracing::info_span!("turn", session = %self.config.name, turn = turn.id),
        });
        self.status = SessionStatus::Busy;
        if let Some(active) = &self.active {
            active.span.in_scope(|| tracing::debug!("turn started"));
        }
        self.emit(SessionEventKind::TurnStarted { turn: turn.id });
    }

    /// Interrupts the running turn without waiting for the answer.
    fn interrupt_quietly(&self) {
        let _ = self.process.reader.send(ReaderCmd::Draining);
        // The answer is not awaited: the turn's end (or the stall detector) settles it.
        drop(
            self.process
                .send_control(&self.ids, ControlRequestBody::Interrupt),
        );
    }

    fn fail_active(&mut self, error: SessionError) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let turn = active.id;
        let _ = self.process.reader.send(ReaderCmd::AbandonTurn { turn });
        if let Some(outcome) = active.outcome.take() {
            let _ = self.events.send(SessionEvent {
                session: self.config.name.clone(),
                kind: SessionEventKind::TurnFailed {
                    turn,
                    error: error.to_string(),
                },
            });
            let _ = outcome.send(Err(error));
        }
    }

    /// Fails the running turn and every queued one; `make` builds each error from the running
    /// turn's id.
    fn fail_all(&mut self, make: impl Fn(Option<u64>) -> SessionError) {
        let running = self.active.as_ref().map(|a| a.id);
        if self.active.as_ref().is_some_and(|a| a.outcome.is_some()) {
            self.fail_active(make(running));
        }
        self.active = None;
        for turn in self.queue.drain(..) {
            let _ = turn.outcome.send(Err(make(running)));
        }
    }

    fn health(&self) -> HealthSnapshot {
        HealthSnapshot {
            name: self.name(),
            status: self.status,
            pid: self.process.pid,
            uptime: self.process.launched_at.elapsed(),
            session_id: self.config.ledger.session_id(),
            queue_len: self.queue.len(),
            turns: self.turns_done,
            last_frame_age: self.process.activity.last_frame_age(),
            cost: self.config.ledger.totals(),
            rss_bytes: rss_bytes(self.process.pid),
            cli_version: self.cli_version.clone(),
            containment: Some(self.containment_report()),
            process_tree: Some(self.process.signaller.clone()),
            start: self.start.clone(),
        }
    }

    /// The containment's report; a session with an egress policy that its launcher does not
    /// know of reports the policy as not enforced.
    fn containment_report(&self) -> crate::ContainmentReport {
        let mut report = self.process.signaller.report();
        if report.egress.is_none()
            && let Some(policy) = &self.config.egress
        {
            report.egress = Some(crate::EgressReport::not_enforced(
                policy,
                "the session's launcher does not enforce egress policies",
            ));
        }
        report
    }

    /// Samples the tree's memory against the memory limit: a kernel OOM kill in the session's
    /// memory cgroup (a kernel-enforced limit), or usage past the limit (a checked one), stops
    /// the CLI so that the session fails and is restarted with its conversation.
    fn check_memory(&mut self) {
        let Some(limit_bytes) = self.config.memory_limit else {
            return;
        };
        if self.failure.is_some() || self.status == SessionStatus::Stopping {
            return;
        }
        let usage = self.process.signaller.usage();
        let Some((usage_bytes, enforced_by)) =
            memory_exceeded(&self.process.signaller, limit_bytes, &usage)
        else {
            return;
        };
        tracing::error!(session = %self.config.name, limit_bytes, usage_bytes, enforced_by = enforced_by.as_str(), "memory limit exceeded: stopping the CLI");
        self.accepting.store(false, Ordering::SeqCst);
        self.note_memory_limit(limit_bytes, usage_bytes, enforced_by);
        self.emit(SessionEventKind::Signalled { signal: "SIGKILL" });
        let _ = self.process.signaller.signal(GroupSignal::Kill);
    }

    fn note_memory_limit(
        &mut self,
        limit_bytes: u64,
        usage_bytes: u64,
        enforced_by: MemoryEnforcement,
    ) {
        self.emit(SessionEventKind::MemoryLimitExceeded {
            limit_bytes,
            usage_bytes,
            enforced_by: enforced_by.as_str(),
        });
        self.failure = Some(Failure::MemoryLimit {
            limit_bytes,
            usage_bytes,
            enforced_by,
        });
    }

    fn on_tick(&mut self) {
        // The CLI is already being brought down; its exit settles the turns.
        if self.failure.is_some() {
            return;
        }
        let timeouts = self.config.timeouts.clone();
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let now = Instant::now();
        if let Some(limit) = timeouts.turn {
            match active.timeout_interrupt_at {
                None if now.duration_since(active.started) >= limit => {
                    active.timeout_interrupt_at = Some(now);
                    let turn = active.id;
                    tracing::warn!(session = %self.config.name, turn, "turn timeout: interrupting");
                    self.interrupt_quietly();
                    self.fail_active(SessionError::TurnTimeout {
                        session: self.name(),
                        turn,
                        timeout: limit,
                    });
                    return;
                }
                // The interrupt was ignored (a wedged CLI): stop the CLI, so that the session
                // fails and is restarted instead of staying busy with a turn nobody waits for.
                Some(at) if now.duration_since(at) >= timeouts.control => {
                    let turn = active.id;
                    tracing::error!(session = %self.config.name, turn, "timed-out turn did not end when interrupted: stopping the CLI");
                    self.accepting.store(false, Ordering::SeqCst);
                    self.failure = Some(Failure::TurnTimeoutIgnored {
                        turn,
                        timeout: limit,
                        control: timeouts.control,
                    });
                    self.emit(SessionEventKind::Signalled { signal: "SIGKILL" });
                    let _ = self.process.signaller.signal(GroupSignal::Kill);
                    return;
                }
                // The timed-out turn's interrupt is under way: the escalation above owns it.
                Some(_) => return,
                None => {}
            }
        }
        let Some(stall) = timeouts.stall else { return };
        // While one of our callbacks runs (a permission asked of a person, say) the CLI waits on
        // us: silence is not a stall. The callback's own deadline bounds the wait.
        if self.process.incoming.in_flight() {
            self.process.activity.excuse();
            return;
        }
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let idle = self.process.activity.idle_since(active.started);
        match active.stall_interrupt_at {
            None if idle >= stall => {
                active.stall_interrupt_at = Some(now);
                tracing::warn!(session = %self.config.name, turn = active.id, ?idle, "turn stalled: interrupting");
                self.interrupt_quietly();
            }
            Some(at) if now.duration_since(at) >= timeouts.control && idle >= stall => {
                let (turn, idle) = (active.id, idle);
                tracing::error!(session = %self.config.name, turn, ?idle, "stalled turn did not end when interrupted: stopping the CLI");
                self.accepting.store(false, Ordering::SeqCst);
                self.fail_active(SessionError::Stalled {
                    session: self.name(),
                    turn,
                    idle,
                });
                self.failure = Some(Failure::Stalled { turn, idle });
                self.emit(SessionEventKind::Signalled { signal: "SIGKILL" });
                let _ = self.process.signaller.signal(GroupSignal::Kill);
            }
            _ => {}
        }
    }

    /// The process ended without being asked to: fail every turn, clean up, and return the error
    /// the actor fails with.
    async fn on_unexpected_exit(&mut self, status: Result<ExitStatus, String>) -> SessionError {
        self.accepting.store(false, Ordering::SeqCst);
        self.process.settle_output(Duration::from_secs(1)).await;
        // Whatever the CLI left in its group (tool processes, MCP servers) goes with it.
        let _ = self.process.signaller.signal(GroupSignal::Kill);
        let stderr_tail = self.stderr_tail();
        let session = self.name();
        let status_text = match &status {
            Ok(s) => ExitInfo(*s).to_string(),
            Err(e) => e.clone(),
        };
        self.emit(SessionEventKind::ProcessExited {
            status: status_text.clone(),
            expected: false,
        });
        // The kernel's OOM killer may have chosen the CLI itself: that is the memory limit too.
        if self.failure.is_none()
            && let Some(limit_bytes) = self.config.memory_limit
            && let Some((usage_bytes, enforced_by)) = memory_exceeded(
                &self.process.signaller,
                limit_bytes,
                &self.process.signaller.usage(),
            )
        {
            self.note_memory_limit(limit_bytes, usage_bytes, enforced_by);
        }
        let failure = self.failure.clone();
        let make = |turn: Option<u64>| match (&failure, &status) {
            (
                Some(Failure::MemoryLimit {
                    limit_bytes,
                    usage_bytes,
                    enforced_by,
                }),
                _,
            ) => SessionError::MemoryLimitExceeded {
                session: session.clone(),
                limit_bytes: *limit_bytes,
                usage_bytes: *usage_bytes,
                enforced_by: enforced_by.as_str(),
            },
            (Some(Failure::Stalled { turn, idle }), _) => SessionError::Stalled {
                session: session.clone(),
                turn: *turn,
                idle: *idle,
            },
            (
                Some(Failure::TurnTimeoutIgnored {
                    turn,
                    timeout,
                    control,
                }),
                _,
            ) => SessionError::TurnTimeoutIgnored {
                session: session.clone(),
                turn: *turn,
                timeout: *timeout,
                control: *control,
            },
            (Some(Failure::Disconnected(detail)), _) | (None, Err(detail)) => {
                SessionError::Disconnected {
                    session: session.clone(),
                    detail: detail.clone(),
                    stderr_tail: stderr_tail.clone(),
                }
            }
            (None, Ok(s)) => SessionError::Exited {
                session: session.clone(),
                turn,
                status: ExitInfo(*s),
                stderr_tail: stderr_tail.clone(),
            },
        };
        let error = make(self.active.as_ref().map(|a| a.id));
        tracing::error!(session = %self.config.name, status = %status_text, error = %error, "the CLI exited unexpectedly");
        self.fail_all(make);
        self.status = SessionStatus::Stopping;
        error
    }

    /// The shutdown recipe: interrupt (if busy) → close stdin → grace → SIGTERM the group →
    /// grace → SIGKILL the group → reap. It takes at most [`shutdown_bound`].
    async fn shut_down(&mut self) {
        self.accepting.store(false, Ordering::SeqCst);
        self.status = SessionStatus::Stopping;
        let timeouts = self.config.timeouts.clone();
        if self.process.exit_status().is_none() {
            if self.active.is_some() {
                let answer = self
                    .process
                    .send_control(&self.ids, ControlRequestBody::Interrupt);
                let _ = self.process.reader.send(ReaderCmd::Draining);
                let _ = tokio::time::timeout(timeouts.control, answer).await;
            }
            let _ = self.process.writer.send(WriterCmd::Close);
            if !self.process.wait_exit(timeouts.stdin_grace).await {
                tracing::debug!(session = %self.config.name, "CLI still running after stdin closed: SIGTERM");
                self.emit(SessionEventKind::Signalled { signal: "SIGTERM" });
                let _ = self.process.signaller.signal(GroupSignal::Terminate);
                if !self.process.wait_exit(timeouts.term_grace).await {
                    tracing::warn!(session = %self.config.name, "CLI still running after SIGTERM: SIGKILL");
                    self.emit(SessionEventKind::Signalled { signal: "SIGKILL" });
                    let _ = self.process.signaller.signal(GroupSignal::Kill);
                    self.process.wait_exit(REAP_AFTER_KILL).await;
                }
            }
        }
        // Descendants that outlived the CLI (a tool that ignores SIGTERM, say) go now.
        let _ = self.process.signaller.signal(GroupSignal::Kill);
        self.process.settle_output(SETTLE_AT_STOP).await;
        if let Some(status) = self.process.exit_status() {
            let status = match status {
                Ok(s) => ExitInfo(s).to_string(),
                Err(e) => e,
            };
            self.emit(SessionEventKind::ProcessExited {
                status,
                expected: true,
            });
        }
        let session = self.name();
        self.fail_all(|_| SessionError::Stopped {
            session: session.clone(),
        });
    }
}

/// How long the shutdown recipe waits for the CLI to be reaped after its SIGKILL.
const REAP_AFTER_KILL: Duration = Duration::from_secs(10);
/// How long the shutdown recipe waits for stdout and stderr to reach their ends.
const SETTLE_AT_STOP: Duration = Duration::from_millis(500);
/// What the actor may take beyond the recipe's own waits to get to it and wind down (a message
/// being handled when the stop came, the last events).
const STOP_SLACK: Duration = Duration::from_secs(2);

/// The longest a stop can take when the actor is not stuck: the recipe's waits (interrupt
/// answer, stdin grace, SIGTERM grace, reaping after SIGKILL, settling the pipes) plus slack.
/// [`Session::stop`](crate::Session::stop) waits no longer.
pub(crate) fn shutdown_bound(timeouts: &crate::config::Timeouts) -> Duration {
    timeouts.control
        + timeouts.stdin_grace
        + timeouts.term_grace
        + REAP_AFTER_KILL
        + SETTLE_AT_STOP
        + STOP_SLACK
}

/// Starts the session's CLI — from a warm spare of its pool when it can, else cold — starts the
/// I/O tasks, and answers `initialize`; on any failure the process is killed and reaped before
/// the error is returned. Also says which path the start took.
async fn launch(
    myself: &ActorRef<SessionMsg>,
    args: &StartArgs,
    number: u64,
) -> Result<(Process, serde_json::Value, StartPath), SessionError> {
    let config = &args.config;
    let options = config.launch_options();
    let cold_reason = match &config.spares {
        None => None,
        Some(pool) => match pool.take_for(config, &options) {
            Err(reason) => Some(reason),
            Ok(spare) => match start_warm(myself, args, number, &options, spare).await {
                Ok(started) => return started,
                Err(reason) => Some(reason),
            },
        },
    };
    let path = match cold_reason {
        None => StartPath::Cold,
        Some(reason) => {
            tracing::debug!(session = %config.name, %reason, "no warm spare: starting cold");
            StartPath::ColdFallback { reason }
        }
    };
    let (launched, spill_dir) = spawn_cold(config, &options).await?;
    let process = start_io(myself, args, number, launched, None, spill_dir);
    let (process, init) = initialize(args, &options, process).await?;
    Ok((process, init, path))
}

/// A spare from the session's pool, claimed for it, then `initialize`d. The claim runs on the
/// spare's pipes before the session's I/O tasks start, so a refused claim leaves no trace in the
/// session: the spare is killed and the reason returned (the session then starts cold). Once
/// claimed, the process is the session's, and a failed `initialize` is the session's error.
async fn start_warm(
    myself: &ActorRef<SessionMsg>,
    args: &StartArgs,
    number: u64,
    options: &claude_protocol::ClaudeOptions,
    spare: crate::spares::Spare,
) -> Result<Result<(Process, serde_json::Value, StartPath), SessionError>, String> {
    let config = &args.config;
    let parked = spare.parked_for();
    let (launched, lines, spill_dir) = spare
        .claim(&config.name, config.max_line_bytes, config.timeouts.init)
        .await?;
    let process = start_io(myself, args, number, launched, Some(lines), spill_dir);
    Ok(initialize(args, options, process)
        .await
        .map(|(process, init)| (process, init, StartPath::Warm { parked })))
}

/// Spawns the session's CLI through its launcher, with a spill directory of its own.
async fn spawn_cold(
    config: &SessionConfig,
    options: &claude_protocol::ClaudeOptions,
) -> Result<(crate::LaunchedProcess, tempfile::TempDir), SessionError> {
    let session = config.name.to_string();
    let spill_dir = tempfile::Builder::new()
        .prefix("claude-session-")
        .tempdir()
        .map_err(|e| SessionError::Launch {
            session: session.clone(),
            source: crate::LaunchError::Other(format!("could not create a spill directory: {e}")),
        })?;
    let spec = options
        .command(&config.cli_path, Some(spill_dir.path()))
        .map_err(|source| SessionError::Options {
            session: session.clone(),
            source,
        })?;
    let launched = spawn_process(config, config.name.clone(), spec).await?;
    Ok((launched, spill_dir))
}

/// Launches `spec` for `config` (its environment, home, containment, memory limit, egress),
/// named `name` in the launch context, bounded by the init timeout; a launcher's panic or a
/// containment weaker than required is a launch error.
pub(crate) async fn spawn_process(
    config: &SessionConfig,
    name: Arc<str>,
    mut spec: claude_protocol::CommandSpec,
) -> Result<crate::LaunchedProcess, SessionError> {
    let session = config.name.to_string();
    let ctx = LaunchContext::new(name)
        .containment(config.containment.clone())
        .memory_limit(config.memory_limit)
        .egress(config.egress.clone());
    config.apply_environment(&mut spec, &ctx.launch_id);
    config.prepare_home().map_err(|e| SessionError::Launch {
        session: session.clone(),
        source: crate::LaunchError::Other(format!(
            "could not create the session's home directories: {e}"
        )),
    })?;
    // The launcher is user code: a panic in it (while called, or in its future) is a launch
    // error of this session, never the actor's or the program's.
    let launching =
        AssertUnwindSafe(async { config.launcher.launch_with(&spec, &ctx).await }).catch_unwind();
    // Bounded like the rest of the start: a launcher that never finishes (a remote link that
    // hangs) must not hold `Session::start` for ever.
    let launched = match tokio::time::timeout(config.timeouts.init, launching).await {
        Ok(Ok(launched)) => launched,
        Ok(Err(panic)) => Err(crate::LaunchError::Other(format!(
            "the launcher panicked: {}",
            crate::callbacks::panic_message(&*panic)
        ))),
        Err(_) => {
            return Err(SessionError::LaunchTimeout {
                session,
                timeout: config.timeouts.init,
            });
        }
    }
    .map_err(|source| SessionError::Launch {
        session: session.clone(),
        source,
    })?;
    // A launcher that ignored the context must not pass off a weaker mechanism as the one
    // required.
    if ctx.containment.is_required()
        && !ctx.containment.order().contains(&launched.signaller.kind())
    {
        let got = launched.signaller.kind();
        let _ = launched.signaller.signal(GroupSignal::Kill);
        return Err(SessionError::Launch {
            session,
            source: crate::LaunchError::ContainmentUnavailable {
                required: ctx.containment.order().first().copied(),
                tried: format!(
                    "the launcher {:?} contained the CLI by {got}",
                    config.launcher
                ),
            },
        });
    }
    Ok(launched)
}

/// Awaits a launcher's exit future. A panic in it (the launcher is user code) still reports the
/// process as gone, else the session would wait for an exit it never hears of.
pub(crate) async fn exit_status(
    exit: futures::future::BoxFuture<'static, std::io::Result<ExitStatus>>,
) -> Result<ExitStatus, String> {
    match AssertUnwindSafe(exit).catch_unwind().await {
        Ok(status) => status.map_err(|e| format!("waiting for the CLI failed: {e}")),
        Err(panic) => Err(format!(
            "the launcher's exit future panicked: {}",
            crate::callbacks::panic_message(&*panic)
        )),
    }
}

/// Starts the I/O tasks around a launched process (writer, reader, stderr drain, exit watch)
/// and announces it (`Spawned`). `lines`: its stdout, when something read from it already.
fn start_io(
    myself: &ActorRef<SessionMsg>,
    args: &StartArgs,
    number: u64,
    launched: crate::LaunchedProcess,
    lines: Option<crate::spares::Lines>,
    spill_dir: tempfile::TempDir,
) -> Process {
    let config = &args.config;
    config.ledger.begin_process(number);
    let span =
        tracing::info_span!("session", name = %config.name, process = number, pid = launched.pid);

    let (writer_tx, writer_rx) = mpsc::unbounded_channel();
    let (reader_tx, reader_rx) = mpsc::unbounded_channel();
    let (exit_tx, exit_rx) = watch::channel(None);
    let stderr = StderrTail::new(config.stderr_tail_bytes);
    let activity = Arc::new(Activity::new());
    let incoming = IncomingRequests::new(
        config.name.clone(),
        args.handler.clone().or_else(|| {
            config
                .callbacks
                .clone()
                .map(|c| Arc::new(c) as Arc<dyn ControlHandler>)
        }),
        writer_tx.clone(),
        config.timeouts.control.max(Duration::from_secs(60)),
    );

    let writer_task = tokio::spawn(
        writer::run(launched.stdin, writer_rx, myself.clone()).instrument(span.clone()),
    );
    let stderr_task = tokio::spawn(
        stderr
            .clone()
            .drain(launched.stderr, config.name.clone())
            .instrument(span.clone()),
    );
    let exit_actor = myself.clone();
    let exit_future = launched.exit;
    let exit_task = tokio::spawn(async move {
        let status = exit_status(exit_future).await;
        let _ = exit_tx.send(Some(status.clone()));
        let _ = exit_actor.cast(SessionMsg::ProcessExited(status));
    });
    let reader = reader::Reader::new(
        config.name.clone(),
        lines.unwrap_or_else(|| LineReader::new(launched.stdout, config.max_line_bytes)),
        reader_rx,
        myself.clone(),
        args.events.clone(),
        incoming.clone(),
        activity.clone(),
    )
    .with_mirror(args.mirror.clone());
    let reader_task = tokio::spawn(reader.run().instrument(span));
    let process = Process {
        number,
        pid: launched.pid,
        launched_at: Instant::now(),
        writer: writer_tx,
        reader: reader_tx,
        signaller: Containment::from_arc(launched.signaller),
        exit: exit_rx,
        stderr,
        activity,
        incoming,
        reader_task,
        stderr_task,
        other_tasks: vec![writer_task, exit_task],
        _spill_dir: spill_dir,
    };
    let _ = args.events.send(SessionEvent {
        session: config.name.clone(),
        kind: SessionEventKind::Spawned {
            pid: process.pid,
            process: number,
        },
    });
    process
}

/// Sends `initialize` and waits (bounded by the init timeout) for its answer; on a refusal, an
/// exit or a timeout the process is killed and reaped and the error names the cause.
async fn initialize(
    args: &StartArgs,
    options: &claude_protocol::ClaudeOptions,
    mut process: Process,
) -> Result<(Process, serde_json::Value), SessionError> {
    let config = &args.config;
    let session = config.name.to_string();
    let ids = RequestIdGenerator::new();
    let answer = process.send_control(
        &ids,
        ControlRequestBody::Initialize(config.initialize_request(options)),
    );
    let timeout = config.timeouts.init;
    enum InitFailure {
        Rejected(String),
        Exited,
        Timeout,
        CliTooOld(claude_protocol::CliVersion),
    }
    let outcome = tokio::select! {
        answer = answer => match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(InitFailure::Rejected(message)),
            // The reader ended: the process closed its stdout, so it is exiting.
            Err(_) => Err(InitFailure::Exited),
        },
        _ = process.exit.wait_for(Option::is_some) => Err(InitFailure::Exited),
        _ = tokio::time::sleep(timeout) => Err(InitFailure::Timeout),
    };
    let failure = match outcome {
        Ok(value) => match check_cli_version(args, &value) {
            Ok(()) => return Ok((process, value)),
            Err(found) => InitFailure::CliTooOld(found),
        },
        Err(failure) => failure,
    };
    if matches!(failure, InitFailure::Exited) {
        // Let a process that closed its stdout finish exiting, so its own status is reported.
        process.wait_exit(Duration::from_secs(1)).await;
    }
    let exited_by_itself = process.exit_status();
    let _ = process.signaller.signal(GroupSignal::Kill);
    process.wait_exit(Duration::from_secs(10)).await;
    process.settle_output(Duration::from_secs(1)).await;
    let stderr_tail = process.stderr.text();
    Err(match failure {
        InitFailure::Rejected(message) => SessionError::InitRejected { session, message },
        InitFailure::CliTooOld(found) => SessionError::CliTooOld {
            session,
            found,
            minimum: claude_protocol::SUPPORTED_CLI.minimum,
        },
        InitFailure::Timeout => SessionError::InitTimeout {
            session,
            timeout,
            stderr_tail,
        },
        InitFailure::Exited => match exited_by_itself {
            Some(Ok(status)) => SessionError::ExitedDuringStart {
                session,
                status: ExitInfo(status),
                stderr_tail,
            },
            Some(Err(detail)) => SessionError::Disconnected {
                session,
                detail,
                stderr_tail,
            },
            None => SessionError::Disconnected {
                session,
                detail: "the CLI closed its stdout before answering `initialize`".into(),
                stderr_tail,
            },
        },
    })
}

/// Applies the supported range (`claude_protocol::SUPPORTED_CLI`) to the version the CLI reported
/// in its `initialize` answer: `Err(version)` when it is older than the minimum; a
/// [`SessionEventKind::CliVersionUntested`] event (and a warning) when it is newer than the newest
/// tested one. An answer without a readable version passes: the range cannot be judged.
fn check_cli_version(
    args: &StartArgs,
    answer: &serde_json::Value,
) -> Result<(), claude_protocol::CliVersion> {
    use claude_protocol::{CliSupport, SUPPORTED_CLI};
    let Some(found) = answer
        .get("claude_code_version")
        .and_then(serde_json::Value::as_str)
        .and_then(|v| v.parse().ok())
    else {
        return Ok(());
    };
    match SUPPORTED_CLI.support(found) {
        CliSupport::TooOld { .. } => Err(found),
        CliSupport::NewerThanTested { newest_tested } => {
            tracing::warn!(session = %args.config.name, %found, %newest_tested,
                "the Claude CLI is newer than the newest tested version; running it anyway");
            let _ = args.events.send(SessionEvent {
                session: args.config.name.clone(),
                kind: SessionEventKind::CliVersionUntested {
                    found,
                    newest_tested,
                },
            });
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether `usage` is past the memory limit: for a kernel-enforced limit, an OOM kill in the
/// session's memory cgroup; for a checked one, memory past the limit. The usage reported and
/// what enforced it.
fn memory_exceeded(
    containment: &Containment,
    limit_bytes: u64,
    usage: &ContainmentUsage,
) -> Option<(u64, MemoryEnforcement)> {
    let enforced_by = containment
        .memory_limit()
        .map_or(MemoryEnforcement::Checked, |(_, e)| e);
    match enforced_by {
        MemoryEnforcement::Cgroup => usage.oom_kills.is_some_and(|n| n > 0).then(|| {
            (
                usage.memory_bytes.unwrap_or(limit_bytes).max(limit_bytes),
                enforced_by,
            )
        }),
        _ => usage
            .memory_bytes
            .filter(|used| *used > limit_bytes)
            .map(|used| (used, enforced_by)),
    }
}

/// A ticker that samples the tree's memory, when the session has a memory limit.
fn spawn_memory_ticker(
    myself: &ActorRef<SessionMsg>,
    config: &SessionConfig,
) -> Option<JoinHandle<()>> {
    config.memory_limit?;
    let period = config.memory_check_interval;
    let actor = myself.clone();
    Some(tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if actor.cast(SessionMsg::MemoryTick).is_err() {
                return;
            }
        }
    }))
}

/// A ticker for the stall and turn-timeout checks. It ticks only while a turn runs (`busy`):
/// an idle session costs no wake-ups.
fn spawn_ticker(
    myself: &ActorRef<SessionMsg>,
    config: &SessionConfig,
    mut busy: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    let shortest = [config.timeouts.stall, config.timeouts.turn]
        .into_iter()
        .flatten()
        .min()?;
    let period = (shortest / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
    let actor = myself.clone();
    Some(tokio::spawn(async move {
        loop {
            if busy.wait_for(|b| *b).await.is_err() {
                return;
            }
            let mut interval =
                tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while *busy.borrow() {
                interval.tick().await;
                if actor.cast(SessionMsg::Tick).is_err() {
                    return;
                }
            }
        }
    }))
}

impl Actor for SessionActor {
    type Msg = SessionMsg;
    type State = State;
    type Arguments = StartArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SessionMsg>,
        args: StartArgs,
    ) -> Result<State, ActorProcessingErr> {
        let (process, init, start) = launch(&myself, &args, 1).await?;
        let info = ServerInfo::from_initialize(init);
        let cli_version = info.cli_version().map(str::to_owned);
        let _ = args.info.set(info);
        let _ = args.events.send(SessionEvent {
            session: args.config.name.clone(),
            kind: SessionEventKind::Initialized {
                cli_version: cli_version.clone(),
            },
        });
        tracing::info!(session = %args.config.name, pid = process.pid, cli_version, "session ready");
        let (busy, busy_rx) = watch::channel(false);
        let ticker = spawn_ticker(&myself, &args.config, busy_rx);
        let memory_ticker = spawn_memory_ticker(&myself, &args.config);
        Ok(State {
            config: args.config,
            events: args.events,
            process,
            status: SessionStatus::Ready,
            queue: VecDeque::new(),
            active: None,
            ids: RequestIdGenerator::new(),
            turns_done: 0,
            cli_version,
            failure: None,
            ticker,
            busy,
            memory_ticker,
            accepting: args.accepting,
            start,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SessionMsg>,
        msg: SessionMsg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SessionMsg::Query(turn) => {
                if !state.accepting.load(Ordering::SeqCst) {
                    // Closed after the caller looked (`close_if_idle`, a failure): refused
                    // before it starts, so the caller sends it to the next instance.
                    let _ = turn.outcome.send(Err(SessionError::NotRunning {
                        session: state.name(),
                    }));
                    return Ok(());
                }
                state.queue.push_back(turn);
                state.try_dispatch();
            }
            SessionMsg::CancelTurn(id) => {
                if let Some(pos) = state.queue.iter().position(|t| t.id == id) {
                    if let Some(turn) = state.queue.remove(pos) {
                        let _ = turn.outcome.send(Err(SessionError::Cancelled {
                            session: state.name(),
                            turn: id,
                        }));
                    }
                } else if state.active.as_ref().is_some_and(|a| a.id == id)
                    && state.config.interrupt_on_drop
                {
                    tracing::debug!(session = %state.config.name, turn = id, "stream dropped: interrupting its turn");
                    state.interrupt_quietly();
                }
            }
            SessionMsg::Interrupt { reply, deadline } => {
                if state.active.is_none() {
                    let _ = reply.send(Ok(false));
                } else {
                    let _ = state.process.reader.send(ReaderCmd::Draining);
                    let answer = state
                        .process
                        .send_control(&state.ids, ControlRequestBody::Interrupt);
                    let (session, timeout) = (state.name(), state.config.timeouts.control);
                    tokio::spawn(async move {
                        let _ = reply.send(
                            await_control(session, "interrupt", timeout, deadline, answer)
                                .await
                                .map(|_| true),
                        );
                    });
                }
            }
            SessionMsg::Control {
                body,
                reply,
                deadline,
            } => {
                let subtype = body.subtype().to_owned();
                let answer = state.process.send_control(&state.ids, *body);
                let (session, timeout) = (state.name(), state.config.timeouts.control);
                tokio::spawn(async move {
                    let _ = reply
                        .send(await_control(session, &subtype, timeout, deadline, answer).await);
                });
            }
            SessionMsg::Health(reply) => {
                let _ = reply.send(state.health());
            }
            SessionMsg::CloseIfIdle(reply) => {
                // Ordered with the queries in the mailbox: a turn that arrived first keeps the
                // session open; one that arrives after is refused (`NotRunning`) and goes to
                // the next instance.
                let idle = state.active.is_none() && state.queue.is_empty();
                if idle {
                    state.accepting.store(false, Ordering::SeqCst);
                }
                let _ = reply.send(idle);
            }
            SessionMsg::TurnFinished { turn, end } => {
                if state.active.as_ref().is_some_and(|a| a.id == turn) {
                    let active = state.active.take();
                    let cost = state.config.ledger.record_result(
                        state.process.number,
                        end.cumulative_usd,
                        end.usage,
                    );
                    state.turns_done += 1;
                    if let Some(active) = active {
                        active.span.in_scope(|| {
                            tracing::debug!(
                                is_error = end.is_error,
                                cost_usd = cost.cost_usd,
                                "turn finished"
                            )
                        });
                        if let Some(outcome) = active.outcome {
                            let _ = outcome.send(Ok(cost));
                        }
                    }
                    if let Some(session_id) = end.conversation_not_found {
                        state.emit(SessionEventKind::ConversationNotFound { session_id });
                    }
                    state.emit(SessionEventKind::TurnFinished {
                        turn,
                        is_error: end.is_error,
                        cost,
                    });
                    state.status = SessionStatus::Ready;
                    state.try_dispatch();
                }
            }
            SessionMsg::SessionId(id) => {
                if state.config.ledger.session_id().as_deref() != Some(id.as_str()) {
                    state.config.ledger.set_session_id(&id);
                    state.emit(SessionEventKind::SessionIdChanged { session_id: id });
                }
            }
            SessionMsg::ConversationReset => state.config.ledger.rebase(),
            SessionMsg::StdoutClosed(detail) => {
                if state.process.exit_status().is_none() && state.failure.is_none() {
                    let detail = detail.map_or_else(
                        || "the CLI closed its stdout".to_owned(),
                        |e| format!("reading the CLI's stdout failed: {e}"),
                    );
                    // Wait briefly for a process that is simply exiting; otherwise it is wedged.
                    if !state.process.wait_exit(Duration::from_secs(1)).await {
                        state.failure = Some(Failure::Disconnected(detail));
                        let _ = state.process.signaller.signal(GroupSignal::Kill);
                    }
                }
            }
            SessionMsg::PipeFailed(detail) => {
                if state.process.exit_status().is_none() && state.failure.is_none() {
                    state.failure = Some(Failure::Disconnected(detail));
                    let _ = state.process.signaller.signal(GroupSignal::Kill);
                }
            }
            SessionMsg::ProcessExited(status) => {
                if state.status != SessionStatus::Stopping {
                    // What the CLI wrote before it exited (a turn's `result`, say "No
                    // conversation found") is still on its way: let the reader reach the end of
                    // stdout, then handle the exit after the frames it read.
                    state.accepting.store(false, Ordering::SeqCst);
                    state.process.settle_output(Duration::from_secs(1)).await;
                    let _ = myself.cast(SessionMsg::ExitSettled(status));
                }
            }
            SessionMsg::ExitSettled(status) => {
                if state.status != SessionStatus::Stopping {
                    let error = state.on_unexpected_exit(status).await;
                    return Err(Box::new(error));
                }
            }
            SessionMsg::Tick => state.on_tick(),
            SessionMsg::MemoryTick => state.check_memory(),
        }
        let busy = state.active.is_some();
        state
            .busy
            .send_if_modified(|b| std::mem::replace(b, busy) != busy);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SessionMsg>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        state.shut_down().await;
        tracing::info!(session = %state.config.name, "session stopped");
        Ok(())
    }
}

/// Waits for the answer to a control request until `deadline` (the caller's call time plus
/// `timeout`, the control timeout, which the error names).
async fn await_control(
    session: String,
    subtype: &str,
    timeout: Duration,
    deadline: Instant,
    answer: oneshot::Receiver<ControlAnswer>,
) -> Result<serde_json::Value, SessionError> {
    match tokio::time::timeout_at(deadline, answer).await {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(message))) => Err(SessionError::ControlRejected {
            session,
            subtype: subtype.to_owned(),
            message,
        }),
        Ok(Err(_)) => Err(SessionError::NotRunning { session }),
        Err(_) => Err(SessionError::ControlTimeout {
            session,
            subtype: subtype.to_owned(),
            timeout,
        }),
    }
}

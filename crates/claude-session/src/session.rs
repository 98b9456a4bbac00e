//! [`Session`]: the handle to a running session.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use claude_protocol::{ControlRequestBody, PermissionMode};
use ractor::{Actor, ActorCell, ActorRef, SpawnErr};
use tokio::sync::{Semaphore, TryAcquireError, broadcast, mpsc, oneshot};
use tokio::time::Instant;

use crate::actor::{BATCH_LIMIT, PendingTurn, SessionActor, SessionMsg, StartArgs, shutdown_bound};
use crate::config::{QueuePolicy, SessionConfig};
use crate::error::SessionError;
use crate::events::SessionEvent;
use crate::health::HealthSnapshot;
use crate::incoming::ControlHandler;
use crate::ledger::SessionLedger;
use crate::turn::{Prompt, ServerInfo, TurnStream};

/// How long past a call's deadline the caller still waits for the actor's own timeout answer,
/// before it takes the actor to be stuck.
const REPLY_GRACE: Duration = Duration::from_millis(250);

struct Inner {
    name: Arc<str>,
    actor: ActorRef<SessionMsg>,
    events: broadcast::Sender<SessionEvent>,
    admission: Arc<Semaphore>,
    queue_capacity: usize,
    policy: QueuePolicy,
    stream_buffer: usize,
    next_turn: AtomicU64,
    ledger: SessionLedger,
    info: Arc<OnceLock<ServerInfo>>,
    accepting: Arc<AtomicBool>,
    /// How long a call waits for the actor (the control timeout).
    control_timeout: Duration,
    /// How long `stop` waits for the actor to end (the shutdown recipe's own bound).
    stop_bound: Duration,
    /// The events sent while the session started, before anyone could subscribe.
    startup_events: Vec<SessionEvent>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: nobody can reach the session any more, so it stops (by the
        // full shutdown recipe, in the actor's `post_stop`).
        // A normal exit in OTP terms (`shutdown:…`): the owner let go of the session.
        self.actor.stop(Some("shutdown:handle dropped".into()));
    }
}

/// A running Claude Code session: one CLI process owned by one actor.
///
/// Cheap to clone; when the last clone is dropped the session stops. Every method names the
/// session in its errors.
///
/// # Examples
///
/// ```no_run
/// use claude_session::{Session, SessionConfig};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let cli = claude_protocol::find_cli(None)?;
/// let session = Session::start(SessionConfig::builder("reviewer", cli).build()?).await?;
/// let answer = session.query("Say hello").await?.final_text().await?;
/// println!("{answer}");
/// session.stop().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

/// Options for [`Session::start_with`] beyond the configuration.
#[derive(Default)]
#[non_exhaustive]
pub struct StartOptions {
    /// The actor to link the session to (a supervisor), so that it hears of the session's exit.
    pub supervisor: Option<ActorCell>,
    /// A name to register the actor under in ractor's (process-global) registry.
    pub actor_name: Option<String>,
    /// Answers the CLI's own control requests (permissions, hooks, SDK MCP servers).
    pub control_handler: Option<Arc<dyn ControlHandler>>,
    /// Receives the CLI's `transcript_mirror` frames (run it with `--session-mirror`) and a
    /// barrier at the end of each turn; see [`MirrorEvent`](crate::MirrorEvent).
    pub mirror: Option<crate::MirrorSink>,
}

impl std::fmt::Debug for StartOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartOptions")
            .field("supervisor", &self.supervisor.as_ref().map(|s| s.get_id()))
            .field("actor_name", &self.actor_name)
            .field("control_handler", &self.control_handler.is_some())
            .field("mirror", &self.mirror.is_some())
            .finish()
    }
}

impl Session {
    /// Launches the CLI, sends `initialize`, and returns once the CLI has answered.
    ///
    /// # Errors
    ///
    /// [`SessionError`] naming the session and the cause: invalid options, a launch failure, an
    /// exit during start-up or an init timeout (both with the exit status and stderr tail). No
    /// process is left behind.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future mid-start abandons the start: the launched CLI's process group is
    /// killed and reaped, and no actor is left running.
    pub async fn start(config: SessionConfig) -> Result<Session, SessionError> {
        Self::start_with(config, StartOptions::default()).await
    }

    /// Like [`start`](Self::start), linked to a supervisor and/or with a control handler.
    ///
    /// # Errors
    ///
    /// As for [`start`](Self::start).
    ///
    /// # Cancel safety
    ///
    /// As for [`start`](Self::start).
    pub async fn start_with(
        config: SessionConfig,
        options: StartOptions,
    ) -> Result<Session, SessionError> {
        let name = config.name.clone();
        let (events, _) = broadcast::channel(config.events_capacity);
        // Held through the start, so the start-up events (Spawned, CliVersionUntested,
        // Initialized) are not lost to a channel nobody could have subscribed to yet.
        let mut startup = events.subscribe();
        let info = Arc::new(OnceLock::new());
        let admission = Arc::new(Semaphore::new(config.queue_capacity + 1));
        let (queue_capacity, policy, stream_buffer) = (
            config.queue_capacity,
            config.queue_policy,
            config.stream_buffer,
        );
        let ledger = config.ledger.clone();
        let (control_timeout, stop_bound) =
            (config.timeouts.control, shutdown_bound(&config.timeouts));
        let accepting = Arc::new(AtomicBool::new(true));
        let args = StartArgs {
            config,
            events: events.clone(),
            info: info.clone(),
            handler: options.control_handler,
            mirror: options.mirror,
            accepting: accepting.clone(),
        };
        let spawned = match options.supervisor {
            Some(supervisor) => {
                Actor::spawn_linked(options.actor_name, SessionActor, args, supervisor).await
            }
            None => Actor::spawn(options.actor_name, SessionActor, args).await,
        };
        let actor = match spawned {
            Ok((actor, _join)) => actor,
            Err(SpawnErr::StartupFailed(err)) => {
                return Err(match err.downcast::<SessionError>() {
                    Ok(e) => *e,
                    Err(other) => SessionError::Launch {
                        session: name.to_string(),
                        source: crate::LaunchError::Other(other.to_string()),
                    },
                });
            }
            Err(other) => {
                return Err(SessionError::Launch {
                    session: name.to_string(),
                    source: crate::LaunchError::Other(other.to_string()),
                });
            }
        };
        let mut startup_events = Vec::new();
        while let Ok(event) = startup.try_recv() {
            startup_events.push(event);
        }
        drop(startup);
        Ok(Session {
            inner: Arc::new(Inner {
                name,
                actor,
                events,
                admission,
                queue_capacity,
                policy,
                stream_buffer,
                next_turn: AtomicU64::new(1),
                ledger,
                info,
                accepting,
                control_timeout,
                stop_bound,
                startup_events,
            }),
        })
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The actor, for linking and monitoring (a supervisor watches it).
    pub fn actor(&self) -> ActorCell {
        self.inner.actor.get_cell()
    }

    /// What the CLI said at `initialize` (version, models, commands).
    pub fn server_info(&self) -> Option<&ServerInfo> {
        self.inner.info.get()
    }

    /// The newest session id of the conversation.
    pub fn session_id(&self) -> Option<String> {
        self.inner.ledger.session_id()
    }

    /// The ledger: session id and cost totals, shareable with a restarted instance.
    pub fn ledger(&self) -> &SessionLedger {
        &self.inner.ledger
    }

    /// The events sent while [`start`](Self::start) ran, in order: `Spawned`, a
    /// `CliVersionUntested` warning if the CLI is newer than the newest tested version, and
    /// `Initialized`. [`events`](Self::events) only sees what comes after the start.
    pub fn startup_events(&self) -> &[SessionEvent] {
        &self.inner.startup_events
    }

    /// Subscribes to the session's lifecycle events.
    pub fn events(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.events.subscribe()
    }

    fn not_running(&self) -> SessionError {
        SessionError::NotRunning {
            session: self.inner.name.to_string(),
        }
    }

    /// Queues a turn and returns its stream. Turns run one at a time, in the order asked.
    ///
    /// # Errors
    ///
    /// [`SessionError::QueueFull`] when the queue is full and the policy is
    /// [`QueuePolicy::Reject`]; [`SessionError::NotRunning`] when the session has stopped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped while waiting for room in the queue, nothing was
    /// queued. Once it returns, the turn is queued; dropping the stream cancels or interrupts it.
    pub async fn query(&self, prompt: impl Into<Prompt>) -> Result<TurnStream, SessionError> {
        let inner = &self.inner;
        if !inner.accepting.load(Ordering::SeqCst) {
            return Err(self.not_running());
        }
        let permit = match inner.policy {
            QueuePolicy::Wait => inner
                .admission
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| self.not_running())?,
            QueuePolicy::Reject => {
                inner
                    .admission
                    .clone()
                    .try_acquire_owned()
                    .map_err(|e| match e {
                        TryAcquireError::NoPermits => SessionError::QueueFull {
                            session: inner.name.to_string(),
                            capacity: inner.queue_capacity,
                        },
                        TryAcquireError::Closed => self.not_running(),
                    })?
            }
        };
        let id = inner.next_turn.fetch_add(1, Ordering::Relaxed);
        // At most `stream_buffer` frames wait for the caller, in batches of up to BATCH_LIMIT.
        let (frames_tx, frames_rx) = mpsc::channel(inner.stream_buffer.div_ceil(BATCH_LIMIT));
        let (outcome_tx, outcome_rx) = oneshot::channel();
        let turn = PendingTurn {
            id,
            prompt: prompt.into(),
            frames: frames_tx,
            outcome: outcome_tx,
            permit,
        };
        inner
            .actor
            .cast(SessionMsg::Query(turn))
            .map_err(|_| self.not_running())?;
        Ok(TurnStream::new(
            inner.name.clone(),
            id,
            frames_rx,
            outcome_rx,
            inner.actor.clone(),
        ))
    }

    /// Sends a request to the actor now, and returns a future of its answer: the request is
    /// made even if the future is never polled.
    ///
    /// The answer is awaited until the control timeout from now has passed (`make` gets that
    /// deadline, for the actor to time its own waits by), and a little longer, so that the
    /// actor's own timeout answer arrives first; then the actor itself is taken to be stuck:
    /// [`SessionError::Unresponsive`] naming `request`.
    fn ask<T: Send + 'static>(
        &self,
        request: String,
        make: impl FnOnce(oneshot::Sender<T>, Instant) -> SessionMsg,
    ) -> impl Future<Output = Result<T, SessionError>> + Send + 'static {
        let timeout = self.inner.control_timeout;
        let deadline = Instant::now() + timeout;
        let (tx, rx) = oneshot::channel();
        let sent = if self.inner.accepting.load(Ordering::SeqCst) {
            self.inner
                .actor
                .cast(make(tx, deadline))
                .map_err(|_| self.not_running())
        } else {
            Err(self.not_running())
        };
        let gone = self.not_running();
        let stuck = SessionError::Unresponsive {
            session: self.inner.name.to_string(),
            request,
            timeout,
        };
        async move {
            sent?;
            match tokio::time::timeout_at(deadline + REPLY_GRACE, rx).await {
                Ok(answer) => answer.map_err(|_| gone),
                Err(_) => Err(stuck),
            }
        }
    }

    /// Interrupts the running turn and waits (up to the control timeout) for the CLI to confirm.
    /// Returns whether a turn was running. Works before the turn's first frame too. The turn
    /// then ends with an error `result` (`error_during_execution`); the session stays usable.
    ///
    /// # Errors
    ///
    /// [`SessionError::ControlTimeout`] when the CLI does not confirm within the control
    /// timeout (counted from the call); [`SessionError::Unresponsive`] when the session's actor
    /// itself does not answer by then; [`SessionError::NotRunning`].
    ///
    /// # Cancel safety
    ///
    /// The interrupt is sent when the method is called, before the returned future is first
    /// polled; dropping the future only stops waiting for the confirmation.
    pub fn interrupt(&self) -> impl Future<Output = Result<bool, SessionError>> + Send + 'static {
        let answer = self.ask("interrupt".into(), |reply, deadline| {
            SessionMsg::Interrupt { reply, deadline }
        });
        async move { answer.await? }
    }

    /// Sends a control request; the whole call is bounded by the control timeout.
    fn control(
        &self,
        body: ControlRequestBody,
    ) -> impl Future<Output = Result<serde_json::Value, SessionError>> + Send + 'static {
        let subtype = body.subtype().to_owned();
        let answer = self.ask(subtype, |reply, deadline| SessionMsg::Control {
            body: Box::new(body),
            reply,
            deadline,
        });
        async move { answer.await? }
    }

    /// Switches the model for the following turns (`None`: the default model).
    ///
    /// # Errors
    ///
    /// The CLI refused or did not answer in time.
    ///
    /// # Cancel safety
    ///
    /// The request is sent when the call is made (on the first poll); dropping the future
    /// before then sends nothing, after it only stops waiting.
    pub async fn set_model(&self, model: Option<&str>) -> Result<(), SessionError> {
        self.control(ControlRequestBody::SetModel {
            model: model.map(str::to_owned),
        })
        .await
        .map(drop)
    }

    /// Changes the permission mode.
    ///
    /// # Errors
    ///
    /// The CLI refused or did not answer in time.
    ///
    /// # Cancel safety
    ///
    /// The request is sent when the call is made (on the first poll); dropping the future
    /// before then sends nothing, after it only stops waiting.
    pub async fn set_permission_mode(&self, mode: PermissionMode) -> Result<(), SessionError> {
        self.control(ControlRequestBody::SetPermissionMode { mode })
            .await
            .map(drop)
    }

    /// The status of the session's MCP servers (the CLI's `{"mcpServers": […]}`).
    ///
    /// # Errors
    ///
    /// The CLI refused or did not answer in time.
    ///
    /// # Cancel safety
    ///
    /// The request is sent when the call is made (on the first poll); dropping the future
    /// before then sends nothing, after it only stops waiting.
    pub async fn mcp_status(&self) -> Result<Vec<serde_json::Value>, SessionError> {
        let value = self.control(ControlRequestBody::McpStatus).await?;
        match value.get("mcpServers") {
            Some(serde_json::Value::Array(servers)) => Ok(servers.clone()),
            _ => Err(SessionError::UnexpectedAnswer {
                session: self.inner.name.to_string(),
                subtype: "mcp_status".into(),
                detail: format!("no `mcpServers` array in {value}"),
            }),
        }
    }

    /// How full the context window is (`totalTokens`, `maxTokens`, `percentage`, categories).
    ///
    /// # Errors
    ///
    /// The CLI refused or did not answer in time.
    ///
    /// # Cancel safety
    ///
    /// The request is sent when the call is made (on the first poll); dropping the future
    /// before then sends nothing, after it only stops waiting.
    pub async fn context_usage(&self) -> Result<ContextUsage, SessionError> {
        let raw = self.control(ControlRequestBody::GetContextUsage).await?;
        let num = |k: &str| raw.get(k).and_then(serde_json::Value::as_f64);
        Ok(ContextUsage {
            total_tokens: num("totalTokens").map(|n| n as u64),
            max_tokens: num("maxTokens").map(|n| n as u64),
            percentage: num("percentage"),
            raw,
        })
    }

    /// A snapshot of the session's health.
    ///
    /// # Errors
    ///
    /// [`SessionError::NotRunning`]; [`SessionError::Unresponsive`] when the session's actor
    /// does not answer within the control timeout (it is stuck).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn health(&self) -> Result<HealthSnapshot, SessionError> {
        self.ask("health".into(), |reply, _| SessionMsg::Health(reply))
            .await
    }

    /// Stops taking turns if no turn is running or queued, and says whether it did: for a
    /// supervisor that retires an idle session (hibernation) without ever cutting a turn that
    /// just arrived. Decided in order with the turns sent before it; a turn sent after a `true`
    /// is refused with [`SessionError::NotRunning`]. The process keeps running until
    /// [`stop`](Self::stop).
    ///
    /// # Errors
    ///
    /// [`SessionError::NotRunning`] when the session is already stopping;
    /// [`SessionError::Unresponsive`] when the actor does not answer within the control timeout.
    ///
    /// # Cancel safety
    ///
    /// The request is sent when the method is called; dropping the future loses only the answer
    /// (the session may then have stopped taking turns).
    pub fn close_if_idle(
        &self,
    ) -> impl Future<Output = Result<bool, SessionError>> + Send + 'static {
        self.ask("close_if_idle".into(), |reply, _| {
            SessionMsg::CloseIfIdle(reply)
        })
    }

    /// Stops the session by the shutdown recipe and waits until its process is gone: a running
    /// turn is interrupted, stdin closed, the CLI given its grace, then SIGTERM and SIGKILL to
    /// its process group, and every process reaped. Queued turns fail with
    /// [`SessionError::Stopped`]. The actor ends with a normal reason (`shutdown:…`), so a
    /// supervisor does not restart a session its owner stopped.
    ///
    /// The wait is bounded by the recipe's own worst case (control timeout, stdin grace, SIGTERM
    /// grace, reaping after SIGKILL, plus a little slack), counted from the call.
    ///
    /// # Errors
    ///
    /// [`SessionError::Unresponsive`] (request `stop`) when the actor has not ended within that
    /// bound (it is stuck, in a launcher's signal that hangs, say): it is then killed, which
    /// SIGKILLs the CLI's group as its state is dropped; the exit reason is then ractor's
    /// `killed`, an abnormal one.
    ///
    /// # Cancel safety
    ///
    /// The stop is requested when the method is called, before the returned future is first
    /// polled, and completes even if the future is dropped (only the kill after the bound is
    /// the future's, and is skipped if it is dropped first).
    pub fn stop(&self) -> impl Future<Output = Result<(), SessionError>> + Send + 'static {
        // A normal exit in OTP terms (`shutdown:…`): the owner asked for it, so a supervisor
        // must not restart a transient session over it.
        self.inner
            .actor
            .stop(Some("shutdown:stopped by its owner".into()));
        let actor = self.inner.actor.clone();
        let bound = self.inner.stop_bound;
        let deadline = Instant::now() + bound;
        let session = self.inner.name.to_string();
        async move {
            if tokio::time::timeout_at(deadline, actor.wait(None))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tracing::error!(
                session,
                ?bound,
                "the session did not stop in time: killing its actor"
            );
            actor.kill();
            Err(SessionError::Unresponsive {
                session,
                request: "stop".to_owned(),
                timeout: bound,
            })
        }
    }

    /// Whether the session is running and taking turns. False as soon as it has begun to fail
    /// or stop (before any of its turns is failed), so a caller that saw a turn fail never
    /// picks this instance again.
    pub fn is_running(&self) -> bool {
        self.inner.accepting.load(Ordering::SeqCst)
            && matches!(
                self.inner.actor.get_status(),
                ractor::ActorStatus::Running
                    | ractor::ActorStatus::Starting
                    | ractor::ActorStatus::Upgrading
            )
    }
}

/// The answer to `get_context_usage`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ContextUsage {
    /// Tokens in the context now.
    pub total_tokens: Option<u64>,
    /// The context window.
    pub max_tokens: Option<u64>,
    /// How full it is, in percent.
    pub percentage: Option<f64>,
    /// The whole answer (token categories, …).
    pub raw: serde_json::Value,
}

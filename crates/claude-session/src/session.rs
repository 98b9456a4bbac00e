//! [`Session`]: the handle to a running session.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use claude_protocol::{ControlRequestBody, PermissionMode};
use ractor::{Actor, ActorCell, ActorRef, SpawnErr};
use tokio::sync::{Semaphore, TryAcquireError, broadcast, mpsc, oneshot};

use crate::actor::{BATCH_LIMIT, PendingTurn, SessionActor, SessionMsg, StartArgs};
use crate::config::{QueuePolicy, SessionConfig};
use crate::error::SessionError;
use crate::events::SessionEvent;
use crate::health::HealthSnapshot;
use crate::incoming::ControlHandler;
use crate::ledger::SessionLedger;
use crate::turn::{Prompt, ServerInfo, TurnStream};

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
}

impl std::fmt::Debug for StartOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartOptions")
            .field("supervisor", &self.supervisor.as_ref().map(|s| s.get_id()))
            .field("actor_name", &self.actor_name)
            .field("control_handler", &self.control_handler.is_some())
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
        let info = Arc::new(OnceLock::new());
        let admission = Arc::new(Semaphore::new(config.queue_capacity + 1));
        let (queue_capacity, policy, stream_buffer) = (
            config.queue_capacity,
            config.queue_policy,
            config.stream_buffer,
        );
        let ledger = config.ledger.clone();
        let accepting = Arc::new(AtomicBool::new(true));
        let args = StartArgs {
            config,
            events: events.clone(),
            info: info.clone(),
            handler: options.control_handler,
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
    fn ask<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> SessionMsg,
    ) -> impl Future<Output = Result<T, SessionError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let sent = if self.inner.accepting.load(Ordering::SeqCst) {
            self.inner
                .actor
                .cast(make(tx))
                .map_err(|_| self.not_running())
        } else {
            Err(self.not_running())
        };
        let gone = self.not_running();
        async move {
            sent?;
            rx.await.map_err(|_| gone)
        }
    }

    /// Interrupts the running turn and waits (up to the control timeout) for the CLI to confirm.
    /// Returns whether a turn was running. Works before the turn's first frame too. The turn
    /// then ends with an error `result` (`error_during_execution`); the session stays usable.
    ///
    /// # Errors
    ///
    /// [`SessionError::ControlTimeout`] when the CLI does not confirm in time;
    /// [`SessionError::NotRunning`].
    ///
    /// # Cancel safety
    ///
    /// The interrupt is sent when the method is called, before the returned future is first
    /// polled; dropping the future only stops waiting for the confirmation.
    pub fn interrupt(&self) -> impl Future<Output = Result<bool, SessionError>> + Send + 'static {
        let answer = self.ask(SessionMsg::Interrupt);
        async move { answer.await? }
    }

    fn control(
        &self,
        body: ControlRequestBody,
    ) -> impl Future<Output = Result<serde_json::Value, SessionError>> + Send + 'static {
        let answer = self.ask(|reply| SessionMsg::Control {
            body: Box::new(body),
            reply,
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
    /// [`SessionError::NotRunning`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn health(&self) -> Result<HealthSnapshot, SessionError> {
        self.ask(SessionMsg::Health).await
    }

    /// Stops the session by the shutdown recipe and waits until its process is gone: a running
    /// turn is interrupted, stdin closed, the CLI given its grace, then SIGTERM and SIGKILL to
    /// its process group, and every process reaped. Queued turns fail with
    /// [`SessionError::Stopped`].
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for launchers whose stop can fail.
    ///
    /// # Cancel safety
    ///
    /// The stop is requested when the method is called, before the returned future is first
    /// polled, and completes even if the future is dropped.
    pub fn stop(&self) -> impl Future<Output = Result<(), SessionError>> + Send + 'static {
        self.inner.actor.stop(Some("stopped".into()));
        let actor = self.inner.actor.clone();
        async move {
            let _ = actor.wait(None).await;
            Ok(())
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

//! Child specifications: what a supervisor starts, how it restarts it and how it stops it.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, SpawnErr};
use serde::{Deserialize, Serialize};

use crate::error::SpecError;

/// The identifier of a child inside one supervisor (unique per supervisor).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChildId(Arc<str>);

impl ChildId {
    /// Builds a child id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ChildId {
    fn from(s: &str) -> Self {
        Self(Arc::from(s))
    }
}

impl From<String> for ChildId {
    fn from(s: String) -> Self {
        Self(Arc::from(s))
    }
}

impl From<&String> for ChildId {
    fn from(s: &String) -> Self {
        Self(Arc::from(s.as_str()))
    }
}

impl From<&ChildId> for ChildId {
    fn from(s: &ChildId) -> Self {
        s.clone()
    }
}

/// When a child is restarted (OTP's `restart` key).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RestartType {
    /// Always restarted, whatever the exit reason.
    #[default]
    Permanent,
    /// Restarted only after an abnormal exit; a normal exit keeps the spec, not running.
    Transient,
    /// Never restarted; its spec is deleted when it exits.
    Temporary,
}

/// How a supervisor stops a child (OTP's `shutdown` key).
///
/// A kill is never waited for without bound: an actor that does not act on it within
/// [`Shutdown::KILL_WAIT`] (its task blocks its thread and never reaches an `.await`) is
/// reported as a shutdown error and abandoned: the supervisor moves on, the actor stays
/// linked to it and its exit, whenever it comes, is ignored.
///
/// The exit is judged as OTP's `supervisor` does: anything but `shutdown` (after a graceful
/// stop) or `killed` (after `BrutalKill`) is reported as a shutdown error, except `normal`
/// (and, for `BrutalKill`, `shutdown`) from a child that is not permanent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Shutdown {
    /// Killed at once (`ActorCell::kill`); the child's `post_stop` does not run.
    BrutalKill,
    /// Stopped gracefully with reason `"shutdown"`; killed if still alive after the duration
    /// (its exit reason is then `killed`, a shutdown error).
    Timeout(Duration),
    /// Stopped gracefully with reason `"shutdown"` and waited for as long as it takes.
    Infinity,
}

impl Shutdown {
    /// How long a supervisor waits for a killed child to be gone before it gives up on it.
    /// ractor acts on a kill at the child's next `.await`, so a healthy child is gone at once.
    pub const KILL_WAIT: Duration = Duration::from_secs(5);

    /// The OTP default for a kind of child: 5 s for a worker, infinity for a supervisor.
    pub fn default_for(kind: ChildKind) -> Self {
        match kind {
            ChildKind::Worker => Shutdown::Timeout(Duration::from_secs(5)),
            ChildKind::Supervisor => Shutdown::Infinity,
        }
    }
}

/// Whether a child is a worker or a supervisor (OTP's `type` key).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChildKind {
    /// A plain actor.
    #[default]
    Worker,
    /// A supervisor (a subtree).
    Supervisor,
}

/// What a start function is given, on the first start and on every restart.
#[derive(Clone)]
pub struct StartArgs {
    pub(crate) supervisor: ActorCell,
    pub(crate) child_id: ChildId,
    pub(crate) generation: u64,
    pub(crate) extra: Option<Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for StartArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartArgs")
            .field("supervisor", &self.supervisor.get_id())
            .field("child_id", &self.child_id)
            .field("generation", &self.generation)
            .field("extra", &self.extra.is_some())
            .finish()
    }
}

impl StartArgs {
    /// The supervisor's actor: link the new child to it (or use [`StartArgs::spawn_linked`]).
    pub fn supervisor(&self) -> &ActorCell {
        &self.supervisor
    }

    /// The id of the child being started.
    pub fn child_id(&self) -> &ChildId {
        &self.child_id
    }

    /// The generation the new instance gets if it starts: 1 for the first start, +1 per start.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The dynamic supervisor's shared start arguments (Elixir's `extra_arguments`), if they are
    /// of type `T`.
    pub fn extra<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.extra.as_deref().and_then(|e| e.downcast_ref::<T>())
    }

    /// Spawns `handler` as an actor linked to the supervisor and answers
    /// [`StartOutcome::Started`]; a `pre_start` failure becomes a [`StartError`].
    ///
    /// # Errors
    /// The actor's spawn error (failed `pre_start`, name already registered).
    ///
    /// # Cancel safety
    /// Not cancel safe: dropping the future mid-spawn may leave a started actor behind.
    pub async fn spawn_linked<A: Actor>(
        &self,
        name: Option<String>,
        handler: A,
        args: A::Arguments,
    ) -> Result<StartOutcome, StartError> {
        let (actor, _join) =
            Actor::spawn_linked(name, handler, args, self.supervisor.clone()).await?;
        Ok(StartOutcome::Started(actor.get_cell()))
    }
}

/// What a start function answers when it succeeds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StartOutcome {
    /// The child runs as this actor (linked to the supervisor, or linked by it).
    Started(ActorCell),
    /// OTP's `ignore`: nothing runs; the spec is kept not running (a temporary one is dropped).
    Ignore,
}

/// Why a start function failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StartError {
    message: String,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl StartError {
    /// An error with a message and no source.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// Wraps any error; its `Display` becomes the message.
    pub fn from_error(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            message: error.to_string(),
            source: Some(Arc::new(error)),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<SpawnErr> for StartError {
    fn from(e: SpawnErr) -> Self {
        Self::from_error(e)
    }
}

impl From<String> for StartError {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for StartError {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<Box<dyn std::error::Error + Send + Sync>> for StartError {
    fn from(e: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Self {
            message: e.to_string(),
            source: Some(Arc::from(e)),
        }
    }
}

/// The start function of a child: called on the first start and again on every restart.
pub type StartFn =
    Arc<dyn Fn(StartArgs) -> BoxFuture<'static, Result<StartOutcome, StartError>> + Send + Sync>;

/// A validated child specification. Build one with [`ChildSpec::builder`].
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) id: ChildId,
    pub(crate) start: StartFn,
    pub(crate) restart: RestartType,
    pub(crate) shutdown: Shutdown,
    pub(crate) kind: ChildKind,
    pub(crate) significant: bool,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("kind", &self.kind)
            .field("significant", &self.significant)
            .finish_non_exhaustive()
    }
}

impl ChildSpec {
    /// Starts building a spec with this id.
    ///
    /// # Examples
    /// ```
    /// use supervision::{ChildSpec, RestartType, StartOutcome};
    /// let spec = ChildSpec::builder("cache")
    ///     .restart(RestartType::Transient)
    ///     .start(|_args| async { Ok(StartOutcome::Ignore) })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(spec.id().as_str(), "cache");
    /// ```
    pub fn builder(id: impl Into<ChildId>) -> ChildSpecBuilder {
        ChildSpecBuilder {
            id: id.into(),
            start: None,
            restart: RestartType::Permanent,
            shutdown: None,
            kind: ChildKind::Worker,
            significant: false,
        }
    }

    /// The child id.
    pub fn id(&self) -> &ChildId {
        &self.id
    }

    /// The restart type.
    pub fn restart(&self) -> RestartType {
        self.restart
    }

    /// The shutdown spec.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown
    }

    /// Worker or supervisor.
    pub fn kind(&self) -> ChildKind {
        self.kind
    }

    /// Whether the child is significant for auto-shutdown.
    pub fn is_significant(&self) -> bool {
        self.significant
    }
}

/// Builder of a [`ChildSpec`]; [`ChildSpecBuilder::build`] validates it.
#[must_use]
pub struct ChildSpecBuilder {
    id: ChildId,
    start: Option<StartFn>,
    restart: RestartType,
    shutdown: Option<Shutdown>,
    kind: ChildKind,
    significant: bool,
}

impl fmt::Debug for ChildSpecBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpecBuilder")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ChildSpecBuilder {
    /// The start function, called again on every restart.
    pub fn start<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(StartArgs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<StartOutcome, StartError>> + Send + 'static,
    {
        self.start = Some(Arc::new(move |args| Box::pin(f(args))));
        self
    }

    /// The start function, already boxed.
    pub fn start_fn(mut self, f: StartFn) -> Self {
        self.start = Some(f);
        self
    }

    /// The restart type (default permanent).
    pub fn restart(mut self, restart: RestartType) -> Self {
        self.restart = restart;
        self
    }

    /// The shutdown spec (default: 5 s for a worker, infinity for a supervisor).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// Worker (default) or supervisor.
    pub fn kind(mut self, kind: ChildKind) -> Self {
        self.kind = kind;
        self
    }

    /// Marks the child significant for auto-shutdown (not allowed on a permanent child).
    pub fn significant(mut self, significant: bool) -> Self {
        self.significant = significant;
        self
    }

    /// Validates and builds the spec.
    ///
    /// # Errors
    /// An empty id, a missing start function, or `significant` on a permanent child.
    pub fn build(self) -> Result<ChildSpec, SpecError> {
        if self.id.as_str().is_empty() {
            return Err(SpecError::EmptyId);
        }
        let Some(start) = self.start else {
            return Err(SpecError::MissingStart { child: self.id });
        };
        if self.significant && self.restart == RestartType::Permanent {
            return Err(SpecError::SignificantPermanent { child: self.id });
        }
        Ok(ChildSpec {
            shutdown: self
                .shutdown
                .unwrap_or_else(|| Shutdown::default_for(self.kind)),
            id: self.id,
            start,
            restart: self.restart,
            kind: self.kind,
            significant: self.significant,
        })
    }
}

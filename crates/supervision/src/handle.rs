//! [`SupervisorRef`]: the one handle to a running supervisor of either kind, and the bounded
//! calls it makes into the supervisor actor.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorCell, ActorRef, RpcReplyPort};

use crate::child::{ChildId, ChildSpec};
use crate::core::Msg;
use crate::error::ChildError;
use crate::inspect::{ChildCounts, ChildInfo, SupervisorSnapshot};

/// How long a query (`which_children`, `count_children`, `inspect`) waits for the supervisor's
/// answer by default (gen_server's default call timeout).
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a change (`start_child`, `terminate_child`, `restart_child`, `delete_child`) waits
/// for the supervisor's answer by default. Longer than a query: the supervisor runs the start
/// function, or waits for the child's shutdown, before it answers.
pub const DEFAULT_CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// A handle to a running supervisor: a [`Supervisor`](crate::Supervisor) or a
/// [`DynamicSupervisor`](crate::DynamicSupervisor) (both run the same actor, so one handle
/// serves both; [`DynamicSupervisorRef`](crate::DynamicSupervisorRef) is this same type).
/// Cheap to clone.
///
/// Where the two kinds differ, the supervisor answers for its own kind: a dynamic supervisor
/// removes a child that `terminate_child` stops (a static one keeps its spec), refuses a
/// child beyond `max_children` ([`ChildError::MaxChildren`]) and every significant child
/// ([`ChildError::SignificantUnderNever`]), and stops its children concurrently on
/// [`stop`](Self::stop). `restart_child` and `delete_child` are meant for the stopped
/// children a static supervisor keeps: see them for what a dynamic supervisor answers.
///
/// # Examples
/// ```
/// use supervision::{
///     ChildError, DynamicFlags, DynamicSupervisor, Supervisor, SupervisorFlags, SupervisorRef,
/// };
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let root: SupervisorRef = Supervisor::start(None, SupervisorFlags::default(), vec![])
///     .await
///     .unwrap();
/// let pool: SupervisorRef = DynamicSupervisor::start(None, DynamicFlags::default())
///     .await
///     .unwrap();
/// for sup in [&root, &pool] {
///     assert!(matches!(
///         sup.restart_child("ghost").await,
///         Err(ChildError::NotFound { .. })
///     ));
///     sup.stop().await;
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct SupervisorRef {
    actor: ActorRef<Msg>,
    name: Arc<str>,
    query_timeout: Duration,
    change_timeout: Duration,
}

impl fmt::Debug for SupervisorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorRef")
            .field("name", &self.name)
            .finish()
    }
}

impl SupervisorRef {
    pub(crate) fn new(actor: ActorRef<Msg>, name: Arc<str>) -> Self {
        Self {
            actor,
            name,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            change_timeout: DEFAULT_CHANGE_TIMEOUT,
        }
    }

    /// The supervisor's actor.
    pub fn cell(&self) -> ActorCell {
        self.actor.get_cell()
    }

    /// The supervisor's name (its actor id when unnamed).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A handle to the supervisor running as `cell` (e.g. a nested supervisor found through
    /// `which_children`, or the supervisor a start function is given), static or dynamic;
    /// `None` if `cell` is not a supervisor of this crate.
    pub fn from_cell(cell: ActorCell) -> Option<Self> {
        if cell.is_message_type_of::<Msg>() != Some(true) {
            return None;
        }
        let name = cell.get_name().unwrap_or_else(|| cell.get_id().to_string());
        Some(Self::new(cell.into(), name.into()))
    }

    /// This handle with another bound on the queries (`which_children`, `count_children`,
    /// `inspect`); default [`DEFAULT_QUERY_TIMEOUT`]. A query that is not answered in time
    /// fails with [`ChildError::Timeout`]. Other clones keep theirs.
    #[must_use]
    pub fn with_query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// This handle with another bound on the changes (`start_child`, `terminate_child`,
    /// `restart_child`, `delete_child`); default [`DEFAULT_CHANGE_TIMEOUT`]. A change that is
    /// not answered in time fails with [`ChildError::Timeout`] and is still carried out. Other
    /// clones keep theirs.
    #[must_use]
    pub fn with_change_timeout(mut self, timeout: Duration) -> Self {
        self.change_timeout = timeout;
        self
    }

    /// The bound on queries of this handle.
    pub fn query_timeout(&self) -> Duration {
        self.query_timeout
    }

    /// The bound on changes of this handle.
    pub fn change_timeout(&self) -> Duration {
        self.change_timeout
    }

    /// Adds a child spec and starts it (OTP's `start_child`). `Ok(None)`: the start function
    /// answered ignore; a static supervisor keeps the spec (unless temporary), a dynamic one
    /// keeps nothing.
    ///
    /// # Errors
    /// [`ChildError::AlreadyStarted`] / [`ChildError::AlreadyPresent`] for an id in use,
    /// [`ChildError::SignificantUnderNever`] (always, on a dynamic supervisor: it has no
    /// auto-shutdown), [`ChildError::MaxChildren`] (a dynamic supervisor that is full; the start
    /// function is not called), [`ChildError::StartFailed`] (no spec kept, no restart counted),
    /// [`ChildError::Unavailable`], [`ChildError::Timeout`].
    ///
    /// # Cancel safety
    /// Dropping the future does not cancel the request: the supervisor still starts the child.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<Option<ActorCell>, ChildError> {
        self.change("start_child", |r| Msg::StartChild(spec, r))
            .await?
    }

    /// Stops a child per its shutdown spec; no restart follows. A static supervisor keeps a
    /// non-temporary spec (not running); a dynamic supervisor removes the child.
    ///
    /// # Errors
    /// [`ChildError::NotFound`], [`ChildError::Unavailable`], [`ChildError::Timeout`].
    ///
    /// # Cancel safety
    /// Dropping the future does not cancel the request.
    pub async fn terminate_child(&self, id: impl Into<ChildId>) -> Result<(), ChildError> {
        let id = id.into();
        self.change("terminate_child", |r| Msg::TerminateChild(id, r))
            .await?
    }

    /// Starts a stopped child spec again (not counted toward intensity).
    ///
    /// A dynamic supervisor removes a child that `terminate_child` stops or that exits without
    /// a restart, so there this answers [`ChildError::Running`] or [`ChildError::Restarting`]
    /// for a child it holds and [`ChildError::NotFound`] for one it removed. The one stopped
    /// child a dynamic supervisor keeps is a permanent or transient child whose restart
    /// answered ignore; this starts it again.
    ///
    /// # Errors
    /// [`ChildError::Running`], [`ChildError::Restarting`], [`ChildError::NotFound`],
    /// [`ChildError::StartFailed`], [`ChildError::Unavailable`], [`ChildError::Timeout`].
    ///
    /// # Cancel safety
    /// Dropping the future does not cancel the request.
    pub async fn restart_child(
        &self,
        id: impl Into<ChildId>,
    ) -> Result<Option<ActorCell>, ChildError> {
        let id = id.into();
        self.change("restart_child", |r| Msg::RestartChild(id, r))
            .await?
    }

    /// Removes a stopped child spec.
    ///
    /// On a dynamic supervisor, which removes its stopped children itself, this answers
    /// [`ChildError::Running`], [`ChildError::Restarting`] or [`ChildError::NotFound`], except
    /// for the one stopped child it keeps (see [`restart_child`](Self::restart_child)), which
    /// this removes.
    ///
    /// # Errors
    /// [`ChildError::Running`], [`ChildError::Restarting`], [`ChildError::NotFound`],
    /// [`ChildError::Unavailable`], [`ChildError::Timeout`].
    ///
    /// # Cancel safety
    /// Dropping the future does not cancel the request.
    pub async fn delete_child(&self, id: impl Into<ChildId>) -> Result<(), ChildError> {
        let id = id.into();
        self.change("delete_child", |r| Msg::DeleteChild(id, r))
            .await?
    }

    /// The children in start order with their status, running instance and kind.
    ///
    /// # Errors
    /// [`ChildError::Unavailable`], [`ChildError::Timeout`].
    ///
    /// # Cancel safety
    /// Cancel safe (a read).
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, ChildError> {
        self.query("which_children", Msg::WhichChildren).await
    }

    /// Counts of specs, active children, supervisors and workers.
    ///
    /// # Errors
    /// [`ChildError::Unavailable`], [`ChildError::Timeout`].
    ///
    /// # Cancel safety
    /// Cancel safe (a read).
    pub async fn count_children(&self) -> Result<ChildCounts, ChildError> {
        self.query("count_children", Msg::CountChildren).await
    }

    /// A serialisable snapshot: children, statuses, generations, the restart log.
    ///
    /// # Errors
    /// [`ChildError::Unavailable`], [`ChildError::Timeout`].
    ///
    /// # Cancel safety
    /// Cancel safe (a read).
    pub async fn inspect(&self) -> Result<SupervisorSnapshot, ChildError> {
        self.query("inspect", Msg::Inspect).await
    }

    /// Stops the supervisor and returns when it has exited (with reason `shutdown`). A static
    /// supervisor stops its children in reverse start order, each awaited before the next; a
    /// dynamic one stops them all concurrently; each per its shutdown spec.
    ///
    /// # Cancel safety
    /// Dropping the future does not cancel the shutdown, only the wait for it.
    pub async fn stop(&self) {
        let cell = self.actor.get_cell();
        cell.stop(Some("shutdown".to_string()));
        let _ = cell.wait(None).await;
    }

    /// Waits until the supervisor has exited (for whatever reason).
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn wait(&self) {
        let _ = self.actor.get_cell().wait(None).await;
    }

    /// A read, bounded by the query timeout.
    async fn query<T: Send + 'static>(
        &self,
        call: &'static str,
        f: impl FnOnce(RpcReplyPort<T>) -> Msg,
    ) -> Result<T, ChildError> {
        self.call(call, self.query_timeout, f).await
    }

    /// A change, bounded by the change timeout.
    async fn change<T: Send + 'static>(
        &self,
        call: &'static str,
        f: impl FnOnce(RpcReplyPort<T>) -> Msg,
    ) -> Result<T, ChildError> {
        self.call(call, self.change_timeout, f).await
    }

    async fn call<T: Send + 'static>(
        &self,
        call: &'static str,
        waited: Duration,
        f: impl FnOnce(RpcReplyPort<T>) -> Msg,
    ) -> Result<T, ChildError> {
        let unavailable = |reason: &str| ChildError::Unavailable {
            supervisor: self.name.to_string(),
            reason: reason.to_string(),
        };
        match self.actor.call(f, Some(waited)).await {
            Ok(CallResult::Success(v)) => Ok(v),
            Ok(CallResult::Timeout) => Err(ChildError::Timeout {
                supervisor: self.name.to_string(),
                call,
                waited,
            }),
            Ok(CallResult::SenderError) => Err(unavailable("no reply")),
            Err(_) => Err(unavailable("not running")),
        }
    }
}

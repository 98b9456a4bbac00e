//! The static supervisor: a list of child specs started in order, restarted per strategy.

use std::collections::HashSet;
use std::fmt;

use ractor::ActorCell;

use crate::child::{ChildId, ChildKind, ChildSpec, ChildSpecBuilder, StartError, StartOutcome};
use crate::core::{self, Config, Handle, Init, Msg};
use crate::error::{ChildError, SupervisorError};
use crate::flags::{AutoShutdown, SupervisorFlags};
use crate::inspect::{ChildCounts, ChildInfo, SupervisorSnapshot};

/// OTP's `supervisor`: starts its children in order, restarts them per strategy and restart
/// intensity, and stops them in reverse order.
///
/// # Examples
/// ```
/// use supervision::{ChildSpec, StartOutcome, Supervisor, SupervisorFlags};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let child = ChildSpec::builder("noop")
///     .start(|_args| async { Ok(StartOutcome::Ignore) })
///     .build()
///     .unwrap();
/// let sup = Supervisor::start(None, SupervisorFlags::default(), vec![child]).await.unwrap();
/// assert_eq!(sup.count_children().await.unwrap().specs, 1);
/// sup.stop().await;
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Supervisor;

fn validate(
    name: &Option<String>,
    flags: &SupervisorFlags,
    children: &[ChildSpec],
) -> Result<(), SupervisorError> {
    let supervisor = name.clone().unwrap_or_else(|| "<unnamed>".into());
    flags
        .validate()
        .map_err(|source| SupervisorError::InvalidFlags {
            supervisor: supervisor.clone(),
            source,
        })?;
    let mut seen = HashSet::new();
    for c in children {
        if !seen.insert(c.id.clone()) {
            return Err(SupervisorError::DuplicateChildId {
                supervisor,
                child: c.id.clone(),
            });
        }
        if c.significant && flags.auto_shutdown == AutoShutdown::Never {
            return Err(SupervisorError::SignificantUnderNever {
                supervisor,
                child: c.id.clone(),
            });
        }
    }
    Ok(())
}

impl Supervisor {
    /// Starts an unlinked supervisor (a root). Returns once every static child has started.
    ///
    /// # Errors
    /// Invalid flags, duplicate ids, a significant child under auto-shutdown never (nothing is
    /// started), or a child that failed to start (the ones before it are stopped in reverse
    /// order and no supervisor is left running).
    ///
    /// # Cancel safety
    /// Not cancel safe: dropping the future mid-start may leave started children behind.
    pub async fn start(
        name: Option<String>,
        flags: SupervisorFlags,
        children: Vec<ChildSpec>,
    ) -> Result<SupervisorRef, SupervisorError> {
        Self::spawn(name, flags, children, None).await
    }

    /// Starts a supervisor linked to `parent` (its exits reach `parent` as supervision events).
    ///
    /// # Errors
    /// As [`Supervisor::start`].
    ///
    /// # Cancel safety
    /// As [`Supervisor::start`].
    pub async fn start_linked(
        name: Option<String>,
        flags: SupervisorFlags,
        children: Vec<ChildSpec>,
        parent: ActorCell,
    ) -> Result<SupervisorRef, SupervisorError> {
        Self::spawn(name, flags, children, Some(parent)).await
    }

    async fn spawn(
        name: Option<String>,
        flags: SupervisorFlags,
        children: Vec<ChildSpec>,
        parent: Option<ActorCell>,
    ) -> Result<SupervisorRef, SupervisorError> {
        validate(&name, &flags, &children)?;
        let config = Config {
            name,
            strategy: flags.strategy,
            intensity: flags.intensity,
            period: flags.period,
            auto_shutdown: flags.auto_shutdown,
            backoff: flags.backoff,
            dynamic: false,
            max_children: None,
            extra: None,
        };
        let handle = core::spawn(Init { config, children }, parent).await?;
        Ok(SupervisorRef { handle })
    }

    /// A child spec (kind supervisor, shutdown infinity) that starts this supervisor as a
    /// nested child, again on every restart. Adjust restart type and the rest on the builder.
    pub fn child_spec(
        id: impl Into<ChildId>,
        name: Option<String>,
        flags: SupervisorFlags,
        children: Vec<ChildSpec>,
    ) -> ChildSpecBuilder {
        ChildSpec::builder(id)
            .kind(ChildKind::Supervisor)
            .start(move |args| {
                let (name, flags, children) = (name.clone(), flags.clone(), children.clone());
                async move {
                    let sup =
                        Supervisor::start_linked(name, flags, children, args.supervisor().clone())
                            .await
                            .map_err(StartError::from_error)?;
                    Ok(StartOutcome::Started(sup.cell()))
                }
            })
    }
}

/// A handle to a running [`Supervisor`]. Cheap to clone.
#[derive(Clone)]
pub struct SupervisorRef {
    pub(crate) handle: Handle,
}

impl fmt::Debug for SupervisorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorRef")
            .field("name", &self.handle.name)
            .finish()
    }
}

impl SupervisorRef {
    /// The supervisor's actor.
    pub fn cell(&self) -> ActorCell {
        self.handle.actor.get_cell()
    }

    /// The supervisor's name (its actor id when unnamed).
    pub fn name(&self) -> &str {
        &self.handle.name
    }

    /// A handle to the supervisor running as `cell` (e.g. a nested supervisor found through
    /// `which_children`); `None` if `cell` is not a supervisor of this crate. For a
    /// [`DynamicSupervisor`](crate::DynamicSupervisor) this handle's `restart_child` and
    /// `delete_child` also work, with dynamic semantics.
    pub fn from_cell(cell: ActorCell) -> Option<Self> {
        if cell.is_message_type_of::<Msg>() != Some(true) {
            return None;
        }
        let name = cell.get_name().unwrap_or_else(|| cell.get_id().to_string());
        Some(Self {
            handle: Handle {
                actor: cell.into(),
                name: name.into(),
            },
        })
    }

    /// Adds a child spec and starts it (OTP's `start_child`). `Ok(None)`: the start function
    /// answered ignore (the spec is kept unless temporary).
    ///
    /// # Errors
    /// [`ChildError::AlreadyStarted`] / [`ChildError::AlreadyPresent`] for an id in use,
    /// [`ChildError::SignificantUnderNever`], [`ChildError::StartFailed`] (no spec kept, no
    /// restart counted), [`ChildError::Unavailable`].
    ///
    /// # Cancel safety
    /// Dropping the future does not cancel the request: the supervisor still starts the child.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<Option<ActorCell>, ChildError> {
        self.handle.call(|r| Msg::StartChild(spec, r)).await?
    }

    /// Stops a child per its shutdown spec; keeps a non-temporary spec; no restart follows.
    ///
    /// # Errors
    /// [`ChildError::NotFound`], [`ChildError::Unavailable`].
    ///
    /// # Cancel safety
    /// Dropping the future does not cancel the request.
    pub async fn terminate_child(&self, id: impl Into<ChildId>) -> Result<(), ChildError> {
        let id = id.into();
        self.handle.call(|r| Msg::TerminateChild(id, r)).await?
    }

    /// Starts a stopped child spec again (not counted toward intensity).
    ///
    /// # Errors
    /// [`ChildError::Running`], [`ChildError::Restarting`], [`ChildError::NotFound`],
    /// [`ChildError::StartFailed`], [`ChildError::Unavailable`].
    ///
    /// # Cancel safety
    /// Dropping the future does not cancel the request.
    pub async fn restart_child(
        &self,
        id: impl Into<ChildId>,
    ) -> Result<Option<ActorCell>, ChildError> {
        let id = id.into();
        self.handle.call(|r| Msg::RestartChild(id, r)).await?
    }

    /// Removes a stopped child spec.
    ///
    /// # Errors
    /// [`ChildError::Running`], [`ChildError::Restarting`], [`ChildError::NotFound`],
    /// [`ChildError::Unavailable`].
    ///
    /// # Cancel safety
    /// Dropping the future does not cancel the request.
    pub async fn delete_child(&self, id: impl Into<ChildId>) -> Result<(), ChildError> {
        let id = id.into();
        self.handle.call(|r| Msg::DeleteChild(id, r)).await?
    }

    /// The children in start order with their status and kind.
    ///
    /// # Errors
    /// [`ChildError::Unavailable`].
    ///
    /// # Cancel safety
    /// Cancel safe (a read).
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, ChildError> {
        self.handle.call(Msg::WhichChildren).await
    }

    /// Counts of specs, active children, supervisors and workers.
    ///
    /// # Errors
    /// [`ChildError::Unavailable`].
    ///
    /// # Cancel safety
    /// Cancel safe (a read).
    pub async fn count_children(&self) -> Result<ChildCounts, ChildError> {
        self.handle.call(Msg::CountChildren).await
    }

    /// A serialisable snapshot: children, statuses, generations, the restart log.
    ///
    /// # Errors
    /// [`ChildError::Unavailable`].
    ///
    /// # Cancel safety
    /// Cancel safe (a read).
    pub async fn inspect(&self) -> Result<SupervisorSnapshot, ChildError> {
        self.handle.call(Msg::Inspect).await
    }

    /// Stops the supervisor: its children are stopped in reverse start order, each awaited
    /// before the next, then it exits with reason `shutdown`. Returns when it has exited.
    ///
    /// # Cancel safety
    /// Dropping the future does not cancel the shutdown, only the wait for it.
    pub async fn stop(&self) {
        self.handle.stop().await
    }

    /// Waits until the supervisor has exited (for whatever reason).
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn wait(&self) {
        let _ = self.handle.actor.get_cell().wait(None).await;
    }
}

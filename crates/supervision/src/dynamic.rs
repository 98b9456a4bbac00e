//! The dynamic supervisor: children added at run time, one_for_one, concurrent shutdown.

use std::fmt;

use ractor::ActorCell;

use crate::child::{ChildId, ChildKind, ChildSpec, ChildSpecBuilder, StartError, StartOutcome};
use crate::core::{self, Config, Handle, Init, Msg};
use crate::error::{ChildError, SupervisorError};
use crate::flags::{AutoShutdown, DynamicFlags, Strategy};
use crate::inspect::{ChildCounts, ChildInfo, SupervisorSnapshot};

/// Elixir's `DynamicSupervisor`: starts no child by itself; children are added with
/// [`DynamicSupervisorRef::start_child`], restarted one_for_one, limited by `max_children`,
/// given shared start arguments, and stopped concurrently. A child that exits and is not
/// restarted is removed (as in Elixir), and so is one whose start answers ignore.
#[derive(Debug, Clone, Copy)]
pub struct DynamicSupervisor;

impl DynamicSupervisor {
    /// Starts an unlinked dynamic supervisor.
    ///
    /// # Errors
    /// [`SupervisorError::Spawn`] (e.g. a name already registered).
    ///
    /// # Cancel safety
    /// Cancel safe: it has no children yet.
    pub async fn start(
        name: Option<String>,
        flags: DynamicFlags,
    ) -> Result<DynamicSupervisorRef, SupervisorError> {
        Self::spawn(name, flags, None).await
    }

    /// Starts a dynamic supervisor linked to `parent`.
    ///
    /// # Errors
    /// As [`DynamicSupervisor::start`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn start_linked(
        name: Option<String>,
        flags: DynamicFlags,
        parent: ActorCell,
    ) -> Result<DynamicSupervisorRef, SupervisorError> {
        Self::spawn(name, flags, Some(parent)).await
    }

    async fn spawn(
        name: Option<String>,
        flags: DynamicFlags,
        parent: Option<ActorCell>,
    ) -> Result<DynamicSupervisorRef, SupervisorError> {
        if flags.period.is_zero() {
            return Err(SupervisorError::InvalidFlags {
                supervisor: name.unwrap_or_else(|| "<unnamed>".into()),
                source: crate::FlagsError::ZeroPeriod,
            });
        }
        let config = Config {
            name,
            strategy: Strategy::OneForOne,
            intensity: flags.intensity,
            period: flags.period,
            auto_shutdown: AutoShutdown::Never,
            backoff: flags.backoff,
            dynamic: true,
            max_children: flags.max_children,
            extra: flags.extra,
        };
        let handle = core::spawn(
            Init {
                config,
                children: Vec::new(),
            },
            parent,
        )
        .await?;
        Ok(DynamicSupervisorRef { handle })
    }

    /// A child spec (kind supervisor) that starts a dynamic supervisor as a nested child.
    pub fn child_spec(
        id: impl Into<ChildId>,
        name: Option<String>,
        flags: DynamicFlags,
    ) -> ChildSpecBuilder {
        ChildSpec::builder(id)
            .kind(ChildKind::Supervisor)
            .start(move |args| {
                let (name, flags) = (name.clone(), flags.clone());
                async move {
                    let sup =
                        DynamicSupervisor::start_linked(name, flags, args.supervisor().clone())
                            .await
                            .map_err(StartError::from_error)?;
                    Ok(StartOutcome::Started(sup.cell()))
                }
            })
    }
}

/// A handle to a running [`DynamicSupervisor`]. Cheap to clone.
#[derive(Clone)]
pub struct DynamicSupervisorRef {
    handle: Handle,
}

impl fmt::Debug for DynamicSupervisorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicSupervisorRef")
            .field("name", &self.handle.name)
            .finish()
    }
}

impl DynamicSupervisorRef {
    /// The supervisor's actor.
    pub fn cell(&self) -> ActorCell {
        self.handle.actor.get_cell()
    }

    /// The supervisor's name (its actor id when unnamed).
    pub fn name(&self) -> &str {
        &self.handle.name
    }

    /// Starts a child. `Ok(None)`: the start function answered ignore (nothing is kept).
    ///
    /// # Errors
    /// [`ChildError::MaxChildren`], [`ChildError::AlreadyStarted`],
    /// [`ChildError::SignificantUnderNever`] (a dynamic supervisor has no auto-shutdown),
    /// [`ChildError::StartFailed`] (no spec kept, no restart counted),
    /// [`ChildError::Unavailable`].
    ///
    /// # Cancel safety
    /// Dropping the future does not cancel the request: the supervisor still starts the child.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<Option<ActorCell>, ChildError> {
        self.handle.call(|r| Msg::StartChild(spec, r)).await?
    }

    /// Stops a child per its shutdown spec and removes it.
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

    /// The children in start order.
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

    /// A serialisable snapshot.
    ///
    /// # Errors
    /// [`ChildError::Unavailable`].
    ///
    /// # Cancel safety
    /// Cancel safe (a read).
    pub async fn inspect(&self) -> Result<SupervisorSnapshot, ChildError> {
        self.handle.call(Msg::Inspect).await
    }

    /// Stops the supervisor: all children are stopped concurrently, each per its shutdown spec.
    ///
    /// # Cancel safety
    /// Dropping the future does not cancel the shutdown, only the wait for it.
    pub async fn stop(&self) {
        self.handle.stop().await
    }

    /// Waits until the supervisor has exited.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn wait(&self) {
        let _ = self.handle.actor.get_cell().wait(None).await;
    }
}

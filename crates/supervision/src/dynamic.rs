//! The dynamic supervisor: children added at run time, one_for_one, concurrent shutdown.

use ractor::ActorCell;

use crate::child::{ChildId, ChildKind, ChildSpec, ChildSpecBuilder, StartError, StartOutcome};
use crate::core::{self, Config, Init};
use crate::error::SupervisorError;
use crate::flags::{AutoShutdown, DynamicFlags, Strategy};
use crate::handle::SupervisorRef;

/// Elixir's `DynamicSupervisor`: starts no child by itself; children are added with
/// [`SupervisorRef::start_child`], restarted one_for_one, limited by `max_children`,
/// given shared start arguments, and stopped concurrently. A child that exits and is not
/// restarted is removed (as in Elixir), and so is one whose start in `start_child` answers
/// ignore (a restart that answers ignore leaves the child stopped: see
/// [`SupervisorRef::restart_child`]).
///
/// It is administered through the same [`SupervisorRef`] as a static
/// [`Supervisor`](crate::Supervisor); [`SupervisorRef`] says which calls answer differently.
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
    ) -> Result<SupervisorRef, SupervisorError> {
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
    ) -> Result<SupervisorRef, SupervisorError> {
        Self::spawn(name, flags, Some(parent)).await
    }

    async fn spawn(
        name: Option<String>,
        flags: DynamicFlags,
        parent: Option<ActorCell>,
    ) -> Result<SupervisorRef, SupervisorError> {
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
        core::spawn(
            Init {
                config,
                children: Vec::new(),
            },
            parent,
        )
        .await
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

/// The handle [`DynamicSupervisor::start`] returns: the same type as [`SupervisorRef`] (one
/// handle serves both supervisor kinds), kept under this name so that code written against it
/// compiles unchanged.
pub type DynamicSupervisorRef = SupervisorRef;

//! The static supervisor: a list of child specs started in order, restarted per strategy.

use std::collections::HashSet;

use ractor::ActorCell;

use crate::child::{ChildId, ChildKind, ChildSpec, ChildSpecBuilder, StartError, StartOutcome};
use crate::core::{self, Config, Init};
use crate::error::SupervisorError;
use crate::flags::{AutoShutdown, SupervisorFlags};
use crate::handle::SupervisorRef;

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
        core::spawn(Init { config, children }, parent).await
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

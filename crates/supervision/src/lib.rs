//! Generic OTP supervision on [`ractor`]: supervisors, dynamic supervisors, child specs,
//! restart strategies and intensity, ordered shutdown, and a registry.
//!
//! # A guided tour
//!
//! * A [`ChildSpec`] says how to start a child (a start function called again on every
//!   restart, which may answer [`StartOutcome::Ignore`]), when to restart it ([`RestartType`]),
//!   how to stop it ([`Shutdown`]) and whether it is a worker or a supervisor ([`ChildKind`]).
//!   Build one with [`ChildSpec::builder`]; [`StartArgs::spawn_linked`] spawns a ractor actor
//!   linked to the supervisor.
//! * A [`Supervisor`] starts its static children in order and restarts them per its
//!   [`SupervisorFlags`]: [`Strategy`] one_for_one / one_for_all / rest_for_one, restart
//!   intensity and period, [`AutoShutdown`] and an optional [`Backoff`] (our addition to OTP).
//!   Too many restarts in the period is a meltdown: the children are stopped in reverse start
//!   order and the supervisor exits with reason `shutdown`. Supervisors nest
//!   ([`Supervisor::child_spec`]); a melted-down child supervisor is restarted by its parent
//!   like any child (escalation).
//! * [`SupervisorRef`] administers the children of either kind of supervisor (one handle type;
//!   [`DynamicSupervisorRef`] is the same type under another name): `start_child`,
//!   `terminate_child`, `restart_child`, `delete_child`, `which_children`, `count_children`,
//!   `inspect`, `stop`, `wait`. Where the kinds differ the supervisor answers for its own
//!   kind (e.g. a dynamic supervisor keeps no terminated child, so `restart_child` there finds
//!   none: [`ChildError::NotFound`]).
//!   Every call has a bounded wait ([`DEFAULT_QUERY_TIMEOUT`] for the queries,
//!   [`DEFAULT_CHANGE_TIMEOUT`] for the changes, set per handle with
//!   [`SupervisorRef::with_query_timeout`] / [`SupervisorRef::with_change_timeout`]) and fails
//!   with [`ChildError::Timeout`] when the supervisor is too busy to answer in time.
//! * A start function that panics has failed to start (OTP catches the start call); the
//!   supervisor never dies of it.
//! * A [`DynamicSupervisor`] takes children at run time, with `max_children`, shared start
//!   arguments, and concurrent shutdown; [`DynamicSupervisor::start`] returns a
//!   [`SupervisorRef`] too.
//! * A [`Registry`] maps unique names to actors with generation numbers, unregisters a name when
//!   its actor dies (answering "restarting" for a restart grace, then forgetting it), and
//!   publishes register / unregister events.
//! * Reports are `tracing` events with target [`report::TARGET`] (see [`report`]). One
//!   [`ChildStatus`] (running, restarting, not running) is in both `which_children`'s
//!   [`ChildInfo`] (beside the running child's `cell`) and the serialisable
//!   [`SupervisorSnapshot`] that comes from `inspect`.
//!
//! Normal and abnormal exits: see [`ExitReason`]. The full contract, item by item, with the
//! code and the test that proves each, is `docs/semantics.md`.
//!
//! # Examples
//! ```
//! use ractor::{Actor, ActorProcessingErr, ActorRef};
//! use supervision::{ChildSpec, Strategy, Supervisor, SupervisorFlags};
//!
//! struct Worker;
//! impl Actor for Worker {
//!     type Msg = ();
//!     type State = ();
//!     type Arguments = ();
//!     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let worker = |id: &str| {
//!     ChildSpec::builder(id)
//!         .start(|args| async move { args.spawn_linked(None, Worker, ()).await })
//!         .build()
//!         .unwrap()
//! };
//! let flags = SupervisorFlags::builder().strategy(Strategy::RestForOne).build().unwrap();
//! let sup = Supervisor::start(None, flags, vec![worker("a"), worker("b")]).await.unwrap();
//! assert_eq!(sup.count_children().await.unwrap().active, 2);
//! sup.stop().await; // stops b, then a
//! # }
//! ```

mod child;
mod core;
mod dynamic;
mod error;
mod flags;
mod handle;
mod inspect;
mod reason;
mod registry;
pub mod report;
mod stop;
mod supervisor;

pub use child::{
    ChildId, ChildKind, ChildSpec, ChildSpecBuilder, RestartType, Shutdown, StartArgs, StartError,
    StartFn, StartOutcome,
};
pub use dynamic::{DynamicSupervisor, DynamicSupervisorRef};
pub use error::{ChildError, FlagsError, SpecError, SupervisorError};
pub use flags::{
    AutoShutdown, Backoff, DynamicFlags, DynamicFlagsBuilder, Strategy, SupervisorFlags,
    SupervisorFlagsBuilder,
};
pub use handle::{DEFAULT_CHANGE_TIMEOUT, DEFAULT_QUERY_TIMEOUT, SupervisorRef};
pub use inspect::{
    ChildCounts, ChildInfo, ChildSnapshot, ChildStatus, RestartRecord, SupervisorSnapshot,
};
pub use reason::ExitReason;
pub use registry::{
    NameHandle, Registration, Registry, RegistryError, RegistryEvent, UnregisterReason,
};
pub use supervisor::Supervisor;

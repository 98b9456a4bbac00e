//! One Claude Code session: a [ractor](https://docs.rs/ractor) actor owning one CLI process.
//!
//! This crate is the leaf of every supervision tree. A [`Session`] launches the CLI in two-way
//! stream-json mode (through a [`Launcher`]), sends `initialize`, and is ready once the CLI has
//! answered. From then on:
//!
//! - **Turns** — [`Session::query`] queues a [`Prompt`] and returns a [`TurnStream`] of typed
//!   messages ending with the turn's `result`. Turns run one at a time in a bounded FIFO queue
//!   ([`QueuePolicy`]); each stream receives only the frames of its own turn. Helpers collect a
//!   turn ([`TurnStream::collect`] → [`TurnOutput`]: text, tool calls with their results, the
//!   result, the cost) or stream its text ([`TurnStream::text_deltas`]).
//! - **Control** — [`Session::interrupt`] (works before the first frame too),
//!   [`Session::set_model`], [`Session::set_permission_mode`], [`Session::mcp_status`],
//!   [`Session::context_usage`]; dropping a turn's stream interrupts it or takes it off the queue.
//! - **Callbacks** ([`Callbacks`] in [`SessionConfigBuilder::callbacks`]) — a permission callback
//!   ([`Permission`]), hooks for every hook event ([`HookEvent`], [`HookOutput`]) and in-process
//!   MCP tools ([`SdkMcpServer`], [`SdkTool`]); each runs on its own task with a deadline, knows
//!   its session, is cancelled by the CLI's `control_cancel_request`, and turns a failure or a
//!   panic into an error answer.
//! - **Where the CLI runs** — [`LocalLauncher`] (default) or [`CommandPrefixLauncher`]
//!   (`ssh HOST --`, `docker exec -i C`, `kubectl exec -i POD --`, `unshare …`), or your own
//!   [`Launcher`].
//! - **Time limits** ([`Timeouts`]) — init, per turn, and a stall detector that interrupts a
//!   silent turn and stops the CLI if the interrupt does not end it.
//! - **Robust framing** — lines up to a configurable limit (64 MiB by default); an oversize or
//!   malformed line is reported as a [`SessionEvent`] and skipped, and the session lives on.
//!   stderr is always drained; its tail goes into errors.
//! - **Process hygiene** — everything the CLI starts, however detached, is held in a
//!   [`Containment`] the kernel enforces (a cgroup v2, a PID namespace, a cgroup v1 freezer, a
//!   subreaper: [`ContainmentPolicy`]) and dies with the session or with its host, SIGKILL
//!   included; signals go through pidfds, never a reused pid. The CLI gets a clean environment
//!   by default ([`EnvPolicy`]); a memory limit covers the whole tree; an [`EgressPolicy`]
//!   limits where the tree may connect (a network namespace of its own, where the machine
//!   allows). Stopping follows the
//!   recipe interrupt → close stdin → grace → SIGTERM → grace → SIGKILL → reap. A CLI
//!   that dies on its own fails the running and queued turns with a [`SessionError`] carrying its
//!   exit status and stderr tail, and the actor exits abnormally so a supervisor can restart it.
//! - **State** — the session id (from the newest `init`, `result` or `conversation_reset`) and
//!   per-turn cost computed from the CLI's cumulative totals live in a [`SessionLedger`] that a
//!   restarted instance can share, so totals continue instead of resetting or double counting.
//! - **Observability** — [`Session::health`] returns a serde [`HealthSnapshot`];
//!   [`Session::events`] subscribes to typed [`SessionEvent`]s; `tracing` spans cover each turn and
//!   each session's I/O tasks.
//!
//! - **Warm spares** — a [`SparePool`] keeps CLI processes started ahead of need with the CLI's
//!   `--await-claim`; a session given the pool ([`SessionConfigBuilder::spares`]) whose spawn-time
//!   options match takes a parked spare and binds it with `claim_session` (its directory,
//!   permission mode, system prompt), skipping the CLI's start-up; any other starts cold, and
//!   [`HealthSnapshot::start`] ([`StartPath`]) says which path it took and why.
//!
//! For one-shot work, [`query`] starts a session, runs one prompt and stops it.
//!
//! # Examples
//!
//! ```no_run
//! use claude_session::{Session, SessionConfig};
//! use futures::StreamExt;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let cli = claude_protocol::find_cli(None)?;
//! let config = SessionConfig::builder("assistant", cli).turn_timeout("5m").build()?;
//! let session = Session::start(config).await?;
//!
//! let mut turn = session.query("List the files here").await?;
//! while let Some(message) = turn.next().await {
//!     println!("{:?}", message?);
//! }
//! println!("spent so far: ${:.4}", session.ledger().totals().cost_usd);
//! session.stop().await?;
//! # Ok(()) }
//! ```

mod actor;
mod callbacks;
mod config;
mod containment;
mod egress;
mod error;
mod events;
mod framing;
mod health;
mod incoming;
mod launcher;
mod ledger;
mod mirror;
mod query;
mod session;
mod spares;
mod stderr;
mod turn;

pub use callbacks::{
    CallbackError, Callbacks, CallbacksBuilder, DEFAULT_CALLBACK_DEADLINE, HookEvent, HookInput,
    HookOutput, Permission, PermissionRequest, SdkMcpServer, SdkTool, ToolRequest, ToolResult,
};
pub use config::{
    ConfigError, EnvPolicy, IntoDuration, QueuePolicy, SessionConfig, SessionConfigBuilder,
    Timeouts,
};
pub use containment::{
    Containment, ContainmentError, ContainmentKind, ContainmentPolicy, ContainmentReport,
    ContainmentScope, ContainmentUsage, MemoryEnforcement, MemorySource, available_mechanisms,
};
pub use egress::{EgressMechanism, EgressPolicy, EgressReport};
pub use error::{ExitInfo, SessionError};
pub use events::{SessionEvent, SessionEventKind, SkipReason};
pub use health::{HealthSnapshot, SessionStatus, StartPath};
pub use incoming::{ControlHandler, RequestContext};
pub use launcher::{
    CommandPrefixLauncher, GroupSignal, GroupSignaller, LAUNCH_ID_ENV, LaunchContext, LaunchError,
    LaunchedProcess, Launcher, LocalLauncher, SESSION_ENV, spawn_contained,
};
pub use ledger::{CostTotals, SessionLedger, TurnCost};
pub use mirror::{MirrorEvent, MirrorSink};
pub use query::query;
pub use session::{ContextUsage, Session, StartOptions};
pub use spares::{MAX_SPARES, SparePool, SparePoolBuilder, SparePoolError, SpareStats};
pub use turn::{PartialTurn, Prompt, ServerInfo, ToolCall, TurnOutput, TurnStream};

#![doc = include_str!("../README.md")]

mod agent;
pub mod gateway;
mod query;
pub mod store;
mod supervisor;

pub use agent::{Agent, AgentError};
pub use gateway::{
    Budget, Credential, GatewayConfig, GatewayError, GatewayStats, Price, Pricing, SessionTraffic,
};
pub use query::{QueryStream, query, query_stream, query_with};

pub use store::{FileStore, MemoryStore, SessionRecord, SessionStore, StoreError};
pub use supervisor::{
    ClaudeSupervisor, ClaudeSupervisorBuilder, DurationError, FleetConfig, FleetHealth,
    FleetSession, LostConversation, MAX_NAME_LEN, OwnedSession, SessionHandle, SessionInfo,
    SessionReport, SessionSpec, SessionState, SpecForRecord, SupervisorError, SupervisorEvent,
    SupervisorEventKind, TreeHealth, validate_name,
};

// What a user of the facade needs from the layers below, by name (not whole crates).
pub use claude_protocol::{
    ClaudeOptions, ClaudeOptionsBuilder, Message, OptionsError, PermissionMode, find_cli,
};
pub use claude_session::{
    Callbacks, CommandPrefixLauncher, CostTotals, EgressMechanism, EgressPolicy, EgressReport,
    HealthSnapshot, IntoDuration, Launcher, LocalLauncher, PartialTurn, Prompt, Session,
    SessionConfig, SessionConfigBuilder, SessionError, SessionEventKind, SparePool, SpareStats,
    StartPath, Timeouts, TurnOutput, TurnStream,
};
pub use supervision::{Backoff, RestartType};

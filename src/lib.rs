//! A supervised runtime for Claude Code agents.
//!
//! This is the facade: it re-exports the workspace crates users need, and holds what ties them
//! together (the session store of the hybrid pattern; the supervisor of named sessions).

pub mod store;
mod supervisor;

pub use claude_protocol as protocol;
pub use claude_session as session;
pub use store::{FileStore, MemoryStore, SessionRecord, SessionStore, StoreError};
pub use supervision;
pub use supervisor::{
    ClaudeSupervisor, ClaudeSupervisorBuilder, SessionHandle, SessionInfo, SessionReport, SessionSpec, SessionState,
    SupervisorError, SupervisorEvent, SupervisorEventKind, TreeHealth,
};

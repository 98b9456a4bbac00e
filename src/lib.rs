#![doc = include_str!("../README.md")]

pub mod store;
mod supervisor;

pub use claude_protocol as protocol;
pub use claude_session as session;
pub use store::{FileStore, MemoryStore, SessionRecord, SessionStore, StoreError};
pub use supervision;
pub use supervisor::{
    ClaudeSupervisor, ClaudeSupervisorBuilder, SessionHandle, SessionInfo, SessionReport,
    SessionSpec, SessionState, SupervisorError, SupervisorEvent, SupervisorEventKind, TreeHealth,
};

//! A supervised runtime for Claude Code agents.
//!
//! This is the facade: it re-exports the workspace crates users need.
#![doc(html_root_url = "https://docs.rs/claude-supervisor")]

pub use claude_protocol as protocol;
pub use claude_session as session;
pub use supervision;

//! The deployable agent server of claude-supervisor, and its operator command line.
//!
//! The binary, `claude-supervisor`, runs a supervision tree of Claude Code sessions from a
//! TOML config ([`Config`]) behind an HTTP API ([`api`]): `serve` starts it; `query`,
//! `sessions` and `health` talk to a running server (or, for `query` without `--server`, run
//! an ephemeral one-shot); `doctor` checks a machine; `install-cli` installs the CLI from the
//! npm registry into the data dir.
//!
//! The same server can be started in-process ([`start`]), which is how its tests run it.
//!
//! # Examples
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use claude_supervisor_server::{Config, start};
//!
//! let config = Config::parse(
//!     "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nkind = \"memory\"\n",
//!     "inline.toml".as_ref(),
//! )?;
//! let server = start(config, "inline.toml".as_ref()).await?;
//! println!("listening on http://{}", server.local_addr());
//! server.run_until_signalled().await?;
//! # Ok(())
//! # }
//! ```

pub mod api;
mod app;
pub mod client;
pub mod config;
pub mod doctor;
pub mod install;
mod metrics;
mod page;
mod security;
pub mod telemetry;

pub use api::openapi;
pub use app::{RunningServer, ServeError, start};
pub use config::{Config, ConfigError};

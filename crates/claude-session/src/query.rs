//! The ephemeral pattern: start a session, run one prompt, stop it.

use crate::config::SessionConfig;
use crate::error::SessionError;
use crate::session::Session;
use crate::turn::{Prompt, TurnOutput};

/// Runs one prompt in a session of its own and stops it: nothing is left behind.
///
/// # Examples
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let cli = claude_protocol::find_cli(None)?;
/// let config = claude_session::SessionConfig::builder("one-shot", cli).build()?;
/// let out = claude_session::query("What is 2 + 2?", config).await?;
/// println!("{}", out.final_text().unwrap_or_default());
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// Any [`SessionError`] of starting the session or of the turn.
///
/// # Cancel safety
///
/// Dropping the future stops the session (its only handle is dropped): the turn is interrupted
/// and the CLI shut down by the full recipe, so no process outlives the call.
pub async fn query(
    prompt: impl Into<Prompt>,
    config: SessionConfig,
) -> Result<TurnOutput, SessionError> {
    let session = Session::start(config).await?;
    let outcome = async { session.query(prompt).await?.collect().await }.await;
    session.stop().await?;
    outcome
}

//! One-shot queries: [`query`], [`query_with`] and [`query_stream`] (the ephemeral pattern).
//!
//! A session is started for the one prompt and stopped by the full recipe when the turn ends (or
//! when the future or stream is dropped): nothing is left behind. The CLI is found by the usual
//! discovery ([`find_cli`](crate::find_cli)) unless the [`Agent`] names one; no name is needed.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use claude_protocol::Message;
use claude_session::{Prompt, Session, SessionConfig, SessionError, TurnOutput, TurnStream};
use futures::Stream;

use crate::agent::Agent;
use crate::supervisor::SupervisorError;

/// Runs one prompt with the default options and returns the answer.
///
/// # Examples
///
/// ```no_run
/// # async fn example() -> Result<(), claude_supervisor::SupervisorError> {
/// let answer = claude_supervisor::query("What is 2 + 2?").await?;
/// println!("{}", answer.text());
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As [`query_with`].
///
/// # Cancel safety
///
/// Dropping the future stops the session by the full recipe: no process outlives the call.
pub async fn query(prompt: impl Into<Prompt>) -> Result<TurnOutput, SupervisorError> {
    query_with(prompt, &Agent::default()).await
}

/// Runs one prompt as `agent` and returns the answer; `Ok` only for a complete, successful turn.
///
/// # Errors
///
/// [`SupervisorError::CliNotFound`], the agent's invalid options, the session's start error,
/// [`SupervisorError::TurnFailed`] / [`SupervisorError::TurnCut`] with what arrived.
///
/// # Cancel safety
///
/// Dropping the future stops the session by the full recipe: no process outlives the call.
pub async fn query_with(
    prompt: impl Into<Prompt>,
    agent: &Agent,
) -> Result<TurnOutput, SupervisorError> {
    let (name, session) = start(agent).await?;
    let outcome = match session.query(prompt).await {
        Ok(stream) => stream
            .collect_partial()
            .await
            .map_err(|partial| SupervisorError::TurnCut {
                name: name.clone(),
                partial: partial.messages,
                source: Box::new(partial.error),
            }),
        Err(e) => Err(e.into()),
    };
    session.stop().await?;
    SupervisorError::judge(&name, outcome?)
}

/// Runs one prompt as `agent` and streams its frames; the session stops when the stream ends or
/// is dropped.
///
/// # Errors
///
/// As [`query_with`], for the start; the stream yields the turn's own errors.
///
/// # Cancel safety
///
/// Dropping the future or the stream stops the session by the full recipe.
pub async fn query_stream(
    prompt: impl Into<Prompt>,
    agent: &Agent,
) -> Result<QueryStream, SupervisorError> {
    let (_, session) = start(agent).await?;
    let turn = session.query(prompt).await?;
    Ok(QueryStream {
        turn,
        _session: session,
    })
}

/// The frames of a one-shot turn; owns its session, which stops when this is dropped.
#[derive(Debug)]
pub struct QueryStream {
    turn: TurnStream,
    _session: Session,
}

impl QueryStream {
    /// Reads the rest of the turn; `Ok` only when it succeeded.
    ///
    /// # Errors
    ///
    /// As [`query_with`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the session.
    pub async fn collect(self) -> Result<TurnOutput, SupervisorError> {
        let name = self._session.name().to_owned();
        let out =
            self.turn
                .collect_partial()
                .await
                .map_err(|partial| SupervisorError::TurnCut {
                    name: name.clone(),
                    partial: partial.messages,
                    source: Box::new(partial.error),
                })?;
        let _ = self._session.stop().await;
        SupervisorError::judge(&name, out)
    }
}

impl Stream for QueryStream {
    type Item = Result<Message, SessionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.turn).poll_next(cx)
    }
}

async fn start(agent: &Agent) -> Result<(String, Session), SupervisorError> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let name = if agent.name.is_empty() {
        format!("query-{}", NEXT.fetch_add(1, Ordering::Relaxed))
    } else {
        agent.name.clone()
    };
    let cli = match &agent.cli_path {
        Some(cli) => cli.clone(),
        None => claude_protocol::find_cli(None).map_err(|source| SupervisorError::CliNotFound {
            supervisor: name.clone(),
            source,
        })?,
    };
    let options = agent.options().map_err(|e| match e {
        crate::agent::AgentError::Options { source, .. } => SupervisorError::Start {
            name: name.clone(),
            source: SessionError::Options {
                session: name.clone(),
                source,
            },
        },
    })?;
    let mut builder = SessionConfig::builder(name.clone(), cli).options(options);
    if let Some(d) = agent.init_timeout {
        builder = builder.init_timeout(d);
    }
    if let Some(d) = agent.turn_timeout {
        builder = builder.turn_timeout(d);
    }
    if let Some(d) = agent.stall_timeout {
        builder = builder.stall_timeout(d);
    }
    let config = builder.build().map_err(|source| SupervisorError::Config {
        name: name.clone(),
        source,
    })?;
    let session = Session::start(config)
        .await
        .map_err(|source| SupervisorError::Start {
            name: name.clone(),
            source,
        })?;
    Ok((name, session))
}

//! The credential gateway: the real API credential stays in the supervisor, the CLIs get a
//! per-session token that is worthless anywhere else.
//!
//! On for a tree given a credential
//! ([`ClaudeSupervisorBuilder::credential`](crate::ClaudeSupervisorBuilder::credential), off again
//! with [`without_gateway`](crate::ClaudeSupervisorBuilder::without_gateway)), or configured with
//! [`ClaudeSupervisorBuilder::gateway`](crate::ClaudeSupervisorBuilder::gateway).
//! The tree then serves an HTTP gateway on loopback (an ephemeral port) and launches every
//! session's CLI with `ANTHROPIC_BASE_URL` pointing at it and `ANTHROPIC_API_KEY` set to a token
//! minted for that session (`ANTHROPIC_AUTH_TOKEN` and `CLAUDE_CODE_OAUTH_TOKEN` are removed
//! from its environment). The agent, its tools and anything they spawn never see the real
//! credential: the gateway checks the token (in constant time), replaces it with the real
//! credential and forwards the request upstream; the response streams back as it arrives.
//!
//! ```text
//! CLI ──(x-api-key: <session token>)──▶ gateway ──(x-api-key: <real key>)──▶ upstream API
//! ```
//!
//! A session's token lives as long as the session: it is minted when the name is taken, kept
//! across restarts and wake-ups of its CLI (the same conversation, the same token), and revoked
//! when the session is terminated, forgotten or ends. Requests with a missing, wrong or revoked
//! token are refused with 401 in the Messages API's error shape, bodies over
//! [`GatewayConfig::max_body_bytes`] with 413, a body that stalls for
//! [`GatewayConfig::body_idle_timeout`] with 408 `timeout_error`, an unreachable upstream with
//! 502. A client that does not send its request's head within
//! [`GatewayConfig::header_read_timeout`] is disconnected.
//! [`ClaudeSupervisor::gateway_stats`](crate::ClaudeSupervisor::gateway_stats) counts each
//! session's traffic, tokens and cost.
//!
//! # Budgets
//!
//! [`GatewayConfig::session_budget`] gives every session its own [`Budget`] (requests, tokens
//! and dollars, each per a period of its own, in fixed windows anchored at first use);
//! [`GatewayConfig::group_budget`] one shared by the sessions started with
//! [`SessionSpec::budget_group`](crate::SessionSpec::budget_group). Tokens and dollars are read
//! from the responses while they stream through (the SSE `message_start` and `message_delta`
//! usage, or a JSON message's `usage`), chunk by chunk, without holding a chunk back; dollars
//! are priced with [`Pricing`] (per model family; an unknown model costs the fallback price, by
//! default the highest, Opus's). A request that arrives while a limit is spent is refused
//! before anything reaches the upstream, with the Messages API's rate-limit answer:
//!
//! ```text
//! HTTP/1.1 429 Too Many Requests
//! retry-after: <seconds until the window frees>
//!
//! {"type":"error","error":{"type":"rate_limit_error","message":"session `a` is over its budget
//!  at the gateway: session `a`'s budget of 30 requests per 1m (resets in 12s)"}}
//! ```
//!
//! (no `x-should-retry: false`: the client may retry once the window frees), and the first
//! refusal of each window sends
//! [`SupervisorEventKind::BudgetExceeded`](crate::SupervisorEventKind::BudgetExceeded).
//!
//! # What is logged
//!
//! Refusals at `warn` (no valid token, an oversize or stalled body, an unreachable upstream, a
//! head that did not arrive in time, a budget spent once per window), each forwarded request at
//! `debug` (session, method, path, status). Never the real credential, a token, a header value
//! or a body.

mod budget;
mod credential;
mod error;
mod pricing;
mod proxy;
mod stats;
mod tokens;
mod usage;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use claude_protocol::ClaudeOptions;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::broadcast;
use tokio::task::{JoinHandle, JoinSet};

use crate::SupervisorEvent;

pub use budget::Budget;
pub use credential::Credential;
pub use error::GatewayError;
pub use pricing::{Price, Pricing};
pub use stats::{GatewayStats, SessionTraffic};

pub(crate) use tokens::SessionToken;

/// The variables the gateway sets for a session's CLI, or removes from its environment.
const BASE_URL_ENV: &str = "ANTHROPIC_BASE_URL";
pub(crate) const API_KEY_ENV: &str = "ANTHROPIC_API_KEY";
/// Other credentials the CLI would use instead of (or besides) the API key.
const REMOVED_ENV: &[&str] = &["ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"];

/// How the tree's credential gateway is set up: where it forwards to, with which credential.
///
/// The credential's `Debug` prints `***`, so a config can be logged.
#[derive(Clone, Debug)]
#[must_use]
pub struct GatewayConfig {
    pub(crate) upstream: String,
    pub(crate) credential: Credential,
    pub(crate) max_body: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) header_read_timeout: Duration,
    pub(crate) body_idle_timeout: Duration,
    pub(crate) session_budget: Option<Budget>,
    pub(crate) group_budgets: BTreeMap<String, Budget>,
    pub(crate) pricing: Pricing,
}

impl GatewayConfig {
    /// The default bound on a request body: 32 MiB (the Messages API's own limit).
    pub const DEFAULT_MAX_BODY: usize = 32 * 1024 * 1024;
    /// The default [`header_read_timeout`](Self::header_read_timeout): 10 s.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default [`body_idle_timeout`](Self::body_idle_timeout): 30 s.
    pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

    /// The Anthropic API, where a gateway forwards unless told otherwise.
    pub const ANTHROPIC_API: &'static str = "https://api.anthropic.com";

    /// The upstream of a gateway made from a tree's
    /// [`credential`](crate::ClaudeSupervisorBuilder::credential): this process's
    /// `ANTHROPIC_BASE_URL` when it is set (a proxy, a regional endpoint), else
    /// [`ANTHROPIC_API`](Self::ANTHROPIC_API).
    pub fn default_upstream() -> String {
        std::env::var(BASE_URL_ENV)
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| Self::ANTHROPIC_API.to_owned())
    }

    /// A gateway forwarding to `upstream` (e.g. `https://api.anthropic.com`; a path is kept as
    /// a prefix) with `credential`. The URL is checked when the tree starts.
    pub fn new(upstream: impl Into<String>, credential: Credential) -> Self {
        Self {
            upstream: upstream.into(),
            credential,
            max_body: Self::DEFAULT_MAX_BODY,
            connect_timeout: Duration::from_secs(10),
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            body_idle_timeout: Self::DEFAULT_BODY_IDLE_TIMEOUT,
            session_budget: None,
            group_budgets: BTreeMap::new(),
            pricing: Pricing::default(),
        }
    }

    /// How long a client may take to send a request's line and headers (default
    /// [`DEFAULT_HEADER_READ_TIMEOUT`](Self::DEFAULT_HEADER_READ_TIMEOUT)); past it the
    /// connection is closed (a slow-loris client holds nothing). The clock runs from when the
    /// gateway waits for a request on the connection, so an idle keep-alive connection is
    /// closed after this long too (clients open a new one).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a request body may go without a byte (default
    /// [`DEFAULT_BODY_IDLE_TIMEOUT`](Self::DEFAULT_BODY_IDLE_TIMEOUT)); past it the request is
    /// refused with 408 `timeout_error` and the connection closed.
    pub fn body_idle_timeout(mut self, timeout: Duration) -> Self {
        self.body_idle_timeout = timeout;
        self
    }

    /// Every session's own budget: each session has its own counters (kept across restarts
    /// of its CLI, dropped when the session ends). See [`Budget`].
    pub fn session_budget(mut self, budget: Budget) -> Self {
        self.session_budget = Some(budget);
        self
    }

    /// The budget of group `name`: the sessions started with
    /// [`SessionSpec::budget_group`](crate::SessionSpec::budget_group)`(name)` share its
    /// counters (on top of their own [`session_budget`](Self::session_budget), if any). A
    /// session naming a group without a budget has no group limit.
    pub fn group_budget(mut self, name: impl Into<String>, budget: Budget) -> Self {
        self.group_budgets.insert(name.into(), budget);
        self
    }

    /// What usage costs, for the dollar limits and the stats' `cost_usd` (default
    /// [`Pricing::default`]).
    pub fn pricing(mut self, pricing: Pricing) -> Self {
        self.pricing = pricing;
        self
    }

    /// Refuses request bodies over `bytes` with 413 (default [`DEFAULT_MAX_BODY`](Self::DEFAULT_MAX_BODY)).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// How long a connection to the upstream may take before the request fails with 502
    /// (default 10 s). Responses themselves have no time limit: a stream lasts as long as the
    /// turn.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

/// A running gateway: the server task, the tokens it accepts, the traffic it counted.
pub(crate) struct Gateway {
    addr: SocketAddr,
    shared: Arc<proxy::Shared>,
    server: JoinHandle<()>,
}

impl Gateway {
    /// Binds `127.0.0.1:0` and serves; budget events go to `events`.
    pub(crate) async fn start(
        config: GatewayConfig,
        events: broadcast::Sender<SupervisorEvent>,
    ) -> Result<Gateway, GatewayError> {
        let header_timeout = config.header_read_timeout;
        let shared = Arc::new(proxy::Shared::new(config, events)?);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| GatewayError::Bind { source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| GatewayError::Bind { source })?;
        let app = proxy::router(shared.clone());
        let server = tokio::spawn(serve(listener, app, header_timeout));
        tracing::info!(%addr, upstream = %shared.upstream_display(), "credential gateway listening");
        Ok(Gateway {
            addr,
            shared,
            server,
        })
    }

    /// Where it listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL a CLI is given.
    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Mints the session's token (with its budgets' meters: its own, and `budget_group`'s),
    /// or keeps the one it has.
    pub(crate) fn issue(&self, session: &str, budget_group: Option<&str>) {
        self.shared.issue(session, budget_group);
    }

    /// The session's token, unless it was revoked.
    pub(crate) fn token(&self, session: &str) -> Option<SessionToken> {
        self.shared.tokens.token(session)
    }

    /// Mints a token for a warm spare (no budgets of its own: a parked spare makes no requests,
    /// and once claimed its token is [`adopt`](Self::adopt)ed by the session).
    pub(crate) fn issue_spare(&self, spare: &str) -> SessionToken {
        self.shared.tokens.issue_spare(spare)
    }

    /// Rebinds a claimed spare's token to `session` (its traffic, budgets and revocation).
    pub(crate) fn adopt(&self, spare: &str, session: &str) {
        if self.shared.tokens.adopt(spare, session) {
            tracing::debug!(
                spare,
                session,
                "gateway token of a spare adopted by its session"
            );
        } else {
            tracing::warn!(
                spare,
                session,
                "a claimed spare's gateway token could not be adopted"
            );
        }
    }

    /// Revokes the session's token (and forgets its traffic): later requests with it get 401.
    pub(crate) fn revoke(&self, session: &str) {
        if self.shared.tokens.revoke(session) {
            tracing::debug!(session, "gateway token revoked");
        }
    }

    /// The traffic counted so far.
    pub(crate) fn stats(&self) -> GatewayStats {
        self.shared.stats()
    }

    /// Points `options` at the gateway with `token` as the CLI's only credential: the gateway's
    /// URL and the token replace whatever the options set, the other credentials are removed.
    /// Without a token, the API key is left for the launch to set (a warm spare's own).
    pub(crate) fn apply(&self, options: &mut ClaudeOptions, token: Option<&SessionToken>) {
        options.env.retain(|(k, _)| {
            k != BASE_URL_ENV && k != API_KEY_ENV && !REMOVED_ENV.iter().any(|r| k == *r)
        });
        options
            .env
            .push((BASE_URL_ENV.into(), self.base_url().into()));
        if let Some(token) = token {
            options
                .env
                .push((API_KEY_ENV.into(), token.expose().to_owned().into()));
        }
        for name in REMOVED_ENV {
            if !options.env_remove.iter().any(|k| k == *name) {
                options.env_remove.push((*name).into());
            }
        }
    }

    /// Stops serving (connections in flight are cut).
    pub(crate) fn shutdown(&self) {
        self.server.abort();
    }
}

/// Serves HTTP/1.1 on `listener`: each connection in a task of the server's (aborting the
/// server cuts them all), with `header_timeout` on request lines and headers.
///
/// hyper's own connection builder, not `axum::serve`, because only it sets a header read
/// timeout (it needs a timer). HTTP/1.1 only: the CLI speaks it to an `http://` base URL.
async fn serve(listener: tokio::net::TcpListener, app: axum::Router, header_timeout: Duration) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Each SSE event goes out at once (no Nagle delay on small writes).
                    let _ = stream.set_nodelay(true);
                    let service = TowerToHyperService::new(app.clone());
                    connections.spawn(async move {
                        let served = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(header_timeout)
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                        match served {
                            // hyper ends a connection that sent nothing (or sat idle
                            // between requests) quietly when the timeout passes: a timeout
                            // error means part of a request's head arrived, then stalled.
                            Err(error) if error.is_timeout() => {
                                tracing::warn!(
                                    %peer,
                                    timeout = ?header_timeout,
                                    "gateway closed a connection: its request headers did not arrive in time"
                                );
                            }
                            Err(error) => {
                                tracing::debug!(%peer, %error, "gateway connection ended with an error");
                            }
                            Ok(()) => {}
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "the credential gateway could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.server.abort();
    }
}

//! The gateway's HTTP side: authenticate the session's token, swap it for the real credential,
//! forward to the upstream, stream the answer back.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use futures::{Stream, StreamExt};
use reqwest::Url;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::budget::{self, Meter, Scope, Spent};
use super::error::{api_error, rate_limited};
use super::pricing::Pricing;
use super::stats::{GatewayStats, Traffic};
use super::tokens::Tokens;
use super::usage::{Scanner, Usage};
use super::{GatewayConfig, GatewayError};
use crate::{SupervisorEvent, SupervisorEventKind};

/// What the gateway's handler shares: the tokens, the client, the upstream, the credential.
pub(super) struct Shared {
    pub(super) tokens: Tokens,
    client: reqwest::Client,
    upstream: Url,
    credential: (HeaderName, HeaderValue),
    max_body: usize,
    body_idle: Duration,
    unauthorized: AtomicU64,
    session_budget: Option<budget::Budget>,
    /// Each group's meter, shared by its sessions for the gateway's life.
    groups: HashMap<String, Arc<Meter>>,
    pricing: Arc<Pricing>,
    events: broadcast::Sender<SupervisorEvent>,
}

impl Shared {
    pub(super) fn new(
        config: GatewayConfig,
        events: broadcast::Sender<SupervisorEvent>,
    ) -> Result<Shared, GatewayError> {
        let upstream = parse_upstream(&config.upstream)?;
        let credential = config.credential.header()?;
        for (which, timeout) in [
            ("header read timeout", config.header_read_timeout),
            ("body idle timeout", config.body_idle_timeout),
        ] {
            if timeout.is_zero() {
                return Err(GatewayError::ZeroTimeout { which });
            }
        }
        if let Some(budget) = &config.session_budget {
            budget.validate("session budget")?;
        }
        let mut groups = HashMap::new();
        for (name, budget) in config.group_budgets {
            budget.validate(&format!("group `{name}`'s budget"))?;
            groups.insert(
                name.clone(),
                Arc::new(Meter::new(Scope::Group(name), budget)),
            );
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            // A redirect would carry the real credential wherever the upstream points (reqwest
            // strips `authorization` across hosts, not `x-api-key`): never follow one.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| GatewayError::Client { source })?;
        Ok(Shared {
            tokens: Tokens::default(),
            client,
            upstream,
            credential,
            max_body: config.max_body,
            body_idle: config.body_idle_timeout,
            unauthorized: AtomicU64::new(0),
            session_budget: config.session_budget.filter(|b| !b.is_unlimited()),
            groups,
            pricing: Arc::new(config.pricing),
            events,
        })
    }

    /// Mints `session`'s token with its meters: its own budget's, then its group's.
    pub(super) fn issue(&self, session: &str, budget_group: Option<&str>) {
        self.tokens.issue(session, || {
            let own = self
                .session_budget
                .clone()
                .map(|b| Arc::new(Meter::new(Scope::Session(session.to_owned()), b)));
            let group = budget_group.and_then(|g| {
                let meter = self.groups.get(g).cloned();
                if meter.is_none() {
                    tracing::debug!(
                        session,
                        group = g,
                        "the session's budget group has no budget at the gateway"
                    );
                }
                meter
            });
            own.into_iter().chain(group).collect()
        });
    }

    pub(super) fn upstream_display(&self) -> &str {
        self.upstream.as_str()
    }

    pub(super) fn stats(&self) -> GatewayStats {
        GatewayStats {
            unauthorized: self.unauthorized.load(Ordering::Relaxed),
            sessions: self
                .tokens
                .each()
                .into_iter()
                .map(|issued| (issued.session.clone(), issued.traffic.snapshot()))
                .collect(),
        }
    }

    /// The upstream URL of a request: the upstream's path as a prefix, then the request's path
    /// and query.
    fn target(&self, uri: &Uri) -> Url {
        let mut url = self.upstream.clone();
        let base = self.upstream.path().trim_end_matches('/');
        url.set_path(&format!("{base}{}", uri.path()));
        url.set_query(uri.query());
        url
    }
}

/// Checks the upstream URL: `http` or `https`, a host, no user info (it would end up in logs),
/// no query or fragment.
fn parse_upstream(raw: &str) -> Result<Url, GatewayError> {
    let bad = |reason: &str| GatewayError::InvalidUpstream {
        url: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Named without its user info: that may be a secret.
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        return Err(GatewayError::InvalidUpstream {
            url: shown.to_string(),
            reason: "user info is not allowed (pass the credential as a Credential)".into(),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a query or fragment is not allowed"));
    }
    Ok(url)
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(forward).with_state(shared)
}

/// Headers never forwarded: the session's token (in either header), the connection's own
/// (hop-by-hop) headers, and the ones the client sets itself for the new request.
fn is_dropped(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "x-api-key"
            | "authorization"
            | "proxy-authorization"
            | "host"
            | "content-length"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "proxy-connection"
    )
}

/// Hop-by-hop headers of the upstream's response (hyper frames the body itself).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "proxy-connection"
    )
}

/// The token a request presents: `x-api-key` (what the CLI sends), else a bearer token.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key") {
        return key.to_str().ok();
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    auth.strip_prefix("Bearer ")
}

enum BodyError {
    TooLarge,
    /// No byte arrived for the body idle timeout.
    Stalled,
    Unreadable(axum::Error),
}

/// Reads the request body, refusing it as soon as it passes `limit`, or when no chunk comes
/// for `idle`.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    idle: Duration,
) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    loop {
        let next = tokio::time::timeout(idle, stream.next())
            .await
            .map_err(|_| BodyError::Stalled)?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(BodyError::Unreadable)?;
        if bytes.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(bytes))
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(issued) = presented(&parts.headers).and_then(|t| shared.tokens.authenticate(t)) else {
        shared.unauthorized.fetch_add(1, Ordering::Relaxed);
        let missing = presented(&parts.headers).is_none();
        tracing::warn!(method = %parts.method, path = parts.uri.path(), missing, "gateway refused a request without a valid session token");
        let message = if missing {
            "no session token: send the session's token in the x-api-key header"
        } else {
            "invalid session token (unknown, or revoked when its session ended)"
        };
        return api_error(StatusCode::UNAUTHORIZED, "authentication_error", message);
    };
    let session = issued.session.as_str();
    let traffic = issued.traffic.clone();
    traffic.request();
    let meters: Vec<&Meter> = issued.meters.iter().map(|m| &**m).collect();
    if let Err(spent) = budget::admit(&meters, Instant::now()) {
        traffic.budget_refused();
        traffic.status(429);
        return shared.refuse_spent(session, &spent);
    }
    let body = match read_body(&parts.headers, body, shared.max_body, shared.body_idle).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            traffic.status(413);
            tracing::warn!(
                session,
                limit = shared.max_body,
                "gateway refused an oversize request body"
            );
            let message = format!(
                "the request body exceeds the gateway's limit of {} bytes",
                shared.max_body
            );
            return api_error(StatusCode::PAYLOAD_TOO_LARGE, "request_too_large", &message);
        }
        Err(BodyError::Stalled) => {
            traffic.status(408);
            tracing::warn!(
                session,
                timeout = ?shared.body_idle,
                "gateway refused a request whose body stalled"
            );
            let message = format!(
                "no byte of the request body arrived for {}: the gateway gave up on it",
                humantime::format_duration(shared.body_idle)
            );
            return api_error(StatusCode::REQUEST_TIMEOUT, "timeout_error", &message);
        }
        Err(BodyError::Unreadable(error)) => {
            traffic.status(400);
            tracing::warn!(session, %error, "gateway could not read a request body");
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "the request body could not be read",
            );
        }
    };
    traffic.bytes_in(body.len());
    let mut headers = HeaderMap::with_capacity(parts.headers.len() + 1);
    for (name, value) in &parts.headers {
        if !is_dropped(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let (name, value) = &shared.credential;
    headers.insert(name.clone(), value.clone());
    let url = shared.target(&parts.uri);
    let started = std::time::Instant::now();
    let sent = shared
        .client
        .request(parts.method.clone(), url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    traffic.latency(started.elapsed());
    let upstream = match sent {
        Ok(upstream) => upstream,
        Err(error) => {
            traffic.upstream_error();
            traffic.status(502);
            tracing::warn!(session, %error, "gateway could not reach the upstream API");
            return api_error(
                StatusCode::BAD_GATEWAY,
                "api_error",
                "the gateway could not reach the upstream API",
            );
        }
    };
    let status = upstream.status();
    traffic.status(status.as_u16());
    tracing::debug!(session, method = %parts.method, path = parts.uri.path(), status = status.as_u16(), "gateway forwarded a request");
    let mut response_headers = HeaderMap::with_capacity(upstream.headers().len());
    for (name, value) in upstream.headers() {
        if !is_hop_by_hop(name) {
            response_headers.append(name.clone(), value.clone());
        }
    }
    let content_type = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let metered = Metered {
        scanner: Scanner::new(content_type),
        inner: Box::pin(upstream.bytes_stream()),
        traffic,
        meters: issued.meters.clone(),
        pricing: shared.pricing.clone(),
        done: false,
    };
    let mut response = Response::new(Body::from_stream(metered));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    response
}

impl Shared {
    /// The 429 for a request that found a budget spent; announces each limit the first time
    /// it refuses in its window.
    fn refuse_spent(&self, session: &str, spent: &[Spent]) -> Response {
        let retry_after = spent.iter().map(|s| s.resets_in).max().unwrap_or_default();
        let limits: Vec<String> = spent
            .iter()
            .map(|s| {
                format!(
                    "{} of {} (resets in {})",
                    s.scope,
                    s.limit,
                    humantime::format_duration(round_up(s.resets_in))
                )
            })
            .collect();
        let limits = limits.join("; ");
        for s in spent.iter().filter(|s| s.first) {
            let group = match &s.scope {
                Scope::Group(g) => Some(g.clone()),
                Scope::Session(_) => None,
            };
            tracing::warn!(session, group = group.as_deref(), limit = %s.limit, resets_in = ?s.resets_in, "a gateway budget is spent");
            let _ = self.events.send(SupervisorEvent {
                session: Some(session.to_owned()),
                kind: SupervisorEventKind::BudgetExceeded {
                    group,
                    limit: s.limit.clone(),
                    resets_in: s.resets_in,
                },
            });
        }
        tracing::info!(session, %limits, "gateway refused a request: budget spent");
        let message = format!("session `{session}` is over its budget at the gateway: {limits}");
        rate_limited(&message, retry_after)
    }
}

/// Whole seconds, rounded up (what the message and `retry-after` say).
fn round_up(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// The upstream's response body on its way to the CLI: each chunk is handed on as it arrives
/// (SSE events included: nothing is buffered or held back), and looked at on the way for the
/// usage it reports, which is counted at once (a response cut short counts what it reported).
struct Metered {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    scanner: Scanner,
    traffic: Arc<Traffic>,
    meters: Vec<Arc<Meter>>,
    pricing: Arc<Pricing>,
    done: bool,
}

impl Metered {
    fn tally(&self, usage: Usage) {
        if usage.is_zero() {
            return;
        }
        let dollars = self.pricing.cost(self.scanner.model(), &usage);
        self.traffic.usage(&usage, dollars);
        let now = Instant::now();
        for meter in &self.meters {
            meter.spend(usage.total(), dollars, now);
        }
    }
}

impl Stream for Metered {
    type Item = reqwest::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                self.traffic.bytes_out(chunk.len());
                let usage = self.scanner.feed(chunk);
                self.tally(usage);
            }
            Poll::Ready(None) if !self.done => {
                self.done = true;
                let usage = self.scanner.finish();
                self.tally(usage);
            }
            _ => {}
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_checked() {
        assert!(parse_upstream("https://api.anthropic.com").is_ok());
        assert!(parse_upstream("http://127.0.0.1:9/prefix/").is_ok());
        for bad in [
            "ftp://x",
            "not a url",
            "https://user:pw@host",
            "https://host/?q=1",
            "https://host/#f",
        ] {
            let err = parse_upstream(bad).unwrap_err();
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
    }

    #[test]
    fn the_upstream_path_is_a_prefix() {
        let shared = Shared::new(
            GatewayConfig::new(
                "http://127.0.0.1:9/proxy/",
                super::super::Credential::ApiKey("k".into()),
            ),
            broadcast::channel(1).0,
        )
        .unwrap();
        let uri: Uri = "/v1/messages?beta=true".parse().unwrap();
        assert_eq!(
            shared.target(&uri).as_str(),
            "http://127.0.0.1:9/proxy/v1/messages?beta=true"
        );
    }

    #[test]
    fn the_token_headers_are_never_forwarded() {
        for h in ["x-api-key", "authorization", "host", "content-length"] {
            assert!(is_dropped(&HeaderName::from_static(h)), "{h}");
        }
        assert!(!is_dropped(&HeaderName::from_static("anthropic-version")));
    }
}

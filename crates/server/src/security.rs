//! Who may call the API: a bearer token (required off loopback, compared in constant time), a
//! per-client rate limit, and a bound on the size of a request's headers.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use subtle::ConstantTimeEq;

use crate::api::error::ApiError;
use crate::app::AppState;
use crate::config::ServerSection;

/// The token, the limiter and the header bound.
pub(crate) struct Security {
    token: Option<String>,
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    max_header_bytes: usize,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself.
        f.debug_struct("Security")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("rate_limited", &self.limiter.is_some())
            .finish()
    }
}

impl Security {
    /// From `[server]`: reads the token from its variable or file.
    pub(crate) fn from_config(server: &ServerSection) -> Result<Self, String> {
        let token = match (&server.token_env, &server.token_file) {
            (Some(var), _) => Some(std::env::var(var).map_err(|_| {
                format!(
                    "config key `server.token_env`: the environment variable `{var}` is not set"
                )
            })?),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| {
                        format!(
                            "config key `server.token_file`: cannot read `{}`: {e}",
                            path.display()
                        )
                    })?
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        if token.as_deref().is_some_and(|t| t.len() < 16) {
            return Err("the bearer token must be at least 16 characters".into());
        }
        let limiter = NonZeroU32::new(server.rate_limit_per_second).map(|rate| {
            let burst = NonZeroU32::new(server.rate_limit_burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Ok(Self {
            token,
            limiter,
            max_header_bytes: server.max_header_bytes,
        })
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        given.as_bytes().ct_eq(expected.as_bytes()).into()
    }
}

/// The middleware: header bound, then rate limit, then token (`/live` and `/ready` need no
/// token: probes).
pub(crate) async fn guard(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let security = &state.security;
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > security.max_header_bytes {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request's headers are {header_bytes} bytes, more than the limit of {}",
                security.max_header_bytes
            ),
        )
        .into_response();
    }
    if let Some(limiter) = &security.limiter
        && limiter.check_key(&peer.ip()).is_err()
    {
        state.metrics.rate_limited.inc();
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests from this address: slow down",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return response;
    }
    let path = request.uri().path();
    let probe = path == "/live" || path == "/ready";
    if !probe && !security.authorized(request.headers()) {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid `Authorization: Bearer <token>` header is required",
        )
        .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    next.run(request).await
}

//! [`GatewayError`] (the gateway could not start) and the Messages API's error responses the
//! gateway answers with.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;

/// The credential gateway could not start. No variant carries the credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The upstream URL is not an `http(s)://` URL the gateway can forward to.
    #[error("gateway upstream `{url}`: {reason}")]
    InvalidUpstream {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The credential cannot be sent in a header.
    #[error("gateway credential: {reason}")]
    InvalidCredential {
        /// What is wrong with it (never its value).
        reason: &'static str,
    },
    /// The tree was given both a credential
    /// ([`ClaudeSupervisorBuilder::credential`](crate::ClaudeSupervisorBuilder::credential)) and
    /// a gateway config with its own: which one the gateway should send would be a guess.
    #[error(
        "gateway: both a tree credential and a gateway config (with its own credential) were given; give the credential in the gateway config only"
    )]
    ConflictingCredentials,
    /// The loopback listener could not be bound.
    #[error("gateway: cannot listen on 127.0.0.1: {source}")]
    Bind {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A budget cannot be enforced as given (a zero period, a dollar limit that is not a
    /// finite, non-negative amount).
    #[error("gateway {scope}: {reason}")]
    InvalidBudget {
        /// Whose budget (`the session budget`, or `group `name`'s budget`).
        scope: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A timeout of zero (nothing could ever arrive in time).
    #[error("gateway: the {which} is zero")]
    ZeroTimeout {
        /// Which timeout (`header read timeout`, `body idle timeout`).
        which: &'static str,
    },
    /// The HTTP client for the upstream could not be built (its TLS set-up failed).
    #[error("gateway: cannot build the upstream client: {source}")]
    Client {
        /// Why.
        #[source]
        source: reqwest::Error,
    },
}

/// An answer in the Messages API's error shape:
/// `{"type":"error","error":{"type":<kind>,"message":<message>}}`.
pub(super) fn api_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "type": "error",
        "error": { "type": kind, "message": message },
    });
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json");
    if status.is_client_error()
        && status != StatusCode::TOO_MANY_REQUESTS
        && status != StatusCode::REQUEST_TIMEOUT
    {
        // A refused token or an oversize body does not get better by retrying (an unreachable
        // upstream might: 502 leaves the client's retry policy alone). A spent budget frees
        // when its window ends and a stalled body may go through next time: 429 and 408 leave
        // it alone too, as the real API does.
        builder = builder.header("x-should-retry", "false");
    }
    if status == StatusCode::REQUEST_TIMEOUT {
        // The rest of the stalled body may still arrive: the connection cannot be reused.
        builder = builder.header(header::CONNECTION, "close");
    }
    builder
        .body(Body::from(body.to_string()))
        .unwrap_or_else(|_| {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = status;
            response
        })
}

/// A 429 in the Messages API's rate-limit shape, with `retry-after` (whole seconds, rounded
/// up) saying when the spent window frees.
pub(super) fn rate_limited(message: &str, retry_after: std::time::Duration) -> Response {
    let mut response = api_error(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", message);
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(secs.max(1)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_429_says_when_to_retry_and_lets_the_client_retry() {
        let r = rate_limited("spent", Duration::from_millis(2500));
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
        assert!(r.headers().get("x-should-retry").is_none());
        let r = rate_limited("spent", Duration::ZERO);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let r = api_error(StatusCode::UNAUTHORIZED, "authentication_error", "no");
        assert_eq!(r.headers()["x-should-retry"], "false");
        let r = api_error(StatusCode::REQUEST_TIMEOUT, "timeout_error", "slow");
        assert!(r.headers().get("x-should-retry").is_none());
        assert_eq!(r.headers()[header::CONNECTION], "close");
    }
}

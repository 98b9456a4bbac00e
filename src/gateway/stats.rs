//! The gateway's traffic counters: per session, and the refusals no session can be blamed for.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::usage::Usage;

/// What the gateway counted, from
/// [`ClaudeSupervisor::gateway_stats`](crate::ClaudeSupervisor::gateway_stats).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct GatewayStats {
    /// Requests refused with 401 (no token, a wrong one, a revoked one).
    pub unauthorized: u64,
    /// Each session's traffic, by name (sessions whose token is revoked are dropped).
    pub sessions: BTreeMap<String, SessionTraffic>,
}

/// One session's traffic through the gateway.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SessionTraffic {
    /// Requests that carried the session's token.
    pub requests: u64,
    /// Request body bytes received from the CLI.
    pub bytes_in: u64,
    /// Response body bytes streamed back to the CLI.
    pub bytes_out: u64,
    /// Responses by status class: 2xx…
    pub status_2xx: u64,
    /// …3xx…
    pub status_3xx: u64,
    /// …4xx (the gateway's own 408, 413 and 429 included)…
    pub status_4xx: u64,
    /// …5xx (the gateway's own 502 when the upstream cannot be reached included).
    pub status_5xx: u64,
    /// Requests the upstream could not be reached for (answered 502).
    pub upstream_errors: u64,
    /// The sum over requests of the time to the upstream's response headers (divide by
    /// `requests` for the mean; streaming time is not included).
    #[serde(with = "humantime_serde")]
    pub latency_total: Duration,
    /// Requests refused with 429 because a budget (the session's or its group's) was spent.
    pub budget_refusals: u64,
    /// Input tokens the upstream's responses reported (not from the cache).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
    /// What those tokens cost, in US dollars, at the gateway's [`Pricing`](super::Pricing).
    pub cost_usd: f64,
}

/// The live counters of one session.
#[derive(Default)]
pub(super) struct Traffic {
    requests: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    classes: [AtomicU64; 4],
    upstream_errors: AtomicU64,
    latency_micros: AtomicU64,
    budget_refusals: AtomicU64,
    /// Input, output, cache-write, cache-read tokens.
    tokens: [AtomicU64; 4],
    /// Dollars, in billionths (an atomic integer: no lock on the streaming path).
    nano_usd: AtomicU64,
}

impl Traffic {
    pub(super) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn bytes_in(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(super) fn bytes_out(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(super) fn status(&self, status: u16) {
        if let Some(class) = (status / 100).checked_sub(2).filter(|c| *c < 4) {
            self.classes[class as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn upstream_error(&self) {
        self.upstream_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn latency(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.latency_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub(super) fn budget_refused(&self) {
        self.budget_refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// Usage a response reported, and what it cost.
    pub(super) fn usage(&self, usage: &Usage, dollars: f64) {
        let kinds = [
            usage.input,
            usage.output,
            usage.cache_write,
            usage.cache_read,
        ];
        for (counter, n) in self.tokens.iter().zip(kinds) {
            counter.fetch_add(n, Ordering::Relaxed);
        }
        // Saturating `as`: a non-finite or negative cost adds nothing.
        let nanos = (dollars * 1e9).round() as u64;
        self.nano_usd.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> SessionTraffic {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SessionTraffic {
            requests: load(&self.requests),
            bytes_in: load(&self.bytes_in),
            bytes_out: load(&self.bytes_out),
            status_2xx: load(&self.classes[0]),
            status_3xx: load(&self.classes[1]),
            status_4xx: load(&self.classes[2]),
            status_5xx: load(&self.classes[3]),
            upstream_errors: load(&self.upstream_errors),
            latency_total: Duration::from_micros(load(&self.latency_micros)),
            budget_refusals: load(&self.budget_refusals),
            input_tokens: load(&self.tokens[0]),
            output_tokens: load(&self.tokens[1]),
            cache_creation_input_tokens: load(&self.tokens[2]),
            cache_read_input_tokens: load(&self.tokens[3]),
            cost_usd: load(&self.nano_usd) as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_count_by_class() {
        let t = Traffic::default();
        for s in [200, 201, 302, 401, 413, 502, 100, 600] {
            t.status(s);
        }
        let s = t.snapshot();
        assert_eq!(
            (s.status_2xx, s.status_3xx, s.status_4xx, s.status_5xx),
            (2, 1, 2, 1)
        );
    }

    #[test]
    fn usage_and_cost_add_up() {
        let t = Traffic::default();
        let u = Usage {
            input: 10,
            output: 20,
            cache_write: 3,
            cache_read: 4,
        };
        t.usage(&u, 0.25);
        t.usage(&u, 0.5);
        t.usage(&u, f64::NAN);
        t.budget_refused();
        let s = t.snapshot();
        assert_eq!(
            (
                s.input_tokens,
                s.output_tokens,
                s.cache_creation_input_tokens
            ),
            (30, 60, 9)
        );
        assert_eq!(s.cache_read_input_tokens, 12);
        assert!((s.cost_usd - 0.75).abs() < 1e-9, "{}", s.cost_usd);
        assert_eq!(s.budget_refusals, 1);
    }
}

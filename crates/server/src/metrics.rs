//! `GET /metrics`: Prometheus text. Counters fed by the tree's events and the turns this
//! server ran; gauges read from the tree's published state at each scrape (never waiting on a
//! session); the credential gateway's per-session counters copied from its stats at each
//! scrape.

use claude_supervisor::{
    ClaudeSupervisor, SessionEventKind, SessionState, SupervisorEvent, SupervisorEventKind,
};
use std::collections::BTreeSet;
use std::sync::Mutex;

use claude_supervisor::GatewayStats;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The server's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    sessions: IntGaugeVec,
    restarts: IntCounter,
    failed: IntCounter,
    turns: IntCounterVec,
    turn_seconds: Histogram,
    first_token_seconds: Histogram,
    cost_usd: prometheus::Gauge,
    frames_skipped: IntCounter,
    store_errors: IntCounter,
    takeovers: IntCounter,
    pub(crate) rate_limited: IntCounter,
    gateway: GatewayMetrics,
}

/// The credential gateway's counters, by session.
struct GatewayMetrics {
    requests: IntCounterVec,
    responses: IntCounterVec,
    request_bytes: IntCounterVec,
    response_bytes: IntCounterVec,
    upstream_errors: IntCounterVec,
    budget_refusals: IntCounterVec,
    tokens: IntCounterVec,
    cost_usd: GaugeVec,
    unauthorized: IntCounter,
    /// The sessions exported at the last scrape (a session gone since is dropped); held for
    /// the whole update.
    exported: Mutex<BTreeSet<String>>,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("registered once");
    c
}

/// Sets a counter to `value`, which the gateway counted; a smaller value means the source
/// started again (a session of that name ended and a new one began): the counter resets, as
/// Prometheus expects of a restarted counter.
fn sync(counter: &IntCounter, value: u64) {
    let current = counter.get();
    if value >= current {
        counter.inc_by(value - current);
    } else {
        counter.reset();
        counter.inc_by(value);
    }
}

impl GatewayMetrics {
    fn new(registry: &Registry) -> Self {
        let session = &["session"];
        let cost_usd = GaugeVec::new(
            Opts::new(
                "claude_gateway_cost_usd",
                "What the tokens through the credential gateway cost, in USD, by session",
            ),
            session,
        )
        .expect("a valid metric");
        registry
            .register(Box::new(cost_usd.clone()))
            .expect("registered once");
        Self {
            requests: counter_vec(
                registry,
                "claude_gateway_requests_total",
                "Requests through the credential gateway, by session",
                session,
            ),
            responses: counter_vec(
                registry,
                "claude_gateway_responses_total",
                "Responses of the credential gateway, by session and status class (2xx, 3xx, 4xx, 5xx)",
                &["session", "class"],
            ),
            request_bytes: counter_vec(
                registry,
                "claude_gateway_request_bytes_total",
                "Request body bytes the credential gateway received from a session's CLI",
                session,
            ),
            response_bytes: counter_vec(
                registry,
                "claude_gateway_response_bytes_total",
                "Response body bytes the credential gateway streamed back to a session's CLI",
                session,
            ),
            upstream_errors: counter_vec(
                registry,
                "claude_gateway_upstream_errors_total",
                "Requests the credential gateway could not forward (502), by session",
                session,
            ),
            budget_refusals: counter_vec(
                registry,
                "claude_gateway_budget_refusals_total",
                "Requests the credential gateway refused with 429 (a budget spent), by session",
                session,
            ),
            tokens: counter_vec(
                registry,
                "claude_gateway_tokens_total",
                "Tokens the upstream reported through the credential gateway, by session and kind (input, output, cache_creation, cache_read)",
                &["session", "kind"],
            ),
            cost_usd,
            unauthorized: counter(
                registry,
                "claude_gateway_unauthorized_total",
                "Requests the credential gateway refused with 401 (no token, a wrong or revoked one)",
            ),
            exported: Mutex::new(BTreeSet::new()),
        }
    }

    /// Copies `stats` into the counters; sessions no longer in them are dropped.
    fn update(&self, stats: &GatewayStats) {
        // One scrape at a time: `sync` reads then adds.
        let mut exported = self.exported.lock().unwrap_or_else(|e| e.into_inner());
        sync(&self.unauthorized, stats.unauthorized);
        for (name, t) in &stats.sessions {
            let s = name.as_str();
            sync(&self.requests.with_label_values(&[s]), t.requests);
            let classes = [
                ("2xx", t.status_2xx),
                ("3xx", t.status_3xx),
                ("4xx", t.status_4xx),
                ("5xx", t.status_5xx),
            ];
            for (class, n) in classes {
                sync(&self.responses.with_label_values(&[s, class]), n);
            }
            sync(&self.request_bytes.with_label_values(&[s]), t.bytes_in);
            sync(&self.response_bytes.with_label_values(&[s]), t.bytes_out);
            sync(
                &self.upstream_errors.with_label_values(&[s]),
                t.upstream_errors,
            );
            sync(
                &self.budget_refusals.with_label_values(&[s]),
                t.budget_refusals,
            );
            let kinds = [
                ("input", t.input_tokens),
                ("output", t.output_tokens),
                ("cache_creation", t.cache_creation_input_tokens),
                ("cache_read", t.cache_read_input_tokens),
            ];
            for (kind, n) in kinds {
                sync(&self.tokens.with_label_values(&[s, kind]), n);
            }
            self.cost_usd.with_label_values(&[s]).set(t.cost_usd);
        }
        let now: BTreeSet<String> = stats.sessions.keys().cloned().collect();
        for gone in exported.difference(&now) {
            let s = gone.as_str();
            for vec in [
                &self.requests,
                &self.request_bytes,
                &self.response_bytes,
                &self.upstream_errors,
                &self.budget_refusals,
            ] {
                let _ = vec.remove_label_values(&[s]);
            }
            for class in ["2xx", "3xx", "4xx", "5xx"] {
                let _ = self.responses.remove_label_values(&[s, class]);
            }
            for kind in ["input", "output", "cache_creation", "cache_read"] {
                let _ = self.tokens.remove_label_values(&[s, kind]);
            }
            let _ = self.cost_usd.remove_label_values(&[s]);
        }
        *exported = now;
    }
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("a valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("registered once");
    c
}

impl Metrics {
    /// Registers the metrics and starts counting the tree's events.
    pub(crate) fn new(tree: &ClaudeSupervisor) -> Self {
        let registry = Registry::new();
        let sessions = IntGaugeVec::new(
            Opts::new("claude_sessions", "Sessions by state"),
            &["state"],
        )
        .expect("a valid metric");
        registry
            .register(Box::new(sessions.clone()))
            .expect("registered once");
        let turns = IntCounterVec::new(
            Opts::new(
                "claude_turns_total",
                "Turns this server ran, by outcome (ok, error)",
            ),
            &["outcome"],
        )
        .expect("a valid metric");
        registry
            .register(Box::new(turns.clone()))
            .expect("registered once");
        let buckets = vec![
            0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
        ];
        let turn_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "claude_turn_duration_seconds",
                "From a query's arrival to its turn's end",
            )
            .buckets(buckets.clone()),
        )
        .expect("a valid metric");
        registry
            .register(Box::new(turn_seconds.clone()))
            .expect("registered once");
        let first_token_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "claude_turn_first_token_seconds",
                "From a query's arrival to the first assistant output (text delta or message)",
            )
            .buckets(buckets),
        )
        .expect("a valid metric");
        registry
            .register(Box::new(first_token_seconds.clone()))
            .expect("registered once");
        let cost_usd = prometheus::Gauge::new(
            "claude_cost_usd",
            "Cost totals of the sessions this node runs, in USD",
        )
        .expect("a valid metric");
        registry
            .register(Box::new(cost_usd.clone()))
            .expect("registered once");
        let metrics = Self {
            sessions,
            restarts: counter(
                &registry,
                "claude_session_restarts_total",
                "Restarts of sessions' CLIs",
            ),
            failed: counter(
                &registry,
                "claude_sessions_failed_total",
                "Sessions that exhausted their restart intensity or failed by policy",
            ),
            turns,
            turn_seconds,
            first_token_seconds,
            cost_usd,
            frames_skipped: counter(
                &registry,
                "claude_frames_skipped_total",
                "CLI output lines skipped (malformed or oversize)",
            ),
            store_errors: counter(
                &registry,
                "claude_store_errors_total",
                "Failed store operations",
            ),
            takeovers: counter(
                &registry,
                "claude_lease_takeovers_total",
                "Sessions this node took over from another node of the fleet",
            ),
            rate_limited: counter(
                &registry,
                "claude_http_rate_limited_total",
                "Requests refused by the per-client rate limit",
            ),
            gateway: GatewayMetrics::new(&registry),
            registry,
        };
        let (events, counters) = (tree.events(), metrics.event_counters());
        tokio::spawn(count_events(events, counters));
        metrics
    }

    fn event_counters(&self) -> EventCounters {
        EventCounters {
            restarts: self.restarts.clone(),
            failed: self.failed.clone(),
            frames_skipped: self.frames_skipped.clone(),
            store_errors: self.store_errors.clone(),
            takeovers: self.takeovers.clone(),
        }
    }

    /// A turn ended after `seconds`; `first_token` when its first output came.
    pub(crate) fn turn(&self, ok: bool, seconds: f64, first_token: Option<f64>) {
        self.turns
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
        self.turn_seconds.observe(seconds);
        if let Some(t) = first_token {
            self.first_token_seconds.observe(t);
        }
    }

    /// The exposition text, with the gauges read now.
    pub(crate) fn render(&self, tree: &ClaudeSupervisor) -> String {
        let sessions = tree.list_sessions();
        for state in [
            SessionState::Starting,
            SessionState::Running,
            SessionState::Restarting,
            SessionState::Hibernated,
            SessionState::Failed,
        ] {
            let n = sessions.iter().filter(|s| s.state == state).count();
            self.sessions
                .with_label_values(&[state_name(state)])
                .set(n as i64);
        }
        let cost: f64 = sessions
            .iter()
            .filter_map(|s| tree.session(&s.name))
            .map(|h| h.totals().cost_usd)
            .sum();
        self.cost_usd.set(cost);
        if let Some(stats) = tree.gateway_stats() {
            self.gateway.update(&stats);
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("the text encoder writes to memory");
        String::from_utf8(out).expect("Prometheus text is UTF-8")
    }
}

fn state_name(state: SessionState) -> &'static str {
    match state {
        SessionState::Starting => "starting",
        SessionState::Running => "running",
        SessionState::Restarting => "restarting",
        SessionState::Hibernated => "hibernated",
        SessionState::Failed => "failed",
        _ => "gone",
    }
}

struct EventCounters {
    restarts: IntCounter,
    failed: IntCounter,
    frames_skipped: IntCounter,
    store_errors: IntCounter,
    takeovers: IntCounter,
}

async fn count_events(
    mut events: tokio::sync::broadcast::Receiver<SupervisorEvent>,
    c: EventCounters,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "metrics fell behind the event stream");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        match event.kind {
            SupervisorEventKind::Restarting => c.restarts.inc(),
            SupervisorEventKind::Failed { .. } => c.failed.inc(),
            SupervisorEventKind::StoreFailed { .. } => c.store_errors.inc(),
            SupervisorEventKind::TakenOver { .. } => c.takeovers.inc(),
            SupervisorEventKind::Session(SessionEventKind::FrameSkipped { .. }) => {
                c.frames_skipped.inc()
            }
            _ => {}
        }
    }
}

//! [`Budget`]: what a session (or a group of sessions) may spend through the gateway, and the
//! meters that count it.
//!
//! Every limit has a **fixed window** of its own, anchored at first use: the window opens with
//! the first request (or the first usage counted) after the previous one ended and lasts the
//! limit's period; when it ends the count starts again from zero. A request is refused while a
//! limit's window is spent, until that window ends. Fixed windows let a burst of up to twice a
//! limit straddle a window boundary; in exchange a refusal can say exactly when the window frees
//! (the `retry-after` of the 429).
//!
//! The request limit is checked and counted when a request arrives. Tokens and dollars are
//! counted from the responses as they stream through (their usage is known only then): a
//! request is admitted while the window has something left, so the request that crosses a limit
//! completes and the next one is refused.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::GatewayError;

/// What a session, or a group of sessions, may spend through the gateway: requests, tokens
/// and dollars, each per a period of its own.
///
/// Every limit has a **fixed window**, anchored at first use: it opens with the first request
/// (or usage) after the previous window ended, lasts the limit's period, then counts from zero
/// again. A request is refused with 429 while any of its limits is spent (see the
/// [gateway docs](crate::gateway)). Requests count when they arrive; tokens and dollars when
/// the responses report them, so the request that crosses a token or dollar limit completes and
/// the next one is refused.
///
/// ```
/// use std::time::Duration;
/// use claude_supervisor::Budget;
///
/// let budget = Budget::new()
///     .requests_per_minute(30)
///     .tokens(2_000_000, Duration::from_secs(3600))
///     .dollars(5.0, Duration::from_secs(24 * 3600));
/// # let _ = budget;
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[must_use]
pub struct Budget {
    pub(super) requests: Option<Limit<u64>>,
    pub(super) tokens: Option<Limit<u64>>,
    pub(super) dollars: Option<Limit<f64>>,
}

/// One limit: at most `max` per `period`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Limit<T> {
    pub(super) max: T,
    pub(super) period: Duration,
}

impl Budget {
    /// No limits (add them with the other methods).
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `max` requests per minute.
    pub fn requests_per_minute(self, max: u64) -> Self {
        self.requests(max, Duration::from_secs(60))
    }

    /// At most `max` requests per `period`. Every request that carried the session's token
    /// counts, whatever its answer.
    pub fn requests(mut self, max: u64, period: Duration) -> Self {
        self.requests = Some(Limit { max, period });
        self
    }

    /// At most `max` tokens per `period`: input, output, cache-write and cache-read tokens
    /// summed, as the upstream's responses report them.
    pub fn tokens(mut self, max: u64, period: Duration) -> Self {
        self.tokens = Some(Limit { max, period });
        self
    }

    /// At most `max` US dollars per `period`, priced from the responses' usage with the
    /// gateway's [`Pricing`](super::Pricing).
    pub fn dollars(mut self, max: f64, period: Duration) -> Self {
        self.dollars = Some(Limit { max, period });
        self
    }

    /// Whether it limits anything.
    pub fn is_unlimited(&self) -> bool {
        self.requests.is_none() && self.tokens.is_none() && self.dollars.is_none()
    }

    /// Checks the periods (not zero) and the dollar limit (finite, not negative).
    pub(super) fn validate(&self, scope: &str) -> Result<(), GatewayError> {
        let bad = |reason: &str| GatewayError::InvalidBudget {
            scope: scope.to_owned(),
            reason: reason.to_owned(),
        };
        let periods = [
            self.requests.map(|l| ("requests", l.period)),
            self.tokens.map(|l| ("tokens", l.period)),
            self.dollars.map(|l| ("dollars", l.period)),
        ];
        for (what, period) in periods.into_iter().flatten() {
            if period.is_zero() {
                return Err(bad(&format!("the period of the {what} limit is zero")));
            }
        }
        if let Some(l) = self.dollars
            && !(l.max.is_finite() && l.max >= 0.0)
        {
            return Err(bad(&format!(
                "the dollar limit {} is not a finite, non-negative amount",
                l.max
            )));
        }
        Ok(())
    }
}

/// Whose counters a meter keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Scope {
    /// One session's own budget.
    Session(String),
    /// A group's budget, shared by its sessions.
    Group(String),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Session(name) => write!(f, "session `{name}`'s budget"),
            Self::Group(name) => write!(f, "group `{name}`'s budget"),
        }
    }
}

/// One limit's current window.
#[derive(Debug, Default)]
struct Window<T> {
    /// When it opened (`None`: none is open).
    start: Option<Instant>,
    used: T,
    /// Whether its exhaustion was announced (one event per window).
    announced: bool,
}

impl<T: Default + PartialOrd + Copy> Window<T> {
    /// Ends the window if its period is over.
    fn roll(&mut self, now: Instant, period: Duration) {
        if self.start.is_some_and(|s| now >= s + period) {
            *self = Window::default();
        }
    }

    /// Opens a window at `now` unless one is open.
    fn open(&mut self, now: Instant) {
        self.start.get_or_insert(now);
    }

    /// When spent, how long until the window ends.
    fn spent(&self, limit: &Limit<T>, now: Instant) -> Option<Duration> {
        let start = self.start?;
        (self.used >= limit.max).then(|| (start + limit.period).saturating_duration_since(now))
    }
}

#[derive(Debug, Default)]
struct MeterState {
    requests: Window<u64>,
    tokens: Window<u64>,
    dollars: Window<f64>,
}

/// The live counters of one budget (a session's, or a group's shared by its sessions).
#[derive(Debug)]
pub(super) struct Meter {
    scope: Scope,
    budget: Budget,
    state: Mutex<MeterState>,
}

/// A limit found spent when a request arrived.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Spent {
    /// Whose budget.
    pub(super) scope: Scope,
    /// The limit, e.g. `2 requests per 1m`.
    pub(super) limit: String,
    /// How long until its window ends.
    pub(super) resets_in: Duration,
    /// Whether this is the first refusal of the window (announce it).
    pub(super) first: bool,
}

impl Meter {
    pub(super) fn new(scope: Scope, budget: Budget) -> Meter {
        Meter {
            scope,
            budget,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, MeterState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts usage reported by a response.
    pub(super) fn spend(&self, tokens: u64, dollars: f64, now: Instant) {
        let mut state = self.lock();
        if let Some(limit) = self.budget.tokens {
            state.tokens.roll(now, limit.period);
            state.tokens.open(now);
            state.tokens.used = state.tokens.used.saturating_add(tokens);
        }
        if let Some(limit) = self.budget.dollars {
            state.dollars.roll(now, limit.period);
            state.dollars.open(now);
            state.dollars.used += dollars;
        }
    }

    /// The limits of this meter that are spent at `now` (marking them announced).
    fn check(&self, state: &mut MeterState, now: Instant, out: &mut Vec<Spent>) {
        let mut note = |limit: String, resets_in: Duration, announced: &mut bool| {
            out.push(Spent {
                scope: self.scope.clone(),
                limit,
                resets_in,
                first: !*announced,
            });
            *announced = true;
        };
        if let Some(limit) = self.budget.requests {
            state.requests.roll(now, limit.period);
            if let Some(left) = state.requests.spent(&limit, now) {
                let name = format!("{} requests per {}", limit.max, period(limit.period));
                note(name, left, &mut state.requests.announced);
            }
        }
        if let Some(limit) = self.budget.tokens {
            state.tokens.roll(now, limit.period);
            if let Some(left) = state.tokens.spent(&limit, now) {
                let name = format!("{} tokens per {}", limit.max, period(limit.period));
                note(name, left, &mut state.tokens.announced);
            }
        }
        if let Some(limit) = self.budget.dollars {
            state.dollars.roll(now, limit.period);
            if let Some(left) = state.dollars.spent(&limit, now) {
                let name = format!("${:.2} per {}", limit.max, period(limit.period));
                note(name, left, &mut state.dollars.announced);
            }
        }
    }

    fn count_request(&self, state: &mut MeterState, now: Instant) {
        if self.budget.requests.is_some() {
            state.requests.open(now);
            state.requests.used += 1;
        }
    }
}

fn period(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

/// Admits a request against `meters` (a session's own first, then its group's): if no limit
/// is spent it is counted in each, else nothing is counted and the spent limits are returned.
///
/// The meters are locked together, in the order given (a session's before its group's, the
/// same order everywhere), so concurrent requests cannot both take the last place.
pub(super) fn admit(meters: &[&Meter], now: Instant) -> Result<(), Vec<Spent>> {
    let mut states: Vec<_> = meters.iter().map(|m| m.lock()).collect();
    let mut spent = Vec::new();
    for (meter, state) in meters.iter().zip(states.iter_mut()) {
        meter.check(state, now, &mut spent);
    }
    if !spent.is_empty() {
        return Err(spent);
    }
    for (meter, state) in meters.iter().zip(states.iter_mut()) {
        meter.count_request(state, now);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn meter(budget: Budget) -> Meter {
        Meter::new(Scope::Session("a".into()), budget)
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_limit_refuses_at_the_limit_until_its_window_ends() {
        let m = meter(Budget::new().requests_per_minute(2));
        assert!(admit(&[&m], Instant::now()).is_ok());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(admit(&[&m], Instant::now()).is_ok());
        tokio::time::advance(Duration::from_secs(5)).await;
        let spent = admit(&[&m], Instant::now()).unwrap_err();
        assert_eq!(spent.len(), 1);
        assert_eq!(spent[0].limit, "2 requests per 1m");
        assert_eq!(
            spent[0].resets_in,
            Duration::from_secs(45),
            "the window opened at 0"
        );
        assert!(spent[0].first);
        // Refused requests do not count; later refusals of the window are not announced again.
        let again = admit(&[&m], Instant::now()).unwrap_err();
        assert!(!again[0].first);
        tokio::time::advance(Duration::from_secs(44)).await;
        assert!(admit(&[&m], Instant::now()).is_err(), "one second left");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(admit(&[&m], Instant::now()).is_ok(), "the window ended");
        assert!(admit(&[&m], Instant::now()).is_ok());
        let next = admit(&[&m], Instant::now()).unwrap_err();
        assert!(next[0].first, "a new window announces again");
        assert_eq!(next[0].resets_in, MINUTE);
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_and_dollars_are_spent_by_usage_and_reset_after_their_period() {
        let m = meter(
            Budget::new()
                .tokens(1000, MINUTE)
                .dollars(0.5, Duration::from_secs(3600)),
        );
        assert!(admit(&[&m], Instant::now()).is_ok());
        m.spend(999, 0.1, Instant::now());
        assert!(admit(&[&m], Instant::now()).is_ok(), "one token left");
        m.spend(10, 0.1, Instant::now());
        let spent = admit(&[&m], Instant::now()).unwrap_err();
        assert_eq!(spent[0].limit, "1000 tokens per 1m");
        tokio::time::advance(MINUTE).await;
        assert!(
            admit(&[&m], Instant::now()).is_ok(),
            "the token window ended"
        );
        m.spend(1, 0.35, Instant::now());
        let spent = admit(&[&m], Instant::now()).unwrap_err();
        assert_eq!(spent.len(), 1, "{spent:?}");
        assert_eq!(spent[0].limit, "$0.50 per 1h");
        assert_eq!(spent[0].resets_in, Duration::from_secs(3600 - 60));
        tokio::time::advance(Duration::from_secs(3600 - 60)).await;
        assert!(
            admit(&[&m], Instant::now()).is_ok(),
            "the dollar window ended"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_meter_is_shared_and_a_refusal_counts_nowhere() {
        let group = Meter::new(
            Scope::Group("team".into()),
            Budget::new().requests(3, MINUTE),
        );
        let a = meter(Budget::new().requests(2, MINUTE));
        let b = Meter::new(Scope::Session("b".into()), Budget::new());
        assert!(admit(&[&a, &group], Instant::now()).is_ok());
        assert!(admit(&[&a, &group], Instant::now()).is_ok());
        // a's own limit is spent: refused, and the group's place is not taken.
        let spent = admit(&[&a, &group], Instant::now()).unwrap_err();
        assert_eq!(spent[0].scope, Scope::Session("a".into()));
        assert!(
            admit(&[&b, &group], Instant::now()).is_ok(),
            "the group's last place"
        );
        let spent = admit(&[&b, &group], Instant::now()).unwrap_err();
        assert_eq!(spent[0].scope, Scope::Group("team".into()));
        assert_eq!(spent[0].to_owned().limit, "3 requests per 1m");
        // Both spent: a refusal names both.
        assert_eq!(admit(&[&a, &group], Instant::now()).unwrap_err().len(), 2);
        tokio::time::advance(MINUTE).await;
        assert!(admit(&[&b, &group], Instant::now()).is_ok());
    }

    #[test]
    fn budgets_are_validated() {
        assert!(Budget::new().requests(1, MINUTE).validate("x").is_ok());
        let err = Budget::new()
            .tokens(1, Duration::ZERO)
            .validate("group `g`")
            .unwrap_err();
        assert!(err.to_string().contains("group `g`"), "{err}");
        assert!(err.to_string().contains("tokens"), "{err}");
        assert!(
            Budget::new()
                .dollars(f64::NAN, MINUTE)
                .validate("x")
                .is_err()
        );
        assert!(Budget::new().dollars(-1.0, MINUTE).validate("x").is_err());
        assert!(Budget::new().is_unlimited());
    }
}

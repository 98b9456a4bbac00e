//! Supervisor flags: strategy, restart intensity, auto-shutdown, optional backoff.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::FlagsError;

/// Which children are restarted when one of them must be restarted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Strategy {
    /// Only the child that exited.
    #[default]
    OneForOne,
    /// All children: the others are stopped in reverse start order, then all start in order.
    OneForAll,
    /// The child and those started after it.
    RestForOne,
}

/// When significant children make the supervisor exit by itself (OTP 24's `auto_shutdown`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AutoShutdown {
    /// Never (significant children are rejected).
    #[default]
    Never,
    /// When any significant child exits by itself and is not restarted.
    AnySignificant,
    /// When all significant children have exited by themselves.
    AllSignificant,
}

/// Restart backoff: exponential with jitter. Our addition to OTP: it delays a restart without
/// changing how restart intensity is counted (the restart is counted when it is decided).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    jitter: f64,
}

impl Backoff {
    /// Delay `base * 2^(n-1)` for the n-th restart of a child within the intensity period,
    /// capped at `max`, then reduced by a random fraction of up to `jitter` (0.0..=1.0).
    ///
    /// # Errors
    /// A zero `base`, `max < base`, or `jitter` outside `0.0..=1.0`.
    pub fn exponential(base: Duration, max: Duration, jitter: f64) -> Result<Self, FlagsError> {
        if base.is_zero() {
            return Err(FlagsError::InvalidBackoff {
                reason: "base delay must be > 0".into(),
            });
        }
        if max < base {
            return Err(FlagsError::InvalidBackoff {
                reason: format!("max delay {max:?} is below base delay {base:?}"),
            });
        }
        if !(0.0..=1.0).contains(&jitter) {
            return Err(FlagsError::InvalidBackoff {
                reason: format!("jitter {jitter} is outside 0.0..=1.0"),
            });
        }
        Ok(Self { base, max, jitter })
    }

    /// The delay before the `n`-th recent restart (n >= 1), before jitter.
    pub fn nominal_delay(&self, n: u32) -> Duration {
        let shift = n.saturating_sub(1).min(30);
        self.base
            .checked_mul(1u32 << shift)
            .map_or(self.max, |d| d.min(self.max))
    }

    pub(crate) fn delay(&self, n: u32) -> Duration {
        let d = self.nominal_delay(n);
        if self.jitter == 0.0 {
            return d;
        }
        let r: f64 = rand::random::<f64>() * self.jitter;
        d.mul_f64(1.0 - r)
    }
}

/// The flags of a [`Supervisor`](crate::Supervisor). [`Default`] is OTP's: one_for_one,
/// intensity 1, period 5 s, auto-shutdown never, no backoff.
#[derive(Clone, Debug, PartialEq)]
pub struct SupervisorFlags {
    pub(crate) strategy: Strategy,
    pub(crate) intensity: u32,
    pub(crate) period: Duration,
    pub(crate) auto_shutdown: AutoShutdown,
    pub(crate) backoff: Option<Backoff>,
}

impl Default for SupervisorFlags {
    fn default() -> Self {
        Self {
            strategy: Strategy::OneForOne,
            intensity: 1,
            period: Duration::from_secs(5),
            auto_shutdown: AutoShutdown::Never,
            backoff: None,
        }
    }
}

impl SupervisorFlags {
    /// Starts from the OTP defaults.
    pub fn builder() -> SupervisorFlagsBuilder {
        SupervisorFlagsBuilder(Self::default())
    }

    /// The Elixir library's preset: one_for_one, 3 restarts in 5 s.
    pub fn elixir_defaults() -> Self {
        Self {
            intensity: 3,
            ..Self::default()
        }
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The maximum number of restarts within `period`.
    pub fn intensity(&self) -> u32 {
        self.intensity
    }

    /// The sliding window of the intensity check.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The auto-shutdown setting.
    pub fn auto_shutdown(&self) -> AutoShutdown {
        self.auto_shutdown
    }

    /// The restart backoff, if any.
    pub fn backoff(&self) -> Option<Backoff> {
        self.backoff
    }

    pub(crate) fn validate(&self) -> Result<(), FlagsError> {
        if self.period.is_zero() {
            return Err(FlagsError::ZeroPeriod);
        }
        Ok(())
    }
}

/// Builder of [`SupervisorFlags`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SupervisorFlagsBuilder(SupervisorFlags);

impl SupervisorFlagsBuilder {
    /// The strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.0.strategy = strategy;
        self
    }

    /// The intensity (0 is valid: the first restart shuts the supervisor down).
    pub fn intensity(mut self, intensity: u32) -> Self {
        self.0.intensity = intensity;
        self
    }

    /// The period (must be > 0).
    pub fn period(mut self, period: Duration) -> Self {
        self.0.period = period;
        self
    }

    /// Auto-shutdown.
    pub fn auto_shutdown(mut self, auto_shutdown: AutoShutdown) -> Self {
        self.0.auto_shutdown = auto_shutdown;
        self
    }

    /// Restart backoff.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.0.backoff = Some(backoff);
        self
    }

    /// Validates the flags.
    ///
    /// # Errors
    /// [`FlagsError::ZeroPeriod`] for a zero period.
    pub fn build(self) -> Result<SupervisorFlags, FlagsError> {
        self.0.validate()?;
        Ok(self.0)
    }
}

/// The flags of a [`DynamicSupervisor`](crate::DynamicSupervisor): strategy one_for_one,
/// intensity (default 3 in 5 s, like Elixir), max children, shared start arguments.
#[derive(Clone)]
pub struct DynamicFlags {
    pub(crate) intensity: u32,
    pub(crate) period: Duration,
    pub(crate) max_children: Option<usize>,
    pub(crate) extra: Option<Arc<dyn Any + Send + Sync>>,
    pub(crate) backoff: Option<Backoff>,
}

impl fmt::Debug for DynamicFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicFlags")
            .field("intensity", &self.intensity)
            .field("period", &self.period)
            .field("max_children", &self.max_children)
            .field("extra", &self.extra.is_some())
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl Default for DynamicFlags {
    fn default() -> Self {
        Self {
            intensity: 3,
            period: Duration::from_secs(5),
            max_children: None,
            extra: None,
            backoff: None,
        }
    }
}

impl DynamicFlags {
    /// Starts from Elixir's defaults (3 restarts in 5 s, unlimited children).
    pub fn builder() -> DynamicFlagsBuilder {
        DynamicFlagsBuilder(Self::default())
    }

    /// The maximum number of children, if limited.
    pub fn max_children(&self) -> Option<usize> {
        self.max_children
    }
}

/// Builder of [`DynamicFlags`].
#[must_use]
#[derive(Debug, Clone)]
pub struct DynamicFlagsBuilder(DynamicFlags);

impl DynamicFlagsBuilder {
    /// The intensity.
    pub fn intensity(mut self, intensity: u32) -> Self {
        self.0.intensity = intensity;
        self
    }

    /// The period (must be > 0).
    pub fn period(mut self, period: Duration) -> Self {
        self.0.period = period;
        self
    }

    /// The maximum number of children (running or being restarted).
    pub fn max_children(mut self, n: usize) -> Self {
        self.0.max_children = Some(n);
        self
    }

    /// Shared start arguments given to every child's start function ([`crate::StartArgs::extra`]).
    pub fn extra_arguments<T: Any + Send + Sync>(mut self, extra: T) -> Self {
        self.0.extra = Some(Arc::new(extra));
        self
    }

    /// Restart backoff.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.0.backoff = Some(backoff);
        self
    }

    /// Validates the flags.
    ///
    /// # Errors
    /// [`FlagsError::ZeroPeriod`] for a zero period.
    pub fn build(self) -> Result<DynamicFlags, FlagsError> {
        if self.0.period.is_zero() {
            return Err(FlagsError::ZeroPeriod);
        }
        Ok(self.0)
    }
}

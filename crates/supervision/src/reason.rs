//! The mapping of ractor's exits onto OTP's normal / abnormal.

use ractor::SupervisionEvent;
use serde::{Deserialize, Serialize};

/// A child's exit as the supervisor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitReason {
    /// The reason text: `"normal"` when ractor gave none, `"killed"` for a kill, the error or
    /// panic message for a failure, otherwise the stop reason.
    pub reason: String,
    /// Whether OTP would call this exit normal.
    pub normal: bool,
}

impl ExitReason {
    /// Classifies a stop reason given to `ActorCell::stop` (or ractor's `ActorTerminated`):
    /// `None`, `"normal"`, `"shutdown"` and `"shutdown:<anything>"` are normal; everything else,
    /// including `"killed"`, is abnormal.
    ///
    /// # Examples
    /// ```
    /// use supervision::ExitReason;
    /// assert!(ExitReason::from_stop_reason(None).normal);
    /// assert!(ExitReason::from_stop_reason(Some("shutdown:idle")).normal);
    /// assert!(!ExitReason::from_stop_reason(Some("killed")).normal);
    /// ```
    pub fn from_stop_reason(reason: Option<&str>) -> Self {
        match reason {
            None => Self {
                reason: "normal".into(),
                normal: true,
            },
            Some(r) => Self {
                reason: r.to_string(),
                normal: r == "normal" || r == "shutdown" || r.starts_with("shutdown:"),
            },
        }
    }

    /// A failure (a panic or an `Err` from a handler): always abnormal.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            reason: message.into(),
            normal: false,
        }
    }

    /// Classifies a supervision event; `None` for events that are not exits.
    pub fn from_event(event: &SupervisionEvent) -> Option<Self> {
        match event {
            SupervisionEvent::ActorTerminated(_, _, reason) => {
                Some(Self::from_stop_reason(reason.as_deref()))
            }
            SupervisionEvent::ActorFailed(_, err) => Some(Self::failed(err.to_string())),
            _ => None,
        }
    }
}

//! A session's slot: what stays of a named session across its instances.

use std::sync::Mutex;
use std::time::Duration;

use claude_session::{Session, SessionLedger};
use tokio::sync::watch;
use tokio::time::Instant;

use super::spec::SessionSpec;

/// Where a named session is in its life.
#[derive(Clone, Debug)]
pub(crate) enum SlotState {
    /// An instance is being started (first start, restart or wake-up).
    Starting,
    /// An instance is running (it may have just died; the handle checks).
    Running(Session),
    /// Hibernated: no process; the next query wakes it.
    Hibernated,
    /// Gone for good, with the reason.
    Gone(String),
}

/// The state of a session as reported by listings and health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionState {
    /// Starting or restarting.
    Starting,
    /// Running.
    Running,
    /// Its CLI died; the supervisor is restarting it.
    Restarting,
    /// Hibernated after its idle timeout.
    Hibernated,
    /// Terminated, or its supervisor is gone.
    Gone,
}

pub(crate) struct Slot {
    pub(crate) spec: SessionSpec,
    pub(crate) ledger: SessionLedger,
    pub(crate) state: watch::Sender<SlotState>,
    /// The process group of the newest instance, to confirm it dead before a resume.
    pub(crate) last_pgid: Mutex<Option<i32>>,
    pub(crate) last_activity: Mutex<Instant>,
    /// The error of the newest failed start, for the caller of `start_session`.
    pub(crate) last_error: Mutex<Option<super::SupervisorError>>,
    pub(crate) created_at_ms: u64,
    /// Serialises hibernation, wake-ups and restarts of the session.
    pub(crate) wake: tokio::sync::Mutex<()>,
    /// Serialises record saves, so the newest state is written last.
    pub(crate) saving: tokio::sync::Mutex<()>,
    /// Admission permits, released when the session is terminated.
    pub(crate) admission: Mutex<Vec<tokio::sync::OwnedSemaphorePermit>>,
}

impl Slot {
    pub(crate) fn name(&self) -> &str {
        &self.spec.name
    }

    pub(crate) fn touch(&self) {
        *self.last_activity.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub(crate) fn idle_for(&self) -> Duration {
        self.last_activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    pub(crate) fn reported_state(&self) -> SessionState {
        match &*self.state.borrow() {
            SlotState::Starting => SessionState::Starting,
            SlotState::Running(s) if s.is_running() => SessionState::Running,
            SlotState::Running(_) => SessionState::Restarting,
            SlotState::Hibernated => SessionState::Hibernated,
            SlotState::Gone(_) => SessionState::Gone,
        }
    }

    /// The typed error of the newest failed start, for whoever asked for that start.
    pub(crate) fn take_start_error(&self) -> Option<super::SupervisorError> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    pub(crate) fn set_start_error(&self, error: super::SupervisorError) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }

    pub(crate) fn current(&self) -> Option<Session> {
        match &*self.state.borrow() {
            SlotState::Running(s) if s.is_running() => Some(s.clone()),
            _ => None,
        }
    }
}

//! [`SessionHandle`]: a name plus the tree, valid across restarts and hibernation.

use std::sync::Arc;

use claude_session::{CostTotals, HealthSnapshot, Prompt, Session, TurnOutput, TurnStream};
use tokio::time::Instant;

use super::slot::{SessionState, Slot, SlotState};
use super::{Shared, SupervisorError};

/// A stable handle to a named session. Never a raw actor reference: each call resolves the
/// session's current instance, so the handle keeps working across restarts (a call made during
/// a restart waits, bounded, for the new instance) and hibernation (a call wakes the session).
#[derive(Clone)]
pub struct SessionHandle {
    shared: Arc<Shared>,
    slot: Arc<Slot>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("name", &self.slot.name())
            .finish_non_exhaustive()
    }
}

impl SessionHandle {
    pub(crate) fn new(shared: Arc<Shared>, slot: Arc<Slot>) -> Self {
        Self { shared, slot }
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        self.slot.name()
    }

    /// Where the session is in its life.
    pub fn state(&self) -> SessionState {
        self.slot.reported_state()
    }

    /// The latest session id of its conversation.
    pub fn session_id(&self) -> Option<String> {
        self.slot.ledger.session_id()
    }

    /// Cost totals across all its processes (and earlier runs, with a persistent store).
    pub fn totals(&self) -> CostTotals {
        self.slot.ledger.totals()
    }

    /// The generation of the running instance (1 for the first, +1 per restart or wake-up).
    pub fn generation(&self) -> Option<u64> {
        self.shared
            .registry
            .lookup(self.name())
            .map(|r| r.generation)
    }

    /// Wakes a hibernated session (starts a CLI that resumes its conversation).
    pub(crate) async fn wake(&self) -> Result<(), SupervisorError> {
        let _wake = self.slot.wake.lock().await;
        if !matches!(*self.slot.state.borrow(), SlotState::Hibernated) {
            return Ok(());
        }
        let root = self.shared.root()?;
        root.restart_child(self.name())
            .await
            .map_err(|e| match self.slot.take_start_error() {
                Some(error) => error,
                None => SupervisorError::Tree {
                    supervisor: self.shared.name.clone(),
                    detail: e.to_string(),
                },
            })?;
        tracing::info!(session = self.name(), "woke from hibernation");
        Ok(())
    }

    /// The current instance: waits (up to the tree's restart wait) while the session restarts,
    /// and wakes it if it hibernates.
    async fn current(&self) -> Result<Session, SupervisorError> {
        let started = Instant::now();
        let deadline = started + self.shared.restart_wait;
        let mut state = self.slot.state.subscribe();
        loop {
            let snapshot = state.borrow_and_update().clone();
            match snapshot {
                SlotState::Running(session) if session.is_running() => return Ok(session),
                SlotState::Hibernated => {
                    self.wake().await?;
                    continue;
                }
                SlotState::Gone(reason) => {
                    return Err(SupervisorError::Unavailable {
                        name: self.name().to_owned(),
                        reason,
                    });
                }
                // Starting, or an instance that just died: its replacement is on the way.
                SlotState::Starting | SlotState::Running(_) => {}
            }
            let poll = tokio::time::sleep(std::time::Duration::from_millis(20));
            tokio::select! {
                changed = state.changed() => {
                    if changed.is_err() {
                        return Err(SupervisorError::Unavailable { name: self.name().to_owned(), reason: "the supervisor is gone".into() });
                    }
                }
                // A dead instance does not change the state; look again shortly.
                _ = poll => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(SupervisorError::RestartTimeout { name: self.name().to_owned(), waited: started.elapsed() });
                }
            }
        }
    }

    /// Queues a turn on the current instance and returns its stream.
    ///
    /// # Errors
    ///
    /// [`SupervisorError::RestartTimeout`] when a restart takes longer than the wait limit;
    /// [`SupervisorError::Unavailable`] when the session or the tree is gone; the session's
    /// own errors (a full queue, …).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe until it returns (nothing is queued); dropping the stream interrupts the turn.
    pub async fn query(&self, prompt: impl Into<Prompt>) -> Result<TurnStream, SupervisorError> {
        let prompt = prompt.into();
        let session = self.current().await?;
        self.slot.touch();
        Ok(session.query(prompt).await?)
    }

    /// Runs a turn to its end: [`query`](Self::query), then [`TurnStream::collect`].
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query), and the turn's failure (the CLI died mid-turn, …).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future interrupts the turn.
    pub async fn ask(&self, prompt: impl Into<Prompt>) -> Result<TurnOutput, SupervisorError> {
        let out = self.query(prompt).await?.collect().await?;
        self.slot.touch();
        Ok(out)
    }

    /// Interrupts the running turn, if any. Returns whether one was running.
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query); the interrupt's own errors.
    ///
    /// # Cancel safety
    ///
    /// Once the current instance is resolved the interrupt is sent; dropping the future after
    /// that only stops waiting for the confirmation.
    pub async fn interrupt(&self) -> Result<bool, SupervisorError> {
        match self.slot.current() {
            Some(session) => Ok(session.interrupt().await?),
            None => Ok(false),
        }
    }

    /// The running instance's health, or `None` when it is not running (hibernated,
    /// restarting, gone).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn health(&self) -> Option<HealthSnapshot> {
        self.slot.current()?.health().await.ok()
    }
}

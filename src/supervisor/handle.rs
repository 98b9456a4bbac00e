//! [`SessionHandle`]: a name plus the tree, valid across restarts and hibernation.

use std::sync::Arc;
use std::time::Duration;

use claude_session::{
    CostTotals, HealthSnapshot, Prompt, Session, SessionError, TurnOutput, TurnStream,
};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::entry::{Entry, SessionState};
use super::keeper::KeeperMsg;
use super::{SupervisorError, Tree};

/// A stable handle to a named session. Never a raw actor reference: each call asks the
/// session's keeper for its current instance, so the handle keeps working across restarts (a
/// call made while the CLI restarts waits, up to the tree's restart wait, for the new
/// instance) and hibernation (a call wakes the session).
#[derive(Clone)]
pub struct SessionHandle {
    tree: Arc<Tree>,
    entry: Arc<Entry>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("name", &self.entry.name())
            .finish_non_exhaustive()
    }
}

/// A query refused because its instance is going away: safe to send again to the next one.
fn instance_gone(e: &SessionError) -> bool {
    matches!(
        e,
        SessionError::Stopped { .. }
            | SessionError::NotRunning { .. }
            | SessionError::Disconnected { .. }
            | SessionError::Exited { .. }
    )
}

/// The turn's `result` says the CLI lacked the conversation it was to resume.
fn lost_conversation(out: &TurnOutput) -> bool {
    out.is_error()
        && out
            .result
            .errors()
            .iter()
            .any(|e| e.starts_with("No conversation found with session ID"))
}

impl SessionHandle {
    pub(crate) fn new(tree: Arc<Tree>, entry: Arc<Entry>) -> Self {
        Self { tree, entry }
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        self.entry.name()
    }

    /// Where the session is in its life.
    pub fn state(&self) -> SessionState {
        self.entry.state()
    }

    /// The latest session id of its conversation.
    pub fn session_id(&self) -> Option<String> {
        self.entry.ledger.session_id()
    }

    /// Cost totals across all its processes (and earlier runs, with a persistent store).
    pub fn totals(&self) -> CostTotals {
        self.entry.ledger.totals()
    }

    /// The generation of the newest instance (1 for the first, +1 per restart or wake-up).
    pub fn generation(&self) -> Option<u64> {
        let g = self.entry.view.borrow().generation;
        (g > 0).then_some(g)
    }

    /// Why the session is failed or gone, as a typed error; `None` while it lives.
    fn fate(&self) -> Option<SupervisorError> {
        let view = self.entry.view.borrow();
        let name = self.name().to_owned();
        match view.state {
            SessionState::Failed => Some(match &view.lost {
                Some(session_id) => SupervisorError::ConversationLost {
                    name,
                    session_id: session_id.clone(),
                },
                None => SupervisorError::Failed {
                    name,
                    reason: view.reason.clone().unwrap_or_default(),
                },
            }),
            SessionState::Gone if view.moved_to.as_ref().is_some_and(|o| !o.is_empty()) => {
                Some(SupervisorError::OwnedElsewhere {
                    name,
                    owner: view.moved_to.clone().unwrap_or_default(),
                })
            }
            SessionState::Gone => Some(SupervisorError::Unavailable {
                name,
                reason: view.reason.clone().unwrap_or_else(|| "gone".into()),
            }),
            _ => None,
        }
    }

    /// In a fleet: the turn just finished, but this node lost the session's lease meanwhile (its
    /// writes were refused), so the turn is not the conversation's: the owner, as an error.
    async fn fenced_out(&self) -> Option<SupervisorError> {
        let fleet = self.tree.fleet.as_ref()?;
        if fleet.fence(self.name()).is_some() {
            return None;
        }
        let name = self.name().to_owned();
        Some(match fleet.owner_of(&self.tree, &name).await {
            Ok(Some(owner)) if owner != fleet.node_id() => {
                SupervisorError::OwnedElsewhere { name, owner }
            }
            _ => SupervisorError::Unavailable {
                name,
                reason: "this node lost the session's lease: the turn was not stored".into(),
            },
        })
    }

    /// The current instance, waiting (until `deadline`) while the session restarts or wakes.
    async fn current(&self, deadline: Instant) -> Result<(u64, Session), SupervisorError> {
        let started = Instant::now();
        let timed_out = || SupervisorError::RestartTimeout {
            name: self.name().to_owned(),
            waited: started.elapsed(),
        };
        let mut keepers = self.entry.keeper.subscribe();
        let mut view = self.entry.view.subscribe();
        loop {
            if let Some(fate) = self.fate() {
                return Err(fate);
            }
            let keeper = keepers.borrow_and_update().clone();
            let Some(keeper) = keeper else {
                // The keeper is (re)starting: wait for it, or for the session's fate.
                tokio::select! {
                    _ = keepers.changed() => {}
                    _ = view.changed() => {}
                    _ = tokio::time::sleep_until(deadline) => return Err(timed_out()),
                }
                continue;
            };
            let (reply, answer) = oneshot::channel();
            if keeper.cast(KeeperMsg::Acquire { reply, deadline }).is_err() {
                // That keeper just exited; the loop sees its replacement or the session's fate.
                tokio::select! {
                    _ = keepers.changed() => {}
                    _ = view.changed() => {}
                    _ = tokio::time::sleep_until(deadline) => return Err(timed_out()),
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, answer).await {
                Ok(Ok(answer)) => return answer,
                // The keeper dropped the reply: it expired the wait, or it exited.
                Ok(Err(_)) if Instant::now() >= deadline => return Err(timed_out()),
                Ok(Err(_)) => continue,
                Err(_) => return Err(timed_out()),
            }
        }
    }

    fn suspect(&self, generation: u64) {
        if let Some(keeper) = self.entry.keeper() {
            let _ = keeper.cast(KeeperMsg::Suspect { generation });
        }
    }

    /// Queues a turn on the current instance and returns its stream. A query refused because
    /// the instance is going away (its CLI was just killed, it is being hibernated) goes to the
    /// next instance instead, within the restart wait.
    ///
    /// # Errors
    ///
    /// [`SupervisorError::RestartTimeout`] when a restart takes longer than the wait limit;
    /// [`SupervisorError::Failed`] / [`SupervisorError::ConversationLost`] when the session has
    /// failed; [`SupervisorError::Unavailable`] when it or the tree is gone; the session's own
    /// errors (a full queue, …).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe until it returns (nothing is queued); dropping the stream interrupts the turn.
    pub async fn query(&self, prompt: impl Into<Prompt>) -> Result<TurnStream, SupervisorError> {
        let prompt = prompt.into();
        let deadline = Instant::now() + self.tree.restart_wait;
        loop {
            let (generation, session) = self.current(deadline).await?;
            match session.query(prompt.clone()).await {
                Ok(stream) => return Ok(stream),
                Err(e) if instance_gone(&e) && Instant::now() < deadline => {
                    self.suspect(generation);
                    tokio::task::yield_now().await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Runs a turn to its end and returns it when it succeeded. A turn that never reached a CLI (its instance died before the
    /// turn's first frame), and a turn refused because the CLI no longer had the conversation
    /// (the session then starts fresh, by default), are sent again to the next instance, within
    /// the restart wait; a turn cut after it began is not (it may have done work).
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query); [`SupervisorError::TurnFailed`] for a turn that ended without
    /// success (interrupted, cut by a shutdown, out of turns, an API error) and
    /// [`SupervisorError::TurnCut`] for one that failed before its `result` (the CLI died, a
    /// stall): both carry what arrived ([`SupervisorError::partial_text`]). In a fleet,
    /// [`SupervisorError::OwnedElsewhere`] for a turn this node ran after another node took the
    /// session over (its writes were refused: the turn is not in the conversation).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future interrupts the turn.
    pub async fn ask(&self, prompt: impl Into<Prompt>) -> Result<TurnOutput, SupervisorError> {
        let prompt = prompt.into();
        let deadline = Instant::now() + self.tree.restart_wait;
        loop {
            let stream = self.query(prompt.clone()).await?;
            match stream.collect_partial().await {
                Ok(out) if lost_conversation(&out) && Instant::now() < deadline => {
                    self.wait_for_replacement(deadline).await;
                }
                Ok(out) => {
                    if let Some(lost) = self.fenced_out().await {
                        return Err(lost);
                    }
                    return SupervisorError::judge(self.name(), out);
                }
                Err(partial)
                    if partial.messages.is_empty()
                        && instance_gone(&partial.error)
                        && Instant::now() < deadline =>
                {
                    self.wait_for_replacement(deadline).await;
                }
                Err(partial) => {
                    return Err(SupervisorError::TurnCut {
                        name: self.name().to_owned(),
                        partial: partial.messages,
                        source: Box::new(partial.error),
                    });
                }
            }
        }
    }

    /// Waits until the instance that just failed a turn is no longer the current one.
    async fn wait_for_replacement(&self, deadline: Instant) {
        let mut view = self.entry.view.subscribe();
        let _ = tokio::time::timeout_at(
            deadline,
            view.wait_for(|v| v.state != SessionState::Running),
        )
        .await;
    }

    /// Interrupts the running turn, if any. Returns whether one was running.
    ///
    /// # Errors
    ///
    /// The interrupt's own errors.
    ///
    /// # Cancel safety
    ///
    /// Once the current instance is resolved the interrupt is sent; dropping the future after
    /// that only stops waiting for the confirmation.
    pub async fn interrupt(&self) -> Result<bool, SupervisorError> {
        if self.state() != SessionState::Running {
            return Ok(false);
        }
        let deadline = Instant::now() + self.tree.call_timeout;
        let (_, session) = self.current(deadline).await?;
        Ok(session.interrupt().await?)
    }

    /// The running instance's health, or `None` when it is not running (hibernated,
    /// restarting, failed, gone).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn health(&self) -> Option<HealthSnapshot> {
        if self.state() != SessionState::Running {
            return None;
        }
        let deadline = Instant::now() + Duration::from_millis(500).min(self.tree.call_timeout);
        let (_, session) = self.current(deadline).await.ok()?;
        tokio::time::timeout_at(deadline, session.health())
            .await
            .ok()?
            .ok()
    }

    /// Restarts the live instance through the keeper; resolves once the new one is up.
    pub(crate) async fn restart_instance(&self) -> Result<(), SupervisorError> {
        let keeper = self
            .entry
            .keeper()
            .ok_or_else(|| SupervisorError::Unavailable {
                name: self.name().to_owned(),
                reason: "the session's keeper is not running".into(),
            })?;
        let (reply, answer) = oneshot::channel();
        keeper
            .cast(KeeperMsg::Restart(reply))
            .map_err(|_| SupervisorError::Unavailable {
                name: self.name().to_owned(),
                reason: "the session's keeper is not running".into(),
            })?;
        let started = Instant::now();
        match tokio::time::timeout(self.tree.restart_wait, answer).await {
            Ok(Ok(answer)) => answer.map(|_| ()),
            // The keeper dropped the reply. Before the wait was over, that is the keeper
            // stopping (a terminate raced the restart), whose view may not say `gone` yet.
            Ok(Err(_)) => Err(self.fate().unwrap_or_else(|| {
                if started.elapsed() < self.tree.restart_wait {
                    SupervisorError::Unavailable {
                        name: self.name().to_owned(),
                        reason: "its keeper stopped during the restart (terminated)".into(),
                    }
                } else {
                    SupervisorError::RestartTimeout {
                        name: self.name().to_owned(),
                        waited: self.tree.restart_wait,
                    }
                }
            })),
            Err(_) => Err(SupervisorError::RestartTimeout {
                name: self.name().to_owned(),
                waited: self.tree.restart_wait,
            }),
        }
    }
}

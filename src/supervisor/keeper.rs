//! A session's keeper: the one actor that owns the session's state across its CLI instances.
//!
//! It hands the current instance to callers (or parks them until the next instance is up, the
//! wait bounded by the tree's restart wait), tells each new instance what to resume and which
//! process to wait for first, keeps the conversation's lease and the store's record up to date,
//! and hibernates and wakes the session. It never waits on a CLI: starting and stopping happen
//! in the instance actor and in the session's own supervisor; the keeper only asks for them and
//! hears back through its mailbox.

use std::sync::Arc;
use std::time::SystemTime;

use claude_session::{Session, SessionEventKind};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use supervision::{ChildError, RestartType, SupervisorRef};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::entry::{Ending, Entry, SessionState};
use super::spec::LostConversation;
use super::{SupervisorError, SupervisorEventKind, Tree, instance};

/// The child id of a session's CLI instance under its own supervisor.
pub(crate) const INSTANCE: &str = "instance";

pub(crate) type Reply = oneshot::Sender<Result<(u64, Session), SupervisorError>>;

pub(crate) enum KeeperMsg {
    /// A caller wants the current instance.
    Acquire {
        reply: Reply,
        deadline: Instant,
    },
    /// A caller found instance `generation` dying (its query was refused).
    Suspect {
        generation: u64,
    },
    /// A new instance asks what to launch.
    Prepare(RpcReplyPort<Result<Prepared, SupervisorError>>),
    Up {
        generation: u64,
        session: Session,
        pid: Option<u32>,
        tree: Option<claude_session::Containment>,
    },
    LaunchFailed {
        generation: u64,
        error: String,
    },
    Down {
        generation: u64,
        normal: bool,
    },
    Event {
        generation: u64,
        kind: SessionEventKind,
    },
    IdleCheck(u64),
    /// The instance had a turn after all (it arrived as the idle deadline passed): not now.
    StillBusy,
    Hibernated(Result<(), String>),
    Replaced(Result<(), String>),
    /// Restart the live instance (`restart_session`); answered once the new one is up.
    Restart(Reply),
    ExpireWaiters,
}

/// What an instance is to launch.
pub(crate) struct Prepared {
    pub(crate) generation: u64,
    pub(crate) resume: Option<String>,
    /// The previous instance's process group, to be confirmed gone before a resume.
    pub(crate) previous: Option<super::gone::PreviousProcess>,
}

pub(crate) struct Keeper;

pub(crate) struct KeeperArgs {
    pub(crate) tree: Arc<Tree>,
    pub(crate) entry: Arc<Entry>,
    pub(crate) subtree: SupervisorRef,
}

pub(crate) struct KeeperState {
    tree: Arc<Tree>,
    entry: Arc<Entry>,
    subtree: SupervisorRef,
    current: Option<(u64, Session)>,
    previous: Option<super::gone::PreviousProcess>,
    waiters: Vec<(Instant, Reply)>,
    /// Hibernation or a deliberate replacement is under way: the instance's exit is ours.
    stopping_on_purpose: bool,
    hibernated: bool,
    idle_epoch: u64,
}

impl Actor for Keeper {
    type Msg = KeeperMsg;
    type State = KeeperState;
    type Arguments = KeeperArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<KeeperMsg>,
        args: KeeperArgs,
    ) -> Result<KeeperState, ActorProcessingErr> {
        args.entry.keeper.send_replace(Some(myself));
        Ok(KeeperState {
            tree: args.tree,
            entry: args.entry,
            subtree: args.subtree,
            current: None,
            previous: None,
            waiters: Vec::new(),
            stopping_on_purpose: false,
            hibernated: false,
            idle_epoch: 0,
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<KeeperMsg>,
        state: &mut KeeperState,
    ) -> Result<(), ActorProcessingErr> {
        // Parked callers hear the session's fate from its view once their reply is dropped.
        state.waiters.clear();
        state.entry.keeper.send_if_modified(|k| {
            if k.as_ref().is_some_and(|k| k.get_id() == myself.get_id()) {
                *k = None;
                true
            } else {
                false
            }
        });
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<KeeperMsg>,
        msg: KeeperMsg,
        state: &mut KeeperState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            KeeperMsg::Acquire { reply, deadline } => state.acquire(&myself, reply, deadline),
            KeeperMsg::Suspect { generation } => {
                if let Some((g, session)) = &state.current
                    && *g == generation
                    && !session.is_running()
                {
                    state.current = None;
                    state.publish_state(SessionState::Restarting);
                }
            }
            KeeperMsg::Prepare(reply) => {
                let _ = reply.send(state.prepare().await);
            }
            KeeperMsg::Up {
                generation,
                session,
                pid,
                tree,
            } => {
                state.previous = Some(super::gone::PreviousProcess::new(tree));
                state.current = Some((generation, session.clone()));
                state.stopping_on_purpose = false;
                state.hibernated = false;
                state.entry.view.send_modify(|v| {
                    v.state = SessionState::Running;
                    v.pid = pid;
                    v.up_since = Some(SystemTime::now());
                    v.busy = false;
                });
                for (_, reply) in state.waiters.drain(..) {
                    let _ = reply.send(Ok((generation, session.clone())));
                }
                // A `start_session` waiting for the first launch returns once the state says so.
                state.entry.report_first(Ok(()));
                state.touch(&myself);
                state.tree.save(&state.entry);
            }
            KeeperMsg::LaunchFailed { generation, error } => {
                tracing::warn!(session = state.entry.name(), generation, %error, "session instance failed to start");
                state
                    .entry
                    .view
                    .send_modify(|v| v.reason = Some(error.clone()));
                state.tree.emit(
                    Some(state.entry.name()),
                    SupervisorEventKind::StartFailed { error },
                );
            }
            KeeperMsg::Down { generation, normal } => state.down(generation, normal),
            KeeperMsg::Event { generation, kind } => state.event(&myself, generation, kind).await,
            KeeperMsg::IdleCheck(epoch) => state.idle_check(&myself, epoch),
            KeeperMsg::StillBusy => {
                state.stopping_on_purpose = false;
                state.touch(&myself);
            }
            KeeperMsg::Hibernated(result) => {
                state.stopping_on_purpose = false;
                match result {
                    Ok(()) => {
                        state.hibernated = true;
                        state.current = None;
                        state.entry.view.send_modify(|v| {
                            v.state = SessionState::Hibernated;
                            v.pid = None;
                            v.up_since = None;
                        });
                        tracing::info!(session = state.entry.name(), "hibernated");
                        state
                            .tree
                            .emit(Some(state.entry.name()), SupervisorEventKind::Hibernated);
                        if !state.waiters.is_empty() {
                            state.wake(&myself);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(session = state.entry.name(), %error, "could not hibernate");
                    }
                }
            }
            KeeperMsg::Replaced(result) => {
                if let Err(error) = result {
                    state.stopping_on_purpose = false;
                    for (_, reply) in state.waiters.drain(..) {
                        let _ = reply.send(Err(SupervisorError::Unavailable {
                            name: state.entry.name().to_owned(),
                            reason: format!("could not restart: {error}"),
                        }));
                    }
                }
            }
            KeeperMsg::Restart(reply) => {
                state
                    .waiters
                    .push((Instant::now() + state.tree.restart_wait, reply));
                state.schedule_expiry(&myself);
                state.current = None;
                state.hibernated = false;
                state.stopping_on_purpose = true;
                state.publish_state(SessionState::Restarting);
                let (sub, me) = (state.subtree.clone(), myself.clone());
                let spec = instance::child_spec(&state.tree, &state.entry);
                tokio::spawn(async move {
                    let result = replace_instance(&sub, spec, true).await;
                    let _ = me.cast(KeeperMsg::Replaced(result));
                });
            }
            KeeperMsg::ExpireWaiters => {
                // A reply dropped here reaches its caller as a closed channel; the caller's own
                // deadline (the same restart wait) turns that into `RestartTimeout`.
                let now = Instant::now();
                state.waiters.retain(|(deadline, _)| *deadline > now);
            }
        }
        Ok(())
    }
}

/// Stops the instance (if `stop_first`) and starts it again; a temporary instance, whose spec
/// the supervisor deleted when it stopped, is added back.
async fn replace_instance(
    sub: &SupervisorRef,
    spec: supervision::ChildSpec,
    stop_first: bool,
) -> Result<(), String> {
    if stop_first {
        match sub.terminate_child(INSTANCE).await {
            Ok(()) | Err(ChildError::NotFound { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    match sub.restart_child(INSTANCE).await {
        Ok(_) => Ok(()),
        Err(ChildError::NotFound { .. }) => sub
            .start_child(spec)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

impl KeeperState {
    fn name(&self) -> &str {
        self.entry.name()
    }

    fn publish_state(&self, new: SessionState) {
        self.entry.view.send_modify(|v| v.state = new);
    }

    fn acquire(&mut self, myself: &ActorRef<KeeperMsg>, reply: Reply, deadline: Instant) {
        self.touch(myself);
        if let Some((generation, session)) = &self.current
            && session.is_running()
        {
            let _ = reply.send(Ok((*generation, session.clone())));
            return;
        }
        self.waiters.push((deadline, reply));
        self.schedule_expiry(myself);
        if self.hibernated && !self.stopping_on_purpose {
            self.wake(myself);
        }
    }

    fn schedule_expiry(&self, myself: &ActorRef<KeeperMsg>) {
        myself.send_after(self.tree.restart_wait, || KeeperMsg::ExpireWaiters);
    }

    fn wake(&mut self, myself: &ActorRef<KeeperMsg>) {
        self.hibernated = false;
        self.publish_state(SessionState::Restarting);
        tracing::info!(session = self.name(), "waking from hibernation");
        let (sub, me) = (self.subtree.clone(), myself.clone());
        let spec = instance::child_spec(&self.tree, &self.entry);
        tokio::spawn(async move {
            let result = replace_instance(&sub, spec, false).await;
            let _ = me.cast(KeeperMsg::Replaced(result));
        });
    }

    async fn prepare(&mut self) -> Result<Prepared, SupervisorError> {
        if let Some(fleet) = self.tree.fleet.clone() {
            // No launch without the session's lease. A new lease (a new token) means another
            // node may have moved the conversation on: load the record again.
            if fleet.claim(&self.tree, self.entry.name()).await?
                && let Some(r) = self.tree.load(self.entry.name()).await?
            {
                self.entry.ledger.restore_from(r.session_id, r.totals);
            }
        }
        let resume = self.entry.ledger.session_id();
        if let Some(id) = &resume {
            self.tree.leases.acquire(id, self.entry.name()).await?;
        }
        let mut generation = 0;
        self.entry.view.send_modify(|v| {
            v.generation += 1;
            generation = v.generation;
            if generation > 1 {
                v.state = SessionState::Restarting;
            }
        });
        Ok(Prepared {
            generation,
            resume,
            previous: self.previous.take(),
        })
    }

    fn down(&mut self, generation: u64, normal: bool) {
        match &self.current {
            // A newer instance is already up: this exit is old news.
            Some((g, _)) if *g != generation => return,
            Some(_) => self.current = None,
            None => {}
        }
        self.entry.view.send_modify(|v| {
            v.pid = None;
            v.up_since = None;
            v.busy = false;
        });
        let ending = *self.entry.ending.borrow();
        if self.stopping_on_purpose || self.hibernated || ending.is_some() {
            // An exit the tree asked for: a session never shows `running` without its process.
            let hibernating = self.stopping_on_purpose;
            self.entry.view.send_modify(|v| {
                if v.state == SessionState::Running {
                    v.state = match ending {
                        Some(Ending::Terminated) => SessionState::Gone,
                        Some(Ending::Failing) => SessionState::Failed,
                        Some(Ending::Restarting) => SessionState::Restarting,
                        None if hibernating => SessionState::Hibernated,
                        None => SessionState::Restarting,
                    };
                }
            });
            return;
        }
        let restarts = match self.entry.spec.restart {
            RestartType::Permanent => true,
            RestartType::Transient => !normal,
            _ => false,
        };
        if restarts {
            self.entry.view.send_modify(|v| {
                v.state = SessionState::Restarting;
                v.restarts += 1;
            });
            self.tree
                .emit(Some(self.name()), SupervisorEventKind::Restarting);
        } else {
            // Its restart type says it is done: the tree forgets it.
            let (tree, name) = (self.tree.clone(), self.name().to_owned());
            tokio::spawn(async move {
                tree.end_session(
                    &name,
                    "its CLI exited and its restart type does not restart it",
                )
                .await
            });
        }
    }

    async fn event(
        &mut self,
        myself: &ActorRef<KeeperMsg>,
        generation: u64,
        kind: SessionEventKind,
    ) {
        let current = self.current.as_ref().is_some_and(|(g, _)| *g == generation);
        match &kind {
            SessionEventKind::TurnStarted { .. } if current => {
                self.entry.view.send_modify(|v| v.busy = true);
                self.touch(myself);
            }
            SessionEventKind::TurnFinished { .. } | SessionEventKind::TurnFailed { .. } => {
                self.entry.view.send_modify(|v| v.busy = false);
                self.touch(myself);
                self.tree.save(&self.entry);
            }
            SessionEventKind::SessionIdChanged { session_id } => {
                self.tree.leases.release_all(self.name());
                if let Err(e) = self.tree.leases.acquire(session_id, self.name()).await {
                    tracing::warn!(session = self.name(), error = %e, "conversation lease conflict");
                }
                self.tree.save(&self.entry);
            }
            SessionEventKind::ConversationNotFound { session_id } => {
                self.conversation_lost(session_id.clone()).await;
            }
            _ => {}
        }
    }

    async fn conversation_lost(&mut self, session_id: String) {
        let name = self.name().to_owned();
        tracing::warn!(session = %name, %session_id, "the CLI does not have the conversation to resume");
        self.tree.emit(
            Some(&name),
            SupervisorEventKind::ConversationLost {
                session_id: session_id.clone(),
            },
        );
        match self.entry.spec.lost_conversation {
            LostConversation::StartFresh => {
                // The CLI exits after this turn; its replacement starts a fresh conversation.
                self.entry.ledger.forget_session_id();
                self.tree.leases.release_all(&name);
                self.tree.save(&self.entry);
            }
            LostConversation::Fail => {
                self.entry.view.send_modify(|v| {
                    v.reason = Some(format!(
                        "the CLI has no conversation {session_id} to resume"
                    ));
                    v.lost = Some(session_id.clone());
                    v.state = SessionState::Failed;
                });
                self.entry.ending.send_replace(Some(Ending::Failing));
                let sub = self.subtree.clone();
                tokio::spawn(async move { sub.stop().await });
            }
        }
    }

    /// Activity: the idle deadline starts again.
    fn touch(&mut self, myself: &ActorRef<KeeperMsg>) {
        self.entry
            .view
            .send_modify(|v| v.last_activity = SystemTime::now());
        if let Some(idle) = self.entry.spec.idle_timeout {
            self.idle_epoch += 1;
            let epoch = self.idle_epoch;
            myself.send_after(idle, move || KeeperMsg::IdleCheck(epoch));
        }
    }

    fn idle_check(&mut self, myself: &ActorRef<KeeperMsg>, epoch: u64) {
        if epoch != self.idle_epoch
            || self.stopping_on_purpose
            || self.hibernated
            || self.current.is_none()
            || self.entry.view.borrow().busy
            || !self.waiters.is_empty()
        {
            return;
        }
        let Some(idle) = self.entry.spec.idle_timeout else {
            return;
        };
        let Some((_, session)) = self.current.clone() else {
            return;
        };
        self.stopping_on_purpose = true;
        // The instance stays `current` until it is stopped: a caller that resolves it meanwhile
        // and is refused reports it (`Suspect`) and is parked until the wake-up. The session
        // itself decides whether it is idle, in order with the turns sent to it: a turn that
        // got there first is never cut (the keeper's `busy` comes from events, which lag).
        let (sub, me, name) = (self.subtree.clone(), myself.clone(), self.name().to_owned());
        tokio::spawn(async move {
            if !matches!(session.close_if_idle().await, Ok(true) | Err(_)) {
                let _ = me.cast(KeeperMsg::StillBusy);
                return;
            }
            tracing::info!(
                session = %name,
                "idle for {}: hibernating",
                humantime::format_duration(idle)
            );
            let result = match sub.terminate_child(INSTANCE).await {
                Ok(()) | Err(ChildError::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
            let _ = me.cast(KeeperMsg::Hibernated(result));
        });
    }
}

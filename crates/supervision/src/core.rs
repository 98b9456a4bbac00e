//! The supervisor actor shared by [`Supervisor`](crate::Supervisor) and
//! [`DynamicSupervisor`](crate::DynamicSupervisor).
//!
//! ractor leaves supervision to us: a child's exit arrives as a `SupervisionEvent`, a failed
//! `pre_start` arrives as a spawn error only, and on exit ractor kills every descendant at once
//! (skipping `post_stop`). So the supervisor stops its own children itself, in order, in
//! `post_stop` and before a meltdown or auto-shutdown exit. Exits the supervisor causes itself
//! are recognised by removing the instance's actor id from `by_actor` *before* stopping it: its
//! later exit event finds no owner and is ignored (never a restart, never counted).
//!
//! User code runs in the supervisor only in start functions; a panic there is caught and is a
//! failed start, as OTP catches its start call, so the supervisor never dies of it.

use std::any::Any;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr,
    SupervisionEvent,
};
use tokio::time::Instant;

use crate::child::{
    ChildId, ChildKind, ChildSpec, RestartType, StartArgs, StartError, StartOutcome,
};
use crate::error::{ChildError, SupervisorError};
use crate::flags::{AutoShutdown, Backoff, Strategy};
use crate::handle::SupervisorRef;
use crate::inspect::{
    ChildCounts, ChildInfo, ChildSnapshot, ChildStatus, RestartRecord, SupervisorSnapshot,
};
use crate::reason::ExitReason;
use crate::report;
use crate::stop::{self, RelayMsg};

const LOG_CAPACITY: usize = 256;

pub(crate) struct Config {
    pub(crate) name: Option<String>,
    pub(crate) strategy: Strategy,
    pub(crate) intensity: u32,
    pub(crate) period: Duration,
    pub(crate) auto_shutdown: AutoShutdown,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) dynamic: bool,
    pub(crate) max_children: Option<usize>,
    pub(crate) extra: Option<Arc<dyn Any + Send + Sync>>,
}

pub(crate) struct Init {
    pub(crate) config: Config,
    pub(crate) children: Vec<ChildSpec>,
}

#[derive(Clone, Copy)]
pub(crate) enum RetryKind {
    AfterFailure,
    AfterBackoff,
}

pub(crate) enum Msg {
    StartChild(
        ChildSpec,
        RpcReplyPort<Result<Option<ActorCell>, ChildError>>,
    ),
    TerminateChild(ChildId, RpcReplyPort<Result<(), ChildError>>),
    RestartChild(ChildId, RpcReplyPort<Result<Option<ActorCell>, ChildError>>),
    DeleteChild(ChildId, RpcReplyPort<Result<(), ChildError>>),
    WhichChildren(RpcReplyPort<Vec<ChildInfo>>),
    CountChildren(RpcReplyPort<ChildCounts>),
    Inspect(RpcReplyPort<SupervisorSnapshot>),
    TryRestart {
        id: ChildId,
        token: u64,
        kind: RetryKind,
    },
    ChildGone(ActorId),
}

#[derive(Debug, thiserror::Error)]
#[error("child `{child}` failed to start: {cause}")]
struct InitFailure {
    child: ChildId,
    cause: StartError,
}

/// A child's status as the supervisor keeps it: the public [`ChildStatus`] with the running
/// instance inside, so that the two cannot disagree.
enum Status {
    Running(ActorCell),
    Restarting,
    NotRunning,
}

impl Status {
    fn public(&self) -> ChildStatus {
        match self {
            Status::Running(_) => ChildStatus::Running,
            Status::Restarting => ChildStatus::Restarting,
            Status::NotRunning => ChildStatus::NotRunning,
        }
    }

    fn cell(&self) -> Option<&ActorCell> {
        match self {
            Status::Running(cell) => Some(cell),
            _ => None,
        }
    }
}

struct Child {
    spec: ChildSpec,
    /// The key of this child in `State::order`.
    seq: u64,
    status: Status,
    generation: u64,
    restarts: u64,
    recent: VecDeque<Instant>,
    /// The restart this child waits for, while `Restarting`: every member of a group restart
    /// holds the same token, so the group is started again in one step (or not at all).
    pending: Option<u64>,
}

pub(crate) struct State {
    cfg: Config,
    name: String,
    me: ActorRef<Msg>,
    /// Start order: a sequence number per insertion, so that a dynamic supervisor removes a
    /// child in O(log n) instead of shifting a vector.
    order: BTreeMap<u64, ChildId>,
    next_seq: u64,
    children: HashMap<ChildId, Child>,
    by_actor: HashMap<ActorId, ChildId>,
    restarts: VecDeque<Instant>,
    log: VecDeque<RestartRecord>,
    started_at: Instant,
    next_token: u64,
    exiting: bool,
    /// Records exit reasons of the children being stopped; spawned on the first stop.
    relay: Option<ActorRef<RelayMsg>>,
}

pub(crate) struct SupervisorActor;

impl Actor for SupervisorActor {
    type Msg = Msg;
    type State = State;
    type Arguments = Init;

    async fn pre_start(
        &self,
        myself: ActorRef<Msg>,
        init: Init,
    ) -> Result<State, ActorProcessingErr> {
        let name = init
            .config
            .name
            .clone()
            .unwrap_or_else(|| myself.get_id().to_string());
        let mut st = State {
            cfg: init.config,
            name,
            me: myself,
            order: BTreeMap::new(),
            next_seq: 0,
            children: HashMap::new(),
            by_actor: HashMap::new(),
            restarts: VecDeque::new(),
            log: VecDeque::new(),
            started_at: Instant::now(),
            next_token: 0,
            exiting: false,
            relay: None,
        };
        for spec in init.children {
            let id = spec.id.clone();
            st.insert(spec);
            if let Err(cause) = st.start_instance(&id).await {
                st.remove(&id);
                st.shutdown_all().await;
                // No post_stop follows a failed pre_start.
                st.stop_relay();
                return Err(Box::new(InitFailure { child: id, cause }));
            }
        }
        Ok(st)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Msg>,
        st: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        st.shutdown_all().await;
        st.stop_relay();
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Msg>,
        msg: Msg,
        st: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            Msg::StartChild(spec, reply) => {
                let r = st.start_child(spec).await;
                let _ = reply.send(r);
            }
            Msg::TerminateChild(id, reply) => {
                let r = st.terminate_child(&id).await;
                let _ = reply.send(r);
            }
            Msg::RestartChild(id, reply) => {
                let r = st.restart_child(&id).await;
                let _ = reply.send(r);
            }
            Msg::DeleteChild(id, reply) => {
                let r = st.delete_child(&id);
                let _ = reply.send(r);
            }
            // A query whose caller gave up (timed out) is not worth computing.
            Msg::WhichChildren(reply) if !reply.is_closed() => {
                let _ = reply.send(st.which_children());
            }
            Msg::CountChildren(reply) if !reply.is_closed() => {
                let _ = reply.send(st.count_children());
            }
            Msg::Inspect(reply) if !reply.is_closed() => {
                let _ = reply.send(st.snapshot());
            }
            Msg::WhichChildren(_) | Msg::CountChildren(_) | Msg::Inspect(_) => {}
            Msg::TryRestart { id, token, kind } => st.try_restart(id, token, kind).await,
            Msg::ChildGone(actor) => {
                st.on_exit(actor, ExitReason::failed("noproc")).await;
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Msg>,
        event: SupervisionEvent,
        st: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        if let (Some(cell), Some(reason)) = (event.actor_cell(), ExitReason::from_event(&event)) {
            st.on_exit(cell.get_id(), reason).await;
        }
        Ok(())
    }
}

/// A panic in a start function as a start error (OTP's `{error, Reason}` from a crashed start).
fn panicked(payload: Box<dyn Any + Send>) -> StartError {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_string());
    StartError::new(format!("start function panicked: {message}"))
}

impl State {
    fn insert(&mut self, spec: ChildSpec) {
        let id = spec.id.clone();
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, id.clone());
        self.children.insert(
            id,
            Child {
                spec,
                seq,
                status: Status::NotRunning,
                generation: 0,
                restarts: 0,
                recent: VecDeque::new(),
                pending: None,
            },
        );
    }

    fn remove(&mut self, id: &ChildId) {
        if let Some(c) = self.children.remove(id) {
            if let Status::Running(cell) = c.status {
                self.by_actor.remove(&cell.get_id());
            }
            self.order.remove(&c.seq);
        }
    }

    /// The relay that learns the exit reasons of the children we stop (spawned once).
    async fn relay(&mut self) -> Option<ActorRef<RelayMsg>> {
        if self.relay.is_none() {
            self.relay = stop::spawn_relay(self.me.get_cell()).await;
        }
        self.relay.clone()
    }

    fn stop_relay(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.stop(None);
        }
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Calls the child's start function once. On `Started` the instance is linked and recorded.
    async fn start_instance(&mut self, id: &ChildId) -> Result<Option<ActorCell>, StartError> {
        let Some(child) = self.children.get(id) else {
            return Ok(None);
        };
        let start = child.spec.start.clone();
        let restart = child.spec.restart;
        let args = StartArgs {
            supervisor: self.me.get_cell(),
            child_id: id.clone(),
            generation: child.generation + 1,
            extra: self.cfg.extra.clone(),
        };
        // OTP catches the start call: a panic is a failed start, not the supervisor's death.
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| start(args))) {
            Ok(fut) => AssertUnwindSafe(fut)
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(panicked(panic))),
            Err(panic) => Err(panicked(panic)),
        };
        match outcome {
            Ok(StartOutcome::Started(cell)) => {
                let me = self.me.get_cell();
                cell.link(me.clone());
                let linked = cell
                    .try_get_supervisor()
                    .is_some_and(|s| s.get_id() == me.get_id());
                let Some(child) = self.children.get_mut(id) else {
                    return Ok(Some(cell));
                };
                child.generation += 1;
                child.status = Status::Running(cell.clone());
                child.pending = None;
                let generation = child.generation;
                self.by_actor.insert(cell.get_id(), id.clone());
                if !linked {
                    // It exited before we could link it: its exit event went nowhere.
                    let me = self.me.clone();
                    let c = cell.clone();
                    tokio::spawn(async move {
                        let _ = c.wait(None).await;
                        let _ = me.send_message(Msg::ChildGone(c.get_id()));
                    });
                }
                report::started(
                    &self.name,
                    id,
                    restart,
                    generation,
                    &cell.get_id().to_string(),
                );
                Ok(Some(cell))
            }
            Ok(StartOutcome::Ignore) => {
                if let Some(child) = self.children.get_mut(id) {
                    child.status = Status::NotRunning;
                    child.pending = None;
                }
                if restart == RestartType::Temporary {
                    self.remove(id);
                }
                Ok(None)
            }
            Err(e) => {
                report::start_error(&self.name, id, restart, e.message());
                Err(e)
            }
        }
    }

    /// Stops a running child on the supervisor's own initiative (never restarted, never counted).
    async fn stop_child(&mut self, id: &ChildId) {
        if let Some(stopped) = self.stop_instance(id).await {
            self.report_stops(vec![(id.clone(), stopped)]).await;
        }
    }

    /// Stops a child's running instance, if any; the stop is judged by `report_stops`.
    async fn stop_instance(&mut self, id: &ChildId) -> Option<stop::Stopped> {
        let child = self.children.get_mut(id)?;
        child.pending = None;
        let status = std::mem::replace(&mut child.status, Status::NotRunning);
        let Status::Running(cell) = status else {
            return None;
        };
        let (shutdown, restart) = (child.spec.shutdown, child.spec.restart);
        self.by_actor.remove(&cell.get_id());
        let relay = self.relay().await;
        Some(stop::stop_cell(&cell, shutdown, restart, relay.as_ref()).await)
    }

    /// Reports the shutdown errors among `stops` (one question to the relay for all of them).
    async fn report_stops(&mut self, stops: Vec<(ChildId, stop::Stopped)>) {
        if stops.is_empty() {
            return;
        }
        let (ids, stopped): (Vec<ChildId>, Vec<stop::Stopped>) = stops.into_iter().unzip();
        let judged = stop::judge(self.relay.as_ref(), &stopped).await;
        for ((id, s), verdict) in ids.iter().zip(&stopped).zip(judged) {
            if let Err(reason) = verdict {
                report::shutdown_error(&self.name, id, s.restart, &reason);
            }
        }
    }

    /// Stops every child: in reverse start order, each awaited before the next (static), or
    /// all at once (dynamic).
    async fn shutdown_all(&mut self) {
        self.exiting = true;
        let ids: Vec<ChildId> = self.order.values().rev().cloned().collect();
        if !self.cfg.dynamic {
            let mut stops = Vec::new();
            for id in ids {
                if let Some(stopped) = self.stop_instance(&id).await {
                    stops.push((id, stopped));
                }
            }
            self.report_stops(stops).await;
            return;
        }
        let relay = if self.by_actor.is_empty() {
            None
        } else {
            self.relay().await
        };
        let mut stops = Vec::new();
        for id in ids {
            let Some(child) = self.children.get_mut(&id) else {
                continue;
            };
            child.pending = None;
            if let Status::Running(cell) = std::mem::replace(&mut child.status, Status::NotRunning)
            {
                self.by_actor.remove(&cell.get_id());
                let (shutdown, restart) = (child.spec.shutdown, child.spec.restart);
                let relay = relay.clone();
                stops.push(async move {
                    let stopped = stop::stop_cell(&cell, shutdown, restart, relay.as_ref()).await;
                    (id, stopped)
                });
            }
        }
        let stops = futures::future::join_all(stops).await;
        self.report_stops(stops).await;
    }

    async fn exit_shutdown(&mut self, id: &ChildId, restart: RestartType, reason: &str) {
        report::shutdown(&self.name, id, restart, reason);
        self.shutdown_all().await;
        self.me.stop(Some("shutdown".to_string()));
    }

    async fn on_exit(&mut self, actor: ActorId, reason: ExitReason) {
        if self.exiting {
            return;
        }
        let Some(id) = self.by_actor.remove(&actor) else {
            return;
        };
        let Some(child) = self.children.get_mut(&id) else {
            return;
        };
        child.status = Status::NotRunning;
        let spec = child.spec.clone();
        report::terminated(&self.name, &id, spec.restart, &reason.reason, reason.normal);
        let restart = match spec.restart {
            RestartType::Permanent => true,
            RestartType::Transient => !reason.normal,
            RestartType::Temporary => false,
        };
        if restart {
            self.restart(&id, &reason.reason).await;
            return;
        }
        if spec.restart == RestartType::Temporary || self.cfg.dynamic {
            self.remove(&id);
        }
        if spec.significant {
            let trigger = match self.cfg.auto_shutdown {
                AutoShutdown::AnySignificant => true,
                AutoShutdown::AllSignificant => !self
                    .children
                    .values()
                    .any(|c| c.spec.significant && !matches!(c.status, Status::NotRunning)),
                _ => false,
            };
            if trigger {
                self.exit_shutdown(&id, spec.restart, "auto-shutdown: significant child exited")
                    .await;
            }
        }
    }

    /// The children a restart of `id` concerns, in start order.
    fn group(&self, id: &ChildId) -> Vec<ChildId> {
        match self.cfg.strategy {
            Strategy::OneForAll => self.order.values().cloned().collect(),
            Strategy::RestForOne => match self.children.get(id) {
                Some(c) => self
                    .order
                    .range(c.seq..)
                    .map(|(_, id)| id.clone())
                    .collect(),
                None => vec![],
            },
            _ => vec![id.clone()],
        }
    }

    /// A restart was needed: count it, check intensity, stop the group, then start it (now or
    /// after the backoff delay).
    async fn restart(&mut self, id: &ChildId, reason: &str) {
        let now = Instant::now();
        let period = self.cfg.period;
        self.restarts.push_back(now);
        // OTP keeps a restart R while R >= Now - Period (inclusive), in whole seconds; we
        // keep the inclusive edge at the tokio clock's precision (docs/semantics.md, I2).
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > period)
        {
            self.restarts.pop_front();
        }
        let Some(child) = self.children.get_mut(id) else {
            return;
        };
        let restart_type = child.spec.restart;
        if self.restarts.len() > self.cfg.intensity as usize {
            self.exit_shutdown(id, restart_type, report::MELTDOWN_REASON)
                .await;
            return;
        }
        child.restarts += 1;
        child.recent.push_back(now);
        while child
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > period)
        {
            child.recent.pop_front();
        }
        let (restarts, recent) = (child.restarts, child.recent.len() as u32);
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(RestartRecord {
            child: id.clone(),
            reason: reason.to_string(),
            at_ms: now.duration_since(self.started_at).as_millis() as u64,
        });
        report::restarting(&self.name, id, restart_type, reason, restarts);

        // Stop the rest of the group, in reverse start order; temporary members are removed.
        let group = self.group(id);
        for gid in group.iter().rev() {
            if gid == id {
                continue;
            }
            self.stop_child(gid).await;
            if self
                .children
                .get(gid)
                .is_some_and(|c| c.spec.restart == RestartType::Temporary)
            {
                self.remove(gid);
            }
        }
        // The whole group waits for the same restart: it shows `Restarting` (restart_child and
        // delete_child refuse it) until it starts again, in one step, as in OTP.
        let token = self.token();
        for gid in &group {
            if let Some(c) = self.children.get_mut(gid) {
                if !matches!(c.status, Status::Running(_)) {
                    c.status = Status::Restarting;
                    c.pending = Some(token);
                }
            }
        }
        if let Some(backoff) = self.cfg.backoff {
            let delay = backoff.delay(recent);
            let me = self.me.clone();
            let id = id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = me.send_message(Msg::TryRestart {
                    id,
                    token,
                    kind: RetryKind::AfterBackoff,
                });
            });
            return;
        }
        self.start_group(group, token).await;
    }

    /// Starts, in start order, the members of `group` waiting for restart `token`. A failure
    /// leaves that child and the rest waiting (under a new token) and schedules a retry of the
    /// failed child, which counts as a restart, as in OTP.
    async fn start_group(&mut self, group: Vec<ChildId>, token: u64) {
        let members: Vec<ChildId> = group
            .into_iter()
            .filter(|gid| {
                self.children
                    .get(gid)
                    .is_some_and(|c| c.pending == Some(token))
            })
            .collect();
        for (k, gid) in members.iter().enumerate() {
            if self
                .children
                .get(gid)
                .is_none_or(|c| c.pending != Some(token))
            {
                continue;
            }
            if self.start_instance(gid).await.is_err() {
                let retry = self.token();
                for rest in &members[k..] {
                    if let Some(c) = self.children.get_mut(rest) {
                        if c.pending == Some(token) {
                            c.status = Status::Restarting;
                            c.pending = Some(retry);
                        }
                    }
                }
                // Through the mailbox, so that calls are answered between attempts.
                let _ = self.me.send_message(Msg::TryRestart {
                    id: gid.clone(),
                    token: retry,
                    kind: RetryKind::AfterFailure,
                });
                return;
            }
        }
    }

    async fn try_restart(&mut self, id: ChildId, token: u64, kind: RetryKind) {
        if self.exiting {
            return;
        }
        let failed_still_waits = self
            .children
            .get(&id)
            .is_some_and(|c| c.pending == Some(token));
        match kind {
            RetryKind::AfterFailure if failed_still_waits => {
                self.restart(&id, "restart failed").await
            }
            // After a backoff, or when the failed child was terminated meanwhile: start the
            // rest of the group that still waits (nothing if all of it was terminated). Every
            // waiting member is in `id`'s group; if `id` itself is gone, look at all children.
            _ => {
                let group = if self.children.contains_key(&id) {
                    self.group(&id)
                } else if self.cfg.strategy == Strategy::OneForOne {
                    return;
                } else {
                    self.order.values().cloned().collect()
                };
                self.start_group(group, token).await
            }
        }
    }

    fn err_not_found(&self, id: &ChildId) -> ChildError {
        ChildError::NotFound {
            supervisor: self.name.clone(),
            child: id.clone(),
        }
    }

    async fn start_child(&mut self, spec: ChildSpec) -> Result<Option<ActorCell>, ChildError> {
        let id = spec.id.clone();
        let supervisor = self.name.clone();
        if let Some(c) = self.children.get(&id) {
            return Err(match &c.status {
                Status::Running(cell) => ChildError::AlreadyStarted {
                    supervisor,
                    child: id,
                    cell: cell.clone(),
                },
                _ => ChildError::AlreadyPresent {
                    supervisor,
                    child: id,
                },
            });
        }
        if spec.significant && (self.cfg.dynamic || self.cfg.auto_shutdown == AutoShutdown::Never) {
            return Err(ChildError::SignificantUnderNever {
                supervisor,
                child: id,
            });
        }
        if let Some(max) = self.cfg.max_children {
            if self.children.len() >= max {
                return Err(ChildError::MaxChildren { supervisor, max });
            }
        }
        self.insert(spec);
        match self.start_instance(&id).await {
            Ok(Some(cell)) => Ok(Some(cell)),
            Ok(None) => {
                if self.cfg.dynamic {
                    self.remove(&id);
                }
                Ok(None)
            }
            Err(source) => {
                self.remove(&id);
                Err(ChildError::StartFailed {
                    supervisor,
                    child: id,
                    source,
                })
            }
        }
    }

    async fn terminate_child(&mut self, id: &ChildId) -> Result<(), ChildError> {
        let Some(child) = self.children.get_mut(id) else {
            return Err(self.err_not_found(id));
        };
        let restart = child.spec.restart;
        if matches!(child.status, Status::Restarting) {
            child.status = Status::NotRunning;
            child.pending = None;
        }
        self.stop_child(id).await;
        if restart == RestartType::Temporary || self.cfg.dynamic {
            self.remove(id);
        }
        Ok(())
    }

    async fn restart_child(&mut self, id: &ChildId) -> Result<Option<ActorCell>, ChildError> {
        let supervisor = self.name.clone();
        let Some(child) = self.children.get(id) else {
            return Err(self.err_not_found(id));
        };
        match child.status {
            Status::Running(_) => Err(ChildError::Running {
                supervisor,
                child: id.clone(),
            }),
            Status::Restarting => Err(ChildError::Restarting {
                supervisor,
                child: id.clone(),
            }),
            Status::NotRunning => {
                self.start_instance(id)
                    .await
                    .map_err(|source| ChildError::StartFailed {
                        supervisor,
                        child: id.clone(),
                        source,
                    })
            }
        }
    }

    fn delete_child(&mut self, id: &ChildId) -> Result<(), ChildError> {
        let supervisor = self.name.clone();
        let Some(child) = self.children.get(id) else {
            return Err(self.err_not_found(id));
        };
        match child.status {
            Status::Running(_) => Err(ChildError::Running {
                supervisor,
                child: id.clone(),
            }),
            Status::Restarting => Err(ChildError::Restarting {
                supervisor,
                child: id.clone(),
            }),
            Status::NotRunning => {
                self.remove(id);
                Ok(())
            }
        }
    }

    fn which_children(&self) -> Vec<ChildInfo> {
        self.order
            .values()
            .filter_map(|id| self.children.get(id))
            .map(|c| ChildInfo {
                id: c.spec.id.clone(),
                status: c.status.public(),
                cell: c.status.cell().cloned(),
                kind: c.spec.kind,
                restart: c.spec.restart,
                generation: c.generation,
            })
            .collect()
    }

    fn count_children(&self) -> ChildCounts {
        let mut counts = ChildCounts::default();
        for c in self.children.values() {
            counts.specs += 1;
            if matches!(c.status, Status::Running(_)) {
                counts.active += 1;
            }
            match c.spec.kind {
                ChildKind::Supervisor => counts.supervisors += 1,
                _ => counts.workers += 1,
            }
        }
        counts
    }

    fn snapshot(&self) -> SupervisorSnapshot {
        let now = Instant::now();
        SupervisorSnapshot {
            supervisor: self.name.clone(),
            strategy: self.cfg.strategy,
            intensity: self.cfg.intensity,
            period_ms: self.cfg.period.as_millis() as u64,
            restarts_in_window: self
                .restarts
                .iter()
                .filter(|t| now.duration_since(**t) <= self.cfg.period)
                .count(),
            children: self
                .order
                .values()
                .filter_map(|id| self.children.get(id))
                .map(|c| ChildSnapshot {
                    id: c.spec.id.clone(),
                    status: c.status.public(),
                    actor_id: c.status.cell().map(|cell| cell.get_id().to_string()),
                    kind: c.spec.kind,
                    restart: c.spec.restart,
                    significant: c.spec.significant,
                    generation: c.generation,
                    restarts: c.restarts,
                })
                .collect(),
            restart_log: self.log.iter().cloned().collect(),
        }
    }
}

/// Spawns the supervisor actor; maps a failed static start onto [`SupervisorError`].
pub(crate) async fn spawn(
    init: Init,
    parent: Option<ActorCell>,
) -> Result<SupervisorRef, SupervisorError> {
    let display = init
        .config
        .name
        .clone()
        .unwrap_or_else(|| "<unnamed>".to_string());
    let name = init.config.name.clone();
    let res = match parent {
        Some(p) => Actor::spawn_linked(name, SupervisorActor, init, p).await,
        None => Actor::spawn(name, SupervisorActor, init).await,
    };
    match res {
        Ok((actor, _join)) => {
            let name = actor
                .get_name()
                .unwrap_or_else(|| actor.get_id().to_string());
            Ok(SupervisorRef::new(actor, Arc::from(name)))
        }
        Err(SpawnErr::StartupFailed(e)) => match e.downcast::<InitFailure>() {
            Ok(f) => Err(SupervisorError::ChildStartFailed {
                supervisor: display,
                child: f.child,
                source: f.cause,
            }),
            Err(e) => Err(SupervisorError::Spawn {
                supervisor: display,
                reason: e.to_string(),
            }),
        },
        Err(e) => Err(SupervisorError::Spawn {
            supervisor: display,
            reason: e.to_string(),
        }),
    }
}

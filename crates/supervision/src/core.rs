//! The supervisor actor shared by [`Supervisor`](crate::Supervisor) and
//! [`DynamicSupervisor`](crate::DynamicSupervisor).
//!
//! ractor leaves supervision to us: a child's exit arrives as a `SupervisionEvent`, a failed
//! `pre_start` arrives as a spawn error only, and on exit ractor kills every descendant at once
//! (skipping `post_stop`). So the supervisor stops its own children itself, in order, in
//! `post_stop` and before a meltdown or auto-shutdown exit. Exits the supervisor causes itself
//! are recognised by removing the instance's actor id from `by_actor` *before* stopping it: its
//! later exit event finds no owner and is ignored (never a restart, never counted).

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr,
    SupervisionEvent,
};
use tokio::time::Instant;

use crate::child::{
    ChildId, ChildKind, ChildSpec, RestartType, Shutdown, StartArgs, StartError, StartOutcome,
};
use crate::error::{ChildError, SupervisorError};
use crate::flags::{AutoShutdown, Backoff, Strategy};
use crate::inspect::{
    ChildCounts, ChildInfo, ChildSnapshot, ChildStatus, RestartRecord, SnapshotStatus,
    SupervisorSnapshot,
};
use crate::reason::ExitReason;
use crate::report;

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

enum Status {
    Running(ActorCell),
    Restarting,
    NotRunning,
}

struct Child {
    spec: ChildSpec,
    status: Status,
    generation: u64,
    restarts: u64,
    recent: VecDeque<Instant>,
    pending: Option<u64>,
}

pub(crate) struct State {
    cfg: Config,
    name: String,
    me: ActorRef<Msg>,
    order: Vec<ChildId>,
    children: HashMap<ChildId, Child>,
    by_actor: HashMap<ActorId, ChildId>,
    restarts: VecDeque<Instant>,
    log: VecDeque<RestartRecord>,
    started_at: Instant,
    next_token: u64,
    exiting: bool,
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
            order: Vec::new(),
            children: HashMap::new(),
            by_actor: HashMap::new(),
            restarts: VecDeque::new(),
            log: VecDeque::new(),
            started_at: Instant::now(),
            next_token: 0,
            exiting: false,
        };
        for spec in init.children {
            let id = spec.id.clone();
            st.insert(spec);
            if let Err(cause) = st.start_instance(&id).await {
                st.remove(&id);
                st.shutdown_all().await;
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
            Msg::WhichChildren(reply) => {
                let _ = reply.send(st.which_children());
            }
            Msg::CountChildren(reply) => {
                let _ = reply.send(st.count_children());
            }
            Msg::Inspect(reply) => {
                let _ = reply.send(st.snapshot());
            }
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

/// Stops one child instance per its shutdown spec; answers whether it had to be killed after its
/// timeout (a shutdown error).
pub(crate) async fn shutdown_cell(cell: &ActorCell, shutdown: Shutdown) -> bool {
    match shutdown {
        Shutdown::BrutalKill => {
            cell.kill();
            let _ = cell.wait(None).await;
            false
        }
        Shutdown::Timeout(d) => {
            cell.stop(Some("shutdown".to_string()));
            if cell.wait(Some(d)).await.is_ok() {
                false
            } else {
                cell.kill();
                let _ = cell.wait(None).await;
                true
            }
        }
        Shutdown::Infinity => {
            cell.stop(Some("shutdown".to_string()));
            let _ = cell.wait(None).await;
            false
        }
    }
}

impl State {
    fn insert(&mut self, spec: ChildSpec) {
        let id = spec.id.clone();
        self.order.push(id.clone());
        self.children.insert(
            id,
            Child {
                spec,
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
            if let Some(pos) = self.order.iter().position(|x| x == id) {
                self.order.remove(pos);
            }
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
        let outcome = start(args).await;
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
        let Some(child) = self.children.get_mut(id) else {
            return;
        };
        child.pending = None;
        let status = std::mem::replace(&mut child.status, Status::NotRunning);
        let Status::Running(cell) = status else {
            return;
        };
        let (shutdown, restart) = (child.spec.shutdown, child.spec.restart);
        self.by_actor.remove(&cell.get_id());
        if shutdown_cell(&cell, shutdown).await {
            report::shutdown_error(&self.name, id, restart, "killed after shutdown timeout");
        }
    }

    /// Stops every child: in reverse start order, each awaited before the next (static), or
    /// all at once (dynamic).
    async fn shutdown_all(&mut self) {
        self.exiting = true;
        let ids: Vec<ChildId> = self.order.iter().rev().cloned().collect();
        if !self.cfg.dynamic {
            for id in &ids {
                self.stop_child(id).await;
            }
            return;
        }
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
                stops.push(async move {
                    let killed = shutdown_cell(&cell, shutdown).await;
                    (id, restart, killed)
                });
            }
        }
        for (id, restart, killed) in futures::future::join_all(stops).await {
            if killed {
                report::shutdown_error(&self.name, &id, restart, "killed after shutdown timeout");
            }
        }
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

    fn group(&self, id: &ChildId) -> Vec<ChildId> {
        match self.cfg.strategy {
            Strategy::OneForAll => self.order.clone(),
            Strategy::RestForOne => match self.order.iter().position(|x| x == id) {
                Some(p) => self.order[p..].to_vec(),
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
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= period)
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
            .is_some_and(|t| now.duration_since(*t) >= period)
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
        if let Some(child) = self.children.get_mut(id) {
            child.status = Status::Restarting;
        }
        if let Some(backoff) = self.cfg.backoff {
            let delay = backoff.delay(recent);
            let token = self.token();
            if let Some(child) = self.children.get_mut(id) {
                child.pending = Some(token);
            }
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
        self.start_group(id).await;
    }

    /// Starts the not-running members of `id`'s group in start order. A failure marks that
    /// member restarting and schedules a retry (which counts as a restart, as in OTP).
    async fn start_group(&mut self, id: &ChildId) {
        for gid in self.group(id) {
            if self
                .children
                .get(&gid)
                .is_none_or(|c| matches!(c.status, Status::Running(_)))
            {
                continue;
            }
            if self.start_instance(&gid).await.is_err() {
                let token = self.token();
                if let Some(child) = self.children.get_mut(&gid) {
                    child.status = Status::Restarting;
                    child.pending = Some(token);
                }
                // Through the mailbox, so that calls are answered between attempts.
                let _ = self.me.send_message(Msg::TryRestart {
                    id: gid,
                    token,
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
        let Some(child) = self.children.get_mut(&id) else {
            return;
        };
        if child.pending != Some(token) {
            return;
        }
        child.pending = None;
        match kind {
            RetryKind::AfterBackoff => self.start_group(&id).await,
            RetryKind::AfterFailure => self.restart(&id, "restart failed").await,
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
            .iter()
            .filter_map(|id| self.children.get(id))
            .map(|c| ChildInfo {
                id: c.spec.id.clone(),
                status: match &c.status {
                    Status::Running(cell) => ChildStatus::Running(cell.clone()),
                    Status::Restarting => ChildStatus::Restarting,
                    Status::NotRunning => ChildStatus::NotRunning,
                },
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
                .filter(|t| now.duration_since(**t) < self.cfg.period)
                .count(),
            children: self
                .order
                .iter()
                .filter_map(|id| self.children.get(id))
                .map(|c| ChildSnapshot {
                    id: c.spec.id.clone(),
                    status: match c.status {
                        Status::Running(_) => SnapshotStatus::Running,
                        Status::Restarting => SnapshotStatus::Restarting,
                        Status::NotRunning => SnapshotStatus::NotRunning,
                    },
                    actor_id: match &c.status {
                        Status::Running(cell) => Some(cell.get_id().to_string()),
                        _ => None,
                    },
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
) -> Result<Handle, SupervisorError> {
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
            Ok(Handle {
                actor,
                name: Arc::from(name),
            })
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

/// The handle shared by both supervisor kinds.
#[derive(Clone)]
pub(crate) struct Handle {
    pub(crate) actor: ActorRef<Msg>,
    pub(crate) name: Arc<str>,
}

impl Handle {
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(RpcReplyPort<T>) -> Msg,
    ) -> Result<T, ChildError> {
        let unavailable = |reason: &str| ChildError::Unavailable {
            supervisor: self.name.to_string(),
            reason: reason.to_string(),
        };
        match self.actor.call(f, None).await {
            Ok(CallResult::Success(v)) => Ok(v),
            Ok(_) => Err(unavailable("no reply")),
            Err(_) => Err(unavailable("not running")),
        }
    }

    pub(crate) async fn stop(&self) {
        let cell = self.actor.get_cell();
        cell.stop(Some("shutdown".to_string()));
        let _ = cell.wait(None).await;
    }
}

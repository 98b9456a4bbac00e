//! Shared test helpers: a scriptable worker actor, a shared event log, polling, and a
//! capturing `tracing` layer.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use supervision::{
    ChildInfo, ChildSpec, ChildSpecBuilder, ChildStatus, RestartType, StartError, SupervisorRef,
};

/// A shared, ordered event log.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    pub fn count(&self, s: &str) -> usize {
        self.0.lock().unwrap().iter().filter(|e| *e == s).count()
    }
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
    /// Entries from index `from` on.
    pub fn since(&self, from: usize) -> Vec<String> {
        self.0.lock().unwrap()[from..].to_vec()
    }
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

pub struct Worker;

pub struct WorkerArgs {
    pub name: String,
    pub log: Log,
    /// `post_stop` takes this long (tokio time).
    pub stop_delay: Option<Duration>,
}

pub struct WorkerState {
    name: String,
    log: Log,
    stop_delay: Option<Duration>,
}

pub enum WMsg {
    /// Return an `Err` from the handler (abnormal exit).
    Crash,
    /// Panic in the handler (abnormal exit).
    Panic,
    /// Stop with this reason.
    Exit(Option<String>),
    /// Block the handler for this long (tokio time).
    Block(Duration),
    Ping(RpcReplyPort<()>),
}

impl Actor for Worker {
    type Msg = WMsg;
    type State = WorkerState;
    type Arguments = WorkerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<WMsg>,
        a: WorkerArgs,
    ) -> Result<WorkerState, ActorProcessingErr> {
        Ok(WorkerState {
            name: a.name,
            log: a.log,
            stop_delay: a.stop_delay,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<WMsg>,
        st: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(d) = st.stop_delay {
            tokio::time::sleep(d).await;
        }
        st.log.push(format!("stop:{}", st.name));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<WMsg>,
        msg: WMsg,
        st: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WMsg::Crash => {
                st.log.push(format!("crash:{}", st.name));
                return Err(format!("{} crashed", st.name).into());
            }
            WMsg::Panic => {
                st.log.push(format!("crash:{}", st.name));
                panic!("{} panicked", st.name);
            }
            WMsg::Exit(r) => {
                st.log.push(format!("exit:{}", st.name));
                myself.stop(r);
            }
            WMsg::Block(d) => tokio::time::sleep(d).await,
            WMsg::Ping(r) => {
                let _ = r.send(());
            }
        }
        Ok(())
    }
}

/// A worker child spec whose start logs `start:<id>`.
pub fn worker(id: &str, log: &Log) -> ChildSpecBuilder {
    worker_with(id, log, None)
}

/// A worker child spec whose `post_stop` takes `stop_delay`.
pub fn worker_with(id: &str, log: &Log, stop_delay: Option<Duration>) -> ChildSpecBuilder {
    let log = log.clone();
    let name = id.to_string();
    ChildSpec::builder(id).start(move |args| {
        let (log, name) = (log.clone(), name.clone());
        async move {
            log.push(format!("start:{name}"));
            args.spawn_linked(
                None,
                Worker,
                WorkerArgs {
                    name,
                    log,
                    stop_delay,
                },
            )
            .await
        }
    })
}

pub fn typed(id: &str, log: &Log, r: RestartType) -> ChildSpec {
    worker(id, log).restart(r).build().unwrap()
}

/// A spec whose start always fails (logs `fail:<id>`).
pub fn failing(id: &str, log: &Log) -> ChildSpecBuilder {
    let log = log.clone();
    let name = id.to_string();
    ChildSpec::builder(id).start(move |_args| {
        let (log, name) = (log.clone(), name.clone());
        async move {
            log.push(format!("fail:{name}"));
            Err(StartError::new(format!("{name} cannot start")))
        }
    })
}

/// Polls `cond` (yielding to tokio, advancing a paused clock by 1 ms per round) until true.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..5_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting for: {what}");
}

pub fn cell_of(children: &[ChildInfo], id: &str) -> ActorCell {
    children
        .iter()
        .find(|c| c.id.as_str() == id)
        .and_then(|c| c.cell.clone())
        .unwrap_or_else(|| panic!("child {id} not running"))
}

pub async fn child(sup: &SupervisorRef, id: &str) -> ActorCell {
    cell_of(&sup.which_children().await.unwrap(), id)
}

pub fn send(cell: &ActorCell, msg: WMsg) {
    cell.send_message(msg).expect("send to worker");
}

pub fn status_name(s: &ChildStatus) -> &'static str {
    match s {
        ChildStatus::Running => "running",
        ChildStatus::Restarting => "restarting",
        ChildStatus::NotRunning => "not_running",
        _ => "other",
    }
}

pub fn is_stopped(cell: &ActorCell) -> bool {
    cell.get_status() == ractor::ActorStatus::Stopped
}

/// Events captured from `tracing`: one map of field name to value per event.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

impl Captured {
    pub fn events(&self) -> Vec<BTreeMap<String, String>> {
        self.0.lock().unwrap().clone()
    }
    pub fn with_context(&self, ctx: &str) -> Vec<BTreeMap<String, String>> {
        self.events()
            .into_iter()
            .filter(|e| e.get("context").map(String::as_str) == Some(ctx))
            .collect()
    }
}

struct Visitor<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            format!("{value:?}").trim_matches('"').to_string(),
        );
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

pub struct CaptureLayer(pub Captured);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CaptureLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if event.metadata().target() != supervision::report::TARGET {
            return;
        }
        let mut fields = BTreeMap::new();
        event.record(&mut Visitor(&mut fields));
        self.0.0.lock().unwrap().push(fields);
    }
}

/// Installs a capturing subscriber for the current thread (current-thread tokio tests).
pub fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    use tracing_subscriber::layer::SubscriberExt;
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(CaptureLayer(captured.clone()));
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, guard)
}

/// An actor that only records the exits of the actors linked to it (`exit:<reason>`).
pub struct Probe;

impl Actor for Probe {
    type Msg = ();
    type State = Log;
    type Arguments = Log;

    async fn pre_start(&self, _: ActorRef<()>, log: Log) -> Result<Log, ActorProcessingErr> {
        Ok(log)
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<()>,
        event: ractor::SupervisionEvent,
        log: &mut Log,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(r) = supervision::ExitReason::from_event(&event) {
            log.push(format!("exit:{}", r.reason));
        }
        Ok(())
    }
}

pub async fn probe(log: &Log) -> ActorCell {
    let (p, _) = Actor::spawn(None, Probe, log.clone()).await.unwrap();
    p.get_cell()
}

//! [`ClaudeSupervisor`]: named Claude Code sessions in an OTP supervision tree.
//!
//! One root [`supervision::Supervisor`] holds every session as a child: the static sessions
//! given to the builder (started in order) and the dynamic ones started at run time. The
//! strategy and restart intensity (default: one_for_one, 3 restarts in 5 s) apply to all of
//! them; too many restarts melt the tree down, and every waiting caller hears of it.
//!
//! What outlives a session's instances lives in its slot: the [`SessionLedger`] (latest session
//! id and cost totals), its state, and its last process group. Restarting a session — after a
//! crash, on [`ClaudeSupervisor::restart_session`], or waking it from hibernation — starts a new
//! CLI with `--resume=<latest id>`, but only after the previous process group is confirmed gone,
//! and only if no other session holds the lease on that conversation.

mod error;
mod handle;
mod health;
mod slot;
mod spec;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use claude_protocol::ClaudeOptions;
use claude_session::{
    Launcher, Session, SessionConfig, SessionEventKind, SessionLedger, StartOptions,
};
use dashmap::DashMap;
use serde::Serialize;
use supervision::{
    ChildSpec, Registry, Shutdown, StartArgs, StartError, StartOutcome, Strategy, SupervisorFlags,
    SupervisorRef,
};
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::time::Instant;

pub use error::SupervisorError;
pub use handle::SessionHandle;
pub use health::{SessionInfo, SessionReport, TreeHealth};
pub use slot::SessionState;
pub use spec::SessionSpec;

use crate::store::{MemoryStore, SessionRecord, SessionStore, now_ms};
use slot::{Slot, SlotState};

/// Something that happened in the tree.
#[derive(Clone, Debug, Serialize)]
pub struct SupervisorEvent {
    /// The session it is about (none for tree-wide events).
    pub session: Option<String>,
    /// What happened.
    pub kind: SupervisorEventKind,
}

/// The kinds of [`SupervisorEvent`].
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SupervisorEventKind {
    /// A lifecycle event of one session (turns, frames skipped, process exits, …).
    Session(SessionEventKind),
    /// An instance of the session started (`generation` counts its starts).
    Started {
        /// 1 for the first start, +1 for each restart or wake-up.
        generation: u64,
        /// Whether it resumed an earlier conversation.
        resumed: bool,
    },
    /// An instance failed to start.
    StartFailed {
        /// Why.
        error: String,
    },
    /// The session's CLI died; it is being restarted.
    Restarting,
    /// The session was hibernated after its idle timeout.
    Hibernated,
    /// The session was terminated.
    Terminated,
    /// The tree melted down (too many restarts) or otherwise exited on its own.
    Meltdown {
        /// Why.
        reason: String,
    },
}

/// Everything the start functions and handles share. The root supervisor is set once started.
pub(crate) struct Shared {
    name: String,
    root: OnceLock<SupervisorRef>,
    slots: DashMap<String, Arc<Slot>>,
    registry: Registry,
    store: Arc<dyn SessionStore>,
    /// Conversation id → the session holding it.
    leases: DashMap<String, String>,
    max_sessions: Option<(usize, Arc<Semaphore>)>,
    max_per_group: Option<usize>,
    groups: DashMap<String, Arc<Semaphore>>,
    events: broadcast::Sender<SupervisorEvent>,
    cli: PathBuf,
    launcher: Option<Arc<dyn Launcher>>,
    restart_wait: Duration,
    config_dir_root: Option<PathBuf>,
    shutting_down: AtomicBool,
    down: watch::Sender<Option<String>>,
}

impl Shared {
    fn emit(&self, session: Option<&str>, kind: SupervisorEventKind) {
        let _ = self.events.send(SupervisorEvent {
            session: session.map(str::to_owned),
            kind,
        });
    }

    fn root(&self) -> Result<&SupervisorRef, SupervisorError> {
        self.root.get().ok_or_else(|| SupervisorError::Tree {
            supervisor: self.name.clone(),
            detail: "the tree is still starting".into(),
        })
    }

    fn acquire_lease(&self, session_id: &str, name: &str) -> Result<(), SupervisorError> {
        let holder = self
            .leases
            .entry(session_id.to_owned())
            .or_insert_with(|| name.to_owned());
        if holder.value() == name {
            Ok(())
        } else {
            Err(SupervisorError::Leased {
                name: name.to_owned(),
                session_id: session_id.to_owned(),
                holder: holder.value().clone(),
            })
        }
    }

    fn release_leases_of(&self, name: &str) {
        self.leases.retain(|_, holder| holder != name);
    }

    async fn save(&self, slot: &Slot) {
        let _guard = slot.saving.lock().await;
        let record = SessionRecord {
            name: slot.name().to_owned(),
            session_id: slot.ledger.session_id(),
            options_fingerprint: fingerprint(&slot.spec.options),
            cwd: slot.spec.options.cwd.clone(),
            totals: slot.ledger.totals(),
            created_at_ms: slot.created_at_ms,
            updated_at_ms: now_ms(),
        };
        if let Err(e) = self.store.save(&record).await {
            tracing::error!(session = slot.name(), error = %e, "could not save the session record");
        }
    }

    /// Builds a slot for `spec`, restoring its ledger from the store and taking its admission
    /// permits (atomically: no check-then-act).
    async fn new_slot(&self, spec: SessionSpec) -> Result<Arc<Slot>, SupervisorError> {
        let name = spec.name.clone();
        let mut permits = Vec::new();
        if let Some((limit, sem)) = &self.max_sessions {
            permits.push(sem.clone().try_acquire_owned().map_err(|_| {
                SupervisorError::TooManySessions {
                    name: name.clone(),
                    limit: *limit,
                }
            })?);
        }
        if let (Some(limit), Some(group)) = (self.max_per_group, &spec.group) {
            let sem = self
                .groups
                .entry(group.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(limit)))
                .clone();
            permits.push(
                sem.try_acquire_owned()
                    .map_err(|_| SupervisorError::GroupFull {
                        name: name.clone(),
                        group: group.clone(),
                        limit,
                    })?,
            );
        }
        let record = self.store.load(&name).await?;
        if let Some(r) = &record
            && r.options_fingerprint != fingerprint(&spec.options)
        {
            tracing::info!(session = %name, "options changed since the conversation was saved; resuming it anyway");
        }
        let ledger = match &record {
            Some(r) => SessionLedger::restore(r.session_id.clone(), r.totals),
            None => SessionLedger::new(),
        };
        let (state, _) = watch::channel(SlotState::Starting);
        Ok(Arc::new(Slot {
            spec,
            ledger,
            state,
            last_pgid: Mutex::new(None),
            last_activity: Mutex::new(Instant::now()),
            last_error: Mutex::new(None),
            created_at_ms: record.map_or_else(now_ms, |r| r.created_at_ms),
            wake: tokio::sync::Mutex::new(()),
            saving: tokio::sync::Mutex::new(()),
            admission: Mutex::new(permits),
        }))
    }
}

/// A stable, build-independent fingerprint of options (FNV-1a over their debug form, without the
/// resume-related fields a restart changes).
fn fingerprint(options: &ClaudeOptions) -> String {
    let mut o = options.clone();
    o.resume = None;
    o.continue_conversation = false;
    o.fork_session = false;
    o.session_id = None;
    o.resume_session_at = None;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{o:?}").bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn child_spec(shared: &Arc<Shared>, slot: &Arc<Slot>) -> Result<ChildSpec, SupervisorError> {
    let (weak, slot_for_start) = (Arc::downgrade(shared), slot.clone());
    ChildSpec::builder(slot.name())
        .restart(slot.spec.restart)
        // Enough for the session's own recipe (interrupt, stdin grace, SIGTERM grace); past it
        // the actor is killed and dropping its state SIGKILLs the process group.
        .shutdown(Shutdown::Timeout(Duration::from_secs(30)))
        .start(move |args: StartArgs| {
            let (weak, slot) = (weak.clone(), slot_for_start.clone());
            async move {
                let shared = weak
                    .upgrade()
                    .ok_or_else(|| StartError::new("the supervisor is gone"))?;
                start_instance(shared, slot, args).await
            }
        })
        .build()
        .map_err(|e| SupervisorError::Tree {
            supervisor: shared.name.clone(),
            detail: e.to_string(),
        })
}

/// Waits until the process group of a previous instance is gone: a conversation is never resumed
/// while an earlier process on it may still be alive.
async fn confirm_dead(name: &str, pgid: Option<i32>) -> Result<(), StartError> {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let Some(pgid) = pgid else { return Ok(()) };
    for attempt in 0..200 {
        match killpg(Pid::from_raw(pgid), None) {
            Err(nix::errno::Errno::ESRCH) => return Ok(()),
            _ if attempt == 100 => {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(StartError::new(format!(
        "session `{name}`: the previous CLI process group {pgid} is still alive"
    )))
}

async fn start_instance(
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    args: StartArgs,
) -> Result<StartOutcome, StartError> {
    let name = slot.name().to_owned();
    let previous = slot.state.send_replace(SlotState::Starting);
    if matches!(previous, SlotState::Running(_)) {
        shared.emit(Some(&name), SupervisorEventKind::Restarting);
    }
    let old_pgid = slot
        .last_pgid
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    confirm_dead(&name, old_pgid).await?;

    let resume = slot.ledger.session_id();
    if let Some(id) = &resume {
        if let Err(leased) = shared.acquire_lease(id, &name) {
            let start_error = StartError::new(leased.to_string());
            slot.set_start_error(leased);
            return Err(start_error);
        }
    }
    let mut options = slot.spec.options.clone();
    if let Some(id) = &resume {
        options = options.resuming(id.clone());
    }
    if let Some(root) = &shared.config_dir_root {
        let dir = root.join(crate::store::encode_name(&name));
        std::fs::create_dir_all(&dir).map_err(StartError::from_error)?;
        options = options
            .to_builder()
            .env("CLAUDE_CONFIG_DIR", dir.into_os_string())
            .build()
            .map_err(StartError::from_error)?;
    }
    let mut builder = SessionConfig::builder(name.clone(), shared.cli.clone())
        .options(options)
        .ledger(slot.ledger.clone());
    if let Some(launcher) = &shared.launcher {
        builder = builder.launcher_arc(launcher.clone());
    }
    if let Some(configure) = &slot.spec.configure {
        builder = configure(builder);
    }
    let config = builder.build().map_err(StartError::from_error)?;
    let mut start = StartOptions::default();
    start.supervisor = Some(args.supervisor().clone());
    let session = match Session::start_with(config, start).await {
        Ok(session) => session,
        Err(error) => {
            shared.emit(
                Some(&name),
                SupervisorEventKind::StartFailed {
                    error: error.to_string(),
                },
            );
            let start_error = StartError::new(error.to_string());
            slot.set_start_error(SupervisorError::Start {
                name: name.clone(),
                source: error,
            });
            return Err(start_error);
        }
    };
    let pid = session.health().await.ok().and_then(|h| h.pid);
    *slot.last_pgid.lock().unwrap_or_else(|p| p.into_inner()) = pid.map(|p| p as i32);
    if let Err(e) = shared.registry.register(name.clone(), session.actor()) {
        tracing::warn!(session = %name, error = %e, "could not register the session's name");
    }
    tokio::spawn(forward_events(
        Arc::downgrade(&shared),
        Arc::downgrade(&slot),
        session.clone(),
    ));
    slot.touch();
    slot.state.send_replace(SlotState::Running(session.clone()));
    shared.emit(
        Some(&name),
        SupervisorEventKind::Started {
            generation: args.generation(),
            resumed: resume.is_some(),
        },
    );
    shared.save(&slot).await;
    tracing::info!(session = %name, generation = args.generation(), resumed = resume.is_some(), "session started");
    Ok(StartOutcome::Started(session.actor()))
}

/// Relays one instance's events to the tree's channel, keeps the lease on its conversation, and
/// saves the record when the session id changes or a turn ends.
async fn forward_events(shared: Weak<Shared>, slot: Weak<Slot>, session: Session) {
    let mut events = session.events();
    let actor = session.actor();
    let name = session.name().to_owned();
    drop(session);
    let exited = actor.wait(None);
    tokio::pin!(exited);
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = &mut exited => break,
        };
        let event = match event {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => break,
        };
        let (Some(shared), Some(slot)) = (shared.upgrade(), slot.upgrade()) else {
            break;
        };
        match &event.kind {
            SessionEventKind::SessionIdChanged { session_id } => {
                shared.release_leases_of(&name);
                if let Err(e) = shared.acquire_lease(session_id, &name) {
                    tracing::warn!(error = %e, "conversation lease conflict");
                }
                shared.save(&slot).await;
            }
            SessionEventKind::TurnFinished { .. } => {
                slot.touch();
                shared.save(&slot).await;
            }
            _ => {}
        }
        shared.emit(Some(&name), SupervisorEventKind::Session(event.kind));
    }
}

/// Stops a session's CLI after its idle timeout; its handle stays valid.
async fn watch_idle(shared: Weak<Shared>, slot: Weak<Slot>, idle: Duration) {
    let period = (idle / 4).clamp(Duration::from_millis(20), Duration::from_secs(5));
    loop {
        tokio::time::sleep(period).await;
        let (Some(shared), Some(slot)) = (shared.upgrade(), slot.upgrade()) else {
            return;
        };
        if matches!(*slot.state.borrow(), SlotState::Gone(_)) {
            return;
        }
        if slot.idle_for() < idle {
            continue;
        }
        let Some(session) = slot.current() else {
            continue;
        };
        let Ok(health) = session.health().await else {
            continue;
        };
        if health.status != claude_session::SessionStatus::Ready || health.queue_len > 0 {
            continue;
        }
        let _wake = slot.wake.lock().await;
        if slot.idle_for() < idle || slot.current().is_none() {
            continue;
        }
        // The replaced state holds the instance's last handle: keep it until the supervisor has
        // stopped the child, or dropping it would stop the actor behind the supervisor's back
        // (an exit it did not cause, hence a restart).
        let _instance = slot.state.send_replace(SlotState::Hibernated);
        if let Ok(root) = shared.root() {
            if let Err(e) = root.terminate_child(slot.name()).await {
                tracing::warn!(session = slot.name(), error = %e, "could not hibernate");
                continue;
            }
        }
        tracing::info!(
            session = slot.name(),
            "hibernated after {}",
            humantime::format_duration(idle)
        );
        shared.emit(Some(slot.name()), SupervisorEventKind::Hibernated);
    }
}

/// Builds a [`ClaudeSupervisor`].
#[must_use]
pub struct ClaudeSupervisorBuilder {
    name: String,
    cli: Option<PathBuf>,
    sessions: Vec<SessionSpec>,
    strategy: Strategy,
    intensity: u32,
    period: Duration,
    store: Arc<dyn SessionStore>,
    max_sessions: Option<usize>,
    max_per_group: Option<usize>,
    launcher: Option<Arc<dyn Launcher>>,
    restart_wait: Duration,
    config_dir_root: Option<PathBuf>,
}

impl std::fmt::Debug for ClaudeSupervisorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaudeSupervisorBuilder")
            .field("name", &self.name)
            .field("sessions", &self.sessions)
            .field("strategy", &self.strategy)
            .field("intensity", &self.intensity)
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl ClaudeSupervisorBuilder {
    /// The tree's name, used in errors and traces (default `claude`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The CLI to run (default: found by [`claude_protocol::find_cli`]).
    pub fn cli_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.cli = Some(path.into());
        self
    }

    /// A static session, started with the tree, in the order added.
    pub fn session(mut self, spec: SessionSpec) -> Self {
        self.sessions.push(spec);
        self
    }

    /// The restart strategy (default one_for_one).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// At most `intensity` restarts within `period` (default 3 in 5 s, as the Elixir library);
    /// one more melts the tree down.
    pub fn intensity(mut self, intensity: u32, period: Duration) -> Self {
        self.intensity = intensity;
        self.period = period;
        self
    }

    /// Where sessions' records live (default: in memory). With a [`FileStore`](crate::FileStore),
    /// named sessions resume their conversations after the program restarts.
    pub fn store(mut self, store: impl SessionStore) -> Self {
        self.store = Arc::new(store);
        self
    }

    /// At most `n` sessions at once (static, dynamic and hibernated ones count).
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = Some(n);
        self
    }

    /// At most `n` sessions per group (see [`SessionSpec::group`]).
    pub fn max_sessions_per_group(mut self, n: usize) -> Self {
        self.max_per_group = Some(n);
        self
    }

    /// Where the CLIs run (default: locally).
    pub fn launcher(mut self, launcher: impl Launcher) -> Self {
        self.launcher = Some(Arc::new(launcher));
        self
    }

    /// How long a query waits for a restarting session to come back (default 30 s).
    pub fn restart_wait(mut self, wait: Duration) -> Self {
        self.restart_wait = wait;
        self
    }

    /// Gives each session its own Claude config dir, `<root>/<name>` (isolation of several agents
    /// in one container).
    pub fn config_dir_per_session(mut self, root: impl Into<PathBuf>) -> Self {
        self.config_dir_root = Some(root.into());
        self
    }

    /// Starts the tree: every static session, in order; returns once all have started.
    ///
    /// # Errors
    ///
    /// [`SupervisorError`]: invalid flags, a CLI that cannot be found, a static session that
    /// fails to start (the ones before it are stopped again, in reverse order), the store.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future mid-start may leave started sessions running until
    /// the tree's actor is dropped.
    pub async fn start(self) -> Result<ClaudeSupervisor, SupervisorError> {
        let tree = |detail: String| SupervisorError::Tree {
            supervisor: self.name.clone(),
            detail,
        };
        let cli = match self.cli.clone() {
            Some(cli) => cli,
            None => claude_protocol::find_cli(None).map_err(|e| tree(e.to_string()))?,
        };
        let flags = SupervisorFlags::builder()
            .strategy(self.strategy)
            .intensity(self.intensity)
            .period(self.period)
            .build()
            .map_err(|e| tree(e.to_string()))?;
        let (events, _) = broadcast::channel(4096);
        let (down, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            name: self.name.clone(),
            root: OnceLock::new(),
            slots: DashMap::new(),
            registry: Registry::new(),
            store: self.store,
            leases: DashMap::new(),
            max_sessions: self.max_sessions.map(|n| (n, Arc::new(Semaphore::new(n)))),
            max_per_group: self.max_per_group,
            groups: DashMap::new(),
            events,
            cli,
            launcher: self.launcher,
            restart_wait: self.restart_wait,
            config_dir_root: self.config_dir_root,
            shutting_down: AtomicBool::new(false),
            down,
        });
        let mut specs = Vec::new();
        for spec in self.sessions {
            let name = spec.name.clone();
            let slot = shared.new_slot(spec).await?;
            if shared.slots.insert(name.clone(), slot.clone()).is_some() {
                return Err(SupervisorError::AlreadyExists { name });
            }
            specs.push(child_spec(&shared, &slot)?);
        }
        let root = match supervision::Supervisor::start(None, flags, specs).await {
            Ok(root) => root,
            Err(e) => {
                // The session that failed left its error in its slot.
                let failed = shared.slots.iter().find_map(|s| s.take_start_error());
                return Err(match failed {
                    Some(error) => error,
                    None => tree(e.to_string()),
                });
            }
        };
        let _ = shared.root.set(root.clone());
        for slot in shared.slots.iter() {
            spawn_idle_watch(&shared, slot.value());
        }
        tokio::spawn(watch_root(Arc::downgrade(&shared), root.clone()));
        Ok(ClaudeSupervisor {
            inner: Arc::new(Inner { shared, root }),
        })
    }
}

fn spawn_idle_watch(shared: &Arc<Shared>, slot: &Arc<Slot>) {
    if let Some(idle) = slot.spec.idle_timeout {
        tokio::spawn(watch_idle(
            Arc::downgrade(shared),
            Arc::downgrade(slot),
            idle,
        ));
    }
}

/// When the root exits on its own (a meltdown), every session is gone and every waiting
/// caller is told why.
async fn watch_root(shared: Weak<Shared>, root: SupervisorRef) {
    root.wait().await;
    let Some(shared) = shared.upgrade() else {
        return;
    };
    let reason = if shared.shutting_down.load(Ordering::SeqCst) {
        "the supervisor was shut down".to_owned()
    } else {
        "the supervisor melted down: reached max restart intensity".to_owned()
    };
    if !shared.shutting_down.load(Ordering::SeqCst) {
        tracing::error!(supervisor = %shared.name, %reason, "supervision tree exited");
        shared.emit(
            None,
            SupervisorEventKind::Meltdown {
                reason: reason.clone(),
            },
        );
    }
    for slot in shared.slots.iter() {
        slot.state.send_replace(SlotState::Gone(reason.clone()));
    }
    let _ = shared.down.send(Some(reason));
}

struct Inner {
    shared: Arc<Shared>,
    root: SupervisorRef,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle to the tree is gone: stop it (children in reverse start order, each
        // by the session's shutdown recipe).
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        self.root.cell().stop(Some("supervisor dropped".into()));
    }
}

/// A running tree of named Claude Code sessions. Cheap to clone; dropping the last clone stops
/// the tree.
///
/// # Examples
///
/// ```no_run
/// use claude_supervisor::{ClaudeSupervisor, FileStore, SessionSpec};
/// use claude_supervisor::protocol::ClaudeOptions;
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let tree = ClaudeSupervisor::builder()
///     .store(FileStore::open("/var/lib/agents")?)
///     .session(SessionSpec::new("reviewer", ClaudeOptions::builder().model("sonnet").build()?))
///     .start()
///     .await?;
/// let reviewer = tree.session("reviewer").expect("started with the tree");
/// let review = reviewer.ask("Review this diff: ...").await?;
/// println!("{}", review.text());
/// tree.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClaudeSupervisor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ClaudeSupervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaudeSupervisor")
            .field("name", &self.inner.shared.name)
            .finish_non_exhaustive()
    }
}

impl ClaudeSupervisor {
    /// A builder with the defaults: one_for_one, 3 restarts in 5 s, an in-memory store.
    pub fn builder() -> ClaudeSupervisorBuilder {
        ClaudeSupervisorBuilder {
            name: "claude".into(),
            cli: None,
            sessions: Vec::new(),
            strategy: Strategy::OneForOne,
            intensity: 3,
            period: Duration::from_secs(5),
            store: Arc::new(MemoryStore::new()),
            max_sessions: None,
            max_per_group: None,
            launcher: None,
            restart_wait: Duration::from_secs(30),
            config_dir_root: None,
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// Starts a session at run time and returns its handle.
    ///
    /// If the store has a record of this name, the session resumes that conversation.
    ///
    /// # Errors
    ///
    /// [`SupervisorError::AlreadyExists`], an admission limit ([`SupervisorError::TooManySessions`],
    /// [`SupervisorError::GroupFull`]), [`SupervisorError::Start`] with the session's error, the
    /// store's error. A failed start keeps nothing.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future while the CLI starts may leave the session started.
    pub async fn start_session(&self, spec: SessionSpec) -> Result<SessionHandle, SupervisorError> {
        let shared = self.shared();
        let name = spec.name.clone();
        if shared.slots.contains_key(&name) {
            return Err(SupervisorError::AlreadyExists { name });
        }
        let slot = shared.new_slot(spec).await?;
        match shared.slots.entry(name.clone()) {
            dashmap::Entry::Occupied(_) => return Err(SupervisorError::AlreadyExists { name }),
            dashmap::Entry::Vacant(v) => {
                v.insert(slot.clone());
            }
        }
        let spec = child_spec(shared, &slot)?;
        if let Err(e) = self.inner.root.start_child(spec).await {
            shared.slots.remove(&name);
            return Err(match slot.take_start_error() {
                Some(error) => error,
                None => SupervisorError::Tree {
                    supervisor: shared.name.clone(),
                    detail: e.to_string(),
                },
            });
        }
        spawn_idle_watch(shared, &slot);
        Ok(SessionHandle::new(shared.clone(), slot))
    }

    /// Stops a session for good (by its shutdown recipe) and forgets it. Its record stays in the
    /// store, so starting the same name later resumes its conversation.
    ///
    /// # Errors
    ///
    /// [`SupervisorError::NotFound`]; the tree's error.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future may leave the session half removed.
    pub async fn terminate_session(&self, name: &str) -> Result<(), SupervisorError> {
        let shared = self.shared();
        let (_, slot) = shared
            .slots
            .remove(name)
            .ok_or_else(|| SupervisorError::NotFound { name: name.into() })?;
        let _wake = slot.wake.lock().await;
        // Held until the supervisor has stopped the child (see `watch_idle`).
        let _instance = slot
            .state
            .send_replace(SlotState::Gone("terminated".into()));
        let tree = |e: supervision::ChildError| SupervisorError::Tree {
            supervisor: shared.name.clone(),
            detail: e.to_string(),
        };
        match self.inner.root.terminate_child(name).await {
            Ok(()) | Err(supervision::ChildError::NotFound { .. }) => {}
            Err(e) => return Err(tree(e)),
        }
        match self.inner.root.delete_child(name).await {
            Ok(()) | Err(supervision::ChildError::NotFound { .. }) => {}
            Err(e) => return Err(tree(e)),
        }
        let pgid = slot
            .last_pgid
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let _ = confirm_dead(name, pgid).await;
        shared.release_leases_of(name);
        slot.admission
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        shared.emit(Some(name), SupervisorEventKind::Terminated);
        Ok(())
    }

    /// Restarts a session — running, hibernated or restarting — in a new CLI process that
    /// resumes its conversation.
    ///
    /// # Errors
    ///
    /// [`SupervisorError::NotFound`]; the start's error.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe.
    pub async fn restart_session(&self, name: &str) -> Result<SessionHandle, SupervisorError> {
        let shared = self.shared();
        let slot = shared
            .slots
            .get(name)
            .map(|s| s.clone())
            .ok_or_else(|| SupervisorError::NotFound { name: name.into() })?;
        let handle = SessionHandle::new(shared.clone(), slot.clone());
        {
            let _wake = slot.wake.lock().await;
            if !matches!(*slot.state.borrow(), SlotState::Hibernated) {
                // Held until the supervisor has stopped the child (see `watch_idle`).
                let _instance = slot.state.send_replace(SlotState::Hibernated);
                match self.inner.root.terminate_child(name).await {
                    Ok(()) | Err(supervision::ChildError::NotFound { .. }) => {}
                    Err(e) => {
                        return Err(SupervisorError::Tree {
                            supervisor: shared.name.clone(),
                            detail: e.to_string(),
                        });
                    }
                }
            }
        }
        handle.wake().await?;
        Ok(handle)
    }

    /// The handle of a session, if one of this name exists. The handle stays valid across
    /// restarts and hibernation.
    pub fn session(&self, name: &str) -> Option<SessionHandle> {
        let shared = self.shared();
        shared
            .slots
            .get(name)
            .map(|slot| SessionHandle::new(shared.clone(), slot.clone()))
    }

    /// A point-in-time list of the sessions, in name order.
    pub fn list_sessions(&self) -> Vec<SessionInfo> {
        let shared = self.shared();
        let mut list: Vec<SessionInfo> = shared
            .slots
            .iter()
            .map(|slot| SessionInfo {
                name: slot.key().clone(),
                state: slot.reported_state(),
                group: slot.spec.group.clone(),
                session_id: slot.ledger.session_id(),
                generation: shared.registry.lookup(slot.key()).map(|r| r.generation),
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// The registry of live session actors (name → actor, with generations and events).
    pub fn registry(&self) -> &Registry {
        &self.shared().registry
    }

    /// Subscribes to the tree's events: every session's lifecycle events, starts, restarts,
    /// hibernations, terminations and meltdowns.
    pub fn events(&self) -> broadcast::Receiver<SupervisorEvent> {
        self.shared().events.subscribe()
    }

    /// A health report of the whole tree.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn health(&self) -> TreeHealth {
        health::collect(self.shared(), &self.inner.root).await
    }

    /// A one-turn connectivity check: runs `prompt` in a throw-away session with the options of
    /// `name` (no resume, nothing persisted), and returns how long the turn took.
    ///
    /// # Errors
    ///
    /// [`SupervisorError::NotFound`]; the throw-away session's error.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops the throw-away session (see [`claude_session::query`]).
    pub async fn ping(&self, name: &str) -> Result<Duration, SupervisorError> {
        let shared = self.shared();
        let spec = shared
            .slots
            .get(name)
            .map(|s| s.spec.clone())
            .ok_or_else(|| SupervisorError::NotFound { name: name.into() })?;
        let mut options = spec.options.to_builder();
        options = options.no_session_persistence(true);
        let mut o = options.build().map_err(|e| SupervisorError::Tree {
            supervisor: shared.name.clone(),
            detail: e.to_string(),
        })?;
        o.resume = None;
        o.continue_conversation = false;
        o.session_id = None;
        let mut builder =
            SessionConfig::builder(format!("{name}/ping"), shared.cli.clone()).options(o);
        if let Some(launcher) = &shared.launcher {
            builder = builder.launcher_arc(launcher.clone());
        }
        let config = builder.build().map_err(|e| SupervisorError::Tree {
            supervisor: shared.name.clone(),
            detail: e.to_string(),
        })?;
        let started = Instant::now();
        let out = claude_session::query("ping", config).await?;
        if out.is_error() {
            return Err(SupervisorError::Unavailable {
                name: name.into(),
                reason: format!("the ping turn failed: {}", out.result.errors().join("; ")),
            });
        }
        Ok(started.elapsed())
    }

    /// Stops the tree: every session in reverse start order, each by its shutdown recipe; returns
    /// when every CLI process has exited and been reaped.
    ///
    /// # Cancel safety
    ///
    /// The shutdown is requested when called and completes even if the future is dropped.
    pub async fn shutdown(&self) {
        let shared = self.shared();
        shared.shutting_down.store(true, Ordering::SeqCst);
        self.inner.root.stop().await;
        let pgids: Vec<(String, Option<i32>)> = shared
            .slots
            .iter()
            .map(|s| {
                (
                    s.key().clone(),
                    s.last_pgid.lock().unwrap_or_else(|p| p.into_inner()).take(),
                )
            })
            .collect();
        for (name, pgid) in pgids {
            let _ = confirm_dead(&name, pgid).await;
        }
    }

    /// Resolves once the tree has exited, with the reason (shut down, or melted down).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn wait(&self) -> String {
        let mut down = self.shared().down.subscribe();
        match down.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => "the supervisor is gone".into(),
        }
    }
}

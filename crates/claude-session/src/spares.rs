//! Warm spares: CLI processes started ahead of need with the CLI's `--await-claim`, parked in a
//! neutral directory, and bound to a new session with a `claim_session` control request, so
//! that the session skips the CLI's start-up (what the CLI does is measured in
//! `docs/warm-spares.md`).
//!
//! A spare can serve a session only when everything the CLI fixes at spawn is the same for
//! both: the program, the arguments, the environment, the launcher, the containment, the memory
//! limit and the egress policy (the pool's spawn key). What a claim sets — the working
//! directory, additional directories, permission mode, system prompt and appended prompt, the
//! in-process MCP server names — may differ. Anything else makes the session start cold, and its
//! health says why.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use claude_protocol::{ClaudeOptions, SystemPrompt};
use futures::FutureExt;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;

use crate::config::SessionConfig;
use crate::error::SessionError;
use crate::framing::{Framed, LineReader};
use crate::launcher::{GroupSignal, LAUNCH_ID_ENV, LaunchedProcess, SESSION_ENV};

/// The most spares one pool keeps (each is a live CLI: ≈ 160 MB resident for the real one).
pub const MAX_SPARES: usize = 64;

/// The wait after a failed spare launch, doubled on each failure in a row up to the maximum.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How long a stopping spare gets after its stdin is closed, and then after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The spill directory's stand-in in a [`SpawnKey`]: payloads spilled to files compare by name
/// (a content hash) and contents, whichever directory each process's files are in.
const SPILL_PLACEHOLDER: &str = "/spill";

type ExitState = Option<Result<ExitStatus, String>>;

/// A CLI's stdout, split into lines.
pub(crate) type Lines = LineReader<std::pin::Pin<Box<dyn AsyncRead + Send>>>;

/// A pool of warm spare CLI processes for sessions that share spawn-time options.
///
/// Built from a template [`SessionConfig`]: each spare is that configuration's CLI started with
/// `--await-claim` in a neutral directory of the pool's, the template's claimable options left
/// out. The pool keeps [`size`](SparePoolBuilder::size) spares parked, starting a new one in the
/// background whenever one is claimed or dies (with a backoff while launches fail). Give the
/// pool to sessions with [`SessionConfigBuilder::spares`](crate::SessionConfigBuilder::spares):
/// a session whose spawn-time options match takes a parked spare and claims it; any other
/// starts cold, and [`HealthSnapshot::start`](crate::HealthSnapshot::start) says why. A claimed
/// process belongs to its session from then on (its containment, its shutdown recipe); the pool
/// never hands one spare to two sessions.
///
/// Spares run in the template's containment, with its memory limit and egress policy, and are
/// stopped by [`shutdown`](Self::shutdown), or SIGKILLed when the last handle (the pool's own
/// and the sessions' configurations) is dropped. A conversation cannot be resumed onto a spare
/// (the CLI has no such claim), so a session that resumes always starts cold.
///
/// Cheap to clone: clones share the pool.
///
/// # Examples
///
/// ```no_run
/// use claude_session::{Session, SessionConfig, SparePool};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let cli = claude_protocol::find_cli(None)?;
/// let pool = SparePool::builder(SessionConfig::builder("spares", &cli).build()?)
///     .size(2)
///     .build()?;
/// let options = claude_protocol::ClaudeOptions::builder().cwd("/srv/project").build()?;
/// let config = SessionConfig::builder("reviewer", &cli)
///     .options(options)
///     .spares(pool.clone())
///     .build()?;
/// let session = Session::start(config).await?;
/// assert!(session.health().await?.start.is_warm() || pool.stats().parked == 0);
/// pool.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SparePool {
    inner: Arc<Pool>,
}

impl std::fmt::Debug for SparePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SparePool")
            .field("name", &self.inner.name)
            .field("size", &self.inner.size)
            .finish_non_exhaustive()
    }
}

/// A spare pool's options are invalid, or its directory could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SparePoolError {
    /// An option is out of range, or the template cannot be started as a spare.
    #[error("spare pool `{pool}`: invalid `{option}`: {reason}")]
    Invalid {
        /// The pool (the template's name).
        pool: String,
        /// The option.
        option: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The directory the spares park in could not be created.
    #[error("spare pool `{pool}`: could not create its directory {}: {source}", path.display())]
    Io {
        /// The pool.
        pool: String,
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// What a pool has done so far, and holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SpareStats {
    /// The spares the pool keeps.
    pub size: usize,
    /// Spares parked now, ready for a claim.
    pub parked: usize,
    /// Spares being launched now.
    pub launching: usize,
    /// Spares launched in all.
    pub launched: u64,
    /// Spares handed to a session.
    pub claimed: u64,
    /// Parked spares that exited on their own (replaced, never handed out).
    pub died: u64,
    /// Spare launches that failed.
    pub launch_failures: u64,
    /// Sessions that found no spare parked and started cold.
    pub misses: u64,
}

/// Builds a [`SparePool`]; see [`SparePool::builder`].
#[derive(Debug)]
#[must_use]
pub struct SparePoolBuilder {
    template: SessionConfig,
    size: usize,
    dir: Option<PathBuf>,
    hooks: Hooks,
    places: Option<Arc<Semaphore>>,
}

/// A value of an environment variable made for each spare (given its name).
type SpareEnvFn = Arc<dyn Fn(&str) -> OsString + Send + Sync>;
/// Called with a spare's name and the session's that claimed it.
type ClaimFn = Arc<dyn Fn(&str, &str) + Send + Sync>;
/// Called with a spare's name when it leaves the pool unclaimed.
type RetireFn = Arc<dyn Fn(&str) + Send + Sync>;

/// What the pool's owner hears of, and adds to, each spare.
#[derive(Default)]
struct Hooks {
    /// Variables with a value of each spare's own (left out of the spawn key).
    spare_env: Vec<(OsString, SpareEnvFn)>,
    on_claim: Option<ClaimFn>,
    on_retire: Option<RetireFn>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field(
                "spare_env",
                &self.spare_env.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("on_claim", &self.on_claim.is_some())
            .field("on_retire", &self.on_retire.is_some())
            .finish()
    }
}

impl SparePoolBuilder {
    /// How many spares to keep parked (default 1, at most [`MAX_SPARES`]).
    pub fn size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }

    /// The directory the spares park in (created, and kept empty of project settings: a
    /// `.claude/settings.json` there would make claims fail). Default: a temporary directory of
    /// the pool's, removed with it.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Gives each spare its own value of the environment variable `name`, made by `value` from
    /// the spare's name (`<pool>/spare-<n>`) when it is launched: a per-process credential, say.
    /// The variable is left out of the spawn key, so a session whose own value differs can
    /// still take the spare (and the spare keeps its value: [`on_claim`](Self::on_claim) is
    /// where its owner rebinds it to the session).
    pub fn spare_env(
        mut self,
        name: impl Into<OsString>,
        value: impl Fn(&str) -> OsString + Send + Sync + 'static,
    ) -> Self {
        self.hooks.spare_env.push((name.into(), Arc::new(value)));
        self
    }

    /// Called when a session has claimed a spare, with the spare's name and the session's.
    pub fn on_claim(mut self, hook: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        self.hooks.on_claim = Some(Arc::new(hook));
        self
    }

    /// Called when a spare leaves the pool unclaimed (stopped, dead, refused, given up), with
    /// its name.
    pub fn on_retire(mut self, hook: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.hooks.on_retire = Some(Arc::new(hook));
        self
    }

    /// Counts each spare against `places`, the owner's admission limit (a tree's
    /// `max_sessions`): a spare is launched only with a place of its own, which it holds until
    /// it is claimed or retired. [`SparePool::give_up_place`] hands a parked spare's place to a
    /// session that needs it.
    pub fn places(mut self, places: Arc<Semaphore>) -> Self {
        self.places = Some(places);
        self
    }

    /// Validates the options and starts the pool: its spares launch in the background.
    ///
    /// # Errors
    ///
    /// [`SparePoolError::Invalid`] for a size of 0 or over [`MAX_SPARES`], or a template that
    /// resumes, continues or forks a conversation or fixes a session id (a spare cannot);
    /// [`SparePoolError::Io`] when the park directory cannot be created.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (the refill task is spawned on the current one).
    pub fn build(self) -> Result<SparePool, SparePoolError> {
        let pool = self.template.name.to_string();
        let invalid = |option, reason: &str| SparePoolError::Invalid {
            pool: pool.clone(),
            option,
            reason: reason.to_owned(),
        };
        if self.size == 0 || self.size > MAX_SPARES {
            return Err(invalid(
                "size",
                &format!("{} is not in 1..={MAX_SPARES}", self.size),
            ));
        }
        if let Some(reason) = resumes(&self.template.options) {
            return Err(invalid(
                "template",
                &format!("a spare cannot start {reason}"),
            ));
        }
        let options = self.template.launch_options();
        let own_env: Vec<OsString> = self
            .hooks
            .spare_env
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        let key = SpawnKey::of(&self.template, &options, &own_env)
            .map_err(|reason| invalid("template", &reason))?;
        let (root, park_dir) = match self.dir {
            Some(dir) => (None, dir),
            None => {
                let root = tempfile::Builder::new()
                    .prefix("claude-spares-")
                    .tempdir()
                    .map_err(|source| SparePoolError::Io {
                        pool: pool.clone(),
                        path: std::env::temp_dir(),
                        source,
                    })?;
                let dir = root.path().join("park");
                (Some(root), dir)
            }
        };
        std::fs::create_dir_all(&park_dir).map_err(|source| SparePoolError::Io {
            pool: pool.clone(),
            path: park_dir.clone(),
            source,
        })?;
        let (wake, woken) = mpsc::channel(1);
        let inner = Arc::new(Pool {
            name: self.template.name.clone(),
            template: self.template,
            key,
            size: self.size,
            park_dir,
            _root: root,
            state: Mutex::new(PoolState::default()),
            wake,
            idle: Notify::new(),
            counters: Counters::default(),
            hooks: Arc::new(self.hooks),
            own_env,
            places: self.places,
        });
        tokio::spawn(refill(Arc::downgrade(&inner), woken));
        inner.wake();
        Ok(SparePool { inner })
    }
}

impl SparePool {
    /// A builder for a pool of spares of `template`'s CLI, options, environment, launcher and
    /// containment (its name names the pool; its claimable options are ignored).
    pub fn builder(template: SessionConfig) -> SparePoolBuilder {
        SparePoolBuilder {
            template,
            size: 1,
            dir: None,
            hooks: Hooks::default(),
            places: None,
        }
    }

    /// The pool's name (its template's).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// What the pool holds now and has done so far.
    pub fn stats(&self) -> SpareStats {
        let state = self.inner.lock();
        let c = &self.inner.counters;
        SpareStats {
            size: self.inner.size,
            parked: state.parked.len(),
            launching: state.launching,
            launched: c.launched.load(Ordering::Relaxed),
            claimed: c.claimed.load(Ordering::Relaxed),
            died: c.died.load(Ordering::Relaxed),
            launch_failures: c.launch_failures.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
        }
    }

    /// The pids of the spares parked now.
    pub fn parked_pids(&self) -> Vec<u32> {
        self.inner
            .lock()
            .parked
            .iter()
            .filter_map(|s| s.launched.as_ref().and_then(|l| l.pid))
            .collect()
    }

    /// Waits until `size` spares are parked (or the pool is shut down).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn ready(&self) {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.inner.lock();
                let live = state.parked.iter().filter(|s| !s.has_exited()).count();
                if state.closed || live >= self.inner.size {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Takes a parked spare out of the pool (SIGKILLed, reaped in the background) and returns
    /// its admission place (see [`SparePoolBuilder::places`]) for a session that needs one: a
    /// session always comes before a spare. `None` when no spare with a place is parked. The
    /// pool is not refilled by this (it would take the place back); it refills on its next wake.
    pub fn give_up_place(&self) -> Option<OwnedSemaphorePermit> {
        let mut state = self.inner.lock();
        let index = state.parked.iter().position(|s| s.place.is_some())?;
        let mut spare = state.parked.remove(index)?;
        drop(state);
        let place = spare.place.take();
        drop(spare);
        place
    }

    /// Asks the pool to check now whether it needs a spare (its owner freed admission places,
    /// say). Spares are otherwise launched when one is claimed or dies, and when the pool starts.
    pub fn wake(&self) {
        self.inner.wake();
    }

    /// Stops the pool: no more spares are launched, and every parked one is stopped (stdin
    /// closed, a grace, SIGTERM, SIGKILL) and reaped; a launch in flight is waited for and its
    /// spare stopped too. Claimed processes belong to their sessions and are left alone.
    ///
    /// # Cancel safety
    ///
    /// The pool is closed when the future is first polled; dropping it later leaves the
    /// remaining spares to be SIGKILLed when the pool is dropped.
    pub async fn shutdown(&self) {
        self.inner.lock().closed = true;
        self.inner.idle.notify_waiters();
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (spares, launching) = {
                let mut state = self.inner.lock();
                (state.parked.drain(..).collect::<Vec<_>>(), state.launching)
            };
            futures::future::join_all(spares.into_iter().map(Spare::stop)).await;
            if launching == 0 {
                return;
            }
            notified.await;
        }
    }

    /// A parked spare for a session with `config` and (launch) `options`, its claim request
    /// built; or why the session cannot take one.
    pub(crate) fn take_for(
        &self,
        config: &SessionConfig,
        options: &ClaudeOptions,
    ) -> Result<Spare, String> {
        let pool = &self.inner;
        if let Some(reason) = resumes(options) {
            return Err(format!("it starts {reason}, which a claim cannot do"));
        }
        let key = SpawnKey::of(config, options, &pool.own_env)?;
        if let Some(difference) = pool.key.difference(&key) {
            return Err(format!(
                "its spawn-time options differ from those of the spare pool `{}`: {difference}",
                pool.name
            ));
        }
        let claim = claim_request(config, options)?;
        let spare = {
            let mut state = pool.lock();
            if state.closed {
                return Err(format!("the spare pool `{}` was shut down", pool.name));
            }
            loop {
                match state.parked.pop_front() {
                    // Exited while parked: replaced by the refill, never handed out.
                    Some(spare) if spare.has_exited() => {
                        pool.counters.died.fetch_add(1, Ordering::Relaxed);
                    }
                    other => break other,
                }
            }
        };
        pool.wake();
        match spare {
            Some(mut spare) => {
                pool.counters.claimed.fetch_add(1, Ordering::Relaxed);
                spare.claim = claim;
                Ok(spare)
            }
            None => {
                pool.counters.misses.fetch_add(1, Ordering::Relaxed);
                Err(format!(
                    "no spare of the pool `{}` was parked (it keeps {}, and is refilling)",
                    pool.name, pool.size
                ))
            }
        }
    }
}

struct Pool {
    name: Arc<str>,
    template: SessionConfig,
    key: SpawnKey,
    size: usize,
    park_dir: PathBuf,
    /// The pool's own temporary directory (the park directory is inside), if it made one.
    _root: Option<tempfile::TempDir>,
    state: Mutex<PoolState>,
    /// Wakes the refill task (a spare was claimed, died, or the pool started).
    wake: mpsc::Sender<()>,
    /// Notified when a spare is parked, a launch ends, or the pool closes.
    idle: Notify,
    counters: Counters,
    hooks: Arc<Hooks>,
    /// The variables each spare has a value of its own of (left out of the key).
    own_env: Vec<OsString>,
    /// The owner's admission places, if spares count against them.
    places: Option<Arc<Semaphore>>,
}

#[derive(Default)]
struct PoolState {
    parked: VecDeque<Spare>,
    launching: usize,
    closed: bool,
    next: u64,
}

#[derive(Default)]
struct Counters {
    launched: AtomicU64,
    claimed: AtomicU64,
    died: AtomicU64,
    launch_failures: AtomicU64,
    misses: AtomicU64,
}

impl Drop for Pool {
    fn drop(&mut self) {
        // The last handle is gone: no spare may outlive the pool.
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        state.parked.clear();
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self) {
        let _ = self.wake.try_send(());
    }

    /// The number of the next spare to launch and its admission place, if the pool needs one
    /// and has a place for it (counted as launching).
    fn begin_launch(&self) -> Option<(u64, Option<OwnedSemaphorePermit>)> {
        let mut state = self.lock();
        let before = state.parked.len();
        state.parked.retain(|s| !s.has_exited());
        let died = before - state.parked.len();
        self.counters.died.fetch_add(died as u64, Ordering::Relaxed);
        if state.closed || state.parked.len() + state.launching >= self.size {
            return None;
        }
        let place = match &self.places {
            Some(places) => Some(places.clone().try_acquire_owned().ok()?),
            None => None,
        };
        state.launching += 1;
        state.next += 1;
        Some((state.next, place))
    }

    /// Ends a launch and parks its spare (when the pool has closed meanwhile, `shutdown` stops
    /// it from there).
    fn end_launch(&self, spare: Option<Spare>) {
        {
            let mut state = self.lock();
            state.launching -= 1;
            state.parked.extend(spare);
        }
        self.idle.notify_waiters();
    }

    /// Launches spare `number`: the template's spawn-time options, `--await-claim`, the park
    /// directory, a spill directory of its own.
    async fn launch(
        &self,
        number: u64,
        place: Option<OwnedSemaphorePermit>,
    ) -> Result<Spare, SessionError> {
        let config = &self.template;
        let session = config.name.to_string();
        let name: Arc<str> = Arc::from(format!("{}/spare-{number}", self.name));
        let mut options = claimless(config.launch_options());
        options.cwd = Some(self.park_dir.clone());
        options.extra_args.push(("await-claim".to_owned(), None));
        for (key, value) in &self.hooks.spare_env {
            options.env.retain(|(k, _)| k != key);
            options.env.push((key.clone(), value(&name)));
        }
        // From here on the spare exists for the owner (its own values were made): every way
        // out but a claim retires it.
        let retire = Retire {
            name: name.clone(),
            hooks: self.hooks.clone(),
            armed: true,
        };
        let spill_dir = tempfile::Builder::new()
            .prefix("claude-spare-")
            .tempdir()
            .map_err(|e| SessionError::Launch {
                session: session.clone(),
                source: crate::LaunchError::Other(format!(
                    "could not create a spill directory: {e}"
                )),
            })?;
        let spec = options
            .command(&config.cli_path, Some(spill_dir.path()))
            .map_err(|source| SessionError::Options {
                session: session.clone(),
                source,
            })?;
        let mut launched = crate::actor::spawn_process(config, name, spec).await?;
        // The exit is watched from now on, so that the pool sees a parked spare die; the
        // session that claims the spare waits on the same watch.
        let original = std::mem::replace(&mut launched.exit, futures::future::pending().boxed());
        let (exit_tx, exit) = watch::channel::<ExitState>(None);
        let wake = self.wake.clone();
        tokio::spawn(async move {
            let status = crate::actor::exit_status(original).await;
            let _ = exit_tx.send(Some(status));
            let _ = wake.try_send(());
        });
        let mut watched = exit.clone();
        launched.exit = async move {
            match watched.wait_for(Option::is_some).await {
                Ok(state) => match state.clone() {
                    Some(status) => status.map_err(std::io::Error::other),
                    None => unreachable!("waited for Some"),
                },
                Err(_) => Err(std::io::Error::other("the spare's exit watch ended")),
            }
        }
        .boxed();
        // Parked once it has booted: a spare prints one `ui_invalidate` line when it is ready
        // for its claim, and nothing before.
        let stdout = std::mem::replace(&mut launched.stdout, Box::pin(tokio::io::empty()));
        let mut lines = LineReader::new(stdout, config.max_line_bytes);
        let timeout = config.timeouts.init;
        let announced =
            match tokio::time::timeout(timeout, first_line(&mut lines, |_| Some(()))).await {
                Ok(Ok(Some(()))) => Ok(()),
                Ok(Ok(None)) => Err("it exited before it announced itself".to_owned()),
                Ok(Err(e)) => Err(format!("reading its stdout failed: {e}")),
                Err(_) => Err(format!("it did not announce itself within {timeout:?}")),
            };
        if let Err(reason) = announced {
            let _ = launched.signaller.signal(GroupSignal::Kill);
            return Err(SessionError::Launch {
                session,
                source: crate::LaunchError::Other(format!("spare {number}: {reason}")),
            });
        }
        self.counters.launched.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(pool = %self.name, spare = number, pid = launched.pid, "spare parked");
        Ok(Spare {
            number,
            launched: Some(launched),
            spill_dir: Some(spill_dir),
            lines: Some(lines),
            exit,
            parked_at: Instant::now(),
            claim: Value::Null,
            place,
            retire,
            wake: self.wake.clone(),
        })
    }
}

/// Keeps the pool full: launches a spare whenever fewer than `size` are parked or launching,
/// backing off while launches fail. Ends when the pool is dropped or closed.
async fn refill(pool: Weak<Pool>, mut woken: mpsc::Receiver<()>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let next = match pool.upgrade() {
            Some(p) => p.begin_launch(),
            None => return,
        };
        let Some((number, place)) = next else {
            if pool.upgrade().is_none_or(|p| p.lock().closed) {
                return;
            }
            if woken.recv().await.is_none() {
                return;
            }
            continue;
        };
        let Some(p) = pool.upgrade() else { return };
        match p.launch(number, place).await {
            Ok(spare) => {
                p.end_launch(Some(spare));
                backoff = BACKOFF_MIN;
            }
            Err(error) => {
                p.counters.launch_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(pool = %p.name, spare = number, %error, retry_in = ?backoff,
                    "a spare could not be launched");
                p.end_launch(None);
                drop(p);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// One parked spare: its process, its spill directory, its exit watch. Dropped unclaimed, it is
/// SIGKILLed (its watch task reaps it).
pub(crate) struct Spare {
    number: u64,
    launched: Option<LaunchedProcess>,
    spill_dir: Option<tempfile::TempDir>,
    /// Its stdout, past its announcement.
    lines: Option<Lines>,
    exit: watch::Receiver<ExitState>,
    parked_at: Instant,
    /// The `claim_session` request for the session that took it.
    claim: Value,
    /// Its admission place, if the pool counts spares against one.
    place: Option<OwnedSemaphorePermit>,
    /// Tells the owner it is gone, unless it was claimed.
    retire: Retire,
    /// Wakes the pool's refill (once the place is back, after a claim).
    wake: mpsc::Sender<()>,
}

/// Calls the pool's `on_retire` hook for a spare when dropped, unless disarmed by a claim.
struct Retire {
    name: Arc<str>,
    hooks: Arc<Hooks>,
    armed: bool,
}

impl Drop for Retire {
    fn drop(&mut self) {
        if self.armed
            && let Some(hook) = &self.hooks.on_retire
        {
            hook(&self.name);
        }
    }
}

impl Drop for Spare {
    fn drop(&mut self) {
        if let Some(launched) = &self.launched {
            let _ = launched.signaller.signal(GroupSignal::Kill);
        }
    }
}

impl Spare {
    fn has_exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// How long it has been parked.
    pub(crate) fn parked_for(&self) -> Duration {
        self.parked_at.elapsed()
    }

    /// Sends the spare its `claim_session` request and waits (up to `timeout`) for the answer,
    /// reading its stdout with the line reader that the session then goes on reading from (so
    /// no byte after the answer is lost; the spare's `ui_invalidate` announcement was read when
    /// it was parked). Returns the process, that reader and the spill directory; or, with the
    /// spare killed, why the claim failed.
    pub(crate) async fn claim(
        mut self,
        session: &str,
        max_line: usize,
        timeout: Duration,
    ) -> Result<(LaunchedProcess, Lines, tempfile::TempDir), String> {
        // The process stays in `self` until the claim has succeeded: if this future is dropped
        // first, the spare's `Drop` kills it.
        let mut lines = self.lines.take().expect("a spare is claimed once");
        lines.set_max_line(max_line);
        let request_id = format!("claim_{}", uuid::Uuid::new_v4().simple());
        let mut line = serde_json::to_vec(&json!({
            "type": "control_request",
            "request_id": request_id,
            "request": std::mem::take(&mut self.claim),
        }))
        .expect("a JSON value serialises");
        line.push(b'\n');
        let stdin = &mut self
            .launched
            .as_mut()
            .expect("a spare is claimed once")
            .stdin;
        let answered = tokio::time::timeout(timeout, async {
            stdin
                .write_all(&line)
                .await
                .and(stdin.flush().await)
                .map_err(|e| format!("the claim could not be written to the spare: {e}"))?;
            let answer = first_line(&mut lines, |bytes| {
                let frame = serde_json::from_slice::<Value>(bytes).ok()?;
                let response = &frame["response"];
                (frame["type"] == "control_response" && response["request_id"] == *request_id).then(
                    || match response["subtype"].as_str() {
                        Some("success") => Ok(()),
                        _ => Err(format!(
                            "the spare refused the claim: {}",
                            response["error"].as_str().unwrap_or("(no message)")
                        )),
                    },
                )
            })
            .await;
            match answer {
                Ok(Some(answer)) => answer,
                Ok(None) => Err("the spare exited before it answered the claim".to_owned()),
                Err(e) => Err(format!("reading the spare's answer failed: {e}")),
            }
        })
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "the spare did not answer the claim within {timeout:?}"
            ))
        });
        // A refused claim: the spare is never reused (the CLI may be half-bound); dropping
        // `self` kills it, and its exit watch reaps it.
        answered?;
        self.retire.armed = false;
        if let Some(hook) = &self.retire.hooks.on_claim {
            hook(&self.retire.name, session);
        }
        // The session holds its own place; the spare's goes back, for a new spare.
        drop(self.place.take());
        let _ = self.wake.try_send(());
        let launched = self.launched.take().expect("a spare is claimed once");
        let spill_dir = self.spill_dir.take().expect("a spare is claimed once");
        Ok((launched, lines, spill_dir))
    }

    /// Stops an unclaimed spare: stdin closed (a parked CLI then exits 0), a grace, SIGTERM,
    /// another grace, SIGKILL; returns once it has exited.
    async fn stop(mut self) {
        let Some(launched) = self.launched.take() else {
            return;
        };
        let LaunchedProcess {
            stdin, signaller, ..
        } = launched;
        drop(stdin);
        let mut exit = self.exit.clone();
        for signal in [Some(GroupSignal::Terminate), Some(GroupSignal::Kill), None] {
            if tokio::time::timeout(STOP_GRACE, exit.wait_for(Option::is_some))
                .await
                .is_ok()
            {
                break;
            }
            match signal {
                Some(signal) => {
                    let _ = signaller.signal(signal);
                }
                None => tracing::error!(spare = self.number, "a spare did not exit on SIGKILL"),
            }
        }
        // Whatever it left in its containment goes too.
        let _ = signaller.signal(GroupSignal::Kill);
    }
}

/// Reads `lines` until `pick` takes a line (`Ok(Some(..))`), skipping the lines it does not and
/// oversize ones; `Ok(None)` at the end of the stream.
async fn first_line<T>(
    lines: &mut Lines,
    mut pick: impl FnMut(&[u8]) -> Option<T>,
) -> std::io::Result<Option<T>> {
    loop {
        while let Some(framed) = lines.take() {
            if let Framed::Line(bytes) = framed
                && let Some(picked) = pick(bytes)
            {
                return Ok(Some(picked));
            }
        }
        if !lines.fill().await? {
            return Ok(None);
        }
    }
}

/// Whether `options` resume, continue or fork a conversation or fix a session id: what a spare
/// cannot do (the CLI refuses `--await-claim` with them, and a fixed id on a spare would reuse
/// a conversation's id for a new one).
fn resumes(options: &ClaudeOptions) -> Option<&'static str> {
    if options.resume.is_some() || options.resume_session_at.is_some() {
        Some("by resuming a conversation")
    } else if options.continue_conversation {
        Some("by continuing a conversation")
    } else if options.fork_session {
        Some("by forking a conversation")
    } else if options.session_id.is_some() {
        Some("with a fixed session id")
    } else {
        None
    }
}

/// `options` without what a claim sets (those come in the claim instead).
fn claimless(mut options: ClaudeOptions) -> ClaudeOptions {
    options.cwd = None;
    options.add_dirs.clear();
    options.permission_mode = None;
    options.system_prompt = None;
    options.append_system_prompt = None;
    options
}

/// The `claim_session` request that binds a spare to a session with `config` and `options`.
fn claim_request(config: &SessionConfig, options: &ClaudeOptions) -> Result<Value, String> {
    let here = std::env::current_dir()
        .map_err(|e| format!("its working directory is not known ({e}), and a claim needs one"))?;
    let absolute = |p: &Path| {
        if p.is_absolute() {
            p.to_owned()
        } else {
            here.join(p)
        }
    };
    let cwd = options
        .cwd
        .as_deref()
        .map_or_else(|| here.clone(), absolute);
    let mut claim = json!({ "subtype": "claim_session", "cwd": cwd });
    if !options.add_dirs.is_empty() {
        let dirs: Vec<PathBuf> = options.add_dirs.iter().map(|d| absolute(d)).collect();
        claim["additional_directories"] = json!(dirs);
    }
    if let Some(mode) = &options.permission_mode {
        claim["permission_mode"] = serde_json::to_value(mode).map_err(|e| e.to_string())?;
    }
    match &options.system_prompt {
        None => {}
        Some(SystemPrompt::Text(text)) => claim["system_prompt"] = json!([text]),
        Some(SystemPrompt::File(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "its system prompt file {} could not be read for the claim: {e}",
                    path.display()
                )
            })?;
            claim["system_prompt"] = json!([text]);
        }
        Some(other) => return Err(format!("its system prompt {other:?} cannot be claimed")),
    }
    if let Some(text) = &options.append_system_prompt {
        claim["append_system_prompt"] = json!(text);
    }
    let servers = config.initialize_request(options).sdk_mcp_servers;
    if !servers.is_empty() {
        claim["sdk_mcp_servers"] = json!(servers);
    }
    Ok(claim)
}

/// Everything the CLI fixes when it is spawned, for a session or a spare: what must be equal
/// for a spare to serve a session.
#[derive(Debug, PartialEq)]
pub(crate) struct SpawnKey {
    program: PathBuf,
    args: Vec<OsString>,
    /// Spilled payloads: file name (under the placeholder directory) and contents.
    spilled: Vec<(PathBuf, String)>,
    /// The environment as the CLI gets it (later settings win), the session markers left out.
    env: BTreeMap<OsString, OsString>,
    env_remove: Vec<OsString>,
    env_clear: bool,
    user: Option<String>,
    launcher: String,
    containment: String,
    memory_limit: Option<u64>,
    egress: String,
}

impl SpawnKey {
    /// The key of `config`'s CLI with (launch) `options`, their claimable parts left out.
    pub(crate) fn of(
        config: &SessionConfig,
        options: &ClaudeOptions,
        own_env: &[OsString],
    ) -> Result<Self, String> {
        let mut options = claimless(options.clone());
        options.extra_args.retain(|(name, _)| name != "await-claim");
        let mut spec = options
            .command(&config.cli_path, Some(Path::new(SPILL_PLACEHOLDER)))
            .map_err(|e| format!("its options are invalid: {e}"))?;
        config.apply_environment(&mut spec, "");
        let env = spec
            .env
            .into_iter()
            .filter(|(k, _)| k != SESSION_ENV && k != LAUNCH_ID_ENV && !own_env.contains(k))
            .collect();
        let mut env_remove = spec.env_remove;
        env_remove.sort();
        env_remove.dedup();
        Ok(Self {
            program: spec.program,
            args: spec.args,
            spilled: spec
                .spill_files
                .into_iter()
                .map(|f| (f.path, f.contents))
                .collect(),
            env,
            env_remove,
            env_clear: spec.env_clear,
            user: spec.user,
            launcher: format!("{:?}", config.launcher),
            containment: format!("{:?}", config.containment),
            memory_limit: config.memory_limit,
            egress: format!("{:?}", config.egress),
        })
    }

    /// What differs between the two, in words that name the part (an environment variable by
    /// name only: its value may be a secret); `None` when a spare of one can serve the other.
    pub(crate) fn difference(&self, other: &Self) -> Option<String> {
        if self.program != other.program {
            return Some(format!(
                "the CLI ({} and {})",
                self.program.display(),
                other.program.display()
            ));
        }
        if self.args != other.args {
            let flag = |a: &OsString| {
                let a = a.to_string_lossy();
                a.split('=').next().unwrap_or_default().to_owned()
            };
            let first = self
                .args
                .iter()
                .zip(&other.args)
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("{} and {}", flag(a), flag(b)))
                .unwrap_or_else(|| {
                    format!("{} and {} arguments", self.args.len(), other.args.len())
                });
            return Some(format!("the CLI's arguments ({first})"));
        }
        if self.spilled != other.spilled {
            return Some("the payloads passed in files (settings, MCP config, …)".to_owned());
        }
        if self.env != other.env || self.env_clear != other.env_clear {
            let name = self
                .env
                .iter()
                .find(|(k, v)| other.env.get(*k) != Some(v))
                .or_else(|| other.env.iter().find(|(k, _)| !self.env.contains_key(*k)))
                .map(|(k, _)| k.to_string_lossy().into_owned());
            return Some(match name {
                Some(name) => format!("the environment variable {name}"),
                None => "whether the environment is inherited".to_owned(),
            });
        }
        if self.env_remove != other.env_remove {
            return Some("the environment variables removed".to_owned());
        }
        for (part, a, b) in [
            (
                "the user",
                format!("{:?}", self.user),
                format!("{:?}", other.user),
            ),
            (
                "the launcher",
                self.launcher.clone(),
                other.launcher.clone(),
            ),
            (
                "the containment policy",
                self.containment.clone(),
                other.containment.clone(),
            ),
            (
                "the memory limit",
                format!("{:?}", self.memory_limit),
                format!("{:?}", other.memory_limit),
            ),
            (
                "the egress policy",
                self.egress.clone(),
                other.egress.clone(),
            ),
        ] {
            if a != b {
                return Some(part.to_owned());
            }
        }
        None
    }
}

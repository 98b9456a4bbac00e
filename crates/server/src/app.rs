//! The running server: the tree built from the config, the HTTP listener, and the drain.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use claude_supervisor::store::{PostgresStore, SessionStore};
use claude_supervisor::{
    Agent, ClaudeSupervisor, FileStore, FleetConfig, MemoryStore, SessionSpec, SupervisorError,
};
use dashmap::DashMap;
use tokio::sync::watch;

use crate::api::turns::TurnLog;
use crate::config::{Config, CredentialKind, SessionExtras, StoreKind};
use crate::metrics::Metrics;
use crate::security::Security;

/// The server could not start, or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The config is not usable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The store could not be opened (a database URL is shown without its password).
    #[error("the store: {0}")]
    Store(#[from] claude_supervisor::StoreError),
    /// The store's URL variable is not set.
    #[error("config key `store.url_env`: the environment variable `{0}` is not set")]
    MissingUrl(String),
    /// The bearer token could not be read.
    #[error("the bearer token: {0}")]
    Token(String),
    /// The tree did not start.
    #[error("the supervision tree: {0}")]
    Tree(#[from] SupervisorError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) tree: ClaudeSupervisor,
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) security: Security,
    /// Each session's latest turn (kept for reconnects until its next turn).
    pub(crate) turns: DashMap<String, Arc<TurnLog>>,
    pub(crate) next_turn: AtomicU64,
    /// Cleared by the drain: new turns and sessions are refused.
    pub(crate) admitting: AtomicBool,
    /// Turns running now (the drain waits for 0).
    pub(crate) running: watch::Sender<usize>,
    pub(crate) metrics: Metrics,
    /// For forwarding to the node that owns a session.
    pub(crate) http: reqwest::Client,
    /// The credential gateway, if the tree has one (what it is, never the credential).
    pub(crate) gateway: Option<GatewayInfo>,
    /// What each CLI's environment gets of the credential.
    pub(crate) credential: CliCredential,
}

/// What the server tells about its gateway: where the credential comes from, not what it is.
#[derive(Clone, Debug)]
pub(crate) struct GatewayInfo {
    /// The server's variable holding the credential.
    pub(crate) credential_env: String,
    /// What it holds.
    pub(crate) kind: CredentialKind,
    /// The upstream, with any user part redacted.
    pub(crate) upstream: String,
}

/// The CLI variables the credential gateway sets (or removes) itself: a session's `env` may
/// not set them while the gateway is on.
pub(crate) const GATEWAY_OWNED_ENV: &[&str] = &[
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
];

/// A session the server cannot make a spec of.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SpecError {
    /// The agent's options are invalid.
    #[error(transparent)]
    Agent(#[from] claude_supervisor::AgentError),
    /// The session's `env` sets a variable the credential gateway owns.
    #[error(
        "`env.{var}`: the credential gateway sets the CLI's API URL and credential itself; set `[gateway] upstream` for where requests go, or `[gateway] enabled = false` to give the CLI its own"
    )]
    GatewayOwned {
        /// The variable.
        var: &'static str,
    },
}

/// What the server does with the API credential in each CLI's environment.
#[derive(Clone, Default)]
pub(crate) enum CliCredential {
    /// Nothing: the CLI's environment policy passes the usual variables on.
    #[default]
    AsIs,
    /// The gateway holds it: its variable (`var`) is removed from the CLI's environment, and a
    /// session may not set the API URL or a credential itself.
    Hidden {
        /// The server's variable holding it.
        var: String,
    },
    /// The gateway is off and `credential_env` names it: the CLI gets it as `cli_var`, unless
    /// the session's `env` sets that variable itself.
    Given(crate::config::DirectCredential),
}

impl std::fmt::Debug for CliCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AsIs => f.write_str("AsIs"),
            Self::Hidden { var } => f.debug_struct("Hidden").field("var", var).finish(),
            Self::Given(d) => f.debug_tuple("Given").field(d).finish(),
        }
    }
}

/// A session's spec as the server runs it: `agent`'s, plus the server's own keys (`extras`:
/// the egress policy, the budget group), with the credential handled as `credential` says.
///
/// # Errors
///
/// [`SpecError`]: the agent's options are invalid, or, with the gateway on, its `env` sets
/// the API URL or a credential (the gateway would silently replace them: refused instead, so
/// that a CLI meant for one endpoint is never sent to another).
pub(crate) fn session_spec(
    agent: &Agent,
    extras: &SessionExtras,
    credential: &CliCredential,
) -> Result<SessionSpec, SpecError> {
    let mut agent = agent.clone();
    match credential {
        CliCredential::AsIs => {}
        CliCredential::Hidden { var } => {
            if let Some(owned) = GATEWAY_OWNED_ENV
                .iter()
                .find(|v| agent.env.contains_key(**v))
            {
                return Err(SpecError::GatewayOwned { var: owned });
            }
            agent.env.remove(var);
            if !agent.env_remove.iter().any(|k| k == var) {
                agent.env_remove.push(var.clone());
            }
        }
        CliCredential::Given(direct) => {
            agent
                .env
                .entry(direct.cli_var.to_owned())
                .or_insert_with(|| direct.secret.clone());
        }
    }
    let mut spec = agent.spec()?;
    if let Some(group) = &extras.budget_group {
        spec = spec.budget_group(group.clone());
    }
    if let Some(policy) = extras.egress_policy() {
        // `configure` replaces the agent's own closure (its timeouts): they are applied again
        // here, with the egress policy.
        let (init, turn, stall) = (agent.init_timeout, agent.turn_timeout, agent.stall_timeout);
        spec = spec.configure(move |mut b| {
            if let Some(d) = init {
                b = b.init_timeout(d);
            }
            if let Some(d) = turn {
                b = b.turn_timeout(d);
            }
            if let Some(d) = stall {
                b = b.stall_timeout(d);
            }
            b.egress(policy.clone())
        });
    }
    Ok(spec)
}

impl AppState {
    /// The agent for a session started over HTTP or taken over from a record: the config's
    /// static session of that name, or the defaults under that name.
    pub(crate) fn agent_for(&self, name: &str) -> Agent {
        self.config
            .sessions
            .iter()
            .find(|a| a.name == name)
            .cloned()
            .unwrap_or_else(|| {
                let mut agent = self.config.defaults.clone();
                agent.name = name.to_owned();
                agent
            })
    }

    /// The spec of a session of `agent` (see [`session_spec`]): the server's own keys are the
    /// static session's of that name, or the defaults'.
    pub(crate) fn spec_of(&self, agent: &Agent) -> Result<SessionSpec, SpecError> {
        session_spec(
            agent,
            &self.config.extras_for(&agent.name),
            &self.credential,
        )
    }

    /// A turn starts (unless the server is draining): returns its guard.
    pub(crate) fn begin_turn(self: &Arc<Self>) -> Option<RunningTurn> {
        if !self.admitting.load(Ordering::SeqCst) {
            return None;
        }
        self.running.send_modify(|n| *n += 1);
        Some(RunningTurn(self.clone()))
    }
}

/// Counts a running turn until dropped.
pub(crate) struct RunningTurn(Arc<AppState>);

impl Drop for RunningTurn {
    fn drop(&mut self) {
        self.0.running.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A server that is running: its address, and how to stop it.
pub struct RunningServer {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl RunningServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The supervision tree it serves.
    pub fn tree(&self) -> &ClaudeSupervisor {
        &self.state.tree
    }

    /// Drains and stops: stops admitting turns and sessions (503 `draining`), lets running
    /// turns finish up to the config's `drain_timeout`, stops taking connections, shuts the tree
    /// down in order (every CLI stopped by its recipe and reaped; a turn still running is cut,
    /// which ends its event stream; records in the store, so the next `serve` on the same store
    /// resumes the named sessions), then waits for the open connections to end.
    ///
    /// # Errors
    ///
    /// What serving failed with, if it did.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let state = self.state.clone();
        drain(&state).await;
        let _ = self.stop.send(true);
        // The tree goes down before the HTTP connections are awaited: the graceful shutdown
        // waits for every open response, and the event stream of a turn still running past
        // the drain deadline only ends when that turn is cut.
        state.tree.shutdown().await;
        let served = self.task.await.unwrap_or(Ok(()));
        tracing::info!("stopped");
        served
    }

    /// Runs until SIGTERM or Ctrl-C, then [`shutdown`](Self::shutdown).
    ///
    /// # Errors
    ///
    /// As [`shutdown`](Self::shutdown).
    pub async fn run_until_signalled(self) -> Result<(), ServeError> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: draining"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: draining"),
        }
        self.shutdown().await
    }
}

async fn drain(state: &AppState) {
    state.admitting.store(false, Ordering::SeqCst);
    let limit = state.config.server.drain_timeout;
    let mut running = state.running.subscribe();
    let waited = tokio::time::timeout(limit, running.wait_for(|n| *n == 0)).await;
    match waited {
        Ok(_) => tracing::info!("no turn running"),
        Err(_) => tracing::warn!(
            turns = *state.running.borrow(),
            "drain deadline of {} passed: stopping with turns running",
            humantime::format_duration(limit)
        ),
    }
}

/// Starts the server from `config` (`path` names the file in errors): the tree with its store
/// and static sessions, then the listener.
///
/// # Errors
///
/// [`ServeError`]: the config, the store, the tree or the listen address.
pub async fn start(config: Config, path: &Path) -> Result<RunningServer, ServeError> {
    config.check(path)?;
    let security = Security::from_config(&config.server).map_err(ServeError::Token)?;
    let data_dir = config.data_dir();
    let store: Arc<dyn SessionStore> = match config.store.kind {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
        StoreKind::File => Arc::new(FileStore::open(
            config
                .store
                .path
                .clone()
                .unwrap_or_else(|| data_dir.join("store")),
        )?),
        StoreKind::Postgres => {
            let url = match (&config.store.url, &config.store.url_env) {
                (_, Some(var)) => {
                    std::env::var(var).map_err(|_| ServeError::MissingUrl(var.clone()))?
                }
                (Some(url), None) => url.clone(),
                (None, None) => unreachable!("checked by Config::check"),
            };
            Arc::new(PostgresStore::connect(&url).await?)
        }
    };
    let env = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    let gateway = config.gateway.resolve(path, &env)?;
    let direct = config.gateway.direct_credential(path, &env)?;
    let mut builder = ClaudeSupervisor::builder()
        .name(config.supervisor.name.clone())
        .store(store.clone());
    let gateway_info = match gateway {
        Some(resolved) => {
            tracing::info!(
                credential_env = %resolved.credential_env,
                kind = resolved.kind.as_str(),
                upstream = %resolved.upstream_display,
                "credential gateway on: the CLIs get a per-session token, not the credential"
            );
            builder = builder.gateway(resolved.config);
            Some(GatewayInfo {
                credential_env: resolved.credential_env,
                kind: resolved.kind,
                upstream: resolved.upstream_display,
            })
        }
        None => {
            if config.gateway.enabled == Some(false) {
                tracing::warn!(
                    "credential gateway off (`[gateway] enabled = false`): every CLI gets the API credential in its own environment"
                );
            }
            None
        }
    };
    let credential = match (&gateway_info, direct) {
        (Some(g), _) => CliCredential::Hidden {
            var: g.credential_env.clone(),
        },
        (None, Some(direct)) => CliCredential::Given(direct),
        (None, None) => CliCredential::AsIs,
    };
    if gateway_info.is_some() {
        // The template of sessions started over HTTP, checked now rather than at the first.
        session_spec(&config.defaults, &config.defaults_extras, &credential).map_err(|e| {
            crate::config::ConfigError::Value {
                path: path.to_owned(),
                key: "defaults".into(),
                message: e.to_string(),
            }
        })?;
    }
    if let Some(cli) = crate::install::locate_cli(&config) {
        builder = builder.cli_path(cli);
    }
    if let Some(launcher) = &config.launcher {
        builder = builder.launcher(
            claude_supervisor::CommandPrefixLauncher::new(launcher.prefix.clone())
                .remote(launcher.remote),
        );
    }
    if let Some(n) = config.supervisor.max_sessions {
        builder = builder.max_sessions(n);
    }
    if let Some(n) = config.supervisor.max_sessions_per_group {
        builder = builder.max_sessions_per_group(n);
    }
    if let Some(wait) = config.supervisor.restart_wait {
        builder = builder.restart_wait(wait);
    }
    if let Some(size) = config.supervisor.warm_spares {
        // The spares are started as a session of `[defaults]` would be.
        let template = session_spec(&config.defaults, &config.defaults_extras, &credential)
            .map_err(|e| crate::config::ConfigError::Value {
                path: path.to_owned(),
                key: "defaults".into(),
                message: e.to_string(),
            })?;
        builder = builder.warm_spares(size, template.options().clone());
    }
    for (i, agent) in config.sessions.iter().enumerate() {
        let extras = config.session_extras.get(i).cloned().unwrap_or_default();
        let spec = session_spec(agent, &extras, &credential).map_err(|e| {
            crate::config::ConfigError::Value {
                path: path.to_owned(),
                key: format!("sessions[{i}]"),
                message: e.to_string(),
            }
        })?;
        builder = builder.session(spec);
    }
    if let Some(fleet) = &config.fleet {
        let (sessions, defaults) = (config.sessions.clone(), config.defaults.clone());
        let extras_of = config.clone();
        let credential = credential.clone();
        let spec_for = move |record: &claude_supervisor::SessionRecord| -> Option<SessionSpec> {
            let mut agent = sessions
                .iter()
                .find(|a| a.name == record.name)
                .cloned()
                .unwrap_or_else(|| {
                    let mut a = defaults.clone();
                    a.name = record.name.clone();
                    a.cwd = a.cwd.or_else(|| record.cwd.clone());
                    a
                });
            agent.name = record.name.clone();
            session_spec(&agent, &extras_of.extras_for(&record.name), &credential).ok()
        };
        let mut f =
            FleetConfig::new(fleet.node_id.clone(), spec_for).data_dir(data_dir.join("sessions"));
        if let Some(ttl) = fleet.ttl {
            f = f.ttl(ttl);
        }
        if let Some(beat) = fleet.heartbeat {
            f = f.heartbeat(beat);
        }
        if let Some(cap) = fleet.max_sessions_per_node {
            f = f.max_sessions_per_node(cap);
        }
        builder = builder.fleet(f);
    }
    let tree = builder.start().await?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.server.listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    let metrics = Metrics::new(&tree);
    let state = Arc::new(AppState {
        tree,
        store,
        security,
        turns: DashMap::new(),
        next_turn: AtomicU64::new(1),
        admitting: AtomicBool::new(true),
        running: watch::channel(0).0,
        metrics,
        http: reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ServeError::Io(std::io::Error::other(e)))?,
        config,
        gateway: gateway_info,
        credential,
    });
    let app = crate::api::router(state.clone());
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .await
        .map_err(ServeError::Io)
    });
    tracing::info!(%addr, "serving");
    Ok(RunningServer {
        addr,
        state,
        stop,
        task,
    })
}

//! A session's CLI instance: the actor that owns one `Session` (one CLI process).
//!
//! OTP's "fast init, slow work after it": the actor starts at once (so its supervisor, and the
//! tree above it, never wait on a CLI) and launches the CLI from a task it owns. A launch that
//! fails stops the actor abnormally, so the session's own supervisor restarts it within the
//! session's intensity. When the `Session` actor (linked to this one) exits, this one exits
//! with the same kind of reason; when this one is stopped, it stops the CLI by the full recipe.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use claude_session::{Session, SessionConfig, SessionError, StartOptions};
use futures::FutureExt;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};
use supervision::{ChildSpec, ExitReason, RestartType, Shutdown};
use tokio::task::JoinHandle;

use super::entry::Entry;
use super::keeper::{INSTANCE, KeeperMsg, Prepared};
use super::{SupervisorError, SupervisorEventKind, Tree};

/// How long a launch waits for the previous instance's process group to be gone.
const GONE_LIMIT: Duration = Duration::from_secs(10);

/// The shutdown budget of an instance: enough for the session's own recipe (interrupt, stdin
/// grace, SIGTERM grace); past it the actor is killed and the process group with it.
const SHUTDOWN: Duration = Duration::from_secs(30);

pub(crate) enum InstanceMsg {
    Launched(Box<Result<Launched, SupervisorError>>),
}

pub(crate) struct Instance;

/// A started session, its CLI's pid and its process tree.
type Launched = (Session, Option<u32>, Option<claude_session::Containment>);

pub(crate) struct InstanceState {
    tree: Arc<Tree>,
    entry: Arc<Entry>,
    generation: u64,
    launch: Option<JoinHandle<()>>,
    session: Option<Session>,
    relay: Option<JoinHandle<()>>,
    normal_exit: bool,
}

/// The spec of a session's instance under its own supervisor.
pub(crate) fn child_spec(tree: &Arc<Tree>, entry: &Arc<Entry>) -> ChildSpec {
    let (tree, entry) = (tree.clone(), entry.clone());
    let restart: RestartType = entry.spec.restart;
    ChildSpec::builder(INSTANCE)
        .restart(restart)
        .shutdown(Shutdown::Timeout(SHUTDOWN))
        .start(move |args| {
            let (tree, entry) = (tree.clone(), entry.clone());
            async move { args.spawn_linked(None, Instance, (tree, entry)).await }
        })
        .build()
        .expect("a static id and a start function make a valid spec")
}

impl Actor for Instance {
    type Msg = InstanceMsg;
    type State = InstanceState;
    type Arguments = (Arc<Tree>, Arc<Entry>);

    async fn pre_start(
        &self,
        _: ActorRef<InstanceMsg>,
        (tree, entry): (Arc<Tree>, Arc<Entry>),
    ) -> Result<InstanceState, ActorProcessingErr> {
        Ok(InstanceState {
            tree,
            entry,
            generation: 0,
            launch: None,
            session: None,
            relay: None,
            normal_exit: true,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<InstanceMsg>,
        state: &mut InstanceState,
    ) -> Result<(), ActorProcessingErr> {
        let (tree, entry, me) = (state.tree.clone(), state.entry.clone(), myself.clone());
        // The keeper answers `Prepare` (lease, resume id, generation); the answer is awaited
        // here, in the launch task, never in a supervisor.
        let prepared = match entry.keeper() {
            Some(keeper) => {
                let timeout = tree.call_timeout;
                match ractor::call_t!(keeper, KeeperMsg::Prepare, timeout.as_millis() as u64) {
                    Ok(answer) => answer,
                    Err(_) => Err(SupervisorError::CallTimeout {
                        name: entry.name().to_owned(),
                        call: "prepare",
                        timeout,
                    }),
                }
            }
            None => Err(SupervisorError::Unavailable {
                name: entry.name().to_owned(),
                reason: "the session's keeper is not running".into(),
            }),
        };
        match prepared {
            Ok(prepared) => {
                state.generation = prepared.generation;
                state.launch = Some(tokio::spawn(async move {
                    let result = launch(&tree, &entry, prepared, me.get_cell()).await;
                    let _ = me.cast(InstanceMsg::Launched(Box::new(result)));
                }));
            }
            Err(error) => {
                let _ = myself.cast(InstanceMsg::Launched(Box::new(Err(error))));
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<InstanceMsg>,
        msg: InstanceMsg,
        state: &mut InstanceState,
    ) -> Result<(), ActorProcessingErr> {
        let InstanceMsg::Launched(result) = msg;
        state.launch = None;
        match *result {
            Ok((session, pid, tree)) => {
                state.relay = Some(tokio::spawn(relay(
                    state.tree.clone(),
                    state.entry.clone(),
                    session.clone(),
                    state.generation,
                )));
                if let Some(keeper) = state.entry.keeper() {
                    let _ = keeper.cast(KeeperMsg::Up {
                        generation: state.generation,
                        session: session.clone(),
                        pid,
                        tree,
                    });
                }
                state.tree.emit(
                    Some(state.entry.name()),
                    SupervisorEventKind::Started {
                        generation: state.generation,
                        resumed: state.entry.ledger.session_id().is_some(),
                    },
                );
                state.session = Some(session);
            }
            Err(error) => {
                let text = error.to_string();
                if let Some(keeper) = state.entry.keeper() {
                    let _ = keeper.cast(KeeperMsg::LaunchFailed {
                        generation: state.generation,
                        error: text.clone(),
                    });
                }
                state.entry.report_first(Err(error));
                state.normal_exit = false;
                myself.stop(Some(format!("start failed: {text}")));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<InstanceMsg>,
        event: SupervisionEvent,
        state: &mut InstanceState,
    ) -> Result<(), ActorProcessingErr> {
        let Some(reason) = ExitReason::from_event(&event) else {
            return Ok(());
        };
        // Only the session's own actor is linked to this one.
        state.session = None;
        state.normal_exit = reason.normal;
        if reason.normal {
            myself.stop(Some(format!(
                "shutdown:the CLI session ended ({})",
                reason.reason
            )));
        } else {
            myself.stop(Some(format!("the CLI session failed: {}", reason.reason)));
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<InstanceMsg>,
        state: &mut InstanceState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(launch) = state.launch.take() {
            // Dropping a start mid-way kills and reaps the CLI it launched.
            launch.abort();
            let _ = launch.await;
        }
        if let Some(session) = state.session.take() {
            let _ = session.stop().await;
        }
        if let Some(relay) = state.relay.take() {
            // The session has stopped, so the relay is draining its last events: let it finish
            // (bounded), so that the keeper hears them before `Down`.
            let abort = relay.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), relay)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        if let Some(keeper) = state.entry.keeper() {
            let _ = keeper.cast(KeeperMsg::Down {
                generation: state.generation,
                normal: state.normal_exit,
            });
        }
        Ok(())
    }
}

/// Launches the CLI for `prepared`: waits for the previous process group, builds the config
/// (running the user's `configure` closure, contained), starts the session linked to `owner`.
async fn launch(
    tree: &Arc<Tree>,
    entry: &Arc<Entry>,
    prepared: Prepared,
    owner: ActorCell,
) -> Result<Launched, SupervisorError> {
    let name = entry.name().to_owned();
    if let (Some(previous), Some(_)) = (&prepared.previous, &prepared.resume) {
        previous
            .wait_gone(GONE_LIMIT)
            .await
            .map_err(|reason| SupervisorError::Unavailable {
                name: name.clone(),
                reason,
            })?;
    }
    let config = build_config(tree, entry, prepared.resume.as_deref())?;
    let mirroring = tree.store.holds_transcripts();
    if mirroring && let Some(id) = &prepared.resume {
        // The CLI may run where its session file never was (a new host, a fresh config dir):
        // write it from the store first (through the launcher, where it runs the CLI). A store
        // that cannot be read, or a file that cannot be staged, fails this launch.
        super::mirror::rehydrate(tree, &name, config.options(), id).await?;
    }
    let mut start = StartOptions::default();
    start.supervisor = Some(owner);
    if mirroring {
        let (sink, events) = tokio::sync::mpsc::unbounded_channel();
        start.mirror = Some(sink);
        // Ends once the CLI's reader drops the sink, after its last batch is stored.
        tokio::spawn(super::mirror::run(
            tree.clone(),
            name.clone(),
            entry.backlog.clone(),
            events,
        ));
    }
    let started = AssertUnwindSafe(Session::start_with(config, start))
        .catch_unwind()
        .await
        .map_err(|panic| SupervisorError::Panicked {
            name: name.clone(),
            what: "the session's launcher",
            message: panic_message(&panic),
        })?;
    let session = started.map_err(|source| SupervisorError::Start {
        name: name.clone(),
        source,
    })?;
    let health = session.health().await.ok();
    let pid = health.as_ref().and_then(|h| h.pid);
    let tree = health.and_then(|h| h.process_tree);
    tracing::info!(session = %name, generation = prepared.generation, resumed = prepared.resume.is_some(), "session instance started");
    Ok((session, pid, tree))
}

fn build_config(
    tree: &Tree,
    entry: &Entry,
    resume: Option<&str>,
) -> Result<SessionConfig, SupervisorError> {
    let name = entry.name().to_owned();
    let options_error = |source: claude_protocol::OptionsError| SupervisorError::Start {
        name: name.clone(),
        source: SessionError::Options {
            session: name.clone(),
            source,
        },
    };
    let mut options = entry.spec.options.clone();
    // With a store that keeps conversations, the CLI mirrors its session file to us.
    options.session_mirror |= tree.store.holds_transcripts();
    if let Some(id) = resume {
        options = options.resuming(id.to_owned());
    }
    if options.cwd.is_none()
        && let Some(data) = tree.fleet.as_ref().and_then(|f| f.config.data_dir.clone())
    {
        // In a fleet, a session without a working directory gets its own under the node's
        // data dir (the same path on every node: a shared volume keeps its files).
        let dir = data.join(crate::store::encode_name(&name));
        std::fs::create_dir_all(&dir).map_err(|e| {
            SupervisorError::Store(crate::StoreError::Io {
                action: "create the session's working directory",
                path: dir.clone(),
                source: e,
            })
        })?;
        options.cwd = Some(dir);
    }
    if let Some(root) = &tree.config_dir_root {
        let dir = root.join(crate::store::encode_name(&name));
        std::fs::create_dir_all(&dir).map_err(|e| {
            SupervisorError::Store(crate::StoreError::Io {
                action: "create the session's config dir",
                path: dir.clone(),
                source: e,
            })
        })?;
        options = options
            .to_builder()
            .env("CLAUDE_CONFIG_DIR", dir.into_os_string())
            .build()
            .map_err(options_error)?;
    }
    if let Some(gateway) = &tree.gateway {
        // The CLI talks to the gateway with its session's token, never with the real
        // credential (whatever the options or the host's environment carry).
        let token = gateway
            .token(&name)
            .ok_or_else(|| SupervisorError::Unavailable {
                name: name.clone(),
                reason: "its gateway token was revoked (the session ended)".into(),
            })?;
        gateway.apply(&mut options, Some(&token));
    } else if let Some(credential) = &tree.direct_credential {
        // The gateway was turned off: the CLI gets the credential itself.
        let (name, value) = credential.env_var();
        options.env.retain(|(k, _)| k != name);
        options.env.push((name.into(), value.into()));
    }
    let cli = entry
        .spec
        .cli_path
        .clone()
        .unwrap_or_else(|| tree.cli.clone());
    let mut builder = SessionConfig::builder(name.clone(), cli)
        .options(options)
        .ledger(entry.ledger.clone());
    if let Some(launcher) = &tree.launcher {
        builder = builder.launcher_arc(launcher.clone());
    }
    if let Some(configure) = &entry.spec.configure {
        builder =
            std::panic::catch_unwind(AssertUnwindSafe(|| configure(builder))).map_err(|panic| {
                SupervisorError::Panicked {
                    name: name.clone(),
                    what: "the session's `configure` closure",
                    message: panic_message(&panic),
                }
            })?;
    }
    if let Some(gateway) = &tree.gateway {
        // A session whose egress is restricted can always reach its gateway: the CLI's API is
        // there.
        builder = builder.egress_allow(gateway.addr());
    }
    if let Some(pool) = tree.spares.get() {
        // A fresh start whose spawn-time options match the pool's takes a warm spare; a restart
        // or a wake-up resumes, which no claim can do, and starts cold (health says why).
        builder = builder.spares(pool.clone());
    }
    builder
        .build()
        .map_err(|source| SupervisorError::Config { name, source })
}

/// The template of the tree's warm spares: `options` made into a session's configuration as
/// `build_config` makes one (the mirror flag, the tree's credential or gateway, its launcher), so
/// that a session with the same options matches it; with the gateway, each spare gets a token of
/// its own (the pool's per-spare variable), adopted by the session that claims it.
pub(crate) fn spare_template(
    tree: &Tree,
    mut options: claude_protocol::ClaudeOptions,
) -> Result<SessionConfig, SupervisorError> {
    let name = format!("{}-spares", tree.name);
    options.session_mirror |= tree.store.holds_transcripts();
    if let Some(gateway) = &tree.gateway {
        gateway.apply(&mut options, None);
    } else if let Some(credential) = &tree.direct_credential {
        let (var, value) = credential.env_var();
        options.env.retain(|(k, _)| k != var);
        options.env.push((var.into(), value.into()));
    }
    let mut builder = SessionConfig::builder(name.clone(), tree.cli.clone()).options(options);
    if let Some(launcher) = &tree.launcher {
        builder = builder.launcher_arc(launcher.clone());
    }
    builder
        .build()
        .map_err(|source| SupervisorError::Config { name, source })
}

/// Relays one instance's events to its keeper and to the tree's channel.
async fn relay(tree: Arc<Tree>, entry: Arc<Entry>, session: Session, generation: u64) {
    let mut events = session.events();
    let actor = session.actor();
    drop(session);
    let exited = actor.wait(None);
    tokio::pin!(exited);
    let forward = |event: claude_session::SessionEvent| {
        if let Some(keeper) = entry.keeper() {
            let _ = keeper.cast(KeeperMsg::Event {
                generation,
                kind: event.kind.clone(),
            });
        }
        tree.emit(Some(entry.name()), SupervisorEventKind::Session(event.kind));
    };
    loop {
        let event = tokio::select! {
            biased;
            event = events.recv() => event,
            _ = &mut exited => break,
        };
        match event {
            Ok(event) => forward(event),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
    // The session has exited: what it said last (a lost conversation, its exit) still reaches
    // the keeper, before the instance reports its own exit.
    while let Ok(event) = events.try_recv() {
        forward(event);
    }
}

pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

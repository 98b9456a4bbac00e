//! A fleet of node processes on one real PostgreSQL (fake-claude CLIs): sessions spread over
//! the nodes; a node killed mid-turn has its sessions taken over by the survivors, which
//! resume their conversations from the store; a node frozen past its TTL and continued stops
//! its stale CLIs and never writes again; at no moment does a lease name two owners.
//!
//! Each node is this very test binary re-run as a child process (the ignored test
//! `fleet_node_process`), driven over stdin/stdout lines: `<id> <command> <args>` in,
//! `@<id> ok <json>` / `@<id> err <kind> <message>` and `@event <kind> <session> <detail>` out.

#![cfg(feature = "postgres")]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use claude_supervisor::store::{PostgresStore, SessionStore};
use claude_supervisor::{
    ClaudeOptions, ClaudeSupervisor, FleetConfig, SessionSpec, SupervisorError, SupervisorEventKind,
};
use claude_testing::fake_claude::{
    ENV_RECORD_DIR, ENV_STATE_DIR, HISTORY_PROMPT, Recording, Scenario, fake_claude_path,
};
use claude_testing::postgres::TempPostgres;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

const TTL: Duration = Duration::from_millis(1500);
const HEARTBEAT: Duration = Duration::from_millis(300);
/// The bound on one command to a node (a turn, a start).
const CALL: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// The node process.

fn options_in(dir: &Path) -> ClaudeOptions {
    let mut b = ClaudeOptions::builder()
        .cwd(dir.join("work"))
        .env("HOME", dir.join("home").into_os_string())
        .env("CLAUDE_CONFIG_DIR", dir.join("config").into_os_string())
        .env(ENV_STATE_DIR, dir.join("state").into_os_string())
        .env(ENV_RECORD_DIR, dir.join("record").into_os_string());
    for (k, v) in Scenario::new().to_env() {
        b = b.env(k, v);
    }
    b.build().expect("valid options")
}

/// A fleet node: run by the tests as a child process (`FLEET_NODE` set), never on its own.
#[test]
#[ignore = "a fleet node process, started by the fleet tests"]
fn fleet_node_process() {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let (url, node, dir) = (
        var("FLEET_URL"),
        var("FLEET_NODE"),
        PathBuf::from(var("FLEET_DIR")),
    );
    for sub in ["home", "config", "work", "state", "record"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = PostgresStore::connect(&url).await.expect("connect");
        let spec_dir = dir.clone();
        let fleet = FleetConfig::new(node.clone(), move |record| {
            Some(SessionSpec::new(record.name.clone(), options_in(&spec_dir)))
        })
        .ttl(TTL)
        .heartbeat(HEARTBEAT);
        let tree = ClaudeSupervisor::builder()
            .name(node.clone())
            .cli_path(fake_claude_path())
            .store(store)
            .fleet(fleet)
            .start()
            .await
            .expect("the node starts");
        let mut events = tree.events();
        tokio::spawn(async move {
            while let Ok(e) = events.recv().await {
                let session = e.session.unwrap_or_default();
                match e.kind {
                    SupervisorEventKind::LeaseLost { owner } => {
                        println!("@event lease_lost {session} {}", owner.unwrap_or_default())
                    }
                    SupervisorEventKind::TakenOver { from } => {
                        println!("@event taken_over {session} {from}")
                    }
                    SupervisorEventKind::StoreFailed { error } => {
                        println!("@event store_failed {session} {}", error.replace('\n', " "))
                    }
                    _ => {}
                }
            }
        });
        println!("@ready");
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let tree = tree.clone();
            let dir = dir.clone();
            tokio::spawn(async move {
                let mut parts = line.splitn(4, ' ');
                let (id, cmd) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let name = parts.next().unwrap_or("").to_owned();
                let arg = parts.next().unwrap_or("").to_owned();
                let answer = match cmd {
                    "start" => tree
                        .start_session(SessionSpec::new(name, options_in(&dir)))
                        .await
                        .map(|_| serde_json::Value::Null),
                    "ask" => match tree.session(&name) {
                        Some(h) => h
                            .ask(arg.as_str())
                            .await
                            .map(|out| serde_json::Value::String(out.text())),
                        None => Err(match tree.owner_of(&name).await {
                            Ok(Some(owner)) if Some(owner.as_str()) != tree.node_id() => {
                                SupervisorError::OwnedElsewhere { name, owner }
                            }
                            _ => SupervisorError::NotFound { name },
                        }),
                    },
                    "local" => Ok(serde_json::json!(
                        tree.list_sessions()
                            .into_iter()
                            .filter(|s| s.state == claude_supervisor::SessionState::Running)
                            .map(|s| s.name)
                            .collect::<Vec<_>>()
                    )),
                    other => Err(SupervisorError::NotFound {
                        name: format!("command {other}"),
                    }),
                };
                match answer {
                    Ok(v) => println!("@{id} ok {v}"),
                    Err(SupervisorError::OwnedElsewhere { owner, .. }) => {
                        println!("@{id} err owned_elsewhere {owner}")
                    }
                    Err(e) => println!("@{id} err error {}", e.to_string().replace('\n', " ")),
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------------------------
// The test side.

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<String>>>>;

struct Node {
    id: String,
    dir: PathBuf,
    child: tokio::process::Child,
    stdin: tokio::sync::Mutex<tokio::process::ChildStdin>,
    pending: Pending,
    next: std::sync::atomic::AtomicU64,
    events: Arc<Mutex<Vec<String>>>,
}

impl Node {
    async fn spawn(url: &str, id: &str, root: &Path) -> Node {
        let dir = root.join(id);
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "fleet_node_process", "--ignored", "--nocapture"])
            .env("FLEET_URL", url)
            .env("FLEET_NODE", id)
            .env("FLEET_DIR", &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn a node");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let pending: Pending = Arc::default();
        let events: Arc<Mutex<Vec<String>>> = Arc::default();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (p, e) = (pending.clone(), events.clone());
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if line == "@ready" {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                } else if let Some(ev) = line.strip_prefix("@event ") {
                    e.lock().unwrap().push(ev.to_owned());
                } else if let Some(rest) = line.strip_prefix('@') {
                    let (id, answer) = rest.split_once(' ').unwrap_or((rest, ""));
                    if let Ok(id) = id.parse::<u64>()
                        && let Some(tx) = p.lock().unwrap().remove(&id)
                    {
                        let _ = tx.send(answer.to_owned());
                    }
                }
            }
            // The node is gone: every pending call fails.
            p.lock().unwrap().clear();
        });
        tokio::time::timeout(CALL, ready_rx)
            .await
            .expect("the node is ready in time")
            .expect("the node started");
        Node {
            id: id.to_owned(),
            dir,
            child,
            stdin: tokio::sync::Mutex::new(stdin),
            pending,
            next: 1.into(),
            events,
        }
    }

    /// Sends a command; `Err` when the node died or did not answer in time.
    async fn call(&self, cmd: &str, name: &str, arg: &str) -> Result<String, String> {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let line = format!("{id} {cmd} {name} {arg}\n");
        if self
            .stdin
            .lock()
            .await
            .write_all(line.as_bytes())
            .await
            .is_err()
        {
            return Err("the node is gone".into());
        }
        match tokio::time::timeout(CALL, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err("the node is gone".into()),
            Err(_) => Err(format!("no answer from {} in time", self.id)),
        }
    }

    async fn ask(&self, name: &str, prompt: &str) -> Result<String, String> {
        let answer = self.call("ask", name, prompt).await?;
        match answer.strip_prefix("ok ") {
            Some(json) => Ok(serde_json::from_str::<String>(json).unwrap_or_default()),
            None => Err(answer),
        }
    }

    async fn local(&self) -> Vec<String> {
        let answer = self.call("local", "-", "").await.unwrap_or_default();
        answer
            .strip_prefix("ok ")
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default()
    }

    fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id().expect("running") as i32)
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), signal).expect("signal our own node");
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    /// The pids of every fake-claude this node started.
    fn cli_pids(&self) -> Vec<i32> {
        Recording::read(&self.dir.join("record"))
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r.pid.map(|p| p as i32))
            .collect()
    }
}

/// Samples the lease table until stopped: per session, a token never goes back, and one token
/// never names two owners (so two nodes never hold one session's lease at once).
fn lease_checker(
    store: PostgresStore,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<usize>,
) {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let mut seen: BTreeMap<String, (u64, String)> = BTreeMap::new();
        let mut samples = 0;
        loop {
            let leases = store.list_leases().await.expect("the checker lists leases");
            samples += 1;
            let mut names = std::collections::HashSet::new();
            for s in leases {
                assert!(
                    names.insert(s.lease.name.clone()),
                    "two leases of `{}` at once",
                    s.lease.name
                );
                if let Some((token, owner)) = seen.get(&s.lease.name) {
                    assert!(
                        s.lease.token >= *token,
                        "the token of `{}` went back",
                        s.lease.name
                    );
                    if s.lease.token == *token {
                        assert_eq!(
                            &s.lease.owner, owner,
                            "token {token} of `{}` names two owners",
                            s.lease.name
                        );
                    }
                }
                seen.insert(s.lease.name.clone(), (s.lease.token, s.lease.owner));
            }
            tokio::select! {
                _ = stopped.changed() => return samples,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    });
    (stop, task)
}

/// The user prompts of `name`'s conversation, as stored.
async fn stored_prompts(store: &PostgresStore, name: &str) -> Vec<String> {
    let Some(record) = store.load(name).await.unwrap() else {
        return Vec::new();
    };
    let Some(id) = record.session_id else {
        return Vec::new();
    };
    store
        .load_entries(name, &id)
        .await
        .unwrap()
        .iter()
        .filter(|f| f.file == format!("{id}.jsonl"))
        .flat_map(|f| &f.entries)
        .filter_map(|e| e.parse().ok())
        .filter(|v| v["type"] == "user")
        .filter_map(|v| v["message"]["content"].as_str().map(str::to_owned))
        .collect()
}

/// Waits until every one of `names` runs on one of `nodes` (bounded).
async fn wait_owned(nodes: &[&Node], names: &[String], bound: Duration) {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let mut running = std::collections::HashSet::new();
        for n in nodes {
            running.extend(n.local().await);
        }
        let missing: Vec<&String> = names.iter().filter(|n| !running.contains(*n)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not taken over in {bound:?}: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn history(answer: &str) -> Vec<String> {
    let json = answer
        .strip_prefix("history: ")
        .unwrap_or_else(|| panic!("not a history answer: {answer}"));
    serde_json::from_str(json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_s_sessions_resume_on_the_survivors_with_their_history() {
    let Some(pg) = TempPostgres::start() else {
        return;
    };
    let url = pg.create_database("fleet");
    let root = tempfile::tempdir().unwrap();
    let check = PostgresStore::connect(&url).await.unwrap();
    let (stop_checker, checker) = lease_checker(check.clone());
    let nodes = [
        Node::spawn(&url, "n1", root.path()).await,
        Node::spawn(&url, "n2", root.path()).await,
        Node::spawn(&url, "n3", root.path()).await,
    ];
    let names: Vec<String> = (0..30).map(|i| format!("s{i:02}")).collect();
    let starts = names.iter().enumerate().map(|(i, name)| {
        let node = &nodes[i % 3];
        async move { (name.clone(), node.call("start", name, "").await) }
    });
    for (name, started) in futures::future::join_all(starts).await {
        assert_eq!(started.as_deref(), Ok("ok null"), "start {name}");
    }
    // A first turn on every session.
    let mut succeeded: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let firsts = names.iter().enumerate().map(|(i, name)| {
        let node = &nodes[i % 3];
        let prompt = format!("first turn of {name}");
        async move { (name.clone(), prompt.clone(), node.ask(name, &prompt).await) }
    });
    for (name, prompt, answer) in futures::future::join_all(firsts).await {
        answer.unwrap_or_else(|e| panic!("{name}: {e}"));
        succeeded.entry(name).or_default().push(prompt);
    }
    // Second turns everywhere; n1 is killed while its turns are in flight.
    let seconds = names.iter().enumerate().map(|(i, name)| {
        let node = &nodes[i % 3];
        let prompt = format!("second turn of {name}");
        async move { (name.clone(), prompt.clone(), node.ask(name, &prompt).await) }
    });
    let kill = async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        nodes[0].signal(nix::sys::signal::Signal::SIGKILL);
    };
    let (answers, ()) = tokio::join!(futures::future::join_all(seconds), kill);
    let killed_at = tokio::time::Instant::now();
    for (i, (name, prompt, answer)) in answers.into_iter().enumerate() {
        match answer {
            Ok(_) => succeeded.entry(name).or_default().push(prompt),
            Err(e) => assert_eq!(i % 3, 0, "{name} on a survivor failed: {e}"),
        }
    }
    // Every turn that returned success is in the store.
    for (name, prompts) in &succeeded {
        let stored = stored_prompts(&check, name).await;
        for p in prompts {
            assert!(stored.contains(p), "{name}: `{p}` not stored: {stored:?}");
        }
    }
    // n1's sessions come back on n2 and n3, each with its full history.
    let survivors = [&nodes[1], &nodes[2]];
    wait_owned(&survivors, &names, Duration::from_secs(20)).await;
    let failover = killed_at.elapsed();
    for (i, name) in names.iter().enumerate() {
        let owner = if nodes[1].local().await.contains(name) {
            &nodes[1]
        } else {
            &nodes[2]
        };
        let other = if owner.id == "n2" {
            &nodes[2]
        } else {
            &nodes[1]
        };
        let answer = owner
            .ask(name, HISTORY_PROMPT)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let history = history(&answer);
        if i % 3 == 0 {
            // A turn of the killed node may have finished (and been stored) with its answer
            // lost on the way: it is in the history too, after every turn that returned.
            assert!(
                history.starts_with(&succeeded[name])
                    && history.len() <= 2
                    && history.iter().all(|p| p.ends_with(name.as_str())),
                "{name} (on n1): {history:?} after {:?}",
                succeeded[name]
            );
        } else {
            assert_eq!(history, succeeded[name], "{name}");
        }
        let mut stored = stored_prompts(&check, name).await;
        stored.pop_if(|p| p == HISTORY_PROMPT);
        assert_eq!(
            history, stored,
            "{name}: the resumed conversation is the stored one"
        );
        // The other survivor says who owns it (typed), so a server can forward.
        assert_eq!(
            other.ask(name, "hello").await,
            Err(format!("err owned_elsewhere {}", owner.id)),
            "{name}"
        );
    }
    let (n2, n3) = (nodes[1].local().await.len(), nodes[2].local().await.len());
    assert_eq!(n2 + n3, 30);
    assert!(
        n2.abs_diff(n3) <= 4,
        "spread over the survivors: {n2} and {n3}"
    );
    stop_checker.send_replace(true);
    let samples = checker.await.expect("the lease checker held");
    assert!(
        samples > 10,
        "the checker sampled the whole run ({samples})"
    );
    eprintln!("failover: every session answering {failover:?} after the kill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_frozen_past_its_ttl_stops_its_stale_clis_and_never_writes_again() {
    let Some(pg) = TempPostgres::start() else {
        return;
    };
    let url = pg.create_database("frozen");
    let root = tempfile::tempdir().unwrap();
    let check = PostgresStore::connect(&url).await.unwrap();
    let (stop_checker, checker) = lease_checker(check.clone());
    let n1 = Node::spawn(&url, "n1", root.path()).await;
    let names: Vec<String> = (0..3).map(|i| format!("f{i}")).collect();
    for name in &names {
        assert_eq!(n1.call("start", name, "").await.as_deref(), Ok("ok null"));
        n1.ask(name, &format!("before the freeze {name}"))
            .await
            .unwrap();
    }
    let n2 = Node::spawn(&url, "n2", root.path()).await;
    n1.signal(nix::sys::signal::Signal::SIGSTOP);
    wait_owned(&[&n2], &names, Duration::from_secs(20)).await;
    for name in &names {
        n2.ask(name, &format!("on n2 {name}")).await.unwrap();
    }
    n1.signal(nix::sys::signal::Signal::SIGCONT);
    // n1 hears that its leases were taken over, and stops its sessions.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let lost: Vec<String> = n1
            .events()
            .iter()
            .filter(|e| e.starts_with("lease_lost "))
            .cloned()
            .collect();
        if lost.len() == names.len() {
            for e in &lost {
                assert!(e.ends_with(" n2"), "owned by n2 now: {e}");
            }
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "n1 events: {:?}",
            n1.events()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its stale CLIs are gone.
    for pid in n1.cli_pids() {
        let pid = nix::unistd::Pid::from_raw(pid);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while nix::sys::signal::kill(pid, None).is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "n1's CLI {pid} still runs"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for name in &names {
        // n1 answers with the owner; it runs nothing for the session any more.
        assert_eq!(
            n1.ask(name, "a stale turn").await,
            Err("err owned_elsewhere n2".to_owned())
        );
        // No fork: one conversation, in order, the stale node's turn nowhere.
        let expected = vec![format!("before the freeze {name}"), format!("on n2 {name}")];
        assert_eq!(stored_prompts(&check, name).await, expected, "{name}");
        let answer = n2.ask(name, HISTORY_PROMPT).await.unwrap();
        assert_eq!(history(&answer), expected, "{name}");
    }
    assert!(n1.local().await.is_empty(), "n1 runs nothing");
    stop_checker.send_replace(true);
    checker.await.expect("the lease checker held");
}

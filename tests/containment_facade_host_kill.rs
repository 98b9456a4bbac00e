//! The host process dies by SIGKILL — no destructor, no shutdown recipe — and still nothing of
//! its sessions survives: not the real CLI, not a background `(sleep 300 &)`, a `setsid sleep 300`
//! or a `nohup sleep 300` left by its `Bash` tool (found by a `/proc` scan of everything whose
//! environment or cgroup points at the session). The host is this test binary re-run as a child
//! (`host_process`), running a `ClaudeSupervisor` against the real CLI and the fake Messages API.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use claude_session::SESSION_ENV;
use claude_supervisor::{ClaudeSupervisor, SessionSpec};
use claude_testing::envs::RealEnv;
use claude_testing::procs::{self, Marker};

const HOST: &str = "CONTAINMENT_FACADE_HOST";
const DETACH: &str = "RUN_TOOL: (sleep 300 &); setsid sleep 300 >/dev/null 2>&1 & nohup sleep 300 >/dev/null 2>&1 & echo detached";

fn session_marker(name: &str) -> Marker {
    Marker::env(SESSION_ENV, name).or_cgroup(format!("claude-{name}-"))
}

/// The host: a tree with one session that leaves three detached sleeps behind; prints `READY`
/// and waits to be killed. Does nothing unless run as the host.
#[test]
fn host_process() {
    let Ok(name) = std::env::var(HOST) else {
        return;
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let env = RealEnv::start()
                .await
                .expect("the real CLI (checked by the parent)");
            let tree = ClaudeSupervisor::builder()
                .cli_path(env.cli_path())
                .start()
                .await
                .unwrap();
            let options = env.options().allowed_tools(["Bash"]).build().unwrap();
            let handle = tree
                .start_session(SessionSpec::new(&name, options))
                .await
                .unwrap();
            let out = handle.ask(DETACH).await.unwrap();
            assert!(!out.is_error(), "{:?}", out.result);
            procs::wait_marked(&session_marker(&name), 3, Duration::from_secs(20), |p| {
                p.comm == "sleep"
            })
            .await
            .expect("the sleeps start");
            let pid = handle.health().await.unwrap().pid.unwrap();
            println!("READY {pid}");
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
}

#[test]
fn nothing_outlives_a_sigkill_of_the_host() {
    if std::env::var_os(HOST).is_some() || claude_testing::real_cli::real_cli_or_skip().is_none() {
        return;
    }
    let name = format!("fx-host-{}", std::process::id());
    let mut host = Command::new(std::env::current_exe().unwrap())
        .args(["host_process", "--exact", "--nocapture", "--test-threads=1"])
        .env(HOST, &name)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the host starts");
    let stdout = host.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // The harness prints `test host_process ... ` on the same line.
            if let Some((_, pid)) = line.split_once("READY ") {
                let _ = tx.send(pid.trim().parse::<i32>().ok());
                return;
            }
        }
        let _ = tx.send(None);
    });
    let cli = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Some(pid)) => pid,
        other => {
            let _ = host.kill();
            let _ = host.wait();
            panic!("the host did not get ready: {other:?}");
        }
    };
    let marker = session_marker(&name);
    let alive = procs::marked(&marker);
    assert!(
        alive.iter().filter(|p| p.comm == "sleep").count() >= 3
            && alive.iter().any(|p| p.pid == cli),
        "the CLI and its three sleeps run before the kill: {alive:#?}"
    );
    // SIGKILL: the host gets no chance to clean up.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(host.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    host.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = procs::marked(&marker);
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            panic!("processes survived the host's SIGKILL: {left:#?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

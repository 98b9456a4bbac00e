//! The host process dies by SIGKILL, under each containment mechanism this machine allows: the
//! "CLI" (a shell script) and its `(sleep &)`, `setsid`, `nohup` and double-forked descendants are
//! all gone (the keeper's lifeline hangs up; in a PID namespace the kernel's parent-death signals
//! do it too). The plain process group is held to its documented guarantee: its group dies,
//! detached processes escape (and are then removed by pid here). The host is this test binary
//! re-run as a child (`host_process`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use claude_protocol::CommandSpec;
use claude_session::{
    ContainmentKind, ContainmentPolicy, LAUNCH_ID_ENV, LaunchContext, Launcher, LocalLauncher,
    available_mechanisms,
};
use claude_testing::procs::{self, Marker};

const HOST: &str = "CONTAINMENT_HOST_MECHANISM";
const SCRIPT: &str = r#"
(sleep 301 &)
setsid sleep 302 &
nohup sleep 303 >/dev/null 2>&1 &
sh -c 'sleep 304 & exit 0'
echo ready
exec cat >/dev/null
"#;

fn marker(launch: &str) -> Marker {
    Marker::env(LAUNCH_ID_ENV, launch).or_cgroup(format!("-{launch}"))
}

/// The host: launches the script under the mechanism named in `HOST`, prints `READY <launch>`
/// once its four sleeps run, and waits to be killed.
#[test]
fn host_process() {
    let Ok(kind) = std::env::var(HOST) else {
        return;
    };
    let kind = available_mechanisms()
        .into_iter()
        .map(|(k, _)| k)
        .find(|k| k.as_str() == kind)
        .expect("a known mechanism");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let ctx =
                LaunchContext::new("host-death").containment(ContainmentPolicy::require(kind));
            let mut spec = CommandSpec::new("/bin/sh");
            spec.args = vec!["-c".into(), SCRIPT.into()];
            spec.env
                .push((LAUNCH_ID_ENV.into(), ctx.launch_id.clone().into()));
            let launched = LocalLauncher::new().launch_with(&spec, &ctx).await.unwrap();
            procs::wait_marked(&marker(&ctx.launch_id), 4, Duration::from_secs(10), |p| {
                p.comm == "sleep"
            })
            .await
            .expect("the sleeps start");
            println!("READY {}", ctx.launch_id);
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(launched);
        });
}

fn run_host(kind: ContainmentKind) -> (std::process::Child, String) {
    let mut host = Command::new(std::env::current_exe().unwrap())
        .args(["host_process", "--exact", "--nocapture", "--test-threads=1"])
        .env(HOST, kind.as_str())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the host starts");
    let stdout = host.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((_, launch)) = line.split_once("READY ") {
                let _ = tx.send(Some(launch.trim().to_owned()));
                return;
            }
        }
        let _ = tx.send(None);
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Some(launch)) => (host, launch),
        other => {
            let _ = host.kill();
            let _ = host.wait();
            panic!("{kind}: the host did not get ready: {other:?}");
        }
    }
}

#[test]
fn nothing_outlives_a_sigkill_of_the_host_under_each_mechanism() {
    if std::env::var_os(HOST).is_some() {
        return;
    }
    for (kind, available) in available_mechanisms() {
        if let Err(why) = available {
            eprintln!("SKIPPED: host death under {kind}: not available here: {why}");
            continue;
        }
        let (mut host, launch) = run_host(kind);
        let marker = marker(&launch);
        assert!(
            procs::marked(&marker)
                .iter()
                .filter(|p| p.comm == "sleep")
                .count()
                >= 4,
            "{kind}: the sleeps run before the kill"
        );
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(host.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        host.wait().unwrap();
        let wait = if kind.removes_detached() { 15 } else { 2 };
        let deadline = Instant::now() + Duration::from_secs(wait);
        let left = loop {
            let left = procs::marked(&marker);
            if left.is_empty() || Instant::now() >= deadline {
                break left;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if kind.removes_detached() {
            assert!(
                left.is_empty(),
                "{kind}: processes survived the host's SIGKILL: {left:#?}"
            );
        } else {
            assert!(
                left.iter().all(|p| p.comm == "sleep"),
                "{kind}: only detached sleeps may escape a process group: {left:#?}"
            );
            for p in left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p.pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

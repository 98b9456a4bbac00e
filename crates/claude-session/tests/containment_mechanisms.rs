//! Every containment mechanism, through the local launcher, on a shell script that plays the CLI
//! and leaves four kinds of descendants behind: a `(sleep &)` orphan, a `setsid` one, a `nohup`
//! one and a double-forked one. For each mechanism this machine allows (the others are skipped
//! loudly; `CLAUDE_REQUIRE_CONTAINMENT=kind,kind` makes those required here fail instead), and
//! for each way a launch ends — the CLI exits, the containment is killed, SIGTERM, the last
//! handle is dropped — nothing of it is left, found by a `/proc` scan of the launch's marker
//! (environment variable or cgroup). The plain process group is held to its documented, weaker
//! guarantee: its group dies, detached processes escape.

use std::time::Duration;

use claude_protocol::CommandSpec;
use claude_session::{
    ContainmentKind, ContainmentPolicy, GroupSignal, LAUNCH_ID_ENV, LaunchContext, LaunchedProcess,
    Launcher, LocalLauncher, available_mechanisms,
};
use claude_testing::procs::{self, Marker};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The "CLI": starts four descendants that outlive a group kill, says `ready`, and exits when
/// its stdin closes.
const SCRIPT: &str = r#"
(sleep 301 &)
setsid sleep 302 &
nohup sleep 303 >/dev/null 2>&1 &
sh -c 'sleep 304 & exit 0'
echo ready
cat >/dev/null
exit 7
"#;

const SLEEPS: usize = 4;

fn spec(launch: &str) -> CommandSpec {
    let mut spec = CommandSpec::new("/bin/sh");
    spec.args = vec!["-c".into(), SCRIPT.into()];
    spec.env.push((LAUNCH_ID_ENV.into(), launch.into()));
    spec
}

fn marker(ctx: &LaunchContext) -> Marker {
    Marker::env(LAUNCH_ID_ENV, ctx.launch_id.clone()).or_cgroup(format!("-{}", ctx.launch_id))
}

/// The mechanisms to test: those available, after a loud line for each that is not.
fn mechanisms() -> Vec<ContainmentKind> {
    let required = std::env::var("CLAUDE_REQUIRE_CONTAINMENT").unwrap_or_default();
    let mut out = Vec::new();
    for (kind, available) in available_mechanisms() {
        match available {
            Ok(()) => out.push(kind),
            Err(why) => {
                assert!(
                    !required.split(',').any(|r| r == kind.as_str()),
                    "containment {kind} is required here but not available: {why}"
                );
                eprintln!(
                    "\n=====================================================\n\
                     SKIPPED: containment {kind} is not available here: {why}\n\
                     =====================================================\n"
                );
            }
        }
    }
    out
}

async fn launch(kind: ContainmentKind) -> (LaunchedProcess, LaunchContext) {
    let ctx = LaunchContext::new("mechanisms").containment(ContainmentPolicy::require(kind));
    let launched = LocalLauncher::new()
        .launch_with(&spec(&ctx.launch_id), &ctx)
        .await
        .unwrap_or_else(|e| panic!("{kind}: launch failed: {e}"));
    (launched, ctx)
}

/// Reads `ready`, then waits until all four sleeps run.
async fn until_ready(kind: ContainmentKind, launched: &mut LaunchedProcess, ctx: &LaunchContext) {
    let mut stdout = BufReader::new(&mut launched.stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), stdout.next_line())
        .await
        .expect("ready in time")
        .expect("stdout");
    assert_eq!(line.as_deref(), Some("ready"), "{kind}");
    let sleeps = procs::wait_marked(&marker(ctx), SLEEPS, Duration::from_secs(10), |p| {
        p.comm == "sleep"
    })
    .await
    .unwrap_or_else(|found| panic!("{kind}: not all sleeps started: {found:#?}"));
    assert_eq!(sleeps.len(), SLEEPS, "{kind}: {sleeps:#?}");
}

/// After the launch ended: nothing of it is left (for a process group: its group is gone; the
/// detached survivors, which we started, are then removed by pid).
async fn assert_all_gone(kind: ContainmentKind, ctx: &LaunchContext, how: &str) {
    let wait = if kind.removes_detached() { 10 } else { 2 };
    let left = procs::wait_none_marked(&marker(ctx), Duration::from_secs(wait)).await;
    if kind.removes_detached() {
        if let Err(left) = left {
            panic!("{kind}, {how}: processes survived: {left:#?}");
        }
        return;
    }
    let left = left.expect_err("a process group does not hold detached processes");
    assert!(
        left.iter().all(|p| p.comm == "sleep"),
        "{kind}, {how}: only detached sleeps may escape: {left:#?}"
    );
    for p in left {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_exiting_takes_everything_with_it() {
    for kind in mechanisms() {
        let (mut launched, ctx) = launch(kind).await;
        let tree = launched.containment();
        assert_eq!(tree.kind(), kind);
        until_ready(kind, &mut launched, &ctx).await;
        let usage = tree.usage();
        if kind != ContainmentKind::ProcessGroup {
            assert!(
                usage.processes.is_some_and(|n| n > SLEEPS),
                "{kind}: the tree's processes are counted: {usage:?}"
            );
        }
        assert!(
            usage.memory_bytes.is_some_and(|b| b > 0),
            "{kind}: {usage:?}"
        );
        drop(launched.stdin);
        let status = tokio::time::timeout(Duration::from_secs(20), launched.exit)
            .await
            .expect("exits")
            .unwrap();
        assert_eq!(status.code(), Some(7), "{kind}: the CLI's own status");
        assert_all_gone(kind, &ctx, "the CLI exited").await;
        if kind.removes_detached() {
            assert_eq!(tree.is_empty(), Some(true), "{kind}");
        }
        let cgroups = tree.report().cgroups;
        drop((tree, launched.signaller));
        for dir in cgroups {
            let mut tries = 0;
            while dir.exists() && tries < 300 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                tries += 1;
            }
            assert!(!dir.exists(), "{kind}: cgroup {} removed", dir.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_takes_everything() {
    for kind in mechanisms() {
        let (mut launched, ctx) = launch(kind).await;
        let tree = launched.containment();
        until_ready(kind, &mut launched, &ctx).await;
        tree.signal(GroupSignal::Kill).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(20), launched.exit)
            .await
            .expect("exits")
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{kind}: {status:?}");
        assert_all_gone(kind, &ctx, "killed").await;
        tree.wait_gone(Duration::from_secs(5)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_cli_and_the_rest_follows() {
    for kind in mechanisms() {
        let (mut launched, ctx) = launch(kind).await;
        until_ready(kind, &mut launched, &ctx).await;
        launched
            .containment()
            .signal(GroupSignal::Terminate)
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(20), launched.exit)
            .await
            .expect("exits")
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(15), "{kind}: {status:?}");
        assert_all_gone(kind, &ctx, "SIGTERM").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_takes_everything() {
    for kind in mechanisms() {
        let (mut launched, ctx) = launch(kind).await;
        until_ready(kind, &mut launched, &ctx).await;
        let LaunchedProcess {
            signaller, exit, ..
        } = launched;
        drop(signaller);
        let status = tokio::time::timeout(Duration::from_secs(20), exit)
            .await
            .expect("exits")
            .unwrap();
        assert!(!status.success(), "{kind}: {status:?}");
        assert_all_gone(kind, &ctx, "last handle dropped").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_machine_runs_a_mechanism_that_removes_detached_processes() {
    let here = mechanisms();
    assert!(
        here.iter().any(|k| k.removes_detached()),
        "no mechanism here removes detached processes: {:?}",
        available_mechanisms()
    );
    // The automatic policy picks the first available one.
    let ctx = LaunchContext::new("auto");
    let launched = LocalLauncher::new()
        .launch_with(&spec(&ctx.launch_id), &ctx)
        .await
        .unwrap();
    assert_eq!(launched.containment().kind(), here[0]);
    launched.containment().kill().unwrap();
    launched.exit.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pid_namespace_has_its_own_proc() {
    if !mechanisms().contains(&ContainmentKind::PidNamespace) {
        return;
    }
    let ctx = LaunchContext::new("own-proc")
        .containment(ContainmentPolicy::require(ContainmentKind::PidNamespace));
    let mut spec = CommandSpec::new("/bin/sh");
    // `read` is a builtin: /proc/self is the shell itself, as the mounted procfs numbers it.
    spec.args = vec![
        "-c".into(),
        "read -r own rest < /proc/self/stat; echo \"$$ $own\"".into(),
    ];
    let mut launched = LocalLauncher::new().launch_with(&spec, &ctx).await.unwrap();
    let mut stdout = BufReader::new(&mut launched.stdout).lines();
    let line = stdout.next_line().await.unwrap().unwrap();
    assert_eq!(
        line, "2 2",
        "the CLI is pid 2 of its namespace, and /proc agrees"
    );
    launched.exit.await.unwrap();
}

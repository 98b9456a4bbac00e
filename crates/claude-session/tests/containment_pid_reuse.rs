//! Only what a launch provably owns is ever signalled. After a launch has ended and been reaped,
//! its pids are free: this test makes the kernel hand them out again (through
//! `/proc/sys/kernel/ns_last_pid`) to unrelated processes that lead their own process groups —
//! one with the old keeper's pid, one with the old CLI's pid (the old process group id) — and
//! then drives the old containment through everything a supervisor does with a stale handle:
//! `signal(Terminate)`, `signal(Kill)`, `wait_gone`, dropping the last handle. The impostors
//! live on: the containment signals through pidfds and the launch's own cgroups, never a bare
//! pid. Skipped loudly where `ns_last_pid` is not writable (the guarantee then rests on the
//! construction alone).

use std::process::{Child, Command};
use std::time::Duration;

use claude_protocol::CommandSpec;
use claude_session::{
    ContainmentKind, ContainmentPolicy, GroupSignal, LaunchContext, Launcher, LocalLauncher,
    available_mechanisms,
};
use claude_testing::procs;

const NS_LAST_PID: &str = "/proc/sys/kernel/ns_last_pid";

/// Starts `sleep 300` as the leader of its own process group with exactly `pid`, if the kernel
/// can be made to hand it out (others may take it first: retried).
fn impostor_with_pid(pid: i32) -> Option<Child> {
    use std::os::unix::process::CommandExt;
    for _ in 0..200 {
        if std::fs::write(NS_LAST_PID, (pid - 1).to_string()).is_err() {
            return None;
        }
        let child = Command::new("sleep")
            .arg("300")
            .process_group(0)
            .spawn()
            .ok()?;
        if child.id() as i32 == pid {
            return Some(child);
        }
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
    }
    None
}

fn alive(child: &Child) -> bool {
    procs::info(child.id() as i32).is_some_and(|p| !p.is_zombie())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_pid_is_never_signalled() {
    if std::fs::OpenOptions::new()
        .write(true)
        .open(NS_LAST_PID)
        .is_err()
    {
        eprintln!(
            "\n=====================================================\n\
             SKIPPED: {NS_LAST_PID} is not writable here: pid reuse cannot be forced\n\
             =====================================================\n"
        );
        return;
    }
    for (kind, available) in available_mechanisms() {
        if available.is_err() {
            continue;
        }
        let ctx = LaunchContext::new("reuse").containment(ContainmentPolicy::require(kind));
        let mut spec = CommandSpec::new("/bin/sh");
        spec.args = vec!["-c".into(), "sleep 300 & exec cat".into()];
        let launched = LocalLauncher::new().launch_with(&spec, &ctx).await.unwrap();
        let tree = launched.containment();
        let cli = launched.pid.expect("a pid") as i32;
        let keeper = if kind == ContainmentKind::PidNamespace {
            // The CLI's parent is the namespace's init; the keeper is the init's parent.
            let init = procs::info(cli).unwrap().ppid;
            procs::info(init).unwrap().ppid
        } else {
            procs::info(cli).unwrap().ppid
        };
        assert_eq!(
            procs::info(keeper).map(|p| p.ppid),
            Some(std::process::id() as i32),
            "{kind}: the keeper is our child"
        );
        // End the launch, and let the keeper be reaped: every pid of it is free now.
        tree.kill().unwrap();
        launched.exit.await.unwrap();
        tree.wait_gone(Duration::from_secs(5)).await.unwrap();
        assert!(procs::info(keeper).is_none() && procs::info(cli).is_none());

        let mut impostors: Vec<Child> = [keeper, cli]
            .into_iter()
            .filter_map(impostor_with_pid)
            .collect();
        assert!(
            !impostors.is_empty(),
            "{kind}: could not get the kernel to reuse pid {keeper} or {cli}"
        );
        eprintln!(
            "{kind}: pids {:?} reused by unrelated process-group leaders",
            impostors.iter().map(Child::id).collect::<Vec<_>>()
        );
        // Everything a supervisor may do with a stale handle.
        tree.signal(GroupSignal::Terminate).unwrap();
        tree.signal(GroupSignal::Kill).unwrap();
        tree.wait_gone(Duration::from_millis(200)).await.unwrap();
        assert_eq!(
            tree.is_empty(),
            Some(true),
            "{kind}: the old launch is gone"
        );
        drop(tree);
        drop(launched.signaller);
        tokio::time::sleep(Duration::from_millis(300)).await;
        for imp in &impostors {
            assert!(
                alive(imp),
                "{kind}: the unrelated process {} (a reused pid) was signalled",
                imp.id()
            );
        }
        for imp in &mut impostors {
            let _ = imp.kill();
            let _ = imp.wait();
        }
    }
}

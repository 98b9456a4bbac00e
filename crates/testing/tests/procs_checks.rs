//! The `/proc` checks see a process group and its descendants, name survivors and zombies with
//! pid, state and cmdline, and report an emptied group.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use claude_testing::procs;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

#[test]
fn group_survivors_are_named_until_killed() {
    // A shell in its own group with a background sleeper and a foreground one.
    let mut child = Command::new("sh")
        .args(["-c", "sleep 300 & exec sleep 301"])
        .process_group(0)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let pgid = child.id() as i32;

    // Wait (bounded) until both sleepers are visible in the group.
    let mut members = Vec::new();
    for _ in 0..500 {
        members = procs::in_group(pgid);
        if members.len() == 2 && members.iter().all(|p| p.comm == "sleep") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(
        members.iter().any(|p| p.cmdline == "sleep 300"),
        "{members:?}"
    );
    assert!(
        members
            .iter()
            .any(|p| p.pid == pgid && p.cmdline == "sleep 301")
    );
    let descendants = procs::descendants(pgid);
    assert!(descendants.iter().all(|p| p.pid != pgid));
    assert!(
        procs::children(std::process::id() as i32)
            .iter()
            .any(|p| p.pid == pgid)
    );

    let err = procs::check_no_survivors(pgid).expect_err("the group is alive");
    for p in &members {
        assert!(err.contains(&format!("pid {}", p.pid)), "{err}");
    }
    assert!(
        err.contains("sleep 300") && err.contains("sleep 301"),
        "{err}"
    );
    assert!(
        err.contains("S (sleeping)") || err.contains("R (running)"),
        "{err}"
    );
    assert!(procs::wait_group_empty(pgid, Duration::from_millis(50)).is_err());

    killpg(Pid::from_raw(pgid), Signal::SIGKILL).expect("kill the group");
    child.wait().expect("reap");
    // The background sleeper is reparented and reaped by init; wait for it.
    procs::wait_group_empty(pgid, Duration::from_secs(10)).expect("group empties");
    procs::assert_no_survivors(pgid);
    procs::assert_pids_gone(&members.iter().map(|p| p.pid).collect::<Vec<_>>());
}

#[test]
fn unreaped_child_is_reported_as_zombie() {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id() as i32;
    let mut state = None;
    for _ in 0..500 {
        state = procs::info(pid).map(|p| p.state);
        if state == Some('Z') {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(state, Some('Z'), "an exited, unreaped child is a zombie");
    let err = procs::check_no_zombies().expect_err("a zombie exists");
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    assert!(err.contains("Z (zombie)"), "{err}");
    assert!(
        err.contains("[true]"),
        "zombies have no cmdline, the comm is shown: {err}"
    );
    assert!(procs::zombie_children().iter().any(|p| p.pid == pid));
    assert!(
        procs::check_pids_gone(&[pid]).is_err(),
        "a zombie still exists"
    );

    child.wait().expect("reap");
    assert!(procs::info(pid).is_none(), "reaped");
    procs::wait_pids_gone(&[pid], Duration::from_secs(1)).expect("gone");
}

//! The stubborn-grandchild fault: a child of fake-claude in its process group that ignores
//! SIGTERM; only SIGKILL to the group removes it (checked through /proc).

#[path = "fake_claude_common.rs"]
mod common;

use std::time::{Duration, Instant};

use claude_testing::fake_claude::{Fault, Scenario};
use common::{Env, Fake, PATIENCE, alive, live_in_group};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

fn grandchild_pid(fake: &Fake) -> i32 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let err = fake.stderr();
        if let Some(pid) = err
            .lines()
            .find_map(|l| l.strip_prefix("fake-claude: grandchild pid "))
            .and_then(|p| p.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no grandchild pid on stderr: {err}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_gone(pid: i32) {
    let deadline = Instant::now() + PATIENCE;
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "process {pid} survived SIGKILL of its group"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn grandchild_survives_sigterm_of_the_group_but_not_sigkill() {
    let env = Env::new();
    let scenario = Scenario::new().fault(Fault::StubbornGrandchild {
        fake_ignores_sigterm: false,
    });
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.user("hi");
    fake.until_result();
    let gc = grandchild_pid(&fake);
    assert!(
        live_in_group(fake.pgid).iter().any(|(p, _)| *p == gc),
        "grandchild is in the group"
    );

    killpg(Pid::from_raw(fake.pgid), Signal::SIGTERM).expect("SIGTERM group");
    assert_eq!(fake.wait().code(), Some(143));
    // fake-claude is gone; the grandchild ignored SIGTERM and is still in the group.
    assert!(alive(gc));
    assert!(live_in_group(fake.pgid).iter().any(|(p, _)| *p == gc));

    killpg(Pid::from_raw(fake.pgid), Signal::SIGKILL).expect("SIGKILL group");
    wait_gone(gc);
    assert!(live_in_group(fake.pgid).is_empty());
}

#[test]
fn grandchild_and_fake_both_ignoring_sigterm() {
    let env = Env::new();
    let scenario = Scenario::new().fault(Fault::StubbornGrandchild {
        fake_ignores_sigterm: true,
    });
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.user("hi");
    fake.until_result();
    let gc = grandchild_pid(&fake);

    killpg(Pid::from_raw(fake.pgid), Signal::SIGTERM).expect("SIGTERM group");
    fake.user("after SIGTERM");
    let frames = fake.until_result();
    assert_eq!(
        frames.last().expect("r")["result"],
        "fake reply to: after SIGTERM"
    );
    assert!(fake.exited().is_none());
    assert!(alive(gc));

    killpg(Pid::from_raw(fake.pgid), Signal::SIGKILL).expect("SIGKILL group");
    assert!(fake.wait().code().is_none(), "killed by a signal");
    wait_gone(gc);
    assert!(live_in_group(fake.pgid).is_empty());
}

#[test]
fn grandchild_keyed_on_a_turn_starts_at_that_turn() {
    let env = Env::new();
    let scenario = Scenario::new().fault_on_turn(
        2,
        Fault::StubbornGrandchild {
            fake_ignores_sigterm: false,
        },
    );
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.user("one");
    fake.until_result();
    let own = live_in_group(fake.pgid);
    assert_eq!(own.len(), 1, "only fake-claude before turn 2: {own:?}");
    fake.user("two");
    fake.until_result();
    let gc = grandchild_pid(&fake);
    assert!(alive(gc));
}

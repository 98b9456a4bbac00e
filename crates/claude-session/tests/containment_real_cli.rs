//! The real CLI (against the fake Messages API, in a sandbox) runs a scripted `Bash` tool call
//! that leaves a background `(sleep 300 &)`, a `setsid sleep 300` and a `nohup sleep 300`
//! behind. Under every mechanism this machine allows that removes detached processes, none of
//! them is alive after the session stops, and none after the CLI is SIGKILLed — found by a
//! `/proc` scan of everything whose environment or cgroup points at the session. The health
//! report names the mechanism and counts the whole tree.

#[path = "support/common.rs"]
mod support;

use std::time::Duration;

use claude_session::{
    ContainmentKind, ContainmentPolicy, SESSION_ENV, Session, SessionError, available_mechanisms,
};
use claude_testing::procs::{self, Marker};
use support::{RealEnv, RealEnvExt, pid_of};

const DETACH: &str = "RUN_TOOL: (sleep 300 &); setsid sleep 300 >/dev/null 2>&1 & nohup sleep 300 >/dev/null 2>&1 & echo detached";

fn marker(name: &str) -> Marker {
    Marker::env(SESSION_ENV, name).or_cgroup(format!("claude-{name}-"))
}

fn removing_mechanisms() -> Vec<ContainmentKind> {
    available_mechanisms()
        .into_iter()
        .filter_map(|(kind, ok)| match ok {
            Ok(()) if kind.removes_detached() => Some(kind),
            Ok(()) => None,
            Err(why) => {
                eprintln!("SKIPPED with the real CLI: containment {kind} is not available: {why}");
                None
            }
        })
        .collect()
}

async fn session_with_sleeps(env: &RealEnv, name: &str, kind: ContainmentKind) -> Session {
    let options = env.options().allowed_tools(["Bash"]).build().unwrap();
    let config = env
        .config(name, options)
        .containment(ContainmentPolicy::require(kind))
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let out = session
        .query(DETACH)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!out.is_error(), "{kind}: {:?}", out.result);
    let sleeps = procs::wait_marked(&marker(name), 3, Duration::from_secs(20), |p| {
        p.comm == "sleep"
    })
    .await
    .unwrap_or_else(|found| panic!("{kind}: the three sleeps did not all start: {found:#?}"));
    assert_eq!(sleeps.len(), 3, "{kind}: {sleeps:#?}");
    // Detached for real: at least one of them has left the CLI's process group.
    let pgid = pid_of(&session).await;
    assert!(
        sleeps.iter().any(|p| p.pgid != pgid),
        "{kind}: a sleep left the group: {sleeps:#?}"
    );
    let health = session.health().await.unwrap();
    let report = health.containment.expect("a containment report");
    assert_eq!(report.mechanism, kind);
    assert!(
        report.usage.processes.is_some_and(|n| n >= 4),
        "{kind}: the CLI and its three sleeps are counted: {report:?}"
    );
    assert!(
        report.usage.memory_bytes.is_some_and(|b| b > 0),
        "{report:?}"
    );
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_tool_processes_do_not_outlive_a_stop() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    for kind in removing_mechanisms() {
        let name = format!("stop-{}", kind.as_str().replace('_', "-"));
        let session = session_with_sleeps(&env, &name, kind).await;
        let tree = session.health().await.unwrap().process_tree.unwrap();
        session.stop().await.unwrap();
        if let Err(left) = procs::wait_none_marked(&marker(&name), Duration::from_secs(10)).await {
            panic!("{kind}: processes outlived the stop: {left:#?}");
        }
        tree.wait_gone(Duration::from_secs(5)).await.unwrap();
        assert_eq!(tree.is_empty(), Some(true));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_tool_processes_die_with_a_killed_cli() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let kind = removing_mechanisms()[0];
    let session = session_with_sleeps(&env, "sigkill", kind).await;
    let pid = pid_of(&session).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    support::wait_stopped(&session).await;
    if let Err(left) = procs::wait_none_marked(&marker("sigkill"), Duration::from_secs(10)).await {
        panic!("{kind}: processes outlived the CLI's SIGKILL: {left:#?}");
    }
    match session.query("anyone?").await {
        Err(SessionError::NotRunning { .. }) => {}
        other => panic!("the session is gone: {other:?}"),
    }
}

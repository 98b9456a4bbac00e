//! A session's memory limit covers everything it runs, the tools included. A `Bash` tool call of
//! the real CLI that allocates 400 MB with `python3 -c` goes past a 300 MB limit (the CLI alone
//! stays well under it): the session is restarted with its conversation, an event names the
//! limit, and another session of the same tree is untouched. Once with the limit enforced by the
//! session's memory cgroup (the kernel's OOM killer fires, the session notices), once checked by
//! sampling the tree (no accounting cgroups).

use std::time::Duration;

use claude_session::{ContainmentPolicy, MemoryEnforcement, SessionEventKind};
use claude_supervisor::{ClaudeSupervisor, SessionSpec, SupervisorEventKind};
use claude_testing::envs::RealEnv;
use claude_testing::procs;

const LIMIT: u64 = 300 * 1024 * 1024;
const HOG: &str =
    "RUN_TOOL: /usr/bin/python3 -c 'import time; x = b\"a\" * (400 << 20); time.sleep(60)'";

async fn limit_restarts_the_session(accounting_cgroups: bool, name: &str) {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .start()
        .await
        .unwrap();
    let options = env.options().allowed_tools(["Bash"]).build().unwrap();
    let spec = SessionSpec::new(name, options.clone()).configure(move |b| {
        b.memory_limit(LIMIT)
            .memory_check_interval("200ms")
            .containment(ContainmentPolicy::auto().accounting_cgroups(accounting_cgroups))
    });
    let hog = tree.start_session(spec).await.unwrap();
    let calm = tree
        .start_session(SessionSpec::new(format!("{name}-calm"), options))
        .await
        .unwrap();
    hog.ask("my name is Ada").await.unwrap();
    let id = hog.session_id().unwrap();
    let report = hog.health().await.unwrap().containment.unwrap();
    assert_eq!(report.memory_limit_bytes, Some(LIMIT));
    let expected = if accounting_cgroups && !report.cgroups.is_empty() {
        MemoryEnforcement::Cgroup
    } else {
        MemoryEnforcement::Checked
    };
    assert_eq!(
        report.memory_limit_enforced_by,
        Some(expected),
        "{report:?}"
    );
    let before = report.usage.memory_bytes.unwrap();
    assert!(
        before < LIMIT,
        "the CLI alone is under the limit: {report:?}"
    );
    let calm_pid = calm.health().await.unwrap().pid.unwrap() as i32;
    let old_pid = hog.health().await.unwrap().pid.unwrap() as i32;

    let mut events = tree.events();
    // The turn may end either way (the tool killed, or the CLI stopped under it).
    let _ = hog.query(HOG).await.unwrap().collect().await;
    let exceeded = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let ev = events.recv().await.expect("events");
            if ev.session.as_deref() == Some(name)
                && let SupervisorEventKind::Session(SessionEventKind::MemoryLimitExceeded {
                    limit_bytes,
                    usage_bytes,
                    enforced_by,
                }) = ev.kind
            {
                return (limit_bytes, usage_bytes, enforced_by);
            }
        }
    })
    .await
    .expect("a memory-limit event");
    assert_eq!(exceeded.0, LIMIT, "the event names the limit");
    assert_eq!(exceeded.2, expected.as_str(), "{exceeded:?}");
    assert!(exceeded.1 >= LIMIT, "{exceeded:?}");

    // Restarted, with its conversation.
    let out = hog.ask("what is my name?").await.unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    assert_eq!(out.session_id(), id, "the conversation is kept");
    let new_pid = hog.health().await.unwrap().pid.unwrap() as i32;
    assert_ne!(new_pid, old_pid, "a new CLI");
    assert!(procs::info(old_pid).is_none(), "the old CLI is gone");
    // The other session is untouched.
    assert_eq!(calm.health().await.unwrap().pid.unwrap() as i32, calm_pid);
    assert_eq!(calm.generation(), Some(1));
    assert!(!calm.ask("still fine?").await.unwrap().is_error());
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_past_the_limit_restarts_the_session_cgroup_enforced() {
    limit_restarts_the_session(true, "fx-mem-cgroup").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_past_the_limit_restarts_the_session_checked() {
    limit_restarts_the_session(false, "fx-mem-checked").await;
}

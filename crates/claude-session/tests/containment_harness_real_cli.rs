//! The real-CLI test harness (`CliProcess`) leaves nothing behind either: a `Bash` tool call
//! that detaches a `(sleep 300 &)`, a `setsid sleep 300` and a `nohup sleep 300` from the CLI's
//! process group is cleaned up by `shutdown` (which reports them as leftovers) through the
//! harness's own environment marker.

use std::time::Duration;

use claude_testing::fake_api::{FakeApi, Reply};
use claude_testing::procs;
use claude_testing::real_cli::{Sandbox, result_of};

const STEP: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_removes_detached_tool_processes() {
    let cli = claude_testing::require_real_cli!();
    let api = FakeApi::start().await;
    let sandbox = Sandbox::new().expect("sandbox");
    api.on_user_text(
        "detach them",
        Reply::bash(
            "(sleep 300 &); setsid sleep 300 >/dev/null 2>&1 & nohup sleep 300 >/dev/null 2>&1 & echo detached",
        ),
    );
    let mut proc = cli
        .spawn_stream_json(&sandbox, &api, &["--permission-mode", "bypassPermissions"])
        .expect("spawn the real CLI");
    proc.initialize(STEP).await.expect("initialize");
    proc.send_user_text("detach them").await.expect("send");
    let turn = proc.read_turn(STEP).await.expect("the turn");
    assert_eq!(result_of(&turn).unwrap()["is_error"], false);
    let marker = proc.marker();
    let sleeps = procs::wait_marked(&marker, 3, Duration::from_secs(20), |p| p.comm == "sleep")
        .await
        .unwrap_or_else(|found| panic!("the sleeps did not start: {found:#?}"));
    assert!(
        sleeps.iter().any(|p| p.pgid != proc.pgid()),
        "at least one left the CLI's group: {sleeps:#?}"
    );
    let shutdown = proc
        .shutdown(Duration::from_secs(5))
        .await
        .expect("shutdown");
    for sleep in &sleeps {
        assert!(
            shutdown.leftovers.iter().any(|p| p.pid == sleep.pid),
            "{} reported as a leftover: {:#?}",
            sleep.pid,
            shutdown.leftovers
        );
    }
    if let Err(left) = procs::wait_none_marked(&marker, Duration::from_secs(10)).await {
        panic!("the harness left processes behind: {left:#?}");
    }
}

//! Through the facade, with the real CLI and the fake Messages API: a scripted `Bash` tool call
//! leaves a background `(sleep 300 &)`, a `setsid sleep 300` and a `nohup sleep 300` behind, and
//! none of them is alive — by a `/proc` scan of everything whose environment or cgroup points at
//! the session — after the tree's `shutdown()`, after `terminate_session`, after a restart that
//! follows a SIGKILL of the CLI (the restarted session keeps its conversation), and after
//! hibernation (the next query resumes it).

use std::time::Duration;

use claude_session::{LAUNCH_ID_ENV, SESSION_ENV};
use claude_supervisor::{ClaudeSupervisor, SessionHandle, SessionSpec, SessionState};
use claude_testing::envs::RealEnv;
use claude_testing::procs::{self, Marker};

const DETACH: &str = "RUN_TOOL: (sleep 300 &); setsid sleep 300 >/dev/null 2>&1 & nohup sleep 300 >/dev/null 2>&1 & echo detached";

/// Everything of session `name`, by its environment marker or its cgroups.
fn session_marker(name: &str) -> Marker {
    Marker::env(SESSION_ENV, name).or_cgroup(format!("claude-{name}-"))
}

fn spec(env: &RealEnv, name: &str) -> SessionSpec {
    SessionSpec::new(name, env.options().allowed_tools(["Bash"]).build().unwrap())
}

async fn tree(env: &RealEnv) -> ClaudeSupervisor {
    ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .start()
        .await
        .expect("tree starts")
}

/// Runs the tool call and waits for its three sleeps; returns the CLI's launch marker.
async fn detach_three(handle: &SessionHandle) -> Marker {
    let out = handle.ask(DETACH).await.unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    let sleeps = procs::wait_marked(
        &session_marker(handle.name()),
        3,
        Duration::from_secs(20),
        |p| p.comm == "sleep",
    )
    .await
    .unwrap_or_else(|found| panic!("the three sleeps did not all start: {found:#?}"));
    assert_eq!(sleeps.len(), 3, "{sleeps:#?}");
    let pid = handle.health().await.unwrap().pid.unwrap() as i32;
    let launch = procs::env_var(pid, LAUNCH_ID_ENV).expect("the CLI carries its launch id");
    Marker::env(LAUNCH_ID_ENV, launch.clone()).or_cgroup(format!("-{launch}"))
}

async fn assert_none_left(marker: &Marker, after: &str) {
    if let Err(left) = procs::wait_none_marked(marker, Duration::from_secs(15)).await {
        panic!("processes survived {after}: {left:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_outlives_the_trees_shutdown() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let tree = tree(&env).await;
    let handle = tree.start_session(spec(&env, "fx-shutdown")).await.unwrap();
    detach_three(&handle).await;
    tree.shutdown().await;
    assert_none_left(&session_marker("fx-shutdown"), "shutdown()").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_outlives_terminate_session() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let tree = tree(&env).await;
    let handle = tree.start_session(spec(&env, "fx-term")).await.unwrap();
    let other = tree
        .start_session(spec(&env, "fx-bystander"))
        .await
        .unwrap();
    detach_three(&handle).await;
    let bystander = other.health().await.unwrap().pid.unwrap() as i32;
    tree.terminate_session("fx-term").await.unwrap();
    assert_none_left(&session_marker("fx-term"), "terminate_session").await;
    assert!(
        procs::info(bystander).is_some_and(|p| !p.is_zombie()),
        "another session is untouched"
    );
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_of_a_killed_cli_outlives_its_restart() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let tree = tree(&env).await;
    let handle = tree.start_session(spec(&env, "fx-kill")).await.unwrap();
    handle.ask("my name is Ada").await.unwrap();
    let id = handle.session_id().unwrap();
    let first = detach_three(&handle).await;
    let pid = handle.health().await.unwrap().pid.unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The handle waits for the restarted instance, which resumes the conversation.
    let out = handle.ask("what is my name?").await.unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    assert_eq!(out.session_id(), id, "the conversation is kept");
    assert_none_left(&first, "the restart after a SIGKILL of the CLI").await;
    let new_pid = handle.health().await.unwrap().pid.unwrap() as i32;
    assert_ne!(new_pid, pid);
    tree.shutdown().await;
    assert_none_left(&session_marker("fx-kill"), "shutdown()").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_outlives_hibernation() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let tree = tree(&env).await;
    let handle = tree
        .start_session(spec(&env, "fx-sleepy").idle_timeout(Duration::from_millis(1500)))
        .await
        .unwrap();
    handle.ask("remember the number 42").await.unwrap();
    let id = handle.session_id().unwrap();
    detach_three(&handle).await;
    for _ in 0..400 {
        if handle.state() == SessionState::Hibernated {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(handle.state(), SessionState::Hibernated);
    assert_none_left(&session_marker("fx-sleepy"), "hibernation").await;
    let out = handle.ask("which number?").await.unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    assert_eq!(out.session_id(), id);
    tree.shutdown().await;
    assert_none_left(&session_marker("fx-sleepy"), "shutdown()").await;
}

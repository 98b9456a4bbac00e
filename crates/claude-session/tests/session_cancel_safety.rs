//! Every `# Cancel safety` claim of the session's public async API, tested.

#[path = "support/common.rs"]
mod support;

use std::time::Duration;

use claude_session::{QueuePolicy, Session, SessionError};
use claude_testing::fake_claude::{Fault, Scenario, Turn};
use futures::StreamExt;
use support::{FakeEnv, pid_of, stop_and_check};

fn slow_first_turn() -> Scenario {
    Scenario::new().turn(Turn::text("slow").slow(20, 100))
}

/// `Session::query`: dropped while waiting for room in the queue, it queued nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_dropped_while_waiting_for_room_queues_nothing() {
    let env = FakeEnv::new();
    let config = env
        .config("wait-room", &slow_first_turn())
        .queue(1, QueuePolicy::Wait)
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    let running = session.query("one").await.unwrap();
    let queued = session.query("two").await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(200), session.query("never")).await;
    assert!(waited.is_err(), "the queue was full, so query waited");
    assert_eq!(session.health().await.unwrap().queue_len, 1);
    running.collect().await.unwrap();
    queued.collect().await.unwrap();
    session
        .query("after")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let prompts = env.prompts_received();
    assert!(!prompts.iter().any(|p| p == "never"), "{prompts:?}");
    assert!(prompts.iter().any(|p| p == "after"));
    stop_and_check(session, pid).await;
}

/// `TurnStream`: dropped while queued, the turn never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_turn_whose_stream_is_dropped_never_runs() {
    let env = FakeEnv::new();
    let session = env.session("drop-queued", &slow_first_turn()).await;
    let pid = pid_of(&session).await;
    let running = session.query("one").await.unwrap();
    drop(session.query("dropped").await.unwrap());
    running.collect().await.unwrap();
    session
        .query("after")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(env.prompts_received(), vec!["one", "after"]);
    stop_and_check(session, pid).await;
}

/// `TurnStream::collect`: dropped mid-turn, the turn is interrupted and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_dropped_mid_turn_interrupts_the_turn() {
    let env = FakeEnv::new();
    let session = env
        .session(
            "drop-collect",
            &Scenario::new().turn(Turn::text("slow").slow(100, 100)),
        )
        .await;
    let pid = pid_of(&session).await;
    let turn = session.query("long").await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), turn.collect())
            .await
            .is_err()
    );
    let next = session
        .query("next")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(next.final_text(), Some("fake reply to: next"));
    let interrupts = recorded_interrupts(&env);
    assert_eq!(interrupts, 1, "the dropped turn was interrupted once");
    stop_and_check(session, pid).await;
}

fn recorded_interrupts(env: &FakeEnv) -> usize {
    claude_testing::fake_claude::Recording::read(&env.path("record"))
        .unwrap()
        .iter()
        .flat_map(|r| r.stdin_json())
        .filter(|v| v["type"] == "control_request" && v["request"]["subtype"] == "interrupt")
        .count()
}

/// `Session::interrupt`: sent when called, even if the future is dropped unpolled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_is_sent_even_if_its_future_is_dropped() {
    let env = FakeEnv::new();
    let session = env
        .session(
            "drop-interrupt",
            &Scenario::new().turn(Turn::text("slow").slow(100, 100)),
        )
        .await;
    let pid = pid_of(&session).await;
    let mut turn = session.query("long").await.unwrap();
    let _init = turn.next().await.unwrap().unwrap();
    drop(session.interrupt());
    let out = turn.collect().await.unwrap();
    assert!(
        out.is_error(),
        "the turn ended interrupted: {:?}",
        out.result
    );
    assert_eq!(recorded_interrupts(&env), 1);
    stop_and_check(session, pid).await;
}

/// `Session::stop`: requested when called; completes even if the future is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_completes_even_if_its_future_is_dropped() {
    let env = FakeEnv::new();
    let session = env.session("drop-stop", &Scenario::new()).await;
    let pid = pid_of(&session).await;
    drop(session.stop());
    support::wait_stopped(&session).await;
    support::assert_group_gone(pid).await;
    assert!(matches!(
        session.query("x").await,
        Err(SessionError::NotRunning { .. })
    ));
}

/// `Session::start`: dropped mid-start, no process is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_dropped_mid_start_leaves_no_process() {
    let env = FakeEnv::new();
    let config = env
        .config("drop-start", &Scenario::new().fault(Fault::Hang))
        .init_timeout("60s")
        .build()
        .unwrap();
    let start = tokio::spawn(Session::start(config));
    for _ in 0..400 {
        if !env.pids().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    start.abort();
    assert!(start.await.unwrap_err().is_cancelled());
    env.assert_all_gone().await;
}

/// Dropping every handle stops the session (nothing can reach it any more).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_stops_the_session() {
    let env = FakeEnv::new();
    let session = env.session("drop-handle", &Scenario::new()).await;
    let pid = pid_of(&session).await;
    drop(session);
    support::assert_group_gone(pid).await;
}

/// `Session::health` is cancel safe: a dropped call leaves the session as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_dropped_changes_nothing() {
    let env = FakeEnv::new();
    let session = env.session("drop-health", &Scenario::new()).await;
    let pid = pid_of(&session).await;
    drop(session.health());
    let out = session
        .query("fine")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(out.final_text(), Some("fake reply to: fine"));
    stop_and_check(session, pid).await;
}

/// `Session::set_model` (like every control call): sent on the first poll; dropped unpolled it
/// sends nothing, dropped after the first poll it is still delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_calls_are_sent_on_first_poll_and_survive_being_dropped_after() {
    let env = FakeEnv::new();
    let session = env.session("drop-control", &Scenario::new()).await;
    let pid = pid_of(&session).await;
    drop(session.set_model(Some("never-sent")));
    let mut polled = Box::pin(session.set_model(Some("sent-once")));
    assert!(futures::poll!(polled.as_mut()).is_pending());
    drop(polled);
    // A turn after them: by its end the CLI has read every earlier line.
    session
        .query("sync")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let models: Vec<String> = claude_testing::fake_claude::Recording::read(&env.path("record"))
        .unwrap()
        .iter()
        .flat_map(|r| r.stdin_json())
        .filter(|v| v["type"] == "control_request" && v["request"]["subtype"] == "set_model")
        .filter_map(|v| v["request"]["model"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(models, ["sent-once"]);
    stop_and_check(session, pid).await;
}

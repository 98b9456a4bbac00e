//! A slow consumer slows only its own turn: while the caller is not reading, the reader stops
//! reading the CLI (backpressure), and that silence is ours, not the CLI's. The stall detector
//! must not interrupt such a turn.

#[path = "support/common.rs"]
mod support;

use std::time::Duration;

use claude_protocol::Message;
use claude_session::Session;
use claude_testing::fake_claude::{Recording, Scenario, Turn};
use futures::StreamExt;
use support::{FakeEnv, pid_of, stop_and_check};

/// Far more frames than the stream buffer, the reader's backlog and the pipe hold together, so
/// that the reader is held up by the caller long before the CLI has written them all.
const FRAMES: usize = 3000;

fn recorded_interrupts(env: &FakeEnv) -> usize {
    Recording::read(&env.path("record"))
        .unwrap()
        .iter()
        .flat_map(|r| r.stdin_json())
        .filter(|v| v["type"] == "control_request" && v["request"]["subtype"] == "interrupt")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_not_a_stall_and_gets_every_frame() {
    let env = FakeEnv::new();
    let scenario = Scenario::new().turn(Turn::echo().load(FRAMES));
    let stall = Duration::from_millis(300);
    let config = env
        .config("slow-reader", &scenario)
        .stall_timeout(stall)
        .control_timeout("300ms")
        .stream_buffer(1)
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    let mut turn = session.query("flood me").await.unwrap();

    let mut assistant = 0;
    let mut result = None;
    let mut seen = 0;
    while let Some(item) = turn.next().await {
        let msg = item.expect("the turn never fails");
        seen += 1;
        // The caller goes away four times, each time for longer than the stall timeout plus
        // the control timeout (the detector's whole escalation); the last time near the end,
        // when the CLI has finished and only the caller holds the turn up.
        if [50, 1000, 2000, FRAMES - 200].contains(&seen) {
            tokio::time::sleep(stall * 4).await;
        }
        match msg {
            Message::Assistant(_) => assistant += 1,
            Message::Result(r) => result = Some(r),
            _ => {}
        }
    }
    let result = result.expect("the turn ended with its result");
    assert!(!result.is_error, "the turn was not interrupted: {result:?}");
    assert_eq!(result.result.as_deref(), Some("load: 3000 frames"));
    assert_eq!(assistant, FRAMES, "every frame reached the slow consumer");
    assert_eq!(recorded_interrupts(&env), 0, "no interrupt was sent");

    // The session is fine afterwards.
    let next = session
        .query("again")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!next.is_error());
    stop_and_check(session, pid).await;
}

/// The pause does not switch stall detection off: a turn that really hangs after a slow
/// consumer caught up is still found stalled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_slow_consumer_catches_up_a_real_hang_still_stalls() {
    use claude_session::SessionError;
    use claude_testing::fake_claude::Fault;
    let env = FakeEnv::new();
    let scenario = Scenario::new()
        .turn(Turn::echo().load(FRAMES))
        .fault_on_turn(2, Fault::Hang);
    let config = env
        .config("slow-then-hang", &scenario)
        .stall_timeout("300ms")
        .control_timeout("300ms")
        .stream_buffer(1)
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    let mut turn = session.query("flood me").await.unwrap();
    let mut seen = 0;
    while let Some(item) = turn.next().await {
        item.unwrap();
        seen += 1;
        if seen == 100 {
            tokio::time::sleep(Duration::from_millis(1200)).await;
        }
    }
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        session.query("hang").await.unwrap().collect(),
    )
    .await
    .expect("the stall detector fired")
    .unwrap_err();
    assert!(
        matches!(err, SessionError::Stalled { turn: 2, .. }),
        "{err:?}"
    );
    support::wait_stopped(&session).await;
    support::assert_group_gone(pid).await;
}

/// A caller that is late to read a short turn: the CLI has finished (its `result` waits behind
/// frames the caller has not taken), and only the caller holds the turn up. Not a stall either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_turn_waiting_for_a_late_reader_is_not_a_stall() {
    let env = FakeEnv::new();
    let scenario = Scenario::new().turn(Turn::echo().load(150));
    let config = env
        .config("late-reader", &scenario)
        .stall_timeout("300ms")
        .control_timeout("300ms")
        .stream_buffer(1)
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    let turn = session.query("short").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let out = turn.collect().await.expect("the turn was not failed");
    assert!(
        !out.is_error(),
        "the turn was not interrupted: {:?}",
        out.result
    );
    assert_eq!(out.final_text(), Some("load: 150 frames"));
    assert_eq!(recorded_interrupts(&env), 0, "no interrupt was sent");
    stop_and_check(session, pid).await;
}

//! A turn timeout with stall detection off, on a CLI that ignores the interrupt: the runtime
//! interrupts at the turn timeout, and when the turn has not ended within the control timeout
//! after that, stops the CLI. The session fails (a supervisor restarts it); it never wedges.

#[path = "support/common.rs"]
mod support;

use std::time::Duration;

use claude_session::{Session, SessionError, SessionEventKind};
use claude_testing::fake_claude::{Fault, Scenario, Turn};
use support::{FakeEnv, pid_of, wait_stopped};

/// A bound for "the caller hears of it promptly": far above the expected, so that only a hang
/// fails it.
const PROMPTLY: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_timeout_on_a_cli_that_ignores_the_interrupt_stops_the_cli() {
    let env = FakeEnv::new();
    // Turn 1 hangs: no output, no answer to the interrupt.
    let scenario = Scenario::new().fault_on_turn(1, Fault::Hang);
    let config = env
        .config("wedge", &scenario)
        .no_stall_timeout()
        .turn_timeout("500ms")
        .control_timeout("500ms")
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    let mut events = session.events();
    let hung = session.query("hang").await.unwrap();
    let queued = session.query("behind it").await.unwrap();

    let err = tokio::time::timeout(PROMPTLY, hung.collect())
        .await
        .expect("the turn timeout fired")
        .unwrap_err();
    assert!(
        matches!(err, SessionError::TurnTimeout { turn: 1, .. }),
        "{err:?}"
    );
    // The turn behind it is failed too, with a typed error saying why, once the CLI is stopped.
    let queued_err = tokio::time::timeout(PROMPTLY, queued.collect())
        .await
        .expect("the queued turn was not left waiting")
        .unwrap_err();
    match &queued_err {
        SessionError::TurnTimeoutIgnored {
            session,
            turn,
            timeout,
            ..
        } => {
            assert_eq!(session, "wedge");
            assert_eq!(*turn, 1);
            assert_eq!(*timeout, Duration::from_millis(500));
        }
        other => panic!("expected TurnTimeoutIgnored, got {other:?}"),
    }
    assert!(queued_err.is_process_failure());
    assert!(queued_err.to_string().contains("interrupt"), "{queued_err}");

    // The session failed (so a supervisor restarts it) and the process is gone.
    wait_stopped(&session).await;
    support::assert_group_gone(pid).await;
    assert!(matches!(
        session.query("after").await,
        Err(SessionError::NotRunning { .. })
    ));
    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        seen.push(ev.kind);
    }
    assert!(
        seen.iter()
            .any(|k| matches!(k, SessionEventKind::Signalled { signal: "SIGKILL" })),
        "the CLI was killed: {seen:#?}"
    );
    assert!(
        seen.iter().any(|k| matches!(
            k,
            SessionEventKind::ProcessExited {
                expected: false,
                ..
            }
        )),
        "{seen:#?}"
    );
    env.assert_all_gone().await;
}

/// A CLI that honours the interrupt: the turn times out, the session stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_timeout_on_a_cli_that_honours_the_interrupt_keeps_the_session() {
    let env = FakeEnv::new();
    let scenario = Scenario::new().turn(Turn::text("slow").slow(100, 100));
    let config = env
        .config("timeout-ok", &scenario)
        .no_stall_timeout()
        .turn_timeout("500ms")
        .control_timeout("500ms")
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    let err = tokio::time::timeout(PROMPTLY, session.query("slow").await.unwrap().collect())
        .await
        .expect("the turn timeout fired")
        .unwrap_err();
    assert!(
        matches!(err, SessionError::TurnTimeout { turn: 1, .. }),
        "{err:?}"
    );
    // Well past the control timeout: the interrupt ended the turn, nothing was killed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(session.is_running());
    let next = tokio::time::timeout(PROMPTLY, session.query("next").await.unwrap().collect())
        .await
        .expect("the next turn ran")
        .unwrap();
    assert_eq!(next.final_text(), Some("fake reply to: next"));
    assert_eq!(pid_of(&session).await, pid, "the same process");
    support::stop_and_check(session, pid).await;
}

//! Faults the real CLI will not produce on demand, driven through fake-claude: crashes, exits
//! before init, hangs, huge and malformed lines, stderr floods, stubborn grandchildren, a full
//! queue. After every test, every process group the test started is empty and reaped.

#[path = "support/common.rs"]
mod support;

use std::time::Duration;

use claude_session::{QueuePolicy, Session, SessionError, SessionEventKind, SkipReason};
use claude_testing::fake_claude::{Fault, Scenario, Turn};
use support::{FakeEnv, pid_of, stop_and_check, wait_stopped};

/// A bound for "the caller hears of it promptly": far above the expected, so that only a hang
/// fails it. (Tests assert behaviour, not timing.)
const PROMPTLY: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_turn_fails_running_and_queued_turns_with_status_and_stderr() {
    let env = FakeEnv::new();
    // The first turn streams slowly before it crashes, so the second query is queued behind it
    // (a query that arrives once the CLI is dead is refused with `NotRunning` instead).
    let scenario = Scenario::new()
        .fault_on_turn(1, Fault::slow_stream(4, 400))
        .fault_on_turn(1, Fault::crash_mid_turn(3, "fatal: out of cheese"));
    let session = env.session("crash", &scenario).await;
    let running = session.query("first").await.unwrap();
    let queued = session.query("second").await.unwrap();

    let err = tokio::time::timeout(PROMPTLY, running.collect())
        .await
        .expect("no hang")
        .unwrap_err();
    match &err {
        SessionError::Exited {
            session,
            turn,
            status,
            stderr_tail,
        } => {
            assert_eq!(session, "crash");
            assert_eq!(*turn, Some(1));
            assert_eq!(status.code(), Some(3));
            assert!(
                stderr_tail.contains("fatal: out of cheese"),
                "{stderr_tail}"
            );
        }
        other => panic!("expected Exited, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("exit code 3") && text.contains("out of cheese") && text.contains("`crash`"),
        "{text}"
    );
    let queued_err = queued.collect().await.unwrap_err();
    assert_eq!(queued_err.exit_status().and_then(|s| s.code()), Some(3));
    assert!(queued_err.is_process_failure());
    // The actor exits abnormally, so a supervisor would restart it.
    wait_stopped(&session).await;
    assert!(matches!(
        session.query("third").await,
        Err(SessionError::NotRunning { .. })
    ));
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_before_init_is_a_start_error_with_status_and_stderr() {
    let env = FakeEnv::new();
    let scenario = Scenario::new().fault(Fault::exit_before_init(7, "cannot start: no config"));
    let err = Session::start(env.config("early-exit", &scenario).build().unwrap())
        .await
        .unwrap_err();
    match &err {
        SessionError::ExitedDuringStart {
            session,
            status,
            stderr_tail,
        } => {
            assert_eq!(session, "early-exit");
            assert_eq!(status.code(), Some(7));
            assert!(
                stderr_tail.contains("cannot start: no config"),
                "{stderr_tail}"
            );
        }
        other => panic!("expected ExitedDuringStart, got {other:?}"),
    }
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_at_start_is_an_init_timeout_and_leaves_no_process() {
    let env = FakeEnv::new();
    let scenario = Scenario::new().fault(Fault::Hang);
    let config = env
        .config("hang-start", &scenario)
        .init_timeout("1s")
        .build()
        .unwrap();
    let err = Session::start(config).await.unwrap_err();
    assert!(matches!(err, SessionError::InitTimeout { .. }), "{err:?}");
    assert!(err.to_string().contains("initialize"), "{err}");
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_turn_trips_the_stall_timeout_fails_and_the_process_is_gone() {
    let env = FakeEnv::new();
    let scenario = Scenario::new().fault_on_turn(1, Fault::Hang);
    let config = env
        .config("stall", &scenario)
        .stall_timeout("500ms")
        .control_timeout("500ms")
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    let mut events = session.events();
    let err = tokio::time::timeout(PROMPTLY, session.query("hello").await.unwrap().collect())
        .await
        .expect("the stall detector fired")
        .unwrap_err();
    assert!(
        matches!(err, SessionError::Stalled { turn: 1, .. }),
        "{err:?}"
    );
    wait_stopped(&session).await;
    support::assert_group_gone(pid).await;
    let mut saw_kill = false;
    while let Ok(ev) = events.try_recv() {
        saw_kill |= matches!(ev.kind, SessionEventKind::Signalled { signal: "SIGKILL" });
    }
    assert!(saw_kill, "the stalled CLI was killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_line_over_the_limit_is_skipped_with_an_event_and_the_next_turn_works() {
    let env = FakeEnv::new();
    let scenario = Scenario::new().fault_on_turn(1, Fault::oversize_line(50_000_000));
    let config = env
        .config("oversize", &scenario)
        .max_line_bytes(8 * 1024 * 1024)
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    let mut events = session.events();
    let first = session.query("big").await.unwrap().collect().await.unwrap();
    assert!(!first.is_error());
    assert!(
        first
            .messages
            .iter()
            .all(|m| m.to_value().to_string().len() < 8 * 1024 * 1024)
    );
    let skipped = loop {
        let ev = events.recv().await.unwrap();
        if let SessionEventKind::FrameSkipped { reason, len, .. } = ev.kind {
            break (reason, len);
        }
    };
    assert_eq!(skipped, (SkipReason::Oversize, 50_000_000));
    let second = session
        .query("after")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(second.final_text(), Some("fake reply to: after"));
    stop_and_check(session, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_mb_line_under_the_default_limit_is_delivered_whole() {
    let env = FakeEnv::new();
    let scenario = Scenario::new().fault_on_turn(1, Fault::oversize_line(20_000_000));
    let session = env.session("big-ok", &scenario).await;
    let pid = pid_of(&session).await;
    let out = session.query("big").await.unwrap().collect().await.unwrap();
    let longest = out
        .messages
        .iter()
        .map(|m| m.to_value().to_string().len())
        .max()
        .unwrap();
    assert!(
        longest >= 19_000_000,
        "the big frame arrived (longest re-serialised frame: {longest} bytes)"
    );
    stop_and_check(session, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_line_is_skipped_with_an_event() {
    let env = FakeEnv::new();
    let scenario = Scenario::new().fault_on_turn(1, Fault::malformed_line());
    let session = env.session("malformed", &scenario).await;
    let pid = pid_of(&session).await;
    let mut events = session.events();
    let out = session.query("one").await.unwrap().collect().await.unwrap();
    assert_eq!(out.final_text(), Some("fake reply to: one"));
    let skipped = loop {
        if let SessionEventKind::FrameSkipped { reason, detail, .. } =
            events.recv().await.unwrap().kind
        {
            break (reason, detail);
        }
    };
    assert_eq!(skipped.0, SkipReason::Malformed);
    assert!(skipped.1.is_some_and(|d| !d.is_empty()));
    let next = session.query("two").await.unwrap().collect().await.unwrap();
    assert_eq!(next.final_text(), Some("fake reply to: two"));
    stop_and_check(session, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stderr_flood_never_wedges_the_session_and_only_its_tail_is_kept() {
    let env = FakeEnv::new();
    let scenario = Scenario::new().fault_on_turn(1, Fault::stderr_flood(20_000_000));
    let config = env
        .config("flood", &scenario)
        .stderr_tail_bytes(4096)
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        session.query("flood").await.unwrap().collect(),
    )
    .await
    .expect("the flood did not wedge the session")
    .unwrap();
    assert!(!out.is_error());
    stop_and_check(session, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grandchild_that_ignores_sigterm_is_gone_after_shutdown() {
    let env = FakeEnv::new();
    let scenario = Scenario::new().fault(Fault::StubbornGrandchild {
        fake_ignores_sigterm: false,
    });
    let session = env.session("grandchild", &scenario).await;
    let pid = pid_of(&session).await;
    assert_eq!(
        session
            .query("hi")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap()
            .final_text(),
        Some("fake reply to: hi")
    );
    let members = claude_testing::procs::in_group(pid);
    assert!(
        members.len() >= 2,
        "the grandchild shares the CLI's group: {members:#?}"
    );
    stop_and_check(session, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_that_ignores_stdin_close_and_sigterm_is_killed_by_the_recipe() {
    let env = FakeEnv::new();
    let scenario = Scenario::new()
        .fault(Fault::StubbornGrandchild {
            fake_ignores_sigterm: true,
        })
        .fault_on_turn(2, Fault::Hang);
    let config = env
        .config("stubborn", &scenario)
        .stdin_grace("300ms")
        .term_grace("300ms")
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    let mut events = session.events();
    session.query("one").await.unwrap().collect().await.unwrap();
    // Turn 2 hangs: no output, closing stdin does not end it, SIGTERM is ignored.
    let mut started = session.events();
    let hung = session.query("two").await.unwrap();
    while !matches!(
        started.recv().await.unwrap().kind,
        SessionEventKind::TurnStarted { turn: 2 }
    ) {}
    session.stop().await.unwrap();
    let err = hung.collect().await.unwrap_err();
    assert!(matches!(err, SessionError::Stopped { .. }), "{err:?}");
    support::assert_group_gone(pid).await;
    let mut signals = Vec::new();
    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        seen.push(format!("{:?}", ev.kind));
        if let SessionEventKind::Signalled { signal } = ev.kind {
            signals.push(signal);
        }
    }
    assert!(signals.len() >= 2, "events: {seen:#?}");
    assert_eq!(
        &signals[..2],
        ["SIGTERM", "SIGKILL"],
        "the recipe escalated: {signals:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_rejects_with_a_typed_error() {
    let env = FakeEnv::new();
    let scenario = Scenario::new().turn(Turn::text("slow one").slow(10, 200));
    let config = env
        .config("queue", &scenario)
        .queue(1, QueuePolicy::Reject)
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    let running = session.query("one").await.unwrap();
    let queued = session.query("two").await.unwrap();
    match session.query("three").await {
        Err(SessionError::QueueFull { session, capacity }) => {
            assert_eq!((session.as_str(), capacity), ("queue", 1));
        }
        other => panic!("expected QueueFull, got {other:?}"),
    }
    running.collect().await.unwrap();
    queued.collect().await.unwrap();
    // Room again once the queue drained.
    session
        .query("four")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    stop_and_check(session, pid).await;
}

/// A turn that waits on one of our callbacks is not stalled, however long the callback takes
/// (its own deadline bounds it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_permission_callback_does_not_trip_the_stall_detector() {
    use claude_session::{Callbacks, Permission};
    let env = FakeEnv::new();
    let scenario = Scenario::new().turn(Turn::tool("echo approved"));
    let callbacks = Callbacks::builder()
        .can_use_tool(|_req| async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Ok(Permission::allow())
        })
        .build();
    let options = env.options(&scenario).build().unwrap();
    let config = claude_session::SessionConfig::builder("slow-approval", env.cli_path())
        .options(options)
        .callbacks(callbacks)
        .stall_timeout("300ms")
        .control_timeout("300ms")
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    let out = session
        .query("run it")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    assert_eq!(out.tool_calls().len(), 1);
    stop_and_check(session, pid).await;
}

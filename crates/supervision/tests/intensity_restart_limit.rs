//! I1..I8: restart intensity.
#[path = "support/helpers.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use supervision::*;
use support::*;

async fn linked(flags: SupervisorFlags, children: Vec<ChildSpec>, exits: &Log) -> SupervisorRef {
    Supervisor::start_linked(None, flags, children, probe(exits).await)
        .await
        .unwrap()
}

fn flags(intensity: u32, period: Duration) -> SupervisorFlags {
    SupervisorFlags::builder()
        .intensity(intensity)
        .period(period)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn i1_second_crash_within_period_melts_down_in_reverse_order() {
    let (log, exits) = (Log::new(), Log::new());
    let sup = linked(
        flags(1, Duration::from_secs(5)),
        ["a", "b", "c"]
            .iter()
            .map(|id| worker(id, &log).build().unwrap())
            .collect(),
        &exits,
    )
    .await;
    send(&child(&sup, "b").await, WMsg::Crash);
    eventually("restart", || log.count("start:b") == 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    log.clear();
    send(&child(&sup, "b").await, WMsg::Crash);
    sup.wait().await;
    assert_eq!(log.entries(), ["crash:b", "stop:c", "stop:a"]);
    eventually("exit seen", || exits.len() == 1).await;
    assert_eq!(exits.entries(), ["exit:shutdown"]);
}

#[tokio::test(start_paused = true)]
async fn i2_window_slides() {
    let log = Log::new();
    let sup = Supervisor::start(
        None,
        flags(1, Duration::from_secs(1)),
        vec![worker("a", &log).build().unwrap()],
    )
    .await
    .unwrap();
    send(&child(&sup, "a").await, WMsg::Crash);
    eventually("restart", || log.count("start:a") == 2).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(&child(&sup, "a").await, WMsg::Crash);
    eventually("restart", || log.count("start:a") == 3).await;
    assert_eq!(sup.inspect().await.unwrap().restarts_in_window, 1);
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn i3_intensity_three_fourth_restart_melts_down() {
    let (log, exits) = (Log::new(), Log::new());
    let sup = linked(
        flags(3, Duration::from_secs(5)),
        vec![worker("a", &log).build().unwrap()],
        &exits,
    )
    .await;
    for n in 2..=4 {
        send(&child(&sup, "a").await, WMsg::Crash);
        eventually("restart", || log.count("start:a") == n).await;
    }
    assert_eq!(sup.inspect().await.unwrap().restarts_in_window, 3);
    send(&child(&sup, "a").await, WMsg::Crash);
    sup.wait().await;
    assert_eq!(log.count("start:a"), 4);
    eventually("exit seen", || exits.len() == 1).await;
    assert_eq!(exits.entries(), ["exit:shutdown"]);
}

#[tokio::test(start_paused = true)]
async fn i4_one_count_for_the_whole_supervisor() {
    let (log, exits) = (Log::new(), Log::new());
    let sup = linked(
        flags(1, Duration::from_secs(5)),
        vec![
            worker("a", &log).build().unwrap(),
            worker("b", &log).build().unwrap(),
        ],
        &exits,
    )
    .await;
    send(&child(&sup, "a").await, WMsg::Crash);
    eventually("restart", || log.count("start:a") == 2).await;
    send(&child(&sup, "b").await, WMsg::Crash);
    sup.wait().await;
    assert_eq!(log.count("start:b"), 1);
    eventually("exit seen", || exits.len() == 1).await;
}

#[tokio::test(start_paused = true)]
async fn i5_exits_without_restart_do_not_count() {
    let log = Log::new();
    let sup = Supervisor::start(
        None,
        flags(0, Duration::from_secs(5)),
        vec![
            typed("t", &log, RestartType::Transient),
            typed("tmp", &log, RestartType::Temporary),
            typed("p", &log, RestartType::Permanent),
        ],
    )
    .await
    .unwrap();
    let t = child(&sup, "t").await;
    send(&t, WMsg::Exit(None));
    t.wait(None).await.unwrap();
    let tmp = child(&sup, "tmp").await;
    send(&tmp, WMsg::Crash);
    tmp.wait(None).await.unwrap();
    eventually("tmp removed", || log.count("crash:tmp") == 1).await;
    let counts = sup.count_children().await.unwrap();
    assert_eq!((counts.specs, counts.active), (2, 1));
    assert_eq!(sup.inspect().await.unwrap().restarts_in_window, 0);
    sup.stop().await;
}

/// A child that starts the first time, then fails every start.
fn fails_after_first(id: &str, log: &Log, calls: Arc<AtomicUsize>) -> ChildSpec {
    let log = log.clone();
    let name = id.to_string();
    ChildSpec::builder(id)
        .start(move |args| {
            let (log, name, calls) = (log.clone(), name.clone(), calls.clone());
            async move {
                if calls.fetch_add(1, Ordering::SeqCst) > 0 {
                    log.push(format!("fail:{name}"));
                    return Err(StartError::new("no"));
                }
                log.push(format!("start:{name}"));
                args.spawn_linked(
                    None,
                    Worker,
                    WorkerArgs {
                        name,
                        log,
                        stop_delay: None,
                    },
                )
                .await
            }
        })
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn i6_failed_restart_counts_and_is_retried_until_meltdown() {
    for intensity in [1u32, 3] {
        let (log, exits) = (Log::new(), Log::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let sup = linked(
            flags(intensity, Duration::from_secs(5)),
            vec![fails_after_first("a", &log, calls.clone())],
            &exits,
        )
        .await;
        send(&child(&sup, "a").await, WMsg::Crash);
        sup.wait().await;
        // intensity + 1 restarts are counted: the crash's restart and one per failed attempt;
        // the last one trips the check before its attempt, so the start function ran
        // `intensity` times after the crash (exactly as OTP's supervisor).
        assert_eq!(log.count("fail:a"), intensity as usize);
        assert_eq!(calls.load(Ordering::SeqCst), 1 + intensity as usize);
        eventually("exit seen", || exits.len() == 1).await;
        assert_eq!(exits.entries(), ["exit:shutdown"]);
    }
}

#[tokio::test(start_paused = true)]
async fn i7_restarting_status_and_calls_answered_between_attempts() {
    let log = Log::new();
    let gate_closed = Arc::new(AtomicBool::new(false));
    let gate = gate_closed.clone();
    let l2 = log.clone();
    let spec = ChildSpec::builder("a")
        .start(move |args| {
            let (log, gate) = (l2.clone(), gate.clone());
            async move {
                if gate.load(Ordering::SeqCst) {
                    return Err(StartError::new("gate closed"));
                }
                log.push("start:a");
                args.spawn_linked(
                    None,
                    Worker,
                    WorkerArgs {
                        name: "a".into(),
                        log,
                        stop_delay: None,
                    },
                )
                .await
            }
        })
        .build()
        .unwrap();
    let sup = Supervisor::start(None, flags(100_000, Duration::from_secs(3600)), vec![spec])
        .await
        .unwrap();
    gate_closed.store(true, Ordering::SeqCst);
    send(&child(&sup, "a").await, WMsg::Crash);
    let mut seen_restarting = false;
    for _ in 0..1000 {
        let children = sup.which_children().await.unwrap();
        if status_name(&children[0].status) == "restarting" {
            seen_restarting = true;
            let counts = sup.count_children().await.unwrap();
            assert_eq!((counts.specs, counts.active), (1, 0));
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(seen_restarting, "the supervisor answered while retrying");
    gate_closed.store(false, Ordering::SeqCst);
    eventually("restarted", || log.count("start:a") == 2).await;
    assert_eq!(
        status_name(&sup.which_children().await.unwrap()[0].status),
        "running"
    );
    sup.stop().await;
}

fn nested(log: &Log, restart: RestartType) -> ChildSpec {
    Supervisor::child_spec(
        "inner",
        None,
        flags(0, Duration::from_secs(5)),
        vec![worker("w", log).build().unwrap()],
    )
    .restart(restart)
    .build()
    .unwrap()
}

async fn inner_worker(sup: &SupervisorRef) -> ractor::ActorCell {
    let inner = child(sup, "inner").await;
    // The inner supervisor's only child is the worker, linked to it.
    inner
        .get_children()
        .into_iter()
        .next()
        .expect("inner worker")
}

#[tokio::test(start_paused = true)]
async fn i8_permanent_child_supervisor_meltdown_escalates() {
    let (log, exits) = (Log::new(), Log::new());
    let sup = linked(
        flags(1, Duration::from_secs(5)),
        vec![nested(&log, RestartType::Permanent)],
        &exits,
    )
    .await;
    send(&inner_worker(&sup).await, WMsg::Crash);
    eventually("inner restarted by parent", || log.count("start:w") == 2).await;
    let snap = sup.inspect().await.unwrap();
    assert_eq!(
        snap.restarts_in_window, 1,
        "the child supervisor's restart counts"
    );
    assert_eq!(snap.restart_log[0].reason, "shutdown");
    send(&inner_worker(&sup).await, WMsg::Crash);
    sup.wait().await;
    eventually("parent exit seen", || exits.len() == 1).await;
    assert_eq!(exits.entries(), ["exit:shutdown"]);
}

#[tokio::test(start_paused = true)]
async fn i8_transient_child_supervisor_meltdown_not_restarted() {
    let log = Log::new();
    let sup = Supervisor::start(
        None,
        flags(1, Duration::from_secs(5)),
        vec![nested(&log, RestartType::Transient)],
    )
    .await
    .unwrap();
    let inner = child(&sup, "inner").await;
    send(&inner_worker(&sup).await, WMsg::Crash);
    inner.wait(None).await.unwrap();
    eventually("parent saw it", || log.count("crash:w") == 1).await;
    let children = sup.which_children().await.unwrap();
    assert_eq!(status_name(&children[0].status), "not_running");
    assert_eq!(log.count("start:w"), 1);
    assert_eq!(sup.inspect().await.unwrap().restarts_in_window, 0);
    sup.stop().await;
}

/// Yields until `cond` holds without letting the paused clock move (no sleeps: a yielding task
/// keeps the runtime busy, so tokio never auto-advances).
async fn settle(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("not settled: {what}");
}

#[tokio::test(start_paused = true)]
async fn i2_restart_exactly_one_period_ago_still_counts() {
    // OTP keeps a restart R while R >= Now - Period: one exactly one period old still counts.
    let (log, exits) = (Log::new(), Log::new());
    let period = Duration::from_secs(1);
    let sup = linked(
        flags(1, period),
        vec![worker("a", &log).build().unwrap()],
        &exits,
    )
    .await;
    let t0 = tokio::time::Instant::now();
    send(&child(&sup, "a").await, WMsg::Crash);
    settle("restart", || log.count("start:a") == 2).await;
    assert_eq!(tokio::time::Instant::now(), t0, "the clock did not move");
    tokio::time::advance(period).await;
    send(&child(&sup, "a").await, WMsg::Crash);
    tokio::time::timeout(Duration::from_secs(60), sup.wait())
        .await
        .expect("a meltdown: the restart one period ago counted");
    assert_eq!(log.count("start:a"), 2, "no third start: a meltdown");
    eventually("exit seen", || exits.len() == 1).await;
    assert_eq!(exits.entries(), ["exit:shutdown"]);
}

#[tokio::test(start_paused = true)]
async fn i2_restart_just_over_one_period_ago_is_dropped() {
    let log = Log::new();
    let period = Duration::from_secs(1);
    let sup = Supervisor::start(
        None,
        flags(1, period),
        vec![worker("a", &log).build().unwrap()],
    )
    .await
    .unwrap();
    send(&child(&sup, "a").await, WMsg::Crash);
    settle("restart", || log.count("start:a") == 2).await;
    tokio::time::advance(period + Duration::from_millis(1)).await;
    send(&child(&sup, "a").await, WMsg::Crash);
    settle("restart", || log.count("start:a") == 3).await;
    let snap = sup.inspect().await.unwrap();
    assert_eq!(snap.restarts_in_window, 1);
    sup.stop().await;
}

/// A child that starts the first time, then panics in its start function.
fn panics_after_first(id: &str, log: &Log, calls: Arc<AtomicUsize>) -> ChildSpec {
    let log = log.clone();
    let name = id.to_string();
    ChildSpec::builder(id)
        .start(move |args| {
            let (log, name, calls) = (log.clone(), name.clone(), calls.clone());
            async move {
                if calls.fetch_add(1, Ordering::SeqCst) > 0 {
                    log.push(format!("panic:{name}"));
                    panic!("{name} start panicked");
                }
                log.push(format!("start:{name}"));
                args.spawn_linked(
                    None,
                    Worker,
                    WorkerArgs {
                        name,
                        log,
                        stop_delay: None,
                    },
                )
                .await
            }
        })
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn i6_panicking_restart_counts_and_melts_down_in_order() {
    // A panic in a start function is a failed start (OTP catches the start call): counted,
    // retried, and the meltdown stops the other children gracefully, in reverse order.
    let (log, exits) = (Log::new(), Log::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let sup = linked(
        flags(2, Duration::from_secs(5)),
        vec![
            worker("a", &log).build().unwrap(),
            worker("b", &log).build().unwrap(),
            panics_after_first("p", &log, calls.clone()),
        ],
        &exits,
    )
    .await;
    send(&child(&sup, "p").await, WMsg::Crash);
    sup.wait().await;
    assert_eq!(log.count("panic:p"), 2);
    assert_eq!(
        log.entries(),
        [
            "start:a", "start:b", "start:p", "crash:p", "panic:p", "panic:p", "stop:b", "stop:a"
        ]
    );
    eventually("exit seen", || exits.len() == 1).await;
    assert_eq!(exits.entries(), ["exit:shutdown"]);
}

//! SH1..SH5, SH7, SH8: shutdown.
#[path = "support/helpers.rs"]
mod support;

use std::time::Duration;

use supervision::*;
use support::*;

#[tokio::test(start_paused = true)]
async fn sh1_stop_in_reverse_start_order_each_awaited() {
    let log = Log::new();
    // Each child takes a while in post_stop: the next stop begins only after it finished.
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        ["a", "b", "c"]
            .iter()
            .map(|id| {
                worker_with(id, &log, Some(Duration::from_millis(100)))
                    .build()
                    .unwrap()
            })
            .collect(),
    )
    .await
    .unwrap();
    let cells: Vec<_> = sup
        .which_children()
        .await
        .unwrap()
        .iter()
        .map(|c| c.cell.clone().unwrap())
        .collect();
    log.clear();
    sup.stop().await;
    assert_eq!(log.entries(), ["stop:c", "stop:b", "stop:a"]);
    assert!(cells.iter().all(is_stopped));
}

#[tokio::test(start_paused = true)]
async fn sh2_timeout_graceful_then_kill() {
    let log = Log::new();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![
            worker("in_time", &log)
                .shutdown(Shutdown::Timeout(Duration::from_secs(2)))
                .build()
                .unwrap(),
            worker("stuck", &log)
                .shutdown(Shutdown::Timeout(Duration::from_secs(2)))
                .build()
                .unwrap(),
        ],
    )
    .await
    .unwrap();
    let stuck = child(&sup, "stuck").await;
    send(&stuck, WMsg::Block(Duration::from_secs(3600)));
    log.clear();
    let t0 = tokio::time::Instant::now();
    sup.stop().await;
    // stuck was killed after its 2 s (no cleanup); in_time stopped gracefully (cleanup ran).
    assert_eq!(log.entries(), ["stop:in_time"]);
    assert!(is_stopped(&stuck));
    assert!(t0.elapsed() >= Duration::from_secs(2) && t0.elapsed() < Duration::from_secs(3600));
}

#[tokio::test(start_paused = true)]
async fn sh3_brutal_kill_at_once() {
    let log = Log::new();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![
            worker_with("k", &log, Some(Duration::from_secs(10)))
                .shutdown(Shutdown::BrutalKill)
                .build()
                .unwrap(),
        ],
    )
    .await
    .unwrap();
    let k = child(&sup, "k").await;
    log.clear();
    let t0 = tokio::time::Instant::now();
    sup.stop().await;
    assert!(log.entries().is_empty(), "killed: no graceful cleanup");
    assert!(is_stopped(&k));
    assert_eq!(
        t0.elapsed(),
        Duration::ZERO,
        "no waiting at all (paused clock)"
    );
}

#[tokio::test(start_paused = true)]
async fn sh4_infinity_waits_as_long_as_it_takes() {
    let log = Log::new();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![
            worker_with("slow", &log, Some(Duration::from_secs(3600)))
                .shutdown(Shutdown::Infinity)
                .build()
                .unwrap(),
        ],
    )
    .await
    .unwrap();
    log.clear();
    sup.stop().await;
    assert_eq!(
        log.entries(),
        ["stop:slow"],
        "cleanup completed, never killed"
    );
}

#[tokio::test(start_paused = true)]
async fn sh5_nested_supervisor_shuts_subtree_down_before_parent_moves_on() {
    let log = Log::new();
    let inner = Supervisor::child_spec(
        "inner",
        None,
        SupervisorFlags::default(),
        vec![
            worker_with("i1", &log, Some(Duration::from_millis(50)))
                .build()
                .unwrap(),
            worker_with("i2", &log, Some(Duration::from_millis(50)))
                .build()
                .unwrap(),
        ],
    )
    .build()
    .unwrap();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![
            worker("before", &log).build().unwrap(),
            inner,
            worker("after", &log).build().unwrap(),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        log.entries(),
        ["start:before", "start:i1", "start:i2", "start:after"]
    );
    log.clear();
    sup.stop().await;
    assert_eq!(
        log.entries(),
        ["stop:after", "stop:i2", "stop:i1", "stop:before"]
    );
}

#[tokio::test(start_paused = true)]
async fn sh7_no_orphans_after_supervisor_exits() {
    let log = Log::new();
    let inner = Supervisor::child_spec(
        "inner",
        None,
        SupervisorFlags::default(),
        vec![
            worker("i1", &log).build().unwrap(),
            worker("i2", &log).build().unwrap(),
        ],
    )
    .build()
    .unwrap();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![worker("a", &log).build().unwrap(), inner],
    )
    .await
    .unwrap();
    // Collect every descendant actor.
    let mut all = vec![];
    let mut todo = vec![sup.cell()];
    while let Some(c) = todo.pop() {
        todo.extend(c.get_children());
        all.push(c);
    }
    assert_eq!(all.len(), 5, "sup, a, inner, i1, i2");
    sup.stop().await;
    assert!(all.iter().all(is_stopped));
    // Every worker went through its graceful stop exactly once.
    for w in ["a", "i1", "i2"] {
        assert_eq!(log.count(&format!("stop:{w}")), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn sh8_exits_caused_by_supervisor_never_restart_or_count() {
    let log = Log::new();
    let flags = SupervisorFlags::builder()
        .strategy(Strategy::OneForAll)
        .intensity(1)
        .build()
        .unwrap();
    let sup = Supervisor::start(
        None,
        flags,
        ["a", "b", "c"]
            .iter()
            .map(|id| worker(id, &log).build().unwrap())
            .collect(),
    )
    .await
    .unwrap();
    // terminate: no restart, no count.
    sup.terminate_child("a").await.unwrap();
    // a group restart: the stopped siblings' exits are not restarts of their own.
    send(&child(&sup, "b").await, WMsg::Crash);
    eventually("group restart", || log.count("start:c") == 2).await;
    let snap = sup.inspect().await.unwrap();
    assert_eq!(snap.restarts_in_window, 1);
    assert_eq!(snap.restart_log.len(), 1);
    assert_eq!(log.count("start:b"), 2);
    assert_eq!(log.count("start:c"), 2);
    // one_for_all restarts every non-temporary spec of the group, as OTP does, "a" included.
    assert_eq!(log.count("start:a"), 2);
    // Let any stray exit events arrive: nothing else restarts.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(sup.inspect().await.unwrap().restarts_in_window, 1);
    let before = log.len();
    sup.stop().await;
    assert_eq!(log.since(before), ["stop:c", "stop:b", "stop:a"]);
}

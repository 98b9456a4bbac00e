//! ST2, ST4, ST5: one_for_all.
#[path = "support/helpers.rs"]
mod support;

use std::time::Duration;

use supervision::*;
use support::*;

async fn abc(log: &Log, intensity: u32) -> SupervisorRef {
    let flags = SupervisorFlags::builder()
        .strategy(Strategy::OneForAll)
        .intensity(intensity)
        .build()
        .unwrap();
    Supervisor::start(
        None,
        flags,
        vec![
            worker("a", log).build().unwrap(),
            worker("b", log).build().unwrap(),
            worker("c", log).build().unwrap(),
        ],
    )
    .await
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn st2_one_for_all_restarts_in_order() {
    let log = Log::new();
    let sup = abc(&log, 1).await;
    assert_eq!(log.entries(), ["start:a", "start:b", "start:c"]);
    log.clear();
    send(&child(&sup, "b").await, WMsg::Crash);
    eventually("group restarted", || log.count("start:c") == 1).await;
    assert_eq!(
        log.entries(),
        [
            "crash:b", "stop:c", "stop:a", "start:a", "start:b", "start:c"
        ]
    );
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn st4_group_restart_counts_as_one_restart() {
    let log = Log::new();
    let sup = abc(&log, 1).await;
    send(&child(&sup, "b").await, WMsg::Crash);
    eventually("group restarted", || log.count("start:c") == 2).await;
    let snap = sup.inspect().await.unwrap();
    assert_eq!(snap.restarts_in_window, 1);
    assert_eq!(snap.restart_log.len(), 1);
    assert!(snap.children.iter().all(|c| c.generation == 2));
    // Intensity 1: the group restart used the single allowance; the supervisor is alive.
    assert_eq!(sup.count_children().await.unwrap().active, 3);
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn st5_group_restart_siblings_go_through_shutdown_spec() {
    let log = Log::new();
    let flags = SupervisorFlags::builder()
        .strategy(Strategy::OneForAll)
        .build()
        .unwrap();
    let sup = Supervisor::start(
        None,
        flags,
        vec![
            worker("graceful", &log)
                .shutdown(Shutdown::Timeout(Duration::from_secs(1)))
                .build()
                .unwrap(),
            worker("stuck", &log)
                .shutdown(Shutdown::Timeout(Duration::from_secs(1)))
                .build()
                .unwrap(),
            worker("crasher", &log).build().unwrap(),
        ],
    )
    .await
    .unwrap();
    // "stuck" is busy for an hour: it cannot handle its stop and is killed after 1 s.
    send(
        &child(&sup, "stuck").await,
        WMsg::Block(Duration::from_secs(3600)),
    );
    log.clear();
    let t0 = tokio::time::Instant::now();
    send(&child(&sup, "crasher").await, WMsg::Crash);
    eventually("group restarted", || log.count("start:crasher") == 1).await;
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "the timeout was honoured"
    );
    assert!(t0.elapsed() < Duration::from_secs(3600), "no blind wait");
    // graceful ran its cleanup (post_stop); stuck was killed (no cleanup).
    assert_eq!(
        log.entries(),
        [
            "crash:crasher",
            "stop:graceful",
            "start:graceful",
            "start:stuck",
            "start:crasher"
        ]
    );
    sup.stop().await;
}

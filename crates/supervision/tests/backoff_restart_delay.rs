//! Restart backoff (our addition to OTP): it delays a restart, it does not change counting.
#[path = "support/helpers.rs"]
mod support;

use std::time::Duration;

use supervision::*;
use support::*;

#[tokio::test(start_paused = true)]
async fn backoff_delays_restart_and_counts_when_decided() {
    let log = Log::new();
    let backoff =
        Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60), 0.0).unwrap();
    let flags = SupervisorFlags::builder()
        .intensity(5)
        .period(Duration::from_secs(600))
        .backoff(backoff)
        .build()
        .unwrap();
    let sup = Supervisor::start(None, flags, vec![worker("a", &log).build().unwrap()])
        .await
        .unwrap();
    for (n, delay) in [(2usize, 1u64), (3, 2), (4, 4)] {
        let t0 = tokio::time::Instant::now();
        let cell = child(&sup, "a").await;
        send(&cell, WMsg::Crash);
        cell.wait(None).await.unwrap();
        // Counted at once, while the child is still waiting to be restarted.
        let snap = sup.inspect().await.unwrap();
        assert_eq!(snap.restarts_in_window, n - 1);
        assert_eq!(snap.children[0].status, SnapshotStatus::Restarting);
        tokio::time::sleep(Duration::from_secs(delay) - Duration::from_millis(1)).await;
        assert_eq!(
            log.count("start:a"),
            n - 1,
            "not restarted before the delay"
        );
        eventually("restarted", || log.count("start:a") == n).await;
        assert!(t0.elapsed() >= Duration::from_secs(delay));
    }
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn backoff_does_not_prevent_meltdown() {
    let log = Log::new();
    let backoff =
        Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60), 0.5).unwrap();
    let flags = SupervisorFlags::builder()
        .intensity(1)
        .backoff(backoff)
        .build()
        .unwrap();
    let sup = Supervisor::start(None, flags, vec![worker("a", &log).build().unwrap()])
        .await
        .unwrap();
    send(&child(&sup, "a").await, WMsg::Crash);
    tokio::time::sleep(Duration::from_secs(1)).await;
    eventually("restarted", || log.count("start:a") == 2).await;
    send(&child(&sup, "a").await, WMsg::Crash);
    sup.wait().await;
    assert_eq!(log.count("start:a"), 2);
}

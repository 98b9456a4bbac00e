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
        assert_eq!(snap.children[0].status, ChildStatus::Restarting);
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

async fn statuses(sup: &SupervisorRef) -> Vec<&'static str> {
    sup.which_children()
        .await
        .unwrap()
        .iter()
        .map(|c| status_name(&c.status))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn backoff_group_is_stopped_and_restarted_in_one_step() {
    // OTP restarts a one_for_all / rest_for_one group in one step. With a backoff the step is
    // spread over the delay, so every member waiting to be started shows `Restarting`, and
    // restart_child / delete_child refuse it, until the group starts again, in order.
    for (strategy, expected) in [
        (
            Strategy::OneForAll,
            ["restarting", "restarting", "restarting"],
        ),
        (
            Strategy::RestForOne,
            ["running", "restarting", "restarting"],
        ),
    ] {
        let log = Log::new();
        let backoff =
            Backoff::exponential(Duration::from_secs(10), Duration::from_secs(10), 0.0).unwrap();
        let flags = SupervisorFlags::builder()
            .strategy(strategy)
            .intensity(5)
            .period(Duration::from_secs(600))
            .backoff(backoff)
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
        let b = child(&sup, "b").await;
        send(&b, WMsg::Crash);
        b.wait(None).await.unwrap();
        eventually("c stopped", || log.count("stop:c") == 1).await;
        assert_eq!(statuses(&sup).await, expected, "{strategy:?}");
        for id in ["b", "c"] {
            assert!(
                matches!(
                    sup.restart_child(id).await,
                    Err(ChildError::Restarting { .. })
                ),
                "{strategy:?}: restart_child({id}) during the backoff"
            );
            assert!(
                matches!(
                    sup.delete_child(id).await,
                    Err(ChildError::Restarting { .. })
                ),
                "{strategy:?}: delete_child({id}) during the backoff"
            );
        }
        let counts = sup.count_children().await.unwrap();
        assert_eq!(counts.specs, 3);
        log.clear();
        tokio::time::sleep(Duration::from_secs(10)).await;
        eventually("group restarted", || log.count("start:c") == 1).await;
        let starts: Vec<_> = log
            .entries()
            .into_iter()
            .filter(|e| e.starts_with("start:"))
            .collect();
        match strategy {
            Strategy::OneForAll => assert_eq!(starts, ["start:a", "start:b", "start:c"]),
            _ => assert_eq!(starts, ["start:b", "start:c"]),
        }
        assert_eq!(statuses(&sup).await, ["running"; 3]);
        assert_eq!(sup.inspect().await.unwrap().restarts_in_window, 1);
        sup.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_terminating_a_waiting_member_keeps_it_out_of_the_group_restart() {
    let log = Log::new();
    let backoff =
        Backoff::exponential(Duration::from_secs(10), Duration::from_secs(10), 0.0).unwrap();
    let flags = SupervisorFlags::builder()
        .strategy(Strategy::OneForAll)
        .intensity(5)
        .backoff(backoff)
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
    send(&child(&sup, "b").await, WMsg::Crash);
    eventually("group stopped", || log.count("stop:a") == 1).await;
    // Terminating the member whose exit started the restart leaves the rest of the group
    // waiting; terminating another one leaves it out.
    sup.terminate_child("b").await.unwrap();
    sup.terminate_child("c").await.unwrap();
    assert_eq!(
        statuses(&sup).await,
        ["restarting", "not_running", "not_running"]
    );
    log.clear();
    tokio::time::sleep(Duration::from_secs(10)).await;
    eventually("a restarted", || log.count("start:a") == 1).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(log.entries(), ["start:a"]);
    assert_eq!(
        statuses(&sup).await,
        ["running", "not_running", "not_running"]
    );
    sup.stop().await;
}

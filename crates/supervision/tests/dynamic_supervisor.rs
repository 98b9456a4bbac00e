//! D1..D4 and SH6: the dynamic supervisor.
#[path = "support/helpers.rs"]
mod support;

use std::time::Duration;

use supervision::*;
use support::*;

#[tokio::test]
async fn d1_max_children() {
    let log = Log::new();
    let flags = DynamicFlags::builder().max_children(2).build().unwrap();
    let sup = DynamicSupervisor::start(None, flags).await.unwrap();
    sup.start_child(worker("a", &log).build().unwrap())
        .await
        .unwrap();
    sup.start_child(worker("b", &log).build().unwrap())
        .await
        .unwrap();
    let err = sup
        .start_child(worker("c", &log).build().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, ChildError::MaxChildren { max: 2, .. }));
    assert_eq!(
        log.entries(),
        ["start:a", "start:b"],
        "c's start function never ran"
    );
    let counts = sup.count_children().await.unwrap();
    assert_eq!((counts.specs, counts.active), (2, 2));
    assert!(
        sup.which_children()
            .await
            .unwrap()
            .iter()
            .all(|c| c.status.cell().is_some_and(|c| !is_stopped(c)))
    );
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn d2_restarting_child_keeps_its_slot() {
    let log = Log::new();
    let backoff =
        Backoff::exponential(Duration::from_secs(10), Duration::from_secs(10), 0.0).unwrap();
    let flags = DynamicFlags::builder()
        .max_children(1)
        .backoff(backoff)
        .build()
        .unwrap();
    let sup = DynamicSupervisor::start(None, flags).await.unwrap();
    let a = sup
        .start_child(worker("a", &log).build().unwrap())
        .await
        .unwrap()
        .unwrap();
    send(&a, WMsg::Crash);
    a.wait(None).await.unwrap();
    let children = sup.which_children().await.unwrap();
    assert_eq!(status_name(&children[0].status), "restarting");
    let err = sup
        .start_child(worker("b", &log).build().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, ChildError::MaxChildren { .. }));
    tokio::time::sleep(Duration::from_secs(10)).await;
    eventually("a restarted", || log.count("start:a") == 2).await;
    sup.stop().await;
}

#[tokio::test]
async fn d3_shared_start_arguments_reach_every_child() {
    let log = Log::new();
    let flags = DynamicFlags::builder()
        .extra_arguments(String::from("tenant-42"))
        .build()
        .unwrap();
    let sup = DynamicSupervisor::start(None, flags).await.unwrap();
    for id in ["a", "b", "c"] {
        let l = log.clone();
        let spec = ChildSpec::builder(id)
            .start(move |args| {
                let l = l.clone();
                async move {
                    l.push(format!(
                        "{}:{}",
                        args.child_id(),
                        args.extra::<String>().unwrap()
                    ));
                    assert!(args.extra::<u32>().is_none());
                    Ok(StartOutcome::Ignore)
                }
            })
            .build()
            .unwrap();
        assert!(sup.start_child(spec).await.unwrap().is_none());
    }
    assert_eq!(log.entries(), ["a:tenant-42", "b:tenant-42", "c:tenant-42"]);
    assert_eq!(
        sup.count_children().await.unwrap().specs,
        0,
        "ignored children are not kept"
    );
    sup.stop().await;
}

#[tokio::test]
async fn d4_terminate_unknown_child_not_found() {
    let sup = DynamicSupervisor::start(None, DynamicFlags::default())
        .await
        .unwrap();
    let err = sup.terminate_child("ghost").await.unwrap_err();
    assert!(matches!(err, ChildError::NotFound { ref child, .. } if child.as_str() == "ghost"));
    let log = Log::new();
    sup.start_child(worker("a", &log).build().unwrap())
        .await
        .unwrap();
    sup.terminate_child("a").await.unwrap();
    assert_eq!(sup.count_children().await.unwrap().specs, 0);
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn sh6_dynamic_stops_children_concurrently() {
    let log = Log::new();
    let sup = DynamicSupervisor::start(None, DynamicFlags::default())
        .await
        .unwrap();
    let mut cells = vec![];
    for id in ["a", "b", "c", "d"] {
        let cell = sup
            .start_child(
                worker(id, &log)
                    .shutdown(Shutdown::Timeout(Duration::from_secs(10)))
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
        send(&cell, WMsg::Block(Duration::from_secs(3600)));
        cells.push(cell);
    }
    let t0 = tokio::time::Instant::now();
    sup.stop().await;
    let took = t0.elapsed();
    assert!(took >= Duration::from_secs(10), "each got its timeout");
    assert!(
        took < Duration::from_secs(20),
        "not the sum of the timeouts: {took:?}"
    );
    assert!(cells.iter().all(is_stopped));
}

#[tokio::test(start_paused = true)]
async fn dynamic_children_exiting_without_restart_are_removed() {
    let log = Log::new();
    let sup = DynamicSupervisor::start(None, DynamicFlags::default())
        .await
        .unwrap();
    let t = sup
        .start_child(typed("t", &log, RestartType::Transient))
        .await
        .unwrap()
        .unwrap();
    send(&t, WMsg::Exit(None));
    t.wait(None).await.unwrap();
    eventually("removed", || log.count("stop:t") == 1).await;
    assert_eq!(sup.count_children().await.unwrap().specs, 0);
    sup.stop().await;
}

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
            .all(|c| c.cell.as_ref().is_some_and(|c| !is_stopped(c)))
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

/// A per-session subtree: a small supervisor (intensity 0: its first restart is a meltdown)
/// over one worker, as a child of a dynamic supervisor.
fn session(id: &str, log: &Log, restart: RestartType) -> ChildSpec {
    Supervisor::child_spec(
        id,
        None,
        SupervisorFlags::builder().intensity(0).build().unwrap(),
        vec![worker(&format!("{id}/w"), log).build().unwrap()],
    )
    .restart(restart)
    .build()
    .unwrap()
}

fn only_child(cell: &ractor::ActorCell) -> ractor::ActorCell {
    let children = cell.get_children();
    assert_eq!(children.len(), 1, "a subtree has exactly its worker");
    children.into_iter().next().unwrap()
}

#[tokio::test(start_paused = true)]
async fn i8_session_subtrees_under_a_dynamic_supervisor() {
    let log = Log::new();
    let flags = DynamicFlags::builder()
        .intensity(1)
        .period(Duration::from_secs(5))
        .build()
        .unwrap();
    let sup = DynamicSupervisor::start(None, flags).await.unwrap();
    let p = sup
        .start_child(session("p", &log, RestartType::Permanent))
        .await
        .unwrap()
        .unwrap();
    let t = sup
        .start_child(session("t", &log, RestartType::Transient))
        .await
        .unwrap()
        .unwrap();
    // A transient subtree that melts down exits with `shutdown`: not restarted, its slot freed,
    // its worker stopped gracefully first; nothing counted.
    send(&only_child(&t), WMsg::Crash);
    t.wait(None).await.unwrap();
    assert_eq!(
        log.count("stop:t/w"),
        0,
        "the crashed worker ran no cleanup"
    );
    eventually("t removed", || log.count("crash:t/w") == 1).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let snap = sup.inspect().await.unwrap();
    assert_eq!(snap.children.len(), 1);
    assert_eq!(snap.restarts_in_window, 0);
    // A permanent subtree that melts down is restarted by the dynamic supervisor, and counted.
    send(&only_child(&p), WMsg::Crash);
    p.wait(None).await.unwrap();
    eventually("p restarted", || log.count("start:p/w") == 2).await;
    let snap = sup.inspect().await.unwrap();
    assert_eq!(snap.restarts_in_window, 1);
    assert_eq!(snap.children[0].generation, 2);
    // Terminating a subtree stops its worker gracefully before the call returns.
    log.clear();
    sup.terminate_child("p").await.unwrap();
    assert_eq!(log.entries(), ["stop:p/w"]);
    assert_eq!(sup.count_children().await.unwrap().specs, 0);
    sup.stop().await;
}

/// One handle type for both kinds: `DynamicSupervisorRef` is `SupervisorRef`, and the calls
/// meant for a static supervisor's stopped children answer a dynamic supervisor's typed errors
/// (it keeps no terminated child), except for the one stopped child it keeps: a child whose
/// restart answered ignore, which `restart_child` starts again and `delete_child` removes.
#[tokio::test(start_paused = true)]
async fn a2_a3_restart_and_delete_child_on_a_dynamic_supervisor_answer_typed_errors() {
    let log = Log::new();
    let backoff =
        Backoff::exponential(Duration::from_secs(10), Duration::from_secs(10), 0.0).unwrap();
    let flags = DynamicFlags::builder().backoff(backoff).build().unwrap();
    let sup: SupervisorRef = DynamicSupervisor::start(None, flags).await.unwrap();
    let same: &DynamicSupervisorRef = &sup;
    let a = same
        .start_child(worker("a", &log).build().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        sup.restart_child("a").await,
        Err(ChildError::Running { ref child, .. }) if child.as_str() == "a"
    ));
    assert!(matches!(
        sup.delete_child("a").await,
        Err(ChildError::Running { .. })
    ));
    assert!(matches!(
        sup.restart_child("ghost").await,
        Err(ChildError::NotFound { ref child, .. }) if child.as_str() == "ghost"
    ));
    assert!(matches!(
        sup.delete_child("ghost").await,
        Err(ChildError::NotFound { .. })
    ));
    // Waiting for its backoff: restarting.
    send(&a, WMsg::Crash);
    a.wait(None).await.unwrap();
    eventually("restart decided", || log.count("crash:a") == 1).await;
    assert!(matches!(
        sup.restart_child("a").await,
        Err(ChildError::Restarting { .. })
    ));
    assert!(matches!(
        sup.delete_child("a").await,
        Err(ChildError::Restarting { .. })
    ));
    tokio::time::sleep(Duration::from_secs(10)).await;
    eventually("a restarted", || log.count("start:a") == 2).await;
    // Terminated: removed, so there is nothing to restart or delete.
    sup.terminate_child("a").await.unwrap();
    assert!(matches!(
        sup.restart_child("a").await,
        Err(ChildError::NotFound { .. })
    ));
    assert!(matches!(
        sup.delete_child("a").await,
        Err(ChildError::NotFound { .. })
    ));
    assert_eq!(log.count("start:a"), 2, "no call started a again");

    // A child whose restart answered ignore is kept, stopped: restart_child starts it again,
    // delete_child removes it.
    let starts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (n, l) = (starts.clone(), log.clone());
    let spec = ChildSpec::builder("odd")
        .start(move |args| {
            let (n, l) = (n.clone(), l.clone());
            async move {
                // Every second call (each restart after a crash, here) answers ignore.
                if n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 2 == 1 {
                    return Ok(StartOutcome::Ignore);
                }
                args.spawn_linked(
                    None,
                    Worker,
                    WorkerArgs {
                        name: "odd".into(),
                        log: l,
                        stop_delay: None,
                    },
                )
                .await
            }
        })
        .build()
        .unwrap();
    let mut odd = sup.start_child(spec).await.unwrap().unwrap();
    for round in 0..2 {
        send(&odd, WMsg::Crash);
        odd.wait(None).await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        eventually("the restart ran", || {
            starts.load(std::sync::atomic::Ordering::SeqCst) == 2 * round + 2
        })
        .await;
        let children = sup.which_children().await.unwrap();
        assert!(
            children
                .iter()
                .any(|c| c.id.as_str() == "odd" && c.status == ChildStatus::NotRunning),
            "round {round}: kept, stopped, after an ignored restart"
        );
        if round == 0 {
            odd = sup.restart_child("odd").await.unwrap().expect("started");
            assert!(!is_stopped(&odd));
        } else {
            sup.delete_child("odd").await.unwrap();
        }
    }
    assert_eq!(sup.count_children().await.unwrap().specs, 0);
    sup.stop().await;
}

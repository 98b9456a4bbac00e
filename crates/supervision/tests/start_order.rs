//! S1..S6: starting static and dynamic children.
#[path = "support/helpers.rs"]
mod support;

use std::time::Duration;

use supervision::*;
use support::*;

/// A worker whose start function takes a while (tokio time) and logs begin/end.
fn slow(id: &str, log: &Log) -> ChildSpec {
    let log = log.clone();
    let name = id.to_string();
    ChildSpec::builder(id)
        .start(move |args| {
            let (log, name) = (log.clone(), name.clone());
            async move {
                log.push(format!("begin:{name}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                let r = args
                    .spawn_linked(
                        None,
                        Worker,
                        WorkerArgs {
                            name: name.clone(),
                            log: log.clone(),
                            stop_delay: None,
                        },
                    )
                    .await;
                log.push(format!("end:{name}"));
                r
            }
        })
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn s1_static_children_start_one_after_another_in_list_order() {
    let log = Log::new();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![slow("a", &log), slow("b", &log), slow("c", &log)],
    )
    .await
    .unwrap();
    assert_eq!(
        log.entries(),
        ["begin:a", "end:a", "begin:b", "end:b", "begin:c", "end:c"]
    );
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn s2_start_returns_after_every_static_child_started() {
    let log = Log::new();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![slow("a", &log), slow("b", &log)],
    )
    .await
    .unwrap();
    // No polling: the children are running the moment start returns.
    assert_eq!(log.entries(), ["begin:a", "end:a", "begin:b", "end:b"]);
    let children = sup.which_children().await.unwrap();
    assert!(children.iter().all(|c| status_name(&c.status) == "running"));
    assert!(
        children
            .iter()
            .all(|c| c.cell.as_ref().is_some_and(|c| !is_stopped(c)))
    );
    sup.stop().await;
}

#[tokio::test]
async fn s3_failed_static_start_stops_earlier_children_in_reverse_and_errors() {
    let log = Log::new();
    let err = Supervisor::start(
        Some("s3_sup".into()),
        SupervisorFlags::default(),
        vec![
            worker("a", &log).build().unwrap(),
            worker("b", &log).build().unwrap(),
            failing("c", &log).build().unwrap(),
            worker("d", &log).build().unwrap(),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(
        log.entries(),
        ["start:a", "start:b", "fail:c", "stop:b", "stop:a"]
    );
    match &err {
        SupervisorError::ChildStartFailed { child, source, .. } => {
            assert_eq!(child.as_str(), "c");
            assert_eq!(source.message(), "c cannot start");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("s3_sup"));
    assert!(ractor::registry::where_is("s3_sup").is_none());
}

#[tokio::test]
async fn s4_ignore_keeps_spec_not_running_and_drops_temporary() {
    let ignore = |id: &str, r: RestartType| {
        ChildSpec::builder(id)
            .restart(r)
            .start(|_| async { Ok(StartOutcome::Ignore) })
            .build()
            .unwrap()
    };
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![
            ignore("kept", RestartType::Permanent),
            ignore("tmp", RestartType::Temporary),
        ],
    )
    .await
    .unwrap();
    let children = sup.which_children().await.unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].id.as_str(), "kept");
    assert_eq!(status_name(&children[0].status), "not_running");
    // Dynamically too.
    assert!(
        sup.start_child(ignore("later", RestartType::Transient))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        sup.start_child(ignore("tmp2", RestartType::Temporary))
            .await
            .unwrap()
            .is_none()
    );
    let ids: Vec<_> = sup
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, [ChildId::from("kept"), ChildId::from("later")]);
    sup.stop().await;
}

#[tokio::test]
async fn s5_start_child_with_id_in_use() {
    let log = Log::new();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![worker("a", &log).build().unwrap()],
    )
    .await
    .unwrap();
    let running = child(&sup, "a").await;
    match sup.start_child(worker("a", &log).build().unwrap()).await {
        Err(ChildError::AlreadyStarted { cell, child, .. }) => {
            assert_eq!(cell.get_id(), running.get_id());
            assert_eq!(child.as_str(), "a");
        }
        other => panic!("unexpected {other:?}"),
    }
    sup.terminate_child("a").await.unwrap();
    match sup.start_child(worker("a", &log).build().unwrap()).await {
        Err(ChildError::AlreadyPresent { child, .. }) => assert_eq!(child.as_str(), "a"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(log.count("start:a"), 1);
    sup.stop().await;
}

#[tokio::test]
async fn s6_failed_dynamic_start_child_returns_error_keeps_no_spec_counts_nothing() {
    let log = Log::new();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![worker("a", &log).build().unwrap()],
    )
    .await
    .unwrap();
    let err = sup
        .start_child(failing("bad", &log).build().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, ChildError::StartFailed { ref child, .. } if child.as_str() == "bad"));
    let snap = sup.inspect().await.unwrap();
    assert_eq!(snap.children.len(), 1);
    assert_eq!(snap.restarts_in_window, 0);
    assert!(snap.restart_log.is_empty());

    let dynsup = DynamicSupervisor::start(None, DynamicFlags::default())
        .await
        .unwrap();
    assert!(
        dynsup
            .start_child(failing("bad", &log).build().unwrap())
            .await
            .is_err()
    );
    let snap = dynsup.inspect().await.unwrap();
    assert!(snap.children.is_empty() && snap.restarts_in_window == 0);
    sup.stop().await;
    dynsup.stop().await;
}

/// A spec whose start function panics (logs `panic:<id>`).
fn panicking(id: &str, log: &Log) -> ChildSpec {
    let log = log.clone();
    let name = id.to_string();
    ChildSpec::builder(id)
        .start(move |_args| {
            let (log, name) = (log.clone(), name.clone());
            async move {
                log.push(format!("panic:{name}"));
                panic!("{name} exploded");
            }
        })
        .build()
        .unwrap()
}

#[tokio::test]
async fn s3_panicking_static_start_stops_earlier_children_in_reverse_and_errors() {
    let log = Log::new();
    let err = Supervisor::start(
        Some("s3_panic_sup".into()),
        SupervisorFlags::default(),
        vec![
            worker("a", &log).build().unwrap(),
            worker("b", &log).build().unwrap(),
            panicking("c", &log),
            worker("d", &log).build().unwrap(),
        ],
    )
    .await
    .unwrap_err();
    // Stopped gracefully, in reverse order (their post_stop ran), not killed.
    assert_eq!(
        log.entries(),
        ["start:a", "start:b", "panic:c", "stop:b", "stop:a"]
    );
    match &err {
        SupervisorError::ChildStartFailed { child, source, .. } => {
            assert_eq!(child.as_str(), "c");
            assert!(source.message().contains("c exploded"), "{source}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(ractor::registry::where_is("s3_panic_sup").is_none());
}

#[tokio::test]
async fn s6_panicking_start_child_returns_error_and_the_supervisor_lives_on() {
    let log = Log::new();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![worker("a", &log).build().unwrap()],
    )
    .await
    .unwrap();
    let a = child(&sup, "a").await;
    match sup.start_child(panicking("bad", &log)).await {
        Err(ChildError::StartFailed { child, source, .. }) => {
            assert_eq!(child.as_str(), "bad");
            assert!(source.message().contains("bad exploded"), "{source}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let snap = sup.inspect().await.unwrap();
    assert_eq!(snap.children.len(), 1, "no spec kept");
    assert_eq!(snap.restarts_in_window, 0, "nothing counted");
    assert_eq!(child(&sup, "a").await.get_id(), a.get_id(), "a untouched");

    let dynsup = DynamicSupervisor::start(None, DynamicFlags::default())
        .await
        .unwrap();
    dynsup
        .start_child(worker("w", &log).build().unwrap())
        .await
        .unwrap();
    assert!(matches!(
        dynsup.start_child(panicking("bad", &log)).await,
        Err(ChildError::StartFailed { .. })
    ));
    let counts = dynsup.count_children().await.unwrap();
    assert_eq!((counts.specs, counts.active), (1, 1));
    log.clear();
    sup.stop().await;
    dynsup.stop().await;
    assert_eq!(log.entries(), ["stop:a", "stop:w"], "graceful stops");
}

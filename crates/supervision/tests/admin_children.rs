//! A1..A5: child administration.
#[path = "support/helpers.rs"]
mod support;

use supervision::*;
use support::*;

#[tokio::test(start_paused = true)]
async fn a1_terminate_child_keeps_spec_no_restart() {
    let log = Log::new();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![
            typed("p", &log, RestartType::Permanent),
            typed("tmp", &log, RestartType::Temporary),
        ],
    )
    .await
    .unwrap();
    let p = child(&sup, "p").await;
    sup.terminate_child("p").await.unwrap();
    assert!(is_stopped(&p));
    sup.terminate_child("tmp").await.unwrap();
    let children = sup.which_children().await.unwrap();
    assert_eq!(children.len(), 1, "temporary spec removed");
    assert_eq!(status_name(&children[0].status), "not_running");
    assert_eq!(
        log.entries(),
        ["start:p", "start:tmp", "stop:p", "stop:tmp"]
    );
    assert_eq!(sup.inspect().await.unwrap().restarts_in_window, 0);
    assert!(matches!(
        sup.terminate_child("nope").await,
        Err(ChildError::NotFound { .. })
    ));
    sup.stop().await;
}

#[tokio::test]
async fn a2_restart_child() {
    let log = Log::new();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![typed("a", &log, RestartType::Permanent)],
    )
    .await
    .unwrap();
    assert!(matches!(
        sup.restart_child("a").await,
        Err(ChildError::Running { .. })
    ));
    assert!(matches!(
        sup.restart_child("zz").await,
        Err(ChildError::NotFound { .. })
    ));
    sup.terminate_child("a").await.unwrap();
    let cell = sup.restart_child("a").await.unwrap().expect("started");
    assert_eq!(child(&sup, "a").await.get_id(), cell.get_id());
    assert_eq!(sup.which_children().await.unwrap()[0].generation, 2);
    let err = sup.restart_child("a").await.unwrap_err();
    assert!(err.to_string().contains("`a` is running"));
    sup.stop().await;
}

#[tokio::test]
async fn a3_delete_child() {
    let log = Log::new();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![typed("a", &log, RestartType::Permanent)],
    )
    .await
    .unwrap();
    assert!(matches!(
        sup.delete_child("a").await,
        Err(ChildError::Running { .. })
    ));
    sup.terminate_child("a").await.unwrap();
    sup.delete_child("a").await.unwrap();
    assert_eq!(sup.count_children().await.unwrap().specs, 0);
    assert!(matches!(
        sup.delete_child("a").await,
        Err(ChildError::NotFound { .. })
    ));
    sup.stop().await;
}

#[tokio::test]
async fn a4_which_children_in_start_order_with_status_and_kind() {
    let log = Log::new();
    let inner = Supervisor::child_spec("inner", None, SupervisorFlags::default(), vec![])
        .build()
        .unwrap();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![
            typed("w1", &log, RestartType::Permanent),
            inner,
            typed("w2", &log, RestartType::Transient),
        ],
    )
    .await
    .unwrap();
    sup.terminate_child("w2").await.unwrap();
    sup.start_child(typed("w3", &log, RestartType::Permanent))
        .await
        .unwrap();
    let children = sup.which_children().await.unwrap();
    let rows: Vec<_> = children
        .iter()
        .map(|c| (c.id.as_str().to_string(), status_name(&c.status), c.kind))
        .collect();
    assert_eq!(
        rows,
        [
            ("w1".to_string(), "running", ChildKind::Worker),
            ("inner".to_string(), "running", ChildKind::Supervisor),
            ("w2".to_string(), "not_running", ChildKind::Worker),
            ("w3".to_string(), "running", ChildKind::Worker),
        ]
    );
    assert!(children[0].cell.as_ref().is_some_and(|c| !is_stopped(c)));
    sup.stop().await;
}

#[tokio::test]
async fn a5_count_children_agrees_with_which_children() {
    let log = Log::new();
    let inner = Supervisor::child_spec("inner", None, SupervisorFlags::default(), vec![])
        .build()
        .unwrap();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![
            typed("w1", &log, RestartType::Permanent),
            inner,
            typed("w2", &log, RestartType::Transient),
        ],
    )
    .await
    .unwrap();
    sup.terminate_child("w2").await.unwrap();
    let which = sup.which_children().await.unwrap();
    let counts = sup.count_children().await.unwrap();
    assert_eq!(counts.specs, which.len());
    assert_eq!(
        counts.active,
        which.iter().filter(|c| c.cell.is_some()).count()
    );
    assert_eq!(
        counts.supervisors,
        which
            .iter()
            .filter(|c| c.kind == ChildKind::Supervisor)
            .count()
    );
    assert_eq!(
        counts.workers,
        which.iter().filter(|c| c.kind == ChildKind::Worker).count()
    );
    assert_eq!(
        (
            counts.specs,
            counts.active,
            counts.supervisors,
            counts.workers
        ),
        (3, 2, 1, 2)
    );
    let snap = sup.inspect().await.unwrap();
    let json = serde_json::to_value(&snap).unwrap();
    assert_eq!(json["children"][2]["status"], "not_running");
    assert_eq!(json["children"][1]["kind"], "supervisor");
    sup.stop().await;
}

/// One status type for both views: `which_children` and `inspect` agree on every child's
/// status, the running instance sits beside the status (`cell` / `actor_id`, present exactly
/// when running), and the snapshot's serde form of a status is unchanged.
#[tokio::test(start_paused = true)]
async fn a4_which_children_and_inspect_share_one_status() {
    let log = Log::new();
    let backoff = Backoff::exponential(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_secs(10),
        0.0,
    )
    .unwrap();
    let flags = SupervisorFlags::builder().backoff(backoff).build().unwrap();
    let sup = Supervisor::start(
        None,
        flags,
        vec![
            typed("up", &log, RestartType::Permanent),
            typed("waiting", &log, RestartType::Permanent),
            typed("down", &log, RestartType::Transient),
        ],
    )
    .await
    .unwrap();
    sup.terminate_child("down").await.unwrap();
    let waiting = child(&sup, "waiting").await;
    send(&waiting, WMsg::Crash);
    waiting.wait(None).await.unwrap();
    eventually("restart decided", || log.count("crash:waiting") == 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(1)).await;

    let which = sup.which_children().await.unwrap();
    let snap = sup.inspect().await.unwrap();
    let statuses: Vec<ChildStatus> = which.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [
            ChildStatus::Running,
            ChildStatus::Restarting,
            ChildStatus::NotRunning
        ]
    );
    assert_eq!(
        snap.children.iter().map(|c| c.status).collect::<Vec<_>>(),
        statuses
    );
    for (info, row) in which.iter().zip(&snap.children) {
        assert_eq!(info.id, row.id);
        assert_eq!(info.cell.is_some(), info.status == ChildStatus::Running);
        assert_eq!(
            info.cell.as_ref().map(|c| c.get_id().to_string()),
            row.actor_id,
            "{}: the same instance in both views",
            info.id
        );
    }
    let json = serde_json::to_value(&snap).unwrap();
    let names: Vec<_> = (0..3)
        .map(|i| json["children"][i]["status"].clone())
        .collect();
    assert_eq!(names, ["running", "restarting", "not_running"]);
    let back: SupervisorSnapshot = serde_json::from_value(json).unwrap();
    assert_eq!(back, snap);
    sup.stop().await;
}

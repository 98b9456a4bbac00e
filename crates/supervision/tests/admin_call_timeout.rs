//! Every admin call into a supervisor has a bounded wait and a typed timeout error.
#[path = "support/helpers.rs"]
mod support;

use std::time::Duration;

use supervision::*;
use support::*;

/// A child whose start function takes an hour: the supervisor is busy for that long.
fn slow_start(id: &str) -> ChildSpec {
    ChildSpec::builder(id)
        .start(|_args| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(StartOutcome::Ignore)
        })
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn admin_calls_to_a_busy_supervisor_time_out_with_a_typed_error() {
    let log = Log::new();
    let sup = Supervisor::start(
        Some("busy_sup".into()),
        SupervisorFlags::default(),
        vec![worker("a", &log).build().unwrap()],
    )
    .await
    .unwrap();
    assert_eq!(sup.query_timeout(), DEFAULT_QUERY_TIMEOUT);
    assert_eq!(sup.change_timeout(), DEFAULT_CHANGE_TIMEOUT);
    // This caller knows its start takes an hour.
    let busy = sup.clone().with_change_timeout(Duration::from_secs(7200));
    let slow = tokio::spawn(async move { busy.start_child(slow_start("slow")).await });
    tokio::task::yield_now().await;

    let t0 = tokio::time::Instant::now();
    // The outer bound only turns a hang into a failure.
    let answer = tokio::time::timeout(Duration::from_secs(600), sup.which_children())
        .await
        .expect("which_children hung");
    match answer {
        Err(ChildError::Timeout {
            supervisor,
            call,
            waited,
        }) => {
            assert_eq!(supervisor, "busy_sup");
            assert_eq!(call, "which_children");
            assert_eq!(waited, DEFAULT_QUERY_TIMEOUT);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(t0.elapsed(), DEFAULT_QUERY_TIMEOUT);

    // Configurable per handle; the original handle keeps its bounds.
    let quick = sup
        .clone()
        .with_query_timeout(Duration::from_millis(10))
        .with_change_timeout(Duration::from_millis(20));
    assert!(matches!(
        quick.count_children().await,
        Err(ChildError::Timeout { call: "count_children", waited, .. }) if waited == Duration::from_millis(10)
    ));
    assert!(matches!(
        quick.inspect().await,
        Err(ChildError::Timeout {
            call: "inspect",
            ..
        })
    ));
    assert!(matches!(
        quick.terminate_child("a").await,
        Err(ChildError::Timeout { call: "terminate_child", waited, .. }) if waited == Duration::from_millis(20)
    ));
    assert!(matches!(
        quick.delete_child("a").await,
        Err(ChildError::Timeout {
            call: "delete_child",
            ..
        })
    ));
    assert!(matches!(
        quick.restart_child("a").await,
        Err(ChildError::Timeout {
            call: "restart_child",
            ..
        })
    ));
    assert!(matches!(
        quick.start_child(worker("b", &log).build().unwrap()).await,
        Err(ChildError::Timeout {
            call: "start_child",
            ..
        })
    ));
    let err = quick.count_children().await.unwrap_err();
    assert!(err.to_string().contains("busy_sup") && err.to_string().contains("count_children"));
    assert_eq!(sup.query_timeout(), DEFAULT_QUERY_TIMEOUT);

    // The slow start finishes after an hour; the supervisor answers again (and still carries
    // out the requests that timed out on our side, in order).
    assert!(slow.await.unwrap().unwrap().is_none());
    // terminate_child then delete_child removed a; restart_child found nothing; b started.
    let ids: Vec<_> = sup
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, [ChildId::from("slow"), ChildId::from("b")]);
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn dynamic_admin_calls_time_out_too() {
    let sup = DynamicSupervisor::start(None, DynamicFlags::default())
        .await
        .unwrap()
        .with_query_timeout(Duration::from_secs(1));
    assert_eq!(sup.query_timeout(), Duration::from_secs(1));
    let busy = sup.clone();
    let slow = tokio::spawn(async move { busy.start_child(slow_start("slow")).await });
    tokio::task::yield_now().await;
    let answer = tokio::time::timeout(Duration::from_secs(600), sup.count_children())
        .await
        .expect("count_children hung");
    assert!(matches!(
        answer,
        Err(ChildError::Timeout {
            call: "count_children",
            ..
        })
    ));
    let _ = slow.await.unwrap();
    sup.stop().await;
}

#[tokio::test]
async fn a_stopped_supervisor_is_unavailable_not_timed_out() {
    let sup = Supervisor::start(None, SupervisorFlags::default(), vec![])
        .await
        .unwrap();
    sup.stop().await;
    assert!(matches!(
        sup.which_children().await,
        Err(ChildError::Unavailable { .. })
    ));
}

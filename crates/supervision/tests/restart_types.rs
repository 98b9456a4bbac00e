//! R1..R6: restart types, and the normal / abnormal mapping onto ractor's exits.
#[path = "support/helpers.rs"]
mod support;

use supervision::*;
use support::*;

async fn one(r: RestartType, log: &Log) -> SupervisorRef {
    let flags = SupervisorFlags::builder().intensity(10).build().unwrap();
    Supervisor::start(None, flags, vec![typed("c", log, r)])
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn r1_permanent_restarted_after_normal_exit() {
    let log = Log::new();
    let sup = one(RestartType::Permanent, &log).await;
    let first = child(&sup, "c").await;
    send(&first, WMsg::Exit(None));
    eventually("restart", || log.count("start:c") == 2).await;
    assert_eq!(log.entries(), ["start:c", "exit:c", "stop:c", "start:c"]);
    assert_ne!(child(&sup, "c").await.get_id(), first.get_id());
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn r2_permanent_restarted_after_abnormal_exit() {
    let log = Log::new();
    let sup = one(RestartType::Permanent, &log).await;
    send(&child(&sup, "c").await, WMsg::Panic);
    eventually("restart", || log.count("start:c") == 2).await;
    assert_eq!(log.entries(), ["start:c", "crash:c", "start:c"]);
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn r3_transient_normal_exit_not_restarted_spec_kept() {
    let log = Log::new();
    let sup = one(RestartType::Transient, &log).await;
    for reason in [
        None,
        Some("normal"),
        Some("shutdown"),
        Some("shutdown:idle"),
    ] {
        if reason.is_some() {
            sup.restart_child("c").await.unwrap();
        }
        let cell = child(&sup, "c").await;
        send(&cell, WMsg::Exit(reason.map(String::from)));
        cell.wait(None).await.unwrap();
        let children = sup.which_children().await.unwrap();
        assert_eq!(children.len(), 1, "spec kept");
        assert_eq!(status_name(&children[0].status), "not_running");
    }
    assert_eq!(log.count("start:c"), 4, "one start per manual restart only");
    assert_eq!(sup.inspect().await.unwrap().restarts_in_window, 0);
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn r4_transient_abnormal_exit_restarted() {
    let log = Log::new();
    let sup = one(RestartType::Transient, &log).await;
    send(&child(&sup, "c").await, WMsg::Crash);
    eventually("restart", || log.count("start:c") == 2).await;
    // A stop reason other than normal/shutdown is abnormal too, and so is "killed".
    send(&child(&sup, "c").await, WMsg::Exit(Some("boom".into())));
    eventually("restart", || log.count("start:c") == 3).await;
    child(&sup, "c").await.kill();
    eventually("restart", || log.count("start:c") == 4).await;
    assert_eq!(sup.inspect().await.unwrap().restart_log.len(), 3);
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn r5_temporary_never_restarted_spec_deleted() {
    let log = Log::new();
    let sup = one(RestartType::Temporary, &log).await;
    let cell = child(&sup, "c").await;
    send(&cell, WMsg::Crash);
    cell.wait(None).await.unwrap();
    eventually("spec deleted", || log.len() == 2).await;
    let counts = sup.count_children().await.unwrap();
    assert_eq!(counts.specs, 0);
    assert_eq!(log.entries(), ["start:c", "crash:c"]);
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn r6_temporary_stopped_by_group_restart_is_removed() {
    let log = Log::new();
    let flags = SupervisorFlags::builder()
        .strategy(Strategy::OneForAll)
        .build()
        .unwrap();
    let sup = Supervisor::start(
        None,
        flags,
        vec![
            typed("a", &log, RestartType::Permanent),
            typed("tmp", &log, RestartType::Temporary),
            typed("b", &log, RestartType::Permanent),
        ],
    )
    .await
    .unwrap();
    log.clear();
    send(&child(&sup, "a").await, WMsg::Crash);
    eventually("group restart", || log.count("start:b") == 1).await;
    assert_eq!(
        log.entries(),
        ["crash:a", "stop:b", "stop:tmp", "start:a", "start:b"]
    );
    let ids: Vec<_> = sup
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, [ChildId::from("a"), ChildId::from("b")]);
    sup.stop().await;
}

#[test]
fn exit_reason_mapping() {
    for normal in [
        None,
        Some("normal"),
        Some("shutdown"),
        Some("shutdown:deploy"),
    ] {
        assert!(ExitReason::from_stop_reason(normal).normal, "{normal:?}");
    }
    for abnormal in [
        Some("killed"),
        Some("boom"),
        Some("shutdownx"),
        Some("Drained"),
    ] {
        assert!(
            !ExitReason::from_stop_reason(abnormal).normal,
            "{abnormal:?}"
        );
    }
    assert!(!ExitReason::failed("panic").normal);
    assert_eq!(ExitReason::from_stop_reason(None).reason, "normal");
}

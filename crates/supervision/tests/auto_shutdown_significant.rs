//! AS1..AS5: auto-shutdown on significant children.
#[path = "support/helpers.rs"]
mod support;

use supervision::*;
use support::*;

fn sig(id: &str, log: &Log) -> ChildSpec {
    worker(id, log)
        .restart(RestartType::Transient)
        .significant(true)
        .build()
        .unwrap()
}

async fn start(
    auto: AutoShutdown,
    strategy: Strategy,
    children: Vec<ChildSpec>,
    exits: &Log,
) -> SupervisorRef {
    let flags = SupervisorFlags::builder()
        .auto_shutdown(auto)
        .strategy(strategy)
        .intensity(5)
        .build()
        .unwrap();
    Supervisor::start_linked(None, flags, children, probe(exits).await)
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn as1_any_significant_normal_exit_shuts_down() {
    let (log, exits) = (Log::new(), Log::new());
    let sup = start(
        AutoShutdown::AnySignificant,
        Strategy::OneForOne,
        vec![
            worker("a", &log).build().unwrap(),
            sig("s", &log),
            worker("c", &log).build().unwrap(),
        ],
        &exits,
    )
    .await;
    log.clear();
    send(&child(&sup, "s").await, WMsg::Exit(None));
    sup.wait().await;
    assert_eq!(log.entries(), ["exit:s", "stop:s", "stop:c", "stop:a"]);
    eventually("exit", || exits.len() == 1).await;
    assert_eq!(exits.entries(), ["exit:shutdown"]);
}

#[tokio::test(start_paused = true)]
async fn as2_any_significant_crash_is_restarted() {
    let (log, exits) = (Log::new(), Log::new());
    let sup = start(
        AutoShutdown::AnySignificant,
        Strategy::OneForOne,
        vec![sig("s", &log)],
        &exits,
    )
    .await;
    send(&child(&sup, "s").await, WMsg::Crash);
    eventually("restarted", || log.count("start:s") == 2).await;
    assert_eq!(sup.count_children().await.unwrap().active, 1);
    assert!(exits.entries().is_empty());
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn as3_all_significant_waits_for_all() {
    let (log, exits) = (Log::new(), Log::new());
    let sup = start(
        AutoShutdown::AllSignificant,
        Strategy::OneForOne,
        vec![
            sig("s1", &log),
            sig("s2", &log),
            worker("w", &log).build().unwrap(),
        ],
        &exits,
    )
    .await;
    let s1 = child(&sup, "s1").await;
    send(&s1, WMsg::Exit(None));
    s1.wait(None).await.unwrap();
    let counts = sup.count_children().await.unwrap();
    assert_eq!(counts.active, 2, "still running after the first");
    log.clear();
    send(&child(&sup, "s2").await, WMsg::Exit(None));
    sup.wait().await;
    assert_eq!(log.entries(), ["exit:s2", "stop:s2", "stop:w"]);
    eventually("exit", || exits.len() == 1).await;
}

#[tokio::test(start_paused = true)]
async fn as4_terminate_child_of_significant_does_not_auto_shutdown() {
    let (log, exits) = (Log::new(), Log::new());
    let sup = start(
        AutoShutdown::AnySignificant,
        Strategy::OneForOne,
        vec![sig("s", &log), worker("w", &log).build().unwrap()],
        &exits,
    )
    .await;
    sup.terminate_child("s").await.unwrap();
    let counts = sup.count_children().await.unwrap();
    assert_eq!((counts.specs, counts.active), (2, 1));
    assert!(exits.entries().is_empty());
    sup.stop().await;
}

#[tokio::test(start_paused = true)]
async fn as5_significant_stopped_by_group_restart_does_not_auto_shutdown() {
    let (log, exits) = (Log::new(), Log::new());
    let sup = start(
        AutoShutdown::AnySignificant,
        Strategy::OneForAll,
        vec![sig("s", &log), worker("w", &log).build().unwrap()],
        &exits,
    )
    .await;
    log.clear();
    send(&child(&sup, "w").await, WMsg::Crash);
    eventually("group restarted", || log.count("start:w") == 1).await;
    assert_eq!(log.entries(), ["crash:w", "stop:s", "start:s", "start:w"]);
    assert_eq!(sup.count_children().await.unwrap().active, 2);
    assert!(exits.entries().is_empty());
    sup.stop().await;
}

//! ST3: rest_for_one.
#[path = "support/helpers.rs"]
mod support;

use supervision::*;
use support::*;

#[tokio::test(start_paused = true)]
async fn st3_rest_for_one_restarts_rest_in_order() {
    let log = Log::new();
    let flags = SupervisorFlags::builder()
        .strategy(Strategy::RestForOne)
        .build()
        .unwrap();
    let sup = Supervisor::start(
        None,
        flags,
        ["a", "b", "c", "d"]
            .iter()
            .map(|id| worker(id, &log).build().unwrap())
            .collect(),
    )
    .await
    .unwrap();
    let a_before = child(&sup, "a").await.get_id();
    log.clear();
    send(&child(&sup, "b").await, WMsg::Crash);
    eventually("rest restarted", || log.count("start:d") == 1).await;
    assert_eq!(
        log.entries(),
        [
            "crash:b", "stop:d", "stop:c", "start:b", "start:c", "start:d"
        ]
    );
    assert_eq!(child(&sup, "a").await.get_id(), a_before, "a untouched");
    sup.stop().await;
}

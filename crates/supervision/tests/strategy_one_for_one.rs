//! ST1: one_for_one.
#[path = "support/helpers.rs"]
mod support;

use supervision::*;
use support::*;

#[tokio::test(start_paused = true)]
async fn st1_one_for_one_others_untouched() {
    let log = Log::new();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![
            worker("a", &log).build().unwrap(),
            worker("b", &log).build().unwrap(),
            worker("c", &log).build().unwrap(),
        ],
    )
    .await
    .unwrap();
    let before = sup.which_children().await.unwrap();
    log.clear();
    send(&cell_of(&before, "b"), WMsg::Crash);
    eventually("b restarted", || log.count("start:b") == 1).await;
    let after = sup.which_children().await.unwrap();
    assert_eq!(log.entries(), ["crash:b", "start:b"]);
    assert_eq!(
        cell_of(&after, "a").get_id(),
        cell_of(&before, "a").get_id()
    );
    assert_eq!(
        cell_of(&after, "c").get_id(),
        cell_of(&before, "c").get_id()
    );
    assert_ne!(
        cell_of(&after, "b").get_id(),
        cell_of(&before, "b").get_id()
    );
    assert_eq!(after[1].generation, 2);
    sup.stop().await;
}

//! Per-turn cost from the CLI's cumulative totals: deltas add up to the CLI's own figure, and
//! totals continue across a new process instead of resetting or double counting.

#[path = "support/common.rs"]
mod support;

use claude_session::{Session, SessionEventKind, SessionLedger};
use claude_testing::fake_claude::{Fault, Scenario};
use support::{FakeEnv, pid_of, stop_and_check};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_turn_deltas_add_up_to_the_cumulative_total() {
    let env = FakeEnv::new();
    let scenario = Scenario::new().cost_per_turn(0.25);
    let session = env.session("cost", &scenario).await;
    let pid = pid_of(&session).await;
    let mut deltas = Vec::new();
    let mut last_cumulative = 0.0;
    for prompt in ["a", "b", "c"] {
        let out = session
            .query(prompt)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        deltas.push(out.cost.unwrap().cost_usd);
        last_cumulative = out.result.total_cost_usd.unwrap();
    }
    assert!(deltas.iter().all(|d| close(*d, 0.25)), "{deltas:?}");
    assert!(close(deltas.iter().sum(), last_cumulative));
    assert!(close(session.ledger().totals().cost_usd, 0.75));
    assert_eq!(session.ledger().totals().turns, 3);
    stop_and_check(session, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_continue_across_a_crash_and_a_new_process() {
    let env = FakeEnv::new();
    // The first process crashes in its third turn; the second process is healthy.
    let scenario =
        Scenario::new()
            .cost_per_turn(0.5)
            .fault_rule(claude_testing::fake_claude::FaultRule {
                on_turn: Some(3),
                on_start: Some(1),
                fault: Fault::crash_mid_turn(9, "crashed"),
            });
    let ledger = SessionLedger::new();
    let first = Session::start(
        env.config("carry", &scenario)
            .ledger(ledger.clone())
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    for prompt in ["one", "two"] {
        first.query(prompt).await.unwrap().collect().await.unwrap();
    }
    assert!(first.query("three").await.unwrap().collect().await.is_err());
    support::wait_stopped(&first).await;
    assert!(close(ledger.totals().cost_usd, 1.0));
    let id = ledger.session_id().expect("session id seen");

    // A restart: a new process on the same ledger, resuming the conversation.
    let options = env.options(&scenario).resume(id.clone()).build().unwrap();
    let config = claude_session::SessionConfig::builder(
        "carry",
        claude_testing::fake_claude::fake_claude_path(),
    )
    .options(options)
    .ledger(ledger.clone())
    .build()
    .unwrap();
    let second = Session::start(config).await.unwrap();
    let pid = pid_of(&second).await;
    let out = second.query("four").await.unwrap().collect().await.unwrap();
    // The new process reports its own cumulative 0.5; the turn cost 0.5, not 0.5 - 1.0 or 1.5.
    assert!(close(out.result.total_cost_usd.unwrap(), 0.5));
    assert!(close(out.cost.unwrap().cost_usd, 0.5));
    assert!(close(ledger.totals().cost_usd, 1.5));
    assert_eq!(ledger.totals().turns, 3);
    assert_eq!(ledger.session_id(), Some(id));
    stop_and_check(second, pid).await;
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_reset_rebases_costs_and_updates_the_session_id() {
    let env = FakeEnv::new();
    let scenario = Scenario::new().cost_per_turn(0.1).fault_on_turn(
        2,
        Fault::RotateSessionId {
            conversation_reset: true,
        },
    );
    let session = env.session("reset", &scenario).await;
    let pid = pid_of(&session).await;
    let mut events = session.events();
    let first = session.query("one").await.unwrap().collect().await.unwrap();
    let second = session.query("two").await.unwrap().collect().await.unwrap();
    assert_ne!(first.session_id(), second.session_id(), "the id rotated");
    assert_eq!(session.session_id().as_deref(), Some(second.session_id()));
    assert!(
        close(second.cost.unwrap().cost_usd, 0.1),
        "{:?}",
        second.cost
    );
    assert!(close(session.ledger().totals().cost_usd, 0.2));
    let mut changed = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let SessionEventKind::SessionIdChanged { session_id } = ev.kind {
            changed.push(session_id);
        }
    }
    assert_eq!(
        changed.last().map(String::as_str),
        Some(second.session_id())
    );
    stop_and_check(session, pid).await;
}

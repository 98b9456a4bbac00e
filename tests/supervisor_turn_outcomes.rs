//! `ask()` is `Ok` only for a complete, successful turn: an interrupted turn and a turn cut by a
//! shutdown are typed errors that carry what arrived (fake-claude).

use std::time::Duration;

use claude_supervisor::{
    ClaudeSupervisor, SessionEventKind, SessionSpec, SupervisorError, SupervisorEventKind,
};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::{Scenario, Turn};

async fn slow_tree(env: &FakeEnv) -> ClaudeSupervisor {
    let scenario = Scenario::new()
        .turn(Turn::text("the quick answer"))
        .default_turn(Turn::echo().slow(100, 100));
    ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .session(SessionSpec::new(
            "slow",
            env.options(&scenario).build().unwrap(),
        ))
        .start()
        .await
        .unwrap()
}

async fn turn_started(
    events: &mut tokio::sync::broadcast::Receiver<claude_supervisor::SupervisorEvent>,
) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("the turn starts")
            .unwrap();
        if matches!(
            event.kind,
            SupervisorEventKind::Session(SessionEventKind::TurnStarted { .. })
        ) {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_turn_is_ok_and_its_text_is_the_answer() {
    let env = FakeEnv::new();
    let tree = slow_tree(&env).await;
    let out = tree.session("slow").unwrap().ask("hi").await.unwrap();
    assert_eq!(out.text(), "the quick answer");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_ask_is_an_error_with_the_partial_text() {
    let env = FakeEnv::new();
    let tree = slow_tree(&env).await;
    let slow = tree.session("slow").unwrap();
    slow.ask("hi").await.unwrap();
    let mut events = tree.events();
    let asking = tokio::spawn({
        let slow = slow.clone();
        async move { slow.ask("tell me a long story please").await }
    });
    turn_started(&mut events).await;
    // Let the turn stream its first pieces (it lasts 10 s uninterrupted): the partial text is
    // what must survive the interrupt.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(slow.interrupt().await.unwrap(), "a turn was running");
    match asking.await.unwrap() {
        Err(SupervisorError::TurnFailed {
            name,
            subtype,
            output,
            ..
        }) => {
            assert_eq!(name, "slow");
            assert_eq!(subtype, "error_during_execution");
            let partial = output.assistant_text();
            assert!(!partial.is_empty(), "the partial text is kept");
            assert!(
                "fake reply to: tell me a long story please".starts_with(&partial),
                "{partial}"
            );
        }
        other => panic!("an interrupted turn must be an error, got {other:?}"),
    }
    // The session lives on.
    assert!(slow.ask("still there?").await.is_ok());
    tree.shutdown().await;
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_cut_by_shutdown_is_an_error_with_the_partial_text() {
    let env = FakeEnv::new();
    let tree = slow_tree(&env).await;
    let slow = tree.session("slow").unwrap();
    slow.ask("hi").await.unwrap();
    let mut events = tree.events();
    let asking = tokio::spawn({
        let slow = slow.clone();
        async move { slow.ask("tell me a long story please").await }
    });
    turn_started(&mut events).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    tree.shutdown().await;
    let err = asking
        .await
        .unwrap()
        .expect_err("a turn cut by shutdown must be an error");
    assert!(
        matches!(
            err,
            SupervisorError::TurnFailed { .. } | SupervisorError::TurnCut { .. }
        ),
        "{err:?}"
    );
    assert!(
        "fake reply to: tell me a long story please".starts_with(&err.partial_text()),
        "{}",
        err.partial_text()
    );
    env.assert_all_gone().await;
}

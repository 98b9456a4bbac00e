//! Hibernation never cuts a turn: the session itself decides whether it is idle, in order with
//! the turns sent to it, so a query that arrives just as the idle deadline passes is either
//! answered by the instance (hibernation waits) or refused before it starts and answered by the
//! next one. With an idle timeout of a millisecond every query races the deadline.

use std::time::Duration;

use claude_supervisor::{ClaudeSupervisor, SessionSpec};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::Scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_racing_the_idle_deadline_are_all_answered() {
    let env = FakeEnv::new();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .session(
            SessionSpec::new("sleepy", env.options(&Scenario::new()).build().unwrap())
                .idle_timeout(Duration::from_millis(1)),
        )
        .start()
        .await
        .unwrap();
    let sleepy = tree.session("sleepy").unwrap();
    for i in 0..40 {
        let prompt = format!("question {i}");
        let out = sleepy
            .ask(prompt.as_str())
            .await
            .unwrap_or_else(|e| panic!("`{prompt}` was cut or refused: {e}"));
        assert_eq!(
            out.final_text(),
            Some(format!("fake reply to: {prompt}").as_str())
        );
        if i % 4 == 0 {
            // Let it fall asleep now and then, so that wake-ups race too.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Several callers at once: a turn queued behind another starts as the keeper hears the
    // previous one end (and its idle deadline starts).
    let askers = (0..6).map(|a| {
        let sleepy = sleepy.clone();
        async move {
            for i in 0..15 {
                let prompt = format!("caller {a} question {i}");
                let out = sleepy
                    .ask(prompt.as_str())
                    .await
                    .unwrap_or_else(|e| panic!("`{prompt}` was cut or refused: {e}"));
                assert_eq!(
                    out.final_text(),
                    Some(format!("fake reply to: {prompt}").as_str())
                );
            }
        }
    });
    futures::future::join_all(askers).await;
    let generations = sleepy.generation().unwrap();
    assert!(
        generations > 1,
        "it hibernated and woke ({generations} instances)"
    );
    tree.shutdown().await;
    env.assert_all_gone().await;
}

//! A `result` the CLI writes just before it exits reaches the caller as the turn's answer, not
//! as "the CLI exited": the actor handles the exit only after the reader has delivered every
//! frame up to the end of stdout.
//!
//! The case that matters: `--resume` of an id the CLI does not have. It answers the first turn
//! with `errors:["No conversation found with session ID: …"]` and exits 1 at once; the
//! supervisor needs that answer to start a fresh conversation instead of resuming the same id
//! again. The exit and the frame race (the exit used to win about one time in five), so the
//! test repeats the case.

#[path = "support/common.rs"]
mod support;

use claude_session::{Session, SessionEventKind};
use claude_testing::fake_claude::Scenario;
use support::FakeEnv;

const UNKNOWN: &str = "99999999-9999-4999-8999-999999999999";

/// One session resuming an unknown id: its first turn's outcome and events, or what went wrong.
async fn lose_a_conversation(env: &FakeEnv, round: usize) -> Result<(), String> {
    let options = env
        .options(&Scenario::new())
        .build()
        .expect("options")
        .resuming(UNKNOWN);
    let config = claude_session::SessionConfig::builder(format!("lost-{round}"), env.cli_path())
        .options(options)
        .init_timeout("20s")
        .control_timeout("5s")
        .build()
        .expect("config");
    let session = Session::start(config).await.expect("session starts");
    let mut events = session.events();
    let outcome = session
        .query("hello")
        .await
        .expect("the query is taken")
        .collect_partial()
        .await;
    let _stop = StopOnDrop(Some(session));
    let out = outcome.map_err(|partial| {
        format!(
            "round {round}: the turn failed instead of answering: {}",
            partial.error
        )
    })?;
    if !out.is_error()
        || !out
            .result
            .errors()
            .iter()
            .any(|e| e.contains("No conversation found") && e.contains(UNKNOWN))
    {
        return Err(format!("round {round}: not the lost conversation: {out:?}"));
    }
    // The event follows the answer (the caller may see the answer first): wait for it.
    let lost = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let SessionEventKind::ConversationNotFound { session_id } = event.kind {
                        return Some(session_id);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    })
    .await;
    match lost {
        Ok(Some(id)) if id == UNKNOWN => Ok(()),
        other => Err(format!(
            "round {round}: no ConversationNotFound event: {other:?}"
        )),
    }
}

/// Stops the session when the round ends, however it ends.
struct StopOnDrop(Option<Session>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(session) = self.0.take() {
            tokio::spawn(async move { session.stop().await });
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_written_just_before_the_exit_is_the_turns_outcome() {
    let env = FakeEnv::new();
    // Sessions run eight at a time: a busy host is where the exit overtakes the frame.
    let mut failures = Vec::new();
    for batch in 0..4 {
        let rounds = (0..8).map(|i| lose_a_conversation(&env, batch * 8 + i));
        for result in futures::future::join_all(rounds).await {
            if let Err(e) = result {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    env.assert_all_gone().await;
}

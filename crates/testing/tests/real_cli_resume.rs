//! `--resume=<id>` in a new real-CLI process keeps the session id and re-sends the earlier
//! history to the API.

use std::time::Duration;

use claude_testing::fake_api::{FakeApi, assistant_texts_of, user_texts_of};
use claude_testing::procs;
use claude_testing::real_cli::{LeakCheck, Sandbox, result_of, session_id_of};

const STEP: Duration = Duration::from_secs(60);

#[tokio::test]
async fn real_cli_resume_carries_history_and_keeps_session_id() {
    let cli = claude_testing::require_real_cli!();
    let mut leaks = LeakCheck::start();
    let api = FakeApi::start().await;
    let sandbox = Sandbox::new().expect("sandbox");

    // First process: one turn, then a clean exit.
    let mut first = cli
        .spawn_stream_json(&sandbox, &api, &[])
        .expect("spawn the first CLI");
    leaks.watch_group(first.pgid());
    first.initialize(STEP).await.expect("initialize");
    first
        .send_user_text("remember the word PINEAPPLE")
        .await
        .expect("send");
    let turn1 = first.read_turn(STEP).await.expect("turn 1");
    assert_eq!(result_of(&turn1).expect("result")["is_error"], false);
    let session_id = session_id_of(&turn1).expect("session id");
    let first_pid = first.pid();
    let shutdown = first
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");
    assert!(shutdown.status.success(), "{:?}", shutdown.status);
    // Never resume while the earlier process may be alive.
    procs::assert_pids_gone(&[first_pid]);
    assert!(
        sandbox.session_file(&session_id).is_some(),
        "session file written"
    );

    // Second process resumes it.
    api.clear_requests();
    let resume = format!("--resume={session_id}");
    let mut second = cli
        .spawn_stream_json(&sandbox, &api, &[&resume])
        .expect("spawn the resuming CLI");
    leaks.watch_group(second.pgid());
    second.initialize(STEP).await.expect("initialize");
    second
        .send_user_text("what was the word?")
        .await
        .expect("send");
    let turn2 = second.read_turn(STEP).await.expect("turn 2");
    let result2 = result_of(&turn2).expect("result");
    assert_eq!(result2["is_error"], false, "{result2}");
    assert_eq!(result2["result"], "mock reply to: what was the word?");
    assert_eq!(turn2[0]["subtype"], "init");
    assert_eq!(
        turn2[0]["session_id"],
        session_id.as_str(),
        "init keeps the id"
    );
    assert_eq!(
        result2["session_id"],
        session_id.as_str(),
        "result keeps the id"
    );

    let request = api
        .last_main_request()
        .expect("a main request after resume");
    assert_eq!(
        user_texts_of(&request),
        ["remember the word PINEAPPLE", "what was the word?"],
        "the resumed request carries the earlier turn"
    );
    assert_eq!(
        assistant_texts_of(&request),
        ["mock reply to: remember the word PINEAPPLE"]
    );
    assert_eq!(
        request.header("x-claude-code-session-id"),
        Some(session_id.as_str())
    );

    let pgid = second.pgid();
    let shutdown = second
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");
    assert!(shutdown.status.success(), "{:?}", shutdown.status);
    procs::assert_no_survivors(pgid);
    procs::assert_no_zombies();
    leaks.assert_clean();
}

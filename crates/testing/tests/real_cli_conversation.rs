//! The real CLI holds a two-turn conversation in one process: the second API request carries
//! the first turn, both turns share one session id, and closing stdin ends the process cleanly.

use std::time::Duration;

use claude_testing::fake_api::{FakeApi, assistant_texts_of, user_texts_of};
use claude_testing::procs;
use claude_testing::real_cli::{
    LeakCheck, Sandbox, ShutdownStage, assistant_texts, result_of, session_id_of,
};

const STEP: Duration = Duration::from_secs(60);

#[tokio::test]
async fn real_cli_two_turns_carry_history() {
    let cli = claude_testing::require_real_cli!();
    let mut leaks = LeakCheck::start();
    let api = FakeApi::start().await;
    let sandbox = Sandbox::new().expect("sandbox");
    let mut proc = cli
        .spawn_stream_json(&sandbox, &api, &[])
        .expect("spawn the real CLI");
    leaks.watch_group(proc.pgid());

    let init = proc.initialize(STEP).await.expect("initialize answer");
    assert_eq!(init["response"]["subtype"], "success", "{init}");
    assert_eq!(
        init["response"]["response"]["claude_code_version"],
        cli.version()
    );

    proc.send_user_text("first turn")
        .await
        .expect("send turn 1");
    let turn1 = proc.read_turn(STEP).await.expect("turn 1");
    assert_eq!(turn1[0]["type"], "system", "a turn starts with init");
    assert_eq!(turn1[0]["subtype"], "init");
    let result1 = result_of(&turn1).expect("turn 1 result");
    assert_eq!(result1["is_error"], false, "{result1}");
    assert_eq!(result1["result"], "mock reply to: first turn");
    assert_eq!(assistant_texts(&turn1), ["mock reply to: first turn"]);

    proc.send_user_text("second turn")
        .await
        .expect("send turn 2");
    let turn2 = proc.read_turn(STEP).await.expect("turn 2");
    let result2 = result_of(&turn2).expect("turn 2 result");
    assert_eq!(result2["is_error"], false, "{result2}");
    assert_eq!(result2["result"], "mock reply to: second turn");
    assert_eq!(session_id_of(&turn1), session_id_of(&turn2));

    let main = api.main_requests();
    assert_eq!(
        main.len(),
        2,
        "one API request per turn:\n{}",
        api.describe_log()
    );
    let last = api.last_main_request().expect("a main request");
    assert_eq!(user_texts_of(&last), ["first turn", "second turn"]);
    assert_eq!(assistant_texts_of(&last), ["mock reply to: first turn"]);
    assert_eq!(user_texts_of(&main[0]), ["first turn"]);
    assert!(last.is_stream(), "the CLI streams its main requests");
    assert_eq!(last.query.as_deref(), Some("beta=true"));
    assert_eq!(
        last.header("x-api-key"),
        Some(claude_testing::real_cli::DUMMY_API_KEY)
    );
    assert!(
        last.system_text().is_some_and(|s| !s.is_empty()),
        "a system prompt is sent"
    );
    assert!(last.tool_names().iter().any(|t| t == "Bash"));
    assert!(
        last.model().is_some_and(|m| !m.is_empty()),
        "a model is named"
    );

    let session_id = session_id_of(&turn1).expect("session id");
    let pgid = proc.pgid();
    let shutdown = proc
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");
    assert_eq!(
        shutdown.stage,
        ShutdownStage::StdinClosed,
        "closing stdin ends it"
    );
    assert!(shutdown.status.success(), "{:?}", shutdown.status);
    assert!(shutdown.leftovers.is_empty(), "{:?}", shutdown.leftovers);
    assert!(
        sandbox.session_file(&session_id).is_some(),
        "the session file is written inside the sandbox"
    );
    procs::assert_no_survivors(pgid);
    procs::assert_no_zombies();
    leaks.assert_clean();
}

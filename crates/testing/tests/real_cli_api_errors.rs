//! How the real CLI takes the fake API's error modes: an HTTP 500 ends the turn with
//! `is_error:true` (and the process lives on); an SSE `error` event makes it retry the same
//! request without streaming, and the turn succeeds.

use std::time::Duration;

use claude_testing::fake_api::{FakeApi, Reply};
use claude_testing::procs;
use claude_testing::real_cli::{LeakCheck, Sandbox, result_of};

const STEP: Duration = Duration::from_secs(60);

#[tokio::test]
async fn real_cli_http_error_then_sse_error_retry() {
    let cli = claude_testing::require_real_cli!();
    let mut leaks = LeakCheck::start();
    let api = FakeApi::start().await;
    let sandbox = Sandbox::new().expect("sandbox");
    let mut proc = cli
        .spawn_stream_json(&sandbox, &api, &[])
        .expect("spawn the real CLI");
    leaks.watch_group(proc.pgid());
    proc.initialize(STEP).await.expect("initialize");

    // HTTP 500 (CLAUDE_CODE_MAX_RETRIES=0: no retry).
    proc.send_user_text("ERROR500 please").await.expect("send");
    let turn = proc.read_turn(STEP).await.expect("error turn");
    let result = result_of(&turn).expect("result");
    assert_eq!(result["is_error"], true, "{result}");
    let errors_500 = api
        .main_requests()
        .iter()
        .filter(|r| r.latest_user_text().as_deref() == Some("ERROR500 please"))
        .count();
    assert_eq!(errors_500, 1, "no retry:\n{}", api.describe_log());

    // An SSE error event: the CLI retries the same request without streaming.
    api.clear_requests();
    api.push_reply(Reply::sse_error("overloaded for the test"));
    proc.send_user_text("after the overload")
        .await
        .expect("send");
    let turn = proc.read_turn(STEP).await.expect("retried turn");
    let result = result_of(&turn).expect("result");
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(result["result"], "mock reply to: after the overload");
    let main = api.main_requests();
    assert_eq!(main.len(), 2, "{}", api.describe_log());
    assert!(main[0].is_stream());
    assert!(!main[1].is_stream(), "the retry is not streamed");
    assert_eq!(main[0].messages(), main[1].messages(), "the same request");

    let pgid = proc.pgid();
    let shutdown = proc
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");
    assert!(
        shutdown.status.success(),
        "the last turn succeeded: {:?}",
        shutdown.status
    );
    procs::assert_no_survivors(pgid);
    procs::assert_no_zombies();
    leaks.assert_clean();
}

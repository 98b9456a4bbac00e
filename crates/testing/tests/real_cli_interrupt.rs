//! An `interrupt` control request mid-stream ends the running turn of the real CLI with
//! `error_during_execution`, and the same process then serves the next turn.

use std::time::Duration;

use claude_testing::fake_api::{FakeApi, Reply, user_texts_of};
use claude_testing::procs;
use claude_testing::real_cli::{LeakCheck, Sandbox, result_of};
use serde_json::Value;

const STEP: Duration = Duration::from_secs(60);

#[tokio::test]
async fn real_cli_interrupt_mid_stream_then_next_turn() {
    let cli = claude_testing::require_real_cli!();
    let mut leaks = LeakCheck::start();
    let api = FakeApi::start().await;
    // A stream far longer than the test: only the interrupt can end this turn in time.
    api.on_user_text(
        "COUNT_FOREVER",
        Reply::slow("tick ".repeat(2000), 2000, Duration::from_millis(100)),
    );
    let sandbox = Sandbox::new().expect("sandbox");
    let mut proc = cli
        .spawn_stream_json(&sandbox, &api, &["--include-partial-messages"])
        .expect("spawn the real CLI");
    leaks.watch_group(proc.pgid());
    let pid = proc.pid();
    proc.initialize(STEP).await.expect("initialize");

    proc.send_user_text("COUNT_FOREVER please")
        .await
        .expect("send");
    // Wait until text is streaming.
    proc.read_until(STEP, |l| {
        l["type"] == "stream_event"
            && l["event"]["type"] == "content_block_delta"
            && l["event"]["delta"]["type"] == "text_delta"
    })
    .await
    .expect("the slow reply starts streaming");

    let request_id = proc.interrupt().await.expect("send interrupt");
    let mut reply: Option<Value> = None;
    let mut result: Option<Value> = None;
    while reply.is_none() || result.is_none() {
        let line = proc
            .next_json(STEP)
            .await
            .expect("interrupt reply and result");
        if line["type"] == "control_response" && line["response"]["request_id"] == request_id {
            reply = Some(line);
        } else if line["type"] == "result" {
            result = Some(line);
        }
    }
    let (reply, result) = (reply.unwrap_or_default(), result.unwrap_or_default());
    assert_eq!(reply["response"]["subtype"], "success", "{reply}");
    assert_eq!(result["is_error"], true, "{result}");
    assert_eq!(result["subtype"], "error_during_execution", "{result}");

    // The same process answers the next turn.
    proc.send_user_text("after interrupt").await.expect("send");
    let turn = proc.read_turn(STEP).await.expect("next turn");
    let next = result_of(&turn).expect("result");
    assert_eq!(next["is_error"], false, "{next}");
    assert_eq!(next["result"], "mock reply to: after interrupt");
    assert_eq!(proc.pid(), pid);
    assert!(
        procs::info(pid).is_some_and(|p| !p.is_zombie()),
        "still alive"
    );

    let last = api.last_main_request().expect("a main request");
    let texts = user_texts_of(&last);
    assert_eq!(
        texts.first().map(String::as_str),
        Some("COUNT_FOREVER please")
    );
    assert_eq!(texts.last().map(String::as_str), Some("after interrupt"));

    let pgid = proc.pgid();
    let shutdown = proc
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");
    assert!(shutdown.status.success(), "{:?}", shutdown.status);
    procs::assert_no_survivors(pgid);
    procs::assert_no_zombies();
    leaks.assert_clean();
}

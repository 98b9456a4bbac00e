//! fake-claude speaks the two-way protocol of the real CLI: initialize and other control
//! requests, turns with cumulative cost, queued user lines, interrupt, end of input, fatal input,
//! SIGTERM.

#[path = "fake_claude_common.rs"]
mod common;

use std::time::Duration;

use claude_testing::fake_claude::{Scenario, Turn};
use common::{Env, Fake, assistant_texts, of_type};
use nix::sys::signal::Signal;
use serde_json::json;

#[test]
fn nothing_is_printed_before_the_first_input() {
    let env = Env::new();
    let fake = Fake::spawn(&env, &[], &[]);
    assert_eq!(fake.try_line(Duration::from_millis(300)), None);
}

#[test]
fn initialize_is_answered_like_the_real_cli() {
    let env = Env::new();
    let mut fake = Fake::spawn(&env, &[], &[]);
    let r = fake.initialize(json!(null));
    assert!(
        r["commands"].as_array().is_some_and(|c| !c.is_empty()),
        "{r}"
    );
    assert!(r["models"].as_array().is_some_and(|m| !m.is_empty()), "{r}");
    assert_eq!(r["account"]["apiProvider"], "firstParty");
    assert_eq!(
        r["claude_code_version"],
        claude_testing::fake_claude::FAKE_VERSION.to_string()
    );
    assert_eq!(r["fake"], true);
    assert_eq!(r["pid"], fake.child.id());
    assert_eq!(r["current_permission_mode"], "default");
}

#[test]
fn other_control_requests_are_answered() {
    let env = Env::new();
    let mut fake = Fake::spawn(&env, &[], &[]);
    fake.control(
        "m",
        json!({"subtype": "set_model", "model": "claude-haiku-4-5"}),
    );
    let r = fake.next();
    assert_eq!(r["response"]["request_id"], "m");
    assert_eq!(r["response"]["response"]["model"], "claude-haiku-4-5");

    fake.control(
        "p",
        json!({"subtype": "set_permission_mode", "mode": "acceptEdits"}),
    );
    let r = fake.next();
    assert_eq!(r["response"]["response"]["mode"], "acceptEdits");
    let status = fake.next();
    assert_eq!(status["subtype"], "status");
    assert_eq!(status["permissionMode"], "acceptEdits");

    fake.control("s", json!({"subtype": "mcp_status"}));
    assert_eq!(fake.next()["response"]["response"]["mcpServers"], json!([]));

    fake.control("c", json!({"subtype": "get_context_usage"}));
    let r = fake.next();
    assert!(
        r["response"]["response"]["maxTokens"].as_u64().is_some(),
        "{r}"
    );

    fake.control("u", json!({"subtype": "no_such_subtype"}));
    let r = fake.next();
    assert_eq!(r["response"]["subtype"], "error");
    assert_eq!(r["response"]["request_id"], "u");
    assert_eq!(
        r["response"]["error"],
        "Unsupported control request subtype: no_such_subtype"
    );

    // The new model and mode show in the next turn.
    fake.user("hi");
    let frames = fake.until_result();
    assert_eq!(frames[0]["subtype"], "init");
    assert_eq!(frames[0]["model"], "claude-haiku-4-5");
    assert_eq!(frames[0]["permissionMode"], "acceptEdits");
    let result = frames.last().expect("result");
    assert!(
        result["modelUsage"]["claude-haiku-4-5"].is_object(),
        "{result}"
    );
}

#[test]
fn two_turns_have_cumulative_cost_and_one_line_per_block() {
    let env = Env::new();
    let mut fake = Fake::spawn(
        &env,
        &[
            "--model",
            "claude-opus-5-5",
            "--unknown-flag",
            "--another=1",
        ],
        &[],
    );
    fake.initialize(json!(null));
    fake.user("first turn");
    let t1 = fake.until_result();
    fake.user("second turn");
    let t2 = fake.until_result();

    let sid = t1[0]["session_id"].as_str().expect("session id").to_owned();
    assert!(uuid::Uuid::parse_str(&sid).is_ok(), "{sid}");
    for t in [&t1, &t2] {
        assert_eq!(t[0]["type"], "system");
        assert_eq!(t[0]["subtype"], "init");
        assert_eq!(t[0]["session_id"], sid.as_str());
        let r = t.last().expect("result");
        assert_eq!(r["subtype"], "success");
        assert_eq!(r["is_error"], false);
        assert_eq!(r["num_turns"], 1);
        assert_eq!(r["session_id"], sid.as_str());
        assert!(r["duration_ms"].is_u64());
        assert!(r["usage"]["input_tokens"].is_u64());
        // Without --include-partial-messages there are no stream events.
        assert!(of_type(t, "stream_event").is_empty());
    }
    assert_eq!(assistant_texts(&t1), ["fake reply to: first turn"]);
    assert_eq!(
        t2.last().expect("result")["result"],
        "fake reply to: second turn"
    );
    let c1 = t1.last().expect("r")["total_cost_usd"]
        .as_f64()
        .expect("cost");
    let c2 = t2.last().expect("r")["total_cost_usd"]
        .as_f64()
        .expect("cost");
    assert!((c1 - 0.001).abs() < 1e-9, "{c1}");
    assert!((c2 - 0.002).abs() < 1e-9, "{c2}");
    let mu = &t2.last().expect("r")["modelUsage"]["claude-opus-5-5"];
    assert!(
        (mu["costUSD"].as_f64().expect("costUSD") - 0.002).abs() < 1e-9,
        "{mu}"
    );
    let in1 = t1.last().expect("r")["usage"]["input_tokens"]
        .as_u64()
        .expect("tokens");
    let in2 = t2.last().expect("r")["usage"]["input_tokens"]
        .as_u64()
        .expect("tokens");
    assert_eq!(mu["inputTokens"].as_u64(), Some(in1 + in2));
    // usage and model_usage_since_last_result are the turn's own figures.
    let since = &t2.last().expect("r")["model_usage_since_last_result"]["claude-opus-5-5"];
    assert_eq!(since["inputTokens"].as_u64(), Some(in2));
    assert!(
        (since["costUSD"].as_f64().expect("costUSD") - 0.001).abs() < 1e-9,
        "{since}"
    );

    fake.close_stdin();
    assert_eq!(fake.wait().code(), Some(0));
}

#[test]
fn scripted_cost_and_text() {
    let env = Env::new();
    let scenario = Scenario::new()
        .cost_per_turn(0.25)
        .turn(Turn::text("scripted"))
        .turn(Turn::echo().cost(1.0));
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.user("a");
    let r1 = fake.until_result().pop().expect("result");
    fake.user("b");
    let r2 = fake.until_result().pop().expect("result");
    fake.user("c");
    let r3 = fake.until_result().pop().expect("result");
    assert_eq!(r1["result"], "scripted");
    assert_eq!(r2["result"], "fake reply to: b");
    assert_eq!(r1["total_cost_usd"], 0.25);
    assert_eq!(r2["total_cost_usd"], 1.25);
    assert_eq!(r3["total_cost_usd"], 1.5);
}

#[test]
fn partial_messages_stream_events_share_the_message_id() {
    let env = Env::new();
    let mut fake = Fake::spawn(&env, &["--include-partial-messages"], &[]);
    fake.user("stream me");
    let frames = fake.until_result();
    let events = of_type(&frames, "stream_event");
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event"]["type"].as_str())
        .collect();
    assert_eq!(kinds.first(), Some(&"message_start"));
    assert_eq!(kinds.last(), Some(&"message_stop"));
    let text: String = events
        .iter()
        .filter(|e| e["event"]["type"] == "content_block_delta")
        .filter_map(|e| e["event"]["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "fake reply to: stream me");
    let assistant = of_type(&frames, "assistant");
    assert_eq!(assistant.len(), 1);
    let id = &assistant[0]["message"]["id"];
    assert!(events.iter().all(|e| &e["api_message_id"] == id));
}

#[test]
fn a_user_line_sent_mid_turn_is_queued_and_gets_its_own_turn() {
    let env = Env::new();
    let scenario = Scenario::new().turn(Turn::echo().slow(4, 100));
    let mut fake = Fake::spawn(&env, &["--include-partial-messages"], &scenario.to_env());
    fake.user("first");
    let init = fake.next();
    assert_eq!(init["subtype"], "init");
    fake.user("second");
    let t1 = fake.until_result();
    let t2 = fake.until_result();
    assert_eq!(t1.last().expect("r")["result"], "fake reply to: first");
    assert_eq!(t2[0]["subtype"], "init");
    assert_eq!(t2.last().expect("r")["result"], "fake reply to: second");
    assert_eq!(t2.last().expect("r")["total_cost_usd"], 0.002);
}

#[test]
fn interrupt_mid_stream_ends_the_turn_and_the_next_turn_works() {
    let env = Env::new();
    let scenario = Scenario::new().turn(Turn::text("one two three four five six").slow(30, 200));
    let mut fake = Fake::spawn(&env, &["--include-partial-messages"], &scenario.to_env());
    fake.user("slow please");
    fake.until(|v| v["event"]["type"] == "content_block_delta");
    fake.control("int_1", json!({"subtype": "interrupt"}));
    let frames = fake.until_result();
    let ack = frames
        .iter()
        .position(|f| f["type"] == "control_response")
        .expect("interrupt answered");
    assert_eq!(frames[ack]["response"]["request_id"], "int_1");
    assert_eq!(
        frames[ack]["response"]["response"],
        json!({"still_queued": []})
    );
    let partial = frames
        .iter()
        .position(|f| f["type"] == "assistant")
        .expect("partial assistant");
    assert!(partial > ack);
    assert_eq!(frames[partial]["aborted"], true);
    let text = frames[partial]["message"]["content"][0]["text"]
        .as_str()
        .expect("text");
    assert!(
        "one two three four five six".starts_with(text) && text.len() < 27,
        "{text}"
    );
    let user = frames
        .iter()
        .position(|f| f["type"] == "user")
        .expect("user line");
    assert!(user > partial);
    assert_eq!(
        frames[user]["message"]["content"][0]["text"],
        "[Request interrupted by user]"
    );
    let r = frames.last().expect("result");
    assert_eq!(r["subtype"], "error_during_execution");
    assert_eq!(r["is_error"], true);
    assert_eq!(r["terminal_reason"], "aborted_streaming");

    fake.user("after interrupt");
    let t2 = fake.until_result();
    assert_eq!(
        t2.last().expect("r")["result"],
        "fake reply to: after interrupt"
    );
    assert_eq!(t2.last().expect("r")["is_error"], false);
}

#[test]
fn interrupt_with_no_turn_is_acknowledged() {
    let env = Env::new();
    let mut fake = Fake::spawn(&env, &[], &[]);
    fake.control("i", json!({"subtype": "interrupt"}));
    let r = fake.next();
    assert_eq!(r["response"]["subtype"], "success");
    assert_eq!(r["response"]["request_id"], "i");
}

#[test]
fn closing_stdin_finishes_the_running_turn_then_exits_0() {
    let env = Env::new();
    let scenario = Scenario::new().turn(Turn::echo().slow(5, 100));
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.user("eof test");
    assert_eq!(fake.next()["subtype"], "init");
    fake.close_stdin();
    let lines = fake.rest();
    let last: serde_json::Value =
        serde_json::from_str(lines.last().expect("a result")).expect("json");
    assert_eq!(last["type"], "result");
    assert_eq!(last["result"], "fake reply to: eof test");
    assert_eq!(fake.wait().code(), Some(0));
}

#[test]
fn exit_code_is_1_when_the_last_result_is_an_error() {
    let env = Env::new();
    let scenario = Scenario::new().turn(Turn::echo().api_error("API Error: 500 fake"));
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.user("x");
    let r = fake.until_result().pop().expect("result");
    // An API error is subtype success with is_error true, like the real CLI.
    assert_eq!(r["subtype"], "success");
    assert_eq!(r["is_error"], true);
    assert_eq!(r["result"], "API Error: 500 fake");
    fake.close_stdin();
    assert_eq!(fake.wait().code(), Some(1));
}

#[test]
fn invalid_json_on_stdin_is_fatal() {
    let env = Env::new();
    let mut fake = Fake::spawn(&env, &[], &[]);
    fake.send_raw("{not json");
    assert_eq!(fake.wait().code(), Some(1));
    fake.wait_stderr_closed();
    assert!(
        fake.stderr().contains("Error parsing streaming input line"),
        "{}",
        fake.stderr()
    );
}

#[test]
fn a_user_line_without_message_is_fatal() {
    let env = Env::new();
    let mut fake = Fake::spawn(&env, &[], &[]);
    fake.send(&json!({"type": "user", "session_id": "default"}));
    assert_eq!(fake.wait().code(), Some(1));
    fake.wait_stderr_closed();
    assert!(!fake.stderr().is_empty());
}

#[test]
fn unknown_input_types_and_cancel_requests_are_ignored() {
    let env = Env::new();
    let mut fake = Fake::spawn(&env, &[], &[]);
    fake.send(&json!({"type": "keep_alive"}));
    fake.send(&json!({"type": "control_cancel_request", "request_id": "nope"}));
    fake.user("still alive");
    let r = fake.until_result().pop().expect("result");
    assert_eq!(r["result"], "fake reply to: still alive");
}

#[test]
fn sigterm_exits_143() {
    let env = Env::new();
    let mut fake = Fake::spawn(&env, &[], &[]);
    fake.user("hi");
    fake.until_result();
    fake.signal(Signal::SIGTERM);
    assert_eq!(fake.wait().code(), Some(143));
}

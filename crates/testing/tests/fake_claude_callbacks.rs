//! Callbacks: `can_use_tool` with `--permission-prompt-tool stdio`, `hook_callback`s in the real
//! order, a PreToolUse deny, the Bash-like tool really running, and an interrupt killing it.

#[path = "fake_claude_common.rs"]
mod common;

use std::time::{Duration, Instant};

use claude_testing::fake_claude::{Scenario, Turn};
use common::{Env, Fake, PATIENCE, alive, of_type};
use serde_json::{Value, json};

fn answer(fake: &mut Fake, request: &Value, response: Value) {
    fake.send(&json!({
        "type": "control_response",
        "response": {"subtype": "success", "request_id": request["request_id"], "response": response},
    }));
}

/// Run a turn to its result, answering every control request with `respond`.
fn turn_answering(fake: &mut Fake, mut respond: impl FnMut(&Value) -> Value) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let v = fake.next();
        if v["type"] == "control_request" {
            let r = respond(&v);
            answer(fake, &v, r);
        }
        let done = v["type"] == "result";
        frames.push(v);
        if done {
            return frames;
        }
    }
}

fn tool_results(frames: &[Value]) -> Vec<Value> {
    of_type(frames, "user")
        .into_iter()
        .flat_map(|u| {
            u["message"]["content"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|b| b["type"] == "tool_result")
        .collect()
}

#[test]
fn can_use_tool_allow_runs_the_tool() {
    let env = Env::new();
    let scenario = Scenario::new().turn(Turn::tool("echo perm-test-1 | tee perm1.txt"));
    let mut fake = Fake::spawn(
        &env,
        &["--permission-prompt-tool", "stdio"],
        &scenario.to_env(),
    );
    fake.initialize(Value::Null);
    fake.user("RUN_TOOL");
    let mut asked = Vec::new();
    let frames = turn_answering(&mut fake, |req| {
        asked.push(req["request"].clone());
        json!({"behavior": "allow", "updatedInput": req["request"]["input"]})
    });
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["subtype"], "can_use_tool");
    assert_eq!(asked[0]["tool_name"], "Bash");
    assert_eq!(
        asked[0]["input"]["command"],
        "echo perm-test-1 | tee perm1.txt"
    );

    // Text block and tool_use block: two lines of one API message.
    let assistants = of_type(&frames, "assistant");
    assert_eq!(
        assistants[0]["message"]["id"],
        assistants[1]["message"]["id"]
    );
    let tool_use = &assistants[1]["message"]["content"][0];
    assert_eq!(tool_use["type"], "tool_use");
    assert_eq!(asked[0]["tool_use_id"], tool_use["id"]);

    let results = tool_results(&frames);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["content"], "perm-test-1");
    assert_eq!(results[0]["is_error"], false);
    assert_eq!(results[0]["tool_use_id"], tool_use["id"]);
    assert_eq!(
        std::fs::read_to_string(env.work().join("perm1.txt")).expect("tool ran"),
        "perm-test-1\n"
    );
    let r = frames.last().expect("result");
    assert_eq!(r["result"], "tool result was: perm-test-1");
    assert_eq!(r["num_turns"], 2);
    assert_eq!(r["permission_denials"], json!([]));
}

#[test]
fn can_use_tool_allow_with_updated_input_runs_the_new_command() {
    let env = Env::new();
    let scenario = Scenario::new().turn(Turn::tool("echo original"));
    let mut fake = Fake::spawn(
        &env,
        &["--permission-prompt-tool=stdio"],
        &scenario.to_env(),
    );
    fake.user("go");
    let frames = turn_answering(
        &mut fake,
        |_| json!({"behavior": "allow", "updatedInput": {"command": "echo rewritten"}}),
    );
    assert_eq!(tool_results(&frames)[0]["content"], "rewritten");
}

#[test]
fn can_use_tool_deny_shows_in_permission_denials() {
    let env = Env::new();
    let scenario = Scenario::new().turn(Turn::tool("touch should-not-exist"));
    let mut fake = Fake::spawn(
        &env,
        &["--permission-prompt-tool", "stdio"],
        &scenario.to_env(),
    );
    fake.user("go");
    let frames = turn_answering(
        &mut fake,
        |_| json!({"behavior": "deny", "message": "denied by test harness"}),
    );
    let results = tool_results(&frames);
    assert_eq!(results[0]["content"], "denied by test harness");
    assert_eq!(results[0]["is_error"], true);
    let r = frames.last().expect("result");
    assert_eq!(r["is_error"], false);
    assert_eq!(r["result"], "tool result was: denied by test harness");
    let denials = r["permission_denials"].as_array().expect("denials");
    assert_eq!(denials.len(), 1);
    assert_eq!(denials[0]["tool_name"], "Bash");
    assert_eq!(
        denials[0]["tool_input"]["command"],
        "touch should-not-exist"
    );
    assert!(!env.work().join("should-not-exist").exists());
}

#[test]
fn without_the_stdio_prompt_tool_no_permission_is_asked() {
    let env = Env::new();
    let scenario = Scenario::new().turn(Turn::tool("echo direct; exit 3"));
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.user("go");
    let frames = fake.until_result();
    assert!(of_type(&frames, "control_request").is_empty());
    let results = tool_results(&frames);
    assert_eq!(results[0]["content"], "direct");
    assert_eq!(
        results[0]["is_error"], true,
        "non-zero exit is a tool error"
    );
}

#[test]
fn hook_callbacks_come_in_order_and_a_pre_tool_use_deny_blocks_the_tool() {
    let env = Env::new();
    let scenario = Scenario::new().default_turn(Turn::tool("touch ran.txt; echo hooked"));
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.initialize(json!({
        "PreToolUse": [{"matcher": "Bash", "hookCallbackIds": ["hook_pre"]}],
        "PostToolUse": [{"matcher": null, "hookCallbackIds": ["hook_post"]}],
        "UserPromptSubmit": [{"matcher": null, "hookCallbackIds": ["hook_prompt"]}],
        "Stop": [{"matcher": null, "hookCallbackIds": ["hook_stop"]}],
        "Notification": [{"matcher": null, "hookCallbackIds": ["never"], "timeout": 5}],
    }));

    fake.user("RUN_TOOL: first");
    let mut order = Vec::new();
    let frames = turn_answering(&mut fake, |req| {
        assert_eq!(req["request"]["subtype"], "hook_callback");
        order.push((
            req["request"]["callback_id"]
                .as_str()
                .expect("id")
                .to_owned(),
            req["request"]["input"]["hook_event_name"]
                .as_str()
                .expect("event")
                .to_owned(),
        ));
        json!({})
    });
    let ids: Vec<&str> = order.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["hook_prompt", "hook_pre", "hook_post", "hook_stop"]);
    let events: Vec<&str> = order.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(
        events,
        ["UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"]
    );
    // UserPromptSubmit comes before the turn's init, like the real CLI.
    assert_eq!(frames[0]["type"], "control_request");
    assert_eq!(frames[1]["subtype"], "init");
    assert_eq!(tool_results(&frames)[0]["content"], "hooked");
    std::fs::remove_file(env.work().join("ran.txt")).expect("tool ran");

    fake.user("RUN_TOOL: second");
    let frames = turn_answering(&mut fake, |req| {
        if req["request"]["input"]["hook_event_name"] == "PreToolUse" {
            assert_eq!(req["request"]["input"]["tool_name"], "Bash");
            json!({"hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": "blocked by test hook",
            }})
        } else {
            json!({})
        }
    });
    let results = tool_results(&frames);
    assert_eq!(
        results[0]["content"],
        "PreToolUse:Bash hook error: blocked by test hook"
    );
    assert_eq!(results[0]["is_error"], true);
    assert!(
        !env.work().join("ran.txt").exists(),
        "the denied tool did not run"
    );
    let r = frames.last().expect("result");
    assert_eq!(r["permission_denials"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_matcher_for_another_tool_is_not_called() {
    let env = Env::new();
    let scenario = Scenario::new().turn(Turn::tool("echo x"));
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.initialize(
        json!({"PreToolUse": [{"matcher": "Write|Edit", "hookCallbackIds": ["pre_write"]}]}),
    );
    fake.user("go");
    let frames = fake.until_result();
    assert!(of_type(&frames, "control_request").is_empty());
}

fn read_pid(path: &std::path::Path) -> i32 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "tool never wrote {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn interrupt_mid_tool_kills_the_tool_tree_and_aborts_the_turn() {
    let env = Env::new();
    let pid_file = env.path("tool.pid");
    let sleeper_file = env.path("sleeper.pid");
    let command = format!(
        "echo $$ > {}; sleep 60 & echo $! > {}; wait; echo finished",
        pid_file.display(),
        sleeper_file.display()
    );
    let scenario = Scenario::new().turn(Turn::tool(&command));
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.user("long tool");
    fake.until(|v| v["message"]["content"][0]["type"] == "tool_use");
    let shell = read_pid(&pid_file);
    let sleeper = read_pid(&sleeper_file);
    assert!(alive(shell) && alive(sleeper));

    fake.control("int", json!({"subtype": "interrupt"}));
    let frames = fake.until_result();
    assert_eq!(frames[0]["response"]["request_id"], "int");
    let results = tool_results(&frames);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["is_error"], true);
    let texts: Vec<&Value> = of_type(&frames, "user")
        .into_iter()
        .filter(|u| u["message"]["content"][0]["type"] == "text")
        .collect();
    assert_eq!(
        texts[0]["message"]["content"][0]["text"],
        "[Request interrupted by user for tool use]"
    );
    let r = frames.last().expect("result");
    assert_eq!(r["subtype"], "error_during_execution");
    assert_eq!(r["is_error"], true);
    assert_eq!(r["terminal_reason"], "aborted_tools");

    let deadline = Instant::now() + PATIENCE;
    while alive(shell) || alive(sleeper) {
        assert!(
            Instant::now() < deadline,
            "tool tree survived the interrupt"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    fake.user("after tool interrupt");
    assert_eq!(
        fake.until_result().pop().expect("r")["result"],
        "fake reply to: after tool interrupt"
    );
}

#[test]
fn max_turns_1_with_a_tool_ends_with_error_max_turns() {
    let env = Env::new();
    let scenario = Scenario::new().turn(Turn::tool("echo once"));
    let mut fake = Fake::spawn(&env, &["--max-turns", "1"], &scenario.to_env());
    fake.user("go");
    let r = fake.until_result().pop().expect("result");
    assert_eq!(r["subtype"], "error_max_turns");
    assert_eq!(r["is_error"], true);
    assert_eq!(r["errors"][0], "Reached maximum number of turns (1)");
}

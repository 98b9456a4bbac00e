//! Every fault of the scenario language, selected per turn and per process start.

#[path = "fake_claude_common.rs"]
mod common;

use std::time::Duration;

use claude_testing::fake_claude::{ENV_STATE_DIR, Fault, FaultRule, Scenario, Turn, start_count};
use common::{Env, Fake, of_type};
use serde_json::{Value, json};

fn with_state(env: &Env, scenario: &Scenario) -> Vec<(String, String)> {
    let mut vars = scenario.to_env();
    vars.push((
        ENV_STATE_DIR.to_owned(),
        env.path("state").display().to_string(),
    ));
    vars
}

#[test]
fn crash_mid_turn_exits_with_the_code_and_stderr_after_some_frames() {
    let env = Env::new();
    let scenario = Scenario::new().fault_on_turn(
        2,
        Fault::CrashMidTurn {
            exit_code: 3,
            stderr: "boom: fake crash".to_owned(),
            after_frames: 2,
        },
    );
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.user("turn one");
    let t1 = fake.until_result();
    assert_eq!(t1.last().expect("r")["is_error"], false);
    fake.user("turn two");
    let rest = fake.rest();
    assert_eq!(rest.len(), 2, "{rest:?}");
    let init: Value = serde_json::from_str(&rest[0]).expect("json");
    let second: Value = serde_json::from_str(&rest[1]).expect("json");
    assert_eq!(init["subtype"], "init");
    assert_eq!(second["type"], "assistant");
    assert_eq!(fake.wait().code(), Some(3));
    fake.wait_stderr_closed();
    assert!(
        fake.stderr().contains("boom: fake crash"),
        "{}",
        fake.stderr()
    );
}

#[test]
fn exit_before_init_exits_without_answering() {
    let env = Env::new();
    let scenario = Scenario::new().fault(Fault::exit_before_init(7, "fatal: cannot start"));
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.initialize_no_wait();
    assert!(fake.rest().is_empty());
    assert_eq!(fake.wait().code(), Some(7));
    fake.wait_stderr_closed();
    assert!(fake.stderr().contains("fatal: cannot start"));
}

#[test]
fn hang_gives_no_output_at_all_and_never_exits() {
    let env = Env::new();
    let scenario = Scenario::new().fault(Fault::Hang);
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.initialize_no_wait();
    fake.user("anyone there?");
    fake.close_stdin();
    assert_eq!(fake.try_line(Duration::from_millis(500)), None);
    assert!(
        fake.exited().is_none(),
        "a hung process does not exit on end of input"
    );
    fake.kill_group();
}

#[test]
fn hang_on_a_turn_stops_everything_from_that_turn() {
    let env = Env::new();
    let scenario = Scenario::new().fault_on_turn(2, Fault::Hang);
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.user("one");
    fake.until_result();
    fake.user("two");
    fake.control("q", json!({"subtype": "mcp_status"}));
    assert_eq!(fake.try_line(Duration::from_millis(500)), None);
    assert!(fake.exited().is_none());
}

#[test]
fn slow_stream_sends_the_given_number_of_pieces() {
    let env = Env::new();
    let scenario = Scenario::new().fault(Fault::slow_stream(7, 20));
    let mut fake = Fake::spawn(&env, &["--include-partial-messages"], &scenario.to_env());
    fake.user("slowly");
    let frames = fake.until_result();
    let deltas: Vec<&str> = frames
        .iter()
        .filter(|f| f["event"]["type"] == "content_block_delta")
        .filter_map(|f| f["event"]["delta"]["text"].as_str())
        .collect();
    assert_eq!(deltas.len(), 7);
    assert_eq!(deltas.concat(), "fake reply to: slowly");
}

#[test]
fn malformed_line_is_written_and_the_turn_goes_on() {
    let env = Env::new();
    let scenario = Scenario::new().fault_on_turn(1, Fault::malformed_line());
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.user("x");
    let init: Value = serde_json::from_str(&fake.next_line()).expect("init");
    assert_eq!(init["subtype"], "init");
    let bad = fake.next_line();
    assert!(serde_json::from_str::<Value>(&bad).is_err(), "{bad}");
    let rest = fake.until_result();
    assert_eq!(rest.last().expect("r")["result"], "fake reply to: x");
}

#[test]
fn oversize_line_has_the_exact_size_and_is_valid_json() {
    let env = Env::new();
    let size = 50 * 1024 * 1024;
    let scenario = Scenario::new().fault_on_turn(1, Fault::oversize_line(size));
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.user("big");
    assert_eq!(fake.next()["subtype"], "init");
    let line = fake.next_line();
    assert_eq!(line.len(), size);
    let v: Value = serde_json::from_str(&line).expect("valid JSON");
    assert_eq!(v["type"], "assistant");
    drop(line);
    let rest = fake.until_result();
    assert_eq!(rest.last().expect("r")["result"], "fake reply to: big");
}

#[test]
fn stderr_flood_writes_the_given_bytes() {
    let env = Env::new();
    let bytes = 3 * 1024 * 1024 + 17;
    let scenario = Scenario::new().fault(Fault::stderr_flood(bytes));
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.user("flood");
    let frames = fake.until_result();
    assert_eq!(frames.last().expect("r")["is_error"], false);
    fake.close_stdin();
    assert_eq!(fake.wait().code(), Some(0));
    fake.wait_stderr_closed();
    assert_eq!(fake.stderr_len(), bytes);
}

#[test]
fn per_turn_scripting_normal_then_crash() {
    let env = Env::new();
    let scenario = Scenario::new()
        .turn(Turn::text("turn one ok"))
        .turn(Turn::text("never seen"))
        .fault_rule(FaultRule {
            on_turn: Some(2),
            on_start: None,
            fault: Fault::CrashMidTurn {
                exit_code: 9,
                stderr: "second turn crash".to_owned(),
                after_frames: 1,
            },
        });
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.user("a");
    assert_eq!(
        fake.until_result().pop().expect("r")["result"],
        "turn one ok"
    );
    fake.user("b");
    let rest = fake.rest();
    assert_eq!(rest.len(), 1);
    assert!(rest[0].contains("\"init\""));
    assert_eq!(fake.wait().code(), Some(9));
}

#[test]
fn start_keyed_fault_hits_the_first_process_only() {
    let env = Env::new();
    let scenario =
        Scenario::new().fault_on_start(1, Fault::exit_before_init(5, "first start fails"));
    let vars = with_state(&env, &scenario);

    let mut first = Fake::spawn(&env, &[], &vars);
    assert_eq!(first.wait().code(), Some(5));
    first.wait_stderr_closed();
    assert!(first.stderr().contains("first start fails"));
    drop(first);

    let mut second = Fake::spawn(&env, &[], &vars);
    second.user("restarted");
    assert_eq!(
        second.until_result().pop().expect("r")["result"],
        "fake reply to: restarted"
    );
    assert_eq!(start_count(&env.path("state")), 2);
}

#[test]
fn start_and_turn_keyed_crash() {
    let env = Env::new();
    let scenario = Scenario::new().fault_rule(FaultRule {
        on_turn: Some(1),
        on_start: Some(2),
        fault: Fault::crash_mid_turn(4, "second process, first turn"),
    });
    let vars = with_state(&env, &scenario);
    for (start, expect_crash) in [(1, false), (2, true), (3, false)] {
        let mut fake = Fake::spawn(&env, &[], &vars);
        fake.user("go");
        if expect_crash {
            fake.rest();
            assert_eq!(fake.wait().code(), Some(4), "start {start}");
        } else {
            let frames = fake.until_result();
            assert_eq!(
                frames.last().expect("r")["is_error"],
                false,
                "start {start}"
            );
            fake.close_stdin();
            assert_eq!(fake.wait().code(), Some(0), "start {start}");
        }
    }
}

#[test]
fn crash_always_at_start_hits_every_process() {
    let env = Env::new();
    let scenario = Scenario::new().fault(Fault::exit_before_init(6, "always"));
    let vars = with_state(&env, &scenario);
    for _ in 0..2 {
        let mut fake = Fake::spawn(&env, &[], &vars);
        assert_eq!(fake.wait().code(), Some(6));
    }
}

#[test]
fn ignore_sigterm_fault_needs_sigkill() {
    let env = Env::new();
    let scenario = Scenario::new().fault(Fault::IgnoreSigterm);
    let mut fake = Fake::spawn(&env, &[], &scenario.to_env());
    fake.user("hi");
    fake.until_result();
    fake.signal(nix::sys::signal::Signal::SIGTERM);
    // Still answering after SIGTERM.
    fake.user("still here?");
    let frames = fake.until_result();
    assert_eq!(of_type(&frames, "result").len(), 1);
    assert!(fake.exited().is_none());
    fake.signal(nix::sys::signal::Signal::SIGKILL);
    assert!(fake.wait().code().is_none());
}

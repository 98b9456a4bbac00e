//! Load mode: a turn emits N realistic frames (300–800 bytes) as fast as the pipe takes them.

#[path = "fake_claude_common.rs"]
mod common;

use claude_testing::fake_claude::{ENV_LOAD_FRAMES, Scenario, Turn};
use common::{Env, Fake};
use serde_json::Value;

fn frames_between_init_and_result(fake: &Fake) -> Vec<String> {
    let init: Value = serde_json::from_str(&fake.next_line()).expect("init");
    assert_eq!(init["subtype"], "init");
    let mut lines = Vec::new();
    loop {
        let l = fake.next_line();
        let v: Value = serde_json::from_str(&l).expect("every load frame is JSON");
        if v["type"] == "result" {
            assert_eq!(v["is_error"], false);
            return lines;
        }
        lines.push(l);
    }
}

#[test]
fn load_frames_env_gives_n_assistant_frames_per_turn() {
    let env = Env::new();
    let vars = vec![(ENV_LOAD_FRAMES.to_owned(), "5000".to_owned())];
    let mut fake = Fake::spawn(&env, &[], &vars);
    for turn in 0..2 {
        fake.user(&format!("load {turn}"));
        let lines = frames_between_init_and_result(&fake);
        assert_eq!(lines.len(), 5000);
        for l in &lines {
            assert!((300..=800).contains(&l.len()), "frame of {} bytes", l.len());
            let v: Value = serde_json::from_str(l).expect("json");
            assert_eq!(v["type"], "assistant");
        }
        let ids: std::collections::HashSet<String> = lines
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).expect("json")["message"]["id"].to_string())
            .collect();
        assert_eq!(ids.len(), 1, "one API message, one line per block");
    }
    fake.close_stdin();
    assert_eq!(fake.wait().code(), Some(0));
}

#[test]
fn load_turn_with_partial_messages_mixes_stream_events() {
    let env = Env::new();
    let scenario = Scenario::new().turn(Turn::echo().load(1001));
    let mut fake = Fake::spawn(&env, &["--include-partial-messages"], &scenario.to_env());
    fake.user("load");
    let lines = frames_between_init_and_result(&fake);
    assert_eq!(lines.len(), 1001);
    let events = lines
        .iter()
        .filter(|l| l.starts_with("{\"type\":\"stream_event\""))
        .count();
    assert_eq!(events, 501);
    // The next turn is a normal one.
    fake.user("normal");
    assert_eq!(
        fake.until_result().pop().expect("r")["result"],
        "fake reply to: normal"
    );
}

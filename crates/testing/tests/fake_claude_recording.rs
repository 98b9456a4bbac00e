//! fake-claude records argv, environment and stdin per process start; `Recording::read` reads
//! them back; `fake_claude_path` finds the binary; scenarios also come from a file.

#[path = "fake_claude_common.rs"]
mod common;

use claude_testing::fake_claude::{
    ENV_RECORD_DIR, ENV_SCENARIO_FILE, Recording, Scenario, Turn, fake_claude_path,
};
use common::{Env, Fake};
use serde_json::json;

#[test]
fn each_process_start_records_argv_env_and_stdin() {
    let env = Env::new();
    let rec = env.path("rec");
    let vars = vec![
        (ENV_RECORD_DIR.to_owned(), rec.display().to_string()),
        ("MY_TEST_VAR".to_owned(), "marker-42".to_owned()),
    ];
    for prompt in ["first process", "second process"] {
        let mut fake = Fake::spawn(
            &env,
            &["--model", "claude-haiku-4-5", "--max-turns=3"],
            &vars,
        );
        fake.initialize(json!(null));
        fake.user(prompt);
        fake.until_result();
        fake.close_stdin();
        assert_eq!(fake.wait().code(), Some(0));
    }
    let recs = Recording::read(&rec).expect("read recordings");
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].index, 1);
    assert_eq!(recs[1].index, 2);
    for (r, prompt) in recs.iter().zip(["first process", "second process"]) {
        assert!(r.argv[0].ends_with("fake-claude"), "{:?}", r.argv);
        assert!(r.has_flag("--verbose"));
        assert!(r.has_flag("--max-turns"));
        assert_eq!(r.flag_value("--output-format"), Some("stream-json"));
        assert_eq!(r.flag_value("--model"), Some("claude-haiku-4-5"));
        assert_eq!(r.flag_value("--max-turns"), Some("3"));
        assert_eq!(
            r.env.get("MY_TEST_VAR").map(String::as_str),
            Some("marker-42")
        );
        assert_eq!(
            r.env.get("HOME").map(String::as_str),
            Some(env.home().to_str().expect("utf8"))
        );
        assert!(r.pid.is_some());
        let stdin = r.stdin_json();
        assert_eq!(stdin.len(), 2);
        assert_eq!(stdin[0]["request"]["subtype"], "initialize");
        assert_eq!(stdin[1]["message"]["content"], prompt);
    }
}

#[test]
fn stdin_is_recorded_line_by_line_while_the_process_runs() {
    let env = Env::new();
    let rec = env.path("rec");
    let vars = vec![(ENV_RECORD_DIR.to_owned(), rec.display().to_string())];
    let mut fake = Fake::spawn(&env, &[], &vars);
    fake.user("one");
    fake.until_result();
    // Still running: the line is already on disk.
    let recs = Recording::read(&rec).expect("read");
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].stdin.len(), 1);
    assert_eq!(recs[0].pid, Some(fake.child.id()));
    // A fatal non-JSON line is recorded as received.
    fake.send_raw("not json at all");
    assert_eq!(fake.wait().code(), Some(1));
    let recs = Recording::read(&rec).expect("read");
    assert_eq!(
        recs[0].stdin.last().map(String::as_str),
        Some("not json at all")
    );
    assert_eq!(recs[0].stdin_json().len(), 1);
}

#[test]
fn scenario_from_a_file() {
    let env = Env::new();
    let file = env.path("scenario.json");
    std::fs::write(
        &file,
        Scenario::new().turn(Turn::text("from the file")).to_json(),
    )
    .expect("write");
    let vars = vec![(ENV_SCENARIO_FILE.to_owned(), file.display().to_string())];
    let mut fake = Fake::spawn(&env, &[], &vars);
    fake.user("x");
    assert_eq!(
        fake.until_result().pop().expect("result")["result"],
        "from the file"
    );
}

#[test]
fn an_invalid_scenario_is_reported() {
    let env = Env::new();
    let vars = vec![(
        "FAKE_CLAUDE_SCENARIO".to_owned(),
        r#"{"turns": 3}"#.to_owned(),
    )];
    let mut fake = Fake::spawn(&env, &[], &vars);
    assert_eq!(fake.wait().code(), Some(2));
    fake.wait_stderr_closed();
    assert!(
        fake.stderr().contains("invalid fake-claude scenario"),
        "{}",
        fake.stderr()
    );
}

#[test]
fn scenario_json_round_trips_and_uses_snake_case_kinds() {
    let s = Scenario::new()
        .turn(Turn::tool("echo hi"))
        .fault_on_turn(
            2,
            claude_testing::fake_claude::Fault::crash_mid_turn(3, "boom"),
        )
        .fault_on_start(
            1,
            claude_testing::fake_claude::Fault::exit_before_init(7, "early"),
        );
    let json: serde_json::Value = serde_json::from_str(&s.to_json()).expect("json");
    assert_eq!(json["faults"][0]["fault"]["kind"], "crash_mid_turn");
    assert_eq!(json["faults"][0]["on_turn"], 2);
    assert_eq!(json["faults"][1]["on_start"], 1);
    assert_eq!(json["turns"][0]["tool"]["name"], "Bash");
    assert_eq!(Scenario::from_json(&s.to_json()).expect("parse"), s);
}

#[test]
fn fake_claude_path_finds_the_built_binary() {
    let found = std::fs::canonicalize(fake_claude_path()).expect("path exists");
    let expected = std::fs::canonicalize(env!("CARGO_BIN_EXE_fake-claude")).expect("bin exists");
    assert_eq!(found, expected);
}

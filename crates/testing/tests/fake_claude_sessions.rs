//! fake-claude keeps sessions on disk like the real CLI: resume keeps the id and the history,
//! fork gives a new id with the history, continue takes the newest, unknown ids are refused;
//! faults rotate the session id or refuse a resume.

#[path = "fake_claude_common.rs"]
mod common;

use claude_testing::fake_claude::{Fault, Scenario, mangle_cwd, session_file};
use common::{Env, Fake};
use serde_json::Value;

/// Run `prompts` in one process, close stdin, wait for exit 0; return the session id.
fn conversation(
    env: &Env,
    extra: &[&str],
    vars: &[(String, String)],
    prompts: &[&str],
) -> (String, Vec<Value>) {
    let mut fake = Fake::spawn(env, extra, vars);
    let mut results = Vec::new();
    for p in prompts {
        fake.user(p);
        results.push(fake.until_result().pop().expect("result"));
    }
    fake.close_stdin();
    assert_eq!(fake.wait().code(), Some(0), "stderr: {}", fake.stderr());
    let sid = results[0]["session_id"]
        .as_str()
        .expect("session id")
        .to_owned();
    (sid, results)
}

fn history(result: &Value) -> Vec<String> {
    let text = result["result"].as_str().expect("result text");
    let json = text.strip_prefix("history: ").expect("history reply");
    serde_json::from_str(json).expect("history list")
}

#[test]
fn the_session_file_is_where_the_real_cli_keeps_it() {
    let env = Env::new();
    let (sid, _) = conversation(&env, &[], &[], &["hello"]);
    let cwd = std::fs::canonicalize(env.work()).expect("cwd");
    let path = session_file(&env.home().join(".claude"), &cwd, &sid);
    assert!(path.is_file(), "{}", path.display());
    assert!(path.parent().expect("dir").ends_with(mangle_cwd(&cwd)));
    assert!(
        mangle_cwd(&cwd)
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    );
    let text = std::fs::read_to_string(&path).expect("session file");
    let first: Value = serde_json::from_str(text.lines().next().expect("a line")).expect("json");
    assert_eq!(first["sessionId"], sid.as_str());
    assert_eq!(first["message"]["content"], "hello");
}

#[test]
fn claude_config_dir_wins_over_home() {
    let env = Env::new();
    let config = env.path("config");
    let vars = vec![("CLAUDE_CONFIG_DIR".to_owned(), config.display().to_string())];
    let (sid, _) = conversation(&env, &[], &vars, &["hello"]);
    let cwd = std::fs::canonicalize(env.work()).expect("cwd");
    assert!(session_file(&config, &cwd, &sid).is_file());
    assert!(!env.home().join(".claude").exists());
}

#[test]
fn resume_keeps_the_id_and_the_history_across_processes() {
    let env = Env::new();
    let (sid, _) = conversation(&env, &[], &[], &["first", "second"]);
    let resume = format!("--resume={sid}");
    let (sid2, results) = conversation(&env, &[&resume], &[], &["HISTORY?", "third"]);
    assert_eq!(sid2, sid);
    assert_eq!(history(&results[0]), ["first", "second"]);
    assert_eq!(results[1]["session_id"], sid.as_str());
    // A third process sees all of it (resume with a separate value this time).
    let (_, results) = conversation(&env, &["--resume", &sid], &[], &["HISTORY?"]);
    assert_eq!(
        history(&results[0]),
        ["first", "second", "HISTORY?", "third"]
    );
}

#[test]
fn fork_session_gives_a_new_id_with_the_history() {
    let env = Env::new();
    let (sid, _) = conversation(&env, &[], &[], &["one"]);
    let resume = format!("--resume={sid}");
    let (forked, results) = conversation(&env, &[&resume, "--fork-session"], &[], &["HISTORY?"]);
    assert_ne!(forked, sid);
    assert_eq!(history(&results[0]), ["one"]);
    // The original is untouched by the fork.
    let (_, results) = conversation(&env, &[&resume], &[], &["HISTORY?"]);
    assert_eq!(history(&results[0]), ["one"]);
}

#[test]
fn continue_takes_the_newest_session_of_the_cwd() {
    let env = Env::new();
    let (_old, _) = conversation(&env, &[], &[], &["old"]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (newest, _) = conversation(&env, &[], &[], &["newest"]);
    let (sid, results) = conversation(&env, &["--continue"], &[], &["HISTORY?"]);
    assert_eq!(sid, newest);
    assert_eq!(history(&results[0]), ["newest"]);
}

#[test]
fn session_id_picks_the_id_and_an_existing_one_is_refused() {
    let env = Env::new();
    let id = "0b9c3f5e-8d1a-4c2b-9e7f-6a5d4c3b2a10";
    let flag = format!("--session-id={id}");
    let (sid, _) = conversation(&env, &[&flag], &[], &["hi"]);
    assert_eq!(sid, id);
    let mut fake = Fake::spawn(&env, &[&flag], &[]);
    assert_eq!(fake.wait().code(), Some(1));
    fake.wait_stderr_closed();
    assert!(
        fake.stderr().contains("already in use"),
        "{}",
        fake.stderr()
    );
}

#[test]
fn resume_of_an_unknown_id_fails_the_first_turn() {
    let env = Env::new();
    let id = "99999999-9999-4999-8999-999999999999";
    let flag = format!("--resume={id}");
    let mut fake = Fake::spawn(&env, &[&flag], &[]);
    fake.initialize(Value::Null);
    fake.user("hello");
    let r = fake.next();
    assert_eq!(r["type"], "result");
    assert_eq!(r["subtype"], "error_during_execution");
    assert_eq!(r["is_error"], true);
    assert_eq!(
        r["errors"][0],
        format!("No conversation found with session ID: {id}")
    );
    assert_eq!(fake.wait().code(), Some(1));
}

#[test]
fn refuse_resume_fault_refuses_a_known_id_only_where_keyed() {
    let env = Env::new();
    let (sid, _) = conversation(&env, &[], &[], &["kept"]);
    let state = env.path("state");
    let mut vars = Scenario::new()
        .fault_on_start(1, Fault::RefuseResume)
        .to_env();
    vars.push((
        "FAKE_CLAUDE_STATE_DIR".to_owned(),
        state.display().to_string(),
    ));
    let flag = format!("--resume={sid}");

    let mut fake = Fake::spawn(&env, &[&flag], &vars);
    fake.user("hello");
    let r = fake.next();
    assert_eq!(r["subtype"], "error_during_execution");
    assert_eq!(
        r["errors"][0],
        format!("No conversation found with session ID: {sid}")
    );
    assert_eq!(fake.wait().code(), Some(1));
    drop(fake);

    // The second start resumes fine.
    let (sid2, results) = conversation(&env, &[&flag], &vars, &["HISTORY?"]);
    assert_eq!(sid2, sid);
    assert_eq!(history(&results[0]), ["kept"]);
}

#[test]
fn rotate_session_id_changes_init_and_result_and_keeps_history() {
    let env = Env::new();
    let vars = Scenario::new()
        .fault_on_turn(
            2,
            Fault::RotateSessionId {
                conversation_reset: false,
            },
        )
        .to_env();
    let mut fake = Fake::spawn(&env, &[], &vars);
    fake.user("one");
    let t1 = fake.until_result();
    fake.user("HISTORY?");
    let t2 = fake.until_result();
    let old = t1[0]["session_id"].as_str().expect("id");
    let new = t2[0]["session_id"].as_str().expect("id");
    assert_ne!(old, new);
    assert!(uuid::Uuid::parse_str(new).is_ok());
    assert_eq!(t2.last().expect("r")["session_id"], new);
    assert_eq!(history(t2.last().expect("r")), ["one"]);
    // Resuming the new id finds the whole conversation.
    fake.close_stdin();
    assert_eq!(fake.wait().code(), Some(0));
    let flag = format!("--resume={new}");
    let (_, results) = conversation(&env, &[&flag], &[], &["HISTORY?"]);
    assert_eq!(history(&results[0]), ["one", "HISTORY?"]);
}

#[test]
fn rotate_with_conversation_reset_announces_it_and_restarts_costs() {
    let env = Env::new();
    let vars = Scenario::new()
        .fault_on_turn(
            2,
            Fault::RotateSessionId {
                conversation_reset: true,
            },
        )
        .to_env();
    let mut fake = Fake::spawn(&env, &[], &vars);
    fake.user("one");
    let t1 = fake.until_result();
    fake.user("HISTORY?");
    let t2 = fake.until_result();
    let old = t1[0]["session_id"].as_str().expect("id");
    assert_eq!(t2[0]["type"], "conversation_reset");
    assert_eq!(t2[0]["previous_session_id"], old);
    let new = t2[0]["session_id"].as_str().expect("id");
    assert_ne!(new, old);
    assert_eq!(t2[1]["subtype"], "init");
    assert_eq!(t2[1]["session_id"], new);
    let r = t2.last().expect("r");
    assert_eq!(history(r), Vec::<String>::new());
    assert_eq!(r["total_cost_usd"], 0.001);
}

#[test]
fn no_session_persistence_writes_nothing() {
    let env = Env::new();
    conversation(&env, &["--no-session-persistence"], &[], &["secret"]);
    assert!(!env.home().join(".claude").join("projects").exists());
}

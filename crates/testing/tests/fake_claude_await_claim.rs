//! fake-claude's `--await-claim` behaves as the real CLI's was measured (docs/warm-spares.md):
//! one `ui_invalidate` line announcing the session id, parked until `claim_session`, refusals
//! that leave it parked, a claim that binds it to a directory, then normal turns there.

#[path = "fake_claude_common.rs"]
mod common;

use common::{Env, Fake};
use serde_json::{Value, json};

/// The `control_response` answering request `id`.
fn answer(fake: &Fake, id: &str) -> Value {
    let frames =
        fake.until(|v| v["type"] == "control_response" && v["response"]["request_id"] == id);
    frames.last().unwrap()["response"].clone()
}

fn error_of(fake: &mut Fake, id: &str, request: Value) -> String {
    fake.control(id, request);
    let r = answer(fake, id);
    assert_eq!(r["subtype"], "error", "{r}");
    r["error"].as_str().unwrap().to_owned()
}

#[test]
fn a_spare_parks_refuses_until_claimed_then_runs_turns_in_the_claimed_directory() {
    let env = Env::new();
    let claimed = env.path("proj");
    std::fs::create_dir_all(&claimed).unwrap();
    let mut fake = Fake::spawn(&env, &["--await-claim"], &[]);

    // The announcement, before any input.
    let first = fake.next();
    assert_eq!(first["type"], "system");
    assert_eq!(first["subtype"], "ui_invalidate");
    let session_id = first["session_id"].as_str().unwrap().to_owned();

    // Parked: initialize is answered; other requests and user lines are refused, and it stays.
    let init = fake.initialize(json!({}));
    assert!(
        init["commands"].is_array(),
        "the full initialize answer: {init}"
    );
    let e = error_of(
        &mut fake,
        "m1",
        json!({"subtype": "set_model", "model": "x"}),
    );
    assert!(e.starts_with("not_claimed:"), "{e}");
    fake.user("too early");
    let early = fake.until_result();
    let result = early.last().unwrap();
    assert_eq!(result["subtype"], "error_during_execution");
    assert_eq!(result["num_turns"], 0);
    assert!(
        result["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("not_claimed:")
    );

    // Bad claims, each refused with its reason token.
    let file = env.path("a-file");
    std::fs::write(&file, "x").unwrap();
    for (id, claim, token) in [
        (
            "c1",
            json!({"subtype": "claim_session"}),
            "invalid_request: cwd",
        ),
        (
            "c2",
            json!({"subtype": "claim_session", "cwd": env.path("missing")}),
            "cwd_not_found:",
        ),
        (
            "c3",
            json!({"subtype": "claim_session", "cwd": "relative/dir"}),
            "cwd_not_found:",
        ),
        (
            "c4",
            json!({"subtype": "claim_session", "cwd": file}),
            "cwd_not_a_directory:",
        ),
        (
            "c5",
            json!({"subtype": "claim_session", "cwd": claimed, "system_prompt": "a string"}),
            "invalid_request: system_prompt",
        ),
        (
            "c6",
            json!({"subtype": "claim_session", "cwd": claimed, "env": {"ANTHROPIC_MODEL": "x"}}),
            "env_key_not_claimable: ANTHROPIC_MODEL",
        ),
        (
            "c7",
            json!({"subtype": "claim_session", "cwd": claimed, "permission_mode": "bypassPermissions"}),
            "permission_mode_not_claimable:",
        ),
    ] {
        let e = error_of(&mut fake, id, claim);
        assert!(e.starts_with(token), "{id}: {e}");
    }

    // The claim: the session id announced, the canonical directory, and an initialize payload.
    fake.control(
        "claim",
        json!({"subtype": "claim_session", "cwd": claimed, "permission_mode": "acceptEdits",
               "system_prompt": ["be brief"], "include_initialize": true}),
    );
    let ok = answer(&fake, "claim");
    assert_eq!(ok["subtype"], "success", "{ok}");
    let body = &ok["response"];
    assert_eq!(body["status"], "ok");
    assert_eq!(body["session_id"], session_id.as_str());
    assert_eq!(
        body["cwd"],
        std::fs::canonicalize(&claimed)
            .unwrap()
            .to_string_lossy()
            .as_ref()
    );
    assert!(body["initialize"]["commands"].is_array(), "{body}");

    // A second claim: not a spare any more.
    let e = error_of(
        &mut fake,
        "again",
        json!({"subtype": "claim_session", "cwd": claimed}),
    );
    assert!(e.starts_with("not_a_spare:"), "{e}");

    // A normal turn, in the claimed directory, under the announced id.
    fake.user("hello");
    let turn = fake.until_result();
    let init = turn
        .iter()
        .find(|v| v["type"] == "system" && v["subtype"] == "init")
        .expect("an init frame");
    assert_eq!(init["session_id"], session_id.as_str());
    assert_eq!(init["permissionMode"], "acceptEdits");
    assert_eq!(
        init["cwd"],
        std::fs::canonicalize(&claimed)
            .unwrap()
            .to_string_lossy()
            .as_ref()
    );
    let result = turn.last().unwrap();
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(result["session_id"], session_id.as_str());
    fake.close_stdin();
    assert!(fake.wait().success());
}

#[test]
fn a_normal_process_refuses_a_claim_and_a_spare_refuses_resume_flags() {
    let env = Env::new();
    let mut fake = Fake::spawn(&env, &[], &[]);
    fake.initialize(json!({}));
    let e = error_of(
        &mut fake,
        "c",
        json!({"subtype": "claim_session", "cwd": env.work()}),
    );
    assert!(e.starts_with("not_a_spare:"), "{e}");
    fake.close_stdin();
    assert!(fake.wait().success());

    for flags in [
        &["--await-claim", "--resume", "0000"][..],
        &["--await-claim", "--continue"][..],
        &["--await-claim", "--fork-session"][..],
    ] {
        let mut fake = Fake::spawn(&env, flags, &[]);
        let status = fake.wait();
        assert_eq!(status.code(), Some(1), "{flags:?}");
        // Its stderr reader may still be behind the exit.
        fake.wait_stderr_closed();
        assert!(
            fake.stderr().contains(
                "--await-claim cannot be combined with --continue, --resume or --fork-session"
            ),
            "{flags:?}: {}",
            fake.stderr()
        );
    }
}

#[test]
fn a_parked_spare_exits_cleanly_at_end_of_input() {
    let env = Env::new();
    let mut fake = Fake::spawn(&env, &["--await-claim"], &[]);
    assert_eq!(fake.next()["subtype"], "ui_invalidate");
    fake.close_stdin();
    assert_eq!(fake.wait().code(), Some(0));
}

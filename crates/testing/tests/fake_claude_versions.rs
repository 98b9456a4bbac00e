//! fake-claude impersonates a CLI version: `--version` prints it, the frames report it, and from
//! 2.1.332 on they have that release's shape (`sandbox_enabled`, the new capability names,
//! `begun_message_ids`). The version probe of `claude_protocol` applies the supported range to it.

#[path = "fake_claude_common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use claude_protocol::{
    Capability, CliVersion, DiscoveryError, InitializeResponse, Message, SUPPORTED_CLI,
    SandboxEnabled, SystemMessage, probe_version,
};
use claude_testing::fake_claude::{FAKE_VERSION, FIELDS_OF_2_1_332, Scenario};
use common::{Env, Fake};
use serde_json::{Value, json};

fn fake_bin() -> &'static str {
    env!("CARGO_BIN_EXE_fake-claude")
}

/// A wrapper script running fake-claude with `scenario` (the probe inherits our environment,
/// so the scenario goes into the script).
fn wrapper(dir: &Path, name: &str, scenario: &Scenario) -> PathBuf {
    let path = dir.join(name);
    let json = scenario.to_json().replace('\'', r"'\''");
    claude_testing::write_executable(
        &path,
        &format!(
            "#!/bin/sh\nexec env FAKE_CLAUDE_SCENARIO='{json}' '{}' \"$@\"\n",
            fake_bin()
        ),
    )
    .unwrap();
    path
}

/// Types a frame; a known `type` must not fall into a raw variant.
fn typed(v: &Value) -> Message {
    let m = Message::from_value(v.clone()).unwrap();
    assert!(
        !matches!(m, Message::Malformed(_) | Message::Unknown(_)),
        "untyped frame {m:?}"
    );
    m
}

#[test]
fn version_flag_prints_the_default_or_the_scenario_version() {
    let out = Command::new(fake_bin())
        .arg("--version")
        .env_remove("FAKE_CLAUDE_SCENARIO")
        .env_remove("FAKE_CLAUDE_SCENARIO_FILE")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{FAKE_VERSION} (Claude Code)\n")
    );
    assert_eq!(FAKE_VERSION, SUPPORTED_CLI.pinned);

    let out = Command::new(fake_bin())
        .arg("-v")
        .envs(
            Scenario::new()
                .cli_version(CliVersion::new(2, 1, 332))
                .to_env(),
        )
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2.1.332 (Claude Code)\n"
    );
}

#[test]
fn the_probe_applies_the_range_to_fake_clis() {
    let dir = tempfile::tempdir().unwrap();
    let min = SUPPORTED_CLI.minimum;
    let below = CliVersion::new(min.major, min.minor, min.patch - 1);
    let old = wrapper(dir.path(), "old", &Scenario::new().cli_version(below));
    let e = probe_version(&old).unwrap_err();
    assert!(
        matches!(e, DiscoveryError::TooOld { found, minimum, .. } if found == below && minimum == min),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains(&below.to_string()) && text.contains(&min.to_string()),
        "{text}"
    );
    assert!(
        text.contains("npm install -g @anthropic-ai/claude-code@"),
        "{text}"
    );

    let pinned = wrapper(dir.path(), "pinned", &Scenario::new());
    assert_eq!(probe_version(&pinned).unwrap(), SUPPORTED_CLI.pinned);

    let newest = SUPPORTED_CLI.newest_tested();
    let newer = CliVersion::new(newest.major, newest.minor + 1, 0);
    let new = wrapper(dir.path(), "new", &Scenario::new().cli_version(newer));
    assert_eq!(probe_version(&new).unwrap(), newer);
}

#[test]
fn frames_of_2_1_332_carry_its_new_fields_typed() {
    let env = Env::new();
    let version = CliVersion::new(2, 1, 332);
    let mut fake = Fake::spawn(
        &env,
        &["--include-partial-messages"],
        &Scenario::new().cli_version(version).to_env(),
    );
    let answer = fake.initialize(json!(null));
    let init = InitializeResponse::from_value(answer).unwrap();
    assert_eq!(init.cli_version(), Some(version));
    assert_eq!(init.sandbox_enabled, Some(SandboxEnabled::Disabled));
    assert!(
        init.capabilities()
            .contains(&Capability::McpCallSoftErrorResultV1)
    );
    assert!(init.capabilities().iter().all(Capability::is_known));

    fake.user("hello");
    let frames = fake.until_result();
    let msgs: Vec<Message> = frames.iter().map(typed).collect();
    let Message::System(SystemMessage::Init(sys)) = &msgs[0] else {
        panic!("{:?}", msgs[0])
    };
    assert_eq!(sys.cli_version(), Some(version));
    assert_eq!(sys.sandbox_enabled, Some(SandboxEnabled::Disabled));
    assert!(sys.has_capability(&Capability::WithdrawnToolsV1));
    assert!(sys.capabilities().iter().all(Capability::is_known));
    let Some(Message::Result(result)) = msgs.last() else {
        panic!("no result")
    };
    // The ids are those of the message_start events of the turn.
    let started: Vec<&str> = frames
        .iter()
        .filter(|f| f["type"] == "stream_event" && f["event"]["type"] == "message_start")
        .filter_map(|f| f["api_message_id"].as_str())
        .collect();
    assert!(!started.is_empty());
    assert_eq!(result.begun_message_ids(), started.as_slice());
    assert!(result.extra.get("begun_message_ids").is_none());
}

#[test]
fn frames_of_the_pinned_version_have_the_2_1_329_shape() {
    assert!(FAKE_VERSION < FIELDS_OF_2_1_332);
    let env = Env::new();
    let mut fake = Fake::spawn(&env, &["--include-partial-messages"], &[]);
    let answer = fake.initialize(json!(null));
    assert!(answer.get("sandbox_enabled").is_none(), "{answer}");
    fake.user("hello");
    let frames = fake.until_result();
    for f in &frames {
        typed(f);
    }
    assert!(frames[0].get("sandbox_enabled").is_none());
    assert!(frames.last().unwrap().get("begun_message_ids").is_none());
}

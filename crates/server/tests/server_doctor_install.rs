//! `claude-supervisor doctor` and `install-cli`, run as the binary: doctor passes on a ready
//! machine (never printing a credential) and fails with a fix on a broken config; install-cli
//! installs the pinned CLI from the npm registry into a data dir, where the server finds it.

#[path = "support/common.rs"]
mod support;

use std::process::Command;

use claude_supervisor_server::config::StoreKind;
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::Scenario;
use support::fake_config;

const SECRET: &str = "sk-ant-doctor-test-do-not-print";

fn doctor(config: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_claude-supervisor"))
        .args(["doctor", "--config"])
        .arg(config)
        .env_remove("CLAUDE_SUPERVISOR_CONFIG")
        .env("ANTHROPIC_API_KEY", SECRET)
        .output()
        .unwrap()
}

#[test]
fn doctor_passes_on_a_ready_machine_and_names_the_fix_of_each_problem() {
    let env = FakeEnv::new();
    let mut config = fake_config(&env, &[("agent", &Scenario::new())]);
    config.store.kind = StoreKind::File;
    config.store.path = Some(env.path("store"));
    let good = env.path("good.toml");
    std::fs::write(&good, toml::to_string(&config).unwrap()).unwrap();
    let out = doctor(&good);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for check in ["config", "cli", "credentials", "data dir", "store"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("ok") && l.contains(check)),
            "`{check}` ok: {text}"
        );
    }
    assert!(
        text.contains("ANTHROPIC_API_KEY"),
        "the credential is named: {text}"
    );
    assert!(
        !text.contains(SECRET),
        "the credential is never printed: {text}"
    );

    // A postgres store whose URL variable is not set, and a CLI that does not exist.
    config.store.kind = StoreKind::Postgres;
    config.store.path = None;
    config.store.url_env = Some("CLAUDE_SUPERVISOR_DOCTOR_TEST_UNSET_URL".into());
    config.supervisor.cli_path = Some(env.path("no-such-claude"));
    let bad = env.path("bad.toml");
    std::fs::write(&bad, toml::to_string(&config).unwrap()).unwrap();
    let out = doctor(&bad);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("FAIL")
            && l.contains("store")
            && l.contains("CLAUDE_SUPERVISOR_DOCTOR_TEST_UNSET_URL")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL") && l.contains("cli")),
        "{text}"
    );
    assert!(
        text.matches("fix:").count() >= 2,
        "each problem with its fix: {text}"
    );

    // A config that does not parse: the key and its line.
    let broken = env.path("broken.toml");
    std::fs::write(&broken, "[server]\nlisen = 1\n").unwrap();
    let out = doctor(&broken);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("line 2") && text.contains("lisen"), "{text}");
}

#[test]
fn install_cli_puts_the_pinned_cli_in_the_data_dir() {
    let npm_works = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !npm_works {
        assert!(
            std::env::var_os("CLAUDE_REQUIRE_REAL_CLI").is_none(),
            "npm is required under CLAUDE_REQUIRE_REAL_CLI=1"
        );
        eprintln!("SKIPPED: npm is not installed; install-cli cannot be tested");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_claude-supervisor"))
        .args(["install-cli", "--data-dir"])
        .arg(dir.path())
        .env_remove("CLAUDE_SUPERVISOR_CONFIG")
        .env("DISABLE_AUTOUPDATER", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let binary = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let pinned = claude_protocol::PINNED_VERSION.to_string();
    assert!(
        binary.contains(&format!("cli-{pinned}")),
        "{binary} is the pinned version's"
    );
    let version = claude_protocol::probe_version(binary.as_ref()).expect("it answers --version");
    assert_eq!(version.to_string(), pinned);
    // The server finds it there when nothing else names a CLI.
    let mut config = claude_supervisor_server::Config::default();
    config.supervisor.data_dir = Some(dir.path().to_owned());
    assert_eq!(
        claude_supervisor_server::install::installed_binary(dir.path(), &pinned)
            .as_deref()
            .map(|p| p.to_string_lossy().into_owned()),
        Some(binary.clone())
    );
    // A second run reuses the install.
    let again = Command::new(env!("CARGO_BIN_EXE_claude-supervisor"))
        .args(["install-cli", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), binary);
    // A bad version is refused before npm runs.
    let bad = Command::new(env!("CARGO_BIN_EXE_claude-supervisor"))
        .args(["install-cli", "--version", "latest-ish", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a version"));
}

#[test]
fn every_command_has_complete_help() {
    for command in [
        "serve",
        "query",
        "sessions",
        "health",
        "doctor",
        "install-cli",
        "openapi",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_claude-supervisor"))
            .args([command, "--help"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command} --help: {text}");
        assert!(
            text.contains("Usage: claude-supervisor"),
            "{command}: {text}"
        );
        assert!(text.lines().count() > 3, "{command}: {text}");
    }
}

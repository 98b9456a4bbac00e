//! The supported CLI range lives in one place, `claude_protocol::SUPPORTED_CLI`; what cannot
//! import it (the install script, the docs) is checked equal to it here. The install script's
//! argument handling is checked too (without the network: `latest` against a dead registry).

use std::path::{Path, PathBuf};
use std::process::Command;

use claude_protocol::SUPPORTED_CLI;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn install_script_default_is_the_pinned_version() {
    let script = read("scripts/install-claude-cli.sh");
    let defaults: Vec<&str> = script
        .lines()
        .filter_map(|l| l.strip_prefix("PINNED_VERSION=\""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .collect();
    assert_eq!(
        defaults,
        vec![SUPPORTED_CLI.pinned.to_string()],
        "scripts/install-claude-cli.sh must set PINNED_VERSION=\"{}\" exactly once",
        SUPPORTED_CLI.pinned
    );
    assert_eq!(
        claude_testing::real_cli::PINNED_VERSION,
        SUPPORTED_CLI.pinned
    );
}

#[test]
fn readme_and_protocol_doc_state_the_range() {
    for doc in ["README.md", "docs/protocol.md"] {
        let text = read(doc);
        for v in [SUPPORTED_CLI.minimum, SUPPORTED_CLI.pinned]
            .iter()
            .chain(SUPPORTED_CLI.tested)
        {
            assert!(
                text.contains(&v.to_string()),
                "{doc} does not mention {v} of SUPPORTED_CLI"
            );
        }
        assert!(
            text.contains("SUPPORTED_CLI"),
            "{doc} does not name SUPPORTED_CLI"
        );
    }
}

fn run_script(args: &[&str], extra_env: &[(&str, &str)]) -> (Option<i32>, String) {
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(repo().join("scripts/install-claude-cli.sh"))
        .args(args)
        .env("CLAUDE_SUPERVISOR_CACHE", cache.path())
        .envs(extra_env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn install_script_refuses_a_bad_version_argument() {
    let (code, stderr) = run_script(&["2.x"], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("not a version"), "{stderr}");
    let (code, stderr) = run_script(&["1.0.0", "extra"], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("usage"), "{stderr}");
}

#[test]
fn install_script_latest_exits_3_when_the_registry_is_unreachable() {
    if Command::new("npm").arg("--version").output().is_err() {
        eprintln!("SKIPPED: npm is not installed; `latest` cannot be resolved without it");
        return;
    }
    // A registry on a closed loopback port: refused at once, nothing leaves the machine.
    let (code, stderr) = run_script(
        &["latest"],
        &[
            ("npm_config_registry", "http://127.0.0.1:9/"),
            ("npm_config_fetch_retries", "0"),
            ("npm_config_fetch_timeout", "5000"),
            ("npm_config_offline", "false"),
            ("npm_config_cache", "/nonexistent-npm-cache-for-this-test"),
        ],
    );
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("cannot resolve 'latest'"), "{stderr}");
}

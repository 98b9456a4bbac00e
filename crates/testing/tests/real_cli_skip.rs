//! `require_real_cli!` skips loudly when the CLI is missing, and fails the test instead when
//! `CLAUDE_REQUIRE_REAL_CLI=1`. Checked by running this test binary again as a child with a
//! bogus `CLAUDE_REAL_CLI`.

use std::process::Command;

const CHILD_MARK: &str = "REAL_CLI_SKIP_TEST_CHILD";

/// In the child: the macro must return early (or panic when required) — reaching the end is a bug.
fn child_body() {
    let cli = claude_testing::require_real_cli!();
    panic!("require_real_cli! returned a CLI for a bogus path: {cli:?}");
}

fn run_child(require: Option<&str>) -> (bool, String) {
    let exe = std::env::current_exe().expect("own test binary");
    let mut cmd = Command::new(exe);
    cmd.args([
        "missing_cli_skips_loudly_or_fails_when_required",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_MARK, "1")
    .env(
        "CLAUDE_REAL_CLI",
        "/nonexistent/claude-cli-for-skip-test/claude",
    )
    .env_remove("CLAUDE_REQUIRE_REAL_CLI");
    if let Some(value) = require {
        cmd.env("CLAUDE_REQUIRE_REAL_CLI", value);
    }
    let out = cmd.output().expect("run the child test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn missing_cli_skips_loudly_or_fails_when_required() {
    if std::env::var_os(CHILD_MARK).is_some() {
        child_body();
        return;
    }

    let (passed, output) = run_child(None);
    assert!(passed, "a missing CLI skips (the test passes):\n{output}");
    assert!(
        output
            .contains("SKIPPED: real Claude CLI not installed; run scripts/install-claude-cli.sh"),
        "the skip is loud:\n{output}"
    );
    assert!(!output.contains("returned a CLI"), "{output}");

    let (passed, output) = run_child(Some("1"));
    assert!(
        !passed,
        "with CLAUDE_REQUIRE_REAL_CLI=1 a missing CLI fails:\n{output}"
    );
    assert!(output.contains("CLAUDE_REQUIRE_REAL_CLI=1"), "{output}");
    assert!(!output.contains("returned a CLI"), "{output}");
}

//! The README's main job (`bash scripts/run.sh`): the server on the CI reviewer config, sent
//! diffs by the binary's own `query`, its health, then SIGTERM — on the real CLI, offline.

use std::process::Command;

#[test]
fn the_ci_reviewer_server_example_runs_to_completion_offline() {
    let Some(cli) = claude_testing::real_cli::real_cli_or_skip() else {
        return;
    };
    // target/<profile>/deps/<this test> -> target/<profile>/examples/ci_reviewer_server
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples/ci_reviewer_server");
    assert!(example.exists(), "not built: {}", example.display());
    let out = Command::new(&example)
        .env("CLAUDE_CLI_PATH", cli.path())
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.starts_with("mode: OFFLINE"), "{stdout}");
    for i in 1..=2 {
        assert!(
            stdout.contains(&format!("reply to: Review diff #{i}")),
            "review {i} streamed: {stdout}"
        );
    }
    assert!(stdout.contains("TURNS       2"), "{stdout}");
    assert!(
        stdout.contains("done: the server exited (exit status: 0)"),
        "{stdout}"
    );
}

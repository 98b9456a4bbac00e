//! Every example runs to completion against the real CLI, offline (the fake Messages API), and
//! says so on its first line. `cargo test` builds the examples before running this.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const EXAMPLES: [&str; 7] = [
    "quickstart",
    "ephemeral",
    "ci_reviewer",
    "chat_per_user",
    "hybrid",
    "multi_agent",
    "health_monitor",
];

fn example_path(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

#[test]
fn every_example_runs_to_completion_offline() {
    let Some(cli) = claude_testing::real_cli::real_cli_or_skip() else {
        return;
    };
    for name in EXAMPLES {
        let path = example_path(name);
        assert!(
            path.exists(),
            "example `{name}` is not built at {}",
            path.display()
        );
        let mut child = Command::new(&path)
            .env("CLAUDE_CLI_PATH", cli.path())
            .env_remove("ANTHROPIC_API_KEY")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(180) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("example `{name}` did not finish");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            status.success(),
            "example `{name}` failed ({status}):\n{stdout}\n{stderr}"
        );
        let first = stdout.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("mode: OFFLINE"),
            "example `{name}` must say first that it runs offline: {first}"
        );
        println!("example `{name}` ok ({} lines)", stdout.lines().count());
    }
}

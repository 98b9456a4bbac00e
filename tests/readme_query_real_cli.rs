//! The README's first code block is a working one-line query: it is `examples/query.rs`
//! (checked equal here), and runs against the real CLI, found by discovery, through a wrapper
//! that applies the safe offline environment (the fake Messages API on loopback).

use std::path::PathBuf;
use std::process::Command;

use claude_testing::fake_api::{FakeApi, user_texts_of};
use claude_testing::real_cli::{Sandbox, real_cli_or_skip, write_safe_wrapper};

/// The code lines of the README's first `rust` block (hidden `#` lines left out).
fn readme_first_block() -> Vec<String> {
    let readme = include_str!("../README.md");
    let start = readme.find("```rust").expect("a rust block");
    let body = &readme[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let end = body.find("```").unwrap();
    body[..end]
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_readme_first_block_is_the_query_example() {
    let example = include_str!("../examples/query.rs");
    let lines = readme_first_block();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("claude_supervisor::query(")),
        "{lines:?}"
    );
    for line in &lines {
        assert!(
            example.contains(line.as_str()),
            "`{line}` is not in examples/query.rs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_line_query_runs_against_the_real_cli() {
    let Some(cli) = real_cli_or_skip() else {
        return;
    };
    let api = FakeApi::start().await;
    let sandbox = Sandbox::new().unwrap();
    let wrapper = write_safe_wrapper(cli.path(), &sandbox, &api.base_url(), "claude").unwrap();

    // target/<profile>/deps/<this test> -> target/<profile>/examples/query
    let exe = std::env::current_exe().unwrap();
    let example: PathBuf = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/query");
    assert!(
        example.exists(),
        "examples/query is not built at {}",
        example.display()
    );
    let (home, work) = (sandbox.root().to_path_buf(), sandbox.work_dir());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&example)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", home)
            .env("CLAUDE_CLI_PATH", &wrapper)
            .current_dir(work)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    assert!(!stdout.trim().is_empty(), "an answer was printed");
    let request = api.last_main_request().expect("the CLI asked the fake API");
    assert!(
        user_texts_of(&request)
            .iter()
            .any(|t| t.contains("What is 2 + 2?")),
        "{:?}",
        user_texts_of(&request)
    );
}

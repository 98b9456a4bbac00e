//! The project's main job (`bash scripts/run.sh`): the `claude-supervisor` server on the CI
//! reviewer of `examples/ci-reviewer.toml`, sent diffs over HTTP by the binary's own `query`
//! command, its streamed reviews printed, then `health`, then SIGTERM (the drain).
//!
//! With `ANTHROPIC_API_KEY` set the reviewer talks to the real API. Without credentials it runs
//! offline: the CLI is pointed at the project's fake Messages API on loopback, in a throw-away
//! sandbox, and the first line printed says so.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use claude_supervisor_server::Config;
use claude_testing::fake_api::FakeApi;
use claude_testing::real_cli::{SafeEnv, Sandbox};

const DIFFS: [&str; 2] = [
    "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1 +1 @@\n-pub fn add(a: i32, b: i32) -> i32 { a - b }\n+pub fn add(a: i32, b: i32) -> i32 { a + b }",
    "--- a/src/io.rs\n+++ b/src/io.rs\n@@ -3 +3 @@\n-let f = File::open(p).unwrap();\n+let f = File::open(p)?;",
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let online = std::env::var_os("ANTHROPIC_API_KEY").is_some_and(|k| !k.is_empty());
    let scratch = tempfile::tempdir()?;
    let offline = if online {
        println!(
            "mode: ONLINE — the reviewer uses the real Anthropic API with your ANTHROPIC_API_KEY"
        );
        None
    } else {
        let api = FakeApi::start().await;
        println!(
            "mode: OFFLINE — no ANTHROPIC_API_KEY, so the CLI talks to the project's fake Messages API at {}",
            api.base_url()
        );
        Some((api, Sandbox::new()?))
    };

    // The example config, on a free loopback port, with its data in a scratch dir.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ci-reviewer.toml");
    let mut config = Config::load(example.as_ref())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    config.server.listen = ([127, 0, 0, 1], port).into();
    config.supervisor.data_dir = Some(scratch.path().join("data"));
    config.supervisor.cli_path = Some(claude_supervisor::find_cli(None)?);
    if let Some((api, sandbox)) = &offline {
        let env = SafeEnv::new(sandbox, &api.base_url())?;
        for agent in &mut config.sessions {
            agent.cwd = Some(sandbox.work_dir().to_owned());
            agent.env.extend(env.vars());
            agent.env_remove.extend(env.removed());
        }
    }
    let config_file = scratch.path().join("ci-reviewer.toml");
    std::fs::write(&config_file, toml::to_string(&config)?)?;

    // The binary beside this example (`cargo build` builds both: see scripts/run.sh).
    let bin: PathBuf = std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("claude-supervisor"))
        .filter(|b| b.is_file())
        .ok_or(
            "the claude-supervisor binary is not built: `cargo build -p claude-supervisor-server`",
        )?;
    let url = format!("http://127.0.0.1:{port}");
    println!(
        "$ claude-supervisor serve --config {}",
        config_file.display()
    );
    let mut server = Served(
        Command::new(&bin)
            .args(["serve", "--config"])
            .arg(&config_file)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()?,
    );
    wait_ready(&url).await?;

    for (i, diff) in DIFFS.iter().enumerate() {
        println!(
            "\n$ claude-supervisor query --server {url} --session reviewer \"Review diff #{}: …\"",
            i + 1
        );
        let status = Command::new(&bin)
            .args(["query", "--server", &url, "--session", "reviewer"])
            .arg(format!("Review diff #{}:\n{diff}", i + 1))
            .status()?;
        if !status.success() {
            eprintln!("the review failed ({status})");
        }
    }
    println!("\n$ claude-supervisor health --server {url}");
    Command::new(&bin)
        .args(["health", "--server", &url])
        .status()?;

    println!(
        "\n$ kill -TERM {}   # the drain: running turns finish, every CLI is stopped",
        server.0.id()
    );
    let status = server.terminate()?;
    println!(
        "done: the server exited ({status}); its reviewer's conversation is in the store for the next `serve`"
    );
    Ok(())
}

/// The server process: stopped by SIGTERM (its drain) when this example ends early, however it
/// ends (an error, or a panic such as a closed stdout), so that no server outlives it.
struct Served(std::process::Child);

impl Served {
    fn terminate(&mut self) -> std::io::Result<std::process::ExitStatus> {
        if let Some(status) = self.0.try_wait()? {
            return Ok(status);
        }
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .map_err(std::io::Error::other)?;
        self.0.wait()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

/// Waits (bounded) for `GET /ready`.
async fn wait_ready(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(r) = client.get(format!("{url}/ready")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("the server at {url} did not become ready within 60 s").into())
}

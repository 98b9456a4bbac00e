//! Quick start: one named session, a few prompts, a health report, a clean stop.
//!
//! With `ANTHROPIC_API_KEY` set, the CLI talks to the real API. Without credentials it runs
//! offline: the CLI is pointed at the project's fake Messages API on loopback, in a throw-away
//! sandbox, and the first line of output says so.
//!
//! Run it with `bash scripts/run.sh` (which installs the pinned CLI first), or
//! `cargo run --example quickstart` when a CLI is already installed.

use claude_supervisor::{ClaudeOptions, find_cli};
use claude_supervisor::{Session, SessionConfig};
use claude_testing::fake_api::FakeApi;
use claude_testing::real_cli::{SafeEnv, Sandbox};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = find_cli(None)?;
    let online = std::env::var_os("ANTHROPIC_API_KEY").is_some_and(|k| !k.is_empty());
    // Offline: the fake API and the sandbox must outlive the session.
    let mut offline = None;
    let options = if online {
        println!("mode: ONLINE — using the real Anthropic API with your ANTHROPIC_API_KEY");
        ClaudeOptions::builder().build()?
    } else {
        let api = FakeApi::start().await;
        let sandbox = Sandbox::new()?;
        println!(
            "mode: OFFLINE — no ANTHROPIC_API_KEY, so the CLI talks to the project's fake Messages API at {}",
            api.base_url()
        );
        let env = SafeEnv::new(&sandbox, &api.base_url())?;
        let mut builder = ClaudeOptions::builder().cwd(sandbox.work_dir());
        for (k, v) in env.vars() {
            builder = builder.env(k, v);
        }
        for k in env.removed() {
            builder = builder.env_remove(k);
        }
        offline = Some((api, sandbox));
        builder.build()?
    };
    println!("cli: {}", cli.display());

    let config = SessionConfig::builder("quickstart", cli)
        .options(options)
        .turn_timeout("2m")
        .build()?;
    let session = Session::start(config).await?;
    let version = session
        .server_info()
        .and_then(|i| i.cli_version())
        .unwrap_or("?")
        .to_owned();
    println!("session `{}` ready (Claude Code {version})", session.name());

    for prompt in [
        "Hello! Who are you?",
        "Summarise what I just asked, in five words.",
    ] {
        let out = session.query(prompt).await?.collect().await?;
        println!("> {prompt}\n< {}", out.text());
    }

    let health = session.health().await?;
    println!("health: {}", serde_json::to_string_pretty(&health)?);
    session.stop().await?;
    println!("stopped: every CLI process of the session has exited and been reaped");
    drop(offline);
    Ok(())
}

//! Health monitoring: the tree's report as JSON, lifecycle events on one subscription, a ping,
//! and a restart seen from outside (the CLI is killed; the supervisor brings it back).

#[path = "support/env.rs"]
mod support;

use std::time::Duration;

use claude_supervisor::{ClaudeSupervisor, SessionSpec, SupervisorEventKind};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = support::Env::new().await?;
    let tree = ClaudeSupervisor::builder()
        .cli_path(&env.cli)
        .session(SessionSpec::new("worker", env.options().build()?))
        .start()
        .await?;
    let mut events = tree.events();
    let monitor = tokio::spawn(async move {
        while let Ok(ev) = events.recv().await {
            match &ev.kind {
                SupervisorEventKind::Session(_) => {}
                kind => println!("event: {} {kind:?}", ev.session.unwrap_or_default()),
            }
        }
    });
    let worker = tree.session("worker").unwrap();
    worker.ask("hello").await?;
    println!("ping: {:?}", tree.ping("worker").await?);

    // Kill the CLI from outside: the supervisor restarts the session with its conversation.
    let pid = worker.health().await.and_then(|h| h.pid).expect("running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    worker.ask("are you back?").await?;
    println!(
        "health: {}",
        serde_json::to_string_pretty(&tree.health().await)?
    );
    tree.shutdown().await;
    monitor.abort();
    Ok(())
}

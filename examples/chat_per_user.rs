//! A chat bot with one session per user, started and stopped at run time, within limits.

#[path = "support/env.rs"]
mod support;

use claude_supervisor::{ClaudeSupervisor, SessionSpec, SupervisorError};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = support::Env::new().await?;
    let tree = ClaudeSupervisor::builder()
        .cli_path(&env.cli)
        .max_sessions(2)
        .start()
        .await?;

    for user in ["alice", "bob"] {
        let spec = SessionSpec::new(format!("chat-{user}"), env.options().build()?).group(user);
        let chat = tree.start_session(spec).await?;
        let out = chat.ask(format!("Hi, I am {user}.")).await?;
        println!("{user}: {}", out.final_text().unwrap_or_default());
    }
    // A third user is refused while two chats are live: a clear error, nothing harmed.
    match tree
        .start_session(SessionSpec::new("chat-carol", env.options().build()?))
        .await
    {
        Err(SupervisorError::TooManySessions { limit, .. }) => {
            println!("carol must wait: limit of {limit} chats")
        }
        other => println!("unexpected: {other:?}"),
    }
    for info in tree.list_sessions() {
        println!(
            "live: {} ({:?}, conversation {:?})",
            info.name, info.state, info.session_id
        );
    }
    // Alice leaves; carol gets her place.
    tree.terminate_session("chat-alice").await?;
    let carol = tree
        .start_session(SessionSpec::new("chat-carol", env.options().build()?))
        .await?;
    println!(
        "carol: {}",
        carol.ask("Hello!").await?.final_text().unwrap_or_default()
    );
    println!(
        "sessions now: {:?}",
        tree.list_sessions()
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
    );
    tree.shutdown().await;
    Ok(())
}

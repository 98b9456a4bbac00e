//! Ephemeral: one prompt in a session of its own; nothing is left behind.

#[path = "support/env.rs"]
mod support;

use claude_supervisor::session::{SessionConfig, query};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = support::Env::new().await?;
    let config = SessionConfig::builder("one-shot", &env.cli)
        .options(env.options().build()?)
        .build()?;
    let out = query("In one sentence: what is a supervision tree?", config).await?;
    println!("{}", out.final_text().unwrap_or(&out.text()));
    println!(
        "cost: ${:.4}; the session and its CLI are gone",
        out.cost.map_or(0.0, |c| c.cost_usd)
    );
    Ok(())
}

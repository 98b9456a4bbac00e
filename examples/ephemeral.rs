//! Ephemeral: one prompt in a session of its own; nothing is left behind.

#[path = "support/env.rs"]
mod support;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = support::Env::new().await?;
    let agent = env.agent("one-shot");
    let out = claude_supervisor::query_with("In one sentence: what is a supervision tree?", &agent)
        .await?;
    println!("{}", out.text());
    println!(
        "cost: ${:.4}; the session and its CLI are gone",
        out.cost.map_or(0.0, |c| c.cost_usd)
    );
    Ok(())
}

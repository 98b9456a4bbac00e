//! Long-running: a named reviewer agent under a supervisor, fed one diff after another.
//!
//! The reviewer is a permanent session: if its CLI dies it is restarted with its conversation,
//! so later reviews can refer to earlier ones. At the end: its health and what the reviews cost.
//! This is the project's main job (`bash scripts/run.sh`).

#[path = "support/env.rs"]
mod support;

use claude_supervisor::{ClaudeSupervisor, SessionSpec};

const DIFFS: [&str; 3] = [
    "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1 +1 @@\n-pub fn add(a: i32, b: i32) -> i32 { a - b }\n+pub fn add(a: i32, b: i32) -> i32 { a + b }",
    "--- a/src/io.rs\n+++ b/src/io.rs\n@@ -3 +3 @@\n-let f = File::open(p).unwrap();\n+let f = File::open(p)?;",
    "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-# Tittle\n+# Title",
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = support::Env::new().await?;
    let reviewer = SessionSpec::new(
        "reviewer",
        env.options()
            .append_system_prompt("You review diffs. Answer with a one-paragraph review.")
            .build()?,
    )
    .configure(|c| c.turn_timeout("5m"));
    let tree = ClaudeSupervisor::builder()
        .name("ci")
        .cli_path(&env.cli)
        .session(reviewer)
        .start()
        .await?;
    let handle = tree.session("reviewer").expect("started with the tree");

    for (i, diff) in DIFFS.iter().enumerate() {
        let review = handle
            .ask(format!("Review diff #{}:\n{diff}", i + 1))
            .await?;
        let cost = review.cost.map_or(0.0, |c| c.cost_usd);
        println!("review #{} (${cost:.4}): {}", i + 1, review.text());
    }

    let health = tree.health().await;
    println!(
        "reviewer: {} reviews in conversation {}, ${:.4} in all, {} restart(s)",
        health.cost.turns,
        handle.session_id().unwrap_or_default(),
        health.cost.cost_usd,
        health.restarts
    );
    tree.shutdown().await;
    println!("done: the tree is stopped and every CLI process reaped");
    Ok(())
}

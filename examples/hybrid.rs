//! Hybrid: the runtime stops while the conversation lives on in a store; the next run resumes it.
//!
//! The example runs the "program" twice in one process: each run builds a supervisor on the same
//! file store, asks one question, and stops.

#[path = "support/env.rs"]
mod support;

use claude_supervisor::{ClaudeSupervisor, FileStore, SessionSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = support::Env::new().await?;
    let store = env.scratch("store");
    for (run, prompt) in [
        (1, "Remember: the launch code is 0000."),
        (2, "What was the launch code?"),
    ] {
        let tree = ClaudeSupervisor::builder()
            .cli_path(&env.cli)
            .store(FileStore::open(&store)?)
            .session(SessionSpec::new("assistant", env.options().build()?))
            .start()
            .await?;
        let assistant = tree.session("assistant").expect("static session");
        let resumed = assistant.session_id();
        let out = assistant.ask(prompt).await?;
        println!(
            "run {run}: {} conversation {} -> {}",
            if resumed.is_some() { "resumed" } else { "new" },
            out.session_id(),
            out.final_text().unwrap_or_default()
        );
        tree.shutdown().await;
    }
    println!(
        "the conversation lived on in the store at {} between the two runs",
        store.display()
    );
    Ok(())
}

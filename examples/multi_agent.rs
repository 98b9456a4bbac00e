//! Several cooperating agents in one tree, each with its own working directory and config dir.

#[path = "support/env.rs"]
mod support;

use claude_supervisor::{ClaudeSupervisor, SessionSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = support::Env::new().await?;
    let mut builder = ClaudeSupervisor::builder()
        .cli_path(&env.cli)
        .config_dir_per_session(env.scratch("agents"));
    for (name, role) in [
        ("planner", "You plan."),
        ("coder", "You write code."),
        ("critic", "You criticise code."),
    ] {
        let work = env.scratch(&format!("work-{name}"));
        std::fs::create_dir_all(&work)?;
        builder = builder.session(SessionSpec::new(
            name,
            env.options().cwd(work).append_system_prompt(role).build()?,
        ));
    }
    let tree = builder.start().await?;
    let (planner, coder, critic) = (
        tree.session("planner").unwrap(),
        tree.session("coder").unwrap(),
        tree.session("critic").unwrap(),
    );

    let plan = planner
        .ask("Plan a function that reverses a string.")
        .await?;
    let code = coder
        .ask(format!(
            "Implement this plan: {}",
            plan.final_text().unwrap_or_default()
        ))
        .await?;
    let review = critic
        .ask(format!(
            "Review this code: {}",
            code.final_text().unwrap_or_default()
        ))
        .await?;
    println!("plan:   {}", plan.final_text().unwrap_or_default());
    println!("code:   {}", code.final_text().unwrap_or_default());
    println!("review: {}", review.final_text().unwrap_or_default());
    for info in tree.list_sessions() {
        println!(
            "{}: conversation {}",
            info.name,
            info.session_id.unwrap_or_default()
        );
    }
    tree.shutdown().await;
    Ok(())
}

//! The README's first example: a one-line query, the CLI found by the usual discovery.
//!
//! Run it with your own CLI and credentials; the test suite runs it against the real CLI through
//! a wrapper that applies the safe, offline environment.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let answer = claude_supervisor::query("What is 2 + 2?").await?;
    println!("{}", answer.text());
    Ok(())
}

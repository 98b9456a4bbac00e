//! One round of the Rust peer (`claude-agent-sdk-rs`) for the I/O-path benchmark.
//!
//! `bench-peer-rust-sdk <fake-claude> <small-turn> <big-turn>` prints one JSON line:
//! `{"ready_s": …, "turn_s": …, "frames": …}`.
//! - ready: `ClaudeClient::connect` (spawn, the SDK's `--version` check, `initialize` answered)
//!   against a fake whose replay file is the small turn, so reading the big file is not timed;
//! - turn: a second client on the big turn; from `query` to the `result` message, counting every
//!   message `receive_response` yields.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use claude_agent_sdk_rs::{ClaudeAgentOptions, ClaudeClient, Message};
use futures::StreamExt;

fn options(fake: &str, turn: &str) -> ClaudeAgentOptions {
    let mut env = HashMap::new();
    env.insert("FAKE_CLAUDE_REPLAY".to_owned(), turn.to_owned());
    ClaudeAgentOptions {
        cli_path: Some(PathBuf::from(fake)),
        env,
        // The SDK adds every line's length to one counter that is never reset (0.6.4,
        // `SubprocessTransport::read_messages`) and stops reading once it passes
        // `max_buffer_size` (default 10 MB), after which `receive_response` waits forever: with
        // the default, a process cannot print more than 10 MB in its life, and the 100k-frame
        // turn is ~50 MB. Raising it is the SDK's own knob and changes nothing per line.
        max_buffer_size: Some(1 << 40),
        ..ClaudeAgentOptions::default()
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("bench-peer-rust-sdk: {what}: {e}");
    std::process::exit(1);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, fake, small, big] = args.as_slice() else {
        fail(
            "usage",
            "bench-peer-rust-sdk <fake-claude> <small-turn> <big-turn>",
        );
    };

    let mut client = ClaudeClient::new(options(fake, small));
    let t = Instant::now();
    client
        .connect()
        .await
        .unwrap_or_else(|e| fail("connect (ready)", e));
    let ready = t.elapsed();
    client
        .disconnect()
        .await
        .unwrap_or_else(|e| fail("disconnect", e));

    let mut client = ClaudeClient::new(options(fake, big));
    client
        .connect()
        .await
        .unwrap_or_else(|e| fail("connect (turn)", e));
    let t = Instant::now();
    client
        .query("bench")
        .await
        .unwrap_or_else(|e| fail("query", e));
    let mut frames = 0u64;
    let mut saw_result = false;
    {
        let mut stream = client.receive_response();
        while let Some(msg) = stream.next().await {
            let msg = msg.unwrap_or_else(|e| fail("receive", e));
            frames += 1;
            if matches!(msg, Message::Result(_)) {
                saw_result = true;
            }
        }
    }
    let turn = t.elapsed();
    client
        .disconnect()
        .await
        .unwrap_or_else(|e| fail("disconnect", e));
    if !saw_result {
        fail("receive", "the stream ended before the result message");
    }
    println!(
        "{}",
        serde_json::json!({
            "ready_s": ready.as_secs_f64(),
            "turn_s": turn.as_secs_f64(),
            "frames": frames,
        })
    );
}

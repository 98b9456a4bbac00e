//! Frames per second from fake-claude's load mode through a session to the caller's stream,
//! beside a floor program that spawns the same fake and only reads and parses its lines with
//! serde_json, in the same run. Goal: the session reaches at least 0.8 of the floor.
//!
//! Run with `cargo bench -p claude-session --bench turn_throughput`; `FRAMES` (default 100000) and
//! `ROUNDS` (default 5) tune it. It prints the best round of each and their ratio.

use std::process::Stdio;
use std::time::{Duration, Instant};

use claude_protocol::ClaudeOptions;
use claude_session::{Session, SessionConfig};
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Spawns fake-claude, sends one user line, reads and parses every line until the `result`.
async fn floor(fake: &std::path::Path, home: &std::path::Path, frames: usize) -> (usize, Duration) {
    let mut child = tokio::process::Command::new(fake)
        .args([
            "--output-format",
            "stream-json",
            "--verbose",
            "--input-format",
            "stream-json",
        ])
        .env("HOME", home)
        .env("FAKE_CLAUDE_LOAD_FRAMES", frames.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn fake-claude");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::with_capacity(64 * 1024, child.stdout.take().unwrap()).lines();
    let start = Instant::now();
    stdin
        .write_all(b"{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"load\"},\"parent_tool_use_id\":null,\"session_id\":\"default\"}\n")
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    let mut count = 0;
    while let Some(line) = lines.next_line().await.unwrap() {
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        count += 1;
        if v.get("type").and_then(|t| t.as_str()) == Some("result") {
            break;
        }
    }
    let elapsed = start.elapsed();
    drop(stdin);
    let _ = child.wait().await;
    (count, elapsed)
}

/// The same turn through a session: launch and initialize happen before the clock starts.
async fn through_session(
    fake: &std::path::Path,
    home: &std::path::Path,
    frames: usize,
) -> (usize, Duration) {
    let options = ClaudeOptions::builder()
        .env("HOME", home.as_os_str())
        .env("FAKE_CLAUDE_LOAD_FRAMES", frames.to_string())
        .build()
        .unwrap();
    let config = SessionConfig::builder("bench", fake)
        .options(options)
        .build()
        .unwrap();
    let session = Session::start(config).await.expect("session starts");
    let start = Instant::now();
    let mut turn = session.query("load").await.unwrap();
    let mut count = 0;
    while let Some(msg) = turn.next().await {
        msg.expect("no error");
        count += 1;
    }
    let elapsed = start.elapsed();
    session.stop().await.unwrap();
    (count, elapsed)
}

fn main() {
    let frames = env_usize("FRAMES", 100_000);
    let rounds = env_usize("ROUNDS", 5);
    let fake = claude_testing::fake_claude::fake_claude_path();
    let home = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut best_floor, mut best_session) = (Duration::MAX, Duration::MAX);
        let (mut floor_frames, mut session_frames) = (0, 0);
        for _ in 0..rounds {
            let (n, t) = floor(&fake, home.path(), frames).await;
            floor_frames = n;
            best_floor = best_floor.min(t);
            let (n, t) = through_session(&fake, home.path(), frames).await;
            session_frames = n;
            best_session = best_session.min(t);
        }
        assert!(floor_frames >= frames, "the floor saw {floor_frames} frames, expected at least {frames}");
        assert_eq!(floor_frames, session_frames, "the session must deliver every frame the floor reads");
        let fps = |n: usize, t: Duration| n as f64 / t.as_secs_f64();
        let (f, s) = (fps(floor_frames, best_floor), fps(session_frames, best_session));
        println!("turn_throughput: {frames} frames, best of {rounds} rounds");
        println!("  floor (spawn + read + serde_json::Value parse): {f:>12.0} frames/s ({best_floor:?})");
        println!("  through a session (typed parse + routing):      {s:>12.0} frames/s ({best_session:?})");
        println!("  ratio session/floor: {:.2} (goal >= 0.80)", s / f);
    });
}

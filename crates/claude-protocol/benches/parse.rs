//! Frames/s of typing stdout lines: `Message::from_slice` against the floor, a plain
//! `serde_json::from_slice::<Value>` of the same line.
//!
//! The input is a realistic turn: 100k frames cycled from the recorded transcripts'
//! `stream_event` and `assistant` lines of 300–800 bytes (both CLI versions). Rounds are
//! interleaved (floor, ours, floor, ours, …) so drift hits both alike; the report gives the
//! median of 5 with min and max, and the ratio of the medians.
//!
//! Environment:
//! * `PARSE_BENCH_FRAMES=N` — frames in the turn (default 100000).
//! * `PARSE_BENCH_ONLY=floor|ours|none` — one pass of one parser and nothing else, for
//!   `valgrind --tool=callgrind` (`none` builds the input and parses nothing: the baseline to
//!   subtract).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use claude_protocol::Message;
use serde_json::Value;

const ROUNDS: usize = 5;

fn transcript_lines() -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/cli-transcripts");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut out = Vec::new();
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("list transcripts")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).expect("read transcript");
            for line in text.lines() {
                let hot = line.starts_with(r#"{"type":"stream_event""#)
                    || line.starts_with(r#"{"type":"assistant""#);
                if hot && (300..=800).contains(&line.len()) {
                    out.push(line.as_bytes().to_vec());
                }
            }
        }
    }
    assert!(
        !out.is_empty(),
        "no stream_event/assistant lines of 300–800 bytes"
    );
    out
}

/// The turn: `frames` lines cycled from the recorded ones, each in its own buffer (as a reader
/// hands them over).
fn turn(frames: usize) -> Vec<Vec<u8>> {
    let lines = transcript_lines();
    lines.iter().cycle().take(frames).cloned().collect()
}

fn floor(turn: &[Vec<u8>]) -> usize {
    let mut n = 0;
    for line in turn {
        let v: Value = serde_json::from_slice(line).expect("recorded lines are JSON");
        n += usize::from(v.is_object());
        black_box(v);
    }
    n
}

fn ours(turn: &[Vec<u8>]) -> usize {
    let mut n = 0;
    for line in turn {
        let m = Message::from_slice(line).expect("recorded lines parse");
        n += usize::from(!m.is_raw());
        black_box(m);
    }
    n
}

fn timed(f: fn(&[Vec<u8>]) -> usize, turn: &[Vec<u8>]) -> Duration {
    let start = Instant::now();
    let n = black_box(f(black_box(turn)));
    let took = start.elapsed();
    assert_eq!(
        n,
        turn.len(),
        "every frame parses to an object / a typed message"
    );
    took
}

fn rate(frames: usize, d: Duration) -> f64 {
    frames as f64 / d.as_secs_f64()
}

fn summary(rates: &mut [f64]) -> (f64, f64, f64) {
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
}

fn main() {
    let frames: usize = std::env::var("PARSE_BENCH_FRAMES")
        .ok()
        .map(|s| s.parse().expect("PARSE_BENCH_FRAMES is a number"))
        .unwrap_or(100_000);
    let only = std::env::var("PARSE_BENCH_ONLY").ok();
    let turn = turn(frames);
    match only.as_deref() {
        Some("floor") => {
            black_box(floor(&turn));
            return;
        }
        Some("ours") => {
            black_box(ours(&turn));
            return;
        }
        Some("none") => {
            black_box(&turn);
            return;
        }
        Some(other) => panic!("PARSE_BENCH_ONLY={other}: expected floor, ours or none"),
        None => {}
    }
    let bytes: usize = turn.iter().map(Vec::len).sum();
    println!(
        "parse: {frames} frames, {:.0} bytes/frame on average",
        bytes as f64 / frames as f64
    );
    // Warm-up (allocator, caches).
    timed(floor, &turn);
    timed(ours, &turn);
    let mut floor_rates = Vec::new();
    let mut our_rates = Vec::new();
    for _ in 0..ROUNDS {
        floor_rates.push(rate(frames, timed(floor, &turn)));
        our_rates.push(rate(frames, timed(ours, &turn)));
    }
    let (fm, fmin, fmax) = summary(&mut floor_rates);
    let (om, omin, omax) = summary(&mut our_rates);
    println!(
        "floor  serde_json::from_slice::<Value>: {fm:>10.0} frames/s (min {fmin:.0}, max {fmax:.0})"
    );
    println!(
        "ours   Message::from_slice:             {om:>10.0} frames/s (min {omin:.0}, max {omax:.0})"
    );
    println!("ratio  ours / floor (medians): {:.2}x", om / fm);
}

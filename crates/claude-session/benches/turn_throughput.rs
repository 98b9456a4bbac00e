//! A session's I/O path against the floor, the emitter's ceiling and the peers, in one run.
//!
//! The emitter is fake-claude's replay mode (`FAKE_CLAUDE_REPLAY`): a pre-built turn of
//! `FRAMES` frames (300–800-byte `stream_event`/`assistant` lines built from the recorded
//! transcript `shared/cli-transcripts/2.1.329/partial.jsonl`, ids rewritten, ending in a `result`)
//! written in one `write_all` per user line. Contenders, interleaved round by round (the starting
//! contender rotates), all on the same emitter and the same turn file:
//!
//! - `ceiling`: spawn, then only count newlines with `memchr` (no parse): what the emitter and
//!   the pipe sustain. A contender whose median reaches ≥ 0.5 of it is marked INVALID (the
//!   emitter, not the reader, would then be the limit);
//! - `floor`: spawn, read lines, `serde_json::from_slice::<Value>` each;
//! - `ours`: a `claude_session::Session`, the turn read from the caller's `TurnStream`;
//! - `python-sdk`: the official `claude-agent-sdk` (`benches/peers/python_sdk.py`, run with
//!   `BENCH_PYTHON`), when `BENCH_PYTHON` is set;
//! - `rust-sdk`: `claude-agent-sdk-rs` (`benches/peers/rust-sdk`, the binary `BENCH_RUST_PEER`),
//!   when `BENCH_RUST_PEER` is set.
//!
//! The in-process contenders (ceiling, floor, ours) each run as a task spawned on the bench's
//! 2-worker Tokio runtime, as a service's request handlers do, never on the thread blocked in
//! `block_on`: a reader that must hand frames to a consumer on another thread is what a
//! `Session` is built for, and the floor and ceiling get the same runtime.
//!
//! Per contender: frames/s of the big turn (query sent → `result` read) and time to ready (spawn
//! → `initialize` answered, against a fake replaying a small turn, so reading the big file is
//! never timed); median, min and max over `ROUNDS` rounds. A peer that is not configured or
//! fails is reported loudly and recorded as "not run"/"failed", never with a figure.
//!
//! `scripts/bench.sh` (`just bench`) sets everything up and turns the JSON (`BENCH_OUT`) into
//! docs/perf/io.json, the chart and the docs section. By hand:
//! `FAKE_CLAUDE_BIN=target/release/fake-claude cargo bench -p claude-session --bench turn_throughput`.
//! `FRAMES` (default 100000), `ROUNDS` (default 11), `BENCH_QUICK=1` (20000 frames, 3 rounds).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use claude_protocol::ClaudeOptions;
use claude_session::{Session, SessionConfig};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// A median at or above this fraction of the ceiling's says more about the emitter than the reader.
const VALID_FRACTION: f64 = 0.5;
/// Frames per message group in the synthesised turn (message_start … message_stop).
const DELTAS_PER_MESSAGE: usize = 40;
/// Frames of the small turn replayed when only time to ready is measured.
const SMALL_FRAMES: usize = 16;
/// One peer round may not take longer than this (a hung peer is a failure, not a wait).
const PEER_TIMEOUT: Duration = Duration::from_secs(120);

const USER_LINE: &[u8] = b"{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"bench\"},\"parent_tool_use_id\":null,\"session_id\":\"default\"}\n";
const INIT_LINE: &[u8] = b"{\"type\":\"control_request\",\"request_id\":\"bench_init\",\"request\":{\"subtype\":\"initialize\",\"hooks\":null}}\n";
const SESSION_ID: &str = "be7c4000-0000-4000-8000-000000000001";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

// ---------------------------------------------------------------------------------------------
// The turn file
// ---------------------------------------------------------------------------------------------

/// The recorded frames the synthesised turn is made of.
struct Templates {
    init: Value,
    message_start: Value,
    block_start: Value,
    delta: Value,
    assistant: Value,
    block_stop: Value,
    message_delta: Value,
    message_stop: Value,
    result: Value,
}

impl Templates {
    fn from_transcript(path: &Path) -> Templates {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read the transcript {}: {e}", path.display()));
        let mut found: std::collections::HashMap<&'static str, Value> = Default::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: a line is not JSON: {e}", path.display()));
            let key = match (
                v["type"].as_str(),
                v["subtype"].as_str(),
                v["event"]["type"].as_str(),
            ) {
                (Some("system"), Some("init"), _) => "init",
                (Some("stream_event"), _, Some("message_start")) => "message_start",
                (Some("stream_event"), _, Some("content_block_start")) => "block_start",
                (Some("stream_event"), _, Some("content_block_delta")) => "delta",
                (Some("stream_event"), _, Some("content_block_stop")) => "block_stop",
                (Some("stream_event"), _, Some("message_delta")) => "message_delta",
                (Some("stream_event"), _, Some("message_stop")) => "message_stop",
                (Some("assistant"), _, _) => "assistant",
                (Some("result"), _, _) => "result",
                _ => continue,
            };
            found.entry(key).or_insert(v);
        }
        let mut take = |k: &str| {
            found.remove(k).unwrap_or_else(|| {
                panic!("{}: no {k} frame to build the turn from", path.display())
            })
        };
        Templates {
            init: take("init"),
            message_start: take("message_start"),
            block_start: take("block_start"),
            delta: take("delta"),
            assistant: take("assistant"),
            block_stop: take("block_stop"),
            message_delta: take("message_delta"),
            message_stop: take("message_stop"),
            result: take("result"),
        }
    }
}

const WORDS: &[&str] = &[
    "the",
    "session",
    "supervisor",
    "restarts",
    "a",
    "crashed",
    "process",
    "with",
    "its",
    "conversation",
    "and",
    "replays",
    "nothing",
];

/// Deterministic text of `len` bytes (varied so lines are 300–800 bytes, never all alike).
fn text(seed: usize, len: usize) -> String {
    let mut s = String::with_capacity(len + 16);
    let mut w = seed;
    while s.len() < len {
        s.push_str(WORDS[w % WORDS.len()]);
        s.push(' ');
        w = w.wrapping_mul(31).wrapping_add(7);
    }
    s.truncate(len);
    s
}

/// Rewrite a frame's ids: the bench's session, a fresh uuid, this message's API id.
fn stamp(mut v: Value, n: usize, msg_id: &str) -> Value {
    v["session_id"] = json!(SESSION_ID);
    v["uuid"] = json!(format!("be7c4000-0000-4000-8000-{n:012x}"));
    if v.get("api_message_id").is_some() {
        v["api_message_id"] = json!(msg_id);
    }
    if v["event"]["message"]["id"].is_string() {
        v["event"]["message"]["id"] = json!(msg_id);
    }
    if v["message"]["id"].is_string() {
        v["message"]["id"] = json!(msg_id);
    }
    v
}

/// Build a turn of exactly `frames` lines (≥ 9): init, message groups, result.
fn build_turn(t: &Templates, frames: usize) -> Vec<u8> {
    assert!(frames >= 9, "a turn needs at least 9 frames, got {frames}");
    let mut out = Vec::with_capacity(frames * 560);
    let mut n = 0usize;
    let push = |out: &mut Vec<u8>, v: Value| {
        serde_json::to_writer(&mut *out, &v).expect("serialise a frame");
        out.push(b'\n');
    };
    push(&mut out, stamp(t.init.clone(), n, ""));
    n += 1;
    // Everything but init and result is in groups of 6 fixed frames plus deltas.
    let body = frames - 2;
    let groups = (body / (6 + DELTAS_PER_MESSAGE)).max(1);
    let mut deltas_left = body - 6 * groups;
    for g in 0..groups {
        let msg_id = format!("msg_bench_{g:08}");
        let deltas = if g + 1 == groups {
            deltas_left
        } else {
            DELTAS_PER_MESSAGE.min(deltas_left)
        };
        deltas_left -= deltas;
        push(&mut out, stamp(t.message_start.clone(), n, &msg_id));
        n += 1;
        push(&mut out, stamp(t.block_start.clone(), n, &msg_id));
        n += 1;
        for _ in 0..deltas {
            let mut d = stamp(t.delta.clone(), n, &msg_id);
            // 30–449 bytes of text on a ~274-byte envelope: lines of ~304–723 bytes.
            d["event"]["delta"]["text"] = json!(text(n, 30 + (n * 7919) % 420));
            push(&mut out, d);
            n += 1;
        }
        let mut a = stamp(t.assistant.clone(), n, &msg_id);
        a["message"]["content"] = json!([{"type": "text", "text": text(n, 120)}]);
        push(&mut out, a);
        n += 1;
        for tpl in [&t.block_stop, &t.message_delta, &t.message_stop] {
            push(&mut out, stamp(tpl.clone(), n, &msg_id));
            n += 1;
        }
    }
    let mut r = stamp(t.result.clone(), n, "");
    r["result"] = json!(format!("bench: {frames} frames"));
    push(&mut out, r);
    n += 1;
    assert_eq!(n, frames, "the turn builder miscounted");
    out
}

// ---------------------------------------------------------------------------------------------
// Samples
// ---------------------------------------------------------------------------------------------

/// One contender's round: time to ready (if measured) and the big turn.
struct Sample {
    ready: Option<Duration>,
    turn: Duration,
    frames: u64,
}

/// What a contender is and what it gave.
struct Contender {
    id: &'static str,
    name: &'static str,
    /// How it is set up, where that differs from its defaults.
    notes: Option<&'static str>,
    /// Why it does not run, when it does not.
    not_run: Option<String>,
    /// The first failure, after which it is not run again.
    failed: Option<String>,
    samples: Vec<Sample>,
    version: Option<String>,
}

impl Contender {
    fn new(id: &'static str, name: &'static str, not_run: Option<String>) -> Self {
        Contender {
            id,
            name,
            notes: None,
            not_run,
            failed: None,
            samples: Vec::new(),
            version: None,
        }
    }

    fn runs(&self) -> bool {
        self.not_run.is_none() && self.failed.is_none()
    }
}

fn stats(mut xs: Vec<f64>) -> Value {
    if xs.is_empty() {
        return Value::Null;
    }
    let samples = xs.clone();
    xs.sort_by(f64::total_cmp);
    let m = xs.len() / 2;
    let median = if xs.len() % 2 == 1 {
        xs[m]
    } else {
        (xs[m - 1] + xs[m]) / 2.0
    };
    json!({"samples": samples, "median": median, "min": xs[0], "max": xs[xs.len() - 1]})
}

// ---------------------------------------------------------------------------------------------
// The in-process contenders
// ---------------------------------------------------------------------------------------------

struct Raw {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
}

/// Spawn the fake on `turn` and wait for its `initialize` answer: the floor's and the ceiling's
/// way to be ready (the same as the SDKs': spawn, initialize, answer read).
async fn spawn_ready(fake: &Path, home: &Path, turn: &Path) -> (Raw, Duration) {
    let t = Instant::now();
    let mut child = Command::new(fake)
        .args([
            "--output-format",
            "stream-json",
            "--verbose",
            "--input-format",
            "stream-json",
            "--include-partial-messages",
        ])
        .env("HOME", home)
        .env("FAKE_CLAUDE_REPLAY", turn)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn fake-claude");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut out = BufReader::with_capacity(1 << 17, child.stdout.take().expect("piped stdout"));
    stdin.write_all(INIT_LINE).await.expect("write initialize");
    stdin.flush().await.expect("flush initialize");
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = out.read_until(b'\n', &mut line).await.expect("read stdout");
        assert!(
            n > 0,
            "fake-claude closed stdout before answering initialize"
        );
        let v: Value = serde_json::from_slice(&line).expect("a JSON line");
        if v["type"] == "control_response" {
            break;
        }
    }
    let ready = t.elapsed();
    (Raw { child, stdin, out }, ready)
}

async fn finish(mut raw: Raw) {
    drop(raw.stdin);
    let _ = raw.child.wait().await;
}

async fn ceiling(fake: &Path, home: &Path, big: &Path, frames: usize) -> Sample {
    let (mut raw, _) = spawn_ready(fake, home, big).await;
    let t = Instant::now();
    raw.stdin
        .write_all(USER_LINE)
        .await
        .expect("write user line");
    raw.stdin.flush().await.expect("flush user line");
    let mut seen = 0usize;
    while seen < frames {
        let buf = raw.out.fill_buf().await.expect("read stdout");
        assert!(
            !buf.is_empty(),
            "fake-claude closed stdout after {seen} lines"
        );
        let len = buf.len();
        seen += memchr::memchr_iter(b'\n', buf).count();
        raw.out.consume(len);
    }
    let turn = t.elapsed();
    finish(raw).await;
    Sample {
        ready: None,
        turn,
        frames: seen as u64,
    }
}

async fn floor(fake: &Path, home: &Path, small: &Path, big: &Path) -> Sample {
    let (raw, ready) = spawn_ready(fake, home, small).await;
    finish(raw).await;
    let (mut raw, _) = spawn_ready(fake, home, big).await;
    let t = Instant::now();
    raw.stdin
        .write_all(USER_LINE)
        .await
        .expect("write user line");
    raw.stdin.flush().await.expect("flush user line");
    let mut line = Vec::with_capacity(4096);
    let mut frames = 0u64;
    loop {
        line.clear();
        let n = raw
            .out
            .read_until(b'\n', &mut line)
            .await
            .expect("read stdout");
        assert!(n > 0, "fake-claude closed stdout after {frames} lines");
        let v: Value = serde_json::from_slice(&line).expect("a JSON line");
        frames += 1;
        if v.get("type").and_then(Value::as_str) == Some("result") {
            break;
        }
    }
    let turn = t.elapsed();
    finish(raw).await;
    Sample {
        ready: Some(ready),
        turn,
        frames,
    }
}

fn session_config(fake: &Path, home: &Path, turn: &Path) -> SessionConfig {
    let options = ClaudeOptions::builder()
        .env("HOME", home.as_os_str())
        .env("FAKE_CLAUDE_REPLAY", turn.as_os_str())
        .build()
        .expect("options");
    SessionConfig::builder("bench", fake)
        .options(options)
        .build()
        .expect("session config")
}

async fn ours(fake: &Path, home: &Path, small: &Path, big: &Path) -> Result<Sample, String> {
    let t = Instant::now();
    let session = Session::start(session_config(fake, home, small))
        .await
        .map_err(|e| format!("Session::start (ready): {e}"))?;
    let ready = t.elapsed();
    session.stop().await.map_err(|e| format!("stop: {e}"))?;

    let session = Session::start(session_config(fake, home, big))
        .await
        .map_err(|e| format!("Session::start (turn): {e}"))?;
    let t = Instant::now();
    let mut turn = session
        .query("bench")
        .await
        .map_err(|e| format!("query: {e}"))?;
    let mut frames = 0u64;
    while let Some(msg) = turn.next().await {
        msg.map_err(|e| format!("frame {frames}: {e}"))?;
        frames += 1;
    }
    let elapsed = t.elapsed();
    session.stop().await.map_err(|e| format!("stop: {e}"))?;
    Ok(Sample {
        ready: Some(ready),
        turn: elapsed,
        frames,
    })
}

// ---------------------------------------------------------------------------------------------
// The peers: one process per round, one JSON line out
// ---------------------------------------------------------------------------------------------

async fn peer(mut cmd: Command, what: &str) -> Result<(Sample, Value), String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(PEER_TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("{what}: no answer within {PEER_TIMEOUT:?}"))?
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "{what}: exited {}: {}",
            out.status,
            tail.join(" | ")
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| format!("{what}: printed no JSON line (stdout: {stdout:?})"))?;
    let v: Value =
        serde_json::from_str(line).map_err(|e| format!("{what}: bad JSON {line:?}: {e}"))?;
    let secs = |k: &str| {
        v[k].as_f64()
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("{what}: no {k} in {line}"))
    };
    Ok((
        Sample {
            ready: Some(secs("ready_s")?),
            turn: secs("turn_s")?,
            frames: v["frames"]
                .as_u64()
                .ok_or_else(|| format!("{what}: no frames in {line}"))?,
        },
        v,
    ))
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| (kb / 1024.0 / 1024.0 * 10.0).round() / 10.0)
    });
    json!({"nproc": nproc, "cpu": cpu, "kernel": kernel, "mem_gib": mem_gib})
}

/// The pinned version of `name` in a Cargo.lock.
fn locked_version(lock: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(lock).ok()?;
    let needle = format!("name = \"{name}\"\n");
    let at = text.find(&needle)? + needle.len();
    let rest = text[at..].lines().next()?;
    rest.strip_prefix("version = \"")?
        .strip_suffix('"')
        .map(str::to_owned)
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let frames = env_usize("FRAMES", if quick { 20_000 } else { 100_000 });
    let rounds = env_usize("ROUNDS", if quick { 3 } else { 11 });
    let fake = claude_testing::fake_claude::fake_claude_path();
    let ws = workspace_dir();
    let work = env_path("BENCH_WORK").unwrap_or_else(|| ws.join("target/bench-io"));
    std::fs::create_dir_all(&work).expect("create the bench's work dir");
    let home = tempfile::tempdir().expect("temp HOME");
    let transcript = env_path("BENCH_TRANSCRIPT")
        .unwrap_or_else(|| ws.join("../shared/cli-transcripts/2.1.329/partial.jsonl"));

    // The turns, built once.
    let templates = Templates::from_transcript(&transcript);
    let big_bytes = build_turn(&templates, frames);
    let big = work.join(format!("turn-{frames}.jsonl"));
    let small = work.join("turn-small.jsonl");
    std::fs::write(&big, &big_bytes).expect("write the turn file");
    std::fs::write(&small, build_turn(&templates, SMALL_FRAMES)).expect("write the small turn");
    let lens: Vec<usize> = big_bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::len)
        .collect();
    let body: Vec<usize> = lens[1..lens.len() - 1].to_vec();
    // Text deltas and assistant lines are sized 300–800 bytes; the other frames keep the size
    // they have in the recording.
    let sized: Vec<usize> = big_bytes
        .split(|b| *b == b'\n')
        .filter(|l| {
            l.starts_with(b"{\"type\":\"assistant\"")
                || memchr::memmem::find(l, b"\"content_block_delta\"").is_some()
        })
        .map(<[u8]>::len)
        .collect();
    let turn_info = json!({
        "frames": frames,
        "bytes": big_bytes.len(),
        "mean_line_bytes": big_bytes.len() / frames,
        "body_line_bytes_min": body.iter().min(),
        "body_line_bytes_max": body.iter().max(),
        "sized_lines": sized.len(),
        "ready_turn_frames": SMALL_FRAMES,
        "sized_line_bytes_min": sized.iter().min(),
        "sized_line_bytes_max": sized.iter().max(),
        "source": "shared/cli-transcripts/2.1.329/partial.jsonl (init, stream_event, assistant, result; ids rewritten; text deltas and assistant lines 300–800 bytes, block/message start and stop frames at their recorded size)",
    });

    // The contenders.
    let python = env_path("BENCH_PYTHON");
    let py_driver = ws.join("benches/peers/python_sdk.py");
    let rust_peer = env_path("BENCH_RUST_PEER");
    let mut cs = vec![
        Contender::new(
            "ceiling",
            "emitter ceiling: count newlines (memchr), no parse",
            None,
        ),
        Contender::new(
            "floor",
            "floor: spawn, read lines, serde_json::from_slice::<Value>",
            None,
        ),
        Contender::new("ours", "claude-session: Session → TurnStream", None),
        Contender::new(
            "python-sdk",
            "Python claude-agent-sdk: ClaudeSDKClient.receive_response",
            match (&python, std::env::var("BENCH_PYTHON_ERROR")) {
                (_, Ok(e)) if !e.is_empty() => Some(e),
                (None, _) => {
                    Some("BENCH_PYTHON is not set (scripts/bench.sh makes the venv)".into())
                }
                _ => None,
            },
        ),
        Contender::new(
            "rust-sdk",
            "Rust claude-agent-sdk-rs: ClaudeClient::receive_response",
            match (&rust_peer, std::env::var("BENCH_RUST_PEER_ERROR")) {
                (_, Ok(e)) if !e.is_empty() => Some(e),
                (None, _) => Some("BENCH_RUST_PEER is not set (scripts/bench.sh builds it)".into()),
                _ => None,
            },
        ),
    ];
    cs[3].notes = Some("defaults; cli_path = fake-claude");
    cs[4].notes = Some(
        "cli_path = fake-claude; max_buffer_size raised to 2^40: in 0.6.4 it bounds the bytes a \
         process prints in its whole life (a counter never reset), and with the 10 MB default \
         the SDK stops reading mid-turn and receive_response never ends",
    );
    cs[4].version = locked_version(
        &ws.join("benches/peers/rust-sdk/Cargo.lock"),
        "claude-agent-sdk-rs",
    );
    for c in &cs {
        if let Some(why) = &c.not_run {
            eprintln!("turn_throughput: !!! {} NOT RUN: {why}", c.id);
        }
    }

    println!(
        "turn_throughput: {frames} frames ({} bytes), {rounds} rounds, fake {}",
        big_bytes.len(),
        fake.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    rt.block_on(async {
        for round in 0..rounds {
            for k in 0..cs.len() {
                let i = (k + round) % cs.len();
                if !cs[i].runs() {
                    continue;
                }
                // The in-process contenders run as a task on the runtime's workers, as a
                // service's handlers do (not on the thread blocked in `block_on`), each alike.
                let (f, h, sm, bg) = (
                    fake.clone(),
                    home.path().to_owned(),
                    small.clone(),
                    big.clone(),
                );
                let res: Result<(Sample, Option<Value>), String> = match cs[i].id {
                    "ceiling" => {
                        tokio::spawn(async move { Ok((ceiling(&f, &h, &bg, frames).await, None)) })
                            .await
                            .unwrap_or_else(|e| Err(format!("the ceiling task: {e}")))
                    }
                    "floor" => {
                        tokio::spawn(async move { Ok((floor(&f, &h, &sm, &bg).await, None)) })
                            .await
                            .unwrap_or_else(|e| Err(format!("the floor task: {e}")))
                    }
                    "ours" => {
                        tokio::spawn(async move { ours(&f, &h, &sm, &bg).await.map(|s| (s, None)) })
                            .await
                            .unwrap_or_else(|e| Err(format!("the ours task: {e}")))
                    }
                    "python-sdk" => {
                        let mut cmd = Command::new(python.as_ref().expect("checked"));
                        cmd.arg(&py_driver)
                            .arg(&fake)
                            .arg(&small)
                            .arg(&big)
                            .env("HOME", home.path());
                        peer(cmd, "python-sdk").await.map(|(s, v)| (s, Some(v)))
                    }
                    "rust-sdk" => {
                        let mut cmd = Command::new(rust_peer.as_ref().expect("checked"));
                        cmd.arg(&fake)
                            .arg(&small)
                            .arg(&big)
                            .env("HOME", home.path());
                        peer(cmd, "rust-sdk").await.map(|(s, v)| (s, Some(v)))
                    }
                    other => unreachable!("unknown contender {other}"),
                };
                let c = &mut cs[i];
                match res {
                    Ok((s, extra)) => {
                        if let Some(v) = extra.as_ref().and_then(|e| e["sdk_version"].as_str()) {
                            c.version = Some(v.to_owned());
                        }
                        println!(
                            "  round {} {:<10} {:>10.0} frames/s  ready {}",
                            round + 1,
                            c.id,
                            s.frames as f64 / s.turn.as_secs_f64(),
                            s.ready.map_or("-".to_owned(), |r| format!(
                                "{:.1} ms",
                                r.as_secs_f64() * 1e3
                            )),
                        );
                        c.samples.push(s);
                    }
                    Err(e) => {
                        eprintln!(
                            "turn_throughput: !!! {} FAILED in round {}: {e}",
                            c.id,
                            round + 1
                        );
                        c.failed = Some(e);
                    }
                }
            }
        }
    });
    let wall = started.elapsed();

    // The figures.
    let fps_of = |c: &Contender| {
        stats(
            c.samples
                .iter()
                .map(|s| s.frames as f64 / s.turn.as_secs_f64())
                .collect(),
        )
    };
    let ceiling_median = fps_of(&cs[0])["median"].as_f64().expect("the ceiling ran");
    let mut medians = std::collections::HashMap::new();
    let mut rows = Vec::new();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "turn_throughput: {frames} frames, {rounds} rounds, {:.0} s",
        wall.as_secs_f64()
    );
    for c in &cs {
        let fps = fps_of(c);
        let ready_ms = stats(
            c.samples
                .iter()
                .filter_map(|s| s.ready)
                .map(|r| r.as_secs_f64() * 1e3)
                .collect(),
        );
        let counts: Vec<u64> = c.samples.iter().map(|s| s.frames).collect();
        let mut problems = Vec::new();
        if let Some(bad) = counts.iter().find(|n| **n != frames as u64) {
            problems.push(format!("saw {bad} frames, the turn has {frames}"));
        }
        let fraction = fps["median"].as_f64().map(|m| m / ceiling_median);
        if c.id != "ceiling" && fraction.is_some_and(|f| f >= VALID_FRACTION) {
            problems.push(format!(
                "reached {:.2} of the emitter's ceiling (≥ {VALID_FRACTION}): the emitter is the limit",
                fraction.unwrap_or_default()
            ));
        }
        let status = match (&c.not_run, &c.failed) {
            (Some(_), _) => "not run",
            (None, Some(_)) => "failed",
            _ => "ok",
        };
        let valid = status == "ok" && problems.is_empty();
        if valid {
            if let Some(m) = fps["median"].as_f64() {
                medians.insert(c.id, m);
            }
        }
        let _ = writeln!(
            report,
            "  {:<10} {:>12} frames/s (min {}, max {})  ready {} ms  {}{}",
            c.id,
            fps["median"]
                .as_f64()
                .map_or("-".into(), |m| format!("{m:.0}")),
            fps["min"]
                .as_f64()
                .map_or("-".into(), |m| format!("{m:.0}")),
            fps["max"]
                .as_f64()
                .map_or("-".into(), |m| format!("{m:.0}")),
            ready_ms["median"]
                .as_f64()
                .map_or("-".into(), |m| format!("{m:.1}")),
            status,
            if valid || status != "ok" {
                String::new()
            } else {
                format!(" INVALID: {}", problems.join("; "))
            },
        );
        rows.push(json!({
            "id": c.id,
            "name": c.name,
            "status": status,
            "reason": c.not_run.clone().or_else(|| c.failed.clone()),
            "notes": c.notes,
            "version": c.version,
            "valid": valid,
            "invalid_because": problems,
            "frames_per_s": fps,
            "ceiling_fraction": fraction,
            "ready_ms": ready_ms,
            "frames_seen": counts,
        }));
    }
    let ratio = |a: &str, b: &str| match (medians.get(a), medians.get(b)) {
        (Some(x), Some(y)) => json!(x / y),
        _ => Value::Null,
    };
    let ratios = json!({
        "ours_over_floor": ratio("ours", "floor"),
        "ours_over_python_sdk": ratio("ours", "python-sdk"),
        "ours_over_rust_sdk": ratio("ours", "rust-sdk"),
    });
    let _ = writeln!(report, "  ratios: {ratios}");
    print!("{report}");

    let doc = json!({
        "bench": "io",
        "command": "just bench",
        "quick": quick,
        "date": command_line("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "wall_s": wall.as_secs_f64(),
        "rounds": rounds,
        "valid_fraction": VALID_FRACTION,
        "machine": machine(),
        "versions": {
            "rustc": command_line("rustc", &["-V"]),
            "claude_session": env!("CARGO_PKG_VERSION"),
            "git": command_line("git", &["-C", &ws.to_string_lossy(), "rev-parse", "--short", "HEAD"]),
            "python": python.as_ref().and_then(|p| command_line(&p.to_string_lossy(), &["-V"])),
            "claude_agent_sdk_python": cs[3].version,
            "claude_agent_sdk_rs": cs[4].version,
        },
        "turn": turn_info,
        "emitter": "fake-claude replay mode (FAKE_CLAUDE_REPLAY): the turn file in one write_all per user line",
        "ceiling_frames_per_s": ceiling_median,
        "contenders": rows,
        "ratios": ratios,
    });
    let out = env_path("BENCH_OUT").unwrap_or_else(|| work.join("io.json"));
    let mut text = serde_json::to_string_pretty(&doc).expect("serialise the results");
    text.push('\n');
    std::fs::write(&out, text).expect("write the results");
    println!("turn_throughput: results in {}", out.display());
}

//! The throughput of one long streamed reply through the credential gateway, against the same
//! reply straight from the upstream.
//!
//! The emitter is the fake Messages API (`claude_testing::fake_api`) answering one long text
//! reply as SSE: `BENCH_EVENTS` `content_block_delta` events (default 20,000) of
//! `BENCH_PIECE_CHARS` characters of text each (default 100), plus the five framing events
//! (`message_start`, `content_block_start`, `content_block_stop`, `message_delta`,
//! `message_stop`): ≈ 4.3 MB of SSE. The fake renders the whole reply before its first byte and
//! writes it as one body (every pause is zero), so the socket, not the fake's pacing, sets the
//! emitter's rate.
//!
//! Contenders, interleaved in the same run (each round runs both, the order alternated round by
//! round):
//!
//! 1. `direct` (the ceiling): a `reqwest` client posting a streaming Messages request straight
//!    to the fake API, reading the body as a byte stream and counting SSE events (`\n\n`).
//! 2. `gateway`: the same client, the same request, sent to a tree's credential gateway with a
//!    session's token (the `ANTHROPIC_API_KEY` of a fake-claude session's environment, read from
//!    `/proc/<pid>/environ`: there is no public API that hands a token out, on purpose); the
//!    gateway swaps it for the real key and forwards to the fake API.
//!
//! The client runs on a thread with a runtime of its own (the CLI is a process of its own); the
//! gateway on the tree's runtime (2 workers); the fake API on its own thread, as always.
//!
//! Each round, each contender streams the long reply `BENCH_REPEATS` times (default 10) on a
//! warm connection, then `BENCH_SHORT` short replies (default 20) interleaved request by request
//! with the other contender. Per round and contender: events/s and MB/s over the streaming time
//! (first byte to last byte, summed over the repeats: the fake's rendering before the first byte
//! is the same for both and is not throughput), the whole reply's time (send to last byte, p50),
//! the longest wait between two body chunks (max over the repeats: a stall shows here), the
//! time to first event of the long reply (p50 of the repeats; it includes the fake's rendering)
//! and of a short reply (p50: what the gateway adds to a request). Every reply is checked: the
//! event count, the byte count, and (after the rounds) that the fake saw the gateway's requests
//! with the real key only and that the gateway counted the bytes it streamed.
//!
//! 3. With the real CLI (`CLAUDE_REAL_CLI` set, or the pinned one installed; skipped otherwise):
//!    `cli_direct` and `cli_gateway`, a fresh tree per round with one real-CLI session
//!    (partial messages on, `SafeEnv` pointing at the fake API on loopback) whose turn gets the
//!    same long reply; `BENCH_CLI_ROUNDS` rounds (default 5), alternated. Figure: stream events
//!    per second at the caller (`TurnStream`), from the first stream event to the turn's end,
//!    and the turn's wall time.
//!
//! Prints a header line (`figure: "gateway_header"`: date, machine, versions), one JSON line per
//! contender per round, then one summary line per phase with medians, min and max over the
//! rounds. `BENCH_QUICK=1` is a smoke run (2 rounds, 2,000 events, 1 repeat, 1 CLI round); the
//! other knobs (`BENCH_ROUNDS` default 7, `BENCH_EVENTS`, `BENCH_PIECE_CHARS`, `BENCH_REPEATS`,
//! `BENCH_SHORT`, `BENCH_CLI_ROUNDS`, `BENCH_CLI_EVENTS` default `BENCH_EVENTS`) override it. Set
//! `FAKE_CLAUDE_BIN` when running the built binary directly.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use claude_supervisor::{ClaudeSupervisor, Credential, GatewayConfig, Message, SessionSpec};
use claude_testing::envs::{FakeEnv, RealEnv};
use claude_testing::fake_api::{FakeApi, Reply};
use claude_testing::fake_claude::Scenario;
use futures::StreamExt;
use serde_json::{Value, json};

const REAL_KEY: &str = "sk-ant-bench-gateway-REAL";
const DIRECT_KEY: &str = "sk-ant-bench-direct";
const LONG_PROMPT: &str = "BENCH_LONG_REPLY";
const SHORT_PROMPT: &str = "BENCH_SHORT_REPLY";
/// The SSE events of a text reply besides its deltas.
const FRAMING_EVENTS: usize = 5;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|e| panic!("{name}={v}: {e}")))
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median, min and max of samples.
fn spread(samples: &[f64]) -> Value {
    let mut s: Vec<f64> = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    json!({ "median": median, "min": s[0], "max": s[n - 1], "n": n })
}

fn field(lines: &[Value], name: &str) -> Vec<f64> {
    lines
        .iter()
        .map(|l| l[name].as_f64().unwrap_or_else(|| panic!("{name} in {l}")))
        .collect()
}

/// The text of the long reply: `events` pieces of `piece` ASCII characters (so the fake splits
/// it into exactly `events` deltas).
fn long_text(events: usize, piece: usize) -> String {
    const WORDS: &[u8] = b"the quick brown fox jumps over the lazy dog and streams on ";
    (0..events * piece)
        .map(|i| WORDS[i % WORDS.len()] as char)
        .collect()
}

/// A streaming main request (it offers a tool, as the CLI's agent loop does).
fn request_body(prompt: &str) -> String {
    json!({
        "model": "claude-bench",
        "max_tokens": 64000,
        "stream": true,
        "tools": [{ "name": "Bash", "description": "run a command",
                    "input_schema": { "type": "object" } }],
        "messages": [{ "role": "user", "content": prompt }],
    })
    .to_string()
}

/// What one streamed reply delivered.
struct Received {
    events: usize,
    bytes: usize,
    /// Send → the first complete event.
    ttfe: Duration,
    /// First byte → end of body.
    streaming: Duration,
    /// Send → end of body.
    total: Duration,
    /// The longest wait between two chunks of the body.
    max_gap: Duration,
}

/// Posts `body` to `base` with `key` and reads the SSE body as bytes, counting events.
async fn stream_once(client: &reqwest::Client, base: &str, key: &str, body: &str) -> Received {
    let sent = Instant::now();
    let response = client
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {base}/v1/messages: {e}"));
    assert!(
        response.status().is_success(),
        "{base}: status {}",
        response.status()
    );
    let mut stream = response.bytes_stream();
    let (mut events, mut bytes) = (0usize, 0usize);
    let (mut first_byte, mut first_event) = (None, None);
    let (mut previous, mut max_gap) = (None::<Instant>, Duration::ZERO);
    // An event ends with an empty line; the `\n\n` may straddle two chunks.
    let mut after_newline = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap_or_else(|e| panic!("{base}: body cut: {e}"));
        let now = Instant::now();
        first_byte.get_or_insert(now);
        if let Some(previous) = previous {
            max_gap = max_gap.max(now - previous);
        }
        previous = Some(now);
        bytes += chunk.len();
        for &b in chunk.iter() {
            if b == b'\n' {
                if after_newline {
                    events += 1;
                    after_newline = false;
                } else {
                    after_newline = true;
                }
            } else {
                after_newline = false;
            }
        }
        if events > 0 && first_event.is_none() {
            first_event = Some(now);
        }
    }
    let end = Instant::now();
    let first_byte = first_byte.unwrap_or_else(|| panic!("{base}: an empty body"));
    Received {
        events,
        bytes,
        ttfe: first_event.unwrap_or_else(|| panic!("{base}: no SSE event")) - sent,
        streaming: end - first_byte,
        total: end - sent,
        max_gap,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Path {
    Direct,
    Gateway,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Gateway => "gateway",
        }
    }
}

/// Where each contender sends its requests, with which key.
struct Targets {
    direct: String,
    gateway: String,
    token: String,
}

impl Targets {
    fn of(&self, path: Path) -> (&str, &str) {
        match path {
            Path::Direct => (&self.direct, DIRECT_KEY),
            Path::Gateway => (&self.gateway, &self.token),
        }
    }
}

/// One contender's long replies of one round.
async fn long_round(
    client: &reqwest::Client,
    targets: &Targets,
    path: Path,
    repeats: usize,
    expected_events: usize,
    body: &str,
) -> Value {
    let (base, key) = targets.of(path);
    let (mut events, mut bytes, mut streaming) = (0usize, 0usize, Duration::ZERO);
    let (mut ttfe, mut total) = (Vec::with_capacity(repeats), Vec::with_capacity(repeats));
    let mut max_gap = Duration::ZERO;
    let mut reply_bytes = None;
    for _ in 0..repeats {
        let r = stream_once(client, base, key, body).await;
        assert_eq!(r.events, expected_events, "{}: events", path.name());
        // Every reply is the same bar its ids (fixed-length uuids): the same size.
        assert_eq!(*reply_bytes.get_or_insert(r.bytes), r.bytes);
        events += r.events;
        bytes += r.bytes;
        streaming += r.streaming;
        ttfe.push(ms(r.ttfe));
        total.push(ms(r.total));
        max_gap = max_gap.max(r.max_gap);
    }
    json!({
        "contender": path.name(),
        "replies": repeats,
        "events_per_reply": expected_events,
        "bytes_per_reply": reply_bytes,
        "streaming_ms": ms(streaming),
        "events_per_s": events as f64 / streaming.as_secs_f64(),
        "mb_per_s": bytes as f64 / 1e6 / streaming.as_secs_f64(),
        "ttfe_long_p50_ms": spread(&ttfe)["median"],
        "reply_p50_ms": spread(&total)["median"],
        "max_gap_ms": ms(max_gap),
    })
}

/// Short replies, the two contenders alternating request by request; each one's p50 of the
/// time to first event.
async fn short_round(
    client: &reqwest::Client,
    targets: &Targets,
    n: usize,
    body: &str,
) -> [f64; 2] {
    let (mut direct, mut gateway) = (Vec::new(), Vec::new());
    for i in 0..n {
        for k in 0..2 {
            let path = if (i + k) % 2 == 0 {
                Path::Direct
            } else {
                Path::Gateway
            };
            let (base, key) = targets.of(path);
            let r = stream_once(client, base, key, body).await;
            assert_eq!(
                r.events,
                1 + FRAMING_EVENTS,
                "{}: a short reply",
                path.name()
            );
            match path {
                Path::Direct => direct.push(ms(r.ttfe)),
                Path::Gateway => gateway.push(ms(r.ttfe)),
            }
        }
    }
    [
        spread(&direct)["median"].as_f64().unwrap(),
        spread(&gateway)["median"].as_f64().unwrap(),
    ]
}

/// The token the gateway minted for a session: its CLI's `ANTHROPIC_API_KEY`.
fn token_of(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/environ: {e}"));
    raw.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"ANTHROPIC_API_KEY="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_else(|| panic!("no ANTHROPIC_API_KEY in the environment of {pid}"))
}

#[derive(Clone, Copy)]
struct Knobs {
    rounds: usize,
    events: usize,
    piece: usize,
    repeats: usize,
    short: usize,
    cli_rounds: usize,
    cli_events: usize,
}

/// The timed rounds, from the client's side: per contender, one line per round.
async fn client_rounds(k: Knobs, targets: Targets) -> (Vec<Value>, Vec<Value>) {
    let long = request_body(LONG_PROMPT);
    let short = request_body(SHORT_PROMPT);
    let expected = k.events + FRAMING_EVENTS;
    let client = reqwest::Client::new();
    // Warm-up (untimed): a connection to each target, each path's first request.
    for path in [Path::Direct, Path::Gateway] {
        let (base, key) = targets.of(path);
        let r = stream_once(&client, base, key, &long).await;
        assert_eq!(r.events, expected, "warm-up {}", path.name());
    }
    let (mut direct, mut gateway) = (Vec::new(), Vec::new());
    for round in 0..k.rounds {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let order = if round % 2 == 0 {
            [Path::Direct, Path::Gateway]
        } else {
            [Path::Gateway, Path::Direct]
        };
        let mut lines = Vec::new();
        for (position, path) in order.into_iter().enumerate() {
            let mut line = long_round(&client, &targets, path, k.repeats, expected, &long).await;
            line["position"] = json!(position);
            lines.push(line);
        }
        let [short_direct, short_gateway] = short_round(&client, &targets, k.short, &short).await;
        for mut line in lines {
            let is_direct = line["contender"] == "direct";
            line["figure"] = json!("gateway_stream_round");
            line["round"] = json!(round);
            line["ttfe_short_p50_ms"] = json!(if is_direct {
                short_direct
            } else {
                short_gateway
            });
            line["loadavg_1m_before"] = json!(load.split_whitespace().next().unwrap_or(""));
            println!("{line}");
            if is_direct {
                direct.push(line);
            } else {
                gateway.push(line);
            }
        }
    }
    (direct, gateway)
}

/// Phases 1 and 2: a plain client, direct and through the gateway.
async fn http_phases(k: &Knobs) {
    let api = FakeApi::start().await;
    api.on_user_text(
        LONG_PROMPT,
        Reply::slow(long_text(k.events, k.piece), k.events, Duration::ZERO),
    );
    // One delta: the short reply is one event besides the framing.
    api.on_user_text(
        SHORT_PROMPT,
        Reply::slow("a short reply", 1, Duration::ZERO),
    );
    let env = FakeEnv::new();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .gateway(GatewayConfig::new(
            api.base_url(),
            Credential::ApiKey(REAL_KEY.into()),
        ))
        .session(SessionSpec::new(
            "token-holder",
            env.options(&Scenario::new()).build().expect("options"),
        ))
        .start()
        .await
        .expect("the tree starts");
    let holder = tree.session("token-holder").expect("the session");
    holder.ask("ready?").await.expect("fake-claude answers");
    let pid = holder.health().await.and_then(|h| h.pid).expect("a pid");
    let targets = Targets {
        direct: api.base_url(),
        gateway: format!("http://{}", tree.gateway_addr().expect("a gateway")),
        token: token_of(pid),
    };
    // The client runs on a thread and runtime of its own, as the CLI is a process of its own:
    // on the tree's runtime it would compete with the gateway for the same two workers.
    let (direct, gateway) = tokio::task::spawn_blocking({
        let k = *k;
        move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the client's runtime")
                .block_on(client_rounds(k, targets))
        }
    })
    .await
    .expect("the client panicked");
    // The gateway's requests reached the fake with the real key and nothing else; the gateway
    // counted the bytes it streamed back.
    let through: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.header("x-api-key") != Some(DIRECT_KEY))
        .filter(|r| {
            r.latest_user_text()
                .is_some_and(|t| t.starts_with("BENCH_"))
        })
        .collect();
    let per_round = k.repeats + k.short;
    assert_eq!(through.len(), 1 + k.rounds * per_round, "gateway requests");
    assert!(
        through
            .iter()
            .all(|r| r.header("x-api-key") == Some(REAL_KEY) && r.header("authorization").is_none())
    );
    let stats = tree.gateway_stats().expect("gateway stats");
    let traffic = &stats.sessions["token-holder"];
    let streamed: u64 = field(&gateway, "bytes_per_reply")
        .iter()
        .map(|b| *b as u64 * k.repeats as u64)
        .sum();
    assert!(traffic.bytes_out >= streamed, "{traffic:?} < {streamed}");
    assert_eq!(stats.unauthorized, 0);
    tree.shutdown().await;
    env.assert_all_gone().await;

    let ratio = |name: &str| {
        let r: Vec<f64> = field(&gateway, name)
            .iter()
            .zip(field(&direct, name))
            .map(|(g, d)| g / d)
            .collect();
        spread(&r)
    };
    let diff = |name: &str| {
        let r: Vec<f64> = field(&gateway, name)
            .iter()
            .zip(field(&direct, name))
            .map(|(g, d)| g - d)
            .collect();
        spread(&r)
    };
    let summary = |lines: &[Value]| {
        json!({
            "events_per_s": spread(&field(lines, "events_per_s")),
            "mb_per_s": spread(&field(lines, "mb_per_s")),
            "ttfe_long_p50_ms": spread(&field(lines, "ttfe_long_p50_ms")),
            "ttfe_short_p50_ms": spread(&field(lines, "ttfe_short_p50_ms")),
            "reply_p50_ms": spread(&field(lines, "reply_p50_ms")),
            "max_gap_ms": spread(&field(lines, "max_gap_ms")),
        })
    };
    println!(
        "{}",
        json!({
            "figure": "gateway_stream",
            "rounds": k.rounds,
            "replies_per_round": k.repeats,
            "short_replies_per_round": k.short,
            "events_per_reply": k.events + FRAMING_EVENTS,
            "bytes_per_reply": direct[0]["bytes_per_reply"],
            "direct": summary(&direct),
            "gateway": summary(&gateway),
            "gateway_over_direct": {
                "events_per_s": ratio("events_per_s"),
                "mb_per_s": ratio("mb_per_s"),
            },
            "added_by_gateway_ms": {
                "ttfe_long_p50": diff("ttfe_long_p50_ms"),
                "ttfe_short_p50": diff("ttfe_short_p50_ms"),
            },
        })
    );
}

/// One real-CLI turn that gets the long reply, in a fresh tree (with or without the gateway).
async fn cli_round(env: &RealEnv, gateway: bool, expected_deltas: usize) -> Value {
    let mut builder = ClaudeSupervisor::builder().cli_path(env.cli_path());
    if gateway {
        builder = builder.gateway(GatewayConfig::new(
            env.api.base_url(),
            Credential::ApiKey(REAL_KEY.into()),
        ));
    }
    let options = env
        .options()
        .include_partial_messages(true)
        .build()
        .expect("options");
    let tree = builder
        .session(SessionSpec::new("streamer", options))
        .start()
        .await
        .expect("the tree starts");
    let handle = tree.session("streamer").expect("the session");
    let before = env.api.requests().len();
    let sent = Instant::now();
    let mut turn = handle.query(LONG_PROMPT).await.expect("the turn starts");
    let (mut events, mut deltas, mut first, mut last) = (0usize, 0usize, None, None);
    let mut result = None;
    while let Some(message) = turn.next().await {
        match message.expect("a frame") {
            Message::StreamEvent(e) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = Some(now);
                events += 1;
                if e.event_type() == Some("content_block_delta") {
                    deltas += 1;
                }
            }
            Message::Result(r) => result = Some(r),
            _ => {}
        }
    }
    let wall = sent.elapsed();
    let result = result.expect("the turn ended with a result");
    assert!(!result.is_error, "the turn failed: {:?}", result.result);
    assert_eq!(deltas, expected_deltas, "every delta reached the caller");
    let main = env.api.requests()[before..]
        .iter()
        .filter(|r| r.latest_user_text().as_deref() == Some(LONG_PROMPT))
        .map(|r| r.header("x-api-key").map(str::to_owned))
        .collect::<Vec<_>>();
    assert_eq!(
        main.len(),
        1,
        "one long request: {}",
        env.api.describe_log()
    );
    assert_eq!(
        main[0].as_deref() == Some(REAL_KEY),
        gateway,
        "the request went through the gateway iff it was configured"
    );
    let pid = handle.health().await.and_then(|h| h.pid);
    tree.shutdown().await;
    if let Some(pid) = pid {
        claude_testing::envs::assert_group_gone(pid as i32).await;
    }
    let (first, last) = (first.expect("stream events"), last.expect("stream events"));
    let streaming = last - first;
    json!({
        "contender": if gateway { "cli_gateway" } else { "cli_direct" },
        "stream_events": events,
        "deltas": deltas,
        "streaming_ms": ms(streaming),
        "stream_events_per_s": events as f64 / streaming.as_secs_f64(),
        "first_event_ms": ms(first - sent),
        "turn_ms": ms(wall),
    })
}

/// Phase 3: the real CLI end to end, direct and through the gateway.
async fn cli_phase(k: &Knobs, env: &RealEnv) {
    env.api.on_user_text(
        LONG_PROMPT,
        Reply::slow(
            long_text(k.cli_events, k.piece),
            k.cli_events,
            Duration::ZERO,
        ),
    );
    let (mut direct, mut gateway) = (Vec::new(), Vec::new());
    for round in 0..k.cli_rounds {
        for position in 0..2 {
            let through = (round + position) % 2 == 1;
            let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
            let mut line = cli_round(env, through, k.cli_events).await;
            line["figure"] = json!("gateway_cli_round");
            line["round"] = json!(round);
            line["position"] = json!(position);
            line["loadavg_1m_before"] = json!(load.split_whitespace().next().unwrap_or(""));
            println!("{line}");
            if through {
                gateway.push(line);
            } else {
                direct.push(line);
            }
        }
    }
    let summary = |lines: &[Value]| {
        json!({
            "stream_events_per_s": spread(&field(lines, "stream_events_per_s")),
            "first_event_ms": spread(&field(lines, "first_event_ms")),
            "turn_ms": spread(&field(lines, "turn_ms")),
        })
    };
    let ratio: Vec<f64> = field(&gateway, "stream_events_per_s")
        .iter()
        .zip(field(&direct, "stream_events_per_s"))
        .map(|(g, d)| g / d)
        .collect();
    println!(
        "{}",
        json!({
            "figure": "gateway_cli",
            "rounds": k.cli_rounds,
            "deltas_per_turn": k.cli_events,
            "cli_version": env.cli.version(),
            "cli_direct": summary(&direct),
            "cli_gateway": summary(&gateway),
            "gateway_over_direct": { "stream_events_per_s": spread(&ratio) },
        })
    );
}

/// A command's first output line, or `unknown`.
fn output_of(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

fn header(k: &Knobs, cli: Option<&str>) -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    json!({
        "figure": "gateway_header",
        "date": output_of("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "commit": output_of("git", &["rev-parse", "--short", "HEAD"]),
        "package_version": env!("CARGO_PKG_VERSION"),
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default().trim(),
        "rustc": output_of("rustc", &["--version"]),
        "cli_version": cli,
        "rounds": k.rounds,
        "events": k.events,
        "piece_chars": k.piece,
        "repeats": k.repeats,
        "short": k.short,
        "cli_rounds": k.cli_rounds,
        "cli_events": k.cli_events,
    })
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let events = knob("BENCH_EVENTS", if quick { 2_000 } else { 20_000 });
    let k = Knobs {
        rounds: knob("BENCH_ROUNDS", if quick { 2 } else { 7 }),
        events,
        piece: knob("BENCH_PIECE_CHARS", 100),
        repeats: knob("BENCH_REPEATS", if quick { 1 } else { 10 }),
        short: knob("BENCH_SHORT", if quick { 4 } else { 20 }),
        cli_rounds: knob("BENCH_CLI_ROUNDS", if quick { 1 } else { 5 }),
        cli_events: knob("BENCH_CLI_EVENTS", events),
    };
    assert!(k.rounds > 0 && k.events > 0 && k.piece > 0 && k.repeats > 0 && k.short > 0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let real = if k.cli_rounds > 0 {
            RealEnv::start().await
        } else {
            None
        };
        println!("{}", header(&k, real.as_ref().map(|e| e.cli.version())));
        http_phases(&k).await;
        match &real {
            Some(env) => cli_phase(&k, env).await,
            None => eprintln!("no real CLI (CLAUDE_REAL_CLI): the end-to-end figure is skipped"),
        }
    });
}

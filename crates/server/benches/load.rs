//! The server under load, against the same turns through the facade with no HTTP.
//!
//! Two contenders, each a fresh tree per round on fake-claude (default scenario: a 3-piece echo)
//! with a `MemoryStore`:
//!
//! 1. `http`: the server in-process on loopback (rate limit off); `BENCH_SESSIONS` sessions
//!    (default 50) started over `POST /sessions`, then `BENCH_QUERIES` (default 200) concurrent
//!    `POST /sessions/{name}/query` read as server-sent events to their `done`, spread over the
//!    sessions (so several per session queue behind each other).
//! 2. `facade`: the same sessions (the same agent) started on a `ClaudeSupervisor`, then the
//!    same queries as concurrent `SessionHandle::ask`s.
//!
//! Each round runs both, the order alternated round by round, and awaits each tree's shutdown
//! (every fake-claude process gone) before the next starts. Untimed: starting the sessions and
//! one warm-up turn on each (every CLI up). Timed: the query phase (wall time from the first
//! query to the last answer: queries/s) and each query on its own (send to `done`, or to the
//! `ask`'s answer: p50/p99). Every query must end with its own reply (checked, untimed).
//!
//! Prints one JSON line per contender per round (`figure: "server_load_round"`), then one
//! summary line (`figure: "server_load"`): per contender the median, min and max over the
//! rounds of queries/s, p50 and p99, and the added latency of HTTP+SSE (the median over rounds
//! of `http − facade` for p50 and p99, each round's pair run back to back).
//!
//! Knobs (environment): `BENCH_ROUNDS` (5), `BENCH_SESSIONS` (50), `BENCH_QUERIES` (200). Set
//! `FAKE_CLAUDE_BIN` when running the built binary directly.
#![allow(missing_docs)]

#[path = "../tests/support/common.rs"]
mod support;

use std::time::{Duration, Instant};

use claude_supervisor::{ClaudeSupervisor, MemoryStore};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::Scenario;
use serde_json::{Value, json};
use support::{SseReader, base, fake_config, post_query};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|e| panic!("{name}={v}: {e}")))
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn session_of(i: usize, sessions: usize) -> String {
    format!("load-{}", i % sessions)
}

/// The figures of one query phase.
fn figures(mut lat: Vec<Duration>, wall: Duration) -> Value {
    lat.sort();
    let n = lat.len();
    json!({
        "queries": n,
        "wall_ms": ms(wall),
        "queries_per_s": n as f64 / wall.as_secs_f64(),
        "p50_ms": ms(pct(&lat, 0.5)),
        "p99_ms": ms(pct(&lat, 0.99)),
        "max_ms": ms(lat[n - 1]),
    })
}

/// One round over HTTP: the server in-process, sessions over `POST /sessions`, the queries as
/// SSE.
async fn http_round(sessions: usize, queries: usize) -> Value {
    let env = FakeEnv::new();
    let mut config = fake_config(&env, &[]);
    config.server.rate_limit_per_second = 0;
    let server = support::start(config).await;
    let url = base(&server);
    let http = reqwest::Client::new();
    for s in 0..sessions {
        let answer = http
            .post(format!("{url}/sessions"))
            .json(&json!({ "name": session_of(s, sessions) }))
            .send()
            .await
            .expect("the server answers");
        assert_eq!(answer.status(), 201, "starting session {s}");
        let warm = SseReader::new(
            post_query(&http, &url, &session_of(s, sessions), "warm up", None).await,
        )
        .collect()
        .await;
        assert_eq!(warm.last().map(|e| e.event.as_str()), Some("done"));
    }

    let t0 = Instant::now();
    let tasks: Vec<_> = (0..queries)
        .map(|i| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let prompt = format!("query {i}");
                let asked = Instant::now();
                let answer = post_query(&http, &url, &session_of(i, sessions), &prompt, None).await;
                let events = SseReader::new(answer).collect().await;
                let took = asked.elapsed();
                let done = events.last().expect("events");
                assert_eq!(done.event, "done", "query {i}: {}", done.data);
                assert_eq!(
                    done.json()["text"],
                    format!("fake reply to: {prompt}").as_str(),
                    "query {i}"
                );
                took
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(queries);
    for task in tasks {
        lat.push(task.await.expect("a query task"));
    }
    let wall = t0.elapsed();

    server.shutdown().await.expect("the server stops");
    env.assert_all_gone().await;
    figures(lat, wall)
}

/// One round through the facade: the same sessions on a tree, the queries as `ask`s.
async fn facade_round(sessions: usize, queries: usize) -> Value {
    let env = FakeEnv::new();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .store(MemoryStore::new())
        .start()
        .await
        .expect("the tree starts");
    let options = env.options(&Scenario::new()).build().expect("options");
    let mut handles = Vec::with_capacity(sessions);
    for s in 0..sessions {
        let spec = support::agent(&session_of(s, sessions), &options)
            .spec()
            .expect("a spec");
        let handle = tree.start_session(spec).await.expect("a session starts");
        let warm = handle.ask("warm up").await.expect("the warm-up turn");
        assert!(!warm.is_error());
        handles.push(handle);
    }

    let t0 = Instant::now();
    let tasks: Vec<_> = (0..queries)
        .map(|i| {
            let handle = handles[i % sessions].clone();
            tokio::spawn(async move {
                let prompt = format!("query {i}");
                let asked = Instant::now();
                let out = handle
                    .ask(prompt.as_str())
                    .await
                    .unwrap_or_else(|e| panic!("query {i}: {e}"));
                let took = asked.elapsed();
                assert_eq!(out.text(), format!("fake reply to: {prompt}"), "query {i}");
                took
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(queries);
    for task in tasks {
        lat.push(task.await.expect("a query task"));
    }
    let wall = t0.elapsed();

    tree.shutdown().await;
    env.assert_all_gone().await;
    figures(lat, wall)
}

/// Median, min and max of one field over rounds.
fn spread(values: &mut [f64]) -> Value {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    json!({ "median": median, "min": values[0], "max": values[n - 1] })
}

fn field(rounds: &[Value], name: &str) -> Vec<f64> {
    rounds
        .iter()
        .map(|r| r[name].as_f64().expect("a number"))
        .collect()
}

fn main() {
    let rounds = knob("BENCH_ROUNDS", 5);
    let sessions = knob("BENCH_SESSIONS", 50);
    let queries = knob("BENCH_QUERIES", 200);
    assert!(rounds > 0 && sessions > 0 && queries > 0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (mut http, mut facade) = (Vec::new(), Vec::new());
        for r in 0..rounds {
            // Alternated: each contender runs first in every other round.
            for k in 0..2 {
                let over_http = (r + k) % 2 == 0;
                let mut line = if over_http {
                    http_round(sessions, queries).await
                } else {
                    facade_round(sessions, queries).await
                };
                line["figure"] = json!("server_load_round");
                line["contender"] = json!(if over_http { "http" } else { "facade" });
                line["round"] = json!(r);
                line["position"] = json!(k);
                line["sessions"] = json!(sessions);
                println!("{line}");
                if over_http {
                    http.push(line);
                } else {
                    facade.push(line);
                }
            }
        }
        let added = |name: &str| {
            let mut d: Vec<f64> = field(&http, name)
                .iter()
                .zip(field(&facade, name))
                .map(|(h, f)| h - f)
                .collect();
            spread(&mut d)
        };
        let summary = |rounds: &[Value]| {
            json!({
                "queries_per_s": spread(&mut field(rounds, "queries_per_s")),
                "p50_ms": spread(&mut field(rounds, "p50_ms")),
                "p99_ms": spread(&mut field(rounds, "p99_ms")),
            })
        };
        println!(
            "{}",
            json!({
                "figure": "server_load",
                "rounds": rounds,
                "sessions": sessions,
                "queries": queries,
                "http": summary(&http),
                "facade": summary(&facade),
                "added_by_http_sse": {
                    "p50_ms": added("p50_ms"),
                    "p99_ms": added("p99_ms"),
                },
            })
        );
    });
}

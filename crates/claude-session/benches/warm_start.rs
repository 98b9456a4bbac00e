//! Time to the first token of a new session's first answer, cold vs from a warm spare, with the
//! real CLI (pinned, or `CLAUDE_REAL_CLI`) against the fake Messages API in a sandbox.
//!
//! Each round runs a cold session (spawn, `initialize`, the turn) and a warm one (claim a parked
//! spare of a one-spare pool, `initialize`, the turn), in alternating order, and times, from the
//! call to `Session::start`: its return (ready for a query), and the first token (the first
//! `stream_event` text delta, with `--include-partial-messages`). Before each warm round the pool
//! has its spare parked, as a pool has between claims. Prints one JSON line per sample and per
//! figure (median, min, max), then a Markdown table.
//!
//! `cargo bench -p claude-session --bench warm_start` (knob: `BENCH_ROUNDS`, default 7).
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use claude_protocol::Message;
use claude_session::{Session, SessionConfig, SparePool};
use claude_testing::envs::RealEnv;
use futures::StreamExt;
use serde_json::json;

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

fn config(env: &RealEnv, name: &str) -> claude_session::SessionConfigBuilder {
    let options = env
        .options()
        .include_partial_messages(true)
        .build()
        .expect("options");
    SessionConfig::builder(name, env.cli_path())
        .options(options)
        .init_timeout("60s")
        .control_timeout("20s")
}

/// Starts a session, asks one question, and returns (start → ready, start → first token).
async fn sample(config: SessionConfig) -> (Duration, Duration, bool) {
    let t0 = Instant::now();
    let session = Session::start(config).await.expect("start");
    let ready = t0.elapsed();
    let warm = session.health().await.expect("health").start.is_warm();
    let mut turn = session.query("say something").await.expect("query");
    let mut first = None;
    while let Some(frame) = turn.next().await {
        let frame = frame.expect("frame");
        let token = match &frame {
            Message::StreamEvent(e) => serde_json::to_value(&e.event)
                .ok()
                .is_some_and(|v| v["delta"]["type"] == "text_delta"),
            Message::Assistant(_) => true,
            _ => false,
        };
        if token && first.is_none() {
            first = Some(t0.elapsed());
        }
    }
    session.stop().await.expect("stop");
    (ready, first.expect("a token arrived"), warm)
}

fn stats(samples: &[Duration]) -> (f64, f64, f64) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    (
        ms(sorted[sorted.len() / 2]),
        ms(sorted[0]),
        ms(sorted[sorted.len() - 1]),
    )
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .map(|v| v.parse().expect("BENCH_ROUNDS is a number"))
        .unwrap_or(7);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let Some(env) = RealEnv::start().await else {
            eprintln!("warm_start: no real CLI installed (scripts/install-claude-cli.sh)");
            std::process::exit(1);
        };
        let pool = SparePool::builder(config(&env, "spares").build().expect("template"))
            .size(1)
            .build()
            .expect("pool");
        let (mut cold, mut warm) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate which path goes first, so neither always runs on a quieter machine.
            let order = if round % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            for use_spare in order {
                let mut builder = config(&env, &format!("s{round}-{use_spare}"));
                if use_spare {
                    pool.ready().await;
                    builder = builder.spares(pool.clone());
                }
                let (ready, token, was_warm) = sample(builder.build().expect("config")).await;
                assert_eq!(was_warm, use_spare, "round {round}: the path taken");
                println!(
                    "{}",
                    json!({"sample": if use_spare {"warm"} else {"cold"}, "round": round,
                        "ready_ms": ms(ready), "first_token_ms": ms(token)})
                );
                if use_spare {
                    warm.push((ready, token));
                } else {
                    cold.push((ready, token));
                }
            }
        }
        pool.shutdown().await;
        let version = env.cli.version().to_owned();
        let mut rows = Vec::new();
        for (figure, pick) in [("start → ready", 0usize), ("start → first token", 1usize)] {
            let get = |v: &[(Duration, Duration)]| {
                v.iter()
                    .map(|s| if pick == 0 { s.0 } else { s.1 })
                    .collect::<Vec<_>>()
            };
            let (c, w) = (stats(&get(&cold)), stats(&get(&warm)));
            println!(
                "{}",
                json!({"figure": figure, "cli": version, "rounds": rounds,
                    "cold": {"median_ms": c.0, "min_ms": c.1, "max_ms": c.2},
                    "warm": {"median_ms": w.0, "min_ms": w.1, "max_ms": w.2}})
            );
            rows.push(format!(
                "| {figure} | {} ms ({}–{}) | {} ms ({}–{}) | {:.2}× |",
                c.0,
                c.1,
                c.2,
                w.0,
                w.1,
                w.2,
                c.0 / w.0
            ));
        }
        println!("\nCLI {version}, {rounds} rounds, medians (min–max):\n");
        println!("| figure | cold | warm spare | cold / warm |\n|---|---|---|---|");
        for row in rows {
            println!("{row}");
        }
    });
}

//! The facade's own costs with fake-claude as the CLI: how long it takes to start many named
//! sessions (and to shut them down), and how long a session takes to answer again after its CLI
//! is SIGKILLed.
//!
//! Only API that existed before the per-session subtrees is used (builder, `SessionSpec::new`,
//! `start_session`, `session`, `SessionHandle::{ask, health}`, `shutdown`), so the same file
//! measures both shapes. Prints one JSON line per figure.
//!
//! Knobs (environment): `BENCH_SESSIONS` (default 1000), `BENCH_STARTERS` (8),
//! `BENCH_RESTART_SAMPLES` (30), `BENCH_RESTART_SESSIONS` (5), `BENCH_RESTART_GAP_MS` (2500),
//! `BENCH_FIGURES` (`restart,start`: the restart figure first, in a host that has not yet run
//! 1,000 sessions). Set `FAKE_CLAUDE_BIN` when running the built binary directly (outside cargo
//! it cannot build fake-claude itself).
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use claude_supervisor::{ClaudeSupervisor, SessionHandle, SessionSpec};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::Scenario;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

fn knob(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v} is not a number: {e}")),
        Err(_) => default,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn tree(env: &FakeEnv) -> ClaudeSupervisor {
    ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .start()
        .await
        .expect("the tree starts")
}

fn spec(env: &FakeEnv, name: String) -> SessionSpec {
    SessionSpec::new(
        name,
        env.options(&Scenario::new()).build().expect("options"),
    )
}

/// Starts `n` sessions from `starters` concurrent tasks (each starting its share one after the
/// other) until every `start_session` has returned; then shuts the tree down.
async fn start_sessions(n: usize, starters: usize) {
    let env = FakeEnv::new();
    let tree = tree(&env).await;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..starters {
        let specs: Vec<SessionSpec> = (k..n)
            .step_by(starters)
            .map(|i| spec(&env, format!("s{i:05}")))
            .collect();
        let tree = tree.clone();
        tasks.push(tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            for spec in specs {
                let name = spec.name().to_owned();
                let t = Instant::now();
                tree.start_session(spec)
                    .await
                    .unwrap_or_else(|e| panic!("start_session({name}): {e}"));
                slowest = slowest.max(t.elapsed());
            }
            slowest
        }));
    }
    let mut slowest = Duration::ZERO;
    for task in tasks {
        slowest = slowest.max(task.await.expect("a starter panicked"));
    }
    let started = t0.elapsed();
    let listed = tree.list_sessions().len();
    assert_eq!(listed, n, "the tree lists every started session");
    // Every session answers (a start that returned a dead session would show here, not hide).
    for name in [format!("s{:05}", 0), format!("s{:05}", n - 1)] {
        let handle = tree.session(&name).expect("started session is known");
        let out = handle
            .ask("ready?")
            .await
            .expect("a started session answers");
        assert!(!out.is_error(), "{name} answered with an error");
    }
    println!(
        "{}",
        json!({
            "figure": "start_sessions",
            "sessions": n,
            "starters": starters,
            "total_ms": ms(started),
            "per_session_ms": ms(started) / n as f64,
            "sessions_per_s": n as f64 / started.as_secs_f64(),
            "slowest_start_ms": ms(slowest),
        })
    );
    let t1 = Instant::now();
    tree.shutdown().await;
    let down = t1.elapsed();
    println!(
        "{}",
        json!({ "figure": "shutdown_sessions", "sessions": n, "total_ms": ms(down) })
    );
    env.assert_all_gone().await;
}

async fn pid_of(handle: &SessionHandle) -> u32 {
    handle
        .health()
        .await
        .and_then(|h| h.pid)
        .expect("a running session reports its CLI's pid")
}

/// SIGKILLs a session's CLI and times until an `ask` is answered by its replacement. Kills are
/// spread over `sessions` sessions and spaced by `gap`, so neither shape's default restart
/// intensity (the old tree-wide 3 in 5 s, the new per-session 5 in 30 s) is reached: the figure
/// is the restart itself, not a meltdown.
async fn restart_latency(samples: usize, sessions: usize, gap: Duration) {
    let env = FakeEnv::new();
    let tree = tree(&env).await;
    let mut handles = Vec::new();
    for i in 0..sessions {
        handles.push(
            tree.start_session(spec(&env, format!("r{i}")))
                .await
                .expect("restart-bench session starts"),
        );
    }
    for h in &handles {
        h.ask("warm up").await.expect("first turn");
    }
    let mut lat = Vec::with_capacity(samples);
    let mut failed_asks = 0u64;
    for i in 0..samples {
        tokio::time::sleep(gap).await;
        let handle = &handles[i % sessions];
        let pid = pid_of(handle).await;
        let t0 = Instant::now();
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("SIGKILL the CLI we started");
        let prompt = format!("after kill {i}");
        loop {
            match handle.ask(prompt.clone()).await {
                Ok(out) if !out.is_error() => break,
                // A turn sent to the dying process fails; the next goes to its replacement.
                Ok(_) | Err(_) => failed_asks += 1,
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{} did not answer within 30 s of the kill",
                handle.name()
            );
        }
        lat.push(t0.elapsed());
        let new_pid = pid_of(handle).await;
        assert_ne!(new_pid, pid, "the answer came from a new CLI");
    }
    let raw: Vec<f64> = lat.iter().map(|d| ms(*d)).collect();
    lat.sort();
    println!(
        "{}",
        json!({
            "figure": "restart_latency",
            "samples": samples,
            "sessions": sessions,
            "gap_ms": ms(gap),
            "median_ms": ms(pct(&lat, 0.5)),
            "p99_ms": ms(pct(&lat, 0.99)),
            "min_ms": ms(lat[0]),
            "max_ms": ms(lat[lat.len() - 1]),
            "failed_asks": failed_asks,
            "samples_ms": raw,
        })
    );
    tree.shutdown().await;
    env.assert_all_gone().await;
}

fn main() {
    let n = knob("BENCH_SESSIONS", 1000) as usize;
    let starters = knob("BENCH_STARTERS", 8) as usize;
    let samples = knob("BENCH_RESTART_SAMPLES", 30) as usize;
    let restart_sessions = knob("BENCH_RESTART_SESSIONS", 5) as usize;
    let gap = Duration::from_millis(knob("BENCH_RESTART_GAP_MS", 2500));
    let figures = std::env::var("BENCH_FIGURES").unwrap_or_else(|_| "restart,start".into());
    assert!(n > 0 && starters > 0 && samples > 0 && restart_sessions > 0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for figure in figures.split(',') {
            match figure.trim() {
                "start" => start_sessions(n, starters).await,
                "restart" => restart_latency(samples, restart_sessions, gap).await,
                other => panic!("BENCH_FIGURES: unknown figure {other:?} (start, restart)"),
            }
        }
    });
}

//! Many sessions at once: `SESSIONS` sessions × `TURNS` turns each, all sessions concurrent, with
//! fake-claude as the CLI — through the facade (`ClaudeSupervisor`: start every session, ask each
//! its turns, shut down) against a raw driver that does the least the same job needs (spawn each
//! CLI with the same command, answer-wait its `initialize`, write each turn's user line and read
//! lines until its `result`, close stdin and reap). Rounds alternate raw/facade (facade first in
//! odd rounds), medians of `ROUNDS` (default 5) with min and max.
//!
//! Figures per contender: wall time of the whole job and of each phase (start, turns, stop —
//! the raw driver also starts all, then runs all turns, then closes all), and CPU time (user + system) of this
//! process and of its reaped children (the CLIs, and for the facade its keepers) — so the CPU the
//! runtime adds per turn is `(facade − raw) / (SESSIONS × TURNS)`.
//!
//! Run with `cargo bench -p claude-supervisor --bench scale` (`SESSIONS` default 500, `TURNS` 10,
//! `ROUNDS` 5). Prints one JSON line per round and a summary line. Set `FAKE_CLAUDE_BIN` when
//! running the built binary directly.
#![allow(missing_docs)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use claude_supervisor::{ClaudeSupervisor, SessionSpec};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::Scenario;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn knob(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v} is not a number: {e}")),
        Err(_) => default,
    }
}

/// CPU time (user + system) of this process and of its reaped children, so far.
fn cpu() -> (Duration, Duration) {
    let of = |who| {
        let usage = nix::sys::resource::getrusage(who).expect("getrusage");
        let tv = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
        };
        tv(usage.user_time()) + tv(usage.system_time())
    };
    (
        of(nix::sys::resource::UsageWho::RUSAGE_SELF),
        of(nix::sys::resource::UsageWho::RUSAGE_CHILDREN),
    )
}

/// Wall time of each phase: every session started (and its CLI initialised), every turn
/// answered, every session stopped (its CLI reaped).
#[derive(Clone, Copy, Debug, Default)]
struct Phases {
    start: Duration,
    turns: Duration,
    stop: Duration,
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    phases: Phases,
    wall: Duration,
    cpu_self: Duration,
    cpu_children: Duration,
}

impl Sample {
    fn cpu_total(&self) -> Duration {
        self.cpu_self + self.cpu_children
    }
}

fn measure<'a, F: std::future::Future<Output = ()> + 'a>(
    rt: &tokio::runtime::Runtime,
    job: impl FnOnce(&'a mut Phases) -> F,
    phases: &'a mut Phases,
) -> Sample {
    let (self0, children0) = cpu();
    let t0 = Instant::now();
    rt.block_on(job(phases));
    let wall = t0.elapsed();
    let (self1, children1) = cpu();
    Sample {
        phases: Phases::default(),
        wall,
        cpu_self: self1 - self0,
        cpu_children: children1 - children0,
    }
}

fn options(env: &FakeEnv) -> claude_supervisor::ClaudeOptions {
    env.options(&Scenario::new()).build().expect("options")
}

/// The raw driver: the same command the facade would run, driven by hand, in the same three
/// phases as the facade (all started, all turns, all closed).
async fn raw(env: &FakeEnv, sessions: usize, turns: usize, phases: &mut Phases) {
    let spec = options(env)
        .command(&env.cli_path(), None)
        .expect("the CLI's command");
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..sessions {
        let spec = spec.clone();
        tasks.spawn(async move {
            let mut cmd = tokio::process::Command::new(&spec.program);
            cmd.args(&spec.args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true);
            if spec.env_clear {
                cmd.env_clear();
            }
            for name in &spec.env_remove {
                cmd.env_remove(name);
            }
            for (k, v) in &spec.env {
                cmd.env(k, v);
            }
            if let Some(cwd) = &spec.cwd {
                cmd.current_dir(cwd);
            }
            let mut child = cmd.spawn().expect("spawn fake-claude");
            let mut stdin = child.stdin.take().unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            stdin
                .write_all(b"{\"type\":\"control_request\",\"request_id\":\"init\",\"request\":{\"subtype\":\"initialize\"}}\n")
                .await
                .unwrap();
            while let Some(line) = lines.next_line().await.unwrap() {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                if v["type"] == "control_response" {
                    break;
                }
            }
            (s, child, stdin, lines)
        });
    }
    let mut live = Vec::with_capacity(sessions);
    while let Some(started) = tasks.join_next().await {
        live.push(started.expect("a raw start panicked"));
    }
    phases.start = t.elapsed();
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (s, child, mut stdin, mut lines) in live {
        tasks.spawn(async move {
            for t in 0..turns {
                let user = json!({
                    "type": "user",
                    "message": {"role": "user", "content": format!("session {s} turn {t}")},
                    "parent_tool_use_id": null,
                    "session_id": "default",
                });
                stdin
                    .write_all(format!("{user}\n").as_bytes())
                    .await
                    .unwrap();
                loop {
                    let line = lines
                        .next_line()
                        .await
                        .unwrap()
                        .expect("a result before EOF");
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                    if v["type"] == "result" {
                        assert_eq!(v["is_error"], false, "{v}");
                        break;
                    }
                }
            }
            (child, stdin)
        });
    }
    let mut live = Vec::with_capacity(sessions);
    while let Some(done) = tasks.join_next().await {
        live.push(done.expect("a raw session panicked"));
    }
    phases.turns = t.elapsed();
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (mut child, stdin) in live {
        tasks.spawn(async move {
            drop(stdin);
            let status = child.wait().await.unwrap();
            assert!(status.success(), "fake-claude exited with {status}");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a raw close panicked");
    }
    phases.stop = t.elapsed();
}

/// The facade: start every session (8 starters), ask each its turns (all sessions at once),
/// shut down.
async fn facade(env: &FakeEnv, sessions: usize, turns: usize, phases: &mut Phases) {
    let t = Instant::now();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .start()
        .await
        .expect("the tree starts");
    let mut starters = tokio::task::JoinSet::new();
    for k in 0..8 {
        let tree = tree.clone();
        let specs: Vec<SessionSpec> = (k..sessions)
            .step_by(8)
            .map(|i| SessionSpec::new(format!("s{i:04}"), options(env)))
            .collect();
        starters.spawn(async move {
            let mut handles = Vec::new();
            for spec in specs {
                handles.push(tree.start_session(spec).await.expect("start_session"));
            }
            handles
        });
    }
    let mut handles = Vec::with_capacity(sessions);
    while let Some(started) = starters.join_next().await {
        handles.extend(started.expect("a starter panicked"));
    }
    phases.start = t.elapsed();
    let t = Instant::now();
    let mut askers = tokio::task::JoinSet::new();
    for handle in handles {
        askers.spawn(async move {
            for t in 0..turns {
                let out = handle
                    .ask(format!("{} turn {t}", handle.name()))
                    .await
                    .expect("ask");
                assert!(!out.is_error(), "{}: {:?}", handle.name(), out.result);
            }
        });
    }
    while let Some(done) = askers.join_next().await {
        done.expect("an asker panicked");
    }
    phases.turns = t.elapsed();
    let t = Instant::now();
    tree.shutdown().await;
    phases.stop = t.elapsed();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn stats(values: &mut [f64]) -> serde_json::Value {
    values.sort_by(f64::total_cmp);
    json!({
        "median": values[values.len() / 2],
        "min": values[0],
        "max": values[values.len() - 1],
    })
}

fn main() {
    let sessions = knob("SESSIONS", 500);
    let turns = knob("TURNS", 10);
    let rounds = knob("ROUNDS", 5);
    assert!(sessions > 0 && turns > 0 && rounds > 0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (mut raws, mut facades) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let order: [&str; 2] = if round % 2 == 0 {
            ["facade", "raw"]
        } else {
            ["raw", "facade"]
        };
        for who in order {
            let env = FakeEnv::new();
            let mut phases = Phases::default();
            let mut sample = match who {
                "raw" => measure(&rt, |p| raw(&env, sessions, turns, p), &mut phases),
                _ => measure(&rt, |p| facade(&env, sessions, turns, p), &mut phases),
            };
            sample.phases = phases;
            rt.block_on(env.assert_all_gone());
            println!(
                "{}",
                json!({
                    "round": round, "contender": who, "sessions": sessions, "turns": turns,
                    "wall_ms": ms(sample.wall),
                    "start_ms": ms(sample.phases.start),
                    "turns_ms": ms(sample.phases.turns),
                    "stop_ms": ms(sample.phases.stop),
                    "cpu_self_ms": ms(sample.cpu_self),
                    "cpu_children_ms": ms(sample.cpu_children),
                })
            );
            match who {
                "raw" => raws.push(sample),
                _ => facades.push(sample),
            }
        }
    }
    let total_turns = (sessions * turns) as f64;
    let wall = |s: &[Sample]| s.iter().map(|x| ms(x.wall)).collect::<Vec<_>>();
    let phase = |s: &[Sample], f: fn(&Phases) -> Duration| {
        s.iter().map(|x| ms(f(&x.phases))).collect::<Vec<_>>()
    };
    let mut turns_ratio: Vec<f64> = raws
        .iter()
        .zip(&facades)
        .map(|(r, f)| f.phases.turns.as_secs_f64() / r.phases.turns.as_secs_f64())
        .collect();
    let cpu = |s: &[Sample]| s.iter().map(|x| ms(x.cpu_total())).collect::<Vec<_>>();
    let cpu_self = |s: &[Sample]| s.iter().map(|x| ms(x.cpu_self)).collect::<Vec<_>>();
    // Paired by round: the runtime's added CPU per turn, and the wall-time ratio.
    let mut added: Vec<f64> = raws
        .iter()
        .zip(&facades)
        .map(|(r, f)| (ms(f.cpu_total()) - ms(r.cpu_total())) * 1e3 / total_turns)
        .collect();
    let mut ratio: Vec<f64> = raws
        .iter()
        .zip(&facades)
        .map(|(r, f)| f.wall.as_secs_f64() / r.wall.as_secs_f64())
        .collect();
    println!(
        "{}",
        json!({
            "figure": "scale",
            "sessions": sessions,
            "turns": turns,
            "rounds": rounds,
            "raw_wall_ms": stats(&mut wall(&raws)),
            "facade_wall_ms": stats(&mut wall(&facades)),
            "wall_ratio_facade_over_raw": stats(&mut ratio),
            "raw_start_ms": stats(&mut phase(&raws, |p| p.start)),
            "facade_start_ms": stats(&mut phase(&facades, |p| p.start)),
            "raw_turns_ms": stats(&mut phase(&raws, |p| p.turns)),
            "facade_turns_ms": stats(&mut phase(&facades, |p| p.turns)),
            "turns_ratio_facade_over_raw": stats(&mut turns_ratio),
            "raw_stop_ms": stats(&mut phase(&raws, |p| p.stop)),
            "facade_stop_ms": stats(&mut phase(&facades, |p| p.stop)),
            "raw_cpu_ms": stats(&mut cpu(&raws)),
            "facade_cpu_ms": stats(&mut cpu(&facades)),
            "raw_cpu_self_ms": stats(&mut cpu_self(&raws)),
            "facade_cpu_self_ms": stats(&mut cpu_self(&facades)),
            "added_cpu_us_per_turn": stats(&mut added),
        })
    );
}

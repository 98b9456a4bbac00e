//! What transcript mirroring costs on turn throughput through the facade, fake-claude as the CLI.
//!
//! Four contenders, each a fresh tree per round on its own store:
//!
//! 1. `none`: a `MemoryStore` behind a wrapper whose `holds_transcripts()` is false — records
//!    are saved, no conversation is mirrored (no `--session-mirror`, no per-turn barrier). Its
//!    figure is the ceiling: everything but mirroring (fake-claude, the session I/O path, the
//!    tree) at this load.
//! 2. `memory`: `MemoryStore`, mirroring into memory.
//! 3. `file`: `FileStore` in a temporary directory.
//! 4. `postgres`: `PostgresStore` on a `TempPostgres` (one server for the whole bench, a fresh
//!    database per round).
//!
//! Each round runs every contender once, the order rotated round by round, and awaits each
//! tree's shutdown (every fake-claude process gone) before the next tree starts. A tree runs
//! `BENCH_SESSIONS` sessions (default 8); after one untimed warm-up turn each, every session
//! runs `BENCH_TURNS` sequential `ask`s (default 40), all sessions at once. Timed: the turn
//! phase only (wall time from the first ask to the last answer), and each ask on its own.
//! After the phase (untimed), the store is checked: a mirroring contender holds every turn's
//! user line of every session, `none` holds the records and no transcript.
//!
//! Prints one JSON line per contender per round (`figure: "mirroring_round"`), then one summary
//! line per contender (`figure: "mirroring"`): median, min and max over the rounds of turns/s
//! and of the per-ask p50/p99 latency, and the median turns/s relative to `none`. Each round's
//! line also carries CPU time during the turn phase (this process, the fake-claude processes,
//! and the whole machine's busy share) to show what the phase was bound by.
//!
//! Knobs (environment): `BENCH_ROUNDS` (5), `BENCH_SESSIONS` (8), `BENCH_TURNS` (40),
//! `BENCH_CONTENDERS` (`none,memory,file,postgres`). Set `FAKE_CLAUDE_BIN` when running the
//! built binary directly. Needs PostgreSQL's server binaries for the `postgres` contender.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use claude_supervisor::store::{PostgresStore, SessionStore, TranscriptEntry, TranscriptFile};
use claude_supervisor::{
    ClaudeSupervisor, FileStore, MemoryStore, SessionRecord, SessionSpec, StoreError,
};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::Scenario;
use claude_testing::postgres::TempPostgres;
use serde_json::{Value, json};

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

/// A `MemoryStore` that keeps records only: the tree does not mirror into it.
#[derive(Clone, Debug, Default)]
struct RecordsOnly {
    inner: MemoryStore,
}

type Boxed<'a, T> = futures::future::BoxFuture<'a, Result<T, StoreError>>;

impl SessionStore for RecordsOnly {
    fn load<'a>(&'a self, name: &'a str) -> Boxed<'a, Option<SessionRecord>> {
        self.inner.load(name)
    }
    fn save<'a>(&'a self, record: &'a SessionRecord) -> Boxed<'a, ()> {
        self.inner.save(record)
    }
    fn delete<'a>(&'a self, name: &'a str) -> Boxed<'a, ()> {
        self.inner.delete(name)
    }
    fn list(&self) -> Boxed<'_, Vec<SessionRecord>> {
        self.inner.list()
    }
    fn holds_transcripts(&self) -> bool {
        false
    }
    // Never called while `holds_transcripts()` is false; forwarded so a call would show up in
    // the post-phase check (which reads `inner` directly) instead of failing silently.
    fn append_entries<'a>(
        &'a self,
        name: &'a str,
        session_id: &'a str,
        file: &'a str,
        entries: &'a [TranscriptEntry],
        fence: Option<u64>,
    ) -> Boxed<'a, usize> {
        self.inner
            .append_entries(name, session_id, file, entries, fence)
    }
    fn load_entries<'a>(
        &'a self,
        name: &'a str,
        session_id: &'a str,
    ) -> Boxed<'a, Vec<TranscriptFile>> {
        self.inner.load_entries(name, session_id)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    Records,
    Memory,
    File,
    Postgres,
}

impl Contender {
    fn parse(s: &str) -> Contender {
        match s.trim() {
            "none" => Contender::Records,
            "memory" => Contender::Memory,
            "file" => Contender::File,
            "postgres" => Contender::Postgres,
            other => panic!(
                "BENCH_CONTENDERS: unknown contender {other:?} (none, memory, file, postgres)"
            ),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Contender::Records => "none",
            Contender::Memory => "memory",
            Contender::File => "file",
            Contender::Postgres => "postgres",
        }
    }
}

/// CPU time, from `/proc` (clock ticks; `getconf CLK_TCK` once at start).
struct Cpu {
    tick: Duration,
}

impl Cpu {
    fn new() -> Cpu {
        let hz: u64 = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100);
        Cpu {
            tick: Duration::from_secs(1) / hz as u32,
        }
    }

    /// utime + stime of a process (all its threads); zero when it is gone.
    fn process(&self, pid: &str) -> Duration {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return Duration::ZERO;
        };
        // The fields after the command name, which is in parentheses and may hold spaces.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            return Duration::ZERO;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Fields 14 and 15 of stat(5), counted from the state field (3).
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        self.tick * ticks as u32
    }

    /// The machine's (busy, total) time over all CPUs (`/proc/stat`: busy is all but idle and
    /// iowait).
    fn machine(&self) -> (Duration, Duration) {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
            return (Duration::ZERO, Duration::ZERO);
        };
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        let total: u64 = v.iter().take(8).sum();
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        (self.tick * (total - idle) as u32, self.tick * total as u32)
    }
}

/// CPU readings at one instant.
struct CpuAt {
    bench: Duration,
    fakes: Duration,
    machine: (Duration, Duration),
}

fn cpu_now(cpu: &Cpu, fake_pids: &[i32]) -> CpuAt {
    CpuAt {
        bench: cpu.process("self"),
        fakes: fake_pids.iter().map(|p| cpu.process(&p.to_string())).sum(),
        machine: cpu.machine(),
    }
}

/// One round of one contender: a fresh tree on `store`, the turn phase timed, the store
/// checked, the tree shut down and every CLI gone.
async fn round<S: SessionStore + Clone>(
    store: S,
    mirrors: bool,
    sessions: usize,
    turns: usize,
    cpu: &Cpu,
) -> Value {
    let env = FakeEnv::new();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .store(store.clone())
        .start()
        .await
        .expect("the tree starts");
    let mut handles = Vec::with_capacity(sessions);
    for i in 0..sessions {
        let spec = SessionSpec::new(
            format!("s{i}"),
            env.options(&Scenario::new()).build().expect("options"),
        );
        handles.push(tree.start_session(spec).await.expect("a session starts"));
    }
    // Untimed: every CLI is up and has a conversation before the clock starts.
    for h in &handles {
        let out = h.ask("warm up").await.expect("the warm-up turn");
        assert!(!out.is_error(), "{}: the warm-up turn failed", h.name());
    }
    let fake_pids = env.pids();
    assert_eq!(fake_pids.len(), sessions, "one fake-claude per session");

    let before = cpu_now(cpu, &fake_pids);
    let t0 = Instant::now();
    let tasks: Vec<_> = handles
        .iter()
        .cloned()
        .map(|h| {
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(turns);
                for t in 0..turns {
                    let asked = Instant::now();
                    let out = h
                        .ask(format!("turn {t}"))
                        .await
                        .unwrap_or_else(|e| panic!("{} turn {t}: {e}", h.name()));
                    lat.push(asked.elapsed());
                    assert!(!out.is_error(), "{} turn {t} ended in an error", h.name());
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(sessions * turns);
    for task in tasks {
        lat.extend(task.await.expect("a session's task panicked"));
    }
    let wall = t0.elapsed();
    let after = cpu_now(cpu, &fake_pids);

    // Untimed: the store holds what it should (the barrier: a returned turn is stored).
    let mut mirrored = 0;
    for h in &handles {
        let name = h.name();
        let id = h.session_id().expect("a conversation");
        assert!(
            store.load(name).await.expect("load").is_some(),
            "{name}: no record saved"
        );
        let files = store.load_entries(name, &id).await.expect("load_entries");
        mirrored += files.iter().map(|f| f.entries.len()).sum::<usize>();
        let users = files
            .iter()
            .flat_map(|f| &f.entries)
            .filter(|e| e.parse().is_ok_and(|v| v["type"] == "user"))
            .count();
        if mirrors {
            assert_eq!(users, turns + 1, "{name}: every turn's user line is stored");
        } else {
            assert_eq!(
                users, 0,
                "{name}: nothing is mirrored into a records-only store"
            );
        }
    }

    tree.shutdown().await;
    env.assert_all_gone().await;

    lat.sort();
    let n = lat.len();
    let phase = |a: Duration, b: Duration| ms(b.saturating_sub(a));
    let (busy, total) = (
        after.machine.0.saturating_sub(before.machine.0),
        after.machine.1.saturating_sub(before.machine.1),
    );
    json!({
        "sessions": sessions,
        "turns_per_session": turns,
        "turns": n,
        "wall_ms": ms(wall),
        "turns_per_s": n as f64 / wall.as_secs_f64(),
        "p50_ms": ms(pct(&lat, 0.5)),
        "p99_ms": ms(pct(&lat, 0.99)),
        "max_ms": ms(lat[n - 1]),
        "mirrored_entries": mirrored,
        "cpu_bench_ms": phase(before.bench, after.bench),
        "cpu_fake_claude_ms": phase(before.fakes, after.fakes),
        "machine_busy": if total.is_zero() { 0.0 } else { busy.as_secs_f64() / total.as_secs_f64() },
    })
}

/// Median, min and max of one field over a contender's rounds.
fn spread(rounds: &[Value], field: &str) -> Value {
    let mut v: Vec<f64> = rounds
        .iter()
        .map(|r| r[field].as_f64().expect("a number"))
        .collect();
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    json!({ "median": median, "min": v[0], "max": v[v.len() - 1] })
}

fn main() {
    let rounds = knob("BENCH_ROUNDS", 5);
    let sessions = knob("BENCH_SESSIONS", 8);
    let turns = knob("BENCH_TURNS", 40);
    let contenders: Vec<Contender> = std::env::var("BENCH_CONTENDERS")
        .unwrap_or_else(|_| "none,memory,file,postgres".into())
        .split(',')
        .map(Contender::parse)
        .collect();
    assert!(rounds > 0 && sessions > 0 && turns > 0 && !contenders.is_empty());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let pg = if contenders.contains(&Contender::Postgres) {
            match TempPostgres::start() {
                Some(pg) => Some(pg),
                None => {
                    eprintln!("no PostgreSQL server binaries: nothing measured");
                    return;
                }
            }
        } else {
            None
        };
        let cpu = Cpu::new();
        let mut results: Vec<Vec<Value>> = vec![Vec::new(); contenders.len()];
        for r in 0..rounds {
            for k in 0..contenders.len() {
                // Rotated: each contender runs first, second, … in turn.
                let i = (r + k) % contenders.len();
                let c = contenders[i];
                let dir = tempfile::tempdir().expect("temp dir");
                let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
                let mut line = match c {
                    Contender::Records => {
                        round(RecordsOnly::default(), false, sessions, turns, &cpu).await
                    }
                    Contender::Memory => {
                        round(MemoryStore::new(), true, sessions, turns, &cpu).await
                    }
                    Contender::File => {
                        let store = FileStore::open(dir.path()).expect("FileStore");
                        round(store, true, sessions, turns, &cpu).await
                    }
                    Contender::Postgres => {
                        let pg = pg.as_ref().expect("a server");
                        let url = pg.create_database(&format!("mirroring{r}"));
                        let store = PostgresStore::connect(&url).await.expect("connect");
                        round(store, true, sessions, turns, &cpu).await
                    }
                };
                line["figure"] = json!("mirroring_round");
                line["contender"] = json!(c.name());
                line["round"] = json!(r);
                line["position"] = json!(k);
                line["loadavg_1m_before"] =
                    json!(load.split_whitespace().next().unwrap_or("").to_owned());
                println!("{line}");
                results[i].push(line);
            }
        }
        let ceiling = contenders
            .iter()
            .position(|&c| c == Contender::Records)
            .map(|i| {
                spread(&results[i], "turns_per_s")["median"]
                    .as_f64()
                    .unwrap()
            });
        for (c, rs) in contenders.iter().zip(&results) {
            let tps = spread(rs, "turns_per_s");
            let ratio = ceiling.map(|top| tps["median"].as_f64().unwrap() / top);
            println!(
                "{}",
                json!({
                    "figure": "mirroring",
                    "contender": c.name(),
                    "rounds": rounds,
                    "sessions": sessions,
                    "turns_per_session": turns,
                    "turns_per_s": tps,
                    "p50_ms": spread(rs, "p50_ms"),
                    "p99_ms": spread(rs, "p99_ms"),
                    "machine_busy": spread(rs, "machine_busy"),
                    "ceiling_turns_per_s": ceiling,
                    "turns_per_s_vs_none": ratio,
                    "cost_pct": ratio.map(|r| (1.0 - r) * 100.0),
                })
            );
        }
    });
}

//! A fleet's costs on a real PostgreSQL (`TempPostgres`) with fake-claude as the CLI:
//!
//! - `failover`: the time from a node's death (it stops renewing: its tree is shut down
//!   without releasing its leases, exactly what a SIGKILL leaves behind) to every one of its
//!   sessions answering a turn again on the surviving node, resumed from the store (median of
//!   `BENCH_FAILOVER_RUNS`, default 5; `BENCH_FAILOVER_SESSIONS` sessions, default 10; TTL
//!   1.5 s, heartbeat 300 ms).
//! - `renewal`: one node's heartbeat for `BENCH_LEASES` sessions (default 1,000): one
//!   `renew_leases` call (one UPDATE statement) against one `renew_lease` per session.
//!
//! Prints one JSON line per figure. Needs PostgreSQL's server binaries (as the tests do).
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use claude_supervisor::store::{Lease, PostgresStore, SessionStore};
use claude_supervisor::{ClaudeSupervisor, FleetConfig, SessionSpec};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::Scenario;
use claude_testing::postgres::TempPostgres;
use serde_json::json;

const TTL: Duration = Duration::from_millis(1500);
const HEARTBEAT: Duration = Duration::from_millis(300);

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|e| panic!("{name}={v}: {e}")))
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn node(url: &str, id: &str, env: &FakeEnv) -> ClaudeSupervisor {
    let store = PostgresStore::connect(url).await.expect("connect");
    let options = env.options(&Scenario::new()).build().unwrap();
    let fleet = FleetConfig::new(id, move |r| {
        Some(SessionSpec::new(r.name.clone(), options.clone()))
    })
    .ttl(TTL)
    .heartbeat(HEARTBEAT);
    ClaudeSupervisor::builder()
        .name(id)
        .cli_path(env.cli_path())
        .store(store)
        .fleet(fleet)
        .start()
        .await
        .expect("a node starts")
}

async fn failover_once(pg: &TempPostgres, run: usize, sessions: usize) -> Duration {
    let url = pg.create_database(&format!("failover{run}"));
    let (env_a, env_b) = (FakeEnv::new(), FakeEnv::new());
    let a = node(&url, "a", &env_a).await;
    let b = node(&url, "b", &env_b).await;
    let names: Vec<String> = (0..sessions).map(|i| format!("s{i}")).collect();
    for name in &names {
        let spec = SessionSpec::new(
            name.clone(),
            env_a.options(&Scenario::new()).build().unwrap(),
        );
        let h = a.start_session(spec).await.expect("start on a");
        h.ask("remember me").await.expect("a turn on a");
    }
    let died = Instant::now();
    // A death: no more heartbeats, the leases left to expire.
    a.shutdown().await;
    let answers = names.iter().map(|name| {
        let b = b.clone();
        async move {
            loop {
                if let Some(h) = b.session(name)
                    && h.ask("are you back?").await.is_ok()
                {
                    return;
                }
                assert!(
                    died.elapsed() < Duration::from_secs(30),
                    "{name} never came back"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    futures::future::join_all(answers).await;
    let took = died.elapsed();
    b.shutdown().await;
    took
}

async fn renewal(pg: &TempPostgres, n: usize) -> serde_json::Value {
    let url = pg.create_database("renewal");
    let store = PostgresStore::connect(&url).await.expect("connect");
    let mut leases: Vec<Lease> = Vec::with_capacity(n);
    for i in 0..n {
        leases.push(
            store
                .acquire_lease(&format!("s{i}"), "node", Duration::from_secs(60))
                .await
                .unwrap(),
        );
    }
    let rounds = 20;
    let mut batched = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let out = store
            .renew_leases(&leases, Duration::from_secs(60))
            .await
            .unwrap();
        batched.push(t.elapsed());
        assert!(out.iter().all(Result::is_ok));
    }
    let mut one_by_one = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        for l in &leases {
            store.renew_lease(l, Duration::from_secs(60)).await.unwrap();
        }
        one_by_one.push(t.elapsed());
    }
    let heartbeat_ms = ms(median(batched.clone()));
    json!({
        "figure": "lease_renewal",
        "leases": n,
        "batched_statements_per_heartbeat": 1,
        "batched_median_ms": heartbeat_ms,
        "batched_max_ms": ms(*batched.iter().max().unwrap()),
        "one_by_one_statements_per_heartbeat": n,
        "one_by_one_median_ms": ms(median(one_by_one)),
        "db_busy_share_at_300ms_heartbeat": heartbeat_ms / ms(HEARTBEAT),
    })
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let Some(pg) = TempPostgres::start() else {
            eprintln!("no PostgreSQL server binaries: nothing measured");
            return;
        };
        println!("{}", renewal(&pg, knob("BENCH_LEASES", 1000)).await);
        let (runs, sessions) = (
            knob("BENCH_FAILOVER_RUNS", 5),
            knob("BENCH_FAILOVER_SESSIONS", 10),
        );
        let mut samples = Vec::new();
        for run in 0..runs {
            samples.push(failover_once(&pg, run, sessions).await);
        }
        let mut sorted = samples.clone();
        sorted.sort();
        println!(
            "{}",
            json!({
                "figure": "failover",
                "runs": runs,
                "sessions": sessions,
                "ttl_ms": ms(TTL),
                "heartbeat_ms": ms(HEARTBEAT),
                "median_ms": ms(median(samples)),
                "min_ms": ms(sorted[0]),
                "max_ms": ms(sorted[sorted.len() - 1]),
            })
        );
    });
}

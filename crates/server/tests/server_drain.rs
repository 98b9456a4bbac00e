//! The real binary's drain: `claude-supervisor serve --config <file>` on fake-claude, then
//! SIGTERM. A running turn shorter than `drain_timeout` finishes (its `done` arrives), new
//! queries and sessions get 503 `draining`, the process exits 0 and no CLI survives; a second
//! `serve` on the same config (a file store) resumes the named session's conversation. A turn
//! longer than `drain_timeout` is cut: the process still exits, in bounded time, with no CLI
//! left.

#[path = "support/common.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use claude_supervisor_server::config::StoreKind;
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::{Scenario, Turn};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use support::{
    SseEvent, SseReader, done_text, expect_error, fake_config, free_port, post_query, query_sse,
};

/// Writes the server's config (TOML, from the same `Config` the in-process tests use): loopback
/// on a port picked now, a file store and the data dir under `env`, one static session `agent`
/// on fake-claude running `turn`, with a stream event per piece.
fn write_config(env: &FakeEnv, turn: Turn, drain_timeout: Duration) -> (PathBuf, String) {
    let port = free_port();
    let mut config = fake_config(env, &[("agent", &Scenario::new().default_turn(turn))]);
    config.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.server.drain_timeout = drain_timeout;
    config.store.kind = StoreKind::File;
    config.store.path = Some(env.path("store"));
    config.supervisor.data_dir = Some(env.path("data"));
    config.sessions[0].include_partial_messages = true;
    let text = toml::to_string(&config).expect("the config serializes as TOML");
    let path = env.path("server.toml");
    std::fs::write(&path, text).expect("write the config");
    (path, format!("http://127.0.0.1:{port}"))
}

/// A `claude-supervisor serve` process (killed by pid if a test fails before it exits).
struct Served {
    child: tokio::process::Child,
    url: String,
    log: PathBuf,
}

impl Served {
    /// Starts `serve --config <config>` and waits (bounded) until `/ready` answers 200.
    async fn start(config: &Path, url: &str, log: PathBuf) -> Served {
        let stderr = std::fs::File::create(&log).expect("the server's log file");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_claude-supervisor"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env_remove("CLAUDE_SUPERVISOR_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn claude-supervisor serve");
        let mut served = Served {
            child,
            url: url.to_owned(),
            log,
        };
        let http = reqwest::Client::new();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let Some(status) = served.child.try_wait().expect("try_wait") {
                    return Err(status);
                }
                if let Ok(answer) = http.get(format!("{url}/ready")).send().await
                    && answer.status() == 200
                {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        match ready {
            Ok(Ok(())) => served,
            Ok(Err(status)) => panic!("serve exited with {status}: {}", served.log_text()),
            Err(_) => panic!("serve not ready within 30 s: {}", served.log_text()),
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn sigterm(&self) {
        let pid = self.child.id().expect("the server is running") as i32;
        kill(Pid::from_raw(pid), Signal::SIGTERM).expect("SIGTERM the server");
    }

    /// Waits for the exit, at most `limit`.
    async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.expect("wait for the server"),
            Err(_) => panic!(
                "serve still running {limit:?} after SIGTERM: {}",
                self.log_text()
            ),
        }
    }

    /// Polls `/ready` until it says `draining` (bounded).
    async fn until_draining(&self) {
        let http = reqwest::Client::new();
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let answer = http.get(format!("{}/ready", self.url)).send().await;
                if let Ok(answer) = answer
                    && answer.status() == 503
                {
                    let body: Value = answer.json().await.unwrap();
                    assert_eq!(body["error"]["code"], "draining", "{body}");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("/ready says draining within 10 s of SIGTERM");
    }
}

async fn first_event(reader: &mut SseReader) -> SseEvent {
    tokio::time::timeout(Duration::from_secs(10), reader.next())
        .await
        .expect("an event within 10 s")
        .expect("the turn streams")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_running_turn_refuses_new_work_and_the_next_serve_resumes() {
    let env = FakeEnv::new();
    let drain = Duration::from_secs(10);
    // A 2 s turn: well inside the drain timeout.
    let (config, url) = write_config(&env, Turn::echo().slow(40, 50), drain);
    let mut served = Served::start(&config, &url, env.path("serve-1.log")).await;
    let http = reqwest::Client::new();

    let mut turn = query_sse(&url, "agent", "story one").await;
    let first = first_event(&mut turn).await;
    served.sigterm();
    served.until_draining().await;

    // New work is refused while the running turn drains.
    let refused = post_query(&http, &url, "agent", "too late", None).await;
    expect_error(refused, 503, "draining").await;
    let refused = http
        .post(format!("{url}/sessions"))
        .json(&json!({"name": "latecomer"}))
        .send()
        .await
        .unwrap();
    expect_error(refused, 503, "draining").await;

    // The running turn goes on to its end.
    let rest = tokio::time::timeout(Duration::from_secs(20), turn.collect())
        .await
        .expect("the running turn's stream ends");
    let mut events = vec![first];
    events.extend(rest);
    assert_eq!(
        events.last().map(|e| e.event.as_str()),
        Some("done"),
        "{events:#?}"
    );
    assert_eq!(
        done_text(&events).as_deref(),
        Some("fake reply to: story one")
    );

    let status = served.exit_within(drain + Duration::from_secs(10)).await;
    assert!(status.success(), "exit {status}: {}", served.log_text());
    env.assert_all_gone().await;
    assert_eq!(
        env.prompts_received(),
        ["story one"],
        "the refused query never reached a CLI"
    );

    // A second `serve` on the same config resumes `agent`: its conversation goes on.
    let mut again = Served::start(&config, &url, env.path("serve-2.log")).await;
    let history = tokio::time::timeout(
        Duration::from_secs(20),
        query_sse(&url, "agent", "HISTORY?").await.collect(),
    )
    .await
    .expect("the turn ends");
    assert_eq!(
        done_text(&history).as_deref(),
        Some(r#"history: ["story one"]"#),
        "{}",
        again.log_text()
    );
    again.sigterm();
    let status = again.exit_within(drain + Duration::from_secs(10)).await;
    assert!(status.success(), "exit {status}: {}", again.log_text());
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_longer_than_the_drain_timeout_is_cut_and_the_process_still_exits() {
    let env = FakeEnv::new();
    let drain = Duration::from_secs(1);
    // A 20 s turn, against a 1 s drain.
    let (config, url) = write_config(&env, Turn::echo().slow(100, 200), drain);
    let mut served = Served::start(&config, &url, env.path("serve.log")).await;

    // The client keeps reading the turn all along: its open stream must not hold the exit.
    let mut turn = query_sse(&url, "agent", "an endless story").await;
    first_event(&mut turn).await;
    let reader = tokio::spawn(turn.collect());
    served.sigterm();

    // Well before the turn could have ended by itself.
    let status = served.exit_within(Duration::from_secs(12)).await;
    assert!(status.success(), "exit {status}: {}", served.log_text());
    env.assert_all_gone().await;
    let events = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("the client's stream ended with the server")
        .unwrap();
    // Cut, not finished: the shutdown interrupts it (a `done` then says `is_error`), or its
    // CLI goes before its result (`error`); never the whole reply.
    let last = events.last().expect("the turn's events");
    match last.event.as_str() {
        "done" => assert_eq!(last.json()["is_error"], true, "{events:#?}"),
        "error" => assert_eq!(last.json()["error"]["code"], "turn_cut", "{events:#?}"),
        other => panic!("the stream ended on `{other}`: {events:#?}"),
    }
    assert_ne!(
        done_text(&events).as_deref(),
        Some("fake reply to: an endless story")
    );
}

//! Shared by the server's integration tests: a server started in-process on loopback (port 0)
//! from a config, sessions on fake-claude or the real CLI, and a reader of server-sent events.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use claude_supervisor::Agent;
use claude_supervisor::ClaudeOptions;
use claude_supervisor_server::config::StoreKind;
use claude_supervisor_server::{Config, RunningServer};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::Scenario;
use futures::StreamExt;
use serde_json::Value;

/// An agent whose CLI options (env, cwd) are `options`' — the test environment's.
pub fn agent(name: &str, options: &ClaudeOptions) -> Agent {
    let mut agent = Agent::new(name);
    for (k, v) in &options.env {
        agent.env.insert(
            k.to_string_lossy().into_owned(),
            v.to_string_lossy().into_owned(),
        );
    }
    agent.env_remove = options
        .env_remove
        .iter()
        .map(|k| k.to_string_lossy().into_owned())
        .collect();
    agent.cwd = options.cwd.clone();
    agent
}

/// A config for tests: loopback port 0, a memory store, fake-claude as the CLI, the given
/// static sessions (each with `scenario`), and the defaults (for sessions clients start) on the
/// same fake environment.
pub fn fake_config(env: &FakeEnv, sessions: &[(&str, &Scenario)]) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.store.kind = StoreKind::Memory;
    config.supervisor.cli_path = Some(env.cli_path());
    config.supervisor.data_dir = Some(env.path("data"));
    // Independent of a credential the developer's shell may export (no gateway unless a test
    // asks for one).
    config.gateway.enabled = Some(false);
    config.defaults = agent("", &env.options(&Scenario::new()).build().unwrap());
    config.sessions = sessions
        .iter()
        .map(|(name, scenario)| agent(name, &env.options(scenario).build().unwrap()))
        .collect();
    config
}

/// Starts the server from `config`.
pub async fn start(config: Config) -> RunningServer {
    claude_supervisor_server::start(config, Path::new("test.toml"))
        .await
        .expect("the server starts")
}

/// `http://<addr>`.
pub fn base(server: &RunningServer) -> String {
    format!("http://{}", server.local_addr())
}

/// One server-sent event.
#[derive(Clone, Debug)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

/// Reads server-sent events from a response as they arrive.
pub struct SseReader {
    bytes: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        assert!(
            response.status().is_success(),
            "an event stream, got {}",
            response.status()
        );
        Self {
            bytes: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped), or `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    id: None,
                    event: String::new(),
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        event.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if event.event.is_empty() && event.data.is_empty() {
                    continue;
                }
                return Some(event);
            }
            match self.bytes.next().await {
                Some(Ok(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// Every event until the stream ends.
    pub async fn collect(mut self) -> Vec<SseEvent> {
        let mut all = Vec::new();
        while let Some(e) = self.next().await {
            all.push(e);
        }
        all
    }
}

/// `POST /sessions/{name}/query` as an event stream.
pub async fn query_sse(base: &str, name: &str, prompt: &str) -> SseReader {
    let response = reqwest::Client::new()
        .post(format!("{base}/sessions/{name}/query"))
        .header("accept", "text/event-stream")
        .json(&serde_json::json!({ "prompt": prompt }))
        .send()
        .await
        .expect("the server answers");
    SseReader::new(response)
}

/// The text of a turn's events: its `done` event's text.
pub fn done_text(events: &[SseEvent]) -> Option<String> {
    events
        .iter()
        .find(|e| e.event == "done")
        .and_then(|e| e.json()["text"].as_str().map(str::to_owned))
}

/// The fields of the server's state a refused request must leave alone: each session's name,
/// state and finished turns (`GET /sessions`), and the tree's totals (`GET /health`).
pub async fn state_snapshot(base: &str, token: Option<&str>) -> Value {
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let mut r = http.get(format!("{base}{path}"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r
    };
    let list: Value = get("/sessions").send().await.unwrap().json().await.unwrap();
    let health: Value = get("/health").send().await.unwrap().json().await.unwrap();
    let sessions: Vec<Value> = list["sessions"]
        .as_array()
        .expect("a session list")
        .iter()
        .map(|s| serde_json::json!([s["name"], s["state"], s["turns"]]))
        .collect();
    serde_json::json!({
        "sessions": sessions,
        "total": health["total"],
        "running": health["running"],
        "failed": health["failed"],
        "turns": health["turns"],
    })
}

/// Asserts an error answer: `status`, a JSON body `{"error": {"code": code, "message": …}}`
/// with a non-empty message; returns the body.
pub async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    let got = response.status().as_u16();
    let url = response.url().to_string();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(got, status, "{url}: {text}");
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{url}: an error body that is not JSON ({e}): {text}"));
    assert_eq!(body["error"]["code"], code, "{url}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{url}: no message: {body}"
    );
    body
}

/// `POST /sessions/{name}/query` as an event stream, with `Last-Event-ID` when given; the raw
/// response (it may be an error).
pub async fn post_query(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    prompt: &str,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut request = http
        .post(format!("{base}/sessions/{name}/query"))
        .header("accept", "text/event-stream")
        .json(&serde_json::json!({ "prompt": prompt }));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    request.send().await.expect("the server answers")
}

/// `GET /sessions/{name}/turns/{turn}/events`, with `Last-Event-ID` when given.
pub async fn turn_events(
    base: &str,
    name: &str,
    turn: &str,
    last_event_id: Option<&str>,
) -> SseReader {
    let mut request =
        reqwest::Client::new().get(format!("{base}/sessions/{name}/turns/{turn}/events"));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    SseReader::new(request.send().await.expect("the server answers"))
}

/// The `(turn, seq)` of an event id `<turn>:<seq>`.
pub fn id_parts(event: &SseEvent) -> (String, usize) {
    let id = event.id.as_deref().expect("an event id");
    let (turn, seq) = id.split_once(':').expect("an id `<turn>:<seq>`");
    (turn.to_owned(), seq.parse().expect("a numeric seq"))
}

/// A loopback port that was free a moment ago (bound, read, released), for a server that must
/// be told its port in its config.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().unwrap().port()
}

/// A `claude-supervisor serve --config <file>` child process, with an environment of the
/// test's making (`SIGKILL`ed by pid on drop if a test fails before it stops it).
pub struct ServeProcess {
    pub child: tokio::process::Child,
    pub url: String,
    pub log: std::path::PathBuf,
}

impl ServeProcess {
    /// Writes `config` (TOML) to `dir/server.toml`, spawns the binary on it with `configure`
    /// applied to its command (its environment), its stderr in `dir/server.log`, and waits
    /// (bounded) until `/ready` answers 200. The config must listen on a fixed port.
    pub async fn start(
        config: &Config,
        dir: &Path,
        configure: impl FnOnce(&mut std::process::Command),
    ) -> ServeProcess {
        use std::time::Duration;
        let path = dir.join("server.toml");
        std::fs::write(
            &path,
            toml::to_string(config).expect("the config serializes as TOML"),
        )
        .expect("write the config");
        let log = dir.join("server.log");
        let stderr = std::fs::File::create(&log).expect("the server's log file");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_claude-supervisor"));
        cmd.arg("serve")
            .arg("--config")
            .arg(&path)
            .env_remove("CLAUDE_SUPERVISOR_CONFIG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr);
        configure(&mut cmd);
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.kill_on_drop(true);
        let child = cmd.spawn().expect("spawn claude-supervisor serve");
        let url = format!("http://{}", config.server.listen);
        let mut served = ServeProcess { child, url, log };
        let http = reqwest::Client::new();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if let Some(status) = served.child.try_wait().expect("try_wait") {
                    return Err(status);
                }
                if let Ok(answer) = http.get(format!("{}/ready", served.url)).send().await
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
            Err(_) => panic!("serve not ready within 60 s: {}", served.log_text()),
        }
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM (the drain), then waits for the exit (bounded); asserts it exited 0.
    pub async fn stop(mut self) {
        use std::time::Duration;
        let pid = self.child.id().expect("the server is running") as i32;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM the server");
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "serve still running 60 s after SIGTERM: {}",
                    self.log_text()
                )
            })
            .expect("wait for the server");
        assert!(
            status.success(),
            "serve exited with {status}: {}",
            self.log_text()
        );
    }
}

/// The value of the sample `name` (with its labels, e.g. `x_total{session="a"}`) in
/// Prometheus text; `None` when there is no such sample.
pub fn metric_sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The environment variables of process `pid` (`/proc/<pid>/environ`), as `NAME=value`.
pub fn environ_of(pid: i32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/environ: {e}"));
    raw.split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

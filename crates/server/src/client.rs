//! The operator side: `query`, `sessions` and `health` against a running server over HTTP, and
//! `query` as an ephemeral one-shot on this machine.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use claude_supervisor::{Agent, Message};
use futures::StreamExt;
use serde_json::Value;

/// A client command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached.
    #[error("cannot reach the server at {url}: {source}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error.
    #[error("{url}: {status} {code}: {message}")]
    Api {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The error's code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The answer could not be read.
    #[error("{url}: an answer that is not what was expected: {detail}")]
    BadAnswer {
        /// The URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// The turn failed.
    #[error("the turn failed: {0}")]
    Turn(String),
    /// The one-shot failed.
    #[error(transparent)]
    Local(#[from] claude_supervisor::SupervisorError),
    /// Writing the output failed.
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

/// A server to talk to.
#[derive(Clone, Debug)]
pub struct Remote {
    /// Its base URL (`http://127.0.0.1:7300`).
    pub url: String,
    /// The bearer token, if it needs one.
    pub token: Option<String>,
}

impl Remote {
    fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let mut r = client.request(method, format!("{}{path}", self.url.trim_end_matches('/')));
        if let Some(token) = &self.token {
            r = r.bearer_auth(token);
        }
        r
    }

    async fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let answer = self
            .request(&client, reqwest::Method::GET, path)
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        json_of(&url, answer).await
    }
}

async fn json_of(url: &str, answer: reqwest::Response) -> Result<Value, ClientError> {
    let status = answer.status();
    let body: Value = answer.json().await.map_err(|e| ClientError::BadAnswer {
        url: url.to_owned(),
        detail: e.to_string(),
    })?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(api_error(url, status.as_u16(), &body))
    }
}

fn api_error(url: &str, status: u16, body: &Value) -> ClientError {
    ClientError::Api {
        url: url.to_owned(),
        status,
        code: body["error"]["code"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned(),
        message: body["error"]["message"].as_str().unwrap_or("").to_owned(),
    }
}

/// `sessions`: the server's sessions, as a table or JSON.
///
/// # Errors
///
/// [`ClientError`].
pub async fn sessions(
    remote: &Remote,
    json: bool,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    let list = remote.get_json("/sessions").await?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        )?;
        return Ok(());
    }
    let mut rows = vec![vec![
        "NAME".to_owned(),
        "STATE".to_owned(),
        "NODE".to_owned(),
        "TURNS".to_owned(),
        "RESTARTS".to_owned(),
        "PID".to_owned(),
    ]];
    let empty = Vec::new();
    for s in list["sessions"].as_array().unwrap_or(&empty) {
        rows.push(vec![
            text(&s["name"]),
            text(&s["state"]),
            s["node"].as_str().unwrap_or("-").to_owned(),
            text(&s["turns"]),
            text(&s["restarts"]),
            s["pid"].as_u64().map_or("-".to_owned(), |p| p.to_string()),
        ]);
    }
    // Sessions other nodes of the fleet run.
    for f in list["fleet"].as_array().unwrap_or(&empty) {
        let name = text(&f["name"]);
        if !rows.iter().any(|r| r[0] == name) {
            let state = if f["expired"].as_bool() == Some(true) {
                "orphaned"
            } else {
                "elsewhere"
            };
            rows.push(vec![
                name,
                state.into(),
                text(&f["owner"]),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
        }
    }
    write_table(out, &rows)?;
    Ok(())
}

/// `health`: the server's health report, as a summary or JSON.
///
/// # Errors
///
/// [`ClientError`].
pub async fn health(remote: &Remote, json: bool, out: &mut impl Write) -> Result<(), ClientError> {
    let h = remote.get_json("/health").await?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&h).unwrap_or_default()
        )?;
        return Ok(());
    }
    let rows = vec![
        vec!["SUPERVISOR".to_owned(), text(&h["supervisor"])],
        vec![
            "DOWN".to_owned(),
            h["down"].as_str().unwrap_or("no").to_owned(),
        ],
        vec!["SESSIONS".to_owned(), text(&h["total"])],
        vec!["RUNNING".to_owned(), text(&h["running"])],
        vec!["RESTARTING".to_owned(), text(&h["restarting"])],
        vec!["HIBERNATED".to_owned(), text(&h["hibernated"])],
        vec!["FAILED".to_owned(), text(&h["failed"])],
        vec!["RESTARTS".to_owned(), text(&h["restarts"])],
        vec!["TURNS".to_owned(), text(&h["turns"])],
        vec![
            "COST".to_owned(),
            format!("${:.4}", h["cost"]["cost_usd"].as_f64().unwrap_or(0.0)),
        ],
        vec!["GATEWAY".to_owned(), gateway_summary(&h["gateway"])],
    ];
    write_table(out, &rows)?;
    Ok(())
}

/// `on (VAR → upstream, N requests)` or `off`, from `/health`'s `gateway`.
fn gateway_summary(g: &Value) -> String {
    if g.is_null() {
        return "off".to_owned();
    }
    let requests: u64 = g["sessions"]
        .as_object()
        .map(|s| s.values().filter_map(|t| t["requests"].as_u64()).sum())
        .unwrap_or(0);
    format!(
        "on ({} → {}, {requests} requests)",
        text(&g["credential_env"]),
        text(&g["upstream"])
    )
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

fn write_table(out: &mut impl Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, s)| format!("{s:<width$}", width = widths[c]))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

/// Shows a spinner on stderr until [`Spinner::stop`] (only when stdout is a terminal).
struct Spinner(Option<tokio::task::JoinHandle<()>>);

impl Spinner {
    fn start() -> Self {
        if !std::io::stdout().is_terminal() {
            return Self(None);
        }
        Self(Some(tokio::spawn(async {
            let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            for i in 0.. {
                eprint!("\r{} ", frames[i % frames.len()]);
                tokio::time::sleep(Duration::from_millis(80)).await;
            }
        })))
    }

    fn stop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
            eprint!("\r  \r");
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What `query` prints for one frame, as text: text deltas when the CLI streams them, else
/// each assistant message's text.
fn text_of(message: &Message, saw_deltas: &mut bool) -> Option<String> {
    match message {
        Message::StreamEvent(ev) => {
            let t = ev.text_delta()?.to_owned();
            *saw_deltas = true;
            Some(t)
        }
        Message::Assistant(a) if !*saw_deltas => {
            let t = a.message.text();
            (!t.is_empty()).then_some(t)
        }
        _ => None,
    }
}

/// `query` on this machine: an ephemeral session for one prompt, its text streamed to `out` as
/// it arrives (or, with `json`, the turn's frames as JSON lines). The session is stopped by its
/// full recipe at the end.
///
/// # Errors
///
/// [`ClientError::Local`] for a session that cannot start; [`ClientError::Turn`] for a turn that
/// ended in error.
pub async fn query_local(
    prompt: &str,
    agent: &Agent,
    json: bool,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    let mut spinner = Spinner::start();
    let mut stream = claude_supervisor::query_stream(prompt, agent).await?;
    let mut saw_deltas = false;
    let mut result = None;
    while let Some(item) = stream.next().await {
        let message = item.map_err(|e| ClientError::Turn(e.to_string()))?;
        if json {
            spinner.stop();
            writeln!(
                out,
                "{}",
                serde_json::to_string(&message).unwrap_or_default()
            )?;
        } else if let Some(t) = text_of(&message, &mut saw_deltas) {
            spinner.stop();
            write!(out, "{t}")?;
            out.flush()?;
        }
        if let Message::Result(r) = message {
            result = Some(r);
        }
    }
    spinner.stop();
    if !json {
        writeln!(out)?;
    }
    match result {
        Some(r) if r.is_error => Err(ClientError::Turn(
            r.errors().join("; ").chars().take(2000).collect::<String>()
                + r.result.as_deref().unwrap_or(""),
        )),
        Some(_) => Ok(()),
        None => Err(ClientError::Turn("the turn ended without a result".into())),
    }
}

/// `query --server URL --session NAME`: a turn of a named session on a running server,
/// streamed over server-sent events (text as it arrives, or with `json` the events as JSON
/// lines).
///
/// # Errors
///
/// [`ClientError`]: the server's error answer, or `Turn` for a turn that ended in error.
pub async fn query_remote(
    remote: &Remote,
    session: &str,
    prompt: &str,
    json: bool,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    let mut spinner = Spinner::start();
    let client = reqwest::Client::new();
    let path = format!("/sessions/{session}/query");
    let url = format!("{}{path}", remote.url.trim_end_matches('/'));
    let answer = remote
        .request(&client, reqwest::Method::POST, &path)
        .header("accept", "text/event-stream")
        .json(&serde_json::json!({"prompt": prompt}))
        .send()
        .await
        .map_err(|source| ClientError::Unreachable {
            url: url.clone(),
            source,
        })?;
    if !answer.status().is_success() {
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        return Err(api_error(&url, status, &body));
    }
    let mut bytes = answer.bytes_stream();
    let mut buffer = String::new();
    let mut saw_deltas = false;
    let mut outcome = None;
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk.map_err(|source| ClientError::Unreachable {
            url: url.clone(),
            source,
        })?;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut event, mut data) = (String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if event.is_empty() {
                continue;
            }
            if json {
                spinner.stop();
                let data: Value =
                    serde_json::from_str(&data).unwrap_or(Value::String(data.clone()));
                writeln!(out, "{}", serde_json::json!({"event": event, "data": data}))?;
            } else if let Ok(message) = serde_json::from_str::<Message>(&data)
                && let Some(t) = text_of(&message, &mut saw_deltas)
            {
                spinner.stop();
                write!(out, "{t}")?;
                out.flush()?;
            }
            match event.as_str() {
                "done" => {
                    outcome = Some(serde_json::from_str::<Value>(&data).unwrap_or(Value::Null))
                }
                "error" => {
                    let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                    return Err(ClientError::Turn(
                        v["error"]["message"].as_str().unwrap_or(&data).to_owned(),
                    ));
                }
                _ => {}
            }
        }
    }
    spinner.stop();
    if !json {
        writeln!(out)?;
    }
    match outcome {
        Some(done) if done["is_error"].as_bool() == Some(true) => Err(ClientError::Turn(
            done["text"]
                .as_str()
                .unwrap_or("the turn ended in error")
                .to_owned(),
        )),
        Some(_) => Ok(()),
        None => Err(ClientError::BadAnswer {
            url,
            detail: "the event stream ended before the turn did".into(),
        }),
    }
}

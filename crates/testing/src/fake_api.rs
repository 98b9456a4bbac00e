//! A fake Anthropic Messages API on loopback, so the real Claude Code CLI runs offline.
//!
//! [`FakeApi::start`] serves on `127.0.0.1` (a free port) from its own thread and runtime, so a
//! test may block its own thread (or runtime) without starving the server. Point the CLI at
//! [`FakeApi::base_url`] (see [`crate::real_cli::SafeEnv`]).
//!
//! # What it answers
//!
//! `POST /v1/messages` (any query string, e.g. `?beta=true`) is classified as
//! [`RequestKind::Main`] when it offers `tools` (the agent loop always does) and
//! [`RequestKind::Side`] otherwise. Main requests are answered, in this order, by:
//!
//! 1. the queue of one-shot replies ([`FakeApi::push_reply`]);
//! 2. the rules, first match wins ([`FakeApi::on_user_text`], [`FakeApi::add_rule`]);
//! 3. the default behaviour ([`default_reply`]), the keywords of the recorded transcripts:
//!    a `tool_result` in the last message → `tool said: <output>`; `ERROR500` → HTTP 500;
//!    `SLOW` → 20 pieces 0.5 s apart; `RUN_TOOL[: command]` → a `Bash` tool call
//!    (`echo hi-from-tool` when no command is given); anything else → `mock reply to: <prompt>`.
//!
//! Side requests get a short text answer ([`side_reply`]). `POST /v1/messages/count_tokens`
//! answers `{"input_tokens": N}`. Anything else is answered 404 and logged as
//! [`RequestKind::Other`].
//!
//! Streaming requests (`"stream": true`) get SSE (`message_start`, `content_block_start`,
//! `content_block_delta` with `text_delta`/`input_json_delta`, `content_block_stop`,
//! `message_delta`, `message_stop`); others get one JSON message.
//!
//! Every request is logged ([`FakeApi::requests`]) before it is answered. The server stops when
//! the [`FakeApi`] is dropped (streams in flight are cut).

mod record;
mod reply;

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

pub use record::{
    RecordedRequest, RequestKind, ToolResult, assistant_texts_of, latest_tool_results,
    latest_user_text, user_texts_of,
};
pub use reply::Reply;

use reply::{RenderCtx, Rendered, render};

/// A rule: looks at a main request and maybe answers it.
type RuleFn = dyn Fn(&RecordedRequest) -> Option<Reply> + Send + Sync;

#[derive(Default)]
struct State_ {
    requests: Vec<RecordedRequest>,
    queue: VecDeque<Reply>,
    rules: Vec<Arc<RuleFn>>,
    /// When set, only requests with this `x-api-key` are answered (as the real API would).
    api_key: Option<String>,
}

struct Shared {
    state: Mutex<State_>,
    logged: Notify,
    stop: watch::Receiver<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State_> {
        // A panicking rule must not make every later request fail too.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The fake Messages API. See the [module docs](self).
pub struct FakeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeApi")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeApi {
    /// Starts a fake API on `127.0.0.1` with a free port.
    ///
    /// # Panics
    /// If no loopback port can be bound or the server thread cannot start.
    ///
    /// # Cancel safety
    /// Nothing awaits inside; dropping the future before it is polled starts nothing.
    pub async fn start() -> FakeApi {
        FakeApi::start_blocking()
    }

    /// Like [`FakeApi::start`], for tests without an async runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound or the server thread cannot start.
    pub fn start_blocking() -> FakeApi {
        match FakeApi::try_start() {
            Ok(api) => api,
            Err(e) => panic!("fake API: cannot start on 127.0.0.1: {e}"),
        }
    }

    /// Starts a fake API, or says why it could not.
    pub fn try_start() -> std::io::Result<FakeApi> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(State_::default()),
            logged: Notify::new(),
            stop: stop_rx.clone(),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(256 * 1024 * 1024))
            .with_state(shared.clone());
        let thread = std::thread::Builder::new()
            .name(format!("fake-api-{}", addr.port()))
            .spawn(move || {
                let mut stop_rx = stop_rx;
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("fake API: cannot register listener: {e}");
                            return;
                        }
                    };
                    tokio::select! {
                        res = axum::serve(listener, app) => {
                            if let Err(e) = res {
                                tracing::error!("fake API: server error: {e}");
                            }
                        }
                        _ = stop_rx.wait_for(|stopped| *stopped) => {}
                    }
                });
                // Dropping the runtime here cancels every connection task and closes the sockets.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(FakeApi {
            addr,
            shared,
            stop: stop_tx,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`, the value for `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on answers only requests whose `x-api-key` is `key`; any other gets 401
    /// `authentication_error`, as the real API answers a wrong key (the request is still
    /// recorded, with reply `401`).
    pub fn require_api_key(&self, key: impl Into<String>) {
        self.shared.lock().api_key = Some(key.into());
    }

    /// Queues a one-shot reply for the next main request (before rules and defaults).
    pub fn push_reply(&self, reply: Reply) {
        self.shared.lock().queue.push_back(reply);
    }

    /// How many one-shot replies are still queued.
    pub fn queued_replies(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// A rule: a main request whose latest user text contains `needle` gets `reply` (each time).
    pub fn on_user_text(&self, needle: impl Into<String>, reply: Reply) {
        let needle = needle.into();
        self.add_rule(move |req| {
            req.latest_user_text()
                .filter(|t| t.contains(&needle))
                .map(|_| reply.clone())
        });
    }

    /// A rule for main requests: return `Some(reply)` to answer, `None` to pass on to the next
    /// rule (then to the default behaviour). Rules are tried in the order they were added.
    pub fn add_rule(
        &self,
        rule: impl Fn(&RecordedRequest) -> Option<Reply> + Send + Sync + 'static,
    ) {
        self.shared.lock().rules.push(Arc::new(rule));
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The main requests (`POST /v1/messages` with tools) so far, oldest first.
    pub fn main_requests(&self) -> Vec<RecordedRequest> {
        self.requests_of(RequestKind::Main)
    }

    /// The requests of one kind so far, oldest first.
    pub fn requests_of(&self, kind: RequestKind) -> Vec<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.kind == kind)
            .cloned()
            .collect()
    }

    /// The newest main request.
    pub fn last_main_request(&self) -> Option<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .rev()
            .find(|r| r.kind == RequestKind::Main)
            .cloned()
    }

    /// Empties the request log (the queue and rules stay).
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Waits until a logged request satisfies `pred` and returns the first such one, or `None`
    /// after `timeout`. Requests are logged when they arrive, before they are answered.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future only stops waiting.
    pub async fn wait_for_request(
        &self,
        timeout: Duration,
        pred: impl Fn(&RecordedRequest) -> bool,
    ) -> Option<RecordedRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.logged.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(found) = self.shared.lock().requests.iter().find(|r| pred(r)) {
                return Some(found.clone());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// A readable dump of the log (kind, path, model, stream, latest user text, reply) for
    /// failure messages.
    pub fn describe_log(&self) -> String {
        self.shared
            .lock()
            .requests
            .iter()
            .map(|r| {
                format!(
                    "#{} {:?} {} {}{} model={:?} stream={} tools={} last_user={:?} -> {}\n",
                    r.seq,
                    r.kind,
                    r.method,
                    r.path,
                    r.query
                        .as_deref()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default(),
                    r.model(),
                    r.is_stream(),
                    r.tool_names().len(),
                    r.latest_user_text(),
                    r.reply
                )
            })
            .collect()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The default answer to a main request (the keywords of the recorded transcripts).
pub fn default_reply(body: &Value) -> Reply {
    let results = latest_tool_results(body);
    if !results.is_empty() {
        let outputs: Vec<String> = results.into_iter().map(|r| r.content).collect();
        return Reply::text(format!("tool said: {}", outputs.join("\n")));
    }
    let Some(prompt) = latest_user_text(body) else {
        return Reply::text("mock reply");
    };
    if prompt.contains("ERROR500") {
        Reply::http_error(500, "fake API: ERROR500 requested")
    } else if prompt.contains("SLOW") {
        Reply::slow(
            format!("mock reply to: {prompt}"),
            20,
            Duration::from_millis(500),
        )
    } else if let Some(pos) = prompt.find("RUN_TOOL") {
        let rest = prompt[pos + "RUN_TOOL".len()..].trim_start();
        let command = rest
            .strip_prefix(':')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .unwrap_or("echo hi-from-tool");
        Reply::bash(command)
    } else {
        Reply::text(format!("mock reply to: {prompt}"))
    }
}

/// The answer to a side request (a `POST /v1/messages` without tools).
///
/// The CLI's side requests ask for a short piece of text (a title, a summary, a check); a short
/// neutral text satisfies them. Requests whose system prompt asks for JSON get `{}`-shaped JSON.
pub fn side_reply(body: &Value) -> Reply {
    let system = match body.get("system") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    let lower = system.to_lowercase();
    if lower.contains("json") && lower.contains("title") {
        Reply::text(r#"{"title": "Fake session"}"#)
    } else if lower.contains("json") {
        Reply::text("{}")
    } else {
        Reply::text("fake side reply")
    }
}

fn estimate_tokens(raw: &[u8]) -> u64 {
    (raw.len() as u64 / 4).max(1)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let path = uri.path().to_owned();
    let kind = match (&method, path.as_str()) {
        (&Method::POST, "/v1/messages") => {
            let has_tools = body
                .get("tools")
                .and_then(Value::as_array)
                .is_some_and(|t| !t.is_empty());
            if has_tools {
                RequestKind::Main
            } else {
                RequestKind::Side
            }
        }
        (&Method::POST, "/v1/messages/count_tokens") => RequestKind::CountTokens,
        _ => RequestKind::Other,
    };
    let mut recorded = RecordedRequest {
        seq: 0,
        method: method.to_string(),
        path,
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body,
        kind,
        reply: String::new(),
    };
    let tokens = estimate_tokens(&raw);
    let response = {
        let mut state = shared.lock();
        recorded.seq = state.requests.len();
        let refused = state.api_key.as_deref().is_some_and(|key| {
            headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .is_none_or(|sent| sent != key)
        });
        let response = match kind {
            _ if refused => {
                recorded.reply = "401".to_owned();
                Answer::Json(
                    401,
                    json!({ "type": "error", "error": { "type": "authentication_error",
                            "message": "invalid x-api-key" } }),
                )
            }
            RequestKind::CountTokens => {
                recorded.reply = format!("input_tokens {tokens}");
                Answer::Json(200, json!({ "input_tokens": tokens }))
            }
            RequestKind::Other => {
                recorded.reply = "404".to_owned();
                Answer::Json(
                    404,
                    json!({ "type": "error", "error": { "type": "not_found_error",
                            "message": format!("fake API: no route for {method} {}", uri.path()) } }),
                )
            }
            RequestKind::Main | RequestKind::Side => {
                let reply = if kind == RequestKind::Side {
                    side_reply(&recorded.body)
                } else if let Some(reply) = state.queue.pop_front() {
                    reply
                } else {
                    let rules = state.rules.clone();
                    // Rules run without the lock held, so a rule may look at the fake freely.
                    drop(state);
                    let chosen = rules.iter().find_map(|rule| rule(&recorded));
                    state = shared.lock();
                    recorded.seq = state.requests.len();
                    chosen.unwrap_or_else(|| default_reply(&recorded.body))
                };
                recorded.reply = reply.summary();
                let model = recorded.model().unwrap_or("claude-fake").to_owned();
                Answer::Rendered(render(
                    &reply,
                    &RenderCtx {
                        model: &model,
                        stream: recorded.is_stream(),
                        input_tokens: tokens,
                    },
                ))
            }
        };
        tracing::debug!(
            seq = recorded.seq,
            kind = ?recorded.kind,
            path = %recorded.path,
            reply = %recorded.reply,
            "fake API request"
        );
        state.requests.push(recorded);
        response
    };
    shared.logged.notify_waiters();
    let request_id = format!("req_fake_{}", uuid::Uuid::new_v4().simple());
    match response {
        Answer::Json(status, value) => build(
            status,
            "application/json",
            &request_id,
            Body::from(value.to_string()),
        ),
        Answer::Rendered(rendered) => {
            let Rendered {
                status,
                content_type,
                chunks,
            } = rendered;
            let body = if chunks.iter().all(|(pause, _)| pause.is_zero()) {
                let all: Vec<u8> = chunks.into_iter().flat_map(|(_, b)| b.to_vec()).collect();
                Body::from(all)
            } else {
                Body::from_stream(paced(chunks, shared.stop.clone()))
            };
            build(status, content_type, &request_id, body)
        }
    }
}

enum Answer {
    Json(u16, Value),
    Rendered(Rendered),
}

/// The chunks as a stream, each after its pause; ends early when the fake stops.
fn paced(
    chunks: Vec<(Duration, Bytes)>,
    stop: watch::Receiver<bool>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::unfold(
        (chunks.into_iter(), stop),
        |(mut chunks, mut stop)| async move {
            let (pause, bytes) = chunks.next()?;
            if !pause.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return None,
                }
            }
            Some((Ok(bytes), (chunks, stop)))
        },
    )
}

fn build(status: u16, content_type: &str, request_id: &str, body: Body) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, content_type)
        .header("request-id", request_id);
    if content_type == "text/event-stream" {
        builder = builder.header(header::CACHE_CONTROL, "no-cache");
    }
    if status >= 400 {
        builder = builder.header("x-should-retry", "false");
    }
    builder.body(body).unwrap_or_else(|e| {
        let mut resp = Response::new(Body::from(format!("fake API: bad response: {e}")));
        *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        resp
    })
}

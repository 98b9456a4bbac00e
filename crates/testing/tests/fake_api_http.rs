//! The fake Messages API over real HTTP: SSE shape, tool calls and their follow-up, error modes,
//! the reply order (queue, rules, default), side requests, count_tokens and the request log.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use claude_testing::fake_api::{FakeApi, Reply, RequestKind, user_texts_of};
use serde_json::{Value, json};

/// A response as read off the socket.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// `(event name, data)` of every SSE event.
    fn events(&self) -> Vec<(String, Value)> {
        self.body
            .split("\n\n")
            .filter(|chunk| !chunk.trim().is_empty())
            .map(|chunk| {
                let mut name = String::new();
                let mut data = Value::Null;
                for line in chunk.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = n.to_owned();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data = serde_json::from_str(d).expect("SSE data is JSON");
                    }
                }
                (name, data)
            })
            .collect()
    }
}

/// Sends one HTTP/1.0 request (the server closes the connection after the body).
fn send(api: &FakeApi, method: &str, path: &str, body: Option<&Value>) -> Resp {
    let mut stream = TcpStream::connect(api.addr()).expect("connect to the fake");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let payload = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\nx-api-key: sk-test\r\nanthropic-version: 2023-06-01\r\nContent-Length: {}\r\n\r\n{payload}",
        api.addr(),
        payload.len()
    );
    stream.write_all(request.as_bytes()).expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body split");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn main_body(messages: Value, stream: bool) -> Value {
    json!({
        "model": "claude-test-model",
        "max_tokens": 1000,
        "stream": stream,
        "system": [{"type": "text", "text": "You are a test."}],
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
        "messages": messages,
    })
}

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

fn text_of_events(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "text_delta")
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect()
}

#[test]
fn streaming_text_reply_has_the_sse_shape() {
    let api = FakeApi::start_blocking();
    let resp = send(
        &api,
        "POST",
        "/v1/messages?beta=true",
        Some(&main_body(user("hello"), true)),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    let events = resp.events();
    for (name, data) in &events {
        assert_eq!(
            data["type"],
            name.as_str(),
            "event name and data type agree"
        );
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names[1], "content_block_start");
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert!(
        names[2..names.len() - 3]
            .iter()
            .all(|n| *n == "content_block_delta")
    );
    assert_eq!(events[0].1["message"]["model"], "claude-test-model");
    assert_eq!(events[0].1["message"]["role"], "assistant");
    assert_eq!(events[1].1["content_block"]["type"], "text");
    assert_eq!(text_of_events(&events), "mock reply to: hello");
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().is_some());
}

#[test]
fn tool_use_then_tool_result_follow_up() {
    let api = FakeApi::start_blocking();
    let resp = send(
        &api,
        "POST",
        "/v1/messages",
        Some(&main_body(user("RUN_TOOL: echo from-bash"), true)),
    );
    let events = resp.events();
    let starts: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| &d["content_block"])
        .collect();
    assert_eq!(starts.len(), 2, "a text block, then the tool_use block");
    assert_eq!(starts[0]["type"], "text");
    assert_eq!(starts[1]["type"], "tool_use");
    assert_eq!(starts[1]["name"], "Bash");
    let tool_id = starts[1]["id"].as_str().expect("tool id").to_owned();
    let partial: String = events
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "input_json_delta")
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    let input: Value = serde_json::from_str(&partial).expect("tool input JSON");
    assert_eq!(input["command"], "echo from-bash");
    let stop = events
        .iter()
        .find(|(n, _)| n == "message_delta")
        .expect("message_delta");
    assert_eq!(stop.1["delta"]["stop_reason"], "tool_use");

    // The follow-up carries the tool_result; answered without streaming, as JSON.
    let follow_up = main_body(
        json!([
            {"role": "user", "content": "RUN_TOOL: echo from-bash"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "I'll run a tool."},
                {"type": "tool_use", "id": tool_id, "name": "Bash", "input": input}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": tool_id, "content": "from-bash", "is_error": false}
            ]}
        ]),
        false,
    );
    let resp = send(&api, "POST", "/v1/messages?beta=true", Some(&follow_up));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let msg = resp.json();
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["content"][0]["text"], "tool said: from-bash");
    assert_eq!(msg["stop_reason"], "end_turn");

    let log = api.requests();
    assert_eq!(log.len(), 2);
    let results = log[1].latest_tool_results();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].tool_use_id, tool_id);
    assert_eq!(results[0].content, "from-bash");
}

#[test]
fn error_modes() {
    let api = FakeApi::start_blocking();

    let resp = send(
        &api,
        "POST",
        "/v1/messages",
        Some(&main_body(user("ERROR500 now"), true)),
    );
    assert_eq!(resp.status, 500);
    assert_eq!(resp.json()["type"], "error");
    assert_eq!(resp.json()["error"]["type"], "api_error");

    api.push_reply(Reply::http_error(429, "slow down"));
    let resp = send(
        &api,
        "POST",
        "/v1/messages",
        Some(&main_body(user("hi"), true)),
    );
    assert_eq!(resp.status, 429);
    assert_eq!(resp.json()["error"]["type"], "rate_limit_error");
    assert_eq!(resp.json()["error"]["message"], "slow down");

    api.push_reply(Reply::sse_error("overloaded now"));
    let resp = send(
        &api,
        "POST",
        "/v1/messages",
        Some(&main_body(user("hi"), true)),
    );
    assert_eq!(resp.status, 200, "an SSE error arrives inside a 200 stream");
    let events = resp.events();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["message_start", "error"]);
    assert_eq!(events[1].1["error"]["type"], "overloaded_error");
    assert_eq!(events[1].1["error"]["message"], "overloaded now");

    // The CLI's non-streaming retry after an SSE error gets the next reply (here the default).
    let resp = send(
        &api,
        "POST",
        "/v1/messages",
        Some(&main_body(user("hi"), false)),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["content"][0]["text"], "mock reply to: hi");

    api.push_reply(Reply::sse_error("overloaded again"));
    let resp = send(
        &api,
        "POST",
        "/v1/messages",
        Some(&main_body(user("hi"), false)),
    );
    assert_eq!(
        resp.status, 529,
        "a non-streaming request gets the error as a status"
    );
}

#[test]
fn queue_then_rules_then_default_and_the_log() {
    let api = FakeApi::start_blocking();
    api.on_user_text("weather", Reply::text("sunny"));
    api.add_rule(|req| (req.model() == Some("special-model")).then(|| Reply::text("special")));
    api.push_reply(Reply::text("queued one"));
    assert_eq!(api.queued_replies(), 1);

    let ask = |text: &str| {
        send(
            &api,
            "POST",
            "/v1/messages",
            Some(&main_body(user(text), false)),
        )
        .json()["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(ask("what weather?"), "queued one", "the queue comes first");
    assert_eq!(api.queued_replies(), 0);
    assert_eq!(ask("what weather?"), "sunny", "then the rules");
    assert_eq!(
        ask("anything else"),
        "mock reply to: anything else",
        "then the default"
    );
    let mut special = main_body(user("x"), false);
    special["model"] = json!("special-model");
    let resp = send(&api, "POST", "/v1/messages", Some(&special));
    assert_eq!(resp.json()["content"][0]["text"], "special");
    assert_eq!(resp.json()["model"], "special-model");

    // A side request (no tools) is told apart and answered with text.
    let side = json!({"model": "claude-haiku-test", "max_tokens": 10,
                      "messages": [{"role": "user", "content": "summarise"}]});
    let resp = send(&api, "POST", "/v1/messages?beta=true", Some(&side));
    assert_eq!(resp.status, 200);
    assert!(
        resp.json()["content"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    let resp = send(
        &api,
        "POST",
        "/v1/messages/count_tokens?beta=true",
        Some(&side),
    );
    assert_eq!(resp.status, 200);
    assert!(resp.json()["input_tokens"].as_u64().is_some_and(|n| n > 0));

    let resp = send(&api, "GET", "/v1/models", None);
    assert_eq!(resp.status, 404);

    let log = api.requests();
    let kinds: Vec<RequestKind> = log.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            RequestKind::Main,
            RequestKind::Main,
            RequestKind::Main,
            RequestKind::Main,
            RequestKind::Side,
            RequestKind::CountTokens,
            RequestKind::Other,
        ]
    );
    assert_eq!(
        log.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (0..7).collect::<Vec<_>>()
    );
    assert_eq!(log[4].model(), Some("claude-haiku-test"));
    assert_eq!(log[4].query.as_deref(), Some("beta=true"));
    assert_eq!(log[4].path, "/v1/messages");
    assert_eq!(log[0].header("x-api-key"), Some("sk-test"));
    assert_eq!(log[0].system_text().as_deref(), Some("You are a test."));
    assert_eq!(log[0].tool_names(), ["Bash"]);
    assert!(!log[0].is_stream());
    assert_eq!(log[6].method, "GET");
    assert_eq!(api.main_requests().len(), 4);
    assert_eq!(api.requests_of(RequestKind::Side).len(), 1);
    let last = api.last_main_request().expect("last main");
    assert_eq!(last.seq, 3);
    assert_eq!(user_texts_of(&last), ["x"]);
    assert!(api.describe_log().contains("special"));
    api.clear_requests();
    assert!(api.requests().is_empty());
}

#[test]
fn slow_reply_streams_every_piece() {
    let api = FakeApi::start_blocking();
    api.push_reply(Reply::slow("abcdefghij", 5, Duration::from_millis(10)));
    let resp = send(
        &api,
        "POST",
        "/v1/messages",
        Some(&main_body(user("x"), true)),
    );
    let events = resp.events();
    let deltas = events
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "text_delta")
        .count();
    assert_eq!(deltas, 5);
    assert_eq!(text_of_events(&events), "abcdefghij");
    assert_eq!(events.last().map(|(n, _)| n.as_str()), Some("message_stop"));
}

#[test]
fn dropping_the_fake_cuts_a_slow_stream() {
    let api = FakeApi::start_blocking();
    api.push_reply(Reply::slow(
        "x".repeat(1000),
        1000,
        Duration::from_millis(50),
    ));
    let mut stream = TcpStream::connect(api.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let payload = main_body(user("x"), true).to_string();
    write!(
        stream,
        "POST /v1/messages HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    )
    .expect("write");
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("text_delta") {
        let n = stream.read(&mut buf).expect("read the first piece");
        assert!(n > 0, "stream ended before the first piece");
        got.extend_from_slice(&buf[..n]);
    }
    drop(api);
    // The connection closes (EOF or reset) long before the 1000 pieces.
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(!text.contains("message_stop"), "the stream was cut");
    assert!(text.matches("text_delta").count() < 1000);
}

#[tokio::test]
async fn wait_for_request_sees_arrivals() {
    let api = FakeApi::start().await;
    assert!(
        api.wait_for_request(Duration::from_millis(50), |_| true)
            .await
            .is_none(),
        "nothing has arrived"
    );
    let addr = api.addr();
    let body = main_body(user("ping"), false);
    let sender = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        let payload = body.to_string();
        write!(
            s,
            "POST /v1/messages HTTP/1.0\r\nHost: x\r\nContent-Length: {}\r\n\r\n{payload}",
            payload.len()
        )
        .expect("write");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    });
    let seen = api
        .wait_for_request(Duration::from_secs(30), |r| {
            r.latest_user_text().as_deref() == Some("ping")
        })
        .await
        .expect("the request arrives");
    assert_eq!(seen.kind, RequestKind::Main);
    let out = tokio::task::spawn_blocking(move || sender.join().expect("sender"))
        .await
        .expect("join");
    assert!(out.contains("mock reply to: ping"));
}

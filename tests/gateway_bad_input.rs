//! Bad input at the credential gateway, sent straight to its address: a missing, wrong or
//! revoked token is refused with 401, an oversize body with 413, a stalled body with 408, an
//! unreachable upstream with 502, each in the Messages API's error shape; a client that stalls
//! its request's head is cut; the other sessions carry on; and the real key is in no log line
//! (all of this binary's tracing output, at TRACE, is captured), error, metric or report.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use claude_supervisor::{
    ClaudeSupervisor, Credential, GatewayConfig, SessionSpec, SupervisorEvent,
};
use claude_testing::envs::{RealEnv, assert_group_gone};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;

const REAL_KEY: &str = "sk-ant-gateway-test-REAL";
const MAX_BODY: usize = 64 * 1024;

/// Every log line of this test binary (all levels), captured from the global subscriber.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .init();
        buffer
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

/// Fails if `text` (what `what` printed) carries the real key.
fn assert_no_key(what: &str, text: &str) {
    assert!(
        !text.is_empty(),
        "{what} printed nothing (so the check could not fail)"
    );
    assert!(
        !text.contains(REAL_KEY),
        "the real key is in {what}: {text}"
    );
}

/// Every event received so far, in `Debug` form.
fn drain(events: &mut broadcast::Receiver<SupervisorEvent>) -> String {
    let mut all = String::new();
    while let Ok(event) = events.try_recv() {
        all.push_str(&format!("{event:?}\n"));
    }
    all
}

/// Sends `head` (and then nothing) on a fresh connection to the gateway; returns what came
/// back before the gateway closed the connection (within `limit`), or `None` if it was still
/// open by then.
async fn stall(gateway: SocketAddr, head: String, limit: Duration) -> Option<String> {
    let mut stream = TcpStream::connect(gateway).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&got).into_owned())
}

fn token_of(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("the CLI's environ");
    raw.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"ANTHROPIC_API_KEY="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .expect("a session token")
}

/// A Messages request straight to the gateway, with `token` (if any) as `x-api-key`.
async fn post(gateway: SocketAddr, token: Option<&str>, body: String) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{gateway}/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.header("x-api-key", token);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn side_request(text: &str) -> String {
    serde_json::json!({
        "model": "claude-test",
        "max_tokens": 16,
        "messages": [{ "role": "user", "content": text }],
    })
    .to_string()
}

fn assert_api_error(answer: &(u16, Value), status: u16, kind: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_get_the_api_error_shape_and_other_sessions_carry_on() {
    logs();
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .gateway(
            GatewayConfig::new(env.api.base_url(), Credential::ApiKey(REAL_KEY.into()))
                .max_body_bytes(MAX_BODY),
        )
        .session(SessionSpec::new("a", env.options().build().unwrap()))
        .session(SessionSpec::new("b", env.options().build().unwrap()))
        .start()
        .await
        .unwrap();
    let mut events = tree.events();
    let gateway = tree.gateway_addr().unwrap();
    let a = tree.session("a").unwrap();
    let b = tree.session("b").unwrap();
    let (pid_a, pid_b) = (
        a.health().await.unwrap().pid.unwrap(),
        b.health().await.unwrap().pid.unwrap(),
    );
    let (token_a, token_b) = (token_of(pid_a), token_of(pid_b));
    assert_ne!(token_a, token_b, "each session has its own token");

    // Valid tokens work straight at the gateway (so the refusals below are about the token).
    let ok = post(gateway, Some(&token_b), side_request("hello from b")).await;
    assert_eq!(ok.0, 200, "{}", ok.1);
    let before = env.api.requests().len();

    // No token; a wrong one; one of the right shape with a forged secret; the real key itself.
    assert_api_error(
        &post(gateway, None, side_request("x")).await,
        401,
        "authentication_error",
    );
    assert_api_error(
        &post(gateway, Some("sk-ant-wrong"), side_request("x")).await,
        401,
        "authentication_error",
    );
    let (id_part, secret) = token_b.rsplit_once('-').unwrap();
    let forged = format!("{id_part}-{}", "0".repeat(secret.len()));
    assert_api_error(
        &post(gateway, Some(&forged), side_request("x")).await,
        401,
        "authentication_error",
    );
    assert_api_error(
        &post(gateway, Some(REAL_KEY), side_request("x")).await,
        401,
        "authentication_error",
    );

    // A terminated session's token is revoked.
    tree.terminate_session("b").await.unwrap();
    assert_group_gone(pid_b as i32).await;
    assert_api_error(
        &post(gateway, Some(&token_b), side_request("x")).await,
        401,
        "authentication_error",
    );
    assert!(!tree.gateway_stats().unwrap().sessions.contains_key("b"));

    // An oversize body, with a valid token.
    let big = side_request(&"x".repeat(MAX_BODY + 1));
    assert_api_error(
        &post(gateway, Some(&token_a), big).await,
        413,
        "request_too_large",
    );
    assert_eq!(
        env.api.requests().len(),
        before,
        "no refused request reached the upstream"
    );
    let stats = tree.gateway_stats().unwrap();
    assert_eq!(stats.unauthorized, 5, "{stats:?}");
    assert_eq!(stats.sessions["a"].status_4xx, 1, "{stats:?}");

    // The other session is unaffected: it converses through the gateway as before.
    let out = a.ask("still here?").await.unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    assert_eq!(
        env.api.last_main_request().unwrap().header("x-api-key"),
        Some(REAL_KEY)
    );
    // What the tree reports: the stats (as the JSON a metrics endpoint would serve), the
    // health report, every event, the turn's output.
    let stats = serde_json::to_string(&tree.gateway_stats().unwrap()).unwrap();
    assert_no_key("the gateway stats", &stats);
    assert!(stats.contains("\"unauthorized\":5"), "{stats}");
    assert_no_key("the health report", &format!("{:?}", tree.health().await));
    assert_no_key("the tree's events", &drain(&mut events));
    assert_no_key("the turn's output", &format!("{out:?}"));
    tree.shutdown().await;
    assert_group_gone(pid_a as i32).await;

    let logs = captured();
    assert!(
        logs.contains("gateway refused a request without a valid session token"),
        "the refusals were logged (so the check below can fail)"
    );
    assert!(logs.contains("oversize request body"));
    assert_no_key("the captured logs", &logs);
    assert!(!logs.contains(&token_a), "a session token is in a log line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_is_a_502_in_the_api_error_shape() {
    logs();
    let Some(env) = RealEnv::start().await else {
        return;
    };
    // A loopback port nobody listens on (bound, then released).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .gateway(GatewayConfig::new(
            format!("http://{closed}"),
            Credential::Bearer(REAL_KEY.into()),
        ))
        .session(SessionSpec::new("lonely", env.options().build().unwrap()))
        .start()
        .await
        .unwrap();
    let gateway = tree.gateway_addr().unwrap();
    let lonely = tree.session("lonely").unwrap();
    let pid = lonely.health().await.unwrap().pid.unwrap();
    let token = token_of(pid);
    let answer = post(gateway, Some(&token), side_request("anyone?")).await;
    assert_api_error(&answer, 502, "api_error");
    assert_no_key("the 502's body", &answer.1.to_string());
    let stats = tree.gateway_stats().unwrap();
    let traffic = &stats.sessions["lonely"];
    assert!(
        traffic.upstream_errors >= 1 && traffic.status_5xx >= 1,
        "{stats:?}"
    );
    tree.shutdown().await;
    assert_group_gone(pid as i32).await;
    let logs = captured();
    assert!(logs.contains("could not reach the upstream API"));
    assert_no_key("the captured logs", &logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_are_cut_stalled_bodies_get_408_and_a_real_turn_goes_through_meanwhile() {
    logs();
    let Some(env) = RealEnv::start().await else {
        return;
    };
    // Short enough for a test, long enough that the turn below runs while the stalled
    // clients hold their connections.
    const HEAD: Duration = Duration::from_secs(2);
    const BODY: Duration = Duration::from_secs(2);
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .gateway(
            GatewayConfig::new(env.api.base_url(), Credential::ApiKey(REAL_KEY.into()))
                .header_read_timeout(HEAD)
                .body_idle_timeout(BODY),
        )
        .session(SessionSpec::new("talker", env.options().build().unwrap()))
        .session(SessionSpec::new("staller", env.options().build().unwrap()))
        .start()
        .await
        .unwrap();
    let gateway = tree.gateway_addr().unwrap();
    let talker = tree.session("talker").unwrap();
    let staller = tree.session("staller").unwrap();
    let staller_pid = staller.health().await.unwrap().pid.unwrap();
    let staller_token = token_of(staller_pid);
    let limit = (HEAD + BODY) * 4;

    // Half a request line; a full line and half the headers; nothing at all.
    let half_line = tokio::spawn(stall(gateway, "POST /v1/mess".into(), limit));
    let half_headers = tokio::spawn(stall(
        gateway,
        format!("POST /v1/messages HTTP/1.1\r\nhost: {gateway}\r\nx-api-key: "),
        limit,
    ));
    let silent = tokio::spawn(stall(gateway, String::new(), limit));
    // Whole heads, then half a body: with the staller's token, and with none.
    let body_head = |token: Option<&str>| {
        let key = token
            .map(|t| format!("x-api-key: {t}\r\n"))
            .unwrap_or_default();
        format!(
            "POST /v1/messages HTTP/1.1\r\nhost: {gateway}\r\n{key}content-type: application/json\r\ncontent-length: 500\r\n\r\n{{\"model\":"
        )
    };
    let stalled_body = tokio::spawn(stall(gateway, body_head(Some(&staller_token)), limit));
    let anonymous_body = tokio::spawn(stall(gateway, body_head(None), limit));

    // Meanwhile a real session converses through the same gateway.
    let out = talker
        .ask("are you there through the stalls?")
        .await
        .unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    let seen_by_upstream = env.api.requests().len();
    assert!(seen_by_upstream >= 1);

    for (what, cut) in [
        ("half a request line", half_line),
        ("half the headers", half_headers),
        ("a silent connection", silent),
    ] {
        let answer = cut.await.unwrap();
        let answer = answer.unwrap_or_else(|| panic!("{what}: the connection was not cut"));
        assert!(
            !answer.contains(" 200 "),
            "{what}: the gateway answered a request it never got: {answer}"
        );
    }
    let answer = stalled_body
        .await
        .unwrap()
        .expect("the stalled body's connection was closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let json = &answer[answer.find("\r\n\r\n").expect("a body") + 4..];
    let json: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(json["type"], "error", "{json}");
    assert_eq!(json["error"]["type"], "timeout_error", "{json}");
    let answer = anonymous_body
        .await
        .unwrap()
        .expect("refused at once, the connection closed");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    // Nothing reached the upstream for them; only what authenticated is counted for a session.
    assert_eq!(env.api.requests().len(), seen_by_upstream);
    let stats = tree.gateway_stats().unwrap();
    assert_eq!(stats.unauthorized, 1, "the anonymous body only: {stats:?}");
    let stalled = &stats.sessions["staller"];
    assert_eq!(
        (stalled.requests, stalled.status_4xx, stalled.bytes_in),
        (1, 1, 0),
        "the stalled body, refused: {stats:?}"
    );
    let talked = &stats.sessions["talker"];
    assert_eq!(
        talked.requests as usize, seen_by_upstream,
        "the turn's requests only: {stats:?}"
    );
    assert_eq!(talked.status_2xx, talked.requests, "{stats:?}");
    assert_no_key("the gateway stats", &serde_json::to_string(&stats).unwrap());

    let pids = [talker.health().await.unwrap().pid.unwrap(), staller_pid];
    tree.shutdown().await;
    for pid in pids {
        assert_group_gone(pid as i32).await;
    }
    let logs = captured();
    assert!(
        logs.contains("request headers did not arrive in time"),
        "the cut heads were logged"
    );
    assert!(logs.contains("body stalled"), "the stalled body was logged");
    assert_no_key("the captured logs", &logs);
    assert!(
        !logs.contains(&staller_token),
        "a session token is in a log line"
    );
}

#[tokio::test]
async fn errors_about_the_credential_never_show_it() {
    logs();
    // A credential no header can carry; an upstream URL with user info (the key in it).
    let Err(bad_credential) = ClaudeSupervisor::builder()
        .cli_path("/nonexistent/claude")
        .gateway(GatewayConfig::new(
            "https://api.anthropic.com",
            Credential::ApiKey(format!("{REAL_KEY}\n")),
        ))
        .start()
        .await
    else {
        panic!("the tree started");
    };
    let Err(bad_upstream) = ClaudeSupervisor::builder()
        .cli_path("/nonexistent/claude")
        .gateway(GatewayConfig::new(
            format!("https://user:{REAL_KEY}@api.anthropic.com"),
            Credential::Bearer(REAL_KEY.into()),
        ))
        .start()
        .await
    else {
        panic!("the tree started");
    };
    let Err(zero_timeout) = ClaudeSupervisor::builder()
        .cli_path("/nonexistent/claude")
        .gateway(
            GatewayConfig::new(
                "https://api.anthropic.com",
                Credential::ApiKey(REAL_KEY.into()),
            )
            .header_read_timeout(Duration::ZERO),
        )
        .start()
        .await
    else {
        panic!("the tree started");
    };
    for error in [&bad_credential, &bad_upstream, &zero_timeout] {
        assert_no_key("an error's Display", &error.to_string());
        assert_no_key("an error's Debug", &format!("{error:?}"));
        assert_no_key("an error's alternate Debug", &format!("{error:#?}"));
    }
    assert!(
        bad_credential.to_string().contains("credential"),
        "{bad_credential}"
    );
    assert!(
        bad_upstream.to_string().contains("user info"),
        "{bad_upstream}"
    );
    assert!(
        zero_timeout.to_string().contains("header read timeout"),
        "{zero_timeout}"
    );
    // (The logs are checked by the tests that make the gateway log: this one may run first.)
    assert!(
        !captured().contains(REAL_KEY),
        "the real key is in a log line"
    );
}

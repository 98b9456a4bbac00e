//! Bad input over HTTP: malformed JSON, unknown and forbidden options, invalid names on every
//! route that takes one, oversize bodies and headers, a missing or wrong bearer token, unknown
//! query fields — each a clear 4xx with `{"error": {"code", "message"}}`, and the server's
//! state (sessions, their states and turns, the tree's totals, the prompts the CLI got) the
//! same after as before. And a config refused at start: a public listen address without a
//! token.

#[path = "support/common.rs"]
mod support;

use claude_supervisor_server::{ConfigError, ServeError};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::Scenario;
use serde_json::json;
use support::{base, done_text, expect_error, fake_config, query_sse, start, state_snapshot};

/// A server with one static session `agent` that has already run one turn, so that a refused
/// request that slipped a turn through (or a session in or out) shows in the snapshot.
async fn server_with_one_turn(
    env: &FakeEnv,
    tune: impl FnOnce(&mut claude_supervisor_server::Config),
) -> claude_supervisor_server::RunningServer {
    let mut config = fake_config(env, &[("agent", &Scenario::new())]);
    tune(&mut config);
    let server = start(config).await;
    let events = query_sse(&base(&server), "agent", "first")
        .await
        .collect()
        .await;
    assert_eq!(done_text(&events).as_deref(), Some("fake reply to: first"));
    // The turn's accounting settles just after its last event: wait for it (bounded), so that
    // the state the tests compare is a settled one.
    let url = base(&server);
    for _ in 0..200 {
        if state_snapshot(&url, None).await["sessions"][0][2] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_options_and_sizes_are_refused_and_change_nothing() {
    let env = FakeEnv::new();
    let server = server_with_one_turn(&env, |c| {
        c.server.max_body_bytes = 512;
        c.server.max_header_bytes = 2048;
    })
    .await;
    let url = base(&server);
    let http = reqwest::Client::new();
    let before = state_snapshot(&url, None).await;
    let prompts_before = env.prompts_received();
    assert_eq!(prompts_before, ["first"]);

    let post = |path: &str, body: &str| {
        http.post(format!("{url}{path}"))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
    };

    // Malformed JSON, on both routes that take a body.
    expect_error(
        post("/sessions", r#"{"name": "new-one","#).await.unwrap(),
        400,
        "malformed_json",
    )
    .await;
    expect_error(
        post("/sessions/agent/query", r#"{"prompt": "#)
            .await
            .unwrap(),
        400,
        "malformed_json",
    )
    .await;
    expect_error(
        post("/sessions/agent/query", "not json at all")
            .await
            .unwrap(),
        400,
        "malformed_json",
    )
    .await;

    // An option that is no session key at all.
    let body = expect_error(
        post("/sessions", r#"{"name": "new-one", "bogus": 1}"#)
            .await
            .unwrap(),
        400,
        "unknown_option",
    )
    .await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("bogus"),
        "the message names the key: {body}"
    );

    // Session keys a client may not set: each widens what the CLI may do.
    for (key, value) in [
        ("permission_mode", json!("bypassPermissions")),
        ("add_dirs", json!(["/"])),
        ("cli_path", json!("/bin/sh")),
        ("env", json!({"ANTHROPIC_BASE_URL": "http://127.0.0.1:1"})),
        ("cwd", json!("/")),
        ("extra_args", json!({"--dangerously-skip-permissions": ""})),
    ] {
        let body = json!({"name": "new-one", key: value}).to_string();
        let answer = expect_error(
            post("/sessions", &body).await.unwrap(),
            403,
            "option_not_allowed",
        )
        .await;
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(key),
            "the message names `{key}`: {answer}"
        );
    }

    // A body over `max_body_bytes`, on both routes that take one (valid JSON otherwise).
    let long = "x".repeat(2048);
    expect_error(
        post(
            "/sessions",
            &json!({"name": "new-one", "append_system_prompt": long}).to_string(),
        )
        .await
        .unwrap(),
        413,
        "body_too_large",
    )
    .await;
    expect_error(
        post(
            "/sessions/agent/query",
            &json!({"prompt": long}).to_string(),
        )
        .await
        .unwrap(),
        413,
        "body_too_large",
    )
    .await;

    // Fields a query does not have, or of the wrong type.
    let answer = expect_error(
        post(
            "/sessions/agent/query",
            r#"{"prompt": "hi", "permission_mode": "plan"}"#,
        )
        .await
        .unwrap(),
        400,
        "invalid_body",
    )
    .await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("permission_mode"),
        "{answer}"
    );
    expect_error(
        post("/sessions/agent/query", r#"{"prompt": 5}"#)
            .await
            .unwrap(),
        400,
        "invalid_body",
    )
    .await;
    expect_error(
        post("/sessions/agent/query", r#"{}"#).await.unwrap(),
        400,
        "invalid_body",
    )
    .await;

    // Headers over `max_header_bytes` (well under hyper's own limit, so ours answers).
    let big = "h".repeat(4096);
    for request in [
        http.get(format!("{url}/sessions")),
        http.post(format!("{url}/sessions/agent/query"))
            .json(&json!({"prompt": "through big headers"})),
        http.post(format!("{url}/sessions"))
            .json(&json!({"name": "via-big-headers"})),
    ] {
        let answer = request.header("x-padding", &big).send().await.unwrap();
        expect_error(answer, 431, "headers_too_large").await;
    }

    assert_eq!(state_snapshot(&url, None).await, before);
    assert_eq!(env.prompts_received(), prompts_before, "no turn ran");
    server.shutdown().await.unwrap();
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_names_are_refused_on_every_route_that_takes_one() {
    let env = FakeEnv::new();
    let server = server_with_one_turn(&env, |_| {}).await;
    let url = base(&server);
    let http = reqwest::Client::new();
    let before = state_snapshot(&url, None).await;
    let prompts_before = env.prompts_received();

    // As they go in a URL path (percent-encoded); each decodes to a name `validate_name`
    // refuses: a path escape, a leading dot, `..` inside, a space, a non-ASCII letter, a slash
    // and one byte too long.
    let too_long = "n".repeat(129);
    let names = [
        "..%2Fetc",
        "..%2F..%2Fetc%2Fpasswd",
        ".hidden",
        "a..b",
        "with%20space",
        "caf%C3%A9",
        "a%2Fb",
        too_long.as_str(),
    ];
    for name in names {
        let routes = [
            http.get(format!("{url}/sessions/{name}")),
            http.delete(format!("{url}/sessions/{name}")),
            http.post(format!("{url}/sessions/{name}/restart")),
            http.post(format!("{url}/sessions/{name}/interrupt")),
            http.post(format!("{url}/sessions/{name}/query"))
                .json(&json!({"prompt": "escape"})),
            http.get(format!("{url}/sessions/{name}/turns/1/events")),
        ];
        for request in routes {
            let answer = request.send().await.unwrap();
            expect_error(answer, 400, "invalid_name").await;
        }
    }
    // The same names (decoded) as the body of `POST /sessions`, and an empty one.
    for name in [
        "../etc",
        "../../etc/passwd",
        ".hidden",
        "a..b",
        "with space",
        "café",
        "a/b",
        "",
        too_long.as_str(),
    ] {
        let answer = http
            .post(format!("{url}/sessions"))
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        expect_error(answer, 400, "invalid_name").await;
    }

    assert_eq!(state_snapshot(&url, None).await, before);
    assert_eq!(env.prompts_received(), prompts_before, "no turn ran");
    // Nothing was made outside the data dir by a name that escaped.
    assert!(!env.dir.path().join("etc").exists());
    server.shutdown().await.unwrap();
    env.assert_all_gone().await;
}

/// The bearer token's variable: unique to this test (and process), so no other test sees it.
fn token_var() -> String {
    format!(
        "CLAUDE_SUPERVISOR_TEST_TOKEN_BAD_INPUT_{}",
        std::process::id()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_token_is_refused_and_the_probes_stay_open() {
    let var = token_var();
    let token = "s3cret-token-for-bad-input-0123456789";
    // SAFETY: `set_var` is unsafe because another thread may read the environment through
    // libc at the same time; the variable is this test's alone and is set before the server
    // that reads it starts, and std's own readers (Command, env::var) take the same lock.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(&var, token);
    }
    let env = FakeEnv::new();
    let mut config = fake_config(&env, &[("agent", &Scenario::new())]);
    config.server.token_env = Some(var);
    let server = start(config).await;
    let url = base(&server);
    let http = reqwest::Client::new();
    let first = http
        .post(format!("{url}/sessions/agent/query"))
        .bearer_auth(token)
        .json(&json!({"prompt": "first"}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let events = support::SseReader::new(first).collect().await;
    assert_eq!(done_text(&events).as_deref(), Some("fake reply to: first"));
    let before = state_snapshot(&url, Some(token)).await;
    let prompts_before = env.prompts_received();

    let wrong = [
        None,
        Some("Bearer not-the-token-at-all-0123456789".to_owned()),
        Some(format!("Bearer {token}x")),
        Some(format!("bearer{token}")),
        Some(format!("Basic {token}")),
        Some("Bearer ".to_owned()),
    ];
    for authorization in &wrong {
        let routes = [
            http.get(format!("{url}/sessions")),
            http.get(format!("{url}/health")),
            http.get(format!("{url}/metrics")),
            http.get(format!("{url}/sessions/agent")),
            http.delete(format!("{url}/sessions/agent")),
            http.post(format!("{url}/sessions"))
                .json(&json!({"name": "intruder"})),
            http.post(format!("{url}/sessions/agent/query"))
                .json(&json!({"prompt": "let me in"})),
            http.post(format!("{url}/sessions/agent/restart")),
            http.post(format!("{url}/sessions/agent/interrupt")),
        ];
        for request in routes {
            let request = match authorization {
                Some(value) => request.header("authorization", value),
                None => request,
            };
            let answer = request.send().await.unwrap();
            assert_eq!(
                answer
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer"),
                "{}",
                answer.url()
            );
            expect_error(answer, 401, "unauthorized").await;
        }
    }
    // The probes need no token.
    for probe in ["/live", "/ready"] {
        let answer = http.get(format!("{url}{probe}")).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{probe}");
    }

    assert_eq!(state_snapshot(&url, Some(token)).await, before);
    assert_eq!(env.prompts_received(), prompts_before, "no turn ran");
    server.shutdown().await.unwrap();
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_listen_address_without_a_token_is_refused_at_start() {
    let env = FakeEnv::new();
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let mut config = fake_config(&env, &[]);
        config.server.listen = listen.parse().unwrap();
        let refused =
            claude_supervisor_server::start(config, std::path::Path::new("public.toml")).await;
        match refused {
            Err(ServeError::Config(ConfigError::Value { key, message, path })) => {
                assert_eq!(key, "server.listen", "{message}");
                assert!(message.contains("token"), "{message}");
                assert_eq!(path, std::path::Path::new("public.toml"));
            }
            Err(other) => panic!("{listen}: another error than `server.listen`: {other}"),
            Ok(server) => panic!(
                "{listen}: served on {} without a token",
                server.local_addr()
            ),
        }
    }
    // No session ran: the refusal came before the tree.
    assert!(env.pids().is_empty());
}

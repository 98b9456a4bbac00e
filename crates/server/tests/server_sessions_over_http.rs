//! The API's sessions over HTTP on fake-claude: list, a two-turn conversation streamed as
//! server-sent events, the same as one JSON answer, start and terminate.

#[path = "support/common.rs"]
mod support;

use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::Scenario;
use serde_json::{Value, json};
use support::{base, done_text, fake_config, query_sse, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_streams_over_sse_and_sessions_come_and_go() {
    let env = FakeEnv::new();
    let server = start(fake_config(&env, &[("agent", &Scenario::new())])).await;
    let url = base(&server);
    let http = reqwest::Client::new();

    let list: Value = http
        .get(format!("{url}/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["sessions"][0]["name"], "agent", "{list}");
    assert_eq!(list["sessions"][0]["state"], "running", "{list}");

    // Two turns over SSE: typed event names, ids `<turn>:<seq>`, `done` last.
    let first = query_sse(&url, "agent", "hello").await.collect().await;
    let names: Vec<&str> = first.iter().map(|e| e.event.as_str()).collect();
    assert!(
        names.contains(&"assistant") && names.contains(&"result"),
        "{names:?}"
    );
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let turn = first[0]
        .id
        .as_deref()
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    for (seq, e) in first.iter().enumerate() {
        assert_eq!(e.id.as_deref(), Some(format!("{turn}:{seq}").as_str()));
    }
    assert_eq!(done_text(&first).as_deref(), Some("fake reply to: hello"));
    let second = query_sse(&url, "agent", "HISTORY?").await.collect().await;
    assert_eq!(done_text(&second).as_deref(), Some(r#"history: ["hello"]"#));

    // The same as one JSON answer.
    let answer: Value = http
        .post(format!("{url}/sessions/agent/query"))
        .json(&json!({"prompt": "again", "stream": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["text"], "fake reply to: again", "{answer}");
    assert_eq!(answer["is_error"], false);

    // A session started over HTTP (the defaults, a client's allowed option), then terminated.
    let started = http
        .post(format!("{url}/sessions"))
        .json(&json!({"name": "user-1", "max_turns": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 201);
    let info: Value = started.json().await.unwrap();
    assert_eq!(info["name"], "user-1");
    let out = query_sse(&url, "user-1", "hi").await.collect().await;
    assert_eq!(done_text(&out).as_deref(), Some("fake reply to: hi"));
    let gone = http
        .delete(format!("{url}/sessions/user-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    let missing = http
        .get(format!("{url}/sessions/user-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let health: Value = http
        .get(format!("{url}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["total"], 1, "{health}");
    assert!(health["turns"].as_u64().unwrap() >= 3, "{health}");
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("claude_turns_total{outcome=\"ok\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("claude_sessions{state=\"running\"} 1"),
        "{metrics}"
    );
    server.shutdown().await.unwrap();
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_a_session_s_environment_never_shows() {
    const SECRET: &str = "sk-ant-test-0123456789-never-show-me";
    let env = FakeEnv::new();
    let mut config = fake_config(&env, &[("agent", &Scenario::new())]);
    config.sessions[0]
        .env
        .insert("ANTHROPIC_API_KEY".into(), SECRET.into());
    let server = start(config).await;
    let url = base(&server);
    let http = reqwest::Client::new();
    let out = query_sse(&url, "agent", "hello").await.collect().await;
    assert_eq!(done_text(&out).as_deref(), Some("fake reply to: hello"));
    for path in [
        "/",
        "/health",
        "/sessions",
        "/sessions/agent",
        "/metrics",
        "/sessions/nope",
        "/openapi.json",
    ] {
        let body = http
            .get(format!("{url}{path}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!body.contains(SECRET), "{path} shows the secret: {body}");
    }
    server.shutdown().await.unwrap();
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_s_launcher_runs_every_cli_through_its_prefix() {
    let env = FakeEnv::new();
    let wrap = env.path("wrap");
    let log = env.path("calls.log");
    claude_testing::write_executable(
        &wrap,
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    let mut config = fake_config(&env, &[("agent", &Scenario::new())]);
    config.launcher =
        Some(serde_json::from_value(json!({"prefix": [wrap.display().to_string()]})).unwrap());
    let server = start(config).await;
    let out = query_sse(&base(&server), "agent", "hello")
        .await
        .collect()
        .await;
    assert_eq!(done_text(&out).as_deref(), Some("fake reply to: hello"));
    let calls = std::fs::read_to_string(&log).expect("the prefix ran");
    assert!(
        calls
            .lines()
            .any(|l| l.contains(env.cli_path().to_str().unwrap())),
        "the CLI went through the prefix: {calls}"
    );
    server.shutdown().await.unwrap();
    env.assert_all_gone().await;
}

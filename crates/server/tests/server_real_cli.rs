//! End to end over HTTP with the real CLI (pinned) and the fake Messages API: a session, a
//! two-turn conversation streamed as server-sent events, a slow turn interrupted, the CLI
//! killed and the next query carrying the history, the session terminated; `/health` and
//! `/metrics` agree with what happened.

#[path = "support/common.rs"]
mod support;

use std::time::Duration;

use claude_supervisor_server::config::StoreKind;
use claude_testing::envs::{RealEnv, assert_group_gone};
use claude_testing::fake_api::user_texts_of;
use serde_json::{Value, json};
use support::{agent, base, done_text, query_sse, start};

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_over_http_survives_an_interrupt_and_a_kill() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let mut config = claude_supervisor_server::Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.store.kind = StoreKind::File;
    config.store.path = Some(env.sandbox.root().join("store"));
    config.supervisor.cli_path = Some(env.cli_path().to_owned());
    config.supervisor.data_dir = Some(env.sandbox.root().join("data"));
    // The CLI talks to the fake API itself: a credential the developer's shell exports must not
    // turn the gateway on here (server_gateway.rs tests the gateway).
    config.gateway.enabled = Some(false);
    let options = env.options().build().unwrap();
    config.defaults = agent("", &options);
    let server = start(config).await;
    let url = base(&server);
    let http = reqwest::Client::new();

    // Start a session over HTTP.
    let started = http
        .post(format!("{url}/sessions"))
        .json(&json!({"name": "agent"}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 201, "{:?}", started.text().await);

    // Two turns over SSE; the second request to the API carries the first turn.
    let first = query_sse(&url, "agent", "my name is Ada")
        .await
        .collect()
        .await;
    let names: Vec<&str> = first.iter().map(|e| e.event.as_str()).collect();
    assert!(
        names.contains(&"system") && names.contains(&"assistant") && names.contains(&"result"),
        "{names:?}"
    );
    assert_eq!(names.last(), Some(&"done"));
    assert!(done_text(&first).is_some(), "{first:?}");
    let second = query_sse(&url, "agent", "what is my name?")
        .await
        .collect()
        .await;
    assert_eq!(second.last().map(|e| e.event.as_str()), Some("done"));
    let sent = user_texts_of(&env.api.last_main_request().unwrap());
    assert!(
        sent.iter().any(|t| t.contains("my name is Ada")),
        "the history: {sent:?}"
    );

    // A slow turn, interrupted over HTTP: its stream ends with the turn's end.
    let mut slow = query_sse(&url, "agent", "SLOW tell me a story").await;
    env.api
        .wait_for_request(Duration::from_secs(60), |r| {
            r.latest_user_text().is_some_and(|t| t.contains("SLOW"))
        })
        .await
        .unwrap();
    let interrupted: Value = http
        .post(format!("{url}/sessions/agent/interrupt"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(interrupted["interrupted"], true, "{interrupted}");
    let mut last = None;
    while let Some(e) = tokio::time::timeout(Duration::from_secs(60), slow.next())
        .await
        .expect("the interrupted turn ends")
    {
        last = Some(e);
    }
    let last = last.expect("events");
    assert!(
        last.event == "done" || last.event == "error",
        "the stream ends with the turn: {last:?}"
    );

    // Kill the CLI: the next query is answered by its replacement, with the history.
    let info: Value = http
        .get(format!("{url}/sessions/agent"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pid = info["pid"].as_u64().expect("a pid") as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_group_gone(pid).await;
    let after = query_sse(&url, "agent", "do you still know my name?")
        .await
        .collect()
        .await;
    assert_eq!(
        after.last().map(|e| e.event.as_str()),
        Some("done"),
        "{after:?}"
    );
    let sent = user_texts_of(&env.api.last_main_request().unwrap());
    assert!(
        sent.iter().any(|t| t.contains("my name is Ada"))
            && sent
                .iter()
                .any(|t| t.contains("do you still know my name?")),
        "the replacement resumed the conversation: {sent:?}"
    );

    // /health and /metrics agree: one session, one restart, four turns that reached the end.
    let health: Value = http
        .get(format!("{url}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["total"], 1, "{health}");
    assert_eq!(health["running"], 1, "{health}");
    assert_eq!(health["restarts"], 1, "{health}");
    assert_eq!(health["sessions"][0]["generation"], 2, "{health}");
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metric(&metrics, "claude_session_restarts_total"), 1.0);
    assert_eq!(metric(&metrics, "claude_sessions{state=\"running\"}"), 1.0);
    let ok = metric(&metrics, "claude_turns_total{outcome=\"ok\"}");
    let errors = metric(&metrics, "claude_turns_total{outcome=\"error\"}");
    assert_eq!(ok + errors, 4.0, "four turns: {metrics}");
    assert!(ok >= 3.0, "{metrics}");
    assert_eq!(metric(&metrics, "claude_turn_duration_seconds_count"), 4.0);

    // Terminated: gone from the list, its CLI stopped.
    let new_pid = health["sessions"][0]["pid"].as_u64().unwrap() as i32;
    let gone = http
        .delete(format!("{url}/sessions/agent"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    assert_group_gone(new_pid).await;
    let list: Value = http
        .get(format!("{url}/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["sessions"], json!([]), "{list}");
    server.shutdown().await.unwrap();
}

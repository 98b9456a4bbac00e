//! With `[server] otlp_endpoint`, the real binary exports its sessions' and turns' spans over
//! OTLP/HTTP: a collector on loopback (an axum route taking `POST /v1/traces`) receives the
//! `session` and `turn` spans of a query, flushed at the latest when the server stops.
#![cfg(feature = "otel")]

#[path = "support/common.rs"]
mod support;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::Scenario;
use support::{done_text, fake_config, free_port, query_sse};

/// A collector that keeps every export's body (protobuf `ExportTraceServiceRequest`).
async fn collector() -> (String, Arc<Mutex<Vec<Bytes>>>) {
    let bodies: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(body);
                // An empty ExportTraceServiceResponse.
                ([("content-type", "application/x-protobuf")], Bytes::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, bodies)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_s_spans_reach_the_collector() {
    let (endpoint, bodies) = collector().await;
    let env = FakeEnv::new();
    let port = free_port();
    let mut config = fake_config(&env, &[("traced-agent", &Scenario::new())]);
    config.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.server.otlp_endpoint = Some(endpoint);
    let file = env.path("server.toml");
    std::fs::write(&file, toml::to_string(&config).unwrap()).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_claude-supervisor"))
        .args(["serve", "--config"])
        .arg(&file)
        .env_remove("CLAUDE_SUPERVISOR_CONFIG")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while !http
            .get(format!("{url}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("ready");
    let out = query_sse(&url, "traced-agent", "hello")
        .await
        .collect()
        .await;
    assert_eq!(done_text(&out).as_deref(), Some("fake reply to: hello"));

    // Stopping flushes the batch exporter.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the server exits")
        .unwrap();
    assert!(status.success(), "{status}");
    let bodies = bodies.lock().unwrap().clone();
    assert!(!bodies.is_empty(), "no export reached the collector");
    let all: Vec<u8> = bodies.iter().flat_map(|b| b.to_vec()).collect();
    for needle in [
        &b"claude-supervisor"[..],
        b"turn",
        b"session",
        b"traced-agent",
    ] {
        assert!(
            contains(&all, needle),
            "`{}` not in the exported spans",
            String::from_utf8_lossy(needle)
        );
    }
    env.assert_all_gone().await;
}

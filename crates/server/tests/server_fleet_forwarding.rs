//! Two server nodes on one real PostgreSQL: a request for a session the other node owns is
//! forwarded to it when its URL is among the node's `peers` (the answer says it was forwarded),
//! and answered `409 owned_elsewhere` naming the owner when it is not; a terminate works from
//! either node.

#[path = "support/common.rs"]
mod support;

use std::time::Duration;

use claude_supervisor_server::config::{FleetSection, StoreKind};
use claude_testing::envs::FakeEnv;
use claude_testing::postgres::TempPostgres;
use serde_json::{Value, json};
use support::{base, done_text, fake_config, query_sse, start};

fn node(
    env: &FakeEnv,
    url: &str,
    id: &str,
    peers: &[(&str, String)],
) -> claude_supervisor_server::Config {
    let mut config = fake_config(env, &[]);
    config.store.kind = StoreKind::Postgres;
    config.store.url = Some(url.to_owned());
    let mut fleet: FleetSection = serde_json::from_value(json!({
        "node_id": id,
        "ttl": "5s",
        "heartbeat": "200ms",
    }))
    .unwrap();
    fleet.peers = peers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    config.fleet = Some(fleet);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_to_the_node_that_does_not_own_the_session_is_answered() {
    let Some(pg) = TempPostgres::start() else {
        return;
    };
    let url = pg.url();
    let (ea, eb) = (FakeEnv::new(), FakeEnv::new());
    let b = start(node(&eb, &url, "b", &[])).await;
    let a = start(node(&ea, &url, "a", &[("b", base(&b))])).await;
    let (url_a, url_b) = (base(&a), base(&b));
    let http = reqwest::Client::new();

    let started = http
        .post(format!("{url_b}/sessions"))
        .json(&json!({"name": "user-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 201);
    let first = query_sse(&url_b, "user-7", "hello").await.collect().await;
    assert_eq!(done_text(&first).as_deref(), Some("fake reply to: hello"));

    // Through a: forwarded to b, which runs it; the conversation is b's.
    let through_a = http
        .post(format!("{url_a}/sessions/user-7/query"))
        .header("accept", "text/event-stream")
        .json(&json!({"prompt": "HISTORY?"}))
        .send()
        .await
        .unwrap();
    assert!(
        through_a
            .headers()
            .contains_key("x-claude-supervisor-forwarded-by"),
        "{:?}",
        through_a.headers()
    );
    let events = support::SseReader::new(through_a).collect().await;
    assert_eq!(done_text(&events).as_deref(), Some(r#"history: ["hello"]"#));
    let info: Value = http
        .get(format!("{url_a}/sessions/user-7"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["node"], "b", "{info}");
    assert!(a.tree().session("user-7").is_none(), "a never ran it");

    // b does not know a's URL: a request there for a session of a's names a.
    let on_a = http
        .post(format!("{url_a}/sessions"))
        .json(&json!({"name": "user-8"}))
        .send()
        .await
        .unwrap();
    assert_eq!(on_a.status(), 201);
    let refused = http
        .post(format!("{url_b}/sessions/user-8/query"))
        .json(&json!({"prompt": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "owned_elsewhere", "{body}");
    assert_eq!(body["error"]["owner"], "a", "{body}");

    // The fleet's list, from either node, names both owners.
    let list: Value = http
        .get(format!("{url_b}/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let owners: Vec<(String, String)> = list["fleet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["owner"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        owners,
        [
            ("user-7".to_owned(), "b".to_owned()),
            ("user-8".to_owned(), "a".to_owned())
        ]
    );

    // Terminated from the node that does not run it: gone on its owner too.
    let gone = http
        .delete(format!("{url_b}/sessions/user-8"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while a.tree().session("user-8").is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a still runs user-8"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    ea.assert_all_gone().await;
    eb.assert_all_gone().await;
}

//! A bounded load on fake-claude: 50 sessions started over `POST /sessions`, then 200
//! concurrent SSE queries spread over them (four per session, queued behind each other). Every
//! query ends with its own `done` or is refused with a clear JSON error; none is lost, mixed up
//! or left hanging; the CLIs got exactly the prompts of the answered queries; and after the
//! shutdown no process is left. Behaviour only: no timing is asserted.

#[path = "support/common.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use claude_testing::envs::FakeEnv;
use serde_json::{Value, json};
use support::{SseReader, base, fake_config, post_query, start};

const SESSIONS: usize = 50;
const QUERIES: usize = 200;

/// How one query ended.
#[derive(Debug)]
enum Outcome {
    /// Its `done`, with its own reply.
    Done,
    /// Refused with a JSON error: status and code.
    Refused(u16, String),
    /// Anything else: lost, cut, mixed up.
    Broken(String),
}

async fn one_query(http: reqwest::Client, url: String, i: usize) -> Outcome {
    let session = format!("load-{}", i % SESSIONS);
    let prompt = format!("query {i}");
    let answer = post_query(&http, &url, &session, &prompt, None).await;
    let status = answer.status().as_u16();
    if status != 200 {
        let text = answer.text().await.unwrap_or_default();
        return match serde_json::from_str::<Value>(&text) {
            Ok(body) if body["error"]["code"].is_string() && status >= 400 => {
                Outcome::Refused(status, body["error"]["code"].as_str().unwrap().to_owned())
            }
            _ => Outcome::Broken(format!("{session}: {status} without a JSON error: {text}")),
        };
    }
    let events = SseReader::new(answer).collect().await;
    let Some(last) = events.last() else {
        return Outcome::Broken(format!("{session}: an empty stream"));
    };
    if last.event != "done" {
        return Outcome::Broken(format!(
            "{session}: ended on `{}`: {}",
            last.event, last.data
        ));
    }
    let expected = format!("fake reply to: {prompt}");
    if last.json()["text"] != expected.as_str() || last.json()["is_error"] != false {
        return Outcome::Broken(format!("{session}: `{prompt}` answered {}", last.data));
    }
    Outcome::Done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_queries_over_fifty_sessions_all_end_and_nothing_is_left() {
    let env = FakeEnv::new();
    let mut config = fake_config(&env, &[]);
    // Not what this test measures.
    config.server.rate_limit_per_second = 0;
    let server = start(config).await;
    let url = base(&server);
    let http = reqwest::Client::new();

    // 50 sessions, started concurrently over HTTP.
    let starts = (0..SESSIONS).map(|i| {
        let http = http.clone();
        let url = url.clone();
        async move {
            http.post(format!("{url}/sessions"))
                .json(&json!({"name": format!("load-{i}")}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let started = tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(starts))
        .await
        .expect("50 sessions start within 120 s");
    assert!(started.iter().all(|s| *s == 201), "{started:?}");

    // 200 queries at once, four per session.
    let tasks: Vec<_> = (0..QUERIES)
        .map(|i| tokio::spawn(one_query(http.clone(), url.clone(), i)))
        .collect();
    let outcomes = tokio::time::timeout(Duration::from_secs(180), futures::future::join_all(tasks))
        .await
        .expect("every query ends within 180 s (none hangs)");

    let mut done = 0;
    let mut refused: BTreeMap<(u16, String), usize> = BTreeMap::new();
    let mut broken = Vec::new();
    for outcome in outcomes {
        match outcome.expect("the query task") {
            Outcome::Done => done += 1,
            Outcome::Refused(status, code) => *refused.entry((status, code)).or_default() += 1,
            Outcome::Broken(why) => broken.push(why),
        }
    }
    let refused_total: usize = refused.values().sum();
    println!(
        "load: {done} done, {refused_total} refused {refused:?}, {} broken",
        broken.len()
    );
    assert!(broken.is_empty(), "{broken:#?}");
    assert_eq!(done + refused_total, QUERIES);
    for (status, code) in refused.keys() {
        assert!(
            (400..600).contains(status) && *status != 500,
            "a refusal that says what: {status} {code}"
        );
    }

    // The CLIs got exactly the answered queries' prompts, each once; the tree counted them.
    let mut received = env.prompts_received();
    received.sort();
    assert_eq!(
        received.len(),
        done,
        "each answered query reached a CLI once"
    );
    received.dedup();
    assert_eq!(received.len(), done, "no prompt twice");
    let health: Value = http
        .get(format!("{url}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["total"], SESSIONS, "{health}");
    assert_eq!(health["running"], SESSIONS, "{health}");
    assert_eq!(health["turns"], done, "{health}");

    tokio::time::timeout(Duration::from_secs(120), server.shutdown())
        .await
        .expect("the shutdown ends within 120 s")
        .unwrap();
    env.assert_all_gone().await;
    assert_eq!(
        env.pids().len(),
        SESSIONS,
        "one CLI per session, none restarted"
    );
}

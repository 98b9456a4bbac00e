//! The server's credential gateway, end to end: the real binary (`serve --config`), the real
//! CLI (pinned) and the fake Messages API. The real key is only in the server process's
//! environment (`REAL_KEY_FOR_TEST`, named by `[gateway] credential_env`): a query over HTTP is
//! answered, the fake API receives that key in `x-api-key`, the CLI's own environment carries
//! neither the key nor the fake API's URL (only the gateway's), `/health` and `/metrics` show
//! the session's traffic and its egress report, and no log line carries the key. With
//! `enabled = false` the CLI gets the key in its own environment (the off switch works). With
//! `[supervisor] warm_spares`, a session started over HTTP claims a parked spare, whose own
//! gateway token the session adopts.

#[path = "support/common.rs"]
mod support;

use std::time::Duration;

use claude_supervisor_server::Config;
use claude_supervisor_server::config::{CredentialKind, StoreKind};
use claude_testing::envs::RealEnv;
use claude_testing::real_cli::SafeEnv;
use serde_json::{Value, json};
use support::{ServeProcess, agent, done_text, environ_of, free_port, metric_sample, query_sse};

/// The variable holding the real key, in the server process's environment only.
const KEY_VAR: &str = "REAL_KEY_FOR_TEST";

/// A key no one else has: it appears nowhere unless it leaked from the server.
fn real_key() -> String {
    format!(
        "sk-ant-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// The server's config: loopback on a free port, a memory store, the real CLI, and
/// `[defaults]` on the sandbox's safe environment — without its API URL and key when the
/// gateway is on (the gateway owns those two).
fn config(env: &RealEnv, gateway: bool) -> Config {
    let mut config = Config::default();
    config.server.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    config.store.kind = StoreKind::Memory;
    config.supervisor.cli_path = Some(env.cli_path().to_owned());
    config.supervisor.data_dir = Some(env.sandbox.root().join("data"));
    let mut defaults = agent("", &env.options().build().unwrap());
    // The server gives the CLI its credential (through the gateway, or itself when off): not
    // the sandbox's dummy key.
    defaults.env.remove("ANTHROPIC_API_KEY");
    config.gateway.credential_env = Some(KEY_VAR.into());
    config.gateway.credential_kind = Some(CredentialKind::ApiKey);
    if gateway {
        defaults.env.remove("ANTHROPIC_BASE_URL");
        config.gateway.upstream = Some(env.api.base_url());
    } else {
        config.gateway.enabled = Some(false);
    }
    config.defaults = defaults;
    config
}

/// Starts the server with the sandbox's safe environment (what every process that may start
/// the real CLI gets) plus the real key; debug logs, so that a leak would show.
async fn serve(env: &RealEnv, config: &Config, key: &str) -> ServeProcess {
    let safe = SafeEnv::new(&env.sandbox, &env.api.base_url()).expect("safe environment");
    ServeProcess::start(config, env.sandbox.root(), |cmd| {
        safe.apply(cmd);
        cmd.env(KEY_VAR, key).env("RUST_LOG", "debug");
    })
    .await
}

async fn get_text(http: &reqwest::Client, url: &str) -> String {
    let answer = http.get(url).send().await.expect("the server answers");
    assert_eq!(answer.status(), 200, "{url}");
    answer.text().await.expect("a text body")
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let answer = http.get(url).send().await.expect("the server answers");
    assert_eq!(answer.status(), 200, "{url}");
    answer.json().await.expect("JSON")
}

/// Starts `agent` over HTTP and runs one turn; returns its CLI's pid (from `/health`).
async fn one_turn(http: &reqwest::Client, url: &str) -> (i32, Value) {
    let started = http
        .post(format!("{url}/sessions"))
        .json(&json!({"name": "agent"}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 201, "{:?}", started.text().await);
    let events = tokio::time::timeout(
        Duration::from_secs(120),
        query_sse(url, "agent", "say hello").await.collect(),
    )
    .await
    .expect("the turn ends");
    assert_eq!(
        events.last().map(|e| e.event.as_str()),
        Some("done"),
        "{events:?}"
    );
    assert!(
        done_text(&events).is_some_and(|t| !t.is_empty()),
        "{events:?}"
    );
    let health = get_json(http, &format!("{url}/health")).await;
    let pid = health["sessions"][0]["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("a pid: {health}")) as i32;
    (pid, health)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_key_stays_in_the_server_and_the_gateway_forwards_it() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let key = real_key();
    let mut config = config(&env, true);
    // Egress: the session may reach one more address besides the gateway (added by the tree).
    config.defaults_extras.egress = Some(vec!["127.0.0.1:9".parse().unwrap()]);
    let server = serve(&env, &config, &key).await;
    let url = server.url.clone();
    let http = reqwest::Client::new();

    let (pid, health) = one_turn(&http, &url).await;

    // The fake API got the real key, from the gateway (the CLI only has its session token).
    let requests = env.api.main_requests();
    assert!(!requests.is_empty(), "{}", env.api.describe_log());
    for r in &requests {
        assert_eq!(r.header("x-api-key"), Some(key.as_str()), "{}", r.path);
    }

    // The CLI's own environment: the gateway's URL and a token, never the key nor the API.
    let gateway_addr = health["gateway"]["addr"]
        .as_str()
        .unwrap_or_else(|| panic!("the gateway's address: {health}"))
        .to_owned();
    let environ = environ_of(pid);
    assert!(
        environ.contains(&format!("ANTHROPIC_BASE_URL=http://{gateway_addr}")),
        "the CLI is pointed at the gateway: {environ:?}"
    );
    assert!(
        environ
            .iter()
            .any(|v| v.starts_with("ANTHROPIC_API_KEY=") && v != "ANTHROPIC_API_KEY="),
        "the CLI has its session token: {environ:?}"
    );
    assert!(
        !environ.iter().any(|v| v.contains(&key)),
        "the key is not in the CLI's environment"
    );
    assert!(
        !environ
            .iter()
            .any(|v| v.starts_with(&format!("{KEY_VAR}="))),
        "the key's variable is removed from the CLI's environment"
    );
    let api_addr = env.api.addr().to_string();
    assert!(
        !environ.iter().any(|v| v.contains(&api_addr)),
        "the fake API's address ({api_addr}) is not in the CLI's environment: {environ:?}"
    );

    // /health: the gateway (by variable name), the session's traffic, its egress report.
    let gateway = &health["gateway"];
    assert_eq!(gateway["credential_env"], KEY_VAR, "{health}");
    assert_eq!(gateway["credential_kind"], "api_key", "{health}");
    let traffic = &gateway["sessions"]["agent"];
    let sent = requests.len() as u64;
    assert!(
        traffic["requests"].as_u64().is_some_and(|n| n >= sent),
        "{sent} requests reached the API: {health}"
    );
    assert!(
        traffic["status_2xx"].as_u64().is_some_and(|n| n >= 1),
        "{health}"
    );
    assert!(
        traffic["bytes_in"].as_u64().is_some_and(|n| n > 0),
        "{health}"
    );
    assert!(
        traffic["bytes_out"].as_u64().is_some_and(|n| n > 0),
        "{health}"
    );
    assert_eq!(gateway["unauthorized"], 0, "{health}");
    let egress = &health["sessions"][0]["instance"]["containment"]["egress"];
    let allowed: Vec<&str> = egress["allowed"]
        .as_array()
        .unwrap_or_else(|| panic!("an egress report: {health}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        allowed.contains(&"127.0.0.1:9") && allowed.contains(&gateway_addr.as_str()),
        "the policy's address and the gateway's: {egress}"
    );
    assert!(
        egress["enforced_by"].is_string() || egress["not_enforced_because"].is_string(),
        "enforced, or says why not: {egress}"
    );

    // /metrics: the same traffic, by session.
    let metrics = get_text(&http, &format!("{url}/metrics")).await;
    let requests_total =
        metric_sample(&metrics, "claude_gateway_requests_total{session=\"agent\"}")
            .unwrap_or_else(|| panic!("no gateway requests in:\n{metrics}"));
    assert!(requests_total >= sent as f64, "{metrics}");
    let ok = metric_sample(
        &metrics,
        "claude_gateway_responses_total{class=\"2xx\",session=\"agent\"}",
    )
    .unwrap_or_else(|| panic!("no 2xx responses in:\n{metrics}"));
    assert!(ok >= 1.0, "{metrics}");
    for name in [
        "claude_gateway_request_bytes_total{session=\"agent\"}",
        "claude_gateway_response_bytes_total{session=\"agent\"}",
    ] {
        assert!(
            metric_sample(&metrics, name).is_some_and(|v| v > 0.0),
            "{name}: {metrics}"
        );
    }
    assert_eq!(
        metric_sample(&metrics, "claude_gateway_unauthorized_total"),
        Some(0.0),
        "{metrics}"
    );

    // The operator's `health` command says so, by the variable's name.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_claude-supervisor"))
        .args(["health", "--server", &url])
        .env_remove("CLAUDE_SUPERVISOR_TOKEN")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("GATEWAY") && l.contains(&format!("on ({KEY_VAR} → "))),
        "{text}"
    );
    assert!(!text.contains(&key));

    // Terminating the session drops its traffic from both.
    let gone = http
        .delete(format!("{url}/sessions/agent"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    let health = get_json(&http, &format!("{url}/health")).await;
    assert_eq!(health["gateway"]["sessions"], json!({}), "{health}");
    let metrics = get_text(&http, &format!("{url}/metrics")).await;
    assert_eq!(
        metric_sample(&metrics, "claude_gateway_requests_total{session=\"agent\"}"),
        None,
        "{metrics}"
    );

    let log = server.log_text();
    assert!(
        log.contains("credential gateway"),
        "the log says the gateway is on: {log}"
    );
    assert!(!log.contains(&key), "the key is in no log line");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_gateway_off_the_cli_gets_the_key_itself() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let key = real_key();
    let config = config(&env, false);
    let server = serve(&env, &config, &key).await;
    let url = server.url.clone();
    let http = reqwest::Client::new();

    let (pid, health) = one_turn(&http, &url).await;
    assert_eq!(health["gateway"], Value::Null, "{health}");
    let environ = environ_of(pid);
    assert!(
        environ.contains(&format!("ANTHROPIC_API_KEY={key}")),
        "with `enabled = false` the CLI's environment carries the key"
    );
    assert!(
        environ.contains(&format!("ANTHROPIC_BASE_URL={}", env.api.base_url())),
        "the CLI talks to the API itself: {environ:?}"
    );
    let requests = env.api.main_requests();
    assert!(!requests.is_empty(), "{}", env.api.describe_log());
    for r in &requests {
        assert_eq!(r.header("x-api-key"), Some(key.as_str()), "{}", r.path);
    }
    let log = server.log_text();
    assert!(log.contains("enabled = false"), "the log warns: {log}");
    assert!(!log.contains(&key), "the key is in no log line");
    let metrics = get_text(&http, &format!("{url}/metrics")).await;
    assert!(
        !metrics.contains("claude_gateway_requests_total{"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_group_budget_is_refused_and_shows_in_health_and_metrics() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let key = real_key();
    let mut config = config(&env, true);
    // One token per hour for the group the defaults name: the first request's usage spends it.
    let mut tight = claude_supervisor_server::config::BudgetSection::default();
    tight.tokens = Some(1);
    tight.tokens_period = Some(Duration::from_secs(3600));
    config.gateway.groups.insert("tight".into(), tight);
    config.defaults_extras.budget_group = Some("tight".into());
    let server = serve(&env, &config, &key).await;
    let url = server.url.clone();
    let http = reqwest::Client::new();
    let started = http
        .post(format!("{url}/sessions"))
        .json(&json!({"name": "agent"}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 201, "{:?}", started.text().await);

    // Two turns: the budget is spent by the first request, the later ones are refused (how
    // the CLI reports a 429 is its business; the turn ends either way).
    for prompt in ["first", "second"] {
        let events = tokio::time::timeout(
            Duration::from_secs(120),
            query_sse(&url, "agent", prompt).await.collect(),
        )
        .await
        .expect("the turn ends");
        let last = events.last().map(|e| e.event.as_str());
        assert!(last == Some("done") || last == Some("error"), "{events:?}");
    }
    // Read before the gateway's counters, which count a request when it arrives: a request
    // still in flight then is in the gateway's count and not yet in the API's.
    let reached_api = env.api.requests().len() as u64;
    let health = get_json(&http, &format!("{url}/health")).await;
    let traffic = &health["gateway"]["sessions"]["agent"];
    let refused = traffic["budget_refusals"].as_u64().unwrap_or(0);
    assert!(refused >= 1, "a refusal: {health}");
    assert!(
        traffic["status_4xx"].as_u64().is_some_and(|n| n >= refused),
        "refusals are 4xx answers: {health}"
    );
    let forwarded = traffic["requests"].as_u64().unwrap() - refused;
    assert!(
        (1..=forwarded).contains(&reached_api),
        "the first request reached the API, refused ones never do ({reached_api} of {forwarded}): {health}\n{}",
        env.api.describe_log()
    );
    let metrics = get_text(&http, &format!("{url}/metrics")).await;
    assert_eq!(
        metric_sample(
            &metrics,
            "claude_gateway_budget_refusals_total{session=\"agent\"}"
        ),
        Some(refused as f64),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_started_over_http_claims_a_warm_spare_that_talks_through_the_gateway() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let key = real_key();
    let mut config = config(&env, true);
    config.supervisor.warm_spares = Some(1);
    let server = serve(&env, &config, &key).await;
    let url = server.url.clone();
    let http = reqwest::Client::new();

    // The spare parks in the background (the real CLI boots in well under a second).
    let mut parked = false;
    for _ in 0..600 {
        let health = get_json(&http, &format!("{url}/health")).await;
        if health["spares"]["parked"] == 1 {
            parked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(parked, "no spare parked within 30 s");

    let (_, health) = one_turn(&http, &url).await;
    let session = &health["sessions"][0];
    assert_eq!(
        session["instance"]["start"]["path"], "warm",
        "the session took the spare: {session}"
    );
    assert_eq!(health["spares"]["claimed"], 1, "{health}");
    // Through the gateway, with the real key added there.
    let requests = env.api.main_requests();
    assert!(!requests.is_empty(), "{}", env.api.describe_log());
    for r in &requests {
        assert_eq!(r.header("x-api-key"), Some(key.as_str()), "{}", r.path);
    }
    assert!(
        health["gateway"]["sessions"]["agent"]["requests"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "counted as the session's: {}",
        health["gateway"]
    );
    server.stop().await;
}

//! Budgets at the credential gateway, with the real CLI and the fake Messages API: a session
//! whose budget is spent is refused with 429 in the API's rate-limit shape before anything
//! reaches the upstream, its turn fails with that error, the other sessions keep answering,
//! and the tree announces the spent limit once.

use std::time::Duration;

use claude_supervisor::{
    Budget, ClaudeSupervisor, Credential, GatewayConfig, Price, Pricing, SessionHandle,
    SessionSpec, SupervisorError, SupervisorEvent, SupervisorEventKind, TurnOutput,
};
use claude_testing::envs::{RealEnv, assert_group_gone};
use tokio::sync::broadcast;

const REAL_KEY: &str = "sk-ant-gateway-test-REAL";
const HOUR: Duration = Duration::from_secs(3600);

fn token_of(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("the CLI's environ");
    raw.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"ANTHROPIC_API_KEY="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .expect("a session token")
}

/// The budget events received so far (waiting up to `wait` for the first one).
async fn budget_events(
    events: &mut broadcast::Receiver<SupervisorEvent>,
    wait: Duration,
) -> Vec<(Option<String>, Option<String>, String, Duration)> {
    let mut found = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let next = if found.is_empty() {
            tokio::time::timeout_at(deadline, events.recv()).await
        } else {
            // After the first, take what is already there.
            tokio::time::timeout(Duration::from_millis(200), events.recv()).await
        };
        match next {
            Ok(Ok(SupervisorEvent {
                session,
                kind:
                    SupervisorEventKind::BudgetExceeded {
                        group,
                        limit,
                        resets_in,
                    },
            })) => found.push((session, group, limit, resets_in)),
            Ok(Ok(_)) => {}
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => return found,
        }
    }
}

/// A turn: `Ok` with its output when it succeeded, `Err` with it when the CLI reported it
/// failed (an API error ends a turn with an error result).
async fn turn(handle: &SessionHandle, prompt: &str) -> Result<TurnOutput, TurnOutput> {
    match handle.ask(prompt).await {
        Ok(out) if !out.is_error() => Ok(out),
        Ok(out) => Err(out),
        Err(SupervisorError::TurnFailed { output, .. }) => Err(*output),
        Err(other) => panic!("the turn did not end with a result: {other}"),
    }
}

/// Whether a failed turn's result carries the gateway's rate-limit refusal (the CLI reports
/// the status, the error type and the message).
fn saw_rate_limit(out: &TurnOutput) -> bool {
    let text = format!("{:?}", out.result);
    text.contains("429") && text.contains("rate_limit_error") && text.contains("over its budget")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_budget_stops_one_session_at_its_limit_and_not_the_other() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    const LIMIT: u64 = 2;
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .gateway(
            GatewayConfig::new(env.api.base_url(), Credential::ApiKey(REAL_KEY.into()))
                .session_budget(Budget::new().requests(LIMIT, HOUR)),
        )
        .session(SessionSpec::new("a", env.options().build().unwrap()))
        .session(SessionSpec::new("b", env.options().build().unwrap()))
        .start()
        .await
        .unwrap();
    let mut events = tree.events();
    let a = tree.session("a").unwrap();
    let b = tree.session("b").unwrap();

    // A converses until its budget refuses a turn (each turn is at least one request).
    let mut refused = None;
    for n in 0..=LIMIT {
        let before = env.api.requests().len();
        if let Err(out) = turn(&a, &format!("a turn {n}")).await {
            refused = Some((n, out, before));
            break;
        }
    }
    let (n, out, before) = refused.unwrap_or_else(|| {
        panic!(
            "a budget of {LIMIT} requests never refused: {}",
            env.api.describe_log()
        )
    });
    assert!(n >= 1, "the first turn fits the budget: {:?}", out.result);
    assert!(saw_rate_limit(&out), "{:?}", out.result);
    assert_eq!(
        env.api.requests().len(),
        before,
        "the refused turn reached the upstream: {}",
        env.api.describe_log()
    );
    let stats = tree.gateway_stats().unwrap();
    let traffic_a = &stats.sessions["a"];
    assert!(traffic_a.budget_refusals >= 1, "{stats:?}");
    assert_eq!(
        traffic_a.requests - traffic_a.budget_refusals,
        LIMIT,
        "exactly the limit went through: {stats:?}"
    );

    // B has counters of its own: it answers.
    if let Err(out) = turn(&b, "b is still fine?").await {
        panic!("b was refused: {:?}", out.result);
    }
    let stats = tree.gateway_stats().unwrap();
    let forwarded: u64 = stats
        .sessions
        .values()
        .map(|t| t.requests - t.budget_refusals)
        .sum();
    assert_eq!(
        env.api.requests().len() as u64,
        forwarded,
        "the upstream saw what the gateway forwarded, no more: {stats:?}"
    );
    assert_eq!(stats.sessions["b"].budget_refusals, 0, "{stats:?}");

    // A is still refused, and the limit was announced once.
    let again = turn(&a, "a once more")
        .await
        .expect_err("a is over its budget");
    assert!(saw_rate_limit(&again), "{:?}", again.result);
    let announced = budget_events(&mut events, Duration::from_secs(5)).await;
    assert_eq!(announced.len(), 1, "{announced:?}");
    let (session, group, limit, resets_in) = &announced[0];
    assert_eq!(session.as_deref(), Some("a"));
    assert_eq!(*group, None);
    assert_eq!(limit, "2 requests per 1h");
    assert!(
        *resets_in > Duration::ZERO && *resets_in <= HOUR,
        "{resets_in:?}"
    );

    let pids = [a.health().await.unwrap().pid, b.health().await.unwrap().pid];
    tree.shutdown().await;
    for pid in pids.into_iter().flatten() {
        assert_group_gone(pid as i32).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_dollar_budget_lets_a_turn_through_and_refuses_the_next_with_429() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    // A dollar a token: any turn's usage spends the group's $1.
    let pricing = Pricing::flat(Price::new(1e6, 1e6, 1e6, 1e6));
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .gateway(
            GatewayConfig::new(env.api.base_url(), Credential::ApiKey(REAL_KEY.into()))
                .pricing(pricing)
                .group_budget("metered", Budget::new().dollars(1.0, HOUR)),
        )
        .session(
            SessionSpec::new("spender", env.options().build().unwrap()).budget_group("metered"),
        )
        .session(SessionSpec::new("free", env.options().build().unwrap()))
        .start()
        .await
        .unwrap();
    let mut events = tree.events();
    let spender = tree.session("spender").unwrap();
    let free = tree.session("free").unwrap();

    if let Err(out) = turn(&spender, "spend it").await {
        panic!("the first turn was refused: {:?}", out.result);
    }
    let stats = tree.gateway_stats().unwrap();
    let spent = &stats.sessions["spender"];
    assert!(
        spent.input_tokens > 0 && spent.output_tokens > 0,
        "the usage was counted from the stream: {stats:?}"
    );
    let tokens = spent.input_tokens
        + spent.output_tokens
        + spent.cache_creation_input_tokens
        + spent.cache_read_input_tokens;
    assert!(
        (spent.cost_usd - tokens as f64).abs() < 1e-6,
        "a dollar a token: {stats:?}"
    );

    let before = env.api.requests().len();
    let second = turn(&spender, "spend more")
        .await
        .expect_err("the group's dollars are spent");
    assert!(saw_rate_limit(&second), "{:?}", second.result);
    assert_eq!(
        env.api.requests().len(),
        before,
        "{}",
        env.api.describe_log()
    );

    // The refusal, straight at the gateway: the rate-limit shape, retry-after, retries allowed.
    let pid = spender.health().await.unwrap().pid.unwrap();
    let response = reqwest::Client::new()
        .post(format!(
            "http://{}/v1/messages",
            tree.gateway_addr().unwrap()
        ))
        .header("x-api-key", token_of(pid))
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(
            r#"{"model":"claude-test","max_tokens":16,"messages":[{"role":"user","content":"x"}]}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    assert!(response.headers().get("x-should-retry").is_none());
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    for part in ["spender", "group `metered`", "$1.00 per 1h", "resets in"] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert_eq!(env.api.requests().len(), before);

    // The other session is not in the group: unaffected.
    if let Err(out) = turn(&free, "am I free?").await {
        panic!(
            "the session outside the group was refused: {:?}",
            out.result
        );
    }
    assert_eq!(
        tree.gateway_stats().unwrap().sessions["free"].budget_refusals,
        0
    );

    let announced = budget_events(&mut events, Duration::from_secs(5)).await;
    assert_eq!(announced.len(), 1, "once per window: {announced:?}");
    let (session, group, limit, resets_in) = &announced[0];
    assert_eq!(session.as_deref(), Some("spender"));
    assert_eq!(group.as_deref(), Some("metered"));
    assert_eq!(limit, "$1.00 per 1h");
    assert!(*resets_in <= HOUR, "{resets_in:?}");

    let pids = [pid, free.health().await.unwrap().pid.unwrap()];
    tree.shutdown().await;
    for pid in pids {
        assert_group_gone(pid as i32).await;
    }
}

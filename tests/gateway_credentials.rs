//! The credential gateway with the real CLI: the CLI talks to the gateway with a per-session
//! token, the upstream (the fake Messages API) sees only the real key, and the CLI's process
//! holds neither the real key nor the upstream's address; a tool's `env` shows only the token,
//! and the upstream (requiring the real key, as the real API does) refuses the token.

use std::time::Duration;

use claude_supervisor::{ClaudeSupervisor, Credential, GatewayConfig, SessionSpec};
use claude_testing::envs::{RealEnv, assert_group_gone};
use claude_testing::fake_api::user_texts_of;

const REAL_KEY: &str = "sk-ant-gateway-test-REAL";

/// The environment of a running process, as `NAME=value` strings.
fn environ(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("the CLI's environ");
    raw.split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

fn var<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_gets_a_session_token_and_the_upstream_the_real_key() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    // The upstream answers only the real key, as the real API would.
    env.api.require_api_key(REAL_KEY);
    // Credentials the options (or the host) would hand the CLI are dropped too.
    let options = env
        .options()
        .allowed_tools(["Bash"])
        .env("ANTHROPIC_AUTH_TOKEN", "sk-ant-auth-token-should-vanish")
        .env("CLAUDE_CODE_OAUTH_TOKEN", "oauth-token-should-vanish")
        .build()
        .unwrap();
    let config = GatewayConfig::new(env.api.base_url(), Credential::ApiKey(REAL_KEY.into()));
    assert!(!format!("{config:?}").contains(REAL_KEY), "{config:?}");
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .gateway(config)
        .session(SessionSpec::new("agent", options))
        .start()
        .await
        .expect("tree starts");
    let gateway = tree.gateway_addr().expect("a gateway");
    assert!(gateway.ip().is_loopback());
    let agent = tree.session("agent").unwrap();

    // A two-turn conversation through the gateway.
    let first = agent.ask("my name is Ada").await.unwrap();
    assert!(!first.is_error(), "{:?}", first.result);
    let second = agent.ask("what is my name?").await.unwrap();
    assert!(!second.is_error(), "{:?}", second.result);
    let last = env.api.last_main_request().expect("a main request");
    let history = user_texts_of(&last);
    for t in ["my name is Ada", "what is my name?"] {
        assert!(history.iter().any(|s| s.contains(t)), "{t}: {history:?}");
    }

    // Every request the upstream saw carries the real key, and nothing else as a credential.
    let requests = env.api.requests();
    assert!(requests.len() >= 2, "{}", env.api.describe_log());
    for r in &requests {
        assert_eq!(r.header("x-api-key"), Some(REAL_KEY), "request {}", r.seq);
        assert_eq!(r.header("authorization"), None, "request {}", r.seq);
    }

    // The CLI's process holds neither the real key nor the upstream's address.
    let pid = agent.health().await.unwrap().pid.expect("a pid");
    let cli_env = environ(pid);
    let all = cli_env.join("\n");
    assert!(
        !all.contains(REAL_KEY),
        "the real key is in the CLI's environment"
    );
    assert!(
        !all.contains(&env.api.base_url()),
        "the upstream's URL is in the CLI's environment"
    );
    assert!(
        !all.contains("should-vanish"),
        "other credentials reached the CLI"
    );
    assert_eq!(
        var(&cli_env, "ANTHROPIC_BASE_URL"),
        Some(format!("http://{gateway}").as_str())
    );
    let token = var(&cli_env, "ANTHROPIC_API_KEY")
        .expect("a session token")
        .to_owned();
    assert_ne!(token, REAL_KEY);
    assert!(token.len() >= 64, "32 random bytes, hex: {token}");

    // What a tool sees: the Bash tool's `env` holds the session's token, not the real key.
    let listed = agent.ask("RUN_TOOL: env").await.unwrap();
    assert!(!listed.is_error(), "{:?}", listed.result);
    let tool_env = listed.result.result.clone().unwrap_or_default();
    assert!(
        tool_env.contains("ANTHROPIC_API_KEY="),
        "the tool's env was listed: {tool_env}"
    );
    assert!(
        !tool_env.contains(REAL_KEY),
        "the real key is in a tool's environment"
    );
    assert!(tool_env.contains(&token), "the tool sees the session token");

    // The token sent straight to the upstream is refused there: it is not a key.
    let body = r#"{"model":"claude-test","max_tokens":16,"messages":[{"role":"user","content":"direct-bypass"}]}"#;
    let direct = reqwest::Client::new()
        .post(format!("{}/v1/messages", env.api.base_url()))
        .header("x-api-key", &token)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        direct.status(),
        401,
        "the upstream refuses the session token"
    );
    let seen = env
        .api
        .requests()
        .into_iter()
        .find(|r| r.latest_user_text().as_deref() == Some("direct-bypass"))
        .expect("the direct request was recorded");
    assert_eq!(seen.header("x-api-key"), Some(token.as_str()));

    // The traffic is counted for the session.
    let stats = tree.gateway_stats().expect("gateway stats");
    let traffic = &stats.sessions["agent"];
    let through_gateway = env
        .api
        .requests()
        .iter()
        .filter(|r| r.header("x-api-key") == Some(REAL_KEY))
        .count();
    assert_eq!(traffic.requests as usize, through_gateway, "{stats:?}");
    assert_eq!(traffic.status_2xx, traffic.requests, "{stats:?}");
    assert!(traffic.bytes_in > 0 && traffic.bytes_out > 0, "{stats:?}");
    assert!(traffic.latency_total > Duration::ZERO, "{stats:?}");
    assert_eq!(stats.unauthorized, 0);

    // A restart of the session keeps its token (the same conversation, the same credential).
    let restarted = tree.restart_session("agent").await.unwrap();
    let new_pid = restarted.health().await.unwrap().pid.expect("a pid");
    assert_ne!(new_pid, pid);
    assert_group_gone(pid as i32).await;
    assert_eq!(
        var(&environ(new_pid), "ANTHROPIC_API_KEY"),
        Some(token.as_str())
    );
    let third = restarted.ask("and now?").await.unwrap();
    assert!(!third.is_error(), "{:?}", third.result);

    // Health and events never carry the real key.
    let health = format!("{:?}", tree.health().await);
    assert!(!health.contains(REAL_KEY));
    tree.shutdown().await;
    assert_group_gone(new_pid as i32).await;
}

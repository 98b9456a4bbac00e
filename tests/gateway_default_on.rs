//! A tree given a credential gets the gateway by default; `without_gateway()` turns it off and
//! hands the credential to the CLI instead. With the real CLI and the fake Messages API, which
//! stands in for the upstream through this process's `ANTHROPIC_BASE_URL` (the default upstream).
// Setting this process's environment is `unsafe` in Rust 2024: done once, before any thread of
// this binary reads it (a `Once` at the top of each test, before a runtime is built on it).
#![allow(unsafe_code)]

use std::sync::OnceLock;

use claude_supervisor::{ClaudeSupervisor, Credential, GatewayConfig, GatewayError, SessionSpec};
use claude_testing::envs::RealEnv;
use claude_testing::fake_api::FakeApi;

const REAL_KEY: &str = "sk-ant-default-on-REAL";

/// One fake Messages API for the whole binary, named by this process's `ANTHROPIC_BASE_URL`.
fn upstream() -> &'static FakeApi {
    static API: OnceLock<FakeApi> = OnceLock::new();
    API.get_or_init(|| {
        let api = FakeApi::start_blocking();
        // SAFETY: set once, before the tests' runtimes read the environment (see above).
        unsafe { std::env::set_var("ANTHROPIC_BASE_URL", api.base_url()) };
        api
    })
}

fn environ(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("the CLI's environ");
    String::from_utf8_lossy(&raw).replace('\0', "\n")
}

fn key_requests(api: &FakeApi) -> usize {
    api.requests()
        .iter()
        .filter(|r| r.header("x-api-key") == Some(REAL_KEY))
        .count()
}

#[test]
fn a_credential_turns_the_gateway_on_and_without_gateway_turns_it_off() {
    let api = upstream();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(GatewayConfig::default_upstream(), api.base_url());
        let Some(env) = RealEnv::start().await else {
            return;
        };

        // On by default: the CLI talks to the gateway with a session token; the upstream (the
        // process's ANTHROPIC_BASE_URL) gets the real key.
        let tree = ClaudeSupervisor::builder()
            .cli_path(env.cli_path())
            .credential(Credential::ApiKey(REAL_KEY.into()))
            .session(SessionSpec::new("guarded", env.options().build().unwrap()))
            .start()
            .await
            .expect("tree starts");
        let gateway = tree.gateway_addr().expect("a gateway by default");
        let session = tree.session("guarded").unwrap();
        let before = key_requests(api);
        let out = session.ask("hello through the gateway").await.unwrap();
        assert!(!out.is_error(), "{:?}", out.result);
        assert!(key_requests(api) > before, "{}", api.describe_log());
        let pid = session.health().await.unwrap().pid.unwrap();
        let cli_env = environ(pid);
        assert!(!cli_env.contains(REAL_KEY), "the key reached the CLI");
        assert!(
            cli_env.contains(&format!("ANTHROPIC_BASE_URL=http://{gateway}")),
            "{cli_env}"
        );
        assert!(tree.gateway_stats().unwrap().sessions["guarded"].requests >= 1);
        tree.shutdown().await;

        // Off: no gateway; the CLI carries the key and goes to the upstream itself (its own
        // ANTHROPIC_BASE_URL is the fake API, from the safe environment).
        let tree = ClaudeSupervisor::builder()
            .cli_path(env.cli_path())
            .credential(Credential::ApiKey(REAL_KEY.into()))
            .without_gateway()
            .session(SessionSpec::new("direct", env.options().build().unwrap()))
            .start()
            .await
            .expect("tree starts");
        assert!(tree.gateway_addr().is_none());
        let session = tree.session("direct").unwrap();
        let out = session.ask("hello directly").await.unwrap();
        assert!(!out.is_error(), "{:?}", out.result);
        let pid = session.health().await.unwrap().pid.unwrap();
        assert!(
            environ(pid).contains(&format!("ANTHROPIC_API_KEY={REAL_KEY}")),
            "without the gateway the CLI gets the credential"
        );
        let direct = env
            .api
            .requests()
            .into_iter()
            .filter(|r| r.header("x-api-key") == Some(REAL_KEY))
            .count();
        assert!(direct >= 1, "{}", env.api.describe_log());
        tree.shutdown().await;
    });
}

#[test]
fn a_credential_and_a_gateway_config_together_are_refused() {
    upstream();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let err = ClaudeSupervisor::builder()
            .cli_path("/bin/true")
            .credential(Credential::ApiKey(REAL_KEY.into()))
            .gateway(GatewayConfig::new(
                "http://127.0.0.1:9",
                Credential::ApiKey("other".into()),
            ))
            .start()
            .await
            .expect_err("ambiguous credentials are refused");
        let text = err.to_string();
        assert!(text.contains("both a tree credential"), "{text}");
        assert!(!text.contains(REAL_KEY), "{text}");
        assert!(
            matches!(
                std::error::Error::source(&err).and_then(|s| s.downcast_ref::<GatewayError>()),
                Some(GatewayError::ConflictingCredentials)
            ),
            "{err:?}"
        );
    });
}

//! Egress control with the real CLI, through the credential gateway: a session whose egress
//! policy allows one service talks to the fake Messages API only through the gateway, and its
//! Bash tool's `curl` and `python3` reach the allowed service and nothing else — not another
//! service of the host, not the fake API directly (so the session's token is useless there), not
//! an outside address. Its health says what enforces it. A session of the same tree without a
//! policy reaches everything: the test can tell the difference.
//!
//! Skipped loudly where the kernel refuses network namespaces (not root); CI runs as root.

use std::net::SocketAddr;

use claude_supervisor::{
    ClaudeSupervisor, Credential, EgressMechanism, EgressPolicy, GatewayConfig, SessionSpec,
};
use claude_testing::envs::RealEnv;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// A one-answer HTTP service on host loopback: every request gets `body`.
async fn http_service(body: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = tokio::io::AsyncReadExt::read(&mut conn, &mut buf).await;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    addr
}

/// The Bash command: each probe prints `NAME:` and what it got, or `NAME:FAILED`.
fn probes(allowed: SocketAddr, denied: SocketAddr, api: &str) -> String {
    let curl = |name: &str, url: &str| format!("echo {name}:$(curl -s -m 5 {url} || echo FAILED)");
    let py = format!(
        "python3 -c \"import socket; socket.create_connection(('{}', {}), timeout=5); print('PY_DENIED:connected')\" 2>/dev/null || echo PY_DENIED:FAILED",
        denied.ip(),
        denied.port()
    );
    [
        curl("ALLOWED", &format!("http://{allowed}/")),
        curl("DENIED", &format!("http://{denied}/")),
        curl("API", &format!("{api}/v1/models")),
        curl("OUTSIDE", "http://203.0.113.1/"),
        py,
    ]
    .join("; ")
}

fn probe_line<'a>(said: &'a str, name: &str) -> &'a str {
    let start = said
        .find(&format!("{name}:"))
        .unwrap_or_else(|| panic!("no {name} probe in {said:?}"));
    let rest = &said[start + name.len() + 1..];
    rest.split(|c: char| c.is_whitespace() || c == ';')
        .next()
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_reaches_only_its_gateway_and_its_allow_list() {
    if !claude_testing::network_namespaces_allowed() {
        return;
    }
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let allowed = http_service("mirror-ok").await;
    let denied = http_service("denied-reached").await;
    let options = || env.options().allowed_tools(["Bash"]).build().unwrap();
    let policy = EgressPolicy::deny_all().allow(allowed).require();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .gateway(GatewayConfig::new(
            env.api.base_url(),
            Credential::ApiKey("sk-ant-egress-REAL".into()),
        ))
        .session(SessionSpec::new("fenced", options()).configure(move |b| b.egress(policy.clone())))
        .session(SessionSpec::new("open", options()))
        .start()
        .await
        .expect("tree starts");
    let gateway = tree.gateway_addr().expect("a gateway");
    let command = probes(allowed, denied, &env.api.base_url());

    // The fenced session answers (its API is the gateway, reachable inside its namespace)…
    let fenced = tree.session("fenced").unwrap();
    let out = fenced.ask(format!("RUN_TOOL: {command}")).await.unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    let said = out.result.result.clone().unwrap_or_default();
    // …its tools reach the allowed service, relayed…
    assert_eq!(probe_line(&said, "ALLOWED"), "mirror-ok", "{said}");
    // …and nothing else: another host service, the fake API directly, an outside address.
    assert_eq!(probe_line(&said, "DENIED"), "FAILED", "{said}");
    assert_eq!(probe_line(&said, "API"), "FAILED", "{said}");
    assert_eq!(probe_line(&said, "OUTSIDE"), "FAILED", "{said}");
    assert_eq!(probe_line(&said, "PY_DENIED"), "FAILED", "{said}");

    let health = fenced.health().await.unwrap();
    let report = health
        .containment
        .and_then(|c| c.egress)
        .expect("an egress report");
    assert_eq!(report.enforced_by, Some(EgressMechanism::NetworkNamespace));
    assert!(report.allowed.contains(&allowed), "{report:?}");
    assert!(
        report.allowed.contains(&gateway),
        "the gateway is always allowed: {report:?}"
    );

    // The same probes from a session without a policy reach the host's services.
    let open = tree.session("open").unwrap();
    let out = open.ask(format!("RUN_TOOL: {command}")).await.unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    let said = out.result.result.clone().unwrap_or_default();
    assert_eq!(probe_line(&said, "DENIED"), "denied-reached", "{said}");
    assert_eq!(probe_line(&said, "PY_DENIED"), "connected", "{said}");
    let health = open.health().await.unwrap();
    assert_eq!(health.containment.and_then(|c| c.egress), None);

    // A restart keeps the fence (a new namespace for the new CLI).
    let restarted = tree.restart_session("fenced").await.unwrap();
    let out = restarted.ask(format!("RUN_TOOL: {command}")).await.unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    let said = out.result.result.clone().unwrap_or_default();
    assert_eq!(probe_line(&said, "ALLOWED"), "mirror-ok", "{said}");
    assert_eq!(probe_line(&said, "DENIED"), "FAILED", "{said}");
    tree.shutdown().await;
}

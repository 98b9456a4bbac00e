//! Egress control by a network namespace of the launch's own: a process started with an
//! [`EgressPolicy`] reaches the allowed addresses (relayed by the host) and nothing else — not
//! another loopback service of the host, not an address outside. Under every containment
//! mechanism the machine allows, since the namespace is independent of the mechanism. A required
//! policy fails a launch that cannot enforce it; an optional one goes ahead and says so.
//!
//! Skipped loudly where the kernel refuses network namespaces (not root); CI runs as root.

use std::net::SocketAddr;
use std::time::Duration;

use claude_session::{
    ContainmentPolicy, EgressMechanism, EgressPolicy, LaunchContext, LaunchError,
    available_mechanisms, spawn_contained,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A TCP service on host loopback that answers every connection with `greeting`.
async fn service(greeting: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = conn.write_all(greeting.as_bytes()).await;
            });
        }
    });
    addr
}

/// A Python probe: for each `host:port` argument, one line `host:port <what happened>`.
const PROBE: &str = r#"
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        s = socket.create_connection((host, int(port)), timeout=5)
        data = s.recv(100).decode()
        print(target, "ok", data, flush=True)
    except OSError as e:
        print(target, "failed", type(e).__name__, flush=True)
"#;

async fn probe(ctx: &LaunchContext, targets: &[String]) -> (String, claude_session::Containment) {
    let mut launched = spawn_contained(
        || {
            let mut cmd = tokio::process::Command::new("/usr/bin/python3");
            cmd.arg("-c").arg(PROBE).args(targets);
            cmd
        },
        ctx,
    )
    .expect("the probe starts");
    let containment = launched.containment();
    let mut out = String::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        launched.stdout.read_to_string(&mut out),
    )
    .await
    .expect("the probe finishes")
    .unwrap();
    let status = launched.exit.await.unwrap();
    assert!(status.success(), "{status}: {out}");
    (out, containment)
}

fn line<'a>(out: &'a str, target: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{target} ")))
        .unwrap_or_else(|| panic!("no line for {target}: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_allowed_addresses_are_reachable_under_every_mechanism() {
    if !claude_testing::network_namespaces_allowed() {
        return;
    }
    let allowed = service("allowed-ok").await;
    let denied = service("denied-reached").await;
    let outside = "203.0.113.1:80".to_owned(); // TEST-NET-3: an address outside.
    let policy = EgressPolicy::deny_all().allow(allowed).require();
    let targets = [allowed.to_string(), denied.to_string(), outside.clone()];
    let mut tried = 0;
    for (kind, available) in available_mechanisms() {
        if available.is_err() {
            continue;
        }
        tried += 1;
        let ctx = LaunchContext::new(format!("egress-{kind}"))
            .containment(ContainmentPolicy::require(kind))
            .egress(Some(policy.clone()));
        let (out, containment) = probe(&ctx, &targets).await;
        assert_eq!(
            line(&out, &allowed.to_string()),
            format!("{allowed} ok allowed-ok"),
            "{kind}: the allowed address is relayed: {out}"
        );
        assert!(
            line(&out, &denied.to_string()).contains("failed"),
            "{kind}: another service on the host's loopback is out of reach: {out}"
        );
        assert!(
            line(&out, &outside).contains("failed"),
            "{kind}: an outside address is out of reach: {out}"
        );
        let report = containment.report().egress.expect("an egress report");
        assert_eq!(report.enforced_by, Some(EgressMechanism::NetworkNamespace));
        assert_eq!(report.allowed, vec![allowed]);
        assert_eq!(report.not_enforced_because, None);
    }
    assert!(tried >= 2, "at least two mechanisms were tried");

    // Without a policy the same probe reaches both services: the test can tell the difference.
    let ctx = LaunchContext::new("egress-none");
    let (out, containment) = probe(&ctx, &targets[..2]).await;
    assert!(
        line(&out, &denied.to_string()).contains("ok denied-reached"),
        "{out}"
    );
    assert_eq!(containment.report().egress, None);
}

/// A global IPv4 address of this host (`ip -4 -o addr show scope global`), if it has one.
fn host_address() -> Option<std::net::Ipv4Addr> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let word = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)?;
    word.split('/').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_allowed_address_is_served_inside_the_namespace() {
    if !claude_testing::network_namespaces_allowed() {
        return;
    }
    let Some(ip) = host_address() else {
        eprintln!("SKIPPED: this host has no global IPv4 address to allow");
        return;
    };
    // Two services on the host's own address: one allowed, one not. Inside the namespace the
    // allowed address exists only as the relay's listener.
    let bind = |greeting: &'static str| async move {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let _ = conn.write_all(greeting.as_bytes()).await;
            }
        });
        addr
    };
    let allowed = bind("mirror-ok").await;
    let other = bind("other-reached").await;
    let ctx = LaunchContext::new("egress-alias")
        .egress(Some(EgressPolicy::deny_all().allow(allowed).require()));
    let (out, _) = probe(&ctx, &[allowed.to_string(), other.to_string()]).await;
    assert_eq!(
        line(&out, &allowed.to_string()),
        format!("{allowed} ok mirror-ok"),
        "{out}"
    );
    assert!(line(&out, &other.to_string()).contains("failed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_cannot_be_enforced_fails_when_required_and_is_reported_otherwise() {
    // An address the mechanism cannot serve stands in for a machine without namespaces: the
    // launch's outcome depends only on whether the policy is required.
    let unservable: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
    let required = LaunchContext::new("egress-required")
        .egress(Some(EgressPolicy::deny_all().allow(unservable).require()));
    let err = spawn_contained(|| tokio::process::Command::new("/bin/true"), &required)
        .expect_err("a required policy that cannot be enforced fails the launch");
    match &err {
        LaunchError::EgressUnavailable { session, reason } => {
            assert_eq!(session, "egress-required");
            assert!(reason.contains("IPv6"), "{reason}");
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(err.to_string().contains("egress-required"), "{err}");

    let optional = LaunchContext::new("egress-optional")
        .egress(Some(EgressPolicy::deny_all().allow(unservable)));
    let mut launched = spawn_contained(|| tokio::process::Command::new("/bin/true"), &optional)
        .expect("an optional policy lets the launch go ahead");
    let report = launched.containment().report().egress.expect("a report");
    assert_eq!(report.enforced_by, None);
    assert!(
        report
            .not_enforced_because
            .as_deref()
            .is_some_and(|why| why.contains("IPv6")),
        "{report:?}"
    );
    let mut rest = Vec::new();
    let _ = launched.stdout.read_to_end(&mut rest).await;
    assert!(launched.exit.await.unwrap().success());
}

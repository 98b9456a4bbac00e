//! `claude_protocol::probe_version` on the real pinned binary, run only with the safe
//! environment: the probe goes through a wrapper script that applies `SafeEnv` with `env -i`.

use std::os::unix::fs::PermissionsExt;

use claude_testing::fake_api::FakeApi;
use claude_testing::real_cli::{SafeEnv, Sandbox, real_cli_or_skip};

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[tokio::test]
async fn probe_version_reads_the_real_binary() {
    let Some(cli) = real_cli_or_skip() else {
        return;
    };
    let api = FakeApi::start().await;
    let sandbox = Sandbox::new().unwrap();
    let env = SafeEnv::new(&sandbox, &api.base_url()).unwrap();
    let mut script = String::from("#!/bin/sh\nexec env -i");
    for (k, v) in env.vars() {
        script.push_str(&format!(" {}", quote(&format!("{k}={v}"))));
    }
    script.push_str(&format!(
        " PATH=/usr/bin:/bin {} \"$@\"\n",
        quote(&cli.path().display().to_string())
    ));
    let wrapper = sandbox.root().join("claude-safe");
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let version = claude_protocol::probe_version(&wrapper).unwrap();
    assert_eq!(version, claude_protocol::PINNED_VERSION);
    assert!(version >= claude_protocol::MIN_SUPPORTED_VERSION);
}

//! `claude_protocol::probe_version` on the real binary (the pinned one, or whichever
//! `CLAUDE_REAL_CLI` names: CI runs this against the newest release too), run only with the safe
//! environment: the probe goes through a wrapper script that applies `SafeEnv` with `env -i`.

use claude_testing::fake_api::FakeApi;
use claude_testing::real_cli::{Sandbox, real_cli_or_skip, write_safe_wrapper};

#[tokio::test]
async fn probe_version_reads_the_real_binary() {
    let Some(cli) = real_cli_or_skip() else {
        return;
    };
    let api = FakeApi::start().await;
    let sandbox = Sandbox::new().unwrap();
    let wrapper = write_safe_wrapper(cli.path(), &sandbox, &api.base_url(), "claude-safe").unwrap();

    let version = claude_protocol::probe_version(&wrapper).unwrap();
    // The probe reads what the harness read, and any version in the supported range passes.
    assert_eq!(
        Some(version),
        cli.cli_version(),
        "harness read {:?}",
        cli.version()
    );
    let support = claude_protocol::SUPPORTED_CLI.support(version);
    assert!(support.is_usable(), "{version}: {support:?}");
    assert!(version >= claude_protocol::MIN_SUPPORTED_VERSION);
}

//! Shared by the examples: where the CLI is, and which API it talks to.
//!
//! With `ANTHROPIC_API_KEY` set, the CLI talks to the real API. Without credentials, it runs
//! offline: pointed at the project's fake Messages API on loopback, in a throw-away sandbox
//! (its own HOME, config dir and TMPDIR), and the first line printed says so — never a silent fake.
#![allow(dead_code)]

use std::path::PathBuf;

use claude_supervisor::{ClaudeOptions, ClaudeOptionsBuilder, find_cli};
use claude_testing::fake_api::FakeApi;
use claude_testing::real_cli::{SafeEnv, Sandbox};

pub(crate) struct Env {
    pub(crate) cli: PathBuf,
    offline: Option<(FakeApi, Sandbox)>,
    scratch: tempfile::TempDir,
}

impl Env {
    pub(crate) async fn new() -> Result<Env, Box<dyn std::error::Error>> {
        let online = std::env::var_os("ANTHROPIC_API_KEY").is_some_and(|k| !k.is_empty());
        let offline = if online {
            println!("mode: ONLINE — using the real Anthropic API with your ANTHROPIC_API_KEY");
            None
        } else {
            let api = FakeApi::start().await;
            println!(
                "mode: OFFLINE — no ANTHROPIC_API_KEY, so the CLI talks to the project's fake Messages API at {}",
                api.base_url()
            );
            Some((api, Sandbox::new()?))
        };
        let cli = find_cli(None)?;
        Ok(Env {
            cli,
            offline,
            scratch: tempfile::tempdir()?,
        })
    }

    /// Options for a session: offline, the safe sandboxed environment; online, the defaults.
    pub(crate) fn options(&self) -> ClaudeOptionsBuilder {
        let Some((api, sandbox)) = &self.offline else {
            return ClaudeOptions::builder();
        };
        let env = SafeEnv::new(sandbox, &api.base_url()).expect("safe environment");
        let mut builder = ClaudeOptions::builder().cwd(sandbox.work_dir());
        for (k, v) in env.vars() {
            builder = builder.env(k, v);
        }
        for k in env.removed() {
            builder = builder.env_remove(k);
        }
        builder
    }

    /// An [`Agent`](claude_supervisor::Agent) for the example: offline, the safe sandboxed
    /// environment and working directory; online, the defaults.
    pub(crate) fn agent(&self, name: &str) -> claude_supervisor::Agent {
        let mut agent = claude_supervisor::Agent::new(name).cli_path(&self.cli);
        let Some((api, sandbox)) = &self.offline else {
            return agent;
        };
        let env = SafeEnv::new(sandbox, &api.base_url()).expect("safe environment");
        agent = agent.cwd(sandbox.work_dir());
        for (k, v) in env.vars() {
            agent = agent.env(k.to_string(), v.to_string());
        }
        for k in env.removed() {
            agent = agent.env_remove(k.to_string());
        }
        agent
    }

    /// A directory for the example's own files (a session store, config dirs), inside the sandbox
    /// when offline.
    pub(crate) fn scratch(&self, name: &str) -> PathBuf {
        let root = match &self.offline {
            Some((_, sandbox)) => sandbox.root().to_path_buf(),
            None => self.scratch.path().to_path_buf(),
        };
        root.join(name)
    }
}

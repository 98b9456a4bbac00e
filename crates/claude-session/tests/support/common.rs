//! Shared by the session integration tests: sessions on the real CLI (against the fake Messages
//! API, in a sandbox) or on fake-claude, and the process-table checks run after every test.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use claude_protocol::{ClaudeOptions, ClaudeOptionsBuilder};
use claude_session::{HealthSnapshot, Session, SessionConfig, SessionConfigBuilder};
use claude_testing::fake_api::FakeApi;
use claude_testing::procs;
use claude_testing::real_cli::{RealCli, SafeEnv, Sandbox};

/// The real CLI, the fake API it talks to, and the sandbox it runs in.
pub struct RealEnv {
    pub cli: RealCli,
    pub api: FakeApi,
    pub sandbox: Sandbox,
}

impl RealEnv {
    /// `None` (after a loud message) when the real CLI is not installed, unless CI requires it.
    pub async fn start() -> Option<RealEnv> {
        let cli = claude_testing::real_cli::real_cli_or_skip()?;
        let api = FakeApi::start().await;
        let sandbox = Sandbox::new().expect("sandbox");
        Some(RealEnv { cli, api, sandbox })
    }

    /// CLI options carrying the safe environment (validated by the harness).
    pub fn options(&self) -> ClaudeOptionsBuilder {
        let env = SafeEnv::new(&self.sandbox, &self.api.base_url()).expect("safe environment");
        let mut builder = ClaudeOptions::builder().cwd(self.sandbox.work_dir());
        for (k, v) in env.vars() {
            builder = builder.env(k, v);
        }
        for k in env.removed() {
            builder = builder.env_remove(k);
        }
        builder
    }

    pub fn config(&self, name: &str, options: ClaudeOptions) -> SessionConfigBuilder {
        SessionConfig::builder(name, self.cli.path())
            .options(options)
            .init_timeout("60s")
            .control_timeout("20s")
    }

    pub async fn session(&self, name: &str) -> Session {
        let options = self.options().build().expect("options");
        Session::start(self.config(name, options).build().expect("config"))
            .await
            .expect("session starts")
    }
}

/// A session's pid, from its health report.
pub async fn pid_of(session: &Session) -> i32 {
    let h: HealthSnapshot = session.health().await.expect("health");
    h.pid.expect("pid") as i32
}

/// Stops the session and checks that its process group is empty and nothing is `<defunct>`.
pub async fn stop_and_check(session: Session, pid: i32) {
    session.stop().await.expect("stop");
    assert_group_gone(pid).await;
}

/// The process group led by `pgid` is empty (bounded wait). A zombie is still a member of its
/// group until it is reaped, so this also proves that every process of the group was reaped.
pub async fn assert_group_gone(pgid: i32) {
    if let Err(left) = procs::wait_group_empty_async(pgid, Duration::from_secs(10)).await {
        panic!("processes survived (or were not reaped) in group {pgid}: {left:#?}");
    }
}

/// Pids of live processes whose working directory is `dir` or below it.
pub fn processes_in(dir: &std::path::Path) -> Vec<i32> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    procs::list()
        .into_iter()
        .filter(|p| !p.is_zombie())
        .filter(|p| {
            std::fs::read_link(format!("/proc/{}/cwd", p.pid))
                .is_ok_and(|cwd| cwd.starts_with(&dir))
        })
        .map(|p| p.pid)
        .collect()
}

/// Waits (bounded) until a process runs in `dir`, and returns the process groups found there.
pub async fn groups_running_in(dir: &std::path::Path) -> Vec<i32> {
    for _ in 0..600 {
        let mut groups: Vec<i32> = processes_in(dir)
            .into_iter()
            .filter_map(procs::info)
            .map(|p| p.pgid)
            .collect();
        if !groups.is_empty() {
            groups.sort_unstable();
            groups.dedup();
            return groups;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no process ever ran in {}", dir.display());
}

/// A session on fake-claude, in a temporary HOME, with a scenario.
pub struct FakeEnv {
    pub dir: tempfile::TempDir,
}

impl FakeEnv {
    pub fn new() -> FakeEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["home", "config", "work", "state", "record"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        FakeEnv { dir }
    }

    pub fn path(&self, sub: &str) -> std::path::PathBuf {
        self.dir.path().join(sub)
    }

    pub fn options(
        &self,
        scenario: &claude_testing::fake_claude::Scenario,
    ) -> ClaudeOptionsBuilder {
        let mut builder = ClaudeOptions::builder()
            .cwd(self.path("work"))
            .env("HOME", self.path("home").into_os_string())
            .env("CLAUDE_CONFIG_DIR", self.path("config").into_os_string())
            .env(
                claude_testing::fake_claude::ENV_STATE_DIR,
                self.path("state").into_os_string(),
            )
            .env(
                claude_testing::fake_claude::ENV_RECORD_DIR,
                self.path("record").into_os_string(),
            );
        for (k, v) in scenario.to_env() {
            builder = builder.env(k, v);
        }
        builder
    }

    pub fn config(
        &self,
        name: &str,
        scenario: &claude_testing::fake_claude::Scenario,
    ) -> SessionConfigBuilder {
        let options = self.options(scenario).build().expect("options");
        SessionConfig::builder(name, claude_testing::fake_claude::fake_claude_path())
            .options(options)
            .init_timeout("20s")
            .control_timeout("5s")
    }

    pub async fn session(
        &self,
        name: &str,
        scenario: &claude_testing::fake_claude::Scenario,
    ) -> Session {
        Session::start(self.config(name, scenario).build().expect("config"))
            .await
            .expect("session starts")
    }

    /// Every prompt fake-claude received, over all its processes.
    pub fn prompts_received(&self) -> Vec<String> {
        let recordings =
            claude_testing::fake_claude::Recording::read(&self.path("record")).unwrap_or_default();
        recordings
            .iter()
            .flat_map(|r| r.stdin_json())
            .filter(|v| v["type"] == "user")
            .filter_map(|v| v["message"]["content"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Waits (bounded) until the session's actor has stopped.
pub async fn wait_stopped(session: &Session) {
    for _ in 0..400 {
        if !session.is_running() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("session `{}` is still running", session.name());
}

impl FakeEnv {
    /// The pids of every fake-claude process this env started (from its recordings).
    pub fn pids(&self) -> Vec<i32> {
        claude_testing::fake_claude::Recording::read(&self.path("record"))
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r.pid.map(|p| p as i32))
            .collect()
    }

    /// Every process group this env started is empty (and reaped).
    pub async fn assert_all_gone(&self) {
        let pids = self.pids();
        assert!(!pids.is_empty(), "fake-claude recorded no process");
        for pid in pids {
            assert_group_gone(pid).await;
        }
    }
}

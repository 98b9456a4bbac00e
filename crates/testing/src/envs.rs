//! Ready-made environments for tests that run sessions: CLI options (and the CLI path) for the
//! real CLI in a sandbox against the fake Messages API, or for fake-claude with a scenario.
//!
//! Both only produce [`ClaudeOptions`]; the code under test spawns the process. The real CLI's
//! environment always comes from [`SafeEnv`], which refuses anything but loopback and the
//! sandbox's own directories.

use std::path::{Path, PathBuf};
use std::time::Duration;

use claude_protocol::{ClaudeOptions, ClaudeOptionsBuilder};

use crate::fake_api::FakeApi;
use crate::fake_claude::{ENV_RECORD_DIR, ENV_STATE_DIR, Recording, Scenario, fake_claude_path};
use crate::procs;
use crate::real_cli::{RealCli, SafeEnv, Sandbox, real_cli_or_skip};

/// The real CLI, the fake API it talks to, and the sandbox it runs in.
#[derive(Debug)]
pub struct RealEnv {
    /// The real CLI.
    pub cli: RealCli,
    /// The fake Messages API.
    pub api: FakeApi,
    /// The sandbox (HOME, config dir, TMPDIR, working directory).
    pub sandbox: Sandbox,
}

impl RealEnv {
    /// `None` (after a loud message) when the real CLI is not installed, unless CI requires it
    /// (then it panics).
    pub async fn start() -> Option<RealEnv> {
        let cli = real_cli_or_skip()?;
        let api = FakeApi::start().await;
        let sandbox = Sandbox::new().expect("sandbox");
        Some(RealEnv { cli, api, sandbox })
    }

    /// The CLI's path.
    pub fn cli_path(&self) -> &Path {
        self.cli.path()
    }

    /// CLI options carrying the safe environment (validated), with the sandbox's working dir.
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
}

/// fake-claude in a temporary HOME, recording what it receives.
#[derive(Debug)]
pub struct FakeEnv {
    /// The temporary directory (`home/`, `config/`, `work/`, `state/`, `record/`).
    pub dir: tempfile::TempDir,
}

impl Default for FakeEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeEnv {
    /// A fresh temporary directory.
    pub fn new() -> FakeEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["home", "config", "work", "state", "record"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create dir");
        }
        FakeEnv { dir }
    }

    /// A subdirectory.
    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// The fake CLI's path (built on demand).
    pub fn cli_path(&self) -> PathBuf {
        fake_claude_path()
    }

    /// CLI options that run `scenario` in this directory.
    pub fn options(&self, scenario: &Scenario) -> ClaudeOptionsBuilder {
        let mut builder = ClaudeOptions::builder()
            .cwd(self.path("work"))
            .env("HOME", self.path("home").into_os_string())
            .env("CLAUDE_CONFIG_DIR", self.path("config").into_os_string())
            .env(ENV_STATE_DIR, self.path("state").into_os_string())
            .env(ENV_RECORD_DIR, self.path("record").into_os_string());
        for (k, v) in scenario.to_env() {
            builder = builder.env(k, v);
        }
        builder
    }

    /// Every prompt fake-claude received, over all its processes, in order of start.
    pub fn prompts_received(&self) -> Vec<String> {
        Recording::read(&self.path("record"))
            .unwrap_or_default()
            .iter()
            .flat_map(|r| r.stdin_json())
            .filter(|v| v["type"] == "user")
            .filter_map(|v| v["message"]["content"].as_str().map(str::to_owned))
            .collect()
    }

    /// The pids of every fake-claude process started here.
    pub fn pids(&self) -> Vec<i32> {
        Recording::read(&self.path("record"))
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r.pid.map(|p| p as i32))
            .collect()
    }

    /// Every process group started here is empty (and reaped).
    ///
    /// # Panics
    ///
    /// When no process was recorded, or a group still has members after 10 s.
    pub async fn assert_all_gone(&self) {
        let pids = self.pids();
        assert!(!pids.is_empty(), "fake-claude recorded no process");
        for pid in pids {
            assert_group_gone(pid).await;
        }
    }
}

/// The process group led by `pgid` is empty (bounded wait). A zombie stays a member of its group
/// until it is reaped, so this also proves every process of the group was reaped.
///
/// # Panics
///
/// When the group still has members after 10 s.
pub async fn assert_group_gone(pgid: i32) {
    if let Err(left) = procs::wait_group_empty_async(pgid, Duration::from_secs(10)).await {
        panic!("processes survived (or were not reaped) in group {pgid}: {left:#?}");
    }
}

/// Pids of live processes whose working directory is `dir` or below it.
pub fn processes_in(dir: &Path) -> Vec<i32> {
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

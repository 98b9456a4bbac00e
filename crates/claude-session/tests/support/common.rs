//! Shared by the session integration tests: sessions on the real CLI (against the fake Messages
//! API, in a sandbox) or on fake-claude, and the process-table checks run after every test.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use claude_protocol::ClaudeOptions;
use claude_session::{HealthSnapshot, Session, SessionConfig, SessionConfigBuilder};
pub use claude_testing::envs::{RealEnv, assert_group_gone, processes_in};
use claude_testing::fake_claude::Scenario;
use claude_testing::procs;

pub trait RealEnvExt {
    fn config(&self, name: &str, options: ClaudeOptions) -> SessionConfigBuilder;
    async fn session(&self, name: &str) -> Session;
}

impl RealEnvExt for RealEnv {
    fn config(&self, name: &str, options: ClaudeOptions) -> SessionConfigBuilder {
        SessionConfig::builder(name, self.cli_path())
            .options(options)
            .init_timeout("60s")
            .control_timeout("20s")
    }

    async fn session(&self, name: &str) -> Session {
        let options = self.options().build().expect("options");
        Session::start(self.config(name, options).build().expect("config"))
            .await
            .expect("session starts")
    }
}

/// fake-claude sessions.
pub struct FakeEnv(pub claude_testing::envs::FakeEnv);

impl std::ops::Deref for FakeEnv {
    type Target = claude_testing::envs::FakeEnv;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl FakeEnv {
    pub fn new() -> FakeEnv {
        FakeEnv(claude_testing::envs::FakeEnv::new())
    }

    pub fn config(&self, name: &str, scenario: &Scenario) -> SessionConfigBuilder {
        let options = self.options(scenario).build().expect("options");
        SessionConfig::builder(name, self.cli_path())
            .options(options)
            .init_timeout("20s")
            .control_timeout("5s")
    }

    pub async fn session(&self, name: &str, scenario: &Scenario) -> Session {
        Session::start(self.config(name, scenario).build().expect("config"))
            .await
            .expect("session starts")
    }
}

/// A session's pid, from its health report.
pub async fn pid_of(session: &Session) -> i32 {
    let h: HealthSnapshot = session.health().await.expect("health");
    h.pid.expect("pid") as i32
}

/// Stops the session and checks that its process group is empty (and reaped).
pub async fn stop_and_check(session: Session, pid: i32) {
    session.stop().await.expect("stop");
    assert_group_gone(pid).await;
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

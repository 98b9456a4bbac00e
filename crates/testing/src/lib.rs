//! Test doubles for the Claude Code CLI.
//!
//! - [`fake_api`]: a fake Anthropic Messages API on loopback, so the *real* CLI runs offline.
//! - [`real_cli`]: finds the pinned real CLI and spawns it only with a safe, sandboxed environment.
//! - [`fake_claude`]: the scenario language of the `fake-claude` binary (a scripted fake CLI).
//! - [`procs`]: process-table checks: no survivor, no `<defunct>`.
//! - [`envs`]: ready-made CLI options for tests: the real CLI in a sandbox against the fake API
//!   ([`envs::RealEnv`]), or fake-claude with a scenario ([`envs::FakeEnv`]).

pub mod envs;
pub mod fake_api;
pub mod fake_claude;
pub mod procs;
pub mod real_cli;

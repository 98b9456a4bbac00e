//! Test doubles for the Claude Code CLI.
//!
//! - [`fake_api`]: a fake Anthropic Messages API on loopback, so the *real* CLI runs offline.
//! - [`real_cli`]: finds the pinned real CLI and spawns it only with a safe, sandboxed environment.
//! - [`fake_claude`]: the scenario language of the `fake-claude` binary (a scripted fake CLI).
//! - [`postgres`]: a real PostgreSQL server for one test (`TempPostgres`).
//! - [`procs`]: process-table checks: no survivor, no `<defunct>`.
//! - [`envs`]: ready-made CLI options for tests: the real CLI in a sandbox against the fake API
//!   ([`envs::RealEnv`]), or fake-claude with a scenario ([`envs::FakeEnv`]).

pub mod envs;
pub mod fake_api;
pub mod fake_claude;
pub mod postgres;
pub mod procs;
pub mod real_cli;

/// Writes an executable script (mode 0755) at `path`, safe to run at once from a test process
/// that spawns children on other threads.
///
/// A file this process holds open for writing is inherited by every child forked meanwhile (on
/// any thread) until that child calls `exec`; running the script then fails with `ETXTBSY`
/// ("Text file busy"). So the file is written by a short-lived `sh` child, never opened for
/// writing here.
///
/// # Errors
///
/// When `sh` cannot be started or the file cannot be written (its stderr, named with the path).
pub fn write_executable(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("/bin/sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(contents.as_bytes())?;
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "writing {}: {} ({})",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        )))
    }
}

/// Whether this machine lets a test make a network namespace (`unshare -n true` succeeds), for
/// the egress tests. Where it does not, this says so loudly on stderr (the caller skips) — unless
/// `CI` is set: CI runs those tests, so there it panics instead.
///
/// # Panics
///
/// When `CI` is set and namespaces are refused.
pub fn network_namespaces_allowed() -> bool {
    let ok = std::process::Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "network namespaces are required in CI but `unshare -n` is refused here"
        );
        eprintln!("SKIPPED: network namespaces are not permitted on this machine (not root?)");
    }
    ok
}

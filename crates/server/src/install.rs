//! Where the server finds the Claude Code CLI, and `install-cli`: the CLI from the npm registry
//! into the data dir (`<data_dir>/cli-<version>`, the layout of `scripts/install-claude-cli.sh`).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use claude_supervisor::find_cli;

use crate::config::Config;

/// The npm package of the CLI.
pub const NPM_PACKAGE: &str = "@anthropic-ai/claude-code";

/// The CLI installation could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// Not a version.
    #[error("`{0}` is not a version (expected X.Y.Z)")]
    BadVersion(String),
    /// This machine is not one the CLI ships for.
    #[error("the CLI has no build for {0}")]
    Platform(String),
    /// npm could not be run.
    #[error("cannot run npm (install Node.js 20 or newer with npm): {0}")]
    Npm(#[source] std::io::Error),
    /// npm failed.
    #[error("`npm install {package}` into {prefix} failed ({status}): {stderr_tail}")]
    NpmFailed {
        /// What was installed.
        package: String,
        /// Where.
        prefix: PathBuf,
        /// npm's exit status.
        status: std::process::ExitStatus,
        /// The end of npm's stderr.
        stderr_tail: String,
    },
    /// npm succeeded but the binary is not where it should be.
    #[error("npm installed {package}, but {binary} is missing")]
    Missing {
        /// What was installed.
        package: String,
        /// Where its binary should be.
        binary: PathBuf,
    },
}

/// The platform part of the CLI's binary package (`linux-x64`, `linux-arm64`).
fn platform() -> Result<&'static str, InstallError> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Ok("linux-x64"),
        ("linux", "aarch64") => Ok("linux-arm64"),
        ("macos", "x86_64") => Ok("darwin-x64"),
        ("macos", "aarch64") => Ok("darwin-arm64"),
        (os, arch) => Err(InstallError::Platform(format!("{os}-{arch}"))),
    }
}

/// Where `install-cli` puts version `version` under `data_dir`: its binary.
pub fn installed_binary(data_dir: &Path, version: &str) -> Option<PathBuf> {
    let platform = platform().ok()?;
    Some(
        data_dir
            .join(format!("cli-{version}"))
            .join("node_modules/@anthropic-ai")
            .join(format!("claude-code-{platform}"))
            .join("claude"),
    )
}

/// The CLI the server runs: the config's `cli_path`; else the CLI the usual discovery finds
/// (`CLAUDE_CLI_PATH`, the test cache, `PATH`); else the pinned version installed in the data dir
/// by `install-cli`. `None`: none found (the tree reports it when a session starts).
pub fn locate_cli(config: &Config) -> Option<PathBuf> {
    if let Some(path) = &config.supervisor.cli_path {
        return Some(path.clone());
    }
    if let Ok(found) = find_cli(None) {
        return Some(found);
    }
    let pinned = claude_protocol::PINNED_VERSION.to_string();
    installed_binary(&config.data_dir(), &pinned).filter(|p| p.is_file())
}

/// Installs version `version` of the CLI into `data_dir` with npm (reusing an install that is
/// already there); returns its binary.
///
/// # Errors
///
/// [`InstallError`]: the version, the platform, npm.
pub async fn install_cli(data_dir: &Path, version: &str) -> Result<PathBuf, InstallError> {
    let parts: Vec<&str> = version.split('.').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(InstallError::BadVersion(version.to_owned()));
    }
    platform()?;
    let binary = installed_binary(data_dir, version).expect("the platform is known");
    if binary.is_file() {
        return Ok(binary);
    }
    let prefix = data_dir.join(format!("cli-{version}"));
    let package = format!("{NPM_PACKAGE}@{version}");
    let out = tokio::process::Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&prefix)
        .arg(&package)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(InstallError::Npm)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(InstallError::NpmFailed {
            package,
            prefix,
            status: out.status,
            stderr_tail: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
        });
    }
    if !binary.is_file() {
        return Err(InstallError::Missing { package, binary });
    }
    Ok(binary)
}

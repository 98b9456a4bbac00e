//! Finding the `claude` executable and checking its version.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The CLI version this crate pins and caches.
pub const PINNED_VERSION: CliVersion = CliVersion {
    major: 2,
    minor: 1,
    patch: 329,
};
/// The oldest CLI whose behaviour was measured; older ones are refused.
pub const MIN_SUPPORTED_VERSION: CliVersion = CliVersion {
    major: 2,
    minor: 1,
    patch: 197,
};
/// Environment variable naming the CLI explicitly.
pub const CLI_PATH_ENV: &str = "CLAUDE_CLI_PATH";
/// Environment variable overriding the cache root (default `~/.cache/claude-supervisor`).
pub const CACHE_ENV: &str = "CLAUDE_SUPERVISOR_CACHE";
/// How long `--version` may take by default.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the CLI could not be found or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// Nothing executable in any place looked.
    #[error("Claude Code CLI not found; looked in:\n{}", list(searched))]
    NotFound {
        /// Every place looked, in order.
        searched: Vec<PathBuf>,
    },
    /// A path named explicitly (argument or `CLAUDE_CLI_PATH`) is not an executable file.
    #[error("the Claude Code CLI named by {origin} ({path}) is not an executable file")]
    NotExecutable {
        /// The path.
        path: PathBuf,
        /// Who named it (`the explicit path`, `CLAUDE_CLI_PATH`).
        origin: &'static str,
    },
    /// `--version` could not be started.
    #[error("cannot run {path} --version: {source}")]
    Spawn {
        /// The CLI.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `--version` did not finish in time; the process group was killed.
    #[error("{path} --version did not answer within {}; killed it", humantime::format_duration(*timeout))]
    Timeout {
        /// The CLI.
        path: PathBuf,
        /// The limit.
        timeout: Duration,
    },
    /// `--version` exited unsuccessfully.
    #[error("{path} --version failed ({status}): {stderr}")]
    Failed {
        /// The CLI.
        path: PathBuf,
        /// The exit status.
        status: String,
        /// The end of its stderr.
        stderr: String,
    },
    /// `--version` printed something that is not a version.
    #[error("{path} --version printed no version (expected `X.Y.Z (Claude Code)`): {output:?}")]
    Unparsable {
        /// The CLI.
        path: PathBuf,
        /// What it printed (truncated).
        output: String,
    },
    /// The CLI is older than [`MIN_SUPPORTED_VERSION`].
    #[error("{path} is Claude Code {found}, older than the oldest supported {minimum}")]
    TooOld {
        /// The CLI.
        path: PathBuf,
        /// Its version.
        found: CliVersion,
        /// The minimum.
        minimum: CliVersion,
    },
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("  {}", p.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A CLI version `major.minor.patch`; ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CliVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl CliVersion {
    /// A version.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Parses `claude --version` output (`2.1.329 (Claude Code)`): the first token of the
    /// first non-empty line; a pre-release suffix (`-beta.1`) is ignored.
    pub fn parse_version_output(output: &str) -> Option<Self> {
        let line = output.lines().map(str::trim).find(|l| !l.is_empty())?;
        let token = line.split_whitespace().next()?;
        let core = token.trim_start_matches('v').split(['-', '+']).next()?;
        core.parse().ok()
    }
}

impl fmt::Display for CliVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A string that is not `X.Y.Z`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a version (expected X.Y.Z): {0:?}")]
pub struct VersionParseError(pub String);

impl FromStr for CliVersion {
    type Err = VersionParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || VersionParseError(s.to_owned());
        let mut parts = s.split('.');
        let mut num = || -> Result<u32, VersionParseError> {
            let p = parts.next().ok_or_else(bad)?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        let v = CliVersion {
            major: num()?,
            minor: num()?,
            patch: num()?,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(v)
    }
}

/// Where to look for the CLI. [`CliLocator::from_env`] reads the process environment;
/// tests build one by hand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CliLocator {
    /// An explicit path (checked first; must be executable if given).
    pub explicit: Option<PathBuf>,
    /// The value of `CLAUDE_CLI_PATH` (must be executable if given).
    pub env_path: Option<PathBuf>,
    /// The value of `PATH`.
    pub path_var: Option<OsString>,
    /// The home directory.
    pub home: Option<PathBuf>,
    /// The value of `CLAUDE_SUPERVISOR_CACHE`.
    pub cache_root: Option<PathBuf>,
}

impl CliLocator {
    /// From `CLAUDE_CLI_PATH`, `PATH`, `HOME`, `CLAUDE_SUPERVISOR_CACHE` (empty values are
    /// treated as unset).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        Self {
            explicit: None,
            env_path: var(CLI_PATH_ENV).map(PathBuf::from),
            path_var: var("PATH"),
            home: var("HOME").map(PathBuf::from),
            cache_root: var(CACHE_ENV).map(PathBuf::from),
        }
    }

    /// Sets the explicit path.
    pub fn with_explicit(mut self, explicit: Option<&Path>) -> Self {
        self.explicit = explicit.map(Path::to_path_buf);
        self
    }

    /// The pinned cache's binary: `<cache root>/cli-2.1.329/node_modules/@anthropic-ai/
    /// claude-code-linux-x64/claude`, the cache root being `CLAUDE_SUPERVISOR_CACHE` or
    /// `~/.cache/claude-supervisor`.
    pub fn pinned_cache_path(&self) -> Option<PathBuf> {
        let root = match (&self.cache_root, &self.home) {
            (Some(r), _) => r.clone(),
            (None, Some(h)) => h.join(".cache/claude-supervisor"),
            (None, None) => return None,
        };
        Some(
            root.join(format!("cli-{PINNED_VERSION}"))
                .join("node_modules/@anthropic-ai/claude-code-linux-x64/claude"),
        )
    }

    /// The candidate paths after the explicit ones, in order: `claude` in each `PATH`
    /// entry, the usual install locations, the pinned cache.
    pub fn candidates(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Some(path) = &self.path_var {
            out.extend(
                std::env::split_paths(path)
                    .filter(|d| !d.as_os_str().is_empty())
                    .map(|d| d.join("claude")),
            );
        }
        if let Some(h) = &self.home {
            out.push(h.join(".npm-global/bin/claude"));
        }
        out.push(PathBuf::from("/usr/local/bin/claude"));
        if let Some(h) = &self.home {
            for rel in [
                ".local/bin/claude",
                "node_modules/.bin/claude",
                ".yarn/bin/claude",
                ".claude/local/claude",
            ] {
                out.push(h.join(rel));
            }
        }
        out.extend(self.pinned_cache_path());
        out
    }

    /// Finds the CLI: the explicit path, `CLAUDE_CLI_PATH`, then [`candidates`](Self::candidates).
    pub fn find(&self) -> Result<PathBuf, DiscoveryError> {
        if let Some(p) = &self.explicit {
            return if is_executable(p) {
                Ok(p.clone())
            } else {
                Err(DiscoveryError::NotExecutable {
                    path: p.clone(),
                    origin: "the explicit path",
                })
            };
        }
        if let Some(p) = &self.env_path {
            return if is_executable(p) {
                Ok(p.clone())
            } else {
                Err(DiscoveryError::NotExecutable {
                    path: p.clone(),
                    origin: CLI_PATH_ENV,
                })
            };
        }
        let searched = self.candidates();
        searched
            .iter()
            .find(|p| is_executable(p))
            .cloned()
            .ok_or(DiscoveryError::NotFound { searched })
    }
}

fn is_executable(p: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(p) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Finds the CLI from `explicit` and the process environment (see [`CliLocator`]).
pub fn find_cli(explicit: Option<&Path>) -> Result<PathBuf, DiscoveryError> {
    CliLocator::from_env().with_explicit(explicit).find()
}

/// Runs `<path> --version` (timeout [`DEFAULT_PROBE_TIMEOUT`]) and checks the version.
pub fn probe_version(path: &Path) -> Result<CliVersion, DiscoveryError> {
    probe_version_with_timeout(path, DEFAULT_PROBE_TIMEOUT)
}

/// Runs `<path> --version` in its own process group with stdin from `/dev/null`; if it
/// has not exited within `timeout`, the whole group is killed and reaped. Fails when the
/// output is not a version or the version is older than [`MIN_SUPPORTED_VERSION`].
pub fn probe_version_with_timeout(
    path: &Path,
    timeout: Duration,
) -> Result<CliVersion, DiscoveryError> {
    let mut cmd = Command::new(path);
    cmd.arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.env_remove("CLAUDECODE");
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().map_err(|source| DiscoveryError::Spawn {
        path: path.to_path_buf(),
        source,
    })?;
    let stdout = spawn_reader(child.stdout.take());
    let stderr = spawn_reader(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                kill_group(&mut child);
                return Err(DiscoveryError::Timeout {
                    path: path.to_path_buf(),
                    timeout,
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(source) => {
                kill_group(&mut child);
                return Err(DiscoveryError::Spawn {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    };
    // Children of the probe may still hold the pipes; give them a moment, then give up.
    #[cfg(unix)]
    signal_group(child.id());
    let out = stdout
        .recv_timeout(Duration::from_secs(1))
        .unwrap_or_default();
    let err = stderr
        .recv_timeout(Duration::from_secs(1))
        .unwrap_or_default();
    if !status.success() {
        return Err(DiscoveryError::Failed {
            path: path.to_path_buf(),
            status: status.to_string(),
            stderr: tail(&err, 2000),
        });
    }
    let version =
        CliVersion::parse_version_output(&out).ok_or_else(|| DiscoveryError::Unparsable {
            path: path.to_path_buf(),
            output: tail(&out, 200),
        })?;
    if version < MIN_SUPPORTED_VERSION {
        return Err(DiscoveryError::TooOld {
            path: path.to_path_buf(),
            found: version,
            minimum: MIN_SUPPORTED_VERSION,
        });
    }
    Ok(version)
}

fn tail(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.len() <= max {
        return s.to_owned();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}

fn spawn_reader<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            // Cap what we keep: a version line is short.
            let _ = pipe.by_ref().take(1 << 20).read_to_end(&mut buf);
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
        });
    } else {
        let _ = tx.send(String::new());
    }
    rx
}

/// Kills the probe's process group (or the child alone off Unix) and reaps the child.
fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    signal_group(child.id());
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGKILL to the process group led by `pid` (ours: started with `process_group(0)`).
#[cfg(unix)]
fn signal_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

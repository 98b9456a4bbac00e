//! Finding the `claude` executable and checking its version.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The CLI versions this project supports: the one place the range is written down.
///
/// Every other use derives from it ([`PINNED_VERSION`], [`MIN_SUPPORTED_VERSION`], the test
/// harness's pinned version, fake-claude's default) or is checked equal to it by a test (the
/// default of `scripts/install-claude-cli.sh`, the transcript folders under
/// `shared/cli-transcripts/`, which must be exactly the [`tested`](SupportedCli::tested) ones).
pub const SUPPORTED_CLI: SupportedCli = SupportedCli {
    minimum: CliVersion::new(2, 1, 197),
    pinned: CliVersion::new(2, 1, 329),
    tested: &[CliVersion::new(2, 1, 329), CliVersion::new(2, 1, 332)],
};

// The range must make sense; checked when the crate compiles.
const _: () = assert!(SUPPORTED_CLI.is_consistent());

/// The CLI version this crate pins and caches (`SUPPORTED_CLI.pinned`).
pub const PINNED_VERSION: CliVersion = SUPPORTED_CLI.pinned;
/// The oldest CLI accepted (`SUPPORTED_CLI.minimum`); older ones are refused.
pub const MIN_SUPPORTED_VERSION: CliVersion = SUPPORTED_CLI.minimum;
/// The npm package of the CLI.
pub const CLI_NPM_PACKAGE: &str = "@anthropic-ai/claude-code";

/// A range of supported CLI versions; see [`SUPPORTED_CLI`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SupportedCli {
    /// The oldest version accepted; older ones are refused.
    pub minimum: CliVersion,
    /// The version installed by `scripts/install-claude-cli.sh` and cached by
    /// [`CliLocator::pinned_cache_path`].
    pub pinned: CliVersion,
    /// The versions the whole suite (real-CLI tests and recorded transcripts) has passed
    /// with, oldest first. Versions newer than the last one work, with a warning.
    pub tested: &'static [CliVersion],
}

/// How a CLI version relates to a [`SupportedCli`] range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CliSupport {
    /// One of the tested versions.
    Tested,
    /// Between the minimum and the newest tested version, not itself tested: accepted.
    InRange,
    /// Newer than every tested version: accepted, with a warning (new releases mostly add
    /// fields, which the lossless types keep).
    NewerThanTested {
        /// The newest tested version.
        newest_tested: CliVersion,
    },
    /// Older than the minimum: refused.
    TooOld {
        /// The oldest version accepted.
        minimum: CliVersion,
    },
}

impl CliSupport {
    /// Whether a CLI of this version may be used (everything but [`CliSupport::TooOld`]).
    pub fn is_usable(&self) -> bool {
        !matches!(self, Self::TooOld { .. })
    }
}

impl SupportedCli {
    /// The newest of [`tested`](Self::tested) (the pinned version if the list is empty).
    pub const fn newest_tested(&self) -> CliVersion {
        let mut newest = self.pinned;
        let mut i = 0;
        while i < self.tested.len() {
            if newest.const_cmp(&self.tested[i]).is_lt() {
                newest = self.tested[i];
            }
            i += 1;
        }
        newest
    }

    /// Where `version` stands in this range.
    pub fn support(&self, version: CliVersion) -> CliSupport {
        if version < self.minimum {
            CliSupport::TooOld {
                minimum: self.minimum,
            }
        } else if self.tested.contains(&version) {
            CliSupport::Tested
        } else if version > self.newest_tested() {
            CliSupport::NewerThanTested {
                newest_tested: self.newest_tested(),
            }
        } else {
            CliSupport::InRange
        }
    }

    /// How to install a supported CLI, for error messages.
    pub fn install_hint(&self) -> String {
        format!(
            "install a supported one with `npm install -g {CLI_NPM_PACKAGE}@{}` (any version from {} \
             on; tested: {}), or for this project's tests `scripts/install-claude-cli.sh [VERSION|latest]`",
            self.pinned,
            self.minimum,
            self.tested
                .iter()
                .map(CliVersion::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    /// Whether the range makes sense: tested versions strictly ascending, none below the
    /// minimum, the pinned one among them.
    pub const fn is_consistent(&self) -> bool {
        if self.minimum.const_cmp(&self.pinned).is_gt() {
            return false;
        }
        let mut pinned_tested = false;
        let mut i = 0;
        while i < self.tested.len() {
            let v = self.tested[i];
            if v.const_cmp(&self.minimum).is_lt() {
                return false;
            }
            if i > 0 && !self.tested[i - 1].const_cmp(&v).is_lt() {
                return false;
            }
            if v.const_cmp(&self.pinned).is_eq() {
                pinned_tested = true;
            }
            i += 1;
        }
        pinned_tested
    }
}

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
    #[error(
        "{path} is Claude Code {found}, older than the oldest supported {minimum}; {}",
        SUPPORTED_CLI.install_hint()
    )]
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

    /// Compares in a `const` context (the same order as [`Ord`]).
    pub const fn const_cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        let pairs = [
            (self.major, other.major),
            (self.minor, other.minor),
            (self.patch, other.patch),
        ];
        let mut i = 0;
        while i < pairs.len() {
            if pairs[i].0 < pairs[i].1 {
                return Ordering::Less;
            }
            if pairs[i].0 > pairs[i].1 {
                return Ordering::Greater;
            }
            i += 1;
        }
        Ordering::Equal
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

// As the string `X.Y.Z`, the way the CLI spells it (`claude_code_version`).
impl serde::Serialize for CliVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CliVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

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

    /// The pinned cache's binary: `<cache root>/cli-<PINNED_VERSION>/node_modules/@anthropic-ai/
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

/// Runs `<path> --version` (timeout [`DEFAULT_PROBE_TIMEOUT`]) and checks the version against
/// [`SUPPORTED_CLI`]: older than the minimum is refused ([`DiscoveryError::TooOld`]); newer
/// than the newest tested is accepted with a `tracing` warning (see
/// [`probe_version_with_timeout`]).
pub fn probe_version(path: &Path) -> Result<CliVersion, DiscoveryError> {
    probe_version_with_timeout(path, DEFAULT_PROBE_TIMEOUT)
}

/// Runs `<path> --version` in its own process group with stdin from `/dev/null`; if it
/// has not exited within `timeout`, the whole group is killed and reaped. Fails when the
/// output is not a version or the version is older than [`MIN_SUPPORTED_VERSION`] (the error
/// names both versions and how to install a supported one). A version newer than
/// [`SupportedCli::newest_tested`] is returned, after a `tracing` warning naming both; use
/// [`SupportedCli::support`] to act on it yourself.
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
    match SUPPORTED_CLI.support(version) {
        CliSupport::TooOld { minimum } => Err(DiscoveryError::TooOld {
            path: path.to_path_buf(),
            found: version,
            minimum,
        }),
        CliSupport::NewerThanTested { newest_tested } => {
            tracing::warn!(
                cli = %path.display(),
                found = %version,
                newest_tested = %newest_tested,
                "Claude Code {version} is newer than the newest tested version {newest_tested}; \
                 it is used, but frames it adds are only kept raw until they are typed"
            );
            Ok(version)
        }
        CliSupport::Tested | CliSupport::InRange => Ok(version),
    }
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

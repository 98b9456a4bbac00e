//! The real Claude Code CLI, found and spawned only with a safe, sandboxed environment.
//!
//! - [`RealCli::find`]: the binary named by `CLAUDE_REAL_CLI`, else the pinned one installed by
//!   `scripts/install-claude-cli.sh` in `${CLAUDE_SUPERVISOR_CACHE:-$HOME/.cache/claude-supervisor}`.
//! - [`require_real_cli!`](crate::require_real_cli) / [`real_cli_or_skip`]: skip a test loudly when
//!   the CLI is absent, or fail it when `CLAUDE_REQUIRE_REAL_CLI=1` (CI).
//! - [`Sandbox`]: a temp dir with `home/`, `config/`, `tmp/`, `work/`.
//! - [`SafeEnv`]: the environment every real-CLI process needs (fake API on loopback only, dummy
//!   key, no traffic, no retries, every directory in the sandbox). Validated when built and
//!   again before every spawn. Other crates configure their own spawns with
//!   [`SafeEnv::vars`]/[`SafeEnv::removed`] or [`SafeEnv::apply`].
//! - [`RealCli::spawn_stream_json`]: the CLI in two-way stream-json mode, in its own process
//!   group, as a [`CliProcess`] (write a line, read a line with a timeout, shut down by the recipe).
//! - [`HostSnapshot`]: proves nothing was written to `/tmp/claude-<uid>`, `/tmp/cc-socks` or the
//!   real `~/.claude`.

mod env;
mod host;
mod process;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use env::{DUMMY_API_KEY, SafeEnv, Sandbox, check_env, check_loopback_url};
pub use host::{HostSnapshot, LeakCheck};
pub use process::{
    CliProcess, MARKER_VAR, Shutdown, ShutdownStage, assistant_texts, result_of, session_id_of,
};

use claude_protocol::{CliSupport, CliVersion, SUPPORTED_CLI};

use crate::fake_api::FakeApi;

/// The CLI version the project pins (`claude_protocol::SUPPORTED_CLI.pinned`); the default of
/// `scripts/install-claude-cli.sh` is checked equal to it by `tests/cli_versions_agree.rs`.
pub const PINNED_VERSION: CliVersion = claude_protocol::SUPPORTED_CLI.pinned;

/// The env var naming the binary to use instead of the cached one.
pub const CLI_PATH_VAR: &str = "CLAUDE_REAL_CLI";

/// The env var that turns a missing CLI from a skip into a failure (CI sets it to `1`).
pub const REQUIRE_VAR: &str = "CLAUDE_REQUIRE_REAL_CLI";

/// The arguments of two-way stream-json mode.
pub const STREAM_JSON_ARGS: [&str; 5] = [
    "--output-format",
    "stream-json",
    "--verbose",
    "--input-format",
    "stream-json",
];

/// Errors of the real-CLI harness.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RealCliError {
    /// The base URL is not plain `http://` on loopback with a port.
    #[error(
        "ANTHROPIC_BASE_URL {url:?} refused: only http://127.0.0.1:PORT, http://localhost:PORT or http://[::1]:PORT (a fake API) is allowed"
    )]
    NotLoopback {
        /// The refused URL.
        url: String,
    },
    /// A directory variable points outside the sandbox.
    #[error("{var}={path:?} refused: it must be inside the sandbox {sandbox:?}")]
    OutsideSandbox {
        /// The variable.
        var: String,
        /// Its value.
        path: PathBuf,
        /// The sandbox root.
        sandbox: PathBuf,
    },
    /// A required variable is missing or wrong.
    #[error("unsafe environment for the real CLI: {0}")]
    UnsafeEnv(String),
    /// A variable the safe environment controls cannot be overridden.
    #[error("{var} is controlled by the safe environment and cannot be set or overridden")]
    Protected {
        /// The variable.
        var: String,
    },
    /// The CLI binary was not found or does not run.
    #[error("real Claude CLI not usable: {0}")]
    NotFound(String),
    /// An I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Nothing matching arrived in time.
    #[error("timed out waiting for {what}\nlast lines:\n{last_lines}\nstderr tail:\n{stderr}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The stderr tail at that moment.
        stderr: String,
        /// The last lines read.
        last_lines: String,
    },
    /// stdout closed (the CLI exited) while waiting.
    #[error(
        "the CLI closed stdout (exit status {status:?}) while waiting for {what}\nstderr tail:\n{stderr}"
    )]
    Closed {
        /// What was awaited.
        what: String,
        /// Its exit status, if it was reaped within 2 s.
        status: Option<ExitStatus>,
        /// The stderr tail.
        stderr: String,
    },
    /// The CLI printed a line that is not JSON.
    #[error("the CLI printed a line that is not JSON ({source}): {line}")]
    BadJson {
        /// The line.
        line: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

impl RealCliError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> RealCliError {
        RealCliError::Io {
            context: context.into(),
            source,
        }
    }
}

/// The located real CLI binary and its version.
#[derive(Clone, Debug)]
pub struct RealCli {
    path: PathBuf,
    version: String,
}

/// The npm platform package name part for this machine (`linux-x64`, `linux-arm64`).
fn platform_package() -> Option<&'static str> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Some("claude-code-linux-x64"),
        ("linux", "aarch64") => Some("claude-code-linux-arm64"),
        _ => None,
    }
}

impl RealCli {
    /// Where `scripts/install-claude-cli.sh` puts the pinned binary:
    /// `${CLAUDE_SUPERVISOR_CACHE:-$HOME/.cache/claude-supervisor}/cli-<version>/node_modules/@anthropic-ai/claude-code-linux-<arch>/claude`.
    pub fn default_path() -> Option<PathBuf> {
        let cache = match std::env::var_os("CLAUDE_SUPERVISOR_CACHE") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => PathBuf::from(std::env::var_os("HOME")?)
                .join(".cache")
                .join("claude-supervisor"),
        };
        Some(
            cache
                .join(format!("cli-{PINNED_VERSION}"))
                .join("node_modules")
                .join("@anthropic-ai")
                .join(platform_package()?)
                .join("claude"),
        )
    }

    /// The CLI from `CLAUDE_REAL_CLI`, else [`RealCli::default_path`], if it exists and answers
    /// `--version`.
    pub fn find() -> Option<RealCli> {
        RealCli::locate().ok()
    }

    /// Like [`RealCli::find`], saying why the CLI is not usable.
    pub fn locate() -> Result<RealCli, RealCliError> {
        let path = match std::env::var_os(CLI_PATH_VAR) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => RealCli::default_path().ok_or_else(|| {
                RealCliError::NotFound(
                    "no HOME and no CLAUDE_SUPERVISOR_CACHE, or an unsupported platform".into(),
                )
            })?,
        };
        RealCli::at(&path)
    }

    /// The CLI at `path`, if it runs and answers `--version`.
    ///
    /// `--version` runs with a [`SafeEnv`] too (against a throwaway [`FakeApi`] and sandbox).
    pub fn at(path: &Path) -> Result<RealCli, RealCliError> {
        if !path.is_file() {
            return Err(RealCliError::NotFound(format!(
                "{} does not exist",
                path.display()
            )));
        }
        let sandbox = Sandbox::new()?;
        let api = FakeApi::try_start().map_err(|e| RealCliError::io("starting a fake API", e))?;
        let env = SafeEnv::new(&sandbox, &api.base_url())?;
        let mut cmd = Command::new(path);
        cmd.arg("--version")
            .current_dir(env.work_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        env.apply_clean(&mut cmd);
        env::check_command_env(&cmd, env.sandbox_root())?;
        let mut child = cmd
            .spawn()
            .map_err(|e| RealCliError::NotFound(format!("{}: {e}", path.display())))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(RealCliError::NotFound(format!(
                        "{} --version did not finish",
                        path.display()
                    )));
                }
            }
        }
        let output = child
            .wait_with_output()
            .map_err(|e| RealCliError::io("reading --version", e))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let version = stdout
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        if !output.status.success() || !version.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(RealCliError::NotFound(format!(
                "{} --version: {} {stdout:?} {:?}",
                path.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(RealCli {
            path: path.to_owned(),
            version,
        })
    }

    /// The binary's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The version it reports, e.g. `2.1.329`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The version it reports, parsed (`None` if it is not `X.Y.Z`).
    pub fn cli_version(&self) -> Option<CliVersion> {
        CliVersion::parse_version_output(&self.version)
    }

    /// Where its version stands in [`SUPPORTED_CLI`] (`None` if it is not `X.Y.Z`).
    pub fn support(&self) -> Option<CliSupport> {
        self.cli_version().map(|v| SUPPORTED_CLI.support(v))
    }

    /// Spawns the CLI in two-way stream-json mode ([`STREAM_JSON_ARGS`] + `extra_args`) in
    /// `sandbox`, against `api`.
    ///
    /// Must be called inside a tokio runtime.
    pub fn spawn_stream_json(
        &self,
        sandbox: &Sandbox,
        api: &FakeApi,
        extra_args: &[&str],
    ) -> Result<CliProcess, RealCliError> {
        let env = SafeEnv::new(sandbox, &api.base_url())?;
        let mut args: Vec<String> = STREAM_JSON_ARGS.iter().map(|s| (*s).to_owned()).collect();
        args.extend(extra_args.iter().map(|s| (*s).to_owned()));
        self.spawn_with(&env, &args)
    }

    /// Spawns the CLI with exactly `args`, the environment `env` (cleared environment, see
    /// [`SafeEnv::apply_clean`]) and the sandbox's `work/` as cwd; piped stdio; its own process
    /// group; SIGKILL when the spawning thread dies (parent-death signal). The final environment
    /// is validated again ([`check_env`]); the spawn is refused otherwise.
    ///
    /// Must be called inside a tokio runtime.
    pub fn spawn_with(&self, env: &SafeEnv, args: &[String]) -> Result<CliProcess, RealCliError> {
        let mut cmd = Command::new(&self.path);
        cmd.args(args)
            .current_dir(env.work_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        env.apply_clean(&mut cmd);
        let marker = uuid::Uuid::new_v4().simple().to_string();
        cmd.env(process::MARKER_VAR, &marker);
        env::check_command_env(&cmd, env.sandbox_root())?;
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
            // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is
            // async-signal-safe; it allocates nothing and touches no lock. It makes the CLI die
            // with the test process (even on a panic abort or SIGKILL of the test).
            #[allow(unsafe_code)]
            unsafe {
                cmd.pre_exec(|| {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                        .map_err(std::io::Error::from)
                });
            }
        }
        let child = tokio::process::Command::from(cmd)
            .spawn()
            .map_err(|e| RealCliError::io(format!("spawning {}", self.path.display()), e))?;
        CliProcess::new(child, marker)
    }
}

/// The real CLI, or `None` after a LOUD skip message on stderr when it is not installed.
///
/// # Panics
/// When the CLI is absent and `CLAUDE_REQUIRE_REAL_CLI=1` (CI): absence is then a failure.
pub fn real_cli_or_skip() -> Option<RealCli> {
    match RealCli::locate() {
        Ok(cli) => {
            // Any supported version may run the suite (CI runs it on the pinned one and on the
            // newest release); say so when it is not one the suite is known to pass with.
            match cli.support() {
                Some(CliSupport::Tested) => {}
                Some(CliSupport::InRange) => eprintln!(
                    "note: real Claude CLI at {} is version {}, between the tested versions \
                     (pinned {PINNED_VERSION})",
                    cli.path().display(),
                    cli.version()
                ),
                Some(CliSupport::NewerThanTested { newest_tested }) => eprintln!(
                    "WARNING: real Claude CLI at {} is version {}, newer than the newest tested \
                     {newest_tested} (pinned {PINNED_VERSION})",
                    cli.path().display(),
                    cli.version()
                ),
                Some(CliSupport::TooOld { minimum }) => eprintln!(
                    "WARNING: real Claude CLI at {} is version {}, older than the minimum \
                     supported {minimum}: the runtime refuses it",
                    cli.path().display(),
                    cli.version()
                ),
                Some(_) | None => eprintln!(
                    "WARNING: real Claude CLI at {} reports an odd version {:?}",
                    cli.path().display(),
                    cli.version()
                ),
            }
            Some(cli)
        }
        Err(why) => {
            if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
                panic!(
                    "real Claude CLI required ({REQUIRE_VAR}=1) but not usable: {why}; run scripts/install-claude-cli.sh"
                );
            }
            eprintln!(
                "\n==================================================================\n\
                 SKIPPED: real Claude CLI not installed; run scripts/install-claude-cli.sh\n\
                 ({why})\n\
                 ==================================================================\n"
            );
            None
        }
    }
}

/// Evaluates to the [`RealCli`](crate::real_cli::RealCli), or returns early from the enclosing
/// test (a function returning `()`) after a LOUD skip message when the CLI is not installed.
/// With `CLAUDE_REQUIRE_REAL_CLI=1` a missing CLI fails the test instead.
#[macro_export]
macro_rules! require_real_cli {
    () => {
        match $crate::real_cli::real_cli_or_skip() {
            ::std::option::Option::Some(cli) => cli,
            ::std::option::Option::None => return,
        }
    };
}

/// Writes an executable wrapper script at `<sandbox root>/<name>` that runs the real CLI at
/// `cli` under `env -i` with exactly the [`SafeEnv`] for `base_url` (and a minimal `PATH`), and
/// returns its path: code that finds or runs "the CLI" by itself (discovery, a version probe, an
/// example binary) then can only ever reach the fake API.
///
/// # Errors
///
/// [`SafeEnv::new`]'s refusal of `base_url`, or the file could not be written.
pub fn write_safe_wrapper(
    cli: &std::path::Path,
    sandbox: &Sandbox,
    base_url: &str,
    name: &str,
) -> std::io::Result<std::path::PathBuf> {
    fn quote(s: &str) -> String {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
    let env = SafeEnv::new(sandbox, base_url)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let mut script = String::from("#!/bin/sh\nexec env -i");
    for (k, v) in env.vars() {
        script.push_str(&format!(" {}", quote(&format!("{k}={v}"))));
    }
    script.push_str(&format!(
        " PATH=/usr/bin:/bin {} \"$@\"\n",
        quote(&cli.display().to_string())
    ));
    let wrapper = sandbox.root().join(name);
    crate::write_executable(&wrapper, &script)?;
    Ok(wrapper)
}

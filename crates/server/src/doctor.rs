//! `doctor`: checks that this machine can run the server — the CLI and its version, the
//! credentials (named, never printed), the config, the data dir and the store — and says how to
//! fix each problem.

use std::io::Write;
use std::path::Path;

use claude_protocol::{CliSupport, SUPPORTED_CLI};

use crate::config::{Config, StoreKind};

/// How one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Fine.
    Ok,
    /// Works, but worth a look.
    Warn,
    /// Does not work.
    Fail,
}

/// One check: what, how it came out, what was found, and the fix.
#[derive(Clone, Debug)]
pub struct Check {
    /// What was checked.
    pub what: &'static str,
    /// How it came out.
    pub outcome: Outcome,
    /// What was found.
    pub detail: String,
    /// What to do about it (for a warning or a failure).
    pub fix: Option<String>,
}

impl Check {
    fn ok(what: &'static str, detail: impl Into<String>) -> Self {
        Self {
            what,
            outcome: Outcome::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn bad(
        what: &'static str,
        outcome: Outcome,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            what,
            outcome,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The variables that carry credentials for the CLI (their names only are ever shown).
const CREDENTIAL_VARS: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
];

/// Runs every check for `config` (`path`: its file, if any).
pub async fn run(config: Result<Config, crate::ConfigError>, path: Option<&Path>) -> Vec<Check> {
    let mut checks = Vec::new();
    let config = match config {
        Ok(c) => {
            checks.push(Check::ok(
                "config",
                match path {
                    Some(p) => format!("{} is valid", p.display()),
                    None => "no file: the embedded defaults".to_owned(),
                },
            ));
            c
        }
        Err(e) => {
            checks.push(Check::bad(
                "config",
                Outcome::Fail,
                e.to_string(),
                "correct the key named above (`claude-supervisor serve --help` lists the sections)",
            ));
            return checks;
        }
    };
    checks.push(cli(&config).await);
    checks.push(credentials());
    checks.push(gateway(&config, path));
    checks.push(data_dir(&config));
    checks.push(store(&config).await);
    checks
}

async fn cli(config: &Config) -> Check {
    let Some(path) = crate::install::locate_cli(config) else {
        return Check::bad(
            "cli",
            Outcome::Fail,
            "no Claude Code CLI found (config `supervisor.cli_path`, CLAUDE_CLI_PATH, PATH, the data dir)",
            "run `claude-supervisor install-cli` (installs the pinned version from the npm registry into the data dir)",
        );
    };
    let probe = tokio::task::spawn_blocking({
        let path = path.clone();
        move || claude_protocol::probe_version(&path)
    })
    .await;
    match probe {
        Ok(Ok(version)) => match SUPPORTED_CLI.support(version) {
            CliSupport::Tested => {
                Check::ok("cli", format!("{} ({version}, tested)", path.display()))
            }
            CliSupport::InRange | CliSupport::NewerThanTested { .. } => Check::bad(
                "cli",
                Outcome::Warn,
                format!("{} ({version}, not a tested version)", path.display()),
                format!(
                    "it should work; the tested versions are {:?} (`claude-supervisor install-cli --version {}`)",
                    SUPPORTED_CLI
                        .tested
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>(),
                    SUPPORTED_CLI.pinned
                ),
            ),
            _ => Check::bad(
                "cli",
                Outcome::Fail,
                format!(
                    "{} ({version}) is older than the minimum {}",
                    path.display(),
                    SUPPORTED_CLI.minimum
                ),
                format!(
                    "run `claude-supervisor install-cli --version {}`",
                    SUPPORTED_CLI.pinned
                ),
            ),
        },
        Ok(Err(e)) => Check::bad(
            "cli",
            Outcome::Fail,
            format!("{} does not answer `--version`: {e}", path.display()),
            "reinstall it: `claude-supervisor install-cli`",
        ),
        Err(e) => Check::bad(
            "cli",
            Outcome::Fail,
            format!("the version probe failed: {e}"),
            "run doctor again",
        ),
    }
}

fn credentials() -> Check {
    let set: Vec<&str> = CREDENTIAL_VARS
        .iter()
        .copied()
        .filter(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
        .collect();
    let stored = dirs::home_dir()
        .map(|h| h.join(".claude/.credentials.json"))
        .filter(|p| p.is_file());
    match (set.is_empty(), stored) {
        (false, _) => Check::ok("credentials", format!("set: {}", set.join(", "))),
        (true, Some(p)) => Check::ok("credentials", format!("a login in {}", p.display())),
        (true, None) => Check::bad(
            "credentials",
            Outcome::Fail,
            "no ANTHROPIC_API_KEY (nor another credential variable) and no stored login",
            "export ANTHROPIC_API_KEY=… (or run `claude` once and log in)",
        ),
    }
}

/// Whether the credential gateway will run, and with which variable (its name only).
fn gateway(config: &Config, path: Option<&Path>) -> Check {
    let path = path.unwrap_or(Path::new("<defaults>"));
    let resolved = config.gateway.resolve(path, &|var| {
        std::env::var(var).ok().filter(|v| !v.is_empty())
    });
    match resolved {
        Ok(Some(g)) => Check::ok(
            "gateway",
            format!(
                "on: the credential in {} ({}) is forwarded to {}; the CLIs get per-session tokens",
                g.credential_env,
                g.kind.as_str(),
                g.upstream_display
            ),
        ),
        Ok(None) if config.gateway.enabled == Some(false) => Check::bad(
            "gateway",
            Outcome::Warn,
            "off (`[gateway] enabled = false`): every CLI, its tools and what they run can read the credential in their environment",
            "remove `enabled = false` from `[gateway]` (on by default when a credential is set)",
        ),
        Ok(None) => Check::bad(
            "gateway",
            Outcome::Warn,
            "off: no credential variable is set for the gateway to hold",
            "export ANTHROPIC_API_KEY=… (or name another variable with `[gateway] credential_env`)",
        ),
        Err(e) => Check::bad(
            "gateway",
            Outcome::Fail,
            e.to_string(),
            "set the variable named above, or `[gateway] enabled = false`",
        ),
    }
}

fn data_dir(config: &Config) -> Check {
    let dir = config.data_dir();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return Check::bad(
            "data dir",
            Outcome::Fail,
            format!("cannot create {}: {e}", dir.display()),
            "set `[supervisor] data_dir` to a writable folder",
        );
    }
    let probe = dir.join(".doctor-probe");
    match std::fs::write(&probe, b"ok") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            Check::ok("data dir", format!("{} is writable", dir.display()))
        }
        Err(e) => Check::bad(
            "data dir",
            Outcome::Fail,
            format!("cannot write in {}: {e}", dir.display()),
            "set `[supervisor] data_dir` to a writable folder",
        ),
    }
}

async fn store(config: &Config) -> Check {
    match config.store.kind {
        StoreKind::Memory => Check::bad(
            "store",
            Outcome::Warn,
            "in memory: records and conversations are gone when the server stops",
            "use `kind = \"file\"` (the default) or `\"postgres\"` to keep them",
        ),
        StoreKind::File => {
            let dir = config
                .store
                .path
                .clone()
                .unwrap_or_else(|| config.data_dir().join("store"));
            match claude_supervisor::FileStore::open(&dir) {
                Ok(_) => Check::ok("store", format!("files in {}", dir.display())),
                Err(e) => Check::bad(
                    "store",
                    Outcome::Fail,
                    e.to_string(),
                    "set `[store] path` to a writable folder",
                ),
            }
        }
        StoreKind::Postgres => {
            let url = match (&config.store.url_env, &config.store.url) {
                (Some(var), _) => match std::env::var(var) {
                    Ok(u) => u,
                    Err(_) => {
                        return Check::bad(
                            "store",
                            Outcome::Fail,
                            format!("`{var}` (store.url_env) is not set"),
                            format!("export {var}=postgresql://…"),
                        );
                    }
                },
                (None, Some(u)) => u.clone(),
                (None, None) => unreachable!("checked by Config::check"),
            };
            match claude_supervisor::store::PostgresStore::connect(&url).await {
                Ok(_) => Check::ok(
                    "store",
                    format!(
                        "PostgreSQL at {} (migrations applied)",
                        claude_supervisor::store::redact_url(&url)
                    ),
                ),
                Err(e) => Check::bad(
                    "store",
                    Outcome::Fail,
                    e.to_string(),
                    "check that the server runs and the URL (user, password, database) is right",
                ),
            }
        }
    }
}

/// Prints the checks; returns whether none failed.
///
/// # Errors
///
/// Writing to `out`.
pub fn report(checks: &[Check], out: &mut impl Write) -> std::io::Result<bool> {
    for c in checks {
        let mark = match c.outcome {
            Outcome::Ok => "ok  ",
            Outcome::Warn => "warn",
            Outcome::Fail => "FAIL",
        };
        writeln!(out, "{mark}  {:<12} {}", c.what, c.detail)?;
        if let Some(fix) = &c.fix {
            writeln!(out, "      {:<12} fix: {fix}", "")?;
        }
    }
    Ok(checks.iter().all(|c| c.outcome != Outcome::Fail))
}

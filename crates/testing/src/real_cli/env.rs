//! The sandbox directory of a test and the safe environment built from it.

use std::path::{Path, PathBuf};

use super::RealCliError;

/// A temporary directory for one real-CLI run: `home/`, `config/`, `tmp/` and `work/` (the cwd).
///
/// Everything the CLI writes (session files, `.claude.json`, temp files, sockets) lands here; the
/// whole tree is deleted when the sandbox is dropped.
#[derive(Debug)]
pub struct Sandbox {
    dir: tempfile::TempDir,
    root: PathBuf,
}

impl Sandbox {
    /// Creates a fresh sandbox under the system temp directory.
    pub fn new() -> Result<Sandbox, RealCliError> {
        let dir = tempfile::Builder::new()
            .prefix("claude-sandbox-")
            .tempdir()
            .map_err(|e| RealCliError::io("creating the sandbox temp dir", e))?;
        let root = dir
            .path()
            .canonicalize()
            .map_err(|e| RealCliError::io("resolving the sandbox path", e))?;
        for sub in ["home", "config", "tmp", "work"] {
            std::fs::create_dir_all(root.join(sub))
                .map_err(|e| RealCliError::io(format!("creating sandbox/{sub}"), e))?;
        }
        Ok(Sandbox { dir, root })
    }

    /// The sandbox root (canonical path).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `HOME` of the CLI.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    /// `CLAUDE_CONFIG_DIR` of the CLI (sessions are stored under its `projects/`).
    pub fn config_dir(&self) -> PathBuf {
        self.root.join("config")
    }

    /// `TMPDIR` and `CLAUDE_CODE_TMPDIR` of the CLI.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The CLI's working directory.
    pub fn work_dir(&self) -> PathBuf {
        self.root.join("work")
    }

    /// The session file of `session_id` (`<config>/projects/<cwd>/<id>.jsonl`, or the same under
    /// `home/.claude`), if the CLI wrote one.
    pub fn session_file(&self, session_id: &str) -> Option<PathBuf> {
        let name = format!("{session_id}.jsonl");
        [
            self.config_dir().join("projects"),
            self.home().join(".claude").join("projects"),
        ]
        .into_iter()
        .filter_map(|projects| std::fs::read_dir(projects).ok())
        .flat_map(|dir| dir.filter_map(Result::ok))
        .map(|project| project.path().join(&name))
        .find(|file| file.is_file())
    }

    /// Keeps the directory on disk (for debugging a failure) and returns its path.
    pub fn keep(self) -> PathBuf {
        let root = self.root.clone();
        let _ = self.dir.keep();
        root
    }
}

/// Variables the safe environment sets itself; [`SafeEnv::with_var`] refuses to change them.
const PROTECTED: &[&str] = &[
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_KEY",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
    "DISABLE_AUTOUPDATER",
    "CLAUDE_CODE_MAX_RETRIES",
    "HOME",
    "CLAUDE_CONFIG_DIR",
    "CLAUDE_CODE_TMPDIR",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "NO_PROXY",
    "no_proxy",
];

/// Variables always removed: they would redirect the CLI (other credentials, other providers,
/// proxies) or make it believe it runs inside another Claude Code.
const ALWAYS_REMOVED: &[&str] = &[
    "CLAUDECODE",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_USE_FOUNDRY",
    "ANTHROPIC_BEDROCK_BASE_URL",
    "ANTHROPIC_VERTEX_BASE_URL",
    "ANTHROPIC_FOUNDRY_BASE_URL",
    "CLAUDE_CODE_SSE_PORT",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

/// Inherited variables passed through by [`SafeEnv::apply_clean`].
const PASSED_THROUGH: &[&str] = &[
    "PATH", "LANG", "LC_ALL", "LC_CTYPE", "SHELL", "USER", "LOGNAME",
];

/// The dummy API key the safe environment sends.
pub const DUMMY_API_KEY: &str = "sk-ant-test-dummy-key";

/// Checks that `url` is `http://` on loopback (`127.0.0.1`, `localhost` or `[::1]`) with a port,
/// and nothing else (no user info, no path other than `/`).
pub fn check_loopback_url(url: &str) -> Result<(), RealCliError> {
    let bad = || RealCliError::NotLoopback {
        url: url.to_owned(),
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if !(path.is_empty() || path == "/") || authority.contains('@') {
        return Err(bad());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        (host, after.strip_prefix(':').ok_or_else(bad)?)
    } else {
        authority.split_once(':').ok_or_else(bad)?
    };
    if !matches!(host, "127.0.0.1" | "localhost" | "::1") {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(bad()),
    }
}

/// The environment every real-CLI process must run with, built from a [`Sandbox`] and the base
/// URL of a fake API on loopback.
///
/// It sets `ANTHROPIC_BASE_URL` (validated: loopback only), a dummy `ANTHROPIC_API_KEY`,
/// `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`, `DISABLE_AUTOUPDATER=1`,
/// `CLAUDE_CODE_MAX_RETRIES=0`, `HOME`, `CLAUDE_CONFIG_DIR`, `CLAUDE_CODE_TMPDIR`, `TMPDIR` and the
/// `XDG_*` dirs inside the sandbox, `NO_PROXY` for loopback, and `IS_SANDBOX=1` when running as
/// root (needed for `bypassPermissions`). It removes `CLAUDECODE`, other credentials and
/// providers, proxies, and (in [`SafeEnv::removed`]) every inherited `ANTHROPIC_*`/`CLAUDE*`
/// variable it does not set itself.
///
/// Use [`SafeEnv::vars`] and [`SafeEnv::removed`] (or [`SafeEnv::apply`]) to configure a spawn
/// of your own.
#[derive(Clone, Debug)]
pub struct SafeEnv {
    vars: Vec<(String, String)>,
    sandbox_root: PathBuf,
    work_dir: PathBuf,
}

impl SafeEnv {
    /// Builds and validates the safe environment for `sandbox` and the fake API at `base_url`.
    pub fn new(sandbox: &Sandbox, base_url: &str) -> Result<SafeEnv, RealCliError> {
        check_loopback_url(base_url)?;
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        let home = sandbox.home();
        let mut vars = vec![
            ("ANTHROPIC_BASE_URL".to_owned(), base_url.to_owned()),
            ("ANTHROPIC_API_KEY".to_owned(), DUMMY_API_KEY.to_owned()),
            (
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".to_owned(),
                "1".to_owned(),
            ),
            ("DISABLE_AUTOUPDATER".to_owned(), "1".to_owned()),
            ("CLAUDE_CODE_MAX_RETRIES".to_owned(), "0".to_owned()),
            ("HOME".to_owned(), path(home.clone())),
            ("CLAUDE_CONFIG_DIR".to_owned(), path(sandbox.config_dir())),
            ("CLAUDE_CODE_TMPDIR".to_owned(), path(sandbox.tmp_dir())),
            ("TMPDIR".to_owned(), path(sandbox.tmp_dir())),
            ("XDG_CONFIG_HOME".to_owned(), path(home.join(".config"))),
            ("XDG_CACHE_HOME".to_owned(), path(home.join(".cache"))),
            ("XDG_DATA_HOME".to_owned(), path(home.join(".local/share"))),
            ("XDG_STATE_HOME".to_owned(), path(home.join(".local/state"))),
            ("NO_PROXY".to_owned(), "127.0.0.1,localhost,::1".to_owned()),
            ("no_proxy".to_owned(), "127.0.0.1,localhost,::1".to_owned()),
        ];
        if nix::unistd::geteuid().is_root() {
            vars.push(("IS_SANDBOX".to_owned(), "1".to_owned()));
        }
        let env = SafeEnv {
            vars,
            sandbox_root: sandbox.root().to_owned(),
            work_dir: sandbox.work_dir(),
        };
        env.validate()?;
        Ok(env)
    }

    /// Adds (or replaces) a variable, e.g. `CLAUDE_CODE_ENTRYPOINT`. Refuses the variables the
    /// safe environment controls and the ones it removes.
    pub fn with_var(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<SafeEnv, RealCliError> {
        let key = key.into();
        if PROTECTED.contains(&key.as_str()) || ALWAYS_REMOVED.contains(&key.as_str()) {
            return Err(RealCliError::Protected { var: key });
        }
        self.vars.retain(|(k, _)| *k != key);
        self.vars.push((key, value.into()));
        Ok(self)
    }

    /// The variables to set, in a stable order.
    pub fn vars(&self) -> Vec<(String, String)> {
        self.vars.clone()
    }

    /// The value of one variable of [`SafeEnv::vars`].
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The variables to remove when the child inherits this process's environment: a fixed list
    /// (`CLAUDECODE`, other credentials and providers, proxies) plus every inherited
    /// `ANTHROPIC_*`/`CLAUDE*` variable not set by [`SafeEnv::vars`].
    pub fn removed(&self) -> Vec<String> {
        let mut out: Vec<String> = ALWAYS_REMOVED.iter().map(|s| (*s).to_owned()).collect();
        for (key, _) in std::env::vars_os() {
            let Some(key) = key.to_str() else { continue };
            let suspicious = key.starts_with("ANTHROPIC_") || key.starts_with("CLAUDE");
            if suspicious && self.get(key).is_none() && !out.iter().any(|k| k == key) {
                out.push(key.to_owned());
            }
        }
        out
    }

    /// The sandbox's working directory (use it as the child's cwd).
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// The sandbox root every directory variable must be inside.
    pub fn sandbox_root(&self) -> &Path {
        &self.sandbox_root
    }

    /// Checks the environment again (see [`check_env`]).
    pub fn validate(&self) -> Result<(), RealCliError> {
        check_env(
            self.vars
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_str()))),
            &self.sandbox_root,
        )
    }

    /// Configures `cmd` to inherit this process's environment minus [`SafeEnv::removed`], plus
    /// [`SafeEnv::vars`]. Works for `tokio::process::Command` through `as_std_mut()`.
    pub fn apply(&self, cmd: &mut std::process::Command) {
        for key in self.removed() {
            cmd.env_remove(key);
        }
        cmd.envs(self.vars.iter().map(|(k, v)| (k, v)));
    }

    /// Configures `cmd` with a cleared environment: only `PATH`, `LANG`, `LC_*`, `SHELL`,
    /// `USER`, `LOGNAME` are inherited, plus [`SafeEnv::vars`]. The real-CLI harness spawns
    /// this way.
    pub fn apply_clean(&self, cmd: &mut std::process::Command) {
        cmd.env_clear();
        for key in PASSED_THROUGH {
            if let Some(value) = std::env::var_os(key) {
                cmd.env(key, value);
            }
        }
        if std::env::var_os("PATH").is_none() {
            cmd.env("PATH", "/usr/local/bin:/usr/bin:/bin");
        }
        cmd.envs(self.vars.iter().map(|(k, v)| (k, v)));
    }
}

fn is_inside(path: &Path, root: &Path) -> bool {
    match path.canonicalize() {
        Ok(p) => p.starts_with(root) && p != root,
        // Not created yet: judge the lexical path, which must not climb out with `..`.
        Err(_) => {
            path.is_absolute()
                && path.starts_with(root)
                && !path
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
        }
    }
}

/// Validates a child's environment as it will be passed: `(name, Some(value))` for a set
/// variable, `(name, None)` for a removed one (the shape of `Command::get_envs`).
///
/// Refuses unless `ANTHROPIC_BASE_URL` is loopback, `ANTHROPIC_API_KEY` is set,
/// `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`, `DISABLE_AUTOUPDATER=1`,
/// `CLAUDE_CODE_MAX_RETRIES=0`, `HOME`, `CLAUDE_CONFIG_DIR`, `CLAUDE_CODE_TMPDIR` and `TMPDIR` are
/// inside `sandbox_root`, and `CLAUDECODE` is not set.
pub fn check_env<'a>(
    env: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    sandbox_root: &Path,
) -> Result<(), RealCliError> {
    let mut map = std::collections::BTreeMap::new();
    for (k, v) in env {
        map.insert(k, v);
    }
    let get = |k: &str| map.get(k).copied().flatten();
    let url = get("ANTHROPIC_BASE_URL").ok_or_else(|| {
        RealCliError::UnsafeEnv("ANTHROPIC_BASE_URL is not set (it must be the fake API)".into())
    })?;
    check_loopback_url(url)?;
    if get("ANTHROPIC_API_KEY").is_none_or(str::is_empty) {
        return Err(RealCliError::UnsafeEnv(
            "ANTHROPIC_API_KEY is not set (a dummy key is needed)".into(),
        ));
    }
    for (key, want) in [
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ("DISABLE_AUTOUPDATER", "1"),
        ("CLAUDE_CODE_MAX_RETRIES", "0"),
    ] {
        if get(key) != Some(want) {
            return Err(RealCliError::UnsafeEnv(format!(
                "{key} must be {want}, is {:?}",
                get(key)
            )));
        }
    }
    for key in ["HOME", "CLAUDE_CONFIG_DIR", "CLAUDE_CODE_TMPDIR", "TMPDIR"] {
        let value = get(key).ok_or_else(|| RealCliError::UnsafeEnv(format!("{key} is not set")))?;
        if !is_inside(Path::new(value), sandbox_root) {
            return Err(RealCliError::OutsideSandbox {
                var: key.to_owned(),
                path: PathBuf::from(value),
                sandbox: sandbox_root.to_owned(),
            });
        }
    }
    if get("CLAUDECODE").is_some() {
        return Err(RealCliError::UnsafeEnv("CLAUDECODE must be removed".into()));
    }
    Ok(())
}

/// [`check_env`] on what a `Command` will pass (after `env_clear`, only what it sets).
pub(crate) fn check_command_env(
    cmd: &std::process::Command,
    sandbox_root: &Path,
) -> Result<(), RealCliError> {
    let pairs: Vec<(String, Option<String>)> = cmd
        .get_envs()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.map(|v| v.to_string_lossy().into_owned()),
            )
        })
        .collect();
    check_env(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_deref())),
        sandbox_root,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:443",
            "http://127.0.0.1:9/",
        ] {
            assert!(check_loopback_url(ok).is_ok(), "{ok} should pass");
        }
        for bad in [
            "https://api.anthropic.com",
            "http://api.anthropic.com:80",
            "http://127.0.0.2:80",
            "http://127.0.0.1",
            "http://127.0.0.1:0",
            "http://127.0.0.1:80/v1",
            "http://user@127.0.0.1:80",
            "http://127.0.0.1.evil.com:80",
            "http://[::2]:80",
            "https://127.0.0.1:80",
            "http://127.0.0.1:+80",
        ] {
            assert!(check_loopback_url(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn safe_env_validates_and_refuses_overrides() {
        let sandbox = Sandbox::new().expect("sandbox");
        assert!(SafeEnv::new(&sandbox, "http://10.0.0.1:80").is_err());
        let env = SafeEnv::new(&sandbox, "http://127.0.0.1:4000").expect("safe env");
        assert_eq!(env.get("CLAUDE_CODE_MAX_RETRIES"), Some("0"));
        assert!(env.removed().iter().any(|k| k == "CLAUDECODE"));
        assert!(env.clone().with_var("HOME", "/root").is_err());
        assert!(env.clone().with_var("CLAUDECODE", "1").is_err());
        let env = env
            .with_var("CLAUDE_CODE_ENTRYPOINT", "sdk-test")
            .expect("allowed");
        assert_eq!(env.get("CLAUDE_CODE_ENTRYPOINT"), Some("sdk-test"));

        let mut vars: Vec<(String, String)> = env.vars();
        for (k, v) in &mut vars {
            if k == "TMPDIR" {
                *v = "/tmp".to_owned();
            }
        }
        let err = check_env(
            vars.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))),
            sandbox.root(),
        )
        .expect_err("TMPDIR outside the sandbox");
        assert!(err.to_string().contains("TMPDIR"), "{err}");
    }
}

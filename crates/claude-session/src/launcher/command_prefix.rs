//! A launcher that runs the CLI through a wrapper command: `ssh HOST --`, `docker exec -i
//! CONTAINER`, `kubectl exec -i POD --`, `unshare …`, `setpriv …`, `nice -n 10`, …

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use claude_protocol::CommandSpec;
use futures::future::BoxFuture;

use super::local::spawn_grouped;
use super::{LaunchError, LaunchedProcess, Launcher};

/// Runs the CLI as `PREFIX… env [-u NAME]… [-C DIR] NAME=VALUE… PROGRAM ARGS…`.
///
/// Everything is an argv word, never a shell string (for [`ssh`](Self::ssh), whose remote side
/// always joins its arguments into one shell command line, every word is single-quoted). The
/// working directory and the environment of the [`CommandSpec`] are carried explicitly by
/// `env` (GNU coreutils ≥ 8.28 on the side where the CLI runs, for `-C`): the wrapper itself runs
/// with this process's environment (so `ssh` finds its keys and `docker` its socket), and the
/// CLI gets that environment (or, with [`clear_env`](Self::clear_env), nothing) minus the
/// spec's removals plus the spec's variables.
///
/// Process hygiene: the wrapper is started like the local CLI — in a process group of its own,
/// set to die with its host — and is that group's leader, so the session's shutdown signals
/// reach everything the wrapper runs *on this machine*. For local wrappers that exec or fork
/// (`setpriv`, `nice`, `env`, `unshare --fork --kill-child`) that is the CLI and its tools. For
/// remote ones (`ssh`, `docker exec`, `kubectl exec`) the signals reach the local client only;
/// the remote CLI ends when its stdin closes (the shutdown recipe closes it first) or when the
/// client's session ends. See `docs/deployment-patterns.md`.
///
/// Spill files (payloads kept out of argv) are written on this machine: a remote prefix needs them
/// on a shared path, or a spill threshold high enough that nothing spills; otherwise the launch
/// fails with a [`LaunchError`] that says so.
///
/// # Examples
///
/// ```
/// use claude_session::{CommandPrefixLauncher, SessionConfig};
///
/// // The CLI in its own UTS, IPC and PID namespaces on this machine.
/// let namespaced = CommandPrefixLauncher::new([
///     "unshare", "--uts", "--ipc", "--pid", "--fork", "--kill-child", "--",
/// ]);
/// // The CLI in a running container, and on another host.
/// let container = CommandPrefixLauncher::docker_exec("agents-1");
/// let remote = CommandPrefixLauncher::ssh("build-box.internal");
///
/// let config = SessionConfig::builder("isolated", "/usr/local/bin/claude")
///     .launcher(namespaced)
///     .build()?;
/// # let _ = (container, remote, config);
/// # Ok::<(), claude_session::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CommandPrefixLauncher {
    prefix: Vec<OsString>,
    env_program: OsString,
    clear_env: bool,
    quote_for_remote_shell: bool,
    remote: bool,
}

impl CommandPrefixLauncher {
    /// A launcher that runs the CLI through `prefix` (its first word is the program), on this
    /// machine's file system (spill files are visible to the CLI).
    ///
    /// # Panics
    ///
    /// Never; an empty prefix fails at launch with [`LaunchError::Other`].
    pub fn new<I, S>(prefix: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self {
            prefix: prefix.into_iter().map(Into::into).collect(),
            env_program: "env".into(),
            clear_env: false,
            quote_for_remote_shell: false,
            remote: false,
        }
    }

    /// `ssh -T -o BatchMode=yes HOST --`: the CLI on another host, with each word quoted for the
    /// remote shell.
    pub fn ssh(host: impl Into<OsString>) -> Self {
        let mut launcher = Self::new([
            OsString::from("ssh"),
            "-T".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            host.into(),
            "--".into(),
        ]);
        launcher.quote_for_remote_shell = true;
        launcher.remote = true;
        launcher
    }

    /// `docker exec -i CONTAINER`: the CLI in a running container.
    pub fn docker_exec(container: impl Into<OsString>) -> Self {
        let mut launcher = Self::new([
            OsString::from("docker"),
            "exec".into(),
            "-i".into(),
            container.into(),
        ]);
        launcher.remote = true;
        launcher
    }

    /// `kubectl exec -i POD --`: the CLI in a running pod.
    pub fn kubectl_exec(pod: impl Into<OsString>) -> Self {
        let mut launcher = Self::new([
            OsString::from("kubectl"),
            "exec".into(),
            "-i".into(),
            pod.into(),
            "--".into(),
        ]);
        launcher.remote = true;
        launcher
    }

    /// The `env` program on the side where the CLI runs (default: `env` from its `PATH`).
    #[must_use]
    pub fn env_program(mut self, program: impl Into<OsString>) -> Self {
        self.env_program = program.into();
        self
    }

    /// Start the CLI with only the spec's variables (`env -i`), not the wrapper's environment.
    #[must_use]
    pub fn clear_env(mut self, yes: bool) -> Self {
        self.clear_env = yes;
        self
    }

    /// Whether the wrapper runs the CLI on another file system (ssh, containers): spill files
    /// are then refused (default: false for [`new`](Self::new), true for the remote
    /// constructors).
    #[must_use]
    pub fn remote(mut self, yes: bool) -> Self {
        self.remote = yes;
        self
    }

    /// The full argv (program first) that runs `spec` through the prefix.
    ///
    /// # Errors
    ///
    /// [`LaunchError::Other`] for an empty prefix, an environment variable name that `env`
    /// cannot carry (empty or containing `=`), a spec that names a user (use a prefix such as
    /// `setpriv --reuid=…` instead), or spill files with a remote prefix.
    pub fn argv(&self, spec: &CommandSpec) -> Result<Vec<OsString>, LaunchError> {
        if self.prefix.is_empty() {
            return Err(LaunchError::Other("the command prefix is empty".to_owned()));
        }
        if let Some(user) = &spec.user {
            return Err(LaunchError::Other(format!(
                "a command-prefix launcher cannot switch to user `{user}` itself: put it in the prefix (`setpriv --reuid={user} --init-groups --`, `sudo -u {user} --`, `ssh {user}@HOST --`)"
            )));
        }
        if self.remote && !spec.spill_files.is_empty() {
            return Err(LaunchError::Other(format!(
                "options were spilled to files on this machine ({}), which the remote CLI cannot read: raise the spill threshold or use a shared path",
                spec.spill_files
                    .iter()
                    .map(|f| f.path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut wrapped: Vec<OsString> = vec![self.env_program.clone()];
        if self.clear_env {
            wrapped.push("-i".into());
        }
        for name in &spec.env_remove {
            check_name(name)?;
            wrapped.push("-u".into());
            wrapped.push(name.clone());
        }
        if let Some(cwd) = &spec.cwd {
            wrapped.push("-C".into());
            wrapped.push(cwd.clone().into_os_string());
        }
        for (name, value) in &spec.env {
            check_name(name)?;
            let mut pair = name.clone();
            pair.push("=");
            pair.push(value);
            wrapped.push(pair);
        }
        // `env` would take a program whose name contains `=` for a variable.
        if spec.program.as_os_str().as_bytes().contains(&b'=') {
            return Err(LaunchError::Other(format!(
                "the program path `{}` contains `=`, which `env` would read as a variable",
                spec.program.display()
            )));
        }
        wrapped.push(spec.program.clone().into_os_string());
        wrapped.extend(spec.args.iter().cloned());
        if self.quote_for_remote_shell {
            wrapped = wrapped.iter().map(|w| shell_quote(w)).collect();
        }
        let mut argv = self.prefix.clone();
        argv.extend(wrapped);
        Ok(argv)
    }
}

fn check_name(name: &OsStr) -> Result<(), LaunchError> {
    if name.is_empty() || name.as_bytes().contains(&b'=') {
        return Err(LaunchError::Other(format!(
            "the environment variable name `{}` cannot be passed through `env`",
            name.to_string_lossy()
        )));
    }
    Ok(())
}

/// One word for a POSIX shell: `'…'`, with each `'` written as `'\''`.
fn shell_quote(word: &OsStr) -> OsString {
    let mut out = Vec::with_capacity(word.len() + 2);
    out.push(b'\'');
    for &b in word.as_bytes() {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    OsString::from_vec(out)
}

impl Launcher for CommandPrefixLauncher {
    fn launch<'a>(
        &'a self,
        spec: &'a CommandSpec,
    ) -> BoxFuture<'a, Result<LaunchedProcess, LaunchError>> {
        Box::pin(async move {
            let argv = self.argv(spec)?;
            spec.write_spill_files()
                .map_err(|source| LaunchError::SpillFile {
                    path: spec
                        .spill_files
                        .first()
                        .map(|f| f.path.display().to_string())
                        .unwrap_or_default(),
                    source,
                })?;
            let mut cmd = tokio::process::Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            spawn_grouped(cmd, &argv[0].to_string_lossy())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use claude_protocol::ClaudeOptions;

    fn spec() -> CommandSpec {
        ClaudeOptions::builder()
            .cwd("/work dir")
            .env("API_KEY", "it's=secret")
            .env_remove("CLAUDECODE")
            .build()
            .unwrap()
            .command(std::path::Path::new("/opt/claude"), None)
            .unwrap()
    }

    #[test]
    fn argv_carries_cwd_and_env_explicitly() {
        let spec = spec();
        let argv = CommandPrefixLauncher::new(["setpriv", "--no-new-privs", "--"])
            .argv(&spec)
            .unwrap();
        let words: Vec<String> = argv
            .iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect();
        assert_eq!(&words[..4], ["setpriv", "--no-new-privs", "--", "env"]);
        let at = |w: &str| words.iter().position(|x| x == w).unwrap();
        assert_eq!(words[at("-C") + 1], "/work dir");
        assert!(
            words.contains(&"API_KEY=it's=secret".to_owned()),
            "{words:?}"
        );
        let program = at("/opt/claude");
        assert!(words[at("-u") + 1] == "CLAUDECODE" && at("-u") < program);
        assert_eq!(
            &words[program + 1..],
            &spec
                .args
                .iter()
                .map(|w| w.to_string_lossy().into_owned())
                .collect::<Vec<_>>()[..]
        );
    }

    #[test]
    fn ssh_quotes_every_word_and_refuses_what_it_cannot_carry() {
        let spec = spec();
        let argv = CommandPrefixLauncher::ssh("box").argv(&spec).unwrap();
        let words: Vec<String> = argv
            .iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            &words[..6],
            ["ssh", "-T", "-o", "BatchMode=yes", "box", "--"]
        );
        assert!(
            words[6..]
                .iter()
                .all(|w| w.starts_with('\'') && w.ends_with('\''))
        );
        assert!(
            words.contains(&"'API_KEY=it'\\''s=secret'".to_owned()),
            "{words:?}"
        );

        let mut with_user = spec.clone();
        with_user.user = Some("agent".into());
        assert!(
            CommandPrefixLauncher::new(["nice"])
                .argv(&with_user)
                .is_err()
        );
        assert!(
            CommandPrefixLauncher::new(Vec::<OsString>::new())
                .argv(&spec)
                .is_err()
        );
        let mut bad = spec;
        bad.env.push(("A=B".into(), "c".into()));
        assert!(CommandPrefixLauncher::new(["nice"]).argv(&bad).is_err());
    }
}

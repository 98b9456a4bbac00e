//! A launcher that runs the CLI through a wrapper command: `ssh HOST --`, `docker exec -i
//! CONTAINER`, `kubectl exec -i POD --`, `unshare …`, `setpriv …`, `nice -n 10`, …

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use claude_protocol::CommandSpec;
use futures::future::BoxFuture;

use super::local::{spawn_with_user, write_spill_files};
use super::{LaunchContext, LaunchError, LaunchedProcess, Launcher};
use crate::containment::ContainmentScope;

/// Runs the CLI as `PREFIX… env [-u NAME]… [-C DIR] NAME=VALUE… PROGRAM ARGS…`.
///
/// Everything is an argv word, never a shell string (for [`ssh`](Self::ssh), whose remote side
/// always joins its arguments into one shell command line, every word is single-quoted). The
/// working directory and the environment of the [`CommandSpec`] are carried explicitly by
/// `env` (GNU coreutils ≥ 8.28 on the side where the CLI runs, for `-C`): the wrapper itself runs
/// with this process's environment (so `ssh` finds its keys and `docker` its socket), and the
/// CLI gets that environment (or, with [`clear_env`](Self::clear_env) or a spec that clears
/// its environment — the session's default [`EnvPolicy::Clean`](crate::EnvPolicy::Clean) —
/// nothing) minus the spec's removals plus the spec's variables. Over `ssh`/`docker exec`/
/// `kubectl exec` the CLI's inherited environment is the *target's*, which holds nothing of this
/// host's: choose [`EnvPolicy::Inherit`](crate::EnvPolicy::Inherit) there to keep the target's
/// `PATH` and `HOME`, since a clean policy carries this host's.
///
/// Process hygiene: the wrapper is started like the local CLI — in the session's containment
/// (a PID namespace, a cgroup, a subreaper…), leading its own process group — so the session's
/// shutdown signals and its containment reach everything the wrapper runs *on this machine*:
/// for local wrappers (`setpriv`, `nice`, `env`, `unshare`) that is the CLI and its tools, even
/// detached ones. For remote ones (`ssh`, `docker exec`, `kubectl exec`) it is the local client
/// only (the health report says so: scope `local_client`); the remote CLI ends when its stdin
/// closes (the shutdown recipe closes it first) or when the client's session ends. See
/// `docs/deployment-patterns.md`.
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
        if self.clear_env || spec.env_clear {
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

impl CommandPrefixLauncher {
    /// Runs `words` through the prefix (quoted for a remote shell when the prefix needs it),
    /// with `stdin` piped in; returns its exit status.
    async fn through_prefix(
        &self,
        words: &[OsString],
        stdin: Option<&[u8]>,
    ) -> Result<std::process::ExitStatus, String> {
        use tokio::io::AsyncWriteExt;
        let Some(program) = self.prefix.first() else {
            return Err("the command prefix is empty".to_owned());
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&self.prefix[1..]);
        for w in words {
            if self.quote_for_remote_shell {
                cmd.arg(shell_quote(w));
            } else {
                cmd.arg(w);
            }
        }
        cmd.stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("could not start `{}`: {e}", program.to_string_lossy()))?;
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(bytes)
                .await
                .map_err(|e| format!("writing to the prefix's stdin: {e}"))?;
            // Closing stdin ends `cat`.
            drop(pipe);
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| format!("waiting for the prefix: {e}"))?;
        if !out.status.success() && out.status.code() != Some(1) {
            return Err(format!(
                "the prefix ended with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(out.status)
    }
}

impl Launcher for CommandPrefixLauncher {
    fn launch<'a>(
        &'a self,
        spec: &'a CommandSpec,
    ) -> BoxFuture<'a, Result<LaunchedProcess, LaunchError>> {
        Box::pin(async move { self.launch_with(spec, &LaunchContext::for_spec(spec)).await })
    }

    fn launch_with<'a>(
        &'a self,
        spec: &'a CommandSpec,
        ctx: &'a LaunchContext,
    ) -> BoxFuture<'a, Result<LaunchedProcess, LaunchError>> {
        Box::pin(async move {
            let argv = self.argv(spec)?;
            self.preflight(spec)?;
            write_spill_files(spec)?;
            let make = || {
                let mut cmd = tokio::process::Command::new(&argv[0]);
                cmd.args(&argv[1..]);
                cmd
            };
            let scope = if self.remote {
                ContainmentScope::LocalClient
            } else {
                ContainmentScope::Cli
            };
            spawn_with_user(&make, &argv[0].to_string_lossy(), None, ctx, scope)
        })
    }

    /// A local prefix looks on this machine; a remote one runs `test -f PATH` through the prefix.
    fn file_exists<'a>(
        &'a self,
        path: &'a std::path::Path,
    ) -> BoxFuture<'a, Result<bool, LaunchError>> {
        Box::pin(async move {
            if !self.remote {
                return Ok(path.is_file());
            }
            let out = self
                .through_prefix(
                    &["test".into(), "-f".into(), path.as_os_str().to_owned()],
                    None,
                )
                .await
                .map_err(|reason| LaunchError::Staging {
                    action: "check",
                    path: path.to_owned(),
                    reason,
                })?;
            match out.code() {
                Some(0) => Ok(true),
                Some(1) => Ok(false),
                _ => Err(LaunchError::Staging {
                    action: "check",
                    path: path.to_owned(),
                    reason: format!("`test -f` through the prefix ended with {out}"),
                }),
            }
        })
    }

    /// A local prefix writes on this machine; a remote one pipes the bytes through the prefix
    /// into `sh -c 'umask 077 && mkdir -p DIR && cat > PATH'` on the CLI's side.
    fn stage_file<'a>(
        &'a self,
        path: &'a std::path::Path,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<(), LaunchError>> {
        Box::pin(async move {
            if !self.remote {
                return super::stage_locally(path, bytes);
            }
            let failed = |reason: String| LaunchError::Staging {
                action: "write",
                path: path.to_owned(),
                reason,
            };
            let dir = path
                .parent()
                .ok_or_else(|| failed("no parent folder".into()))?;
            let words: Vec<OsString> = vec![
                "sh".into(),
                "-c".into(),
                r#"umask 077 && mkdir -p "$1" && cat > "$2""#.into(),
                "sh".into(),
                dir.as_os_str().to_owned(),
                path.as_os_str().to_owned(),
            ];
            let status = self
                .through_prefix(&words, Some(bytes))
                .await
                .map_err(failed)?;
            if status.success() {
                Ok(())
            } else {
                Err(failed(format!(
                    "the staging command through the prefix ended with {status}"
                )))
            }
        })
    }

    /// Checks the wrapper program (on this machine's `PATH`) and, for a local prefix, the working
    /// directory.
    fn preflight(&self, spec: &CommandSpec) -> Result<(), LaunchError> {
        let Some(program) = self.prefix.first() else {
            return Err(LaunchError::Other("the command prefix is empty".to_owned()));
        };
        super::check_program(program, None, std::env::var_os("PATH").as_deref())?;
        if !self.remote
            && let Some(cwd) = &spec.cwd
        {
            super::check_cwd(cwd)?;
        }
        Ok(())
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

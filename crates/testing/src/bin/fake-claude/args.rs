//! The command line: the flags the runtime passes to the real CLI; unknown flags are ignored.

/// Flags of the real CLI that take a value (as `--flag value` or `--flag=value`).
const VALUE_FLAGS: &[&str] = &[
    "--resume",
    "-r",
    "--session-id",
    "--model",
    "--max-turns",
    "--permission-prompt-tool",
    "--permission-mode",
    "--output-format",
    "--input-format",
    "--system-prompt",
    "--system-prompt-file",
    "--append-system-prompt",
    "--allowedTools",
    "--allowed-tools",
    "--disallowedTools",
    "--disallowed-tools",
    "--mcp-config",
    "--settings",
    "--add-dir",
    "--fallback-model",
    "--max-budget-usd",
    "--agents",
    "--setting-sources",
    "--json-schema",
    "--debug-file",
    "--effort",
];

/// What fake-claude takes from its command line.
#[derive(Debug, Default)]
pub(crate) struct Args {
    pub(crate) argv: Vec<String>,
    pub(crate) resume: Option<String>,
    pub(crate) session_id: Option<String>,
    pub(crate) fork_session: bool,
    pub(crate) continue_session: bool,
    pub(crate) include_partial: bool,
    pub(crate) permission_prompt_stdio: bool,
    pub(crate) permission_mode: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) max_turns: Option<u32>,
    pub(crate) no_persistence: bool,
    /// `--session-mirror`: print `transcript_mirror` frames of what is appended to the file.
    pub(crate) session_mirror: bool,
    /// `--version` / `-v`: print the version and exit.
    pub(crate) version: bool,
    /// `--await-claim`: start as a pre-warmed spare, parked until a `claim_session` request.
    pub(crate) await_claim: bool,
    /// `--allow-dangerously-skip-permissions` (or `--dangerously-skip-permissions`): a claim
    /// may ask for `bypassPermissions`.
    pub(crate) may_bypass: bool,
}

impl Args {
    pub(crate) fn parse(argv: Vec<String>) -> Args {
        let mut a = Args {
            argv: argv.clone(),
            ..Args::default()
        };
        let mut it = argv.into_iter().skip(1);
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with('-') => (f.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            let value = if inline.is_some() {
                inline
            } else if VALUE_FLAGS.contains(&flag.as_str()) {
                it.next()
            } else {
                None
            };
            match flag.as_str() {
                "--resume" | "-r" => a.resume = value,
                "--session-id" => a.session_id = value,
                "--model" => a.model = value,
                "--max-turns" => a.max_turns = value.and_then(|v| v.parse().ok()),
                "--permission-prompt-tool" => {
                    a.permission_prompt_stdio = value.as_deref() == Some("stdio")
                }
                "--permission-mode" => a.permission_mode = value,
                "--fork-session" => a.fork_session = true,
                "--continue" | "-c" => a.continue_session = true,
                "--include-partial-messages" => a.include_partial = true,
                "--no-session-persistence" => a.no_persistence = true,
                "--session-mirror" => a.session_mirror = true,
                "--version" | "-v" => a.version = true,
                "--await-claim" => a.await_claim = true,
                "--allow-dangerously-skip-permissions" => a.may_bypass = true,
                "--dangerously-skip-permissions" => {
                    a.may_bypass = true;
                    a.permission_mode = Some("bypassPermissions".to_owned())
                }
                _ => {}
            }
        }
        a
    }
}

//! CLI discovery order and the `--version` probe, with fake executables in temp dirs.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use claude_protocol::{
    CliLocator, CliVersion, DiscoveryError, MIN_SUPPORTED_VERSION, SUPPORTED_CLI, probe_version,
    probe_version_with_timeout,
};

/// Captures what `tracing` logs while `f` runs (this thread only).
fn logs_of<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (out, text)
}

fn script(path: &Path, body: &str) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Written by a `sh` child, not opened for writing here: a child another test forks meanwhile
    // would inherit the open file and running it would fail with ETXTBSY (claude-testing's
    // `write_executable` does the same; this crate sits below it).
    let mut child = std::process::Command::new("/bin/sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        format!("#!/bin/sh\n{body}\n").as_bytes(),
    )
    .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "writing {}",
        path.display()
    );
    path.to_path_buf()
}

fn locator(home: &Path) -> CliLocator {
    let mut l = CliLocator::default();
    l.home = Some(home.to_path_buf());
    l.path_var = Some(home.join("empty-bin").into_os_string());
    l
}

#[test]
fn explicit_path_wins_and_must_be_executable() {
    let dir = tempfile::tempdir().unwrap();
    let cli = script(
        &dir.path().join("my/claude"),
        "echo 2.1.329 '(Claude Code)'",
    );
    let mut l = locator(dir.path());
    l.env_path = Some(dir.path().join("other"));
    assert_eq!(l.clone().with_explicit(Some(&cli)).find().unwrap(), cli);

    let not_exec = dir.path().join("plain");
    std::fs::write(&not_exec, "x").unwrap();
    let e = l.with_explicit(Some(&not_exec)).find().unwrap_err();
    assert!(
        matches!(
            e,
            DiscoveryError::NotExecutable {
                origin: "the explicit path",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("plain"));
}

#[test]
fn env_var_comes_before_path_and_must_be_executable() {
    let dir = tempfile::tempdir().unwrap();
    let from_env = script(&dir.path().join("env/claude"), "echo 2.1.329");
    let on_path = script(&dir.path().join("bin/claude"), "echo 2.1.329");
    let mut l = locator(dir.path());
    l.path_var = Some(on_path.parent().unwrap().as_os_str().to_owned());
    l.env_path = Some(from_env.clone());
    assert_eq!(l.find().unwrap(), from_env);
    l.env_path = Some(dir.path().join("missing"));
    let e = l.find().unwrap_err();
    assert!(
        matches!(
            e,
            DiscoveryError::NotExecutable {
                origin: "CLAUDE_CLI_PATH",
                ..
            }
        ),
        "{e:?}"
    );
    l.env_path = None;
    assert_eq!(l.find().unwrap(), on_path);
}

#[test]
fn install_locations_in_order_then_pinned_cache() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let l = locator(home);
    let cands = l.candidates();
    let expect_tail = [
        home.join(".npm-global/bin/claude"),
        PathBuf::from("/usr/local/bin/claude"),
        home.join(".local/bin/claude"),
        home.join("node_modules/.bin/claude"),
        home.join(".yarn/bin/claude"),
        home.join(".claude/local/claude"),
        home.join(".cache/claude-supervisor/cli-2.1.329/node_modules/@anthropic-ai/claude-code-linux-x64/claude"),
    ];
    assert_eq!(cands[0], home.join("empty-bin/claude"));
    assert_eq!(&cands[1..], &expect_tail);

    // Only run the "found" checks when /usr/local/bin/claude does not exist on this machine.
    if !Path::new("/usr/local/bin/claude").exists() {
        let cached = script(&expect_tail[6], "echo 2.1.329");
        assert_eq!(l.find().unwrap(), cached);
        let yarn = script(&home.join(".yarn/bin/claude"), "echo 2.1.329");
        assert_eq!(l.find().unwrap(), yarn);
        let local = script(&home.join(".local/bin/claude"), "echo 2.1.329");
        assert_eq!(l.find().unwrap(), local);
    }
}

#[test]
fn cache_root_override() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = locator(dir.path());
    l.cache_root = Some(dir.path().join("cache"));
    assert_eq!(
        l.pinned_cache_path().unwrap(),
        dir.path()
            .join("cache/cli-2.1.329/node_modules/@anthropic-ai/claude-code-linux-x64/claude")
    );
}

#[test]
fn not_found_lists_every_place_looked() {
    let dir = tempfile::tempdir().unwrap();
    let l = locator(dir.path());
    if Path::new("/usr/local/bin/claude").exists() {
        return; // the machine has a real install in a standard place; nothing to assert
    }
    let e = l.find().unwrap_err();
    let DiscoveryError::NotFound { searched } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(searched, &l.candidates());
    let msg = e.to_string();
    for p in searched {
        assert!(
            msg.contains(&p.display().to_string()),
            "{msg} lacks {}",
            p.display()
        );
    }
}

#[test]
fn probe_parses_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let cli = script(&dir.path().join("claude"), "echo '2.1.329 (Claude Code)'");
    assert_eq!(probe_version(&cli).unwrap(), CliVersion::new(2, 1, 329));
    let exact_min = script(&dir.path().join("min"), "echo '2.1.197 (Claude Code)'");
    assert_eq!(probe_version(&exact_min).unwrap(), MIN_SUPPORTED_VERSION);
}

#[test]
fn probe_accepts_every_tested_version_and_the_range_between_without_warning() {
    let dir = tempfile::tempdir().unwrap();
    let between = CliVersion::new(2, 1, 330);
    for (i, v) in SUPPORTED_CLI.tested.iter().chain([&between]).enumerate() {
        let cli = script(
            &dir.path().join(format!("claude-{i}")),
            &format!("echo '{v} (Claude Code)'"),
        );
        let (got, logs) = logs_of(|| probe_version(&cli));
        assert_eq!(got.unwrap(), *v);
        assert!(!logs.contains("WARN"), "{v} warned: {logs}");
    }
}

#[test]
fn probe_accepts_a_newer_version_with_a_warning_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let newest = SUPPORTED_CLI.newest_tested();
    let newer = CliVersion::new(newest.major, newest.minor, newest.patch + 1);
    let cli = script(
        &dir.path().join("claude"),
        &format!("echo '{newer} (Claude Code)'"),
    );
    let (got, logs) = logs_of(|| probe_version(&cli));
    assert_eq!(got.unwrap(), newer);
    assert!(logs.contains("WARN"), "no warning: {logs:?}");
    assert!(
        logs.contains(&newer.to_string()) && logs.contains(&newest.to_string()),
        "the warning names both versions: {logs}"
    );
}

#[test]
fn probe_refuses_too_old_naming_both_versions_and_how_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let cli = script(&dir.path().join("claude"), "echo '2.1.196 (Claude Code)'");
    let e = probe_version(&cli).unwrap_err();
    assert!(
        matches!(e, DiscoveryError::TooOld { found, minimum, .. }
            if found == CliVersion::new(2, 1, 196) && minimum == MIN_SUPPORTED_VERSION),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("2.1.196") && text.contains("2.1.197"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "npm install -g @anthropic-ai/claude-code@{}",
            SUPPORTED_CLI.pinned
        )) && text.contains("scripts/install-claude-cli.sh"),
        "says how to install a supported CLI: {text}"
    );
}

#[test]
fn probe_refuses_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let cli = script(&dir.path().join("claude"), "echo 'hello world'");
    let e = probe_version(&cli).unwrap_err();
    assert!(matches!(e, DiscoveryError::Unparsable { .. }), "{e:?}");
    let empty = script(&dir.path().join("empty"), "true");
    assert!(matches!(
        probe_version(&empty).unwrap_err(),
        DiscoveryError::Unparsable { .. }
    ));
}

#[test]
fn probe_reports_failure_and_missing() {
    let dir = tempfile::tempdir().unwrap();
    let cli = script(&dir.path().join("claude"), "echo broken >&2; exit 3");
    let e = probe_version(&cli).unwrap_err();
    assert!(
        matches!(e, DiscoveryError::Failed { ref stderr, .. } if stderr == "broken"),
        "{e:?}"
    );
    let e = probe_version(&dir.path().join("nope")).unwrap_err();
    assert!(matches!(e, DiscoveryError::Spawn { .. }), "{e:?}");
}

#[test]
fn probe_kills_a_hanging_cli_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("child.pid");
    // The script starts a child that would outlive it, then hangs.
    let cli = script(
        &dir.path().join("claude"),
        &format!("sleep 300 & echo $! > {}\nsleep 300", marker.display()),
    );
    let start = Instant::now();
    let e = probe_version_with_timeout(&cli, Duration::from_millis(300)).unwrap_err();
    assert!(matches!(e, DiscoveryError::Timeout { .. }), "{e:?}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "probe did not return promptly"
    );
    assert!(e.to_string().contains("300ms"), "{e}");
    // The background child was in the probe's process group: it must be gone.
    let pid = std::fs::read_to_string(&marker).unwrap().trim().to_owned();
    let mut gone = false;
    for _ in 0..100 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Absent, or a zombie waiting for init to reap it.
        if stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z") {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone, "child {pid} of the hung probe survived");
}

#[test]
fn version_parsing_and_order() {
    assert_eq!(
        CliVersion::parse_version_output("2.1.329 (Claude Code)\n"),
        Some(CliVersion::new(2, 1, 329))
    );
    assert_eq!(
        CliVersion::parse_version_output("\n  1.0.3-beta.2 (Claude Code)"),
        Some(CliVersion::new(1, 0, 3))
    );
    assert_eq!(CliVersion::parse_version_output("Claude Code 2.1.3"), None);
    assert_eq!(CliVersion::parse_version_output("2.1"), None);
    assert!("2.1.329.1".parse::<CliVersion>().is_err());
    assert!(CliVersion::new(2, 1, 329) > CliVersion::new(2, 1, 197));
    assert!(CliVersion::new(2, 10, 0) > CliVersion::new(2, 9, 99));
    assert_eq!(CliVersion::new(2, 1, 329).to_string(), "2.1.329");
}

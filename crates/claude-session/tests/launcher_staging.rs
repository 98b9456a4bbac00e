//! A launcher stages a file where it runs the CLI: on this machine by default, through the
//! command prefix for a remote one (here a local wrapper marked remote, which logs each call).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use claude_session::{CommandPrefixLauncher, Launcher, LocalLauncher};

/// A prefix program that records its argv, then runs it.
fn wrapper(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("wrap");
    claude_testing::write_executable(
        &path,
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec \"$@\"\n",
            dir.join("calls.log").display()
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn a_remote_prefix_stages_the_file_through_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = CommandPrefixLauncher::new([wrapper(dir.path())]).remote(true);
    let target = dir.path().join("config dir/projects/-w/abc.jsonl");
    assert!(!launcher.file_exists(&target).await.unwrap());
    launcher
        .stage_file(&target, b"{\"uuid\":\"u1\"}\n")
        .await
        .unwrap();
    assert!(launcher.file_exists(&target).await.unwrap());
    assert_eq!(std::fs::read(&target).unwrap(), b"{\"uuid\":\"u1\"}\n");
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "readable by its owner only");
    let calls = std::fs::read_to_string(dir.path().join("calls.log")).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(calls[0].starts_with("test -f "), "{calls:?}");
    assert!(calls[1].starts_with("sh -c "), "{calls:?}");
    // Staging again replaces the file.
    launcher.stage_file(&target, b"second\n").await.unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"second\n");
}

#[tokio::test]
async fn a_failing_prefix_is_a_staging_error_naming_the_file() {
    let launcher = CommandPrefixLauncher::new(["false"]).remote(true);
    let target = Path::new("/nowhere/abc.jsonl");
    let err = launcher.stage_file(target, b"x").await.unwrap_err();
    assert!(err.to_string().contains("/nowhere/abc.jsonl"), "{err}");
    let missing = CommandPrefixLauncher::new(["/no/such/prefix"]).remote(true);
    let err = missing.file_exists(target).await.unwrap_err();
    assert!(err.to_string().contains("/no/such/prefix"), "{err}");
}

#[tokio::test]
async fn the_local_launchers_stage_on_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("a/b/c.jsonl");
    let local = LocalLauncher::default();
    assert!(!local.file_exists(&target).await.unwrap());
    local.stage_file(&target, b"line\n").await.unwrap();
    assert!(local.file_exists(&target).await.unwrap());
    // A local prefix (not remote) writes here too, without running the prefix.
    let prefixed = CommandPrefixLauncher::new(["/no/such/prefix"]);
    let other = dir.path().join("d/e.jsonl");
    prefixed.stage_file(&other, b"x").await.unwrap();
    assert!(prefixed.file_exists(&other).await.unwrap());
}

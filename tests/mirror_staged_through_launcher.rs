//! With a command-prefix launcher, the conversation is written back through the launcher (its
//! staging capability), not by the facade on its own file system: here a local wrapper marked
//! remote, which logs each call it runs.

use claude_supervisor::{ClaudeSupervisor, CommandPrefixLauncher, FileStore, SessionSpec};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::{Scenario, session_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_stages_the_session_file_through_the_launcher() {
    let store_dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(store_dir.path()).unwrap();
    let first = FakeEnv::new();
    let tree = ClaudeSupervisor::builder()
        .cli_path(first.cli_path())
        .store(store.clone())
        .session(SessionSpec::new(
            "agent",
            first.options(&Scenario::new()).build().unwrap(),
        ))
        .start()
        .await
        .unwrap();
    let agent = tree.session("agent").unwrap();
    agent.ask("my name is Ada").await.unwrap();
    let id = agent.session_id().unwrap();
    tree.shutdown().await;

    let bin = tempfile::tempdir().unwrap();
    let wrap = bin.path().join("wrap");
    let log = bin.path().join("calls.log");
    claude_testing::write_executable(
        &wrap,
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\nexec \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    let fresh = FakeEnv::new();
    let tree = ClaudeSupervisor::builder()
        .cli_path(fresh.cli_path())
        .store(store)
        .launcher(CommandPrefixLauncher::new([wrap]).remote(true))
        .session(SessionSpec::new(
            "agent",
            fresh.options(&Scenario::new()).build().unwrap(),
        ))
        .start()
        .await
        .unwrap();
    let agent = tree.session("agent").unwrap();
    agent.ask("what is my name?").await.unwrap();
    assert_eq!(agent.session_id().as_deref(), Some(id.as_str()));
    let text = std::fs::read_to_string(session_file(
        &fresh.path("config"),
        &fresh.path("work"),
        &id,
    ))
    .unwrap();
    assert!(text.contains("my name is Ada"), "{text}");
    tree.shutdown().await;
    let calls = std::fs::read_to_string(&log).unwrap();
    let programs: Vec<&str> = calls.lines().collect();
    assert_eq!(
        &programs[..2],
        &["test", "sh"],
        "checked, then staged, through the prefix, before the CLI ran: {programs:?}"
    );
    assert!(programs.len() >= 3, "then the CLI itself: {programs:?}");
}

//! The supported CLI range at session start, with fake-claude impersonating a version: below
//! the minimum the start is refused with a typed error naming both versions and how to install a
//! supported CLI (and no process is left); a tested version starts without a warning; a version
//! newer than the newest tested starts, works, and says so with a `CliVersionUntested` event.

#[path = "support/common.rs"]
mod support;

use claude_protocol::{CliVersion, SUPPORTED_CLI};
use claude_session::{Session, SessionError, SessionEventKind};
use claude_testing::fake_claude::Scenario;
use support::{FakeEnv, assert_group_gone, pid_of, processes_in, stop_and_check};

fn kinds(session: &Session) -> Vec<&SessionEventKind> {
    session.startup_events().iter().map(|e| &e.kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_older_than_the_minimum_is_refused_clearly() {
    let env = FakeEnv::new();
    let min = SUPPORTED_CLI.minimum;
    let old = CliVersion::new(min.major, min.minor, min.patch - 1);
    let scenario = Scenario::new().cli_version(old);
    let err = Session::start(env.config("old", &scenario).build().unwrap())
        .await
        .expect_err("a CLI below the minimum must be refused");
    match &err {
        SessionError::CliTooOld {
            session,
            found,
            minimum,
        } => {
            assert_eq!(session, "old");
            assert_eq!(*found, old);
            assert_eq!(*minimum, min);
        }
        other => panic!("expected CliTooOld, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&old.to_string()) && text.contains(&min.to_string()),
        "names both versions: {text}"
    );
    assert!(
        text.contains(&format!(
            "npm install -g @anthropic-ai/claude-code@{}",
            SUPPORTED_CLI.pinned
        )),
        "says how to install a supported one: {text}"
    );
    assert!(!err.is_process_failure(), "a restart would not help");
    assert_eq!(err.session(), "old");
    // The refused CLI was stopped and reaped.
    let pids = env.pids();
    assert_eq!(pids.len(), 1, "one CLI was started: {pids:?}");
    for pid in pids {
        assert_group_gone(pid).await;
    }
    assert_eq!(processes_in(&env.path("work")), Vec::<i32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tested_cli_starts_without_a_warning() {
    let env = FakeEnv::new();
    for (i, version) in SUPPORTED_CLI.tested.iter().enumerate() {
        let scenario = Scenario::new().cli_version(*version);
        let session = env.session(&format!("tested-{i}"), &scenario).await;
        let events = kinds(&session);
        assert!(
            matches!(events.first(), Some(SessionEventKind::Spawned { .. })),
            "{events:?}"
        );
        assert!(
            matches!(events.last(), Some(SessionEventKind::Initialized { cli_version })
                if cli_version.as_deref() == Some(version.to_string().as_str())),
            "{events:?}"
        );
        assert!(
            !events
                .iter()
                .any(|k| matches!(k, SessionEventKind::CliVersionUntested { .. })),
            "{version}: {events:?}"
        );
        let pid = pid_of(&session).await;
        stop_and_check(session, pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_newer_than_the_newest_tested_works_with_a_warning_event() {
    let env = FakeEnv::new();
    let newest = SUPPORTED_CLI.newest_tested();
    let newer = CliVersion::new(newest.major, newest.minor, newest.patch + 7);
    let session = env
        .session("newer", &Scenario::new().cli_version(newer))
        .await;
    let events = kinds(&session);
    let warnings: Vec<_> = events
        .iter()
        .filter_map(|k| match k {
            SessionEventKind::CliVersionUntested {
                found,
                newest_tested,
            } => Some((*found, *newest_tested)),
            _ => None,
        })
        .collect();
    assert_eq!(warnings, vec![(newer, newest)], "{events:?}");
    // The warning comes before the session is ready.
    assert!(
        matches!(events.last(), Some(SessionEventKind::Initialized { .. })),
        "{events:?}"
    );
    // As JSON, for event consumers: the versions are strings.
    let json = serde_json::to_value(&session.startup_events()[1]).unwrap();
    assert_eq!(json["kind"]["event"], "cli_version_untested", "{json}");
    assert_eq!(json["kind"]["found"], newer.to_string());
    assert_eq!(json["kind"]["newest_tested"], newest.to_string());

    // And it works.
    let turn = session
        .query("hello")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!turn.result.is_error);
    let pid = pid_of(&session).await;
    stop_and_check(session, pid).await;
}

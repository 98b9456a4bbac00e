//! A session's conversation lives in the store (fake-claude with `--session-mirror`): it is
//! mirrored as the CLI writes it, and written back into a brand-new config dir for a resume.

use std::time::Duration;

use claude_supervisor::store::SessionStore;
use claude_supervisor::{
    ClaudeSupervisor, FileStore, MemoryStore, SessionSpec, StoreError, SupervisorEventKind,
};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::{Scenario, session_file};

async fn tree(env: &FakeEnv, store: impl SessionStore) -> ClaudeSupervisor {
    let scenario = Scenario::new();
    ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .store(store)
        .session(SessionSpec::new(
            "agent",
            env.options(&scenario).build().unwrap(),
        ))
        .start()
        .await
        .unwrap()
}

/// Runs one turn in a first environment; returns its conversation id. The turn's lines are in
/// the store as soon as the turn has returned (before the CLI stops).
async fn first_run(store: impl SessionStore + Clone) -> String {
    let env = FakeEnv::new();
    let tree = tree(&env, store.clone()).await;
    let agent = tree.session("agent").unwrap();
    agent.ask("my name is Ada").await.unwrap();
    let id = agent.session_id().expect("a conversation");
    let files = store.load_entries("agent", &id).await.unwrap();
    let kinds: Vec<String> = files
        .iter()
        .flat_map(|f| &f.entries)
        .map(|e| e.parse().unwrap()["type"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        kinds.iter().any(|k| k == "user") && kinds.iter().any(|k| k == "assistant"),
        "a returned turn is in the store: {kinds:?}"
    );
    tree.shutdown().await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_turn_is_in_the_store_and_resumes_in_a_brand_new_config_dir() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let id = first_run(store.clone()).await;

    let files = store.load_entries("agent", &id).await.unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].file, format!("{id}.jsonl"));
    let lines: Vec<serde_json::Value> = files[0]
        .entries
        .iter()
        .map(|e| e.parse().unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "user" && l["message"]["content"] == "my name is Ada"),
        "the user line is stored: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l["type"] == "assistant"),
        "the answer is stored: {lines:?}"
    );
    assert!(
        lines.iter().all(|l| l["type"] != "transcript_mirror"),
        "entries, not frames, are stored"
    );

    // A brand-new HOME and config dir: nothing but the store.
    let fresh = FakeEnv::new();
    let tree = tree(&fresh, store.clone()).await;
    let agent = tree.session("agent").unwrap();
    let file = session_file(&fresh.path("config"), &fresh.path("work"), &id);
    assert!(
        file.exists(),
        "the session file was written from the store: {}",
        file.display()
    );
    agent.ask("what is my name?").await.unwrap();
    assert_eq!(
        agent.session_id().as_deref(),
        Some(id.as_str()),
        "the same conversation"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("my name is Ada") && text.contains("what is my name?"),
        "{text}"
    );
    tree.shutdown().await;
    // The second run's turn was mirrored too, once each (idempotent by uuid).
    let files = store.load_entries("agent", &id).await.unwrap();
    let users = files[0]
        .entries
        .iter()
        .filter(|e| e.parse().unwrap()["type"] == "user")
        .count();
    assert_eq!(users, 2, "each user line once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_entry_is_reported_and_skipped_and_the_rest_resumes() {
    let store = MemoryStore::new();
    let id = first_run(store.clone()).await;
    let files = store.load_entries("agent", &id).await.unwrap();
    let assistant = files[0]
        .entries
        .iter()
        .find(|e| e.parse().unwrap()["type"] == "assistant")
        .unwrap()
        .key
        .clone();
    assert!(store.corrupt_entry("agent", &id, &format!("{id}.jsonl"), &assistant, "{\"torn"));

    let fresh = FakeEnv::new();
    let scenario = Scenario::new();
    let tree = ClaudeSupervisor::builder()
        .cli_path(fresh.cli_path())
        .store(store.clone())
        .start()
        .await
        .unwrap();
    let mut events = tree.events();
    tree.start_session(SessionSpec::new(
        "agent",
        fresh.options(&scenario).build().unwrap(),
    ))
    .await
    .unwrap();
    let skipped = loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("the skip is reported")
            .unwrap();
        if let SupervisorEventKind::TranscriptEntrySkipped {
            session_id, index, ..
        } = event.kind
        {
            break (session_id, index);
        }
    };
    assert_eq!(skipped.0, id);
    let agent = tree.session("agent").unwrap();
    agent.ask("still there?").await.unwrap();
    assert_eq!(
        agent.session_id().as_deref(),
        Some(id.as_str()),
        "the rest resumed"
    );
    let text = std::fs::read_to_string(session_file(
        &fresh.path("config"),
        &fresh.path("work"),
        &id,
    ))
    .unwrap();
    assert!(
        text.contains("my name is Ada") && !text.contains("{\"torn"),
        "{text}"
    );
    tree.shutdown().await;
}

/// A store that can be taken down (every call fails, as an unreachable server's would) and
/// brought back.
#[derive(Clone, Debug, Default)]
struct OutageStore {
    inner: MemoryStore,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl OutageStore {
    fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            Err(StoreError::Other(
                "connection refused (the store is down)".into(),
            ))
        } else {
            Ok(())
        }
    }
}

type Boxed<'a, T> = futures::future::BoxFuture<'a, Result<T, StoreError>>;

impl SessionStore for OutageStore {
    fn load<'a>(&'a self, name: &'a str) -> Boxed<'a, Option<claude_supervisor::SessionRecord>> {
        Box::pin(async move {
            self.check()?;
            self.inner.load(name).await
        })
    }
    fn save<'a>(&'a self, record: &'a claude_supervisor::SessionRecord) -> Boxed<'a, ()> {
        Box::pin(async move {
            self.check()?;
            self.inner.save(record).await
        })
    }
    fn delete<'a>(&'a self, name: &'a str) -> Boxed<'a, ()> {
        Box::pin(async move {
            self.check()?;
            self.inner.delete(name).await
        })
    }
    fn list(&self) -> Boxed<'_, Vec<claude_supervisor::SessionRecord>> {
        Box::pin(async move {
            self.check()?;
            self.inner.list().await
        })
    }
    fn holds_transcripts(&self) -> bool {
        true
    }
    fn append_entries<'a>(
        &'a self,
        name: &'a str,
        session_id: &'a str,
        file: &'a str,
        entries: &'a [claude_supervisor::store::TranscriptEntry],
        fence: Option<u64>,
    ) -> Boxed<'a, usize> {
        Box::pin(async move {
            self.check()?;
            self.inner
                .append_entries(name, session_id, file, entries, fence)
                .await
        })
    }
    fn load_entries<'a>(
        &'a self,
        name: &'a str,
        session_id: &'a str,
    ) -> Boxed<'a, Vec<claude_supervisor::store::TranscriptFile>> {
        Box::pin(async move {
            self.check()?;
            self.inner.load_entries(name, session_id).await
        })
    }
}

async fn next_event<T>(
    events: &mut tokio::sync::broadcast::Receiver<claude_supervisor::SupervisorEvent>,
    what: &str,
    mut pick: impl FnMut(SupervisorEventKind) -> Option<T>,
) -> T {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .unwrap_or_else(|_| panic!("{what}: no such event"))
            .unwrap();
        if let Some(found) = pick(event.kind) {
            return found;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_lost_mid_run_loses_nothing_once_it_returns() {
    let env = FakeEnv::new();
    let store = OutageStore::default();
    let first = tree(&env, store.clone()).await;
    let mut events = first.events();
    let agent = first.session("agent").unwrap();
    agent.ask("one").await.unwrap();
    let id = agent.session_id().unwrap();

    // The store goes away: the session serves on from memory, and says so.
    store.set_down(true);
    agent.ask("two").await.unwrap();
    let error = next_event(&mut events, "StoreFailed", |k| match k {
        SupervisorEventKind::StoreFailed { error } if error.contains(".jsonl") => Some(error),
        _ => None,
    })
    .await;
    assert!(
        error.contains("connection refused") && error.contains("kept and retried"),
        "{error}"
    );
    agent.ask("three").await.unwrap();

    // It comes back: the backlog is stored, in order, and nothing is missing.
    store.set_down(false);
    let entries = next_event(&mut events, "StoreRecovered", |k| match k {
        SupervisorEventKind::StoreRecovered { entries } => Some(entries),
        _ => None,
    })
    .await;
    assert!(entries > 0);
    let files = store.inner.load_entries("agent", &id).await.unwrap();
    let users: Vec<String> = files[0]
        .entries
        .iter()
        .map(|e| e.parse().unwrap())
        .filter(|l: &serde_json::Value| l["type"] == "user")
        .map(|l| l["message"]["content"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(users, ["one", "two", "three"], "every turn, once, in order");
    first.shutdown().await;

    // And the conversation resumes from the store alone, with all three turns.
    let fresh = FakeEnv::new();
    let second = tree(&fresh, store.clone()).await;
    let agent = second.session("agent").unwrap();
    let out = agent.ask("HISTORY?").await.unwrap();
    assert_eq!(out.final_text(), Some(r#"history: ["one","two","three"]"#));
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subagent_transcripts_are_written_back_beside_the_main_one() {
    let store = MemoryStore::new();
    let id = first_run(store.clone()).await;
    // A subagent's transcript, as the CLI mirrors it (`<id>/subagents/agent-<x>.jsonl`).
    let sub = format!("{id}/subagents/agent-a1.jsonl");
    let line = serde_json::json!({"uuid": "s1", "type": "user", "isSidechain": true,
        "message": {"role": "user", "content": "subtask"}});
    store
        .append_entries(
            "agent",
            &id,
            &sub,
            &[claude_supervisor::store::TranscriptEntry::from_value(&line)],
            None,
        )
        .await
        .unwrap();
    let fresh = FakeEnv::new();
    let tree = tree(&fresh, store.clone()).await;
    let project = session_file(&fresh.path("config"), &fresh.path("work"), &id)
        .parent()
        .unwrap()
        .to_owned();
    let written = std::fs::read_to_string(project.join(&sub)).expect("the subagent file");
    assert!(written.contains("subtask"), "{written}");
    tree.session("agent").unwrap().ask("go on").await.unwrap();
    tree.shutdown().await;
}

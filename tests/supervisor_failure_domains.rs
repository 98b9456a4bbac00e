//! Each named session is its own failure domain (fake-claude): a crash loop fails that session
//! only, a lost conversation starts fresh, a failed start keeps nothing, the tree answers while
//! sessions start, a query sent as the CLI dies is answered by its replacement, and user code
//! that panics fails its own session only.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use claude_supervisor::{
    Backoff, ClaudeSupervisor, LostConversation, MemoryStore, SessionRecord, SessionSpec,
    SessionState, SessionStore, StoreError, SupervisorError, SupervisorEventKind,
};
use claude_testing::envs::FakeEnv;
use claude_testing::fake_claude::{
    ENV_RECORD_DIR, ENV_SCENARIO_FILE, ENV_STATE_DIR, Fault, Scenario,
};
use futures::future::BoxFuture;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// fake-claude options whose scenario is read from a file, so a test can change it later.
fn options_from_file(
    env: &FakeEnv,
    file: &std::path::Path,
    scenario: &Scenario,
) -> claude_supervisor::ClaudeOptions {
    std::fs::write(file, scenario.to_json()).unwrap();
    // FakeEnv::options minus the inline scenario (which fake-claude would prefer to the file).
    claude_supervisor::ClaudeOptions::builder()
        .cwd(env.path("work"))
        .env("HOME", env.path("home").into_os_string())
        .env("CLAUDE_CONFIG_DIR", env.path("config").into_os_string())
        .env(ENV_STATE_DIR, env.path("state").into_os_string())
        .env(ENV_RECORD_DIR, env.path("record").into_os_string())
        .env(ENV_SCENARIO_FILE, file.as_os_str().to_owned())
        .build()
        .unwrap()
}

async fn wait_for_event(
    events: &mut tokio::sync::broadcast::Receiver<claude_supervisor::SupervisorEvent>,
    mut pred: impl FnMut(&claude_supervisor::SupervisorEvent) -> bool,
) -> claude_supervisor::SupervisorEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .expect("the event arrives")
            .expect("the bus is open");
        if pred(&event) {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_in_a_crash_loop_fails_alone_while_nine_others_keep_answering() {
    let env = FakeEnv::new();
    let bad_env = FakeEnv::new();
    let bad_file = bad_env.path("scenario.json");
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .start()
        .await
        .unwrap();
    let mut events = tree.events();
    let mut good = Vec::new();
    for i in 0..9 {
        let spec = SessionSpec::new(
            format!("good-{i}"),
            env.options(&Scenario::new()).build().unwrap(),
        );
        good.push(tree.start_session(spec).await.unwrap());
    }
    // The bad session works at first; then its CLI fails every start. A backoff between its
    // restarts makes the storm last while the others answer.
    let bad_spec = SessionSpec::new(
        "bad",
        options_from_file(&bad_env, &bad_file, &Scenario::new()),
    )
    .intensity(3, Duration::from_secs(60))
    .backoff(
        Backoff::exponential(Duration::from_millis(150), Duration::from_millis(300), 0.0).unwrap(),
    );
    let bad = tree.start_session(bad_spec).await.unwrap();
    bad.ask("hello").await.unwrap();
    let failing = Scenario::new().fault(Fault::exit_before_init(9, "cannot start"));
    std::fs::write(&bad_file, failing.to_json()).unwrap();
    let pid = tree
        .list_sessions()
        .into_iter()
        .find(|s| s.name == "bad")
        .and_then(|s| s.pid)
        .expect("the bad session runs");
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();

    // The nine answer turns until the bad one has failed; some answers come while it storms.
    let during = Arc::new(AtomicUsize::new(0));
    let mut askers = Vec::new();
    for handle in good.clone() {
        let (bad, during) = (bad.clone(), during.clone());
        askers.push(tokio::spawn(async move {
            let mut n = 0;
            loop {
                let state = bad.state();
                if state == SessionState::Failed {
                    return n;
                }
                let out = handle.ask(format!("turn {n}")).await.unwrap();
                assert_eq!(
                    out.final_text(),
                    Some(format!("fake reply to: turn {n}").as_str())
                );
                if matches!(
                    bad.state(),
                    SessionState::Restarting | SessionState::Starting
                ) {
                    during.fetch_add(1, Ordering::SeqCst);
                }
                n += 1;
            }
        }));
    }
    let failed = wait_for_event(&mut events, |e| {
        e.session.as_deref() == Some("bad") && matches!(e.kind, SupervisorEventKind::Failed { .. })
    })
    .await;
    let SupervisorEventKind::Failed { reason } = failed.kind else {
        unreachable!()
    };
    assert!(reason.contains("cannot start"), "{reason}");
    for asker in askers {
        asker.await.unwrap();
    }
    assert!(
        during.load(Ordering::SeqCst) > 0,
        "turns were answered during the storm"
    );
    for handle in &good {
        handle.ask("after the storm").await.unwrap();
    }
    let health = tree.health().await;
    assert_eq!((health.total, health.running, health.failed), (10, 9, 1));
    // A dashboard needs nothing else: per running session its pid, uptime, turns and memory.
    for report in health
        .sessions
        .iter()
        .filter(|s| s.info.state == SessionState::Running)
    {
        assert!(report.info.pid.is_some(), "{report:?}");
        assert!(report.info.uptime_ms.is_some(), "{report:?}");
        assert!(report.info.turns >= 1, "{report:?}");
        assert!(report.memory_bytes.is_some_and(|m| m > 0), "{report:?}");
    }
    assert!(health.turns >= 18, "{}", health.turns);
    assert!(health.down.is_none(), "the tree is up");
    assert!(matches!(
        bad.ask("still there?").await,
        Err(SupervisorError::Failed { .. })
    ));

    // Once its CLI works again, restart_session brings it back.
    std::fs::write(&bad_file, Scenario::new().to_json()).unwrap();
    let back = tree.restart_session("bad").await.unwrap();
    assert_eq!(back.state(), SessionState::Running);
    let out = back.ask("back?").await.unwrap();
    assert_eq!(out.final_text(), Some("fake reply to: back?"));
    assert_eq!(tree.health().await.running, 10);
    tree.shutdown().await;
    env.assert_all_gone().await;
    bad_env.assert_all_gone().await;
}

fn bogus_record(name: &str) -> SessionRecord {
    let mut record = SessionRecord::new(name, "fingerprint");
    record.session_id = Some("99999999-9999-4999-8999-999999999999".into());
    record
}

async fn lost_conversation_starts_fresh(static_session: bool) {
    let env = FakeEnv::new();
    let store = MemoryStore::new();
    store.save(&bogus_record("lost")).await.unwrap();
    let spec = SessionSpec::new("lost", env.options(&Scenario::new()).build().unwrap());
    let mut builder = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .store(store.clone());
    if static_session {
        builder = builder.session(spec.clone());
    }
    let tree = builder.start().await.unwrap();
    let mut events = tree.events();
    let lost = if static_session {
        tree.session("lost").unwrap()
    } else {
        tree.start_session(spec).await.unwrap()
    };
    let out = lost.ask("hello").await.unwrap();
    assert_eq!(out.final_text(), Some("fake reply to: hello"));
    let event = wait_for_event(&mut events, |e| {
        matches!(e.kind, SupervisorEventKind::ConversationLost { .. })
    })
    .await;
    assert_eq!(event.session.as_deref(), Some("lost"));
    // Exactly two launches: the failed resume and the fresh one.
    assert_eq!(env.pids().len(), 2, "{:?}", env.pids());
    // The keeper writes the record as the new id arrives: wait (bounded) for that write.
    let mut record = store.load("lost").await.unwrap().unwrap();
    for _ in 0..200 {
        if record.session_id.is_some() && record.session_id == lost.session_id() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        record = store.load("lost").await.unwrap().unwrap();
    }
    assert_ne!(
        record.session_id,
        bogus_record("lost").session_id,
        "the record was updated"
    );
    assert_eq!(record.session_id, lost.session_id());
    let history = lost.ask("HISTORY?").await.unwrap();
    assert_eq!(history.final_text(), Some(r#"history: ["hello"]"#));
    while let Ok(e) = events.try_recv() {
        assert!(
            !matches!(e.kind, SupervisorEventKind::ConversationLost { .. }),
            "one event only"
        );
    }
    tree.shutdown().await;
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_session_with_a_lost_conversation_starts_fresh() {
    lost_conversation_starts_fresh(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_session_with_a_lost_conversation_starts_fresh() {
    lost_conversation_starts_fresh(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_fail_policy_a_lost_conversation_fails_the_session_without_a_restart_loop() {
    let env = FakeEnv::new();
    let store = MemoryStore::new();
    store.save(&bogus_record("strict")).await.unwrap();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .store(store)
        .session(
            SessionSpec::new("strict", env.options(&Scenario::new()).build().unwrap())
                .on_lost_conversation(LostConversation::Fail),
        )
        .session(SessionSpec::new(
            "bystander",
            env.options(&Scenario::new()).build().unwrap(),
        ))
        .start()
        .await
        .expect("the tree starts anyway");
    let mut events = tree.events();
    let strict = tree.session("strict").unwrap();
    match strict.ask("hello").await {
        Err(SupervisorError::ConversationLost { name, session_id }) => {
            assert_eq!(name, "strict");
            assert_eq!(session_id, "99999999-9999-4999-8999-999999999999");
        }
        other => panic!("expected ConversationLost, got {other:?}"),
    }
    wait_for_event(&mut events, |e| {
        e.session.as_deref() == Some("strict")
            && matches!(e.kind, SupervisorEventKind::Failed { .. })
    })
    .await;
    assert_eq!(strict.state(), SessionState::Failed);
    let bystander = tree.session("bystander").unwrap();
    bystander.ask("fine?").await.unwrap();
    // One launch each: no restart loop.
    assert_eq!(env.pids().len(), 2, "{:?}", env.pids());
    tree.shutdown().await;
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_sent_as_the_cli_is_killed_is_answered_by_the_restarted_instance() {
    let env = FakeEnv::new();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .session(
            SessionSpec::new("target", env.options(&Scenario::new()).build().unwrap())
                .intensity(1000, Duration::from_secs(60)),
        )
        .start()
        .await
        .unwrap();
    let target = tree.session("target").unwrap();
    let mut asked = Vec::new();
    for i in 0..100 {
        let pid = tree.list_sessions()[0].pid.expect("running");
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        let prompt = format!("turn {i}");
        let out = target
            .ask(prompt.clone())
            .await
            .unwrap_or_else(|e| panic!("iteration {i}: {e}"));
        assert_eq!(
            out.final_text(),
            Some(format!("fake reply to: {prompt}").as_str())
        );
        asked.push(prompt);
    }
    // The conversation came along through all hundred restarts.
    let history = target.ask("HISTORY?").await.unwrap();
    let text = history.final_text().unwrap().to_owned();
    for prompt in &asked {
        assert!(
            text.contains(&format!("\"{prompt}\"")),
            "{prompt} missing from {text}"
        );
    }
    tree.shutdown().await;
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_keeps_no_name_and_no_place() {
    let env = FakeEnv::new();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .max_sessions(1)
        .start()
        .await
        .unwrap();
    let options = env.options(&Scenario::new()).build().unwrap();
    match tree
        .start_session(SessionSpec::new("", options.clone()))
        .await
    {
        Err(SupervisorError::InvalidName { reason, .. }) => assert!(reason.contains("empty")),
        other => panic!("expected InvalidName, got {other:?}"),
    }
    let long = "x".repeat(claude_supervisor::MAX_NAME_LEN + 1);
    assert!(matches!(
        tree.start_session(SessionSpec::new(long, options.clone()))
            .await,
        Err(SupervisorError::InvalidName { .. })
    ));
    assert!(matches!(
        tree.start_session(SessionSpec::new("../etc", options.clone()))
            .await,
        Err(SupervisorError::InvalidName { .. })
    ));
    let broken = env
        .options(&Scenario::new().fault(Fault::exit_before_init(5, "no such thing")))
        .build()
        .unwrap();
    match tree.start_session(SessionSpec::new("broken", broken)).await {
        Err(SupervisorError::Start { name, source }) => {
            assert_eq!(name, "broken");
            assert!(source.to_string().contains("no such thing"), "{source}");
        }
        other => panic!("expected Start, got {other:?}"),
    }
    assert!(
        tree.list_sessions().is_empty(),
        "{:?}",
        tree.list_sessions()
    );
    // The one admission place is free: a good session takes it, and the broken name is free.
    let ok = tree
        .start_session(SessionSpec::new("broken", options))
        .await
        .unwrap();
    ok.ask("hi").await.unwrap();
    assert_eq!(tree.health().await.total, 1);
    tree.shutdown().await;
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_while_twenty_sessions_are_held_in_their_start() {
    let env = Arc::new(FakeEnv::new());
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .start()
        .await
        .unwrap();
    let hang = Scenario::new().fault(Fault::Hang);
    let mut starts = Vec::new();
    for i in 0..20 {
        let (tree, env, hang) = (tree.clone(), env.clone(), hang.clone());
        starts.push(tokio::spawn(async move {
            let spec = SessionSpec::new(format!("held-{i}"), env.options(&hang).build().unwrap());
            tree.start_session(spec).await
        }));
    }
    // Wait (bounded) until all twenty CLIs run: each records itself as it starts, then hangs
    // before answering `initialize`.
    for _ in 0..400 {
        if env.pids().len() == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(env.pids().len(), 20, "all twenty CLIs were launched");
    // Every CLI is up and held before its `initialize` answer: the tree still answers.
    let health = tree.health().await;
    let listed = tree.list_sessions();
    assert_eq!((health.total, health.starting), (20, 20));
    assert_eq!(listed.len(), 20);
    assert!(
        starts.iter().all(|s| !s.is_finished()),
        "health and the listing came back before any start finished"
    );
    tree.shutdown().await;
    for start in starts {
        assert!(
            start.await.unwrap().is_err(),
            "a held start ends with an error at shutdown"
        );
    }
    env.assert_all_gone().await;
}

#[derive(Debug, Clone)]
struct PanickyStore {
    inner: MemoryStore,
}

impl SessionStore for PanickyStore {
    fn load<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        if name == "cursed" {
            panic!("the store's load exploded");
        }
        self.inner.load(name)
    }
    fn save<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        if record.name == "saves-badly" {
            panic!("the store's save exploded");
        }
        self.inner.save(record)
    }
    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.delete(name)
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<SessionRecord>, StoreError>> {
        self.inner.list()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_configure_closure_or_store_fails_only_its_own_session() {
    let env = FakeEnv::new();
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .store(PanickyStore {
            inner: MemoryStore::new(),
        })
        .session(SessionSpec::new(
            "bystander",
            env.options(&Scenario::new()).build().unwrap(),
        ))
        .start()
        .await
        .unwrap();
    let mut events = tree.events();
    let options = env.options(&Scenario::new()).build().unwrap();
    let spec = SessionSpec::new("configured-badly", options.clone())
        .configure(|_| panic!("configure exploded"));
    match tree.start_session(spec).await {
        Err(SupervisorError::Panicked { name, message, .. }) => {
            assert_eq!(name, "configured-badly");
            assert!(message.contains("configure exploded"), "{message}");
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    match tree
        .start_session(SessionSpec::new("cursed", options.clone()))
        .await
    {
        Err(SupervisorError::Store(StoreError::Panicked { method, message })) => {
            assert_eq!(method, "load");
            assert!(message.contains("load exploded"));
        }
        other => panic!("expected a store panic, got {other:?}"),
    }
    // A save that panics is reported; the session keeps serving.
    let saves_badly = tree
        .start_session(SessionSpec::new("saves-badly", options))
        .await
        .unwrap();
    saves_badly.ask("still fine?").await.unwrap();
    wait_for_event(&mut events, |e| {
        e.session.as_deref() == Some("saves-badly")
            && matches!(&e.kind, SupervisorEventKind::StoreFailed { error } if error.contains("save exploded"))
    })
    .await;
    let bystander = tree.session("bystander").unwrap();
    bystander.ask("and you?").await.unwrap();
    let names: Vec<_> = tree.list_sessions().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["bystander", "saves-badly"]);
    tree.shutdown().await;
    env.assert_all_gone().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_at_the_moment_of_hibernation_wakes_the_session_instead_of_failing() {
    let env = FakeEnv::new();
    let idle = Duration::from_millis(40);
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .session(
            SessionSpec::new("sleepy", env.options(&Scenario::new()).build().unwrap())
                .idle_timeout(idle),
        )
        .start()
        .await
        .unwrap();
    let sleepy = tree.session("sleepy").unwrap();
    // Queries land on either side of the idle deadline, some exactly as the keeper hibernates.
    for i in 0..30u32 {
        tokio::time::sleep(idle + Duration::from_millis(u64::from(i % 5) * 2)).await;
        let out = sleepy
            .ask(format!("turn {i}"))
            .await
            .unwrap_or_else(|e| panic!("turn {i}: {e}"));
        assert_eq!(
            out.final_text(),
            Some(format!("fake reply to: turn {i}").as_str())
        );
    }
    let history = sleepy.ask("HISTORY?").await.unwrap();
    assert!(history.final_text().unwrap().contains("\"turn 29\""));
    tree.shutdown().await;
    env.assert_all_gone().await;
}

//! The Claude supervisor against the real CLI (pinned) and the fake Messages API: restarts that
//! keep the conversation, a program restart on the same store, hibernation.

use std::time::Duration;

use claude_supervisor::SessionError;
use claude_supervisor::{
    ClaudeSupervisor, FileStore, SessionSpec, SessionState, SupervisorError, SupervisorEventKind,
};
use claude_testing::envs::{RealEnv, assert_group_gone};
use claude_testing::fake_api::user_texts_of;

async fn tree(env: &RealEnv, spec: SessionSpec) -> ClaudeSupervisor {
    ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .session(spec)
        .start()
        .await
        .expect("tree starts")
}

fn last_request_has(env: &RealEnv, texts: &[&str]) {
    let request = env.api.last_main_request().expect("a request");
    let sent = user_texts_of(&request);
    for t in texts {
        assert!(
            sent.iter().any(|s| s.contains(t)),
            "`{t}` missing from the request's history: {sent:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_conversation_restarts_the_session_with_its_conversation() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let tree = tree(
        &env,
        SessionSpec::new("agent", env.options().build().unwrap()),
    )
    .await;
    let mut events = tree.events();
    let agent = tree.session("agent").unwrap();
    agent.ask("my name is Ada").await.unwrap();
    let id = agent.session_id().expect("a conversation");
    let pid = agent.health().await.unwrap().pid.unwrap() as i32;
    assert_eq!(agent.generation(), Some(1));

    let turn = agent.query("SLOW tell me a story").await.unwrap();
    env.api
        .wait_for_request(Duration::from_secs(30), |r| {
            r.latest_user_text().is_some_and(|t| t.contains("SLOW"))
        })
        .await
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();

    let err = turn.collect().await.unwrap_err();
    match &err {
        SessionError::Exited {
            status, session, ..
        } => {
            assert_eq!(status.signal(), Some(9), "{err}");
            assert_eq!(session, "agent");
        }
        other => panic!("expected Exited, got {other:?}"),
    }
    // The handle waits for the new instance, which resumes the conversation.
    let out = agent.ask("what is my name?").await.unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    assert_eq!(out.session_id(), id, "the session id is unchanged");
    assert_eq!(agent.session_id().as_deref(), Some(id.as_str()));
    last_request_has(&env, &["my name is Ada", "what is my name?"]);
    assert_eq!(agent.generation(), Some(2));
    assert_group_gone(pid).await;
    let mut restarting = false;
    while let Ok(ev) = events.try_recv() {
        restarting |= matches!(ev.kind, SupervisorEventKind::Restarting);
    }
    assert!(restarting, "a restart was reported");
    let new_pid = agent.health().await.unwrap().pid.unwrap() as i32;
    tree.shutdown().await;
    assert_group_gone(new_pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_program_on_the_same_store_resumes_the_named_session() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let store_dir = env.sandbox.root().join("store");
    let spec = || SessionSpec::new("assistant", env.options().build().unwrap());

    let first = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .store(FileStore::open(&store_dir).unwrap())
        .session(spec())
        .start()
        .await
        .unwrap();
    let handle = first.session("assistant").unwrap();
    handle.ask("the secret word is marmalade").await.unwrap();
    let id = handle.session_id().unwrap();
    let cost = handle.totals().cost_usd;
    let pid = handle.health().await.unwrap().pid.unwrap() as i32;
    // The program stops: its supervisor is dropped (the tree stops its sessions by the recipe).
    drop(handle);
    drop(first);
    assert_group_gone(pid).await;

    let second = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .store(FileStore::open(&store_dir).unwrap())
        .session(spec())
        .start()
        .await
        .unwrap();
    let handle = second.session("assistant").unwrap();
    assert_eq!(
        handle.session_id().as_deref(),
        Some(id.as_str()),
        "restored from the store"
    );
    let out = handle.ask("what was the secret word?").await.unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    assert_eq!(out.session_id(), id);
    last_request_has(
        &env,
        &["the secret word is marmalade", "what was the secret word?"],
    );
    assert!(
        handle.totals().cost_usd > cost,
        "cost totals carried over and grew"
    );
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_hibernates_and_the_next_query_resumes_it() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let spec = SessionSpec::new("sleepy", env.options().build().unwrap())
        .idle_timeout(Duration::from_millis(500));
    let tree = tree(&env, spec).await;
    let sleepy = tree.session("sleepy").unwrap();
    sleepy.ask("remember the number 42").await.unwrap();
    let id = sleepy.session_id().unwrap();
    let pid = sleepy.health().await.unwrap().pid.unwrap() as i32;

    for _ in 0..200 {
        if sleepy.state() == SessionState::Hibernated {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sleepy.state(), SessionState::Hibernated);
    assert_group_gone(pid).await;
    let health = tree.health().await;
    assert_eq!(health.hibernated, 1);
    assert!(health.sessions[0].instance.is_none());
    assert_eq!(tree.list_sessions()[0].state, SessionState::Hibernated);

    let out = sleepy.ask("which number?").await.unwrap();
    assert!(!out.is_error());
    assert_eq!(out.session_id(), id);
    last_request_has(&env, &["remember the number 42", "which number?"]);
    assert_eq!(sleepy.generation(), Some(2));
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_session_works_on_a_live_session_and_health_reports_the_tree() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let tree = ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .start()
        .await
        .unwrap();
    let handle = tree
        .start_session(SessionSpec::new("live", env.options().build().unwrap()))
        .await
        .unwrap();
    handle.ask("note: the sky is green").await.unwrap();
    let old = handle.health().await.unwrap().pid.unwrap() as i32;
    tree.restart_session("live").await.unwrap();
    assert_group_gone(old).await;
    handle.ask("what colour is the sky?").await.unwrap();
    last_request_has(&env, &["note: the sky is green"]);
    assert!(matches!(
        tree.start_session(SessionSpec::new("live", env.options().build().unwrap()))
            .await,
        Err(SupervisorError::AlreadyExists { .. })
    ));
    let health = tree.health().await;
    assert_eq!((health.running, health.sessions.len()), (1, 1));
    assert!(health.cost.cost_usd > 0.0);
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["sessions"][0]["name"], "live");
    assert!(tree.ping("live").await.is_ok());
    tree.terminate_session("live").await.unwrap();
    assert!(tree.list_sessions().is_empty());
    assert!(matches!(
        handle.ask("x").await,
        Err(SupervisorError::Unavailable { .. })
    ));
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_sent_as_the_cli_is_killed_is_answered_with_the_conversation() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let tree = tree(
        &env,
        SessionSpec::new("agent", env.options().build().unwrap()),
    )
    .await;
    let agent = tree.session("agent").unwrap();
    agent.ask("my name is Grace").await.unwrap();
    let pid = agent.health().await.unwrap().pid.unwrap() as i32;
    // The query goes out at the same moment as the SIGKILL: it must reach the new instance.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = agent.ask("what is my name?").await.unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    last_request_has(&env, &["my name is Grace", "what is my name?"]);
    assert_eq!(agent.generation(), Some(2));
    assert_group_gone(pid).await;
    tree.shutdown().await;
}

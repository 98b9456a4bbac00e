//! The real CLI (pinned) resumes its conversation in a brand-new HOME and config dir with nothing
//! but the store: the fake Messages API's request log shows the earlier turn.

#[cfg(feature = "postgres")]
use claude_supervisor::store::PostgresStore;
use claude_supervisor::store::SessionStore;
use claude_supervisor::{ClaudeSupervisor, FileStore, SessionSpec};
use claude_testing::envs::RealEnv;
use claude_testing::fake_api::user_texts_of;

async fn tree(env: &RealEnv, store: impl SessionStore) -> ClaudeSupervisor {
    ClaudeSupervisor::builder()
        .cli_path(env.cli_path())
        .store(store)
        .session(SessionSpec::new("agent", env.options().build().unwrap()))
        .start()
        .await
        .expect("tree starts")
}

/// One turn in a first sandbox, then a resume in another one (new HOME, config dir, working
/// dir and API) that shares only `store`: the resumed request carries the first turn.
async fn resumes_from_the_store_alone(store: impl SessionStore + Clone) {
    let Some(first) = RealEnv::start().await else {
        return;
    };
    let t = tree(&first, store.clone()).await;
    let agent = t.session("agent").unwrap();
    agent.ask("my name is Ada").await.unwrap();
    let id = agent.session_id().expect("a conversation");
    t.shutdown().await;
    let stored = store.load_entries("agent", &id).await.unwrap();
    assert!(
        stored.iter().any(|f| f.file == format!("{id}.jsonl")),
        "the main transcript is stored: {:?}",
        stored.iter().map(|f| &f.file).collect::<Vec<_>>()
    );
    drop(first);

    let Some(second) = RealEnv::start().await else {
        return;
    };
    let t = tree(&second, store.clone()).await;
    let agent = t.session("agent").unwrap();
    agent.ask("what is my name?").await.unwrap();
    assert_eq!(agent.session_id().as_deref(), Some(id.as_str()));
    let request = second.api.last_main_request().expect("a request");
    let sent = user_texts_of(&request);
    assert!(
        sent.iter().any(|s| s.contains("my name is Ada")),
        "the earlier turn is in the resumed request: {sent:?}"
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_resumes_in_a_brand_new_config_dir_from_a_file_store() {
    let dir = tempfile::tempdir().unwrap();
    resumes_from_the_store_alone(FileStore::open(dir.path()).unwrap()).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_resumes_in_a_brand_new_config_dir_from_postgres() {
    let Some(pg) = claude_testing::postgres::TempPostgres::start() else {
        return;
    };
    let store = PostgresStore::connect(&pg.url()).await.expect("connect");
    resumes_from_the_store_alone(store).await;
}

//! Warm spares of the real CLI (pinned), against the fake Messages API in a sandbox: a session
//! takes a parked `--await-claim` spare, claims it for its own directory and system prompt, and
//! talks; its conversation is written under the claimed directory and resumes in a new process
//! (cold: a claim cannot resume) like any other. Skipped loudly when the CLI is not installed
//! (CI requires it).

#[path = "support/common.rs"]
mod support;

use claude_session::{Session, SparePool, StartPath};
use claude_testing::fake_api::user_texts_of;
use support::{RealEnv, RealEnvExt, assert_group_gone};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_spare_answers_in_its_own_directory_and_its_conversation_resumes_after() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let template = env
        .config("spares", env.options().build().unwrap())
        .build()
        .unwrap();
    let pool = SparePool::builder(template).size(1).build().unwrap();
    pool.ready().await;
    let spare_pid = pool.parked_pids()[0];
    // The spare's CLI talks only to the fake API on loopback, from the sandbox.
    let environ = std::fs::read(format!("/proc/{spare_pid}/environ")).unwrap();
    let environ: Vec<String> = String::from_utf8_lossy(&environ)
        .split('\0')
        .map(str::to_owned)
        .collect();
    let var = |name: &str| {
        environ
            .iter()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_owned))
            .unwrap_or_else(|| panic!("{name} is not set in the spare"))
    };
    assert_eq!(var("ANTHROPIC_BASE_URL"), env.api.base_url());
    assert!(var("ANTHROPIC_BASE_URL").starts_with("http://127.0.0.1:"));
    assert_eq!(var("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"), "1");
    assert!(std::path::Path::new(&var("HOME")).starts_with(env.sandbox.root()));

    let project = env.sandbox.work_dir().join("proj-warm");
    std::fs::create_dir_all(&project).unwrap();
    let options = || {
        env.options()
            .cwd(&project)
            .system_prompt("WARM-SYSTEM-PROMPT")
    };
    let config = env
        .config("warm", options().build().unwrap())
        .spares(pool.clone())
        .build()
        .unwrap();
    let session = Session::start(config).await.expect("warm start");
    let health = session.health().await.unwrap();
    assert!(health.start.is_warm(), "{:?}", health.start);
    assert_eq!(health.pid, Some(spare_pid));

    let out = session
        .query("first question")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    assert_eq!(out.final_text(), Some("mock reply to: first question"));
    let request = env.api.last_main_request().unwrap();
    let system = request.system_text().unwrap_or_default();
    assert!(
        system.contains("WARM-SYSTEM-PROMPT"),
        "the claimed system prompt reached the API: {system}"
    );
    let id = out.session_id().to_owned();
    let file = env
        .sandbox
        .session_file(&id)
        .expect("the claimed session's file");
    assert!(
        file.parent()
            .unwrap()
            .to_string_lossy()
            .ends_with("proj-warm"),
        "written under the claimed directory's project folder: {}",
        file.display()
    );
    session.stop().await.unwrap();
    assert_group_gone(spare_pid as i32).await;

    // A restart: a new process resumes the conversation; with the same pool it starts cold.
    let config = env
        .config("warm", options().resume(id.clone()).build().unwrap())
        .spares(pool.clone())
        .build()
        .unwrap();
    let resumed = Session::start(config).await.expect("resumed start");
    let health = resumed.health().await.unwrap();
    match &health.start {
        StartPath::ColdFallback { reason } => assert!(reason.contains("resuming"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let out = resumed
        .query("second question")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(out.final_text(), Some("mock reply to: second question"));
    assert_eq!(out.session_id(), id, "the same conversation");
    let texts = user_texts_of(&env.api.last_main_request().unwrap());
    assert!(
        texts.iter().any(|t| t.contains("first question")),
        "the resumed request carries the first turn: {texts:?}"
    );
    let pid = health.pid.unwrap() as i32;
    resumed.stop().await.unwrap();
    assert_group_gone(pid).await;

    let parked = pool.parked_pids();
    pool.shutdown().await;
    for pid in parked {
        assert_group_gone(pid as i32).await;
    }
}

//! What the real CLI prints with `--session-mirror`: `transcript_mirror` frames of exactly
//! `type`, `filePath` and `entries`, for its session file at
//! `<config>/projects/<project_folder_name(cwd)>/<id>.jsonl`, before the turn's `result`, and
//! holding the lines of that file verbatim, in order (all but its `api-request*` snapshots).

use std::time::Duration;

use claude_protocol::transcript::{TranscriptMirror, session_file};
use claude_testing::fake_api::FakeApi;
use claude_testing::real_cli::{LeakCheck, Sandbox, result_of};

const STEP: Duration = Duration::from_secs(60);

#[tokio::test]
async fn real_cli_mirrors_its_session_file_before_the_result() {
    let cli = claude_testing::require_real_cli!();
    let mut leaks = LeakCheck::start();
    let api = FakeApi::start().await;
    let sandbox = Sandbox::new().expect("sandbox");
    let mut proc = cli
        .spawn_stream_json(&sandbox, &api, &["--session-mirror"])
        .expect("spawn the real CLI");
    leaks.watch_group(proc.pgid());
    proc.initialize(STEP).await.expect("initialize");
    proc.send_user_text("hello mirror").await.expect("send");
    let turn = proc.read_turn(STEP).await.expect("turn");
    let result = result_of(&turn).expect("result").clone();
    let id = result["session_id"]
        .as_str()
        .expect("session id")
        .to_owned();
    let mirrors: Vec<&serde_json::Value> = turn
        .iter()
        .filter(|v| v["type"] == "transcript_mirror")
        .collect();
    assert!(
        !mirrors.is_empty(),
        "no transcript_mirror before the result: {turn:#?}"
    );
    let expected = session_file(&sandbox.config_dir(), &sandbox.work_dir(), &id);
    let mut mirrored = Vec::new();
    for frame in &mirrors {
        let keys: Vec<&String> = frame.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["type", "filePath", "entries"], "{frame}");
        let m = TranscriptMirror::from_value(frame).expect("a well-formed frame");
        assert_eq!(m.file_path, expected, "the folder rule agrees with the CLI");
        mirrored.extend(m.entries);
    }
    assert!(
        mirrored
            .iter()
            .any(|e| e["type"] == "user" && e["uuid"].is_string()),
        "the user line, with a uuid: {mirrored:#?}"
    );
    assert!(
        mirrored
            .iter()
            .any(|e| e["type"] == "assistant" && e["uuid"].is_string()),
        "the assistant line is mirrored before the result: {mirrored:#?}"
    );
    let pgid = proc.pgid();
    let _ = proc
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");
    claude_testing::procs::assert_no_survivors(pgid);
    // Every mirrored line is in the session file, verbatim and in the same order. The file has
    // more: 2.1.329 does not mirror its `api-request*` lines (request snapshots), which a resume
    // does not need (tests/store_resume_real_cli.rs resumes from the mirrored lines alone), and
    // `cost-state` is written after the `result` (this test reads frames only up to it).
    let text = std::fs::read_to_string(&expected).expect("the session file");
    let on_disk: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut rest = on_disk.iter();
    for line in &mirrored {
        assert!(
            rest.any(|d| d == line),
            "a mirrored line is not in the file (or out of order): {line}"
        );
    }
    let unmirrored: Vec<&str> = on_disk
        .iter()
        .filter(|d| !mirrored.contains(d))
        .filter_map(|d| d["type"].as_str())
        .collect();
    assert!(
        unmirrored
            .iter()
            .all(|t| t.starts_with("api-request") || *t == "cost-state"),
        "only request snapshots (and the later cost-state) are left out: {unmirrored:?}"
    );
}

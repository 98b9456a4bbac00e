//! A `Bash` tool call from the fake API really runs in the real CLI (bypassPermissions, with
//! `IS_SANDBOX=1` as root): the command's file appears in the sandbox, and its output reaches
//! the next API request as a `tool_result`.

use std::time::Duration;

use claude_testing::fake_api::{FakeApi, Reply};
use claude_testing::procs;
use claude_testing::real_cli::{LeakCheck, Sandbox, assistant_texts, result_of};

const STEP: Duration = Duration::from_secs(60);

#[tokio::test]
async fn real_cli_runs_bash_tool_and_reports_output() {
    let cli = claude_testing::require_real_cli!();
    let mut leaks = LeakCheck::start();
    let api = FakeApi::start().await;
    let sandbox = Sandbox::new().expect("sandbox");
    let marker = sandbox.work_dir().join("marker.txt");
    assert!(!marker.exists());
    let command = format!(
        "printf marker-content > '{}' && echo wrote-$((40 + 2))",
        marker.display()
    );
    api.on_user_text("please run it", Reply::bash(command.clone()));

    let mut proc = cli
        .spawn_stream_json(&sandbox, &api, &["--permission-mode", "bypassPermissions"])
        .expect("spawn the real CLI");
    leaks.watch_group(proc.pgid());
    proc.initialize(STEP).await.expect("initialize");

    proc.send_user_text("please run it").await.expect("send");
    let turn = proc.read_turn(STEP).await.expect("the turn");
    let result = result_of(&turn).expect("result");
    assert_eq!(result["is_error"], false, "{result}");

    // The command ran for real, inside the sandbox.
    let written = std::fs::read_to_string(&marker).expect("the tool wrote the marker file");
    assert_eq!(written, "marker-content");

    // The CLI reported the tool call and its result on stdout.
    let tool_use = turn
        .iter()
        .filter(|l| l["type"] == "assistant")
        .flat_map(|l| {
            l["message"]["content"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|b| b["type"] == "tool_use")
        .expect("an assistant tool_use line");
    assert_eq!(tool_use["name"], "Bash");
    assert_eq!(tool_use["input"]["command"], command);
    let tool_result = turn
        .iter()
        .filter(|l| l["type"] == "user")
        .flat_map(|l| {
            l["message"]["content"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|b| b["type"] == "tool_result")
        .expect("a user tool_result line");
    assert_eq!(tool_result["tool_use_id"], tool_use["id"]);
    assert_eq!(tool_result["is_error"], false, "{tool_result}");

    // Its output went back to the API in the next request, and the fake answered with it.
    let main = api.main_requests();
    assert_eq!(main.len(), 2, "{}", api.describe_log());
    let results = main[1].latest_tool_results();
    assert_eq!(results.len(), 1, "{:?}", main[1].messages().last());
    assert_eq!(
        results[0].tool_use_id,
        tool_use["id"].as_str().unwrap_or_default()
    );
    assert!(results[0].content.contains("wrote-42"), "{:?}", results[0]);
    assert!(!results[0].is_error);
    assert_eq!(
        assistant_texts(&turn).last().map(String::as_str),
        Some("tool said: wrote-42")
    );
    assert_eq!(result["result"], "tool said: wrote-42");

    let pgid = proc.pgid();
    let shutdown = proc
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shutdown");
    assert!(shutdown.status.success(), "{:?}", shutdown.status);
    assert!(
        shutdown.leftovers.is_empty(),
        "the tool's processes outlived the CLI: {:?}",
        shutdown.leftovers
    );
    procs::assert_no_survivors(pgid);
    procs::assert_no_zombies();
    leaks.assert_clean();
}

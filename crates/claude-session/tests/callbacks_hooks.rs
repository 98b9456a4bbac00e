//! Hooks on the real CLI: a PreToolUse hook denies a Bash call (the tool does not run); a
//! PostToolUse hook sees the tool's output; the hooks of a turn fire in the CLI's order, all
//! before the turn's `result`; a UserPromptSubmit hook's additional context reaches the model.

#[path = "support/common.rs"]
mod support;

use std::sync::{Arc, Mutex};

use claude_session::{Callbacks, HookEvent, HookInput, HookOutput, Session};
use support::*;

type Log = Arc<Mutex<Vec<HookInput>>>;

fn recorder(log: &Log) -> impl Fn(HookInput) -> HookInput + Send + Sync + 'static {
    let log = log.clone();
    move |input: HookInput| {
        log.lock().unwrap().push(input.clone());
        input
    }
}

fn events(log: &Log) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .map(|h| h.event.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_tool_use_denies_post_tool_use_sees_output_in_the_clis_order() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let log: Log = Arc::default();
    let (pre, post, prompt, stop) = (
        recorder(&log),
        recorder(&log),
        recorder(&log),
        recorder(&log),
    );
    let callbacks = Callbacks::builder()
        .hook(HookEvent::PreToolUse, Some("Bash"), move |input| {
            let input = pre(input);
            async move {
                let command = input
                    .tool_input
                    .as_ref()
                    .and_then(|i| i["command"].as_str());
                if command.is_some_and(|c| c.contains("should-not-run")) {
                    Ok(HookOutput::deny("blocked by test hook"))
                } else {
                    Ok(HookOutput::proceed())
                }
            }
        })
        .hook(HookEvent::PostToolUse, None, move |input| {
            let _ = post(input);
            async move { Ok(HookOutput::proceed()) }
        })
        .hook(HookEvent::UserPromptSubmit, None, move |input| {
            let _ = prompt(input);
            async move { Ok(HookOutput::proceed().additional_context("CTX-MARKER-4711")) }
        })
        .hook(HookEvent::Stop, None, move |input| {
            let _ = stop(input);
            async move { Ok(HookOutput::proceed()) }
        })
        .build();
    let options = env.options().allowed_tools(["Bash"]).build().unwrap();
    let config = env
        .config("hooked", options)
        .callbacks(callbacks)
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;

    // Turn 1: the tool runs; PostToolUse sees its output; order as the CLI runs hooks.
    let out = session
        .query("RUN_TOOL: echo hooked")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    assert_eq!(
        events(&log),
        ["UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"],
        "hooks of turn 1 (all answered before its result)"
    );
    {
        let hooks = log.lock().unwrap();
        assert!(hooks.iter().all(|h| &*h.session == "hooked"));
        assert_eq!(hooks[0].prompt.as_deref(), Some("RUN_TOOL: echo hooked"));
        let post = &hooks[2];
        assert_eq!(post.tool_name.as_deref(), Some("Bash"));
        let response = post.tool_response.as_ref().expect("tool_response");
        assert_eq!(response["stdout"], "hooked", "{response}");
        assert_eq!(post.tool_use_id, hooks[1].tool_use_id);
        assert!(post.tool_use_id.is_some());
        assert_eq!(hooks[3].session_id.as_deref(), Some(out.session_id()));
    }
    // The prompt hook's context went to the model.
    let first = env
        .api
        .main_requests()
        .into_iter()
        .next()
        .expect("a request");
    assert!(
        first.body.to_string().contains("CTX-MARKER-4711"),
        "additional context missing from {}",
        first.body
    );

    // Turn 2: the PreToolUse hook denies; the tool does not run, no PostToolUse.
    log.lock().unwrap().clear();
    let marker = env.sandbox.work_dir().join("should-not-exist.txt");
    let out = session
        .query(format!(
            "RUN_TOOL: echo should-not-run > {}",
            marker.display()
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!marker.exists(), "the vetoed command ran");
    assert_eq!(
        events(&log),
        ["UserPromptSubmit", "PreToolUse", "Stop"],
        "hooks of turn 2"
    );
    let results = env.api.last_main_request().unwrap().latest_tool_results();
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(results[0].is_error, "{results:?}");
    assert!(
        results[0].content.contains("blocked by test hook"),
        "{results:?}"
    );
    assert_eq!(out.result.permission_denials().len(), 1, "{:?}", out.result);
    stop_and_check(session, pid).await;
}

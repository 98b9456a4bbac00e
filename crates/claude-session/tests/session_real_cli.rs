//! The session actor against the real Claude Code CLI (pinned), talking to the fake Messages API
//! on loopback in a sandbox. Skipped loudly when the CLI is not installed (CI requires it).

#[path = "support/common.rs"]
mod support;

use std::time::Duration;

use claude_protocol::Message;
use claude_testing::fake_api::user_texts_of;
use claude_testing::procs;
use futures::StreamExt;
use support::{RealEnv, RealEnvExt, pid_of, stop_and_check};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_turn_conversation_keeps_context_and_costs_add_up() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let session = env.session("multi-turn").await;
    let pid = pid_of(&session).await;

    let mut costs = Vec::new();
    let mut ids = Vec::new();
    for prompt in ["first question", "second question", "third question"] {
        let out = session
            .query(prompt)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert!(!out.is_error(), "turn failed: {:?}", out.result);
        assert_eq!(
            out.final_text(),
            Some(format!("mock reply to: {prompt}").as_str())
        );
        costs.push(out.cost.expect("per-turn cost").cost_usd);
        ids.push(out.session_id().to_owned());
        // The cumulative figure of the CLI equals the sum of our per-turn deltas so far.
        let cumulative = out.result.total_cost_usd.unwrap();
        let summed: f64 = costs.iter().sum();
        assert!(
            (cumulative - summed).abs() < 1e-9,
            "cumulative {cumulative} vs summed {summed}"
        );
    }
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "one conversation: {ids:?}"
    );
    assert_eq!(session.session_id().as_deref(), Some(ids[0].as_str()));
    let totals = session.ledger().totals();
    assert_eq!(totals.turns, 3);
    assert!((totals.cost_usd - costs.iter().sum::<f64>()).abs() < 1e-9);
    assert!(costs.iter().all(|c| *c > 0.0), "{costs:?}");

    // The third request carried the whole conversation.
    let last = env.api.last_main_request().unwrap();
    let texts = user_texts_of(&last);
    for prompt in ["first question", "second question", "third question"] {
        assert!(
            texts.iter().any(|t| t.contains(prompt)),
            "{prompt} missing from {texts:?}"
        );
    }
    stop_and_check(session, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bash_tool_call_really_runs() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let marker = env.sandbox.work_dir().join("marker.txt");
    let options = env.options().allowed_tools(["Bash"]).build().unwrap();
    let session = claude_session::Session::start(env.config("tool", options).build().unwrap())
        .await
        .unwrap();
    let pid = pid_of(&session).await;

    let prompt = format!(
        "RUN_TOOL: echo tool-ran > {} && cat {}",
        marker.display(),
        marker.display()
    );
    let out = session
        .query(prompt)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "tool-ran");
    let calls = out.tool_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].name, "Bash");
    assert!(
        calls[0]
            .result
            .as_ref()
            .is_some_and(|r| r.to_string().contains("tool-ran")),
        "{calls:?}"
    );
    assert!(
        out.final_text().unwrap().contains("tool said: tool-ran"),
        "{:?}",
        out.final_text()
    );
    stop_and_check(session, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_mid_stream_ends_the_turn_and_the_session_goes_on() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let session = env.session("interrupt").await;
    let pid = pid_of(&session).await;

    let turn = session.query("SLOW count to twenty").await.unwrap();
    env.api
        .wait_for_request(Duration::from_secs(30), |r| {
            r.latest_user_text().is_some_and(|t| t.contains("SLOW"))
        })
        .await
        .expect("the CLI asked the API");
    assert!(session.interrupt().await.unwrap(), "a turn was running");
    let out = turn.collect().await.unwrap();
    assert!(
        out.is_error(),
        "an interrupted turn ends with an error result"
    );
    assert_eq!(out.result.subtype.as_str(), "error_during_execution");

    let after = session
        .query("after the interrupt")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(
        after.final_text(),
        Some("mock reply to: after the interrupt")
    );
    // Nothing to interrupt now.
    assert!(!session.interrupt().await.unwrap());
    stop_and_check(session, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_mid_tool_kills_the_tools_process_tree() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let pidfile = env.sandbox.work_dir().join("tool.pid");
    let options = env.options().allowed_tools(["Bash"]).build().unwrap();
    let session =
        claude_session::Session::start(env.config("interrupt-tool", options).build().unwrap())
            .await
            .unwrap();
    let pid = pid_of(&session).await;

    let prompt = format!(
        "RUN_TOOL: sh -c 'echo $$ > {}; exec sleep 300'",
        pidfile.display()
    );
    let turn = session.query(prompt).await.unwrap();
    let tool_pid = wait_for_pidfile(&pidfile).await;
    assert!(procs::info(tool_pid).is_some(), "the tool is running");
    assert!(session.interrupt().await.unwrap());
    let out = turn.collect().await.unwrap();
    assert!(out.is_error());
    if let Err(left) = procs::wait_pids_gone(&[tool_pid], Duration::from_secs(10)) {
        panic!("the tool's process survived the interrupt: {left:#?}");
    }
    // The next turn works. (Its request also carries the cancelled call's tool_result.)
    let after = session
        .query("still there?")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!after.is_error(), "{:?}", after.result);
    let texts = user_texts_of(&env.api.last_main_request().unwrap());
    assert!(
        texts.iter().any(|t| t.contains("still there?")),
        "{texts:?}"
    );
    stop_and_check(session, pid).await;
}

async fn wait_for_pidfile(path: &std::path::Path) -> i32 {
    for _ in 0..600 {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the tool never wrote {}", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_model_applies_to_the_next_request() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let session = env.session("set-model").await;
    let pid = pid_of(&session).await;
    session.set_model(Some("claude-haiku-4-5")).await.unwrap();
    let out = session
        .query("which model?")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!out.is_error());
    assert_eq!(
        env.api.last_main_request().unwrap().model(),
        Some("claude-haiku-4-5")
    );
    // The other typed controls answer too.
    session
        .set_permission_mode(claude_protocol::PermissionMode::AcceptEdits)
        .await
        .unwrap();
    assert!(session.mcp_status().await.unwrap().is_empty());
    stop_and_check(session, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_query_sent_during_the_first_is_answered_after_it_in_order() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let session = env.session("queued").await;
    let pid = pid_of(&session).await;

    let first = session.query("SLOW first").await.unwrap();
    let second = session.query("second").await.unwrap();
    assert_eq!(session.health().await.unwrap().queue_len, 1);
    let (a, b) = tokio::join!(first.collect(), second.collect());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.final_text(), Some("mock reply to: SLOW first"));
    assert_eq!(b.final_text(), Some("mock reply to: second"));
    // Each stream saw only its own turn.
    for (out, other) in [(&a, "second"), (&b, "SLOW first")] {
        assert!(
            !out.assistant_text().contains(other),
            "frames leaked between turns: {}",
            out.assistant_text()
        );
    }
    let order: Vec<String> = env
        .api
        .main_requests()
        .iter()
        .filter_map(|r| r.latest_user_text())
        .collect();
    let pos = |p: &str| order.iter().position(|t| t == p).unwrap();
    assert!(pos("SLOW first") < pos("second"), "{order:?}");
    stop_and_check(session, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_stream_mid_turn_leaves_the_session_usable() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let session = env.session("drop-stream").await;
    let pid = pid_of(&session).await;

    let mut turn = session.query("SLOW to be dropped").await.unwrap();
    let first = turn.next().await.unwrap().unwrap();
    assert!(
        matches!(first, Message::System(_)),
        "a turn starts with system/init: {first:?}"
    );
    drop(turn);
    let out = session
        .query("next one")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(out.final_text(), Some("mock reply to: next one"));
    let health = session.health().await.unwrap();
    assert_eq!(
        health.turns, 2,
        "the dropped turn ended (interrupted) and the next one ran"
    );
    assert!(health.rss_bytes.unwrap_or(0) > 0);
    stop_and_check(session, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_query_leaves_nothing_behind() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let config = env
        .config("ephemeral", env.options().build().unwrap())
        .build()
        .unwrap();
    let task = tokio::spawn(claude_session::query("SLOW one shot", config));
    let groups = support::groups_running_in(&env.sandbox.work_dir()).await;
    let out = task.await.unwrap().unwrap();
    assert_eq!(out.final_text(), Some("mock reply to: SLOW one shot"));
    for group in groups {
        support::assert_group_gone(group).await;
    }
}

/// Cancel safety of `query`: dropping its future mid-turn stops the session and its CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_query_dropped_mid_turn_leaves_nothing_behind() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let config = env
        .config("ephemeral-drop", env.options().build().unwrap())
        .build()
        .unwrap();
    let task = tokio::spawn(claude_session::query("SLOW never finished", config));
    env.api
        .wait_for_request(Duration::from_secs(30), |r| {
            r.latest_user_text().is_some_and(|t| t.contains("SLOW"))
        })
        .await
        .expect("the turn reached the API");
    let groups = support::groups_running_in(&env.sandbox.work_dir()).await;
    task.abort();
    let _ = task.await;
    for group in groups {
        support::assert_group_gone(group).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_block_prompts_with_an_image_reach_the_api() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let session = env.session("image").await;
    let pid = pid_of(&session).await;
    // A 1x1 transparent PNG.
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
    let prompt = vec![
        claude_protocol::ContentBlock::text("describe this picture"),
        claude_protocol::ContentBlock::image_base64("image/png", png),
    ];
    let out = session
        .query(prompt)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    let body = env.api.last_main_request().unwrap().body.to_string();
    assert!(
        body.contains(png) && body.contains("describe this picture"),
        "the image reached the API"
    );
    stop_and_check(session, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_deltas_stream_with_partial_messages() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let options = env
        .options()
        .include_partial_messages(true)
        .build()
        .unwrap();
    let session = claude_session::Session::start(env.config("deltas", options).build().unwrap())
        .await
        .unwrap();
    let pid = pid_of(&session).await;
    let deltas: Vec<String> = session
        .query("SLOW stream me")
        .await
        .unwrap()
        .text_deltas()
        .map(Result::unwrap)
        .collect()
        .await;
    assert!(deltas.len() > 1, "several pieces: {deltas:?}");
    assert_eq!(deltas.concat(), "mock reply to: SLOW stream me");
    let usage = session.context_usage().await.unwrap();
    assert!(
        usage.total_tokens.unwrap_or(0) > 0 && usage.max_tokens.unwrap_or(0) > 0,
        "{:?}",
        usage.raw
    );
    stop_and_check(session, pid).await;
}

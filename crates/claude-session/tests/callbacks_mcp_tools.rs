//! In-process MCP tools on the real CLI: the fake API calls `mcp__<server>__<tool>`; the Rust
//! handler runs with the given input and its result reaches the next API request. Two servers
//! in one session.

#[path = "support/common.rs"]
mod support;

use std::sync::{Arc, Mutex};

use claude_session::{Callbacks, SdkMcpServer, SdkTool, Session, ToolRequest, ToolResult};
use claude_testing::fake_api::Reply;
use serde_json::json;
use support::*;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Add {
    /// The first addend.
    a: i64,
    /// The second addend.
    b: i64,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Shout {
    /// The text to shout.
    text: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_calls_rust_tools_of_two_servers() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let (add_log, shout_log) = (calls.clone(), calls.clone());
    let calc = SdkMcpServer::new("calc", "1.0.0").tool(SdkTool::typed(
        "add",
        "Adds two integers",
        move |call: ToolRequest<Add>| {
            add_log.lock().unwrap().push(format!(
                "{}:add({},{})",
                call.session, call.input.a, call.input.b
            ));
            async move {
                Ok(ToolResult::text(format!(
                    "sum={}",
                    call.input.a + call.input.b
                )))
            }
        },
    ));
    let words = SdkMcpServer::new("words", "0.1.0").tool(SdkTool::typed(
        "shout",
        "Upper-cases a text",
        move |call: ToolRequest<Shout>| {
            shout_log
                .lock()
                .unwrap()
                .push(format!("{}:shout({})", call.session, call.input.text));
            async move { Ok(ToolResult::text(call.input.text.to_uppercase())) }
        },
    ));
    let callbacks = Callbacks::builder()
        .mcp_server(calc)
        .mcp_server(words)
        .build();
    env.api.on_user_text(
        "PLEASE_ADD",
        Reply::tool_use("mcp__calc__add", json!({"a": 2, "b": 40})),
    );
    env.api.on_user_text(
        "PLEASE_SHOUT",
        Reply::tool_use("mcp__words__shout", json!({"text": "quiet words"})),
    );
    let options = env
        .options()
        .allowed_tools(["mcp__calc__add", "mcp__words__shout"])
        .build()
        .unwrap();
    let config = env
        .config("toolbox", options)
        .callbacks(callbacks)
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;

    let out = session
        .query("PLEASE_ADD two numbers")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    assert_eq!(*calls.lock().unwrap(), ["toolbox:add(2,40)"]);
    let first = env.api.main_requests().into_iter().next().unwrap();
    // 2.1.329 defers MCP tools behind ToolSearch: their names are listed in the request (which
    // needs `tools/list` to have worked), not their schemas.
    let body = first.body.to_string();
    for name in ["mcp__calc__add", "mcp__words__shout"] {
        assert!(
            body.contains(name),
            "{name} not offered: {:?}",
            first.tool_names()
        );
    }
    let results = env.api.last_main_request().unwrap().latest_tool_results();
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(!results[0].is_error, "{results:?}");
    assert_eq!(results[0].content, "sum=42");

    let out = session
        .query("PLEASE_SHOUT something")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    assert_eq!(
        *calls.lock().unwrap(),
        ["toolbox:add(2,40)", "toolbox:shout(quiet words)"]
    );
    let results = env.api.last_main_request().unwrap().latest_tool_results();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].content, "QUIET WORDS");

    let status = session.mcp_status().await.unwrap();
    for name in ["calc", "words"] {
        assert!(
            status
                .iter()
                .any(|s| s["name"] == name && s["status"] == "connected"),
            "{name}: {status:?}"
        );
    }
    stop_and_check(session, pid).await;
}

//! User code is contained: a panic in a permission callback, a hook, an in-process MCP tool, a
//! custom control handler or a launcher becomes a typed error for that request (or that
//! session) only. The actor and the process live on; the session keeps working, and its stall
//! detector still works afterwards (no request is left counted as "in flight").
//!
//! Each callback is tried both ways a panic can come: while the callback is *called* (before it
//! returns its future) and while its future runs.

#[path = "support/common.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use claude_protocol::{CommandSpec, ControlRequestBody};
use claude_session::{
    Callbacks, ControlHandler, HookEvent, HookOutput, LaunchError, LaunchedProcess, Launcher,
    LocalLauncher, Permission, RequestContext, SdkMcpServer, SdkTool, Session, SessionConfig,
    SessionError, StartOptions, ToolRequest, ToolResult, TurnOutput,
};
use claude_testing::fake_claude::{Fault, Scenario, ToolCall, Turn};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::json;
use support::{FakeEnv, pid_of, stop_and_check};

/// A bound for "the caller hears of it promptly": far above the expected, so that only a hang
/// fails it.
const PROMPTLY: Duration = Duration::from_secs(15);

/// The commands the scenarios run; the callbacks panic on the first two.
const SYNC: &str = "echo sync-panic";
const ASYNC: &str = "echo async-panic";
const FINE: &str = "echo fine";

fn command_of(input: &serde_json::Value) -> String {
    input["command"].as_str().unwrap_or_default().to_owned()
}

/// Three tool turns (sync panic, async panic, fine), then a turn that hangs.
fn scenario(tool: &str) -> Scenario {
    let turn = |command: &str| Turn {
        tool: Some(ToolCall {
            command: command.to_owned(),
            name: tool.to_owned(),
        }),
        ..Turn::default()
    };
    Scenario::new()
        .turn(turn(SYNC))
        .turn(turn(ASYNC))
        .turn(turn(FINE))
        .fault_on_turn(4, Fault::Hang)
}

async fn run(session: &Session, prompt: &str) -> TurnOutput {
    tokio::time::timeout(PROMPTLY, session.query(prompt).await.unwrap().collect())
        .await
        .unwrap_or_else(|_| panic!("turn `{prompt}` hung: a panic left its request unanswered"))
        .unwrap_or_else(|e| panic!("turn `{prompt}` failed: {e}"))
}

/// The session survived its callbacks' panics: it is running, on the same process, and a hung
/// turn is still found stalled (so no panicked request is still counted as in flight).
async fn still_detects_a_stall(session: Session, pid: i32) {
    assert!(session.is_running());
    assert_eq!(pid_of(&session).await, pid, "the same process");
    let err = tokio::time::timeout(PROMPTLY, session.query("hang").await.unwrap().collect())
        .await
        .expect("the stall detector fired")
        .unwrap_err();
    assert!(
        matches!(err, SessionError::Stalled { turn: 4, .. }),
        "{err:?}"
    );
    support::wait_stopped(&session).await;
    support::assert_group_gone(pid).await;
}

fn config(env: &FakeEnv, name: &str, scenario: &Scenario) -> claude_session::SessionConfigBuilder {
    env.config(name, scenario)
        .stall_timeout("1s")
        .control_timeout("500ms")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_permission_callback_denies_that_tool_call_only() {
    let env = FakeEnv::new();
    let callbacks = Callbacks::builder()
        .can_use_tool(|req| {
            let command = command_of(&req.input);
            if command == SYNC {
                panic!("permission callback bug (sync)");
            }
            async move {
                if command == ASYNC {
                    panic!("permission callback bug (async)");
                }
                Ok(Permission::allow())
            }
        })
        .build();
    let scenario = scenario("Bash");
    let config = config(&env, "perm-panic", &scenario)
        .callbacks(callbacks)
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    for prompt in ["sync", "async"] {
        let out = run(&session, prompt).await;
        let calls = out.tool_calls();
        assert_eq!(calls.len(), 1, "{prompt}: {calls:?}");
        assert!(
            calls[0].is_error,
            "{prompt}: the tool was denied: {calls:?}"
        );
        let text = calls[0]
            .result
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_default();
        assert!(text.contains("panicked"), "{prompt}: {text}");
        assert_eq!(out.result.permission_denials().len(), 1, "{prompt}");
    }
    let out = run(&session, "fine").await;
    assert!(!out.tool_calls()[0].is_error, "{:?}", out.tool_calls());
    still_detects_a_stall(session, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_hook_is_a_hook_error_and_the_tool_still_runs() {
    let env = FakeEnv::new();
    let callbacks = Callbacks::builder()
        .hook(HookEvent::PreToolUse, Some("Bash"), |input| {
            let command = input
                .tool_input
                .as_ref()
                .map(command_of)
                .unwrap_or_default();
            if command == SYNC {
                panic!("hook bug (sync)");
            }
            async move {
                if command == ASYNC {
                    panic!("hook bug (async)");
                }
                Ok(HookOutput::proceed())
            }
        })
        .build();
    let scenario = scenario("Bash");
    let config = config(&env, "hook-panic", &scenario)
        .callbacks(callbacks)
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    for (prompt, echoed) in [
        ("sync", "sync-panic"),
        ("async", "async-panic"),
        ("fine", "fine"),
    ] {
        let out = run(&session, prompt).await;
        let calls = out.tool_calls();
        assert_eq!(calls.len(), 1, "{prompt}: {calls:?}");
        assert!(!calls[0].is_error, "{prompt}: the tool ran: {calls:?}");
        let text = calls[0]
            .result
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_default();
        assert!(text.contains(echoed), "{prompt}: {text}");
    }
    still_detects_a_stall(session, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_mcp_tool_is_an_error_result_for_that_call_only() {
    let env = FakeEnv::new();
    let tool = SdkTool::new(
        "boom",
        "Panics on demand",
        json!({"type": "object", "properties": {"command": {"type": "string"}}}),
        |call: ToolRequest<serde_json::Value>| {
            let command = command_of(&call.input);
            if command == SYNC {
                panic!("tool bug (sync)");
            }
            async move {
                if command == ASYNC {
                    panic!("tool bug (async)");
                }
                Ok(ToolResult::text(format!("ran: {command}")))
            }
        },
    );
    let callbacks = Callbacks::builder()
        .mcp_server(SdkMcpServer::new("t", "1.0.0").tool(tool))
        .build();
    let scenario = scenario("mcp__t__boom");
    let config = config(&env, "mcp-panic", &scenario)
        .callbacks(callbacks)
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    for prompt in ["sync", "async"] {
        let out = run(&session, prompt).await;
        let calls = out.tool_calls();
        assert_eq!(calls.len(), 1, "{prompt}: {calls:?}");
        assert!(calls[0].is_error, "{prompt}: an error result: {calls:?}");
        let text = calls[0]
            .result
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_default();
        assert!(
            text.contains("panicked") && text.contains("boom"),
            "{prompt}: {text}"
        );
    }
    let out = run(&session, "fine").await;
    let calls = out.tool_calls();
    assert!(!calls[0].is_error, "{calls:?}");
    assert!(
        calls[0]
            .result
            .as_ref()
            .is_some_and(|r| r.to_string().contains("ran: echo fine")),
        "{calls:?}"
    );
    still_detects_a_stall(session, pid).await;
}

/// A custom [`ControlHandler`] whose `handle` panics before returning its future.
struct PanickingHandler;

impl ControlHandler for PanickingHandler {
    fn handle(
        &self,
        _context: RequestContext,
        request: ControlRequestBody,
    ) -> BoxFuture<'static, Result<serde_json::Value, String>> {
        if let ControlRequestBody::CanUseTool(req) = &request
            && command_of(&req.input) != FINE
        {
            panic!("control handler bug");
        }
        async { Ok(json!({"behavior": "allow", "updatedInput": {"command": FINE}})) }.boxed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_handler_that_panics_when_called_is_an_error_answer() {
    let env = FakeEnv::new();
    let scenario = scenario("Bash");
    let options = env
        .options(&scenario)
        .permission_prompt_tool("stdio")
        .build()
        .unwrap();
    let config = SessionConfig::builder("handler-panic", env.cli_path())
        .options(options)
        .stall_timeout("1s")
        .control_timeout("500ms")
        .build()
        .unwrap();
    let mut start = StartOptions::default();
    start.control_handler = Some(Arc::new(PanickingHandler));
    let session = Session::start_with(config, start).await.unwrap();
    let pid = pid_of(&session).await;
    let out = run(&session, "sync").await;
    let calls = out.tool_calls();
    assert!(calls[0].is_error, "denied: {calls:?}");
    assert_eq!(out.result.permission_denials().len(), 1);
    stop_and_check(session, pid).await;
}

/// How a [`TestLauncher`] misbehaves.
#[derive(Debug, Clone, Copy)]
enum Bug {
    /// Panics in `launch` itself, before returning a future.
    WhenCalled,
    /// Panics in the future `launch` returns.
    InFuture,
    /// Launches fine; the `exit` future panics once the process has exited.
    InExitFuture,
}

#[derive(Debug)]
struct TestLauncher {
    bug: Bug,
    local: LocalLauncher,
}

impl Launcher for TestLauncher {
    fn launch<'a>(
        &'a self,
        spec: &'a CommandSpec,
    ) -> BoxFuture<'a, Result<LaunchedProcess, LaunchError>> {
        match self.bug {
            Bug::WhenCalled => panic!("launcher bug (sync)"),
            Bug::InFuture => async { panic!("launcher bug (async)") }.boxed(),
            Bug::InExitFuture => async move {
                let mut launched = self.local.launch(spec).await?;
                let exit = launched.exit;
                launched.exit = async move {
                    let _ = exit.await;
                    panic!("exit future bug")
                }
                .boxed();
                Ok(launched)
            }
            .boxed(),
        }
    }
}

fn with_launcher(env: &FakeEnv, name: &str, scenario: &Scenario, bug: Bug) -> SessionConfig {
    env.config(name, scenario)
        .launcher(TestLauncher {
            bug,
            local: LocalLauncher::new(),
        })
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_launcher_is_a_launch_error_of_that_session_only() {
    let env = FakeEnv::new();
    for (bug, message) in [
        (Bug::WhenCalled, "launcher bug (sync)"),
        (Bug::InFuture, "launcher bug (async)"),
    ] {
        let config = with_launcher(&env, "bad-launcher", &Scenario::new(), bug);
        let err = tokio::time::timeout(PROMPTLY, Session::start(config))
            .await
            .expect("the start did not hang")
            .unwrap_err();
        match &err {
            SessionError::Launch {
                session,
                source: LaunchError::Other(detail),
            } => {
                assert_eq!(session, "bad-launcher");
                assert!(
                    detail.contains("the launcher panicked") && detail.contains(message),
                    "{bug:?}: {detail}"
                );
            }
            other => panic!("{bug:?}: expected a launch error, got {other:?}"),
        }
    }
    // Another session in the same process is unaffected.
    let session = env.session("good", &Scenario::new()).await;
    let pid = pid_of(&session).await;
    assert_eq!(
        run(&session, "hi").await.final_text(),
        Some("fake reply to: hi")
    );
    stop_and_check(session, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_exit_future_fails_the_session_instead_of_wedging_it() {
    let env = FakeEnv::new();
    let scenario = Scenario::new().fault_on_turn(1, Fault::crash_mid_turn(3, "boom"));
    let config = with_launcher(&env, "bad-exit", &scenario, Bug::InExitFuture);
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    let err = tokio::time::timeout(PROMPTLY, session.query("hi").await.unwrap().collect())
        .await
        .expect("the turn was failed, not left waiting")
        .unwrap_err();
    match &err {
        SessionError::Disconnected { detail, .. } => {
            assert!(
                detail.contains("panicked") && detail.contains("exit future bug"),
                "{detail}"
            );
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert!(err.is_process_failure());
    support::wait_stopped(&session).await;
    support::assert_group_gone(pid).await;
}

//! Typed callbacks: a permission callback, hooks, and in-process MCP servers, in one
//! [`Callbacks`] value given to [`SessionConfigBuilder::callbacks`](crate::SessionConfigBuilder::callbacks).
//!
//! The session wires everything: `--permission-prompt-tool stdio` when there is a permission
//! callback (unless the options name another tool), the hook registrations (with generated
//! callback ids, matchers and timeouts) and the SDK MCP server names in `initialize`, and a
//! `{"type":"sdk","name":…}` entry in the MCP config for each in-process server. The CLI's
//! `can_use_tool`, `hook_callback` and `mcp_message` requests are then answered by the callbacks.
//!
//! Every callback runs on a task of its own, off the stdout reader, under a deadline; it knows
//! the session it serves. A `control_cancel_request` from the CLI aborts it. A callback that
//! fails, panics (while it is called or while its future runs) or overruns its deadline becomes
//! an error answer to the CLI (for an MCP tool, an error result the model sees); only that
//! request fails, and the session lives on.

mod hooks;
mod mcp;
mod permission;

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use claude_protocol::{
    ClaudeOptions, ControlRequestBody, HookMatcher, HooksConfig, InitializeRequest, McpServers,
    PermissionMode,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Map, Value};

pub use hooks::{HookEvent, HookInput, HookOutput};
pub use mcp::{SdkMcpServer, SdkTool, ToolRequest, ToolResult};
pub use permission::{Permission, PermissionRequest};

use crate::incoming::{ControlHandler, RequestContext};

/// The error a callback returns. Any `std::error::Error` converts into it (so `?` works), and
/// [`CallbackError::msg`] makes one from a message.
pub struct CallbackError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl CallbackError {
    /// An error with this message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self(message.to_string().into())
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for CallbackError {
    fn from(error: E) -> Self {
        Self(Box::new(error))
    }
}

impl fmt::Debug for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

type PermissionFn = Arc<
    dyn Fn(PermissionRequest) -> BoxFuture<'static, Result<Permission, CallbackError>>
        + Send
        + Sync,
>;
type HookFn =
    Arc<dyn Fn(HookInput) -> BoxFuture<'static, Result<HookOutput, CallbackError>> + Send + Sync>;

struct Hook {
    id: String,
    event: HookEvent,
    matcher: Option<String>,
    timeout: Option<Duration>,
    callback: HookFn,
}

#[derive(Default)]
struct Inner {
    permission: Option<PermissionFn>,
    hooks: Vec<Hook>,
    servers: Vec<SdkMcpServer>,
    deadline: Option<Duration>,
}

/// A session's callbacks: an optional permission callback, hook registrations, and in-process
/// MCP servers. Cheap to clone; a restarted session gets the same callbacks (and the same
/// callback ids). Give them to a session with
/// [`SessionConfigBuilder::callbacks`](crate::SessionConfigBuilder::callbacks).
///
/// The session wires everything: `--permission-prompt-tool stdio` when there is a permission
/// callback (unless the options name another tool), the hook registrations (generated callback
/// ids, matchers, timeouts) and the SDK MCP server names in `initialize`, and an
/// `{"type":"sdk","name":…}` entry in the MCP config for each in-process server. Every callback
/// runs on a task of its own, off the stdout reader, under a deadline, and knows its session; the
/// CLI's `control_cancel_request` aborts it; a failure, a panic or an overrun becomes an error
/// answer to the CLI (for an MCP tool, an error result), and the session lives on.
///
/// # Examples
///
/// ```no_run
/// use claude_session::{
///     Callbacks, HookEvent, HookOutput, Permission, SdkMcpServer, SdkTool, Session,
///     SessionConfig, ToolRequest, ToolResult,
/// };
///
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct Lookup {
///     /// The ticket number.
///     id: u32,
/// }
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let callbacks = Callbacks::builder()
///     .can_use_tool(|req| async move {
///         if req.tool_name == "Bash" && req.input["command"].as_str().is_some_and(|c| c.contains("rm ")) {
///             Ok(Permission::deny(format!("{}: no deleting", req.session)))
///         } else {
///             Ok(Permission::allow())
///         }
///     })
///     .hook(HookEvent::PostToolUse, Some("Bash"), |input| async move {
///         tracing::info!(session = %input.session, output = ?input.tool_response, "Bash ran");
///         Ok(HookOutput::proceed())
///     })
///     .mcp_server(SdkMcpServer::new("tickets", "1.0.0").tool(SdkTool::typed(
///         "lookup",
///         "Looks a ticket up",
///         |call: ToolRequest<Lookup>| async move { Ok(ToolResult::text(format!("ticket {} is open", call.input.id))) },
///     )))
///     .build();
/// let cli = claude_protocol::find_cli(None)?;
/// let config = SessionConfig::builder("triage", cli).callbacks(callbacks).build()?;
/// let session = Session::start(config).await?;
/// # drop(session);
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Callbacks {
    inner: Arc<Inner>,
}

impl fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("permission", &self.inner.permission.is_some())
            .field(
                "hooks",
                &self
                    .inner
                    .hooks
                    .iter()
                    .map(|h| (h.event.as_str(), h.matcher.as_deref()))
                    .collect::<Vec<_>>(),
            )
            .field(
                "servers",
                &self
                    .inner
                    .servers
                    .iter()
                    .map(SdkMcpServer::name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The message of a caught panic (`panic!("…")` payloads are `&str` or `String`).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_owned()
    }
}

/// The deadline of a callback that names none (hooks without a timeout, permission, MCP tools).
pub const DEFAULT_CALLBACK_DEADLINE: Duration = Duration::from_secs(60);

/// Builds [`Callbacks`]; see [`Callbacks::builder`].
#[derive(Default)]
#[must_use]
pub struct CallbacksBuilder {
    inner: Inner,
}

impl fmt::Debug for CallbacksBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbacksBuilder").finish_non_exhaustive()
    }
}

impl CallbacksBuilder {
    /// The permission callback, asked (through `can_use_tool`) for every tool call that would
    /// otherwise prompt a user. Sets `--permission-prompt-tool stdio` unless the options name
    /// another tool.
    ///
    /// An `Err` or a panic becomes an error answer, which the CLI treats as a denial.
    pub fn can_use_tool<F, Fut>(mut self, callback: F) -> Self
    where
        F: Fn(PermissionRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Permission, CallbackError>> + Send + 'static,
    {
        self.inner.permission = Some(Arc::new(move |req| callback(req).boxed()));
        self
    }

    /// A hook for `event`, for tools matching `matcher` (a tool name or a `|`-separated list or
    /// regex, as in Claude Code settings; `None`: every tool / not tool-specific).
    pub fn hook<F, Fut>(self, event: HookEvent, matcher: Option<&str>, callback: F) -> Self
    where
        F: Fn(HookInput) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HookOutput, CallbackError>> + Send + 'static,
    {
        self.add_hook(event, matcher, None, callback)
    }

    /// Like [`hook`](Self::hook), with a timeout: the CLI gives up on the hook after it (and
    /// cancels it), and the callback's deadline is the same.
    pub fn hook_with_timeout<F, Fut>(
        self,
        event: HookEvent,
        matcher: Option<&str>,
        timeout: Duration,
        callback: F,
    ) -> Self
    where
        F: Fn(HookInput) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HookOutput, CallbackError>> + Send + 'static,
    {
        self.add_hook(event, matcher, Some(timeout), callback)
    }

    fn add_hook<F, Fut>(
        mut self,
        event: HookEvent,
        matcher: Option<&str>,
        timeout: Option<Duration>,
        callback: F,
    ) -> Self
    where
        F: Fn(HookInput) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HookOutput, CallbackError>> + Send + 'static,
    {
        let id = format!("hook_{}", self.inner.hooks.len());
        self.inner.hooks.push(Hook {
            id,
            event,
            matcher: matcher.map(str::to_owned),
            timeout,
            callback: Arc::new(move |input| callback(input).boxed()),
        });
        self
    }

    /// An in-process MCP server; its tools are `mcp__<server>__<tool>` to the model. Several
    /// servers may be added (a later server of the same name replaces the earlier one).
    pub fn mcp_server(mut self, server: SdkMcpServer) -> Self {
        self.inner.servers.retain(|s| s.name() != server.name());
        self.inner.servers.push(server);
        self
    }

    /// The deadline of callbacks that name none (default [`DEFAULT_CALLBACK_DEADLINE`]). A
    /// permission callback that waits for a person needs a long one.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.inner.deadline = Some(deadline);
        self
    }

    /// The callbacks.
    pub fn build(self) -> Callbacks {
        Callbacks {
            inner: Arc::new(self.inner),
        }
    }
}

impl Callbacks {
    /// Starts a builder.
    pub fn builder() -> CallbacksBuilder {
        CallbacksBuilder::default()
    }

    /// Whether there is a permission callback.
    pub fn has_permission_callback(&self) -> bool {
        self.inner.permission.is_some()
    }

    /// The in-process MCP servers.
    pub fn mcp_servers(&self) -> &[SdkMcpServer] {
        &self.inner.servers
    }

    fn default_deadline(&self) -> Duration {
        self.inner.deadline.unwrap_or(DEFAULT_CALLBACK_DEADLINE)
    }

    /// Why, with these options, the permission callback would never (or not always) be asked:
    /// one sentence per reason, empty when it is reachable. The session logs these as warnings
    /// when its configuration is built.
    pub fn unreachable_warnings(&self, options: &ClaudeOptions) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.inner.permission.is_none() {
            return warnings;
        }
        if let Some(tool) = &options.permission_prompt_tool
            && tool != "stdio"
        {
            warnings.push(format!(
                "the permission callback is never asked: `permission_prompt_tool` is `{tool}`, not `stdio`"
            ));
        }
        if options.permission_mode == Some(PermissionMode::BypassPermissions) {
            warnings.push(
                "the permission callback is never asked: the permission mode is `bypassPermissions`"
                    .to_owned(),
            );
        }
        for tool in &options.allowed_tools {
            if !tool.contains('(') {
                warnings.push(format!(
                    "the permission callback is never asked for `{tool}`: the whole tool is in `allowed_tools` (allow a pattern such as `{tool}(git status:*)` instead)"
                ));
            }
        }
        warnings
    }

    /// Checks that the callbacks fit the options: in-process servers need the MCP config as a
    /// map (not a file), and their names must not clash with servers of the options.
    pub(crate) fn check(&self, options: &ClaudeOptions) -> Result<(), String> {
        if self.inner.servers.is_empty() {
            return Ok(());
        }
        match &options.mcp_servers {
            Some(McpServers::Path(path)) => Err(format!(
                "in-process MCP servers need `mcp_servers` as a map, not the file `{}`",
                path.display()
            )),
            Some(McpServers::Map(map)) => {
                let ours: BTreeSet<&str> = self.inner.servers.iter().map(|s| s.name()).collect();
                match map.keys().find(|k| ours.contains(k.as_str())) {
                    Some(clash) => Err(format!(
                        "the MCP server `{clash}` is both in the options and an in-process server"
                    )),
                    None => Ok(()),
                }
            }
            None => Ok(()),
            Some(_) => Err("in-process MCP servers need `mcp_servers` as a map".to_owned()),
        }
    }

    /// The options the CLI is launched with: `--permission-prompt-tool stdio` when there is a
    /// permission callback and no other tool is named, and an `sdk` MCP entry per server (so
    /// that `initialize_request` also names them in `sdkMcpServers`).
    pub(crate) fn apply_to_options(&self, options: &ClaudeOptions) -> ClaudeOptions {
        let mut options = options.clone();
        if self.inner.permission.is_some() && options.permission_prompt_tool.is_none() {
            options.permission_prompt_tool = Some("stdio".to_owned());
        }
        if !self.inner.servers.is_empty() {
            let mut map = match options.mcp_servers.take() {
                Some(McpServers::Map(map)) => map,
                None => Map::new(),
                Some(other) => {
                    // Refused when the configuration was built; keep the user's file.
                    options.mcp_servers = Some(other);
                    return options;
                }
            };
            for server in &self.inner.servers {
                map.insert(
                    server.name().to_owned(),
                    McpServers::sdk_server(server.name()),
                );
            }
            options.mcp_servers = Some(McpServers::Map(map));
        }
        options
    }

    /// Adds the hook registrations and the server names to the `initialize` request.
    pub(crate) fn contribute(&self, request: &mut InitializeRequest) {
        if !self.inner.hooks.is_empty() {
            let mut config = HooksConfig::new();
            for hook in &self.inner.hooks {
                let mut matcher = HookMatcher::new(hook.matcher.clone(), vec![hook.id.clone()]);
                matcher.timeout = hook.timeout.map(|t| t.as_secs_f64().ceil() as u64);
                config
                    .entry(hook.event.as_str().to_owned())
                    .or_default()
                    .push(matcher);
            }
            request.set_hooks(Some(config));
        }
        for server in &self.inner.servers {
            if !request.sdk_mcp_servers.iter().any(|n| n == server.name()) {
                request.sdk_mcp_servers.push(server.name().to_owned());
            }
        }
    }
}

impl ControlHandler for Callbacks {
    fn handle(
        &self,
        context: RequestContext,
        request: ControlRequestBody,
    ) -> BoxFuture<'static, Result<Value, String>> {
        let session = context.session;
        match request {
            ControlRequestBody::CanUseTool(req) => {
                let Some(callback) = self.inner.permission.clone() else {
                    let message = format!(
                        "session `{session}` has no permission callback (tool `{}`)",
                        req.tool_name
                    );
                    return async move { Err(message) }.boxed();
                };
                let original = req.input.clone();
                let tool = req.tool_name.clone();
                // The callback is called inside the future, so that a panic while it is called
                // (before it returns its own future) is caught with the rest of it.
                async move {
                    match callback(PermissionRequest::new(session, req)).await {
                        Ok(permission) => Ok(permission.into_decision(&original).to_value()),
                        Err(e) => Err(format!("the permission callback for `{tool}` failed: {e}")),
                    }
                }
                .boxed()
            }
            ControlRequestBody::HookCallback(req) => {
                let Some(hook) = self.inner.hooks.iter().find(|h| h.id == req.callback_id) else {
                    let message = format!("no hook registered as `{}`", req.callback_id);
                    return async move { Err(message) }.boxed();
                };
                let input = HookInput::new(session, req.input, req.tool_use_id.flatten());
                let event = input.event.clone();
                let name = hook.event.clone();
                let callback = hook.callback.clone();
                // Called inside the future: see `CanUseTool` above.
                async move {
                    match callback(input).await {
                        Ok(output) => Ok(output.to_value(&event)),
                        Err(e) => Err(format!("the {name} hook failed: {e}")),
                    }
                }
                .boxed()
            }
            ControlRequestBody::McpMessage(req) => {
                let Some(server) = self
                    .inner
                    .servers
                    .iter()
                    .find(|s| s.name() == req.server_name)
                else {
                    let message = format!("no in-process MCP server `{}`", req.server_name);
                    return async move { Err(message) }.boxed();
                };
                let work = server.handle(session, req.message);
                async move {
                    let mut answer = Map::new();
                    answer.insert("mcp_response".into(), work.await);
                    Ok(Value::Object(answer))
                }
                .boxed()
            }
            other => {
                let message = format!(
                    "session `{session}` does not handle control request `{}`",
                    other.subtype()
                );
                async move { Err(message) }.boxed()
            }
        }
    }

    fn deadline(&self, request: &ControlRequestBody) -> Option<Duration> {
        if let ControlRequestBody::HookCallback(req) = request
            && let Some(timeout) = self
                .inner
                .hooks
                .iter()
                .find(|h| h.id == req.callback_id)
                .and_then(|h| h.timeout)
        {
            return Some(timeout);
        }
        Some(self.default_deadline())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> RequestContext {
        RequestContext {
            session: Arc::from("s1"),
            request_id: "r1".into(),
        }
    }

    fn callbacks() -> Callbacks {
        Callbacks::builder()
            .can_use_tool(|req| async move {
                if req.tool_name == "Bash" {
                    Ok(Permission::allow())
                } else if req.tool_name == "Boom" {
                    Err(CallbackError::msg("boom"))
                } else {
                    Ok(Permission::deny(format!("{} may not", req.session)))
                }
            })
            .hook(HookEvent::PreToolUse, Some("Bash"), |_| async move {
                Ok(HookOutput::deny("no"))
            })
            .hook_with_timeout(
                HookEvent::Stop,
                None,
                Duration::from_millis(1500),
                |_| async move { Ok(HookOutput::proceed()) },
            )
            .mcp_server(SdkMcpServer::new("calc", "1"))
            .build()
    }

    fn body(value: Value) -> ControlRequestBody {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn options_and_initialize_get_what_the_callbacks_need() {
        let cb = callbacks();
        let options = ClaudeOptions::builder()
            .mcp_server("other", json!({"command": "x"}))
            .build()
            .unwrap();
        cb.check(&options).unwrap();
        let applied = cb.apply_to_options(&options);
        assert_eq!(applied.permission_prompt_tool.as_deref(), Some("stdio"));
        let Some(McpServers::Map(map)) = &applied.mcp_servers else {
            panic!("{:?}", applied.mcp_servers)
        };
        assert_eq!(map["calc"], json!({"type": "sdk", "name": "calc"}));
        assert!(map.contains_key("other"));
        let mut init = applied.initialize_request();
        cb.contribute(&mut init);
        assert_eq!(init.sdk_mcp_servers, vec!["calc".to_owned()]);
        let wire = serde_json::to_value(&init).unwrap();
        assert_eq!(
            wire["hooks"],
            json!({"PreToolUse": [{"matcher": "Bash", "hookCallbackIds": ["hook_0"]}],
                   "Stop": [{"matcher": null, "hookCallbackIds": ["hook_1"], "timeout": 2}]})
        );
        // The user's own prompt tool wins, and is warned about.
        let own = ClaudeOptions::builder()
            .permission_prompt_tool("mcp__auth__ask")
            .allowed_tools(["Bash", "Read(./src/**)"])
            .permission_mode(PermissionMode::BypassPermissions)
            .build()
            .unwrap();
        assert_eq!(
            cb.apply_to_options(&own).permission_prompt_tool.as_deref(),
            Some("mcp__auth__ask")
        );
        let warnings = cb.unreachable_warnings(&own);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(
            warnings.iter().any(|w| w.contains("`Bash`")),
            "{warnings:?}"
        );
        assert!(
            !warnings.iter().any(|w| w.contains("Read(")),
            "{warnings:?}"
        );
        assert!(
            cb.unreachable_warnings(&ClaudeOptions::default())
                .is_empty()
        );
        // Clashes and files are refused.
        let clash = ClaudeOptions::builder()
            .mcp_server("calc", json!({"command": "x"}))
            .build()
            .unwrap();
        assert!(cb.check(&clash).unwrap_err().contains("`calc`"));
    }

    #[tokio::test]
    async fn requests_reach_the_right_callback_with_the_session_name() {
        let cb = callbacks();
        let allow = cb
            .handle(
                context(),
                body(json!({"subtype": "can_use_tool", "tool_name": "Bash",
                    "input": {"command": "ls"}, "tool_use_id": "t1"})),
            )
            .await
            .unwrap();
        assert_eq!(
            allow,
            json!({"behavior": "allow", "updatedInput": {"command": "ls"}})
        );
        let deny = cb
            .handle(
                context(),
                body(json!({"subtype": "can_use_tool", "tool_name": "Write", "input": {}})),
            )
            .await
            .unwrap();
        assert_eq!(deny, json!({"behavior": "deny", "message": "s1 may not"}));
        let failed = cb
            .handle(
                context(),
                body(json!({"subtype": "can_use_tool", "tool_name": "Boom", "input": {}})),
            )
            .await
            .unwrap_err();
        assert!(failed.contains("boom"), "{failed}");
        let hook = body(json!({"subtype": "hook_callback", "callback_id": "hook_0",
            "input": {"hook_event_name": "PreToolUse", "tool_name": "Bash"}, "tool_use_id": "t1"}));
        assert_eq!(cb.deadline(&hook), Some(DEFAULT_CALLBACK_DEADLINE));
        let veto = cb.handle(context(), hook).await.unwrap();
        assert_eq!(
            veto["hookSpecificOutput"]["permissionDecision"], "deny",
            "{veto}"
        );
        let stop = body(json!({"subtype": "hook_callback", "callback_id": "hook_1",
            "input": {"hook_event_name": "Stop"}}));
        assert_eq!(cb.deadline(&stop), Some(Duration::from_millis(1500)));
        assert_eq!(cb.handle(context(), stop).await.unwrap(), json!({}));
        let unknown = body(json!({"subtype": "hook_callback", "callback_id": "hook_9",
            "input": {}}));
        assert!(cb.handle(context(), unknown).await.is_err());
        let mcp = cb
            .handle(
                context(),
                body(json!({"subtype": "mcp_message", "server_name": "calc",
                    "message": {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}})),
            )
            .await
            .unwrap();
        assert_eq!(mcp["mcp_response"]["result"]["tools"], json!([]));
        let no_server = body(json!({"subtype": "mcp_message", "server_name": "nope",
            "message": {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}}));
        assert!(cb.handle(context(), no_server).await.is_err());
    }
}

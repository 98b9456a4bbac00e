//! In-process MCP tools: tools written in Rust, served to the CLI as an SDK MCP server over
//! `mcp_message` control requests (JSON-RPC `initialize`, `tools/list`, `tools/call`).

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::{CallbackError, panic_message};

/// The MCP protocol version answered when the CLI does not name one.
const DEFAULT_PROTOCOL_VERSION: &str = "2024-11-05";

type ToolFn = Arc<
    dyn Fn(Arc<str>, Value) -> BoxFuture<'static, Result<ToolResult, CallbackError>> + Send + Sync,
>;

/// One call of an in-process tool.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ToolRequest<I> {
    /// The session (its name in this runtime) the call comes from.
    pub session: Arc<str>,
    /// The tool's input (`arguments`), typed.
    pub input: I,
}

/// What an in-process tool returns: MCP content blocks, and whether it is an error.
///
/// # Examples
///
/// ```
/// use claude_session::ToolResult;
///
/// let ok = ToolResult::text("42");
/// let structured = ToolResult::json(&serde_json::json!({"sum": 42}));
/// let failed = ToolResult::error("the divisor is zero");
/// # let _ = (ok, structured, failed);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct ToolResult {
    content: Vec<Value>,
    is_error: bool,
}

impl ToolResult {
    /// A text result.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: vec![json!({"type": "text", "text": text.into()})],
            is_error: false,
        }
    }

    /// A JSON value, rendered as text for the model.
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Self {
        let text =
            serde_json::to_string(value).unwrap_or_else(|e| format!("(unserialisable: {e})"));
        Self::text(text)
    }

    /// An error result (`isError: true`): the model sees the message as the tool's error.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            is_error: true,
            ..Self::text(message)
        }
    }

    /// A result made of MCP content blocks as given (`{"type":"image",…}`, …).
    pub fn content(blocks: Vec<Value>) -> Self {
        Self {
            content: blocks,
            is_error: false,
        }
    }

    /// Whether this is an error result.
    pub fn is_error(&self) -> bool {
        self.is_error
    }

    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("content".into(), Value::Array(self.content.clone()));
        if self.is_error {
            m.insert("isError".into(), true.into());
        }
        Value::Object(m)
    }
}

/// A tool written in Rust: name, description, input schema and an async handler.
///
/// The model calls it as `mcp__<server>__<name>`.
#[derive(Clone)]
pub struct SdkTool {
    name: String,
    description: String,
    input_schema: Value,
    handler: ToolFn,
}

impl fmt::Debug for SdkTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkTool")
            .field("name", &self.name)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl SdkTool {
    /// A tool whose input type `I` gives both the JSON schema (derived with
    /// [`schemars::JsonSchema`]) and the typed input the handler receives. Input that does not
    /// match `I` never reaches the handler: the model gets an error result naming the problem.
    ///
    /// A handler's `Err` becomes an error result too, and so does a panic (naming the tool and
    /// the panic's message); the server and the session go on.
    ///
    /// # Examples
    ///
    /// ```
    /// use claude_session::{SdkMcpServer, SdkTool, ToolRequest, ToolResult};
    ///
    /// #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// struct Add {
    ///     /// The first number.
    ///     a: i64,
    ///     /// The second number.
    ///     b: i64,
    /// }
    ///
    /// let server = SdkMcpServer::new("calc", "1.0.0").tool(SdkTool::typed(
    ///     "add",
    ///     "Adds two integers",
    ///     |call: ToolRequest<Add>| async move {
    ///         Ok(ToolResult::text((call.input.a + call.input.b).to_string()))
    ///     },
    /// ));
    /// # let _ = server;
    /// ```
    pub fn typed<I, F, Fut>(
        name: impl Into<String>,
        description: impl Into<String>,
        handler: F,
    ) -> Self
    where
        I: DeserializeOwned + schemars::JsonSchema + Send + 'static,
        F: Fn(ToolRequest<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolResult, CallbackError>> + Send + 'static,
    {
        let mut schema = schemars::schema_for!(I).to_value();
        if let Value::Object(m) = &mut schema {
            m.remove("$schema");
        }
        let handler = Arc::new(handler);
        Self {
            name: name.into(),
            description: description.into(),
            input_schema: schema,
            handler: Arc::new(move |session, arguments| {
                match serde_json::from_value::<I>(arguments) {
                    Ok(input) => handler(ToolRequest { session, input }).boxed(),
                    Err(e) => {
                        let result = ToolResult::error(format!("invalid arguments: {e}"));
                        async move { Ok(result) }.boxed()
                    }
                }
            }),
        }
    }

    /// A tool with a hand-written JSON schema; the handler receives the raw `arguments`.
    pub fn new<F, Fut>(
        name: impl Into<String>,
        description: impl Into<String>,
        input_schema: Value,
        handler: F,
    ) -> Self
    where
        F: Fn(ToolRequest<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolResult, CallbackError>> + Send + 'static,
    {
        Self {
            name: name.into(),
            description: description.into(),
            input_schema,
            handler: Arc::new(move |session, input| {
                handler(ToolRequest { session, input }).boxed()
            }),
        }
    }

    /// The tool's name (without the `mcp__<server>__` prefix).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The input schema sent in `tools/list`.
    pub fn input_schema(&self) -> &Value {
        &self.input_schema
    }
}

/// An in-process MCP server: a name (as in `mcp__<name>__<tool>`), a version, and its tools.
#[derive(Clone, Debug)]
pub struct SdkMcpServer {
    name: String,
    version: String,
    tools: Vec<SdkTool>,
}

impl SdkMcpServer {
    /// A server with no tools yet.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            tools: Vec::new(),
        }
    }

    /// Adds a tool (a later tool of the same name replaces the earlier one).
    #[must_use]
    pub fn tool(mut self, tool: SdkTool) -> Self {
        self.tools.retain(|t| t.name != tool.name);
        self.tools.push(tool);
        self
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's tools.
    pub fn tools(&self) -> &[SdkTool] {
        &self.tools
    }

    /// Answers one JSON-RPC message. Tool failures are tool results with `isError`; protocol
    /// problems are JSON-RPC errors.
    pub(crate) fn handle(&self, session: Arc<str>, message: Value) -> BoxFuture<'static, Value> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        let reply = move |result: Value| json!({"jsonrpc": "2.0", "id": id, "result": result});
        match method.as_str() {
            "initialize" => {
                let version = params
                    .get("protocolVersion")
                    .and_then(Value::as_str)
                    .unwrap_or(DEFAULT_PROTOCOL_VERSION);
                let result = json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": self.name, "version": self.version},
                });
                let answer = reply(result);
                async move { answer }.boxed()
            }
            "tools/list" => {
                let tools: Vec<Value> = self
                    .tools
                    .iter()
                    .map(|t| {
                        json!({"name": t.name, "description": t.description,
                               "inputSchema": t.input_schema})
                    })
                    .collect();
                let answer = reply(json!({ "tools": tools }));
                async move { answer }.boxed()
            }
            "tools/call" => {
                let name = params.get("name").and_then(Value::as_str).unwrap_or("");
                let arguments = params
                    .get("arguments")
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Map::new()));
                let Some(tool) = self.tools.iter().find(|t| t.name == name) else {
                    let answer = reply(
                        ToolResult::error(format!("server `{}` has no tool `{name}`", self.name))
                            .to_value(),
                    );
                    return async move { answer }.boxed();
                };
                let handler = tool.handler.clone();
                let tool_name = tool.name.clone();
                async move {
                    // A panicking tool (while called or while it runs) is an error result of
                    // that call, which the model sees like any failed tool; the server and the
                    // session go on.
                    let work = AssertUnwindSafe(async move { handler(session, arguments).await });
                    let result = match work.catch_unwind().await {
                        Ok(Ok(result)) => result,
                        Ok(Err(e)) => ToolResult::error(e.to_string()),
                        Err(panic) => ToolResult::error(format!(
                            "the tool `{tool_name}` panicked: {}",
                            panic_message(&*panic)
                        )),
                    };
                    reply(result.to_value())
                }
                .boxed()
            }
            // Notifications (`notifications/initialized`, …) expect no result; the CLI still
            // waits for a control answer, so acknowledge with an empty one.
            m if m.starts_with("notifications/") => {
                async move { json!({"jsonrpc": "2.0", "result": {}}) }.boxed()
            }
            other => {
                let answer = json!({"jsonrpc": "2.0", "id": message.get("id").cloned().unwrap_or(Value::Null),
                    "error": {"code": -32601, "message": format!("method `{other}` not found")}});
                async move { answer }.boxed()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Add {
        a: i64,
        b: i64,
    }

    fn server() -> SdkMcpServer {
        SdkMcpServer::new("calc", "1.2.3").tool(SdkTool::typed(
            "add",
            "Adds",
            |call: ToolRequest<Add>| async move {
                if call.input.a < 0 {
                    return Err(CallbackError::msg("negative"));
                }
                Ok(ToolResult::text(format!(
                    "{}:{}",
                    call.session,
                    call.input.a + call.input.b
                )))
            },
        ))
    }

    async fn ask(message: Value) -> Value {
        server().handle(Arc::from("s1"), message).await
    }

    #[tokio::test]
    async fn json_rpc_initialize_list_and_call() {
        let init = ask(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}}}))
        .await;
        assert_eq!(init["id"], 0);
        assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
        assert_eq!(init["result"]["serverInfo"]["name"], "calc");
        assert!(init["result"]["capabilities"]["tools"].is_object());

        let list = ask(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
        let tools = list["result"]["tools"].as_array().unwrap();
        assert_eq!(tools.len(), 1);
        assert_eq!(tools[0]["name"], "add");
        let schema = &tools[0]["inputSchema"];
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["properties"]["a"]["type"], "integer");
        assert!(schema.get("$schema").is_none());

        let call = ask(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 2, "b": 40}}}))
        .await;
        assert_eq!(
            call["result"],
            json!({"content": [{"type": "text", "text": "s1:42"}]})
        );
    }

    #[tokio::test]
    async fn failures_become_error_results_or_json_rpc_errors() {
        let bad = ask(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": "x"}}}))
        .await;
        assert_eq!(bad["result"]["isError"], true);
        assert!(
            bad["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("invalid arguments")
        );
        let failed = ask(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": -1, "b": 0}}}))
        .await;
        assert_eq!(
            failed["result"],
            json!({"content": [{"type": "text", "text": "negative"}], "isError": true})
        );
        let missing = ask(json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": "sub", "arguments": {}}}))
        .await;
        assert_eq!(missing["result"]["isError"], true);
        let unknown = ask(json!({"jsonrpc": "2.0", "id": 6, "method": "prompts/list"})).await;
        assert_eq!(unknown["error"]["code"], -32601);
        assert_eq!(unknown["id"], 6);
        let note = ask(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        assert_eq!(note, json!({"jsonrpc": "2.0", "result": {}}));
    }
}

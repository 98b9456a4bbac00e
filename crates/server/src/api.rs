//! The HTTP API (axum), its OpenAPI document (utoipa) and its routes.
//!
//! | route | what |
//! |---|---|
//! | `GET /live`, `GET /ready` | probes, answered without waiting on any session |
//! | `GET /health` | the tree's health report (and the fleet's owners, in a fleet) |
//! | `GET /metrics` | Prometheus text |
//! | `GET /sessions`, `POST /sessions` | list; start one (options by the config's allow-list) |
//! | `GET /sessions/{name}`, `DELETE /sessions/{name}` | one; terminate it (fleet-wide) |
//! | `POST /sessions/{name}/restart`, `…/interrupt` | restart its CLI; interrupt its turn |
//! | `POST /sessions/{name}/query` | a turn, as server-sent events or one JSON answer |
//! | `GET /sessions/{name}/turns/{turn}/events` | a turn's events again (`Last-Event-ID`) |
//! | `GET /openapi.json` | this API's OpenAPI document |
//! | `GET /` | the status page |

pub(crate) mod error;
pub(crate) mod turns;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use claude_supervisor::{Agent, SessionInfo, SupervisorError, validate_name};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{OpenApi, ToSchema};

use crate::app::AppState;
use crate::config::AGENT_KEYS;
use error::{ApiError, ErrorBody};
use turns::TurnLog;

/// The header a forwarded request carries (a node never forwards a request twice).
const FORWARDED_BY: &str = "x-claude-supervisor-forwarded-by";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "claude-supervisor",
        description = "A supervised runtime for Claude Code agents: named sessions, each a Claude Code CLI under supervision.",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(
        live, ready, health, metrics, list_sessions, start_session, get_session,
        terminate_session, restart_session, interrupt_session, query, turn_events
    ),
    components(schemas(ErrorBody, QueryRequest, QueryAnswer, Interrupted, SessionList, StartSession, TurnEvent)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // What the security layer may answer on any route, before the route itself.
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let guard = [
            ("401", "No valid bearer token (when the server has one)"),
            ("429", "The per-client rate limit"),
            ("431", "The request's headers are too large"),
        ];
        let error = |description: &str| -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
                .into()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            // What any session route may answer besides its own: the store or the session
            // unavailable; for a named session, its owner elsewhere or the forward to it.
            let mut also = Vec::new();
            if path.starts_with("/sessions") {
                also.push(("503", "The store, or the session, is unavailable"));
            }
            if path.starts_with("/sessions/{name}") {
                also.push(("409", "Another node runs it, or it is not running"));
                also.push(("502", "Forwarding to the node that runs it failed"));
                also.push(("413", "The body is too large"));
            }
            if path == "/sessions" {
                if let Some(post) = &mut item.post {
                    for (code, description) in [
                        (
                            "403",
                            "An option the server's allow-list does not let a client set",
                        ),
                        ("413", "The body is too large"),
                        ("502", "The session's CLI did not start"),
                    ] {
                        post.responses
                            .responses
                            .entry(code.to_owned())
                            .or_insert_with(|| error(description));
                    }
                }
            }
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for (code, description) in guard.iter().chain(&also) {
                    operation
                        .responses
                        .responses
                        .entry((*code).to_owned())
                        .or_insert_with(|| error(description));
                }
            }
        }
    }
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The router, with the security layer and the body limit.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.server.max_body_bytes;
    Router::new()
        .route("/", get(crate::page::status_page))
        .route("/live", get(live))
        .route("/ready", get(ready))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/sessions", get(list_sessions).post(start_session))
        .route(
            "/sessions/{name}",
            get(get_session).delete(terminate_session),
        )
        .route("/sessions/{name}/restart", post(restart_session))
        .route("/sessions/{name}/interrupt", post(interrupt_session))
        .route("/sessions/{name}/query", post(query))
        .route("/sessions/{name}/turns/{turn}/events", get(turn_events))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such route") })
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::security::guard,
        ))
        .with_state(state)
}

/// A JSON body: errors as [`ApiError`]s (`body_too_large`, `malformed_json`, `invalid_body`
/// naming the field).
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        e.body_text(),
                    )
                } else {
                    ApiError::bad_request("unreadable_body", e.body_text())
                }
            })?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request("malformed_json", format!("the body is not JSON: {e}"))
        })?;
        let parsed = serde_path_to_error::deserialize(value).map_err(|e| {
            ApiError::bad_request("invalid_body", format!("`{}`: {}", e.path(), e.inner()))
        })?;
        Ok(Self(parsed))
    }
}

/// Path parameters: errors as [`ApiError`]s (`invalid_path`: a turn that is not a number, a
/// name that is not UTF-8 once decoded), in the API's JSON like every other error.
pub(crate) struct PathParams<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(params)) => Ok(Self(params)),
            Err(e) => Err(ApiError::new(e.status(), "invalid_path", e.body_text())),
        }
    }
}

fn checked_name(name: &str) -> Result<(), ApiError> {
    validate_name(name).map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))
}

fn draining() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "draining",
        "the server is shutting down: no new turns or sessions",
    )
}

/// The server is alive.
#[utoipa::path(get, path = "/live", responses((status = 200, description = "Alive", body = Object)))]
async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

/// The server takes work: the tree is up and it is not draining.
#[utoipa::path(get, path = "/ready", responses(
    (status = 200, description = "Ready", body = Object),
    (status = 503, description = "Not ready", body = ErrorBody)
))]
async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if !state.admitting.load(Ordering::SeqCst) {
        return draining().into_response();
    }
    match state.tree.exit_reason() {
        Some(why) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "tree_down", why).into_response()
        }
        None => Json(json!({"status": "ready"})).into_response(),
    }
}

/// `GET /health`: the tree's report, and the credential gateway's.
#[derive(Serialize)]
struct Health {
    #[serde(flatten)]
    tree: claude_supervisor::TreeHealth,
    /// The credential gateway (`null` without one).
    gateway: Option<GatewayHealth>,
}

/// The gateway in `/health`: where its credential comes from (by name only) and the traffic
/// it counted.
#[derive(Serialize)]
struct GatewayHealth {
    /// Where it listens (loopback).
    addr: Option<std::net::SocketAddr>,
    /// Where it forwards to.
    upstream: String,
    /// The server's variable holding the credential.
    credential_env: String,
    /// `api_key` or `bearer`.
    credential_kind: &'static str,
    /// Requests refused with 401 (no token, a wrong one, a revoked one).
    unauthorized: u64,
    /// Each session's traffic, by name.
    sessions: std::collections::BTreeMap<String, claude_supervisor::SessionTraffic>,
}

/// The tree's health report: its sessions (each running instance's snapshot carries the
/// session's egress report under `instance.containment.egress`) and the gateway's traffic.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "The health report", body = Object)),
    security(("bearer" = [])))]
async fn health(State(state): State<Arc<AppState>>) -> Json<Health> {
    let tree = state.tree.health().await;
    let gateway = state.gateway.as_ref().map(|g| {
        let stats = state.tree.gateway_stats().unwrap_or_default();
        GatewayHealth {
            addr: state.tree.gateway_addr(),
            upstream: g.upstream.clone(),
            credential_env: g.credential_env.clone(),
            credential_kind: g.kind.as_str(),
            unauthorized: stats.unauthorized,
            sessions: stats.sessions,
        }
    });
    Json(Health { tree, gateway })
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain")),
    security(("bearer" = [])))]
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&state.tree),
    )
        .into_response()
}

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

/// The sessions.
#[derive(Serialize, ToSchema)]
struct SessionList {
    /// This node's id, in a fleet.
    node: Option<String>,
    /// The sessions this server runs, in name order.
    #[schema(value_type = Vec<Object>)]
    sessions: Vec<SessionInfo>,
    /// In a fleet: every session of the fleet with its owner.
    #[schema(value_type = Option<Vec<Object>>)]
    fleet: Option<Vec<claude_supervisor::FleetSession>>,
}

/// Lists the sessions (in a fleet, with every session's owner).
#[utoipa::path(get, path = "/sessions", responses((status = 200, description = "The sessions", body = SessionList)),
    security(("bearer" = [])))]
async fn list_sessions(State(state): State<Arc<AppState>>) -> Result<Json<SessionList>, ApiError> {
    let fleet = match state.tree.node_id() {
        Some(_) => Some(state.tree.fleet_sessions().await?),
        None => None,
    };
    Ok(Json(SessionList {
        node: state.tree.node_id().map(str::to_owned),
        sessions: state.tree.list_sessions(),
        fleet,
    }))
}

/// A session to start: its name and the options the config's `[clients] allow` lets a client
/// set (the config's `[defaults]` give the rest).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
struct StartSession {
    /// The name.
    name: String,
    /// Allowed options (`model`, `append_system_prompt`, `max_turns`, …).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    options: serde_json::Map<String, Value>,
}

/// Starts a session.
#[utoipa::path(post, path = "/sessions", request_body = StartSession, responses(
    (status = 201, description = "Started", body = Object),
    (status = 400, description = "Bad options or name", body = ErrorBody),
    (status = 409, description = "It exists, or another node runs it", body = ErrorBody),
    (status = 429, description = "A session limit", body = ErrorBody),
    (status = 503, description = "Draining", body = ErrorBody)
), security(("bearer" = [])))]
async fn start_session(
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody<serde_json::Map<String, Value>>,
) -> Result<Response, ApiError> {
    if !state.admitting.load(Ordering::SeqCst) {
        return Err(draining());
    }
    let agent = client_agent(&state, body)?;
    let spec = state
        .spec_of(&agent)
        .map_err(|e| ApiError::bad_request("invalid_options", e.to_string()))?;
    let handle = state.tree.start_session(spec).await?;
    let info = info_of(&state, handle.name()).ok_or_else(|| ApiError::not_found(handle.name()))?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// The agent a client asked for: its keys checked against the allow-list, laid over the
/// config's defaults.
fn client_agent(state: &AppState, body: serde_json::Map<String, Value>) -> Result<Agent, ApiError> {
    let Some(Value::String(name)) = body.get("name") else {
        return Err(ApiError::bad_request(
            "invalid_body",
            "`name`: a string is required",
        ));
    };
    checked_name(name)?;
    let mut merged = match serde_json::to_value(&state.config.defaults) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    for (key, value) in body {
        if key == "name" {
            merged.insert(key, value);
            continue;
        }
        if !AGENT_KEYS.contains(&key.as_str()) {
            return Err(ApiError::bad_request(
                "unknown_option",
                format!("`{key}` is not a session option; known: {AGENT_KEYS:?}"),
            ));
        }
        if !state.config.clients.allow.contains(&key) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "option_not_allowed",
                format!(
                    "`{key}` may not be set by a client (the server's `[clients] allow` does not list it)"
                ),
            ));
        }
        merged.insert(key, value);
    }
    serde_path_to_error::deserialize(Value::Object(merged)).map_err(|e| {
        ApiError::bad_request("invalid_options", format!("`{}`: {}", e.path(), e.inner()))
    })
}

fn info_of(state: &AppState, name: &str) -> Option<SessionInfo> {
    state
        .tree
        .list_sessions()
        .into_iter()
        .find(|s| s.name == name)
}

/// For a session this node does not run: forwards the request to its owner (in a fleet), or
/// says who owns it, or that there is none.
async fn elsewhere(
    state: &AppState,
    name: &str,
    request: Forwardable,
) -> Result<Response, ApiError> {
    if state.tree.node_id().is_none() {
        return Err(ApiError::not_found(name));
    }
    let owner = state
        .tree
        .owner_of(name)
        .await?
        .ok_or_else(|| ApiError::not_found(name))?;
    let error = ApiError::from(SupervisorError::OwnedElsewhere {
        name: name.to_owned(),
        owner: owner.clone(),
    });
    let peers = state.config.fleet.as_ref().map(|f| &f.peers);
    let Some(base) = peers.and_then(|p| p.get(&owner)) else {
        return Err(error);
    };
    if request.headers.contains_key(FORWARDED_BY) {
        // The owner we forwarded to says it does not run it either: no loop.
        return Err(error);
    }
    forward(state, base, request).await
}

/// What a forwarded request needs.
struct Forwardable {
    method: axum::http::Method,
    path_and_query: String,
    headers: HeaderMap,
    body: axum::body::Bytes,
}

async fn forward(state: &AppState, base: &str, request: Forwardable) -> Result<Response, ApiError> {
    let url = format!("{}{}", base.trim_end_matches('/'), request.path_and_query);
    let mut out = state.http.request(request.method, &url).body(request.body);
    for key in [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(v) = request.headers.get(&key) {
            out = out.header(key, v);
        }
    }
    if let Some(v) = request.headers.get("last-event-id") {
        out = out.header("last-event-id", v);
    }
    out = out.header(FORWARDED_BY, state.tree.node_id().unwrap_or_default());
    let answer = out.send().await.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "forward_failed",
            format!("forwarding to the session's owner at {base}: {e}"),
        )
    })?;
    let mut response = Response::builder().status(answer.status().as_u16());
    for (k, v) in answer.headers() {
        if k == header::CONTENT_TYPE || k == header::CACHE_CONTROL {
            response = response.header(k.as_str(), v.as_bytes());
        }
    }
    response = response.header(FORWARDED_BY, "forwarded");
    response
        .body(axum::body::Body::from_stream(answer.bytes_stream()))
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "forward_failed", e.to_string()))
}

/// Splits a request into what `elsewhere` may forward.
async fn forwardable(
    state: &AppState,
    request: Request,
) -> Result<(Forwardable, axum::http::request::Parts), ApiError> {
    let (parts, body) = request.into_parts();
    let limit = state.config.server.max_body_bytes;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than the limit of {limit} bytes"),
        )
    })?;
    Ok((
        Forwardable {
            method: parts.method.clone(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            headers: parts.headers.clone(),
            body,
        },
        parts,
    ))
}

/// One session.
#[utoipa::path(get, path = "/sessions/{name}", params(("name" = String, Path, description = "The session's name")),
    responses(
        (status = 200, description = "The session", body = Object),
        (status = 400, description = "Not a valid name", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 409, description = "Another node runs it", body = ErrorBody)
    ), security(("bearer" = [])))]
async fn get_session(
    State(state): State<Arc<AppState>>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    checked_name(&name)?;
    if let Some(info) = info_of(&state, &name) {
        return Ok(Json(info).into_response());
    }
    let (forward, _) = forwardable(&state, request).await?;
    elsewhere(&state, &name, forward).await
}

/// Terminates a session (in a fleet, from any node).
#[utoipa::path(delete, path = "/sessions/{name}", params(("name" = String, Path, description = "The session's name")),
    responses(
        (status = 204, description = "Terminated"),
        (status = 400, description = "Not a valid name", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody)
    ), security(("bearer" = [])))]
async fn terminate_session(
    State(state): State<Arc<AppState>>,
    PathParams(name): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    checked_name(&name)?;
    state.tree.terminate_session(&name).await?;
    state.turns.remove(&name);
    Ok(StatusCode::NO_CONTENT)
}

/// Restarts a session's CLI (resuming its conversation); revives a failed one.
#[utoipa::path(post, path = "/sessions/{name}/restart", params(("name" = String, Path, description = "The session's name")),
    responses(
        (status = 200, description = "Restarted", body = Object),
        (status = 400, description = "Not a valid name", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 409, description = "Another node runs it", body = ErrorBody),
        (status = 503, description = "Draining", body = ErrorBody)
    ), security(("bearer" = [])))]
async fn restart_session(
    State(state): State<Arc<AppState>>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    checked_name(&name)?;
    if !state.admitting.load(Ordering::SeqCst) {
        return Err(draining());
    }
    if state.tree.session(&name).is_none() {
        let (forward, _) = forwardable(&state, request).await?;
        return elsewhere(&state, &name, forward).await;
    }
    state.tree.restart_session(&name).await?;
    let info = info_of(&state, &name).ok_or_else(|| ApiError::not_found(&name))?;
    Ok(Json(info).into_response())
}

/// Whether a turn was interrupted.
#[derive(Serialize, ToSchema)]
struct Interrupted {
    /// A turn was running and was interrupted.
    interrupted: bool,
}

/// Interrupts the session's running turn.
#[utoipa::path(post, path = "/sessions/{name}/interrupt", params(("name" = String, Path, description = "The session's name")),
    responses(
        (status = 200, description = "Done", body = Interrupted),
        (status = 400, description = "Not a valid name", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 409, description = "Another node runs it", body = ErrorBody)
    ), security(("bearer" = [])))]
async fn interrupt_session(
    State(state): State<Arc<AppState>>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    checked_name(&name)?;
    let Some(handle) = state.tree.session(&name) else {
        let (forward, _) = forwardable(&state, request).await?;
        return elsewhere(&state, &name, forward).await;
    };
    let interrupted = handle.interrupt().await?;
    Ok(Json(Interrupted { interrupted }).into_response())
}

/// A query.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct QueryRequest {
    /// The prompt.
    prompt: String,
    /// Stream the turn as server-sent events (default), or answer once with the result as
    /// JSON (`false`, or `Accept: application/json`).
    #[serde(default)]
    stream: Option<bool>,
}

/// One server-sent event of a turn (the OpenAPI document's schema of each event).
#[derive(ToSchema)]
#[allow(dead_code)]
struct TurnEvent {
    /// `<turn>:<seq>`: what `Last-Event-ID` takes to resume after it.
    id: String,
    /// The frame's `type` (`system`, `assistant`, `result`, …), then `done` or `error`.
    event: String,
    /// The frame as JSON; for `done`, `{"turn", "is_error", "text"}`; for `error`, an error body.
    data: String,
}

/// A turn's collected answer.
#[derive(Serialize, ToSchema)]
struct QueryAnswer {
    /// The session.
    session: String,
    /// The turn's id on this server.
    turn: u64,
    /// The answer's text.
    text: String,
    /// Whether the turn ended in error.
    is_error: bool,
    /// The turn's `result` frame.
    #[schema(value_type = Object)]
    result: Value,
    /// The turn's cost, when known.
    #[schema(value_type = Option<Object>)]
    cost: Option<Value>,
}

/// Runs a turn: streams it as server-sent events (event names are the frames' `type`s, then
/// `done` or `error`; ids `<turn>:<seq>`), or answers with the collected result as JSON. With a
/// `Last-Event-ID` of the session's running turn, attaches to that turn instead of starting one.
#[utoipa::path(post, path = "/sessions/{name}/query", params(("name" = String, Path, description = "The session's name")),
    request_body = QueryRequest,
    responses(
        (status = 200, description = "The turn: server-sent events (the default), or one JSON answer", content(
            (TurnEvent = "text/event-stream"),
            (QueryAnswer = "application/json")
        )),
        (status = 400, description = "A bad body or name", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 409, description = "Another node runs it, or it failed", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 429, description = "A stored session to start again, and a session limit reached", body = ErrorBody),
        (status = 502, description = "The turn was cut (its CLI died, stalled or timed out)", body = ErrorBody),
        (status = 503, description = "Draining, or unavailable", body = ErrorBody)
    ), security(("bearer" = [])))]
async fn query(
    State(state): State<Arc<AppState>>,
    PathParams(name): PathParams<String>,
    request: Request,
) -> Result<Response, ApiError> {
    checked_name(&name)?;
    let started = Instant::now();
    let (forward_parts, parts) = forwardable(&state, request).await?;
    let headers = parts.headers;
    if let Some(last) = headers.get("last-event-id").and_then(|v| v.to_str().ok())
        && let Some(log) = state.turns.get(&name).map(|l| l.clone())
        && let Some(from) = log.resume_point(last)
    {
        return Ok(sse(log, from).into_response());
    }
    let body: QueryRequest = {
        let value: Value = serde_json::from_slice(&forward_parts.body).map_err(|e| {
            ApiError::bad_request("malformed_json", format!("the body is not JSON: {e}"))
        })?;
        serde_path_to_error::deserialize(value).map_err(|e| {
            ApiError::bad_request("invalid_body", format!("`{}`: {}", e.path(), e.inner()))
        })?
    };
    let handle = match state.tree.session(&name) {
        Some(handle) => handle,
        None => match revive(&state, &name).await? {
            Some(handle) => handle,
            None => return elsewhere(&state, &name, forward_parts).await,
        },
    };
    let Some(running) = state.begin_turn() else {
        return Err(draining());
    };
    let wants_json = body.stream == Some(false)
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json") && !a.contains("text/event-stream"));
    let turn = state.next_turn.fetch_add(1, Ordering::SeqCst);
    if wants_json {
        let out = match handle.ask(body.prompt).await {
            Ok(out) => Ok(out),
            // A turn that ended with an error `result` (interrupted, max turns, an API error)
            // is still a turn: answered with `is_error`, as the event stream's `done` says.
            Err(SupervisorError::TurnFailed { output, .. }) => Ok(*output),
            Err(e) => Err(e),
        };
        drop(running);
        state.metrics.turn(
            out.as_ref().is_ok_and(|o| !o.is_error()),
            started.elapsed().as_secs_f64(),
            None,
        );
        let out = out?;
        return Ok(Json(QueryAnswer {
            session: name,
            turn,
            text: out.text(),
            is_error: out.is_error(),
            result: serde_json::to_value(&out.result).unwrap_or(Value::Null),
            cost: out.cost.as_ref().and_then(|c| serde_json::to_value(c).ok()),
        })
        .into_response());
    }
    let stream = handle.query(body.prompt).await?;
    let log = TurnLog::new(turn);
    state.turns.insert(name.clone(), log.clone());
    tokio::spawn(drive(state.clone(), log.clone(), stream, started, running));
    Ok(sse(log, 0).into_response())
}

/// A session this node does not run, but whose record is in the store (the server restarted,
/// or it hibernated away): started again from its agent, resuming its conversation. `None`
/// when there is no record (or, in a fleet, another node owns it).
async fn revive(
    state: &AppState,
    name: &str,
) -> Result<Option<claude_supervisor::SessionHandle>, ApiError> {
    if !state.admitting.load(Ordering::SeqCst) {
        return Err(draining());
    }
    if state.tree.node_id().is_some()
        && let Some(owner) = state.tree.owner_of(name).await?
        && Some(owner.as_str()) != state.tree.node_id()
    {
        return Ok(None);
    }
    let record = state
        .store
        .load(name)
        .await
        .map_err(|e| ApiError::from(SupervisorError::Store(e)))?;
    if record.is_none() {
        return Ok(None);
    }
    let spec = state
        .spec_of(&state.agent_for(name))
        .map_err(|e| ApiError::bad_request("invalid_options", e.to_string()))?;
    match state.tree.start_session(spec).await {
        Ok(handle) => Ok(Some(handle)),
        // Started meanwhile by another request.
        Err(SupervisorError::AlreadyExists { .. }) => Ok(state.tree.session(name)),
        Err(e) => Err(e.into()),
    }
}

/// Reads the turn into its log (independently of any client), then `done` or `error`.
async fn drive(
    state: Arc<AppState>,
    log: Arc<TurnLog>,
    mut stream: claude_supervisor::TurnStream,
    started: Instant,
    running: crate::app::RunningTurn,
) {
    let mut first_token = None;
    let mut result = None;
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(message) => {
                let name = message.type_name().to_owned();
                if first_token.is_none() && (name == "assistant" || name == "stream_event") {
                    first_token = Some(started.elapsed().as_secs_f64());
                }
                if let claude_supervisor::Message::Result(r) = &message {
                    result = Some(r.clone());
                }
                log.push(
                    name,
                    serde_json::to_string(&message).unwrap_or_else(|_| "null".into()),
                );
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let ok = result.as_ref().is_some_and(|r| !r.is_error);
    state
        .metrics
        .turn(ok, started.elapsed().as_secs_f64(), first_token);
    match (failure, result) {
        (None, Some(r)) => log.push(
            "done",
            json!({"turn": log.id, "is_error": r.is_error, "text": r.result}).to_string(),
        ),
        (failure, _) => {
            let message = failure.map_or_else(
                || "the turn ended without a result".to_owned(),
                |e| e.to_string(),
            );
            log.push(
                "error",
                json!({"error": {"code": "turn_cut", "message": message}}).to_string(),
            );
        }
    }
    log.finish();
    drop(running);
}

fn sse(log: Arc<TurnLog>, from: usize) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id_of = log.clone();
    let events = log.follow(from).map(move |e| {
        Ok(Event::default()
            .id(id_of.event_id(e.seq))
            .event(e.name)
            .data(e.data))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// A turn's events again: from after `Last-Event-ID` (or from the start), following the turn
/// if it still runs.
#[utoipa::path(get, path = "/sessions/{name}/turns/{turn}/events", params(
        ("name" = String, Path, description = "The session's name"),
        ("turn" = u64, Path, description = "The turn's id")
    ),
    responses(
        (status = 200, description = "The turn's events", body = TurnEvent, content_type = "text/event-stream"),
        (status = 400, description = "Not a valid name or turn", body = ErrorBody),
        (status = 404, description = "No such turn (only a session's latest turn is kept)", body = ErrorBody)
    ), security(("bearer" = [])))]
async fn turn_events(
    State(state): State<Arc<AppState>>,
    PathParams((name, turn)): PathParams<(String, u64)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    checked_name(&name)?;
    let log = state
        .turns
        .get(&name)
        .map(|l| l.clone())
        .filter(|l| l.id == turn)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_turn",
                format!("no turn {turn} of `{name}` (only a session's latest turn is kept)"),
            )
        })?;
    let from = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| log.resume_point(v))
        .unwrap_or(0);
    Ok(sse(log, from).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_documents_what_the_security_layer_may_answer() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                for code in ["401", "429", "431"] {
                    assert!(
                        op["responses"].get(code).is_some(),
                        "{method} {path} lacks {code}"
                    );
                }
                if path.starts_with("/sessions/{name}") {
                    for code in ["409", "413", "502", "503"] {
                        assert!(
                            op["responses"].get(code).is_some(),
                            "{method} {path} lacks {code}"
                        );
                    }
                }
            }
        }
        assert_eq!(operations, 12);
    }
}

//! The API's one error type: an HTTP status, a stable machine-readable code and a message,
//! sent as `{"error": {"code": …, "message": …}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use claude_supervisor::{SessionError, SupervisorError};
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer of the API.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    /// The status.
    pub(crate) status: StatusCode,
    /// A stable code (`not_found`, `invalid_name`, `option_not_allowed`, …).
    pub(crate) code: &'static str,
    /// What went wrong, for a person.
    pub(crate) message: String,
    /// For `owned_elsewhere`: the node that runs the session.
    pub(crate) owner: Option<String>,
}

/// The body of an error answer.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// The error.
    pub(crate) error: ErrorDetail,
}

/// What an error answer says.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// A stable code.
    pub(crate) code: String,
    /// What went wrong.
    pub(crate) message: String,
    /// The node that runs the session (`owned_elsewhere` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) owner: Option<String>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            owner: None,
        }
    }

    /// 400 `bad_request`.
    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `not_found` for session `name`.
    pub(crate) fn not_found(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no session `{name}`"),
        )
    }
}

impl From<SupervisorError> for ApiError {
    fn from(e: SupervisorError) -> Self {
        let message = e.to_string();
        let (status, code) = match &e {
            SupervisorError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            SupervisorError::AlreadyExists { .. } => (StatusCode::CONFLICT, "already_exists"),
            SupervisorError::InvalidName { .. } => (StatusCode::BAD_REQUEST, "invalid_name"),
            SupervisorError::TooManySessions { .. } | SupervisorError::GroupFull { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "limit_reached")
            }
            SupervisorError::OwnedElsewhere { owner, .. } => {
                return Self {
                    status: StatusCode::CONFLICT,
                    code: "owned_elsewhere",
                    message,
                    owner: Some(owner.clone()),
                };
            }
            SupervisorError::Failed { .. } | SupervisorError::ConversationLost { .. } => {
                (StatusCode::CONFLICT, "session_failed")
            }
            SupervisorError::TurnFailed { .. } => (StatusCode::BAD_GATEWAY, "turn_failed"),
            SupervisorError::TurnCut { .. } => (StatusCode::BAD_GATEWAY, "turn_cut"),
            SupervisorError::Config { .. } => (StatusCode::BAD_REQUEST, "invalid_options"),
            SupervisorError::Start { .. } | SupervisorError::CliNotFound { .. } => {
                (StatusCode::BAD_GATEWAY, "start_failed")
            }
            SupervisorError::Leased { .. } => (StatusCode::CONFLICT, "conversation_in_use"),
            SupervisorError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            // Its CLI stopped under the request (a terminate or restart raced it): the
            // session's state, not the server's trouble.
            SupervisorError::Session(
                SessionError::NotRunning { .. } | SessionError::Stopped { .. },
            ) => (StatusCode::CONFLICT, "not_running"),
            SupervisorError::Session(_) => (StatusCode::SERVICE_UNAVAILABLE, "session_busy"),
            // Terminated (or its supervisor gave up) while the request was on its way: it is
            // no longer there.
            SupervisorError::Unavailable { .. } => (StatusCode::NOT_FOUND, "gone"),
            SupervisorError::RestartTimeout { .. } | SupervisorError::CallTimeout { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                owner: self.owner,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

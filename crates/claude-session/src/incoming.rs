//! Control requests the CLI sends us (`can_use_tool`, `hook_callback`, `mcp_message`, …).
//!
//! Each request runs on a task of its own, under a deadline, off the stdout reader: a slow or
//! stuck callback never delays other frames, interrupts, or other sessions. A handler that fails,
//! panics or overruns its deadline becomes an error answer to the CLI, never a dead session. A
//! `control_cancel_request` aborts the handler, and no answer is sent.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use claude_protocol::{ControlRequest, ControlRequestBody, ControlResponse};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::actor::WriterCmd;

/// Where a request from the CLI comes from.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RequestContext {
    /// The session the request belongs to.
    pub session: Arc<str>,
    /// The CLI's id for the request.
    pub request_id: String,
}

/// Answers control requests from the CLI.
///
/// The answer is the `response` object of a success reply, or an error message.
pub trait ControlHandler: Send + Sync + 'static {
    /// Handles one request. Runs on its own task; may take as long as the deadline allows.
    fn handle(
        &self,
        context: RequestContext,
        request: ControlRequestBody,
    ) -> BoxFuture<'static, Result<serde_json::Value, String>>;

    /// The deadline for answering `request`; `None` (the default): the session's.
    fn deadline(&self, request: &ControlRequestBody) -> Option<Duration> {
        let _ = request;
        None
    }
}

/// Dispatches the CLI's requests to the handler and writes the answers.
#[derive(Clone)]
pub(crate) struct IncomingRequests {
    session: Arc<str>,
    handler: Option<Arc<dyn ControlHandler>>,
    writer: mpsc::UnboundedSender<WriterCmd>,
    deadline: Duration,
    running: Arc<Mutex<HashMap<String, AbortHandle>>>,
}

impl IncomingRequests {
    pub(crate) fn new(
        session: Arc<str>,
        handler: Option<Arc<dyn ControlHandler>>,
        writer: mpsc::UnboundedSender<WriterCmd>,
        deadline: Duration,
    ) -> Self {
        Self {
            session,
            handler,
            writer,
            deadline,
            running: Arc::default(),
        }
    }

    pub(crate) fn dispatch(&self, request: ControlRequest) {
        let request_id = request.request_id.clone();
        let subtype = request.request.subtype().to_owned();
        let Some(handler) = self.handler.clone() else {
            self.answer(ControlResponse::error(
                request_id,
                format!(
                    "session `{}` has no handler for control request `{subtype}`",
                    self.session
                ),
            ));
            return;
        };
        let context = RequestContext {
            session: self.session.clone(),
            request_id: request_id.clone(),
        };
        let this = self.clone();
        // User code, called on the stdout reader: a panic here must not take the reader down.
        let deadline =
            std::panic::catch_unwind(AssertUnwindSafe(|| handler.deadline(&request.request)))
                .ok()
                .flatten()
                .unwrap_or(self.deadline);
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let id = request_id.clone();
        let task = tokio::spawn(async move {
            // `handle` is called inside the caught future: a handler that panics while called
            // (before it returns its future) is caught too, and its request still answered.
            let work =
                AssertUnwindSafe(async move { handler.handle(context, request.request).await })
                    .catch_unwind();
            let answer = match tokio::time::timeout(deadline, work).await {
                Ok(Ok(Ok(value))) => ControlResponse::success(id.clone(), value),
                Ok(Ok(Err(message))) => ControlResponse::error(id.clone(), message),
                Ok(Err(panic)) => ControlResponse::error(
                    id.clone(),
                    format!(
                        "the `{subtype}` handler panicked: {}",
                        crate::callbacks::panic_message(&*panic)
                    ),
                ),
                Err(_) => ControlResponse::error(
                    id.clone(),
                    format!(
                        "the `{subtype}` handler did not answer within {}",
                        humantime::format_duration(deadline)
                    ),
                ),
            };
            this.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            this.answer(answer);
        });
        running.insert(request_id, task.abort_handle());
    }

    pub(crate) fn cancel(&self, request_id: &str) {
        if let Some(task) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(request_id)
        {
            task.abort();
        }
    }

    /// Whether a handler is running: the CLI is waiting on us, not stalled.
    pub(crate) fn in_flight(&self) -> bool {
        !self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Aborts every running handler (the process is gone; nobody is left to answer).
    pub(crate) fn abort_all(&self) {
        for (_, task) in self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            task.abort();
        }
    }

    fn answer(&self, response: ControlResponse) {
        let frame = Message::ControlResponse(response);
        match serde_json::to_vec(&frame) {
            Ok(line) => {
                let _ = self.writer.send(WriterCmd::Line(line));
            }
            Err(e) => {
                tracing::error!(session = %self.session, error = %e, "could not serialise a control answer")
            }
        }
    }
}

use claude_protocol::Message;

//! [`OwnedSession`]: a session tied to its owner's lifetime.

use std::ops::Deref;

use super::{ClaudeSupervisor, SessionHandle};

/// A session that lives as long as its owner: when the guard is dropped — the owner returned,
/// was cancelled, or panicked and unwound — the session is terminated by the normal recipe
/// (its conversation kept in the store, so starting the same name later resumes it), and its
/// name and admission place are freed.
///
/// The hosting guide's per-user pattern: a request handler or a websocket task holds the guard;
/// when it ends, however it ends, the agent goes with it. Move the guard into the task that owns
/// the session; [`detach`](Self::detach) gives up ownership and keeps the session running.
///
/// Derefs to the session's [`SessionHandle`].
///
/// # Examples
///
/// ```no_run
/// # use claude_supervisor::{ClaudeOptions, ClaudeSupervisor, SessionSpec};
/// # async fn example(tree: ClaudeSupervisor) -> Result<(), Box<dyn std::error::Error>> {
/// let spec = SessionSpec::new("user-42", ClaudeOptions::builder().build()?);
/// tokio::spawn(async move {
///     let session = tree.start_owned(spec).await?;
///     session.ask("Hello").await?;
///     Ok::<_, claude_supervisor::SupervisorError>(())
///     // the session is terminated here, or when this task panics
/// });
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "dropping the guard terminates the session"]
pub struct OwnedSession {
    handle: Option<SessionHandle>,
    tree: ClaudeSupervisor,
}

impl OwnedSession {
    pub(crate) fn new(tree: ClaudeSupervisor, handle: SessionHandle) -> Self {
        Self {
            handle: Some(handle),
            tree,
        }
    }

    /// Gives up ownership: the session keeps running, as if started with
    /// [`start_session`](ClaudeSupervisor::start_session).
    pub fn detach(mut self) -> SessionHandle {
        self.handle
            .take()
            .expect("the handle is present until drop")
    }
}

impl Deref for OwnedSession {
    type Target = SessionHandle;

    fn deref(&self) -> &SessionHandle {
        self.handle
            .as_ref()
            .expect("the handle is present until drop")
    }
}

impl Drop for OwnedSession {
    fn drop(&mut self) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        let name = handle.name().to_owned();
        let tree = self.tree.clone();
        // Termination is asynchronous; it runs on the tree's runtime even if the owner's task
        // is being torn down. Without a runtime (the program is exiting) the tree's own drop
        // stops the session.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = tree.terminate_session(&name).await {
                    tracing::debug!(session = %name, error = %e, "owned session already gone");
                }
            });
        }
    }
}

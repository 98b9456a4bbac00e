//! Confirming that a previous instance's processes are gone before its conversation is resumed.
//!
//! The launcher answers: the instance's [`Containment`] waits for everything the launch started
//! and kills only what it provably owns (pidfds, the launch's own cgroups or namespace), so a
//! reused pid can never be hit. The facade never signals a process itself.

use std::time::Duration;

use claude_session::Containment;

/// What is known of an instance's processes, to wait for them later.
#[derive(Clone, Debug)]
pub(crate) struct PreviousProcess {
    tree: Option<Containment>,
}

impl PreviousProcess {
    pub(crate) fn new(tree: Option<Containment>) -> Self {
        Self { tree }
    }

    /// Waits until every process of the instance is gone (killing what is left half way), at
    /// most about `limit`.
    pub(crate) async fn wait_gone(&self, limit: Duration) -> Result<(), String> {
        match &self.tree {
            Some(tree) => tree.wait_gone(limit / 2).await.map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

//! The stdin writer: the only task that writes to the CLI.
//!
//! Frames are serialised by the sender (so a malformed line can never be written: every line is
//! `serde_json` output), and written here one per line, flushed, in order. Closing stdin is a
//! command like any other, so it happens after every frame queued before it.

use std::pin::Pin;

use ractor::ActorRef;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::SessionMsg;

/// What the writer is asked to do.
#[derive(Debug)]
pub(crate) enum WriterCmd {
    /// Write this serialised frame, then a newline.
    Line(Vec<u8>),
    /// Close stdin: the CLI finishes its running turn, then exits.
    Close,
}

pub(crate) async fn run(
    mut stdin: Pin<Box<dyn AsyncWrite + Send>>,
    mut commands: mpsc::UnboundedReceiver<WriterCmd>,
    actor: ActorRef<SessionMsg>,
) {
    while let Some(cmd) = commands.recv().await {
        match cmd {
            WriterCmd::Line(mut line) => {
                line.push(b'\n');
                let written = async {
                    stdin.write_all(&line).await?;
                    stdin.flush().await
                };
                if let Err(e) = written.await {
                    let _ = actor.cast(SessionMsg::PipeFailed(format!(
                        "writing to the CLI's stdin failed: {e}"
                    )));
                    return;
                }
            }
            WriterCmd::Close => break,
        }
    }
    let _ = stdin.shutdown().await;
}

//! Where `transcript_mirror` frames go: a mirror sink, never a caller's turn stream.
//!
//! With `--session-mirror` the CLI prints the lines it appends to its session files as
//! `transcript_mirror` frames. A session started with a sink ([`StartOptions::mirror`]) sends
//! each one to it as [`MirrorEvent::Entries`], in stdout order; at the end of every turn, before
//! the turn's `result` reaches its caller, it sends [`MirrorEvent::TurnEnd`] and holds the
//! `result` until the sink answers — so a turn that returned to its caller has had its lines
//! handed to (and, if the sink says so, stored by) the sink first. Without a sink the frames are
//! dropped.
//!
//! [`StartOptions::mirror`]: crate::StartOptions::mirror

use claude_protocol::transcript::TranscriptMirror;
use tokio::sync::{mpsc, oneshot};

/// What a session sends its mirror sink.
#[derive(Debug)]
#[non_exhaustive]
pub enum MirrorEvent {
    /// Lines the CLI appended to one of its session files.
    Entries(TranscriptMirror),
    /// Turn `turn` ended: answer `ack` once everything sent before it is safe. The turn's
    /// `result` reaches its caller only after the answer (or once `ack` is dropped).
    TurnEnd {
        /// The turn's number in this session.
        turn: u64,
        /// Answer here.
        ack: oneshot::Sender<()>,
    },
}

/// The sending half of a mirror sink (an unbounded channel: the reader never waits on the store
/// while reading, only a finished turn waits for its barrier).
pub type MirrorSink = mpsc::UnboundedSender<MirrorEvent>;

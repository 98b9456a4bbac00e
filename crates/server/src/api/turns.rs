//! A turn's server-sent events, kept while the turn runs (and after, until the session's next
//! turn), so that a client that lost its connection reconnects with `Last-Event-ID` and gets
//! what it missed.
//!
//! The turn is driven by a task of its own, not by the HTTP response: a client going away does
//! not interrupt it (`POST /sessions/{name}/interrupt` does). Event ids are `<turn>:<seq>`.

use std::sync::{Arc, Mutex};

use futures::Stream;
use tokio::sync::watch;

/// One server-sent event of a turn.
#[derive(Clone, Debug)]
pub(crate) struct TurnEvent {
    /// Its position in the turn (from 0).
    pub(crate) seq: usize,
    /// The SSE event name: the frame's `type` (`system`, `assistant`, `stream_event`,
    /// `result`, …), then `done` or `error`.
    pub(crate) name: String,
    /// The JSON data.
    pub(crate) data: String,
}

/// The events of one turn.
pub(crate) struct TurnLog {
    /// The turn's id on this server (unique across sessions).
    pub(crate) id: u64,
    events: Mutex<Vec<TurnEvent>>,
    /// (events so far, finished).
    progress: watch::Sender<(usize, bool)>,
}

impl TurnLog {
    pub(crate) fn new(id: u64) -> Arc<Self> {
        Arc::new(Self {
            id,
            events: Mutex::new(Vec::new()),
            progress: watch::channel((0, false)).0,
        })
    }

    fn events(&self) -> std::sync::MutexGuard<'_, Vec<TurnEvent>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends an event.
    pub(crate) fn push(&self, name: impl Into<String>, data: String) {
        let len = {
            let mut events = self.events();
            let seq = events.len();
            events.push(TurnEvent {
                seq,
                name: name.into(),
                data,
            });
            events.len()
        };
        self.progress.send_modify(|p| p.0 = len);
    }

    /// The turn is over: followers end after its last event.
    pub(crate) fn finish(&self) {
        self.progress.send_modify(|p| p.1 = true);
    }

    /// The SSE id of event `seq`.
    pub(crate) fn event_id(&self, seq: usize) -> String {
        format!("{}:{seq}", self.id)
    }

    /// Parses a `Last-Event-ID` of this turn: the seq after which to go on.
    pub(crate) fn resume_point(&self, last_event_id: &str) -> Option<usize> {
        let (turn, seq) = last_event_id.split_once(':')?;
        (turn.parse::<u64>().ok()? == self.id).then_some(())?;
        seq.parse::<usize>().ok().map(|s| s + 1)
    }

    /// The events from `from` on, following the turn until it is over.
    pub(crate) fn follow(self: Arc<Self>, from: usize) -> impl Stream<Item = TurnEvent> + Send {
        let progress = self.progress.subscribe();
        futures::stream::unfold(
            (self, progress, from),
            |(log, mut progress, next)| async move {
                loop {
                    let event = log.events().get(next).cloned();
                    if let Some(event) = event {
                        return Some((event, (log, progress, next + 1)));
                    }
                    let (len, finished) = *progress.borrow_and_update();
                    if len > next {
                        continue;
                    }
                    if finished || progress.changed().await.is_err() {
                        return None;
                    }
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn a_follower_gets_every_event_then_ends_and_a_late_one_resumes() {
        let log = TurnLog::new(7);
        log.push("system", "{}".into());
        let follower = tokio::spawn(log.clone().follow(0).collect::<Vec<_>>());
        log.push("assistant", "{\"a\":1}".into());
        log.push("result", "{}".into());
        log.finish();
        let got = follower.await.unwrap();
        let names: Vec<&str> = got.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["system", "assistant", "result"]);
        // Reconnecting after event 0 gets events 1 and 2.
        let from = log.resume_point(&log.event_id(0)).unwrap();
        let rest: Vec<usize> = log.clone().follow(from).map(|e| e.seq).collect().await;
        assert_eq!(rest, [1, 2]);
        assert_eq!(log.resume_point("8:0"), None, "another turn's id");
        assert_eq!(log.resume_point("garbage"), None);
    }
}

//! The CLI's stderr, always drained into a bounded ring buffer.
//!
//! A pipe that nobody reads fills up and blocks the writer: a CLI that floods stderr would wedge.
//! So stderr is read continuously, and only its last bytes are kept, for error messages.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt};

/// The last bytes a process wrote to stderr.
#[derive(Clone, Debug)]
pub(crate) struct StderrTail {
    inner: Arc<Mutex<VecDeque<u8>>>,
    capacity: usize,
}

impl StderrTail {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(VecDeque::with_capacity(capacity.min(64 * 1024)))),
            capacity,
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut buf = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = if bytes.len() > self.capacity {
            &bytes[bytes.len() - self.capacity..]
        } else {
            bytes
        };
        let overflow = (buf.len() + bytes.len()).saturating_sub(self.capacity);
        buf.drain(..overflow);
        buf.extend(bytes);
    }

    /// The kept tail as text (lossy UTF-8), trimmed of surrounding white space.
    pub(crate) fn text(&self) -> String {
        let buf = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (a, b) = buf.as_slices();
        let mut bytes = Vec::with_capacity(a.len() + b.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }

    /// Reads `stream` to its end, keeping the tail. Read errors end the drain quietly: stderr is
    /// diagnostics, never a reason to fail a session.
    pub(crate) async fn drain(self, mut stream: impl AsyncRead + Unpin, session: Arc<str>) {
        let mut chunk = vec![0u8; 8 * 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    tracing::trace!(session = %session, bytes = n, "cli stderr");
                    self.push(&chunk[..n]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_last_bytes() {
        let tail = StderrTail::new(8);
        tail.push(b"hello ");
        tail.push(b"world!");
        assert_eq!(tail.text(), "o world!");
        tail.push(b"0123456789abcdef");
        assert_eq!(tail.text(), "89abcdef");
    }

    #[tokio::test]
    async fn drains_a_flood_to_the_end() {
        let data = vec![b'e'; 1_000_000];
        let tail = StderrTail::new(16);
        tail.clone().drain(&data[..], Arc::from("s")).await;
        assert_eq!(tail.text(), "e".repeat(16));
    }
}

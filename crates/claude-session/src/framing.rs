//! Newline framing of the CLI's stdout with a line-length limit.
//!
//! The CLI writes one JSON object per line, and lines can be huge (base64 images, big tool
//! output). A line longer than the limit is not buffered whole: once the limit is passed the
//! reader switches to discarding until the next newline, so an oversize line costs no more memory
//! than the limit itself, and is reported as [`Framed::Oversize`] so the session can live on.

use tokio::io::{AsyncRead, AsyncReadExt};

/// How much the buffer grows by when it needs room for more bytes.
const READ_CHUNK: usize = 64 * 1024;

/// One framing result, borrowed from the reader's buffer.
#[derive(Debug)]
pub(crate) enum Framed<'a> {
    /// A complete line, without its newline (and without a trailing `\r`).
    Line(&'a [u8]),
    /// A line longer than the limit was dropped; `len` is its length in bytes.
    Oversize { len: usize },
}

/// Splits a byte stream into lines of at most `max_line` bytes.
///
/// Reading ([`LineReader::fill`]) and taking lines ([`LineReader::take`]) are separate so that
/// `fill` can sit in a `select!`: it is cancel safe, because all state lives in the reader.
pub(crate) struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Start of the first unconsumed byte in `buf`.
    start: usize,
    /// Bytes of `buf[start..]` already searched for a newline.
    scanned: usize,
    max_line: usize,
    /// `Some(n)`: inside an oversize line, `n` bytes dropped so far.
    discarding: Option<usize>,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(crate) fn new(inner: R, max_line: usize) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(READ_CHUNK),
            start: 0,
            scanned: 0,
            max_line,
            discarding: None,
            eof: false,
        }
    }

    /// Changes the longest line kept (a reader handed on to a session with its own limit).
    pub(crate) fn set_max_line(&mut self, max_line: usize) {
        self.max_line = max_line;
    }

    /// True once the stream has ended and every buffered line has been taken.
    pub(crate) fn is_done(&self) -> bool {
        self.eof && self.start >= self.buf.len() && self.discarding.is_none()
    }

    /// Reads more bytes into the buffer. Returns `Ok(false)` at end of stream.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a read either completes into the buffer or does not happen.
    pub(crate) async fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 && (self.start == self.buf.len() || self.start >= self.buf.len() / 2) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        let n = self.inner.read_buf(&mut self.buf).await?;
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    /// Takes the next complete line out of the buffer, if there is one.
    pub(crate) fn take(&mut self) -> Option<Framed<'_>> {
        match self.next_range() {
            Some(Ok((start, end))) => Some(Framed::Line(&self.buf[start..end])),
            Some(Err(len)) => Some(Framed::Oversize { len }),
            None => None,
        }
    }

    /// Finds the next line: `Ok(range in buf)` for a line, `Err(len)` for a dropped oversize one.
    fn next_range(&mut self) -> Option<Result<(usize, usize), usize>> {
        loop {
            let from = self.start + self.scanned;
            match memchr::memchr(b'\n', &self.buf[from..]) {
                Some(pos) => {
                    let end = from + pos;
                    let line_start = self.start;
                    self.start = end + 1;
                    self.scanned = 0;
                    if let Some(dropped) = self.discarding.take() {
                        return Some(Err(dropped + (end - line_start)));
                    }
                    let end = if end > line_start && self.buf[end - 1] == b'\r' {
                        end - 1
                    } else {
                        end
                    };
                    if end == line_start {
                        continue;
                    }
                    if end - line_start > self.max_line {
                        return Some(Err(end - line_start));
                    }
                    return Some(Ok((line_start, end)));
                }
                None => {
                    let held = self.buf.len() - self.start;
                    if let Some(dropped) = self.discarding.as_mut() {
                        *dropped += held;
                        self.buf.clear();
                        self.start = 0;
                        self.scanned = 0;
                    } else if held > self.max_line {
                        self.discarding = Some(held);
                        self.buf.clear();
                        self.start = 0;
                        self.scanned = 0;
                    } else {
                        self.scanned = held;
                    }
                    if !self.eof {
                        return None;
                    }
                    // At end of stream, a last line without a newline is still a line.
                    if let Some(dropped) = self.discarding.take() {
                        return Some(Err(dropped));
                    }
                    if self.start >= self.buf.len() {
                        return None;
                    }
                    let line_start = self.start;
                    self.start = self.buf.len();
                    self.scanned = 0;
                    return Some(Ok((line_start, self.buf.len())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(input: &[u8], max: usize, chunk: usize) -> Vec<Result<String, usize>> {
        let (mut tx, rx) = tokio::io::duplex(chunk.max(1));
        let data = input.to_vec();
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for piece in data.chunks(chunk.max(1)) {
                tx.write_all(piece).await.unwrap();
            }
        });
        let mut reader = LineReader::new(rx, max);
        let mut out = Vec::new();
        loop {
            while let Some(f) = reader.take() {
                out.push(match f {
                    Framed::Line(l) => Ok(String::from_utf8(l.to_vec()).unwrap()),
                    Framed::Oversize { len } => Err(len),
                });
            }
            if reader.is_done() {
                break;
            }
            reader.fill().await.unwrap();
        }
        writer.await.unwrap();
        out
    }

    #[tokio::test]
    async fn splits_lines_across_chunk_boundaries() {
        for chunk in [1, 2, 3, 7, 1024] {
            let out = collect(b"{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":3}", 100, chunk).await;
            assert_eq!(
                out,
                vec![
                    Ok("{\"a\":1}".into()),
                    Ok("{\"b\":2}".into()),
                    Ok("{\"c\":3}".into())
                ],
                "chunk size {chunk}"
            );
        }
    }

    #[tokio::test]
    async fn oversize_line_is_reported_and_the_next_line_survives() {
        let mut input = vec![b'x'; 1000];
        input.extend_from_slice(b"\nok\n");
        for chunk in [1, 10, 64, 4096] {
            let out = collect(&input, 100, chunk).await;
            assert_eq!(out, vec![Err(1000), Ok("ok".into())], "chunk size {chunk}");
        }
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_is_kept() {
        let mut input = vec![b'y'; 100];
        input.push(b'\n');
        let out = collect(&input, 100, 7).await;
        assert_eq!(out, vec![Ok("y".repeat(100))]);
    }

    #[tokio::test]
    async fn oversize_tail_without_newline_is_reported() {
        let out = collect(&[b'z'; 500], 100, 50).await;
        assert_eq!(out, vec![Err(500)]);
    }
}

//! A running real CLI in two-way stream-json mode.

use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::time::Instant;

use super::RealCliError;
use crate::procs;

/// How much stderr [`CliProcess::stderr_tail`] keeps.
const STDERR_KEEP: usize = 64 * 1024;

/// The variable every [`CliProcess`] (and so everything it starts, unless a tool clears its
/// environment) carries, with a value unique to that process: how its detached descendants —
/// `(sleep &)`, `setsid`, `nohup`, daemons, which leave its process group — are found and
/// removed.
pub const MARKER_VAR: &str = "CLAUDE_TESTING_CLI";

/// How a [`CliProcess::shutdown`] ended the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShutdownStage {
    /// It exited by itself after stdin was closed.
    StdinClosed,
    /// It exited after SIGTERM to its process group.
    Terminated,
    /// It had to be killed with SIGKILL.
    Killed,
}

/// The outcome of [`CliProcess::shutdown`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Shutdown {
    /// The CLI's exit status (it has been reaped).
    pub status: ExitStatus,
    /// Which step of the recipe ended it.
    pub stage: ShutdownStage,
    /// Processes still alive after it exited — of its group, or detached but carrying its
    /// [`marker`](CliProcess::marker) — which were then killed.
    pub leftovers: Vec<procs::ProcInfo>,
}

/// A real CLI speaking stream-json on piped stdio, in its own process group, tagged with a
/// [`MARKER_VAR`] of its own.
///
/// Dropping it without [`CliProcess::shutdown`] kills the whole group with SIGKILL, and every
/// detached process that carries its marker.
#[derive(Debug)]
pub struct CliProcess {
    child: Child,
    pid: i32,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    seen: Vec<Value>,
    next_id: u64,
    done: bool,
    marker: String,
}

impl CliProcess {
    pub(crate) fn new(mut child: Child, marker: String) -> Result<CliProcess, RealCliError> {
        let pid = child
            .id()
            .ok_or_else(|| RealCliError::UnsafeEnv("the CLI exited before it started".into()))?
            as i32;
        let missing = |what: &str| RealCliError::io(what, std::io::ErrorKind::BrokenPipe.into());
        let stdin = child.stdin.take().ok_or_else(|| missing("taking stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| missing("taking stdout"))?;
        let mut stderr_pipe = child
            .stderr
            .take()
            .ok_or_else(|| missing("taking stderr"))?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        // Drained all the time so a chatty CLI never blocks on a full stderr pipe.
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = stderr_pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut tail = sink.lock().unwrap_or_else(|e| e.into_inner());
                tail.push_str(&String::from_utf8_lossy(&buf[..n]));
                if tail.len() > STDERR_KEEP {
                    let mut cut = tail.len() - STDERR_KEEP;
                    while !tail.is_char_boundary(cut) {
                        cut += 1;
                    }
                    tail.drain(..cut);
                }
            }
        });
        Ok(CliProcess {
            child,
            pid,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout).lines(),
            stderr,
            seen: Vec::new(),
            next_id: 0,
            done: false,
            marker,
        })
    }

    /// What marks everything this CLI started (its [`MARKER_VAR`] value).
    pub fn marker(&self) -> procs::Marker {
        procs::Marker::env(MARKER_VAR, self.marker.clone())
    }

    /// SIGKILLs every live process carrying this CLI's marker (detached ones included) and
    /// returns them. Each is signalled through a pidfd opened *before* its environment is read
    /// again, so a pid reused meanwhile by an unrelated process is never hit.
    fn kill_marked(&self) -> Vec<procs::ProcInfo> {
        let marker = self.marker();
        let mut killed = Vec::new();
        for p in procs::marked(&marker) {
            if p.is_zombie() {
                continue;
            }
            let Some(fd) = pidfd::open(p.pid) else {
                continue;
            };
            if marker.matches(p.pid) && pidfd::kill(&fd) {
                killed.push(p);
            }
        }
        killed
    }

    /// The CLI's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Its process group id (the same as the pid: it leads its own group).
    pub fn pgid(&self) -> i32 {
        self.pid
    }

    /// The last 64 KiB of what it wrote on stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every JSON line read from its stdout so far.
    pub fn seen(&self) -> &[Value] {
        &self.seen
    }

    /// Writes one JSON value as one line on its stdin.
    ///
    /// # Cancel safety
    /// Not cancel safe: a dropped future may leave half a line written.
    pub async fn send_json(&mut self, value: &Value) -> Result<(), RealCliError> {
        let stdin = self.stdin.as_mut().ok_or_else(|| {
            RealCliError::io("writing to stdin", std::io::ErrorKind::BrokenPipe.into())
        })?;
        // serde_json never puts a raw newline in its compact output.
        let mut line = serde_json::to_string(value)
            .map_err(|e| RealCliError::io("serialising a line", e.into()))?;
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| RealCliError::io("writing to stdin", e))?;
        stdin
            .flush()
            .await
            .map_err(|e| RealCliError::io("flushing stdin", e))
    }

    /// Sends a user message with text content.
    ///
    /// # Cancel safety
    /// Not cancel safe (see [`CliProcess::send_json`]).
    pub async fn send_user_text(&mut self, text: &str) -> Result<(), RealCliError> {
        self.send_json(&json!({
            "type": "user",
            "message": { "role": "user", "content": text },
            "parent_tool_use_id": null,
            "session_id": "default",
        }))
        .await
    }

    /// Sends a control request (`request` is the inner object, e.g. `{"subtype":"interrupt"}`)
    /// and returns its fresh `request_id`.
    ///
    /// # Cancel safety
    /// Not cancel safe (see [`CliProcess::send_json`]).
    pub async fn send_control(&mut self, request: Value) -> Result<String, RealCliError> {
        self.next_id += 1;
        let id = format!(
            "req_{}_{}",
            self.next_id,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        self.send_json(&json!({
            "type": "control_request",
            "request_id": id,
            "request": request,
        }))
        .await?;
        Ok(id)
    }

    /// Sends `initialize` (no hooks) and waits for its `control_response`; returns that line.
    ///
    /// # Cancel safety
    /// Not cancel safe.
    pub async fn initialize(&mut self, timeout: Duration) -> Result<Value, RealCliError> {
        let id = self
            .send_control(json!({ "subtype": "initialize", "hooks": null }))
            .await?;
        self.wait_control_response(&id, timeout).await
    }

    /// Sends an `interrupt` control request; returns its `request_id`.
    ///
    /// # Cancel safety
    /// Not cancel safe.
    pub async fn interrupt(&mut self) -> Result<String, RealCliError> {
        self.send_control(json!({ "subtype": "interrupt" })).await
    }

    /// Reads until the `control_response` for `request_id`; returns it.
    ///
    /// # Cancel safety
    /// Cancel safe: lines read before cancellation stay in [`CliProcess::seen`].
    pub async fn wait_control_response(
        &mut self,
        request_id: &str,
        timeout: Duration,
    ) -> Result<Value, RealCliError> {
        let lines = self
            .read_until(timeout, |v| {
                v["type"] == "control_response" && v["response"]["request_id"] == request_id
            })
            .await?;
        Ok(lines.last().cloned().unwrap_or(Value::Null))
    }

    /// Reads the next JSON line, waiting at most `timeout`.
    ///
    /// # Cancel safety
    /// Cancel safe (a line is either fully read and returned, or not read).
    pub async fn next_json(&mut self, timeout: Duration) -> Result<Value, RealCliError> {
        let deadline = Instant::now() + timeout;
        self.next_json_until(deadline, "the next line").await
    }

    async fn next_json_until(
        &mut self,
        deadline: Instant,
        what: &str,
    ) -> Result<Value, RealCliError> {
        loop {
            let line = match tokio::time::timeout_at(deadline, self.stdout.next_line()).await {
                Err(_) => {
                    return Err(RealCliError::Timeout {
                        what: what.to_owned(),
                        stderr: self.stderr_tail(),
                        last_lines: self.last_lines(5),
                    });
                }
                Ok(Err(e)) => return Err(RealCliError::io("reading stdout", e)),
                Ok(Ok(None)) => {
                    let status =
                        tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
                    return Err(RealCliError::Closed {
                        what: what.to_owned(),
                        status: status.ok().and_then(Result::ok),
                        stderr: self.stderr_tail(),
                    });
                }
                Ok(Ok(Some(line))) => line,
            };
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(&line)
                .map_err(|source| RealCliError::BadJson { line, source })?;
            self.seen.push(value.clone());
            return Ok(value);
        }
    }

    /// Reads lines until one satisfies `pred`; returns every line read, the match last.
    ///
    /// # Cancel safety
    /// Cancel safe: lines read before cancellation stay in [`CliProcess::seen`].
    pub async fn read_until(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Vec<Value>, RealCliError> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            let value = self.next_json_until(deadline, "a matching line").await?;
            let done = pred(&value);
            out.push(value);
            if done {
                return Ok(out);
            }
        }
    }

    /// Reads one turn: every line up to and including the next `result`.
    ///
    /// # Cancel safety
    /// Cancel safe: lines read before cancellation stay in [`CliProcess::seen`].
    pub async fn read_turn(&mut self, timeout: Duration) -> Result<Vec<Value>, RealCliError> {
        self.read_until(timeout, |v| v["type"] == "result").await
    }

    fn last_lines(&self, n: usize) -> String {
        let start = self.seen.len().saturating_sub(n);
        self.seen[start..]
            .iter()
            .map(|v| {
                let s = v.to_string();
                if s.len() > 400 {
                    let mut cut = 400;
                    while !s.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    format!("{}…", &s[..cut])
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Closes its stdin (end of input: it finishes the running turn, then exits).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for exit until `deadline` while reading stdout (so a full pipe cannot block it).
    async fn wait_draining(&mut self, deadline: Instant) -> Option<ExitStatus> {
        let mut stdout_open = true;
        loop {
            tokio::select! {
                status = self.child.wait() => return status.ok(),
                line = self.stdout.next_line(), if stdout_open => match line {
                    Ok(Some(line)) => {
                        if let Ok(value) = serde_json::from_str(&line) {
                            self.seen.push(value);
                        }
                    }
                    _ => stdout_open = false,
                },
                _ = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    fn signal_group(&self, signal: Signal) {
        // ESRCH (group already empty) is the good case.
        let _ = killpg(Pid::from_raw(self.pid), signal);
    }

    /// Shuts down by the recipe: close stdin → wait `grace` → SIGTERM the group → wait `grace`
    /// → SIGKILL the group → reap. Then kills (and waits for) whatever is left of its group.
    ///
    /// # Cancel safety
    /// If the future is dropped, [`Drop`] still kills the group.
    pub async fn shutdown(mut self, grace: Duration) -> Result<Shutdown, RealCliError> {
        self.close_stdin();
        let mut stage = ShutdownStage::StdinClosed;
        let mut status = self.wait_draining(Instant::now() + grace).await;
        if status.is_none() {
            stage = ShutdownStage::Terminated;
            self.signal_group(Signal::SIGTERM);
            status = self.wait_draining(Instant::now() + grace).await;
        }
        let status = match status {
            Some(status) => status,
            None => {
                stage = ShutdownStage::Killed;
                self.signal_group(Signal::SIGKILL);
                self.child
                    .wait()
                    .await
                    .map_err(|e| RealCliError::io("reaping the CLI", e))?
            }
        };
        self.done = true;
        let mut leftovers = procs::in_group(self.pid);
        if !leftovers.is_empty() {
            self.signal_group(Signal::SIGKILL);
            let _ = procs::wait_group_empty_async(self.pid, Duration::from_secs(5)).await;
        }
        for stray in self.kill_marked() {
            if !leftovers.iter().any(|p| p.pid == stray.pid) {
                leftovers.push(stray);
            }
        }
        let _ = procs::wait_none_marked(&self.marker(), Duration::from_secs(5)).await;
        Ok(Shutdown {
            status,
            stage,
            leftovers,
        })
    }

    /// Kills the whole group with SIGKILL and reaps the CLI.
    ///
    /// # Cancel safety
    /// If the future is dropped, [`Drop`] still kills the group.
    pub async fn kill(mut self) -> Result<ExitStatus, RealCliError> {
        self.signal_group(Signal::SIGKILL);
        let status = self
            .child
            .wait()
            .await
            .map_err(|e| RealCliError::io("reaping the CLI", e))?;
        self.done = true;
        let _ = procs::wait_group_empty_async(self.pid, Duration::from_secs(5)).await;
        self.kill_marked();
        let _ = procs::wait_none_marked(&self.marker(), Duration::from_secs(5)).await;
        Ok(status)
    }
}

impl Drop for CliProcess {
    fn drop(&mut self) {
        if !self.done {
            self.signal_group(Signal::SIGKILL);
            // tokio reaps a dropped child in the background; try at once too.
            let _ = self.child.start_kill();
            let _ = self.child.try_wait();
        }
        self.kill_marked();
    }
}

/// pidfds (Linux ≥ 5.3): a handle on one process that a reused pid cannot alias.
mod pidfd {
    use std::os::fd::{FromRawFd, OwnedFd};

    use nix::libc;

    pub(super) fn open(pid: i32) -> Option<OwnedFd> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        #[allow(unsafe_code)]
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        // SAFETY: a fresh descriptor owned by nobody else.
        #[allow(unsafe_code)]
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }

    /// SIGKILL to exactly that process; false if it had exited.
    pub(super) fn kill(fd: &OwnedFd) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: pidfd_send_signal with a null siginfo reads no memory of ours.
        #[allow(unsafe_code)]
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        r == 0
    }
}

/// The `result` line of a turn's lines.
pub fn result_of(lines: &[Value]) -> Option<&Value> {
    lines.iter().rev().find(|v| v["type"] == "result")
}

/// The text blocks of the `assistant` lines, in order.
pub fn assistant_texts(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|v| v["type"] == "assistant")
        .filter_map(|v| v["message"]["content"].as_array())
        .flatten()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str().map(str::to_owned))
        .collect()
}

/// The `session_id` of the first line that has one.
pub fn session_id_of(lines: &[Value]) -> Option<String> {
    lines
        .iter()
        .find_map(|v| v["session_id"].as_str().map(str::to_owned))
}

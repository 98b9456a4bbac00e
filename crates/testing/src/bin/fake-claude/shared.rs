//! State shared by the stdin reader (main thread), the turn worker and the signal thread.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use claude_testing::fake_claude::Scenario;
use serde_json::Value;

use crate::args::Args;
use crate::procs;

/// Lock a mutex, ignoring poisoning (a panicking thread ends the process anyway).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Stdout, one JSON object per line.
pub(crate) struct Out {
    w: Mutex<BufWriter<File>>,
    /// Set by the hang fault: nothing is written any more.
    hung: AtomicBool,
}

impl Out {
    pub(crate) fn new() -> std::io::Result<Self> {
        // A dup of fd 1 as a File: block-buffered, no line buffering in the way of load mode.
        let fd = std::io::stdout().as_fd().try_clone_to_owned()?;
        Ok(Out {
            w: Mutex::new(BufWriter::with_capacity(1 << 16, File::from(fd))),
            hung: AtomicBool::new(false),
        })
    }

    pub(crate) fn hang(&self) {
        self.hung.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_hung(&self) -> bool {
        self.hung.load(Ordering::SeqCst)
    }

    /// Write one frame and flush.
    pub(crate) fn send(&self, v: &Value) {
        self.write(v, true);
    }

    /// Write one frame without flushing (load mode); call [`Out::flush`] at the end.
    pub(crate) fn send_buffered(&self, v: &Value) {
        self.write(v, false);
    }

    fn write(&self, v: &Value, flush: bool) {
        if self.is_hung() {
            return;
        }
        let mut w = lock(&self.w);
        // Write errors (reader gone) are ignored like a CLI whose reader vanished would.
        let _ = serde_json::to_writer(&mut *w, v);
        let _ = w.write_all(b"\n");
        if flush {
            let _ = w.flush();
        }
    }

    /// Write one raw line (the malformed-line fault) and flush.
    pub(crate) fn raw_line(&self, line: &str) {
        if self.is_hung() {
            return;
        }
        let mut w = lock(&self.w);
        let _ = w.write_all(line.as_bytes());
        let _ = w.write_all(b"\n");
        let _ = w.flush();
    }

    /// Write pre-built lines in one `write_all` and flush (replay mode). A buffer larger than the
    /// writer's capacity goes straight to the pipe, without a copy.
    pub(crate) fn raw_bytes(&self, bytes: &[u8]) {
        if self.is_hung() {
            return;
        }
        let mut w = lock(&self.w);
        let _ = w.write_all(bytes);
        let _ = w.flush();
    }

    pub(crate) fn flush(&self) {
        let _ = lock(&self.w).flush();
    }
}

/// The running turn's interrupt flag, with a condition variable so delays can be cut short.
#[derive(Default)]
pub(crate) struct TurnFlag {
    m: Mutex<TurnState>,
    cv: Condvar,
}

#[derive(Default)]
struct TurnState {
    running: bool,
    interrupted: bool,
}

impl TurnFlag {
    pub(crate) fn begin(&self) {
        let mut s = lock(&self.m);
        s.running = true;
        s.interrupted = false;
    }

    pub(crate) fn end(&self) {
        let mut s = lock(&self.m);
        s.running = false;
        s.interrupted = false;
    }

    /// Interrupt the running turn, if any. Returns whether one was running.
    pub(crate) fn interrupt(&self) -> bool {
        let mut s = lock(&self.m);
        if s.running {
            s.interrupted = true;
            self.cv.notify_all();
        }
        s.running
    }

    pub(crate) fn is_interrupted(&self) -> bool {
        lock(&self.m).interrupted
    }

    /// Sleep `d`, or less if interrupted. Returns whether the turn is interrupted.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut s = lock(&self.m);
        while !s.interrupted {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            s = self
                .cv
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        s.interrupted
    }
}

/// A hook matcher registered by `initialize`.
#[derive(Debug, Clone)]
pub(crate) struct HookMatcher {
    pub(crate) matcher: Option<String>,
    pub(crate) ids: Vec<String>,
    pub(crate) timeout: Option<Duration>,
}

impl HookMatcher {
    pub(crate) fn matches(&self, tool: Option<&str>) -> bool {
        match (self.matcher.as_deref(), tool) {
            (None | Some("" | "*"), _) => true,
            (Some(_), None) => true,
            (Some(m), Some(t)) => m.split('|').any(|p| p.trim() == t),
        }
    }
}

/// What control requests change.
pub(crate) struct Ctl {
    pub(crate) model: String,
    pub(crate) permission_mode: String,
    pub(crate) hooks: BTreeMap<String, Vec<HookMatcher>>,
    pub(crate) session_id: String,
}

/// Everything the threads share.
pub(crate) struct Shared {
    pub(crate) out: Out,
    pub(crate) args: Args,
    pub(crate) scenario: Scenario,
    pub(crate) start: u32,
    pub(crate) ctl: Mutex<Ctl>,
    pub(crate) turn: TurnFlag,
    /// Requests we sent (can_use_tool, hook_callback) waiting for the runtime's answer.
    pub(crate) pending: Mutex<HashMap<String, mpsc::Sender<Value>>>,
    /// The process of the running tool, killed with its tree on interrupt or exit.
    pub(crate) tool_pid: Mutex<Option<u32>>,
    pub(crate) ignore_sigterm: AtomicBool,
}

impl Shared {
    pub(crate) fn kill_tool(&self) {
        if let Some(pid) = *lock(&self.tool_pid) {
            procs::kill_tree(pid);
        }
    }

    /// Exit now: kill the running tool's tree, flush stdout, exit with `code`.
    pub(crate) fn exit(&self, code: i32) -> ! {
        self.kill_tool();
        self.out.flush();
        std::process::exit(code)
    }

    /// Write a fatal message on stderr and exit.
    pub(crate) fn fatal(&self, code: i32, msg: &str) -> ! {
        let mut e = std::io::stderr();
        let _ = writeln!(e, "{msg}");
        let _ = e.flush();
        self.exit(code)
    }
}

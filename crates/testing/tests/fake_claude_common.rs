//! Shared driver of the `fake-claude` tests (included by the other `fake_claude_*` tests with
//! `#[path]`; built alone it only checks its own helpers).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};

/// Upper bound for anything expected to happen; only reached when a test fails.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// The two-way flags the runtime passes.
pub(crate) const TWO_WAY: &[&str] = &[
    "--output-format",
    "stream-json",
    "--verbose",
    "--input-format",
    "stream-json",
];

/// A temp dir holding `home/` (HOME) and `work/` (the cwd).
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        std::fs::create_dir_all(dir.path().join("work")).expect("work");
        Env { dir }
    }
    pub(crate) fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    pub(crate) fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// One `fake-claude` child in its own process group, killed (group-wide) on drop.
pub(crate) struct Fake {
    pub(crate) child: Child,
    pub(crate) pgid: i32,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_done: mpsc::Receiver<()>,
}

impl Fake {
    /// Spawn with the two-way flags plus `extra`, HOME and cwd from `env`, and `vars`.
    pub(crate) fn spawn(env: &Env, extra: &[&str], vars: &[(String, String)]) -> Fake {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fake-claude"));
        cmd.args(TWO_WAY)
            .args(extra)
            .current_dir(env.work())
            .env("HOME", env.home())
            .env_remove("CLAUDE_CONFIG_DIR")
            .env_remove("FAKE_CLAUDE_SCENARIO")
            .env_remove("FAKE_CLAUDE_SCENARIO_FILE")
            .env_remove("FAKE_CLAUDE_STATE_DIR")
            .env_remove("FAKE_CLAUDE_RECORD_DIR")
            .env_remove("FAKE_CLAUDE_LOAD_FRAMES")
            .envs(vars.iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().expect("spawn fake-claude");
        let pgid = i32::try_from(child.id()).expect("pid");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::with_capacity(1 << 20, stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if buf.ends_with(b"\n") {
                            buf.pop();
                        }
                        if tx.send(String::from_utf8_lossy(&buf).into_owned()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let mut err = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, stderr_done) = mpsc::channel();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 65536];
            while let Ok(n) = err.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("stderr lock")
                    .extend_from_slice(&chunk[..n]);
            }
            let _ = done_tx.send(());
        });
        let stdin = child.stdin.take();
        Fake {
            child,
            pgid,
            stdin,
            lines,
            stderr,
            stderr_done,
        }
    }

    pub(crate) fn send(&mut self, v: &Value) {
        let line = serde_json::to_string(v).expect("json");
        self.send_raw(&line);
    }

    pub(crate) fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        // The child may already have exited on fatal input: a broken pipe is not our failure.
        let _ = stdin.write_all(line.as_bytes());
        let _ = stdin.write_all(b"\n");
        let _ = stdin.flush();
    }

    pub(crate) fn user(&mut self, text: &str) {
        self.send(&json!({"type": "user", "message": {"role": "user", "content": text}, "parent_tool_use_id": null, "session_id": "default"}));
    }

    pub(crate) fn control(&mut self, id: &str, request: Value) {
        self.send(&json!({"type": "control_request", "request_id": id, "request": request}));
    }

    /// Send `initialize` (with `hooks`) and return the success payload.
    pub(crate) fn initialize(&mut self, hooks: Value) -> Value {
        self.control("init_1", json!({"subtype": "initialize", "hooks": hooks}));
        let resp = self
            .until(|v| v["type"] == "control_response" && v["response"]["request_id"] == "init_1");
        let last = resp.last().expect("initialize answered");
        assert_eq!(last["response"]["subtype"], "success", "{last}");
        last["response"]["response"].clone()
    }

    /// Send `initialize` without waiting for the answer.
    pub(crate) fn initialize_no_wait(&mut self) {
        self.control("init_1", json!({"subtype": "initialize", "hooks": null}));
    }

    pub(crate) fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// The next stdout line, raw. Panics after [`PATIENCE`].
    pub(crate) fn next_line(&self) -> String {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(l) => l,
            Err(e) => panic!(
                "no stdout line from fake-claude ({e:?}); stderr: {}",
                self.stderr()
            ),
        }
    }

    /// The next stdout line within `wait`, if any (`None` also at end of output).
    pub(crate) fn try_line(&self, wait: Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }

    /// The next stdout line, parsed.
    pub(crate) fn next(&self) -> Value {
        let l = self.next_line();
        serde_json::from_str(&l)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l:.200}"))
    }

    /// Frames up to and including the first one matching `pred`.
    pub(crate) fn until(&self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let v = self.next();
            let stop = pred(&v);
            out.push(v);
            if stop {
                return out;
            }
        }
    }

    /// Frames of one turn, up to and including its `result`.
    pub(crate) fn until_result(&self) -> Vec<Value> {
        self.until(|v| v["type"] == "result")
    }

    /// All remaining stdout lines until end of output.
    pub(crate) fn rest(&self) -> Vec<String> {
        let mut out = Vec::new();
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => out.push(l),
                Err(mpsc::RecvTimeoutError::Disconnected) => return out,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        panic!("stdout never closed; got {} lines", out.len());
    }

    /// What fake-claude wrote to stderr so far (its reader thread may still be behind the
    /// process: after `wait`, call [`wait_stderr_closed`](Self::wait_stderr_closed) first).
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr lock")).into_owned()
    }

    pub(crate) fn stderr_len(&self) -> usize {
        self.stderr.lock().expect("stderr lock").len()
    }

    /// Wait until stderr is closed (the process and all holders of the pipe are gone).
    pub(crate) fn wait_stderr_closed(&self) {
        self.stderr_done
            .recv_timeout(PATIENCE)
            .expect("stderr closed");
    }

    /// Wait for the exit. Panics after [`PATIENCE`].
    pub(crate) fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "fake-claude did not exit; stderr: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the process has exited, checked now.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    pub(crate) fn signal(&self, sig: Signal) {
        nix::sys::signal::kill(Pid::from_raw(self.pgid), sig).expect("kill");
    }

    pub(crate) fn kill_group(&mut self) {
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.kill_group();
        // Nothing of the group may survive the test.
        let deadline = Instant::now() + PATIENCE;
        while !live_in_group(self.pgid).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = live_in_group(self.pgid);
        if !left.is_empty() && !std::thread::panicking() {
            panic!("processes survived in group {}: {left:?}", self.pgid);
        }
    }
}

/// `(pid, state)` of the processes of group `pgid` that are not zombies.
pub(crate) fn live_in_group(pgid: i32) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.filter_map(Result::ok) {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[0] state, f[1] ppid, f[2] pgrp
        let state = f.first().and_then(|s| s.chars().next()).unwrap_or('?');
        if f.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid) && state != 'Z' {
            out.push((pid, state));
        }
    }
    out
}

/// Whether process `pid` exists and is not a zombie.
pub(crate) fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| s[i + 1..].trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

/// Frames of `frames` with `type` (and `subtype` when given).
pub(crate) fn of_type<'a>(frames: &'a [Value], ty: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["type"] == ty).collect()
}

/// The text of the assistant text blocks.
pub(crate) fn assistant_texts(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["type"] == "assistant")
        .flat_map(|f| {
            f["message"]["content"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str().map(str::to_owned))
        .collect()
}

pub(crate) fn file_text(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

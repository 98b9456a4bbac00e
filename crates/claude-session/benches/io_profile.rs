//! One turn through a `Session`, or through the floor (read lines, `serde_json::from_slice::<Value>`
//! each), for counting instructions under callgrind: `scripts/io_instructions.sh` runs this under
//! `valgrind --tool=callgrind` at two turn sizes and reports the difference per frame, so start-up
//! costs cancel out.
//!
//! Valgrind 3.19 does not know `pidfd_open`, which every containment mechanism uses, so the
//! session here runs its CLI through [`PlainLauncher`]: a bare `tokio::process` child signalled by
//! pid (fine for a profile; never for real use). The I/O path measured — framing, parsing, routing,
//! the caller's stream — is the session's own.
//!
//! `io_profile ours|floor <turn file>` with `FAKE_CLAUDE_BIN` set (fake-claude replays the turn
//! file, `FAKE_CLAUDE_REPLAY`). Prints the frames read.
#![allow(missing_docs)]

use std::io;
use std::path::PathBuf;
use std::process::Stdio;

use claude_protocol::{ClaudeOptions, CommandSpec};
use claude_session::{
    GroupSignal, GroupSignaller, LaunchError, LaunchedProcess, Launcher, Session, SessionConfig,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const USER_LINE: &[u8] =
    b"{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":\"bench\"},\"parent_tool_use_id\":null,\"session_id\":\"\"}\n";

#[derive(Debug)]
struct PlainLauncher;

#[derive(Debug)]
struct PlainSignaller(i32);

impl GroupSignaller for PlainSignaller {
    fn signal(&self, signal: GroupSignal) -> io::Result<()> {
        let signal = match signal {
            GroupSignal::Terminate => nix::sys::signal::Signal::SIGTERM,
            _ => nix::sys::signal::Signal::SIGKILL,
        };
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(io::Error::from(e)),
        }
    }
}

impl Launcher for PlainLauncher {
    fn launch<'a>(
        &'a self,
        spec: &'a CommandSpec,
    ) -> BoxFuture<'a, Result<LaunchedProcess, LaunchError>> {
        Box::pin(async move {
            let mut cmd = tokio::process::Command::new(&spec.program);
            cmd.args(&spec.args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            if spec.env_clear {
                cmd.env_clear();
            }
            for k in &spec.env_remove {
                cmd.env_remove(k);
            }
            cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
            if let Some(dir) = &spec.cwd {
                cmd.current_dir(dir);
            }
            let mut child = cmd.spawn().map_err(|source| LaunchError::Spawn {
                program: spec.program.display().to_string(),
                source,
            })?;
            let pid = child.id();
            Ok(LaunchedProcess {
                stdin: Box::pin(child.stdin.take().expect("piped")),
                stdout: Box::pin(child.stdout.take().expect("piped")),
                stderr: Box::pin(child.stderr.take().expect("piped")),
                pid,
                signaller: std::sync::Arc::new(PlainSignaller(pid.unwrap_or(0) as i32)),
                exit: Box::pin(async move { child.wait().await }),
            })
        })
    }
}

fn fake() -> PathBuf {
    std::env::var_os("FAKE_CLAUDE_BIN")
        .map(PathBuf::from)
        .expect("FAKE_CLAUDE_BIN")
}

async fn ours(turn: &str) -> u64 {
    let home = tempfile::tempdir().expect("home");
    let options = ClaudeOptions::builder()
        .env("HOME", home.path().as_os_str())
        .env("FAKE_CLAUDE_REPLAY", turn)
        .build()
        .expect("options");
    let config = SessionConfig::builder("profile", fake())
        .options(options)
        .launcher(PlainLauncher)
        .build()
        .expect("config");
    let session = Session::start(config).await.expect("start");
    let mut stream = session.query("bench").await.expect("query");
    let mut frames = 0;
    while let Some(frame) = stream.next().await {
        frame.expect("frame");
        frames += 1;
    }
    session.stop().await.expect("stop");
    frames
}

async fn floor(turn: &str) -> u64 {
    let home = tempfile::tempdir().expect("home");
    let mut child = tokio::process::Command::new(fake())
        .args([
            "--output-format",
            "stream-json",
            "--verbose",
            "--input-format",
            "stream-json",
        ])
        .env("HOME", home.path())
        .env("FAKE_CLAUDE_REPLAY", turn)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    stdin.write_all(USER_LINE).await.expect("write");
    stdin.flush().await.expect("flush");
    let mut line = Vec::with_capacity(4096);
    let mut frames = 0;
    loop {
        line.clear();
        let n = out.read_until(b'\n', &mut line).await.expect("read");
        assert!(n > 0, "closed after {frames} lines");
        let v: Value = serde_json::from_slice(&line).expect("JSON");
        frames += 1;
        if v.get("type").and_then(Value::as_str) == Some("result") {
            break;
        }
    }
    drop(stdin);
    let _ = child.wait().await;
    frames
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let which = args.next().expect("ours|floor");
    let turn = args.next().expect("a turn file");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let frames = rt.block_on(async {
        match which.as_str() {
            "ours" => ours(&turn).await,
            "floor" => floor(&turn).await,
            other => panic!("unknown contender {other}"),
        }
    });
    println!("{which}: {frames} frames");
}

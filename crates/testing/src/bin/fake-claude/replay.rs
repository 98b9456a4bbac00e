//! Replay mode (`FAKE_CLAUDE_REPLAY=<file>`): an emitter that is not the bottleneck.
//!
//! The file holds one pre-built turn (JSON lines ending in a `result`). At start the whole file is
//! read into memory, before stdin is read, so no contender's clock ever includes it; control
//! requests are answered as in the other modes; each user line is answered with the file's bytes
//! in one `write_all` (as fast as the pipe takes them). No frame is serialised per turn, so the
//! reader, not this process, is what a benchmark measures — the load mode's per-frame
//! `serde_json` serialisation tops out near 100k frames/s, below what a fast reader sustains.

use std::io::BufRead;
use std::path::Path;

use serde_json::Value;

use crate::shared::Shared;

/// Environment variable selecting replay mode: the path of the turn file.
pub(crate) const ENV_REPLAY: &str = "FAKE_CLAUDE_REPLAY";

/// Grows the pipe on stdout (when it is one) to 1 MiB, the unprivileged maximum: with the
/// default 64 KiB a 50 MB turn takes ~800 wake-ups of the reader, and the emitter's ceiling, not
/// the reader, would bound a fast reader. Failure only leaves the default.
pub(crate) fn widen_stdout_pipe() {
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    let _ = nix::fcntl::fcntl(stdout.as_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
}

/// Read the turn file: it must be non-empty and is given a final newline if it lacks one.
pub(crate) fn load(path: &Path) -> Result<Vec<u8>, String> {
    let mut turn = std::fs::read(path).map_err(|e| {
        format!(
            "fake-claude: cannot read replay file {}: {e}",
            path.display()
        )
    })?;
    if turn.iter().all(u8::is_ascii_whitespace) {
        return Err(format!(
            "fake-claude: replay file {} holds no frames",
            path.display()
        ));
    }
    if !turn.ends_with(b"\n") {
        turn.push(b'\n');
    }
    Ok(turn)
}

/// The replay loop on the main thread: control requests answered, each user line answered with
/// `turn`; end of input exits 0.
pub(crate) fn run(sh: &Shared, turn: &[u8]) -> ! {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => sh.exit(0),
            Ok(_) => {}
            Err(e) => sh.fatal(1, &format!("Error reading stdin: {e}")),
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v: Value = match serde_json::from_slice(&buf) {
            Ok(v) => v,
            Err(e) => sh.fatal(
                1,
                &format!(
                    "Error parsing streaming input line: {}: {e}",
                    String::from_utf8_lossy(&buf).trim()
                ),
            ),
        };
        match v["type"].as_str() {
            Some("user") => sh.out.raw_bytes(turn),
            Some("control_request") => crate::control(sh, &v),
            // Answers to our requests (we send none here), keep_alive, unknown types: ignored.
            _ => {}
        }
    }
}

//! `fake-claude`: a scripted fake of the Claude Code CLI (2.1.329, or the shape of 2.1.332 when
//! the scenario's `cli_version` says so; two-way `stream-json` mode, and `--version`).
//!
//! Spawn it like the real CLI; select behaviour with the environment (see
//! `claude_testing::fake_claude`). Threads: the main thread reads stdin (recording it, answering
//! control requests, routing answers to our requests, queueing user lines); a worker thread runs
//! the turns one after the other; a signal thread turns SIGTERM into exit 143.
//!
//! Replay mode (`FAKE_CLAUDE_REPLAY=<file>`, see `fake-claude/replay.rs`) skips the scripted
//! turns: every user line is answered with the file's pre-built turn in one write, for benchmarks
//! whose reader must be the limit, not the emitter.
//!
//! With `--await-claim` (see `fake-claude/spare.rs`) it starts as a pre-warmed spare: it announces
//! its session id, stays parked until a `claim_session` control request binds it to a
//! directory, and then runs turns there.

#[path = "fake-claude/args.rs"]
mod args;
#[path = "fake-claude/frames.rs"]
mod frames;
#[path = "fake-claude/procs.rs"]
mod procs;
#[path = "fake-claude/replay.rs"]
mod replay;
#[path = "fake-claude/session.rs"]
mod session;
#[path = "fake-claude/shared.rs"]
mod shared;
#[path = "fake-claude/spare.rs"]
mod spare;
#[path = "fake-claude/turn.rs"]
mod turn;

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use claude_testing::fake_claude::{
    DEFAULT_MODEL, ENV_RECORD_DIR, ENV_STATE_DIR, Fault, Scenario, claim_start_number,
    config_dir_from_env,
};
use serde_json::{Value, json};

use crate::args::Args;
use crate::session::{Session, Start};
use crate::shared::{Ctl, HookMatcher, Out, Shared, TurnFlag, lock};

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let mut args = Args::parse(argv);
    let scenario = match Scenario::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-claude: {e}");
            std::process::exit(2);
        }
    };
    if args.version {
        // Like the real CLI: one line, exit 0; no start is counted, nothing is recorded.
        println!("{} (Claude Code)", scenario.version());
        std::process::exit(0);
    }
    let start = match std::env::var_os(ENV_STATE_DIR).filter(|d| !d.is_empty()) {
        Some(dir) => claim_start_number(Path::new(&dir)).unwrap_or_else(|e| {
            eprintln!(
                "fake-claude: cannot count starts in {}: {e}",
                Path::new(&dir).display()
            );
            std::process::exit(2);
        }),
        None => 1,
    };
    let mut recorder = std::env::var_os(ENV_RECORD_DIR)
        .filter(|d| !d.is_empty())
        .and_then(|d| record_start(Path::new(&d), &args.argv));

    let out = match Out::new() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("fake-claude: cannot use stdout: {e}");
            std::process::exit(2);
        }
    };
    let model = args
        .model
        .clone()
        .or_else(|| scenario.model.clone())
        .unwrap_or_else(|| DEFAULT_MODEL.to_owned());
    let permission_mode = args
        .permission_mode
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    let mut cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    if args.await_claim && args.session_id.is_none() {
        // A spare knows its session id from the start (the claim answers it).
        args.session_id = Some(frames::new_uuid());
    }

    let start_faults: Vec<Fault> = scenario.start_faults(start).into_iter().cloned().collect();
    let sh = Arc::new(Shared {
        out,
        args,
        scenario,
        start,
        ctl: Mutex::new(Ctl {
            model,
            permission_mode,
            hooks: BTreeMap::new(),
            session_id: String::new(),
        }),
        turn: TurnFlag::default(),
        pending: Mutex::new(HashMap::new()),
        tool_pid: Mutex::new(None),
        ignore_sigterm: AtomicBool::new(false),
    });
    install_sigterm(&sh);

    if let Some(path) = std::env::var_os(replay::ENV_REPLAY).filter(|p| !p.is_empty()) {
        // Read before stdin: the first user line is answered from memory.
        match replay::load(Path::new(&path)) {
            Ok(turn) => {
                replay::widen_stdout_pipe();
                replay::run(&sh, &turn)
            }
            Err(e) => sh.fatal(2, &e),
        }
    }

    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut buf = Vec::new();
    if sh.args.await_claim {
        spare::check_flags(&sh);
        let id = sh.args.session_id.clone().unwrap_or_default();
        lock(&sh.ctl).session_id = id.clone();
        spare::announce(&sh, &id);
        let parked_at = std::time::Instant::now();
        loop {
            let Some(v) = next_input(&sh, &mut input, &mut buf, &mut recorder) else {
                sh.exit(0)
            };
            if let spare::Parked::Claimed(dir) = spare::on_line(&sh, &v, &id, parked_at, control) {
                // The claimed directory is the session's: its tools run there, its file is
                // written under its project folder.
                let _ = std::env::set_current_dir(&dir);
                cwd = dir;
                break;
            }
        }
    }

    let mut refuse_resume = false;
    for f in &start_faults {
        match f {
            Fault::ExitBeforeInit { exit_code, stderr } => sh.fatal(*exit_code, stderr),
            Fault::Hang => sh.out.hang(),
            Fault::StubbornGrandchild {
                fake_ignores_sigterm,
            } => spawn_grandchild(&sh, *fake_ignores_sigterm),
            Fault::IgnoreSigterm => sh.ignore_sigterm.store(true, Ordering::SeqCst),
            Fault::RefuseResume => refuse_resume = true,
            _ => {}
        }
    }

    let started = Session::start(config_dir_from_env(), cwd.clone(), &sh.args, refuse_resume);
    let (session, not_found) = match started {
        Start::Ready(s) => (s, None),
        Start::NotFound(id) => (Session::detached(cwd.clone()), Some(id)),
        Start::InUse(id) => sh.fatal(1, &format!("Error: Session ID {id} is already in use.")),
    };
    lock(&sh.ctl).session_id = not_found.clone().unwrap_or_else(|| session.id.clone());

    let (tx, rx) = mpsc::channel::<Value>();
    let worker = turn::Worker::new(
        Arc::clone(&sh),
        session,
        not_found,
        cwd.to_string_lossy().into_owned(),
    );
    let worker = std::thread::spawn(move || worker.run(rx));

    let mut users = 0u32;
    while let Some(v) = next_input(&sh, &mut input, &mut buf, &mut recorder) {
        match v["type"].as_str() {
            Some("user") => {
                if !v["message"].is_object() {
                    sh.fatal(
                        1,
                        "Error: Expected message to have a \"message\" field of type object",
                    );
                }
                if v["message"]["role"] != "user" {
                    sh.fatal(
                        1,
                        &format!(
                            "Error: Expected message role 'user', got '{}'",
                            v["message"]["role"]
                        ),
                    );
                }
                users += 1;
                // A hang keyed on this turn starts as its user line arrives (so no control
                // answer slips out between the line and the turn).
                if sh
                    .scenario
                    .turn_faults(sh.start, users)
                    .iter()
                    .any(|f| matches!(f, Fault::Hang))
                {
                    sh.out.hang();
                }
                let _ = tx.send(v);
            }
            Some("control_request") => control(&sh, &v),
            Some("control_response") => {
                let resp = &v["response"];
                let id = resp["request_id"].as_str().unwrap_or_default();
                if let Some(waiter) = lock(&sh.pending).get(id) {
                    let _ = waiter.send(resp.clone());
                }
            }
            // control_cancel_request, keep_alive, unknown types: ignored.
            _ => {}
        }
    }

    // End of input: finish the running and queued turns, then exit.
    drop(tx);
    lock(&sh.pending).clear();
    let last_is_error = worker.join().unwrap_or(true);
    if sh.out.is_hung() {
        loop {
            std::thread::park();
        }
    }
    sh.exit(i32::from(last_is_error));
}

/// The next JSON line of stdin (blank lines skipped; each line recorded when recording); `None`
/// at end of input. A line that is not JSON is fatal, as in the real CLI.
fn next_input(
    sh: &Shared,
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    recorder: &mut Option<File>,
) -> Option<Value> {
    loop {
        buf.clear();
        match input.read_until(b'\n', buf) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => sh.fatal(1, &format!("Error reading stdin: {e}")),
        }
        if let Some(r) = recorder.as_mut() {
            let _ = r.write_all(buf);
            if !buf.ends_with(b"\n") {
                let _ = r.write_all(b"\n");
            }
            let _ = r.flush();
        }
        let Ok(line) = std::str::from_utf8(buf) else {
            sh.fatal(1, "Error parsing streaming input line: invalid UTF-8")
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        return match serde_json::from_str(line) {
            Ok(v) => Some(v),
            Err(e) => sh.fatal(
                1,
                &format!("Error parsing streaming input line: {line}: {e}"),
            ),
        };
    }
}

/// Create `<dir>/<n>/` (first free n), write argv, env and pid; return the stdin recording file.
fn record_start(dir: &Path, argv: &[String]) -> Option<File> {
    std::fs::create_dir_all(dir).ok()?;
    let mut n = 1u32;
    let sub = loop {
        let sub = dir.join(n.to_string());
        match std::fs::create_dir(&sub) {
            Ok(()) => break sub,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(_) => return None,
        }
    };
    let env: BTreeMap<String, String> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let _ = std::fs::write(
        sub.join("argv.json"),
        serde_json::to_vec(argv).unwrap_or_default(),
    );
    let _ = std::fs::write(
        sub.join("env.json"),
        serde_json::to_vec(&env).unwrap_or_default(),
    );
    let _ = std::fs::write(sub.join("pid"), std::process::id().to_string());
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(sub.join("stdin.jsonl"))
        .ok()
}

/// SIGTERM → exit 143 (unless a fault says to ignore it). A handler, not a blocked mask, so the
/// tool's children keep the default disposition.
fn install_sigterm(sh: &Arc<Shared>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => sh.fatal(2, &format!("fake-claude: tokio runtime: {e}")),
    };
    let sig = {
        let _guard = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    };
    let mut sig = match sig {
        Ok(s) => s,
        Err(e) => sh.fatal(2, &format!("fake-claude: SIGTERM handler: {e}")),
    };
    let sh = Arc::clone(sh);
    std::thread::spawn(move || {
        rt.block_on(async {
            while sig.recv().await.is_some() {
                if !sh.ignore_sigterm.load(Ordering::SeqCst) {
                    sh.exit(143);
                }
            }
        });
    });
}

/// The stubborn-grandchild fault: a shell in our process group that ignores SIGTERM.
pub(crate) fn spawn_grandchild(sh: &Shared, fake_ignores_sigterm: bool) {
    if fake_ignores_sigterm {
        sh.ignore_sigterm.store(true, Ordering::SeqCst);
    }
    let child = Command::new("sh")
        .args(["-c", "trap '' TERM; while :; do sleep 1; done"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(c) => {
            eprintln!("fake-claude: grandchild pid {}", c.id());
            // Give the shell time to install its trap before anyone signals the group.
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(e) => eprintln!("fake-claude: cannot spawn grandchild: {e}"),
    }
}

pub(crate) fn respond(sh: &Shared, request_id: &Value, response: Value) {
    sh.out.send(&json!({
        "type": "control_response",
        "response": {"subtype": "success", "request_id": request_id, "response": response},
    }));
}

/// Answer a control request from the runtime (on the main thread: all of these are quick).
fn control(sh: &Shared, v: &Value) {
    let id = &v["request_id"];
    let req = &v["request"];
    let subtype = req["subtype"].as_str().unwrap_or_default();
    match subtype {
        "initialize" => {
            let mut hooks = BTreeMap::new();
            if let Some(map) = req["hooks"].as_object() {
                for (event, list) in map {
                    let matchers = list
                        .as_array()
                        .map(|l| {
                            l.iter()
                                .map(|m| HookMatcher {
                                    matcher: m["matcher"].as_str().map(str::to_owned),
                                    ids: m["hookCallbackIds"]
                                        .as_array()
                                        .map(|ids| {
                                            ids.iter()
                                                .filter_map(|i| i.as_str().map(str::to_owned))
                                                .collect()
                                        })
                                        .unwrap_or_default(),
                                    timeout: m["timeout"]
                                        .as_f64()
                                        .filter(|t| *t > 0.0)
                                        .map(Duration::from_secs_f64),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    hooks.insert(event.clone(), matchers);
                }
            }
            let (model, mode) = {
                let mut c = lock(&sh.ctl);
                c.hooks = hooks;
                (c.model.clone(), c.permission_mode.clone())
            };
            respond(
                sh,
                id,
                frames::initialize_response(sh.scenario.version(), &model, &mode),
            );
        }
        "interrupt" => {
            respond(sh, id, json!({"still_queued": []}));
            if sh.turn.interrupt() {
                sh.kill_tool();
            }
        }
        "set_model" => {
            let model = req["model"].as_str().unwrap_or(DEFAULT_MODEL).to_owned();
            lock(&sh.ctl).model = model.clone();
            respond(sh, id, json!({"model": model}));
        }
        "set_permission_mode" => {
            let mode = req["mode"].as_str().unwrap_or("default").to_owned();
            let sid = {
                let mut c = lock(&sh.ctl);
                c.permission_mode = mode.clone();
                c.session_id.clone()
            };
            respond(sh, id, json!({"mode": mode}));
            sh.out.send(&json!({
                "type": "system", "subtype": "status", "status": null, "permissionMode": mode,
                "uuid": frames::new_uuid(), "session_id": sid,
            }));
        }
        "mcp_status" => respond(sh, id, json!({"mcpServers": []})),
        "claim_session" => spare::refuse(sh, id, spare::NOT_A_SPARE),
        "get_context_usage" => respond(sh, id, frames::context_usage(0)),
        other => sh.out.send(&json!({
            "type": "control_response",
            "response": {
                "subtype": "error",
                "request_id": id,
                "error": format!("Unsupported control request subtype: {other}"),
                "error_code": "unsupported_request",
            },
        })),
    }
}

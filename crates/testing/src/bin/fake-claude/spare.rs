//! `--await-claim`: a pre-warmed spare, as the real CLI (2.1.329, 2.1.332) behaves — see
//! `docs/warm-spares.md`, where each rule below was measured.
//!
//! - Refused with `--resume`, `--continue` or `--fork-session` (exit 1).
//! - At start it prints one `system`/`ui_invalidate` line carrying the session id the claim will
//!   answer (the `--session-id` when one was given), then waits.
//! - Parked, it answers `initialize`; any other control request gets a `not_claimed` error, and
//!   a user line a `result` with `error_during_execution` and `not_claimed` (it stays parked).
//! - `claim_session` checks `cwd` (required, absolute, an existing directory), `system_prompt`
//!   (an array), `env` (only the three claimable keys) and `permission_mode` (a known mode;
//!   `bypassPermissions` only when spawned with the dangerous flag); a refusal leaves it parked.
//!   Accepted, it answers `{status, cwd, session_id, parked_ms, sdk_mcp_settled}` (plus an
//!   `initialize` payload with `include_initialize`) and becomes a normal session in that
//!   directory. A second claim, or a claim on a normal process, gets `not_a_spare`.
//! - End of input while parked: exit 0.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};

use crate::frames;
use crate::shared::{Shared, lock};

/// The env keys a claim may carry; everything else is read at start-up.
const CLAIMABLE_ENV: &[&str] = &[
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_SESSION_ACCESS_TOKEN",
    "CLAUDE_CODE_HOST_SESSION_ID",
];

const MODES: &[&str] = &[
    "acceptEdits",
    "auto",
    "bypassPermissions",
    "default",
    "dontAsk",
    "plan",
];

pub(crate) const NOT_A_SPARE: &str = "not_a_spare: claim_session is only accepted by a process started with --await-claim that has not been claimed yet";
const NOT_CLAIMED_REQUEST: &str = "not_claimed: this process is a spare waiting for claim_session; send this request after the claim";
const NOT_CLAIMED_MESSAGE: &str = "not_claimed: this process was started with --await-claim and has not been claimed; send claim_session before the first message";

/// Exits like the real CLI when `--await-claim` comes with a resume flag.
pub(crate) fn check_flags(sh: &Shared) {
    let a = &sh.args;
    if a.resume.is_some() || a.continue_session || a.fork_session {
        sh.fatal(
            1,
            "Error: --await-claim cannot be combined with --continue, --resume or --fork-session.",
        );
    }
}

/// The spare's announcement: one `ui_invalidate` line with its session id.
pub(crate) fn announce(sh: &Shared, session_id: &str) {
    sh.out.send(&json!({
        "type": "system", "subtype": "ui_invalidate", "event": "ui.render",
        "uuid": frames::new_uuid(), "session_id": session_id,
    }));
}

/// What one input line does to a parked spare.
pub(crate) enum Parked {
    /// Still parked.
    Waiting,
    /// Claimed: the session's directory.
    Claimed(PathBuf),
}

/// Handles one input line of a parked spare. `initialize` goes to `initialize`.
pub(crate) fn on_line(
    sh: &Shared,
    v: &Value,
    session_id: &str,
    parked_at: Instant,
    initialize: impl Fn(&Shared, &Value),
) -> Parked {
    match v["type"].as_str() {
        Some("user") => {
            sh.out.send(&json!({
                "type": "result", "subtype": "error_during_execution", "is_error": true,
                "duration_ms": 0, "duration_api_ms": 0, "num_turns": 0,
                "session_id": session_id, "total_cost_usd": 0.0,
                "errors": [NOT_CLAIMED_MESSAGE], "uuid": frames::new_uuid(),
            }));
            Parked::Waiting
        }
        Some("control_request") => {
            let req = &v["request"];
            match req["subtype"].as_str().unwrap_or_default() {
                "initialize" => {
                    initialize(sh, v);
                    Parked::Waiting
                }
                "claim_session" => match claim(sh, req) {
                    Ok(cwd) => {
                        let mut answer = json!({
                            "status": "ok",
                            "cwd": cwd.to_string_lossy(),
                            "session_id": session_id,
                            "parked_ms": parked_at.elapsed().as_millis() as u64,
                            "sdk_mcp_settled": true,
                        });
                        if req["include_initialize"].as_bool().unwrap_or(false) {
                            let c = lock(&sh.ctl);
                            answer["initialize"] = frames::initialize_response(
                                sh.scenario.version(),
                                &c.model,
                                &c.permission_mode,
                            );
                        }
                        crate::respond(sh, &v["request_id"], answer);
                        Parked::Claimed(cwd)
                    }
                    Err(error) => {
                        refuse(sh, &v["request_id"], &error);
                        Parked::Waiting
                    }
                },
                _ => {
                    refuse(sh, &v["request_id"], NOT_CLAIMED_REQUEST);
                    Parked::Waiting
                }
            }
        }
        _ => Parked::Waiting,
    }
}

/// A control request's error answer.
pub(crate) fn refuse(sh: &Shared, request_id: &Value, error: &str) {
    sh.out.send(&json!({
        "type": "control_response",
        "response": {"subtype": "error", "request_id": request_id, "error": error},
    }));
}

/// Validates a claim and applies what it carries; the claimed directory, canonical.
fn claim(sh: &Shared, req: &Value) -> Result<PathBuf, String> {
    let Some(cwd) = req["cwd"].as_str() else {
        return Err(
            "invalid_request: cwd — Invalid input: expected string, received undefined".into(),
        );
    };
    if let Some(p) = req.get("system_prompt")
        && !p.is_array()
    {
        return Err(format!(
            "invalid_request: system_prompt — Invalid input: expected array, received {}",
            kind(p)
        ));
    }
    if let Some(env) = req["env"].as_object()
        && let Some(key) = env.keys().find(|k| !CLAIMABLE_ENV.contains(&k.as_str()))
    {
        return Err(format!(
            "env_key_not_claimable: {key} is read during start-up; pass it in the spare's spawn env instead"
        ));
    }
    let mode = req["permission_mode"].as_str();
    if let Some(mode) = mode {
        if !MODES.contains(&mode) {
            return Err(format!(
                "permission_mode_not_claimable: Cannot set permission mode: must be one of {}",
                MODES.join(", ")
            ));
        }
        if mode == "bypassPermissions" && !sh.args.may_bypass {
            return Err("permission_mode_not_claimable: Cannot set permission mode to bypassPermissions because the session was not launched with --dangerously-skip-permissions".into());
        }
    }
    let path = Path::new(cwd);
    let meta = std::fs::metadata(path).ok().filter(|_| path.is_absolute());
    let Some(meta) = meta else {
        return Err("cwd_not_found: the claim cwd does not exist or is not accessible".into());
    };
    if !meta.is_dir() {
        return Err("cwd_not_a_directory: the claim cwd is not a directory".into());
    }
    let cwd = std::fs::canonicalize(path).map_err(|_| {
        "cwd_not_found: the claim cwd does not exist or is not accessible".to_owned()
    })?;
    if let Some(mode) = mode {
        lock(&sh.ctl).permission_mode = mode.to_owned();
    }
    Ok(cwd)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

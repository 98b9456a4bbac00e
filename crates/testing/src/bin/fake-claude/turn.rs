//! The turn worker: runs queued user messages one after the other, while the main thread keeps
//! reading stdin (so interrupts, control requests and queued messages arrive mid-turn).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use claude_testing::fake_claude::{Fault, HISTORY_PROMPT, Turn};
use serde_json::{Map, Value, json};

use crate::frames::{self, new_id, new_uuid};
use crate::session::Session;
use crate::shared::{Shared, lock};

/// How a turn ended early.
enum Abort {
    /// Interrupted while streaming.
    Streaming,
    /// Interrupted while a tool (or its permission/hook) ran.
    Tools,
}

/// An answer to a request we sent.
enum Reply {
    Success(Value),
    Error(String),
    Interrupted,
    TimedOut,
    Closed,
}

#[derive(Default)]
struct ModelTotals {
    input: u64,
    output: u64,
    cost: f64,
}

pub(crate) struct Worker {
    sh: Arc<Shared>,
    session: Session,
    /// `--resume` of an unknown or refused id: the first turn fails with it.
    not_found: Option<String>,
    cwd: String,
    turn_no: u32,
    result_index: u64,
    total_cost: f64,
    models: BTreeMap<String, ModelTotals>,
    pub(crate) last_is_error: bool,
    /// Frames written in the running turn, and the crash fault armed for it.
    frames: usize,
    /// Ids of the API messages whose `message_start` was streamed in the running turn
    /// (`begun_message_ids` of its result, in the shape of 2.1.332).
    begun: Vec<String>,
    crash: Option<(usize, i32, String)>,
}

const INTERRUPTED_TOOL: &str = "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it was a file edit, the new_string was NOT written to the file). STOP what you are doing and wait for the user to tell you how to proceed.";

impl Worker {
    pub(crate) fn new(
        sh: Arc<Shared>,
        session: Session,
        not_found: Option<String>,
        cwd: String,
    ) -> Self {
        Worker {
            sh,
            session,
            not_found,
            cwd,
            turn_no: 0,
            result_index: 0,
            total_cost: 0.0,
            models: BTreeMap::new(),
            last_is_error: false,
            frames: 0,
            begun: Vec::new(),
            crash: None,
        }
    }

    pub(crate) fn run(mut self, rx: mpsc::Receiver<Value>) -> bool {
        for msg in rx {
            self.turn(&msg);
        }
        if let Some(id) = self.not_found.take() {
            self.resume_error(&id);
        }
        self.last_is_error
    }

    fn sid(&self) -> String {
        self.session.id.clone()
    }

    fn model(&self) -> String {
        lock(&self.sh.ctl).model.clone()
    }

    /// Prints what the session file got as `transcript_mirror` frames (`--session-mirror`), as
    /// the real CLI does: right after the append, before the turn's later frames.
    fn mirror(&mut self) {
        for frame in self.session.take_mirror_frames() {
            self.sh.out.send(&frame);
        }
    }

    /// Write a frame of the running turn (and crash here if the crash fault says so).
    fn emit(&mut self, v: &Value) {
        if v["type"] == "stream_event" && v["event"]["type"] == "message_start" {
            if let Some(id) = v["api_message_id"].as_str() {
                self.begun.push(id.to_owned());
            }
        }
        self.sh.out.send(v);
        self.frames += 1;
        self.check_crash();
    }

    fn check_crash(&mut self) {
        if let Some((after, code, stderr)) = &self.crash {
            if self.frames >= *after {
                self.sh.fatal(*code, stderr);
            }
        }
    }

    fn resume_error(&mut self, id: &str) {
        let v = json!({
            "type": "result",
            "subtype": "error_during_execution",
            "duration_ms": 0,
            "duration_api_ms": 0,
            "is_error": true,
            "num_turns": 0,
            "stop_reason": null,
            "session_id": id,
            "total_cost_usd": 0,
            "usage": frames::usage(0, 0),
            "modelUsage": {},
            "permission_denials": [],
            "uuid": new_uuid(),
            "errors": [format!("No conversation found with session ID: {id}")],
            "result_index": 0,
        });
        self.sh.out.send(&v);
        self.last_is_error = true;
        self.sh.exit(1);
    }

    fn turn(&mut self, msg: &Value) {
        if let Some(id) = self.not_found.take() {
            self.resume_error(&id);
        }
        self.turn_no += 1;
        self.frames = 0;
        self.begun.clear();
        self.crash = None;
        let started = Instant::now();
        let sh = Arc::clone(&self.sh);
        let faults: Vec<Fault> = sh
            .scenario
            .turn_faults(sh.start, self.turn_no)
            .into_iter()
            .cloned()
            .collect();
        let mut script = sh.scenario.turn_script(self.turn_no);
        if script.load_frames.is_none() {
            script.load_frames = sh.scenario.load_frames;
        }
        let prompt = crate::session::content_text(&msg["message"]["content"]);

        for f in &faults {
            match f {
                Fault::Hang => {
                    sh.out.hang();
                    loop {
                        std::thread::park();
                    }
                }
                Fault::ExitBeforeInit { exit_code, stderr } => sh.fatal(*exit_code, stderr),
                Fault::StubbornGrandchild {
                    fake_ignores_sigterm,
                } => crate::spawn_grandchild(&sh, *fake_ignores_sigterm),
                Fault::IgnoreSigterm => sh.ignore_sigterm.store(true, Ordering::SeqCst),
                Fault::CrashMidTurn {
                    exit_code,
                    stderr,
                    after_frames,
                } => {
                    self.crash = Some(((*after_frames).max(1), *exit_code, stderr.clone()));
                }
                Fault::SlowStream { pieces, delay_ms } => {
                    script.pieces = Some(*pieces);
                    script.piece_delay_ms = Some(*delay_ms);
                }
                Fault::RotateSessionId { conversation_reset } => {
                    let old = self.sid();
                    self.session.rotate(*conversation_reset);
                    lock(&sh.ctl).session_id = self.sid();
                    if *conversation_reset {
                        self.total_cost = 0.0;
                        self.models.clear();
                        let v = json!({
                            "type": "conversation_reset",
                            "session_id": self.sid(),
                            "previous_session_id": old,
                            "uuid": new_uuid(),
                        });
                        sh.out.send(&v);
                    }
                }
                _ => {}
            }
        }

        sh.turn.begin();
        self.hooks("UserPromptSubmit", None, json!({"prompt": prompt}));
        let (model, mode) = {
            let c = lock(&sh.ctl);
            (c.model.clone(), c.permission_mode.clone())
        };
        let init =
            frames::system_init(sh.scenario.version(), &self.sid(), &self.cwd, &model, &mode);
        self.emit(&init);

        for f in &faults {
            match f {
                Fault::MalformedLine { line } => {
                    sh.out.raw_line(line);
                    self.frames += 1;
                    self.check_crash();
                }
                Fault::OversizeLine { bytes } => {
                    let line = self.oversize(*bytes);
                    sh.out.raw_line(&line);
                    self.frames += 1;
                    self.check_crash();
                }
                Fault::StderrFlood { bytes } => stderr_flood(*bytes),
                _ => {}
            }
        }

        let history = self.session.prompts();
        self.session.record_user(&prompt);
        self.mirror();
        let cost = script
            .cost_usd
            .or(sh.scenario.cost_per_turn)
            .unwrap_or(0.001);
        let input_tokens = 100 + 10 * history.len() as u64;

        let outcome = if let Some(n) = script.load_frames {
            self.load(n, input_tokens)
        } else if let Some(tool) = script.tool.clone() {
            self.tool_turn(&script, &tool.name, &tool.command, input_tokens)
        } else {
            let text = match &script.text {
                Some(t) => t.clone(),
                None if prompt.trim() == HISTORY_PROMPT => {
                    format!(
                        "history: {}",
                        serde_json::to_string(&history).unwrap_or_default()
                    )
                }
                None => format!("fake reply to: {prompt}"),
            };
            self.stream_text(&text, &script, input_tokens)
                .map(|()| TurnEnd {
                    text,
                    num_turns: 1,
                    denials: vec![],
                    max_turns: false,
                })
        };

        if let Ok(end) = &outcome {
            if !end.max_turns {
                self.hooks(
                    "Stop",
                    None,
                    json!({"stop_hook_active": false, "last_assistant_message": end.text}),
                );
            }
        }
        let output_tokens = match &outcome {
            Ok(end) => end.text.len() as u64 / 4 + 1,
            Err(_) => 1,
        };
        self.total_cost += cost;
        let entry = self.models.entry(model.clone()).or_default();
        entry.input += input_tokens;
        entry.output += output_tokens;
        entry.cost += cost;
        let model_usage: Map<String, Value> = self
            .models
            .iter()
            .map(|(m, t)| {
                (
                    m.clone(),
                    frames::model_usage_entry(m, t.input, t.output, t.cost),
                )
            })
            .collect();

        let mut result = json!({
            "type": "result",
            "duration_ms": started.elapsed().as_millis() as u64,
            "duration_api_ms": started.elapsed().as_millis() as u64,
            "session_id": self.sid(),
            "total_cost_usd": self.total_cost,
            "usage": frames::usage(input_tokens, output_tokens),
            "modelUsage": model_usage,
            "permission_denials": [],
            "uuid": new_uuid(),
            "result_index": self.result_index,
            "queued_turn_count": 0,
            "model_usage_since_last_result": {
                model.as_str(): frames::model_usage_entry(&model, input_tokens, output_tokens, cost),
            },
        });
        self.result_index += 1;
        if frames::has_2_1_332_fields(sh.scenario.version()) && !self.begun.is_empty() {
            result["begun_message_ids"] = json!(self.begun);
        }
        let is_error = match outcome {
            Ok(end) if end.max_turns => {
                result["subtype"] = json!("error_max_turns");
                result["is_error"] = json!(true);
                result["num_turns"] = json!(end.num_turns);
                result["terminal_reason"] = json!("max_turns");
                result["stop_reason"] = json!("tool_use");
                result["errors"] = json!([format!(
                    "Reached maximum number of turns ({})",
                    sh.args.max_turns.unwrap_or(1)
                )]);
                result["permission_denials"] = json!(end.denials);
                true
            }
            Ok(end) => {
                let api_error = script.api_error.clone();
                result["subtype"] = json!("success");
                result["is_error"] = json!(api_error.is_some());
                result["num_turns"] = json!(end.num_turns);
                result["result"] = json!(api_error.clone().unwrap_or(end.text));
                result["terminal_reason"] = json!(if api_error.is_some() {
                    "api_error"
                } else {
                    "completed"
                });
                result["stop_reason"] = json!("end_turn");
                result["api_error_status"] = if api_error.is_some() {
                    json!(500)
                } else {
                    Value::Null
                };
                result["permission_denials"] = json!(end.denials);
                api_error.is_some()
            }
            Err(abort) => {
                result["subtype"] = json!("error_during_execution");
                result["is_error"] = json!(true);
                result["num_turns"] = json!(2);
                result["stop_reason"] = Value::Null;
                let (reason, diag) = match abort {
                    Abort::Streaming => ("aborted_streaming", "stop_reason=null"),
                    Abort::Tools => ("aborted_tools", "stop_reason=tool_use"),
                };
                result["terminal_reason"] = json!(reason);
                result["errors"] = json!([format!(
                    "[ede_diagnostic] result_type=user last_content_type=n/a {diag}"
                )]);
                true
            }
        };
        sh.turn.end();
        self.emit(&result);
        self.last_is_error = is_error;
    }

    /// The oversize-line fault: an assistant line of exactly `bytes` bytes.
    fn oversize(&self, bytes: usize) -> String {
        let model = self.model();
        let build = |text: String| {
            let msg = frames::message(
                &new_id("msg"),
                &model,
                json!({"type": "text", "text": text}),
                100,
            );
            serde_json::to_string(&frames::assistant(&self.sid(), msg)).unwrap_or_default()
        };
        let empty = build(String::new()).len();
        build("x".repeat(bytes.saturating_sub(empty)))
    }

    /// Stream `text` as one API message: stream events (with `--include-partial-messages`),
    /// pieces with delays, one `assistant` line.
    fn stream_text(&mut self, text: &str, script: &Turn, input_tokens: u64) -> Result<(), Abort> {
        let sh = Arc::clone(&self.sh);
        let partial = sh.args.include_partial;
        let msg_id = new_id("msg");
        let model = self.model();
        let sid = self.sid();
        let pieces = split_pieces(text, script.pieces.unwrap_or(3).max(1));
        let delay = Duration::from_millis(script.piece_delay_ms.unwrap_or(0));
        if partial {
            let mut start = frames::message(&msg_id, &model, Value::Null, input_tokens);
            start["content"] = json!([]);
            self.emit(&frames::stream_event(
                &sid,
                &msg_id,
                json!({"type": "message_start", "message": start}),
            ));
            self.emit(&frames::stream_event(
                &sid,
                &msg_id,
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ));
        }
        let mut streamed = String::new();
        for (i, piece) in pieces.iter().enumerate() {
            let interrupted = if i > 0 && !delay.is_zero() {
                sh.turn.sleep(delay)
            } else {
                sh.turn.is_interrupted()
            };
            if interrupted {
                return Err(self.abort_streaming(&msg_id, &streamed, input_tokens));
            }
            if partial {
                self.emit(&frames::stream_event(
                    &sid,
                    &msg_id,
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
                ));
            }
            streamed.push_str(piece);
        }
        let message = frames::message(
            &msg_id,
            &model,
            json!({"type": "text", "text": text}),
            input_tokens,
        );
        self.emit(&frames::assistant(&sid, message.clone()));
        self.session.record_assistant(message);
        self.mirror();
        if partial {
            self.emit(&frames::stream_event(
                &sid,
                &msg_id,
                json!({"type": "content_block_stop", "index": 0}),
            ));
            self.emit(&frames::stream_event(
                &sid,
                &msg_id,
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": text.len() / 4 + 1}}),
            ));
            self.emit(&frames::stream_event(
                &sid,
                &msg_id,
                json!({"type": "message_stop"}),
            ));
        }
        Ok(())
    }

    fn abort_streaming(&mut self, msg_id: &str, streamed: &str, input_tokens: u64) -> Abort {
        let sid = self.sid();
        let mut line = frames::assistant(
            &sid,
            frames::message(
                msg_id,
                &self.model(),
                json!({"type": "text", "text": streamed}),
                input_tokens,
            ),
        );
        line["aborted"] = json!(true);
        self.emit(&line);
        self.emit(&frames::user(
            &sid,
            json!([{"type": "text", "text": "[Request interrupted by user]"}]),
            None,
        ));
        if self.sh.args.include_partial {
            self.emit(&frames::stream_event(
                &sid,
                msg_id,
                json!({"type": "content_block_stop", "index": 0}),
            ));
            self.emit(&frames::stream_event(
                &sid,
                msg_id,
                json!({"type": "message_stop"}),
            ));
        }
        Abort::Streaming
    }

    fn abort_tools(&mut self, tool_use_id: &str) -> Abort {
        let sid = self.sid();
        self.emit(&frames::user(
            &sid,
            json!([{"type": "tool_result", "content": INTERRUPTED_TOOL, "is_error": true, "tool_use_id": tool_use_id}]),
            None,
        ));
        self.emit(&frames::user(
            &sid,
            json!([{"type": "text", "text": "[Request interrupted by user for tool use]"}]),
            None,
        ));
        Abort::Tools
    }

    /// Load mode: `n` frames of 300–800 bytes as fast as the pipe takes them, one flush at the end.
    fn load(&mut self, n: usize, input_tokens: u64) -> Result<TurnEnd, Abort> {
        let sh = Arc::clone(&self.sh);
        let sid = self.sid();
        let model = self.model();
        let msg_id = new_id("msg");
        const WORDS: &[&str] = &[
            "the",
            "session",
            "supervisor",
            "restarts",
            "a",
            "crashed",
            "process",
            "with",
            "its",
            "conversation",
            "and",
        ];
        for i in 0..n {
            if i % 1024 == 0 && sh.turn.is_interrupted() {
                sh.out.flush();
                return Err(self.abort_streaming(&msg_id, "", input_tokens));
            }
            // Frames of 300–800 bytes: the text length leaves room for each kind's envelope.
            let event = sh.args.include_partial && i % 2 == 0;
            let len = if event {
                100 + (i * 37) % 350
            } else {
                40 + (i * 37) % 200
            };
            let mut text = String::with_capacity(len + 16);
            let mut w = i;
            while text.len() < len {
                text.push_str(WORDS[w % WORDS.len()]);
                text.push(' ');
                w += 7;
            }
            text.truncate(len);
            let frame = if event {
                frames::stream_event(
                    &sid,
                    &msg_id,
                    json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": text}}),
                )
            } else {
                frames::assistant(
                    &sid,
                    frames::message(
                        &msg_id,
                        &model,
                        json!({"type": "text", "text": text}),
                        input_tokens,
                    ),
                )
            };
            sh.out.send_buffered(&frame);
            self.frames += 1;
        }
        sh.out.flush();
        self.check_crash();
        Ok(TurnEnd {
            text: format!("load: {n} frames"),
            num_turns: 1,
            denials: vec![],
            max_turns: false,
        })
    }

    fn tool_turn(
        &mut self,
        script: &Turn,
        name: &str,
        command: &str,
        input_tokens: u64,
    ) -> Result<TurnEnd, Abort> {
        let sh = Arc::clone(&self.sh);
        let sid = self.sid();
        let model = self.model();
        let msg_id = new_id("msg");
        let tool_use_id = new_id("toolu");
        let mut input = json!({"command": command, "description": "Run a test command"});

        let text_msg = frames::message(
            &msg_id,
            &model,
            json!({"type": "text", "text": "I'll run a tool."}),
            input_tokens,
        );
        self.emit(&frames::assistant(&sid, text_msg));
        let tool_msg = frames::message(
            &msg_id,
            &model,
            json!({"type": "tool_use", "id": tool_use_id, "name": name, "input": input}),
            input_tokens,
        );
        self.emit(&frames::assistant(&sid, tool_msg.clone()));
        self.session.record_assistant(tool_msg);
        self.mirror();

        let mut denial: Option<String> = None;
        let pre = self.hooks(
            "PreToolUse",
            Some(name),
            json!({"tool_name": name, "tool_input": input, "tool_use_id": tool_use_id}),
        );
        if pre.interrupted {
            return Err(self.abort_tools(&tool_use_id));
        }
        if let Some(reason) = pre.deny {
            denial = Some(format!("PreToolUse:{name} hook error: {reason}"));
        }

        let mode = lock(&sh.ctl).permission_mode.clone();
        if denial.is_none() && sh.args.permission_prompt_stdio && mode != "bypassPermissions" {
            let req = json!({
                "subtype": "can_use_tool",
                "tool_name": name,
                "display_name": name,
                "input": input,
                "description": "Run a test command",
                "permission_suggestions": [],
                "tool_use_id": tool_use_id,
            });
            match self.request(req, None) {
                Reply::Success(r) if r["behavior"] == "allow" => {
                    if r["updatedInput"].is_object() {
                        input = r["updatedInput"].clone();
                    }
                }
                Reply::Success(r) => {
                    denial = Some(
                        r["message"]
                            .as_str()
                            .unwrap_or("Permission denied")
                            .to_owned(),
                    );
                }
                Reply::Error(e) => denial = Some(e),
                Reply::Closed => denial = Some("Stream closed".to_owned()),
                Reply::Interrupted | Reply::TimedOut => return Err(self.abort_tools(&tool_use_id)),
            }
        }

        let mut denials = Vec::new();
        let content = if let Some(reason) = denial {
            denials
                .push(json!({"tool_name": name, "tool_use_id": tool_use_id, "tool_input": input}));
            let mut extra = Map::new();
            extra.insert(
                "tool_use_result".to_owned(),
                json!(format!("Error: {reason}")),
            );
            self.emit(&frames::user(
                &sid,
                json!([{"type": "tool_result", "content": reason, "is_error": true, "tool_use_id": tool_use_id}]),
                Some(extra),
            ));
            reason
        } else {
            let cmd = input["command"].as_str().unwrap_or(command).to_owned();
            // `mcp__<server>__<tool>`: an in-process (SDK) MCP tool of the runtime, called
            // through `mcp_message`; anything else runs `command` like Bash.
            let ran = match name.strip_prefix("mcp__").and_then(|r| r.split_once("__")) {
                Some((server, tool)) => self.call_sdk_tool(server, tool, &input),
                None => self.run_tool(&cmd),
            };
            let Some((stdout, stderr, ok)) = ran else {
                return Err(self.abort_tools(&tool_use_id));
            };
            let tool_response = json!({"stdout": stdout, "stderr": stderr, "interrupted": false, "isImage": false, "noOutputExpected": false});
            let post = self.hooks(
                "PostToolUse",
                Some(name),
                json!({"tool_name": name, "tool_input": input, "tool_response": tool_response, "tool_use_id": tool_use_id}),
            );
            if post.interrupted {
                return Err(self.abort_tools(&tool_use_id));
            }
            let content = if stdout.is_empty() && !ok {
                stderr.clone()
            } else {
                stdout.clone()
            };
            let mut extra = Map::new();
            extra.insert("tool_use_result".to_owned(), tool_response);
            self.emit(&frames::user(
                &sid,
                json!([{"tool_use_id": tool_use_id, "type": "tool_result", "content": content, "is_error": !ok}]),
                Some(extra),
            ));
            content
        };

        if sh.args.max_turns == Some(1) {
            return Ok(TurnEnd {
                text: String::new(),
                num_turns: 2,
                denials,
                max_turns: true,
            });
        }
        let text = script
            .text
            .clone()
            .unwrap_or_else(|| format!("tool result was: {content}"));
        self.stream_text(&text, script, input_tokens + 100)?;
        Ok(TurnEnd {
            text,
            num_turns: 2,
            denials,
            max_turns: false,
        })
    }

    /// Call `tool` of the runtime's in-process MCP server `server` (`tools/call` in an
    /// `mcp_message`, the tool_use input as its arguments), like the CLI does. Returns the text
    /// of the result (as stdout, or as stderr when it is an error); `None` when interrupted.
    fn call_sdk_tool(
        &mut self,
        server: &str,
        tool: &str,
        arguments: &Value,
    ) -> Option<(String, String, bool)> {
        let message = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}});
        let req = json!({"subtype": "mcp_message", "server_name": server, "message": message});
        match self.request(req, None) {
            Reply::Success(r) => {
                let rpc = &r["mcp_response"];
                if let Some(error) = rpc.get("error") {
                    let text = error["message"].as_str().unwrap_or("MCP error").to_owned();
                    return Some((String::new(), text, false));
                }
                let text: Vec<&str> = rpc["result"]["content"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["text"].as_str())
                    .collect();
                let text = text.join("\n");
                if rpc["result"]["isError"] == true {
                    Some((String::new(), text, false))
                } else {
                    Some((text, String::new(), true))
                }
            }
            Reply::Error(e) => Some((String::new(), e, false)),
            Reply::Closed => Some((String::new(), "Stream closed".to_owned(), false)),
            Reply::Interrupted | Reply::TimedOut => None,
        }
    }

    /// Run `command` with `sh -c` in the cwd (same process group). `None` when interrupted (the
    /// main thread then kills its tree).
    fn run_tool(&mut self, command: &str) -> Option<(String, String, bool)> {
        let sh = Arc::clone(&self.sh);
        let child = Command::new("sh")
            .args(["-c", command])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => return Some((String::new(), format!("cannot run sh: {e}"), false)),
        };
        *lock(&sh.tool_pid) = Some(child.id());
        if sh.turn.is_interrupted() {
            sh.kill_tool();
        }
        let output = child.wait_with_output();
        *lock(&sh.tool_pid) = None;
        if sh.turn.is_interrupted() {
            return None;
        }
        match output {
            Ok(o) => Some((
                String::from_utf8_lossy(&o.stdout).trim_end().to_owned(),
                String::from_utf8_lossy(&o.stderr).trim_end().to_owned(),
                o.status.success(),
            )),
            Err(e) => Some((String::new(), e.to_string(), false)),
        }
    }

    /// Send a control request to the runtime and wait for its answer.
    fn request(&mut self, request: Value, timeout: Option<Duration>) -> Reply {
        let sh = Arc::clone(&self.sh);
        let id = new_uuid();
        let (tx, rx) = mpsc::channel();
        lock(&sh.pending).insert(id.clone(), tx);
        self.emit(&json!({"type": "control_request", "request_id": id, "request": request}));
        let deadline = timeout.map(|t| Instant::now() + t);
        let reply = loop {
            if sh.turn.is_interrupted() {
                break Reply::Interrupted;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break Reply::TimedOut;
            }
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(resp) => {
                    break if resp["subtype"] == "success" {
                        Reply::Success(resp["response"].clone())
                    } else {
                        Reply::Error(resp["error"].as_str().unwrap_or("error").to_owned())
                    };
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break Reply::Closed,
            }
        };
        lock(&sh.pending).remove(&id);
        reply
    }

    /// Send `hook_callback`s for `event` to every matching registered callback.
    fn hooks(&mut self, event: &str, tool: Option<&str>, fields: Value) -> HookOutcome {
        let matchers = lock(&self.sh.ctl)
            .hooks
            .get(event)
            .cloned()
            .unwrap_or_default();
        let mut outcome = HookOutcome::default();
        for m in matchers.iter().filter(|m| m.matches(tool)) {
            for cb in &m.ids {
                let mut input = json!({
                    "session_id": self.sid(),
                    "transcript_path": "",
                    "cwd": self.cwd,
                    "permission_mode": lock(&self.sh.ctl).permission_mode,
                    "hook_event_name": event,
                });
                if let (Some(obj), Some(extra)) = (input.as_object_mut(), fields.as_object()) {
                    obj.extend(extra.clone());
                }
                let tool_use_id = fields["tool_use_id"]
                    .as_str()
                    .map_or_else(new_uuid, str::to_owned);
                let req = json!({"subtype": "hook_callback", "callback_id": cb, "input": input, "tool_use_id": tool_use_id});
                match self.request(req, Some(m.timeout.unwrap_or(Duration::from_secs(60)))) {
                    Reply::Success(r) => {
                        let specific = &r["hookSpecificOutput"];
                        if specific["permissionDecision"] == "deny" {
                            outcome.deny = Some(
                                specific["permissionDecisionReason"]
                                    .as_str()
                                    .unwrap_or("denied by hook")
                                    .to_owned(),
                            );
                        } else if r["decision"] == "block" {
                            outcome.deny =
                                Some(r["reason"].as_str().unwrap_or("blocked by hook").to_owned());
                        }
                    }
                    Reply::Interrupted => {
                        outcome.interrupted = true;
                        return outcome;
                    }
                    Reply::Error(_) | Reply::TimedOut | Reply::Closed => {}
                }
            }
        }
        outcome
    }
}

#[derive(Default)]
struct HookOutcome {
    deny: Option<String>,
    interrupted: bool,
}

struct TurnEnd {
    text: String,
    num_turns: u32,
    denials: Vec<Value>,
    max_turns: bool,
}

/// Split `text` into exactly `n` pieces (some may be empty when the text is short).
fn split_pieces(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    (0..n)
        .map(|i| {
            chars[i * chars.len() / n..(i + 1) * chars.len() / n]
                .iter()
                .collect()
        })
        .collect()
}

fn stderr_flood(bytes: usize) {
    let line = format!("{}\n", "fake-claude stderr flood ".repeat(4));
    let mut left = bytes;
    let mut e = std::io::stderr().lock();
    while left > 0 {
        let n = left.min(line.len());
        if e.write_all(&line.as_bytes()[line.len() - n..]).is_err() {
            break;
        }
        left -= n;
    }
    let _ = e.flush();
}

//! The conversation on disk, in the real CLI's place and shape
//! (`<config>/projects/<mangled cwd>/<id>.jsonl`, one entry per line, mode 0600).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use claude_testing::fake_claude::{FAKE_VERSION, mangle_cwd};
use serde_json::{Value, json};

use crate::args::Args;
use crate::frames::{new_uuid, now_iso};

/// One conversation.
pub(crate) struct Session {
    pub(crate) id: String,
    /// `<config>/projects/<mangled cwd>`, or `None` without persistence.
    project_dir: Option<PathBuf>,
    cwd: PathBuf,
    /// Every entry of the conversation (loaded and new).
    lines: Vec<Value>,
    /// Entries not yet in this session's file (after a fork or a rotation).
    unwritten: usize,
    last_uuid: Option<String>,
    /// `--session-mirror`: what was appended to the file, not yet printed as frames.
    mirror: Option<Vec<(PathBuf, Vec<Value>)>>,
}

/// How the process starts its session.
pub(crate) enum Start {
    Ready(Session),
    /// `--resume` of an unknown (or refused) id: the first turn fails with this id.
    NotFound(String),
    /// `--session-id` of an existing session.
    InUse(String),
}

fn read_lines(path: &Path) -> Option<Vec<Value>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
    )
}

/// The text of a user message content (a string, or text blocks).
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

impl Session {
    /// A session that stores nothing (stand-in while a refused resume waits for its turn).
    pub(crate) fn detached(cwd: PathBuf) -> Session {
        Session {
            id: new_uuid(),
            project_dir: None,
            cwd,
            lines: Vec::new(),
            unwritten: 0,
            last_uuid: None,
            mirror: None,
        }
    }

    pub(crate) fn start(
        config_dir: Option<PathBuf>,
        cwd: PathBuf,
        args: &Args,
        refuse_resume: bool,
    ) -> Start {
        let persist = !args.no_persistence;
        let resume = args.resume.as_deref();
        let continue_session = args.continue_session;
        let fork = args.fork_session;
        let session_id = args.session_id.as_deref();
        let project_dir = config_dir.map(|c| c.join("projects").join(mangle_cwd(&cwd)));
        let mut s = Session {
            id: session_id.map(str::to_owned).unwrap_or_else(new_uuid),
            project_dir: if persist { project_dir.clone() } else { None },
            cwd,
            lines: Vec::new(),
            unwritten: 0,
            last_uuid: None,
            mirror: args.session_mirror.then(Vec::new),
        };
        let existing = if let Some(id) = resume {
            let loaded = project_dir
                .as_ref()
                .and_then(|d| read_lines(&d.join(format!("{id}.jsonl"))));
            match loaded {
                Some(lines) if !refuse_resume => Some((id.to_owned(), lines)),
                _ => return Start::NotFound(id.to_owned()),
            }
        } else if continue_session {
            project_dir
                .as_ref()
                .and_then(|d| newest_session(d))
                .and_then(|(id, path)| Some((id, read_lines(&path)?)))
        } else {
            if let (Some(id), Some(d)) = (session_id, &project_dir) {
                if d.join(format!("{id}.jsonl")).exists() {
                    return Start::InUse(id.to_owned());
                }
            }
            None
        };
        if let Some((id, lines)) = existing {
            s.last_uuid = lines
                .iter()
                .rev()
                .find_map(|l| l["uuid"].as_str().map(str::to_owned));
            s.lines = lines;
            if fork {
                s.id = session_id.map(str::to_owned).unwrap_or_else(new_uuid);
                s.unwritten = s.lines.len();
            } else {
                s.id = id;
            }
        }
        Start::Ready(s)
    }

    /// The user prompts of the conversation so far, oldest first.
    pub(crate) fn prompts(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter(|l| l["type"] == "user" && l["isMeta"] != true)
            .map(|l| content_text(&l["message"]["content"]))
            .collect()
    }

    /// A new id for the rest of the process; `reset` also forgets the conversation.
    pub(crate) fn rotate(&mut self, reset: bool) {
        self.id = new_uuid();
        if reset {
            self.lines.clear();
            self.last_uuid = None;
        }
        self.unwritten = self.lines.len();
    }

    fn file(&self) -> Option<PathBuf> {
        self.project_dir
            .as_ref()
            .map(|d| d.join(format!("{}.jsonl", self.id)))
    }

    fn append(&mut self, mut entry: Value) {
        let uuid = new_uuid();
        entry["parentUuid"] = self.last_uuid.clone().map_or(Value::Null, Value::String);
        entry["uuid"] = json!(uuid);
        entry["sessionId"] = json!(self.id);
        entry["cwd"] = json!(self.cwd.to_string_lossy());
        entry["timestamp"] = json!(now_iso());
        entry["version"] = json!(FAKE_VERSION);
        self.last_uuid = Some(uuid);
        self.lines.push(entry);
        self.unwritten += 1;
        self.write_out();
    }

    fn write_out(&mut self) {
        let Some(path) = self.file() else {
            self.unwritten = 0;
            return;
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
        else {
            return;
        };
        let start = self.lines.len() - self.unwritten.min(self.lines.len());
        let id = self.id.clone();
        let mut buf = Vec::new();
        let mut written = Vec::new();
        for line in &self.lines[start..] {
            let mut line = line.clone();
            line["sessionId"] = json!(id);
            let _ = serde_json::to_writer(&mut buf, &line);
            buf.push(b'\n');
            written.push(line);
        }
        if let Some(mirror) = self.mirror.as_mut() {
            mirror.push((path.clone(), written));
        }
        let _ = f.write_all(&buf);
        let _ = f.flush();
        self.unwritten = 0;
    }

    /// The `transcript_mirror` frames of what was appended since the last call, in order.
    pub(crate) fn take_mirror_frames(&mut self) -> Vec<Value> {
        self.mirror
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
            .into_iter()
            .map(|(path, entries)| {
                json!({"type": "transcript_mirror", "filePath": path.to_string_lossy(), "entries": entries})
            })
            .collect()
    }

    pub(crate) fn record_user(&mut self, prompt: &str) {
        self.append(json!({"type": "user", "message": {"role": "user", "content": prompt}}));
    }

    pub(crate) fn record_assistant(&mut self, message: Value) {
        self.append(json!({"type": "assistant", "message": message}));
    }
}

/// The newest `*.jsonl` session of a project directory: `(id, path)`.
fn newest_session(dir: &Path) -> Option<(String, PathBuf)> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let path = e.path();
            let id = path
                .file_name()?
                .to_str()?
                .strip_suffix(".jsonl")?
                .to_owned();
            let mtime = e.metadata().ok()?.modified().ok()?;
            Some((mtime, id, path))
        })
        .max_by_key(|(m, _, _)| *m)
        .map(|(_, id, path)| (id, path))
}

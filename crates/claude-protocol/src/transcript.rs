//! The CLI's session files: where they live, and the `transcript_mirror` frames that mirror them.
//!
//! The CLI keeps a conversation in `<config dir>/projects/<folder>/<session id>.jsonl` (subagent
//! transcripts under `<folder>/<session id>/subagents/`). `<folder>` is the absolute working
//! directory with every character that is not an ASCII letter or digit turned into `-`; past 200
//! characters it is cut at 200 and `-<hash>` appended, where `<hash>` is the absolute value of the
//! 32-bit string hash `h = h * 31 + unit` over the path's UTF-16 code units, in base 36 (read
//! from the CLI's own code, 2.1.329; the official SDKs call it their djb2-style "simple hash").
//! With `--session-mirror` the CLI also prints each batch of lines it appends to such a file as
//! `{"type":"transcript_mirror","filePath":"<abs path>","entries":[…]}`.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

/// The frame `type` of a transcript mirror frame.
pub const TRANSCRIPT_MIRROR_TYPE: &str = "transcript_mirror";

/// Past this many characters a project folder name is cut and a hash appended.
const MAX_FOLDER_LEN: usize = 200;

/// The CLI's project folder name for the absolute working directory `cwd`.
pub fn project_folder_name(cwd: &Path) -> String {
    let path = cwd.to_string_lossy();
    // The CLI works on UTF-16 code units (a JavaScript string): a character outside the BMP is
    // two units, so two `-`.
    let units: Vec<u16> = path.encode_utf16().collect();
    let sanitized: String = units
        .iter()
        .map(|&u| {
            if u < 128 && (u as u8).is_ascii_alphanumeric() {
                u as u8 as char
            } else {
                '-'
            }
        })
        .collect();
    if sanitized.len() <= MAX_FOLDER_LEN {
        return sanitized;
    }
    format!(
        "{}-{}",
        &sanitized[..MAX_FOLDER_LEN],
        base36(string_hash(&units).unsigned_abs() as u64)
    )
}

/// JavaScript's `h = (h << 5) - h + unit | 0` over UTF-16 code units.
fn string_hash(units: &[u16]) -> i32 {
    units
        .iter()
        .fold(0i32, |h, &u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n == 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

/// The project folder of `cwd` under `config_dir`: `<config_dir>/projects/<folder>`.
pub fn project_dir(config_dir: &Path, cwd: &Path) -> PathBuf {
    config_dir.join("projects").join(project_folder_name(cwd))
}

/// The main session file of `session_id` run in `cwd`.
pub fn session_file(config_dir: &Path, cwd: &Path, session_id: &str) -> PathBuf {
    project_dir(config_dir, cwd).join(format!("{session_id}.jsonl"))
}

/// A `transcript_mirror` frame: lines the CLI appended to one of its session files.
#[derive(Clone, Debug, PartialEq)]
pub struct TranscriptMirror {
    /// The absolute path of the file the CLI appended to.
    pub file_path: PathBuf,
    /// The appended lines, in file order (each one JSON object).
    pub entries: Vec<Value>,
}

impl TranscriptMirror {
    /// The frame in `value`, when it is a well-formed `transcript_mirror` frame.
    pub fn from_value(value: &Value) -> Option<TranscriptMirror> {
        if value.get("type").and_then(Value::as_str) != Some(TRANSCRIPT_MIRROR_TYPE) {
            return None;
        }
        let file_path = PathBuf::from(value.get("filePath")?.as_str()?);
        let entries = value.get("entries")?.as_array()?.clone();
        Some(TranscriptMirror { file_path, entries })
    }

    /// The file relative to its project folder (`<id>.jsonl`, `<id>/subagents/agent-….jsonl`),
    /// when the path lies under a `projects/<folder>/` directory and has no `..` in it.
    pub fn relative_file(&self) -> Option<String> {
        relative_session_file(&self.file_path)
    }
}

/// `path` relative to its project folder: the part after `…/projects/<folder>/`.
pub fn relative_session_file(path: &Path) -> Option<String> {
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    let at = parts.iter().rposition(|p| *p == "projects")?;
    let rest = parts.get(at + 2..)?;
    if rest.is_empty() || path.components().any(|c| c == Component::ParentDir) {
        return None;
    }
    Some(rest.join("/"))
}

/// Whether `file` (from a store) is a safe relative session-file path: no absolute part, no `..`,
/// ends in `.jsonl`.
pub fn is_safe_relative_file(file: &str) -> bool {
    let p = Path::new(file);
    !file.is_empty()
        && file.ends_with(".jsonl")
        && p.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_paths_turn_every_non_alphanumeric_into_a_dash() {
        assert_eq!(
            project_folder_name(Path::new("/home/u/my_proj.v2")),
            "-home-u-my-proj-v2"
        );
        assert_eq!(project_folder_name(Path::new("/tmp/ü")), "-tmp--");
        // A character outside the BMP is two UTF-16 units, so two dashes.
        assert_eq!(project_folder_name(Path::new("/a😀")), "-a--");
    }

    #[test]
    fn long_paths_are_cut_and_hashed() {
        let long = format!("/{}", "a".repeat(250));
        let name = project_folder_name(Path::new(&long));
        let (head, hash) = name.split_at(MAX_FOLDER_LEN);
        assert_eq!(head, format!("-{}", "a".repeat(199)));
        // Computed by node with the CLI's own expression over the same string.
        assert_eq!(hash, "-feo44x");
    }

    #[test]
    fn the_hash_is_javascripts() {
        // "abc": ((97*31)+98)*31+99 = 96354 → "22ci" in base 36.
        let units: Vec<u16> = "abc".encode_utf16().collect();
        assert_eq!(string_hash(&units), 96354);
        assert_eq!(base36(96354), "22ci");
        // Overflow wraps like `| 0`, and the absolute value of i32::MIN is 2^31.
        assert_eq!(base36(i32::MIN.unsigned_abs() as u64), "zik0zk");
    }

    #[test]
    fn mirror_frames_parse_and_name_their_file() {
        let v = serde_json::json!({"type":"transcript_mirror",
            "filePath":"/c/projects/-w/abc/subagents/agent-1.jsonl","entries":[{"uuid":"u1"}]});
        let m = TranscriptMirror::from_value(&v).unwrap();
        assert_eq!(m.entries.len(), 1);
        assert_eq!(
            m.relative_file().as_deref(),
            Some("abc/subagents/agent-1.jsonl")
        );
        assert!(TranscriptMirror::from_value(&serde_json::json!({"type":"user"})).is_none());
        assert!(is_safe_relative_file("abc/subagents/agent-1.jsonl"));
        assert!(!is_safe_relative_file("../x.jsonl"));
        assert!(!is_safe_relative_file("/etc/x.jsonl"));
        assert!(!is_safe_relative_file("abc.txt"));
    }
}

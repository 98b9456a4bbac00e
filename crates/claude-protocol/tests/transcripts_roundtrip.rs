//! Every line of every recorded 2.1.329 transcript parses into `Message` and re-serialises
//! to equal JSON; no line of a type we claim falls into a raw variant.

use std::collections::BTreeMap;
use std::path::PathBuf;

use claude_protocol::{ContentBlock, Message, SystemMessage, UserContent};
use serde_json::Value;

fn transcripts_dir() -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/cli-transcripts/2.1.329");
    assert!(
        dir.is_dir(),
        "golden transcripts missing: {} (expected /work/shared/cli-transcripts/2.1.329)",
        dir.display()
    );
    dir
}

/// Lines of a transcript file with their direction (`<` from the CLI, `>` to it).
fn lines_of(path: &std::path::Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).expect("read transcript");
    let timed = path.extension().is_some_and(|e| e == "timed");
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if timed {
            let mut parts = line.splitn(3, '\t');
            let _time = parts.next();
            let dir = parts
                .next()
                .unwrap_or_else(|| panic!("{}:{}: no direction", path.display(), i + 1));
            let json = parts
                .next()
                .unwrap_or_else(|| panic!("{}:{}: no payload", path.display(), i + 1));
            if json == "<EOF>" {
                // stdin closed (a marker of the recorder, not a frame)
                assert_eq!(
                    dir,
                    ">",
                    "{}:{}: <EOF> marker on stdout",
                    path.display(),
                    i + 1
                );
                continue;
            }
            out.push((dir.to_owned(), json.to_owned()));
        } else {
            out.push(("<".to_owned(), line.to_owned()));
        }
    }
    out
}

/// Describes raw parts of a message that exist only because we lack a type.
fn raw_parts(m: &Message) -> Vec<String> {
    let mut raw = Vec::new();
    match m {
        Message::Unknown(v) => raw.push(format!("type {}", v.get("type").unwrap_or(&Value::Null))),
        Message::Malformed(mm) => raw.push(format!("malformed {}: {}", mm.type_name, mm.reason)),
        Message::System(SystemMessage::Other(v)) => raw.push(format!(
            "system/{}",
            v.get("subtype").unwrap_or(&Value::Null)
        )),
        Message::Assistant(a) => {
            for b in &a.message.content {
                if let ContentBlock::Unknown(v) = b {
                    raw.push(format!(
                        "assistant block {}",
                        v.get("type").unwrap_or(&Value::Null)
                    ));
                }
            }
        }
        Message::User(u) => match &u.message.content {
            UserContent::Blocks(bs) => {
                for b in bs {
                    if let ContentBlock::Unknown(v) = b {
                        raw.push(format!(
                            "user block {}",
                            v.get("type").unwrap_or(&Value::Null)
                        ));
                    }
                }
            }
            UserContent::Other(_) => raw.push("user content other".into()),
            UserContent::Text(_) => {}
            _ => raw.push("user content ?".into()),
        },
        Message::ControlRequest(r) => {
            if let claude_protocol::ControlRequestBody::Unknown(v) = &r.request {
                raw.push(format!(
                    "control_request/{}",
                    v.get("subtype").unwrap_or(&Value::Null)
                ));
            }
        }
        Message::ControlResponse(r) => {
            if let claude_protocol::ControlResponseBody::Unknown(_) = &r.response {
                raw.push("control_response/?".into());
            }
        }
        _ => {}
    }
    raw
}

#[test]
fn every_transcript_line_roundtrips_typed() {
    let dir = transcripts_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("list transcripts")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    let mut total = 0usize;
    let mut per_type: BTreeMap<String, usize> = BTreeMap::new();
    let mut raw: BTreeMap<String, usize> = BTreeMap::new();
    let mut expected_raw: BTreeMap<String, usize> = BTreeMap::new();
    let mut jsonl_files = 0;
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if name == "textout.jsonl" {
            // `--output-format text`: plain text, not JSON. It must not parse as a message.
            let text = std::fs::read_to_string(path).expect("read textout");
            assert!(
                text.starts_with("mock reply to:"),
                "textout.jsonl changed: {text:?}"
            );
            assert!(Message::from_json_line(text.trim()).is_err());
            continue;
        }
        if !(name.ends_with(".jsonl") || name.ends_with(".jsonl.timed")) {
            continue;
        }
        jsonl_files += 1;
        for (dir_mark, line) in lines_of(path) {
            total += 1;
            let input: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {line}"));
            let msg =
                Message::from_json_line(&line).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
            assert_eq!(msg.to_value(), input, "{name}: value round trip differs");
            // Serialize/Deserialize agree with to_value/from_value.
            let via_serde: Message = serde_json::from_str(&line).expect("serde deserialize");
            assert_eq!(via_serde, msg);
            // The unverified fast path (a session's reader) types every line the same way.
            let fast = Message::from_slice(line.as_bytes()).expect("from_slice");
            assert_eq!(fast, msg, "{name}: from_slice differs from from_json_line");
            assert_eq!(serde_json::to_value(&msg).expect("serialize"), input);
            // The text form re-parses to the same value too.
            let again: Value = serde_json::from_str(&msg.to_json_line()).expect("re-parse");
            assert_eq!(again, input);
            *per_type
                .entry(format!("{dir_mark} {}", msg.type_name()))
                .or_default() += 1;
            for r in raw_parts(&msg) {
                // The control transcript deliberately sends an unknown subtype.
                if r == "control_request/\"no_such_subtype\"" {
                    *expected_raw.entry(r).or_default() += 1;
                } else {
                    *raw.entry(format!("{name}: {r}")).or_default() += 1;
                }
            }
        }
    }
    println!("parsed {total} lines from {jsonl_files} files");
    for (t, n) in &per_type {
        println!("  {t}: {n}");
    }
    println!("raw by design: {expected_raw:?}");
    println!("raw for lack of a type: {raw:?}");
    assert!(
        total >= 350,
        "suspiciously few lines: {total} (360 expected)"
    );
    assert_eq!(
        expected_raw.values().sum::<usize>(),
        1,
        "the unknown control subtype sent in control.jsonl.timed"
    );
    assert!(raw.is_empty(), "lines fell into raw variants: {raw:#?}");
}

//! Every line of every recorded transcript, of every CLI version folder under
//! `shared/cli-transcripts/`, parses into `Message` and re-serialises to equal JSON; no line of
//! a type we claim falls into a raw variant (nor a capability name into `Capability::Other`).
//! The folders are exactly the tested versions of `SUPPORTED_CLI`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use claude_protocol::{
    Capability, CliVersion, ContentBlock, ControlResponseBody, InitializeResponse, Message,
    SUPPORTED_CLI, SandboxEnabled, SystemMessage, UserContent,
};
use serde_json::Value;

fn transcripts_root() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/cli-transcripts");
    assert!(
        dir.is_dir(),
        "golden transcripts missing: {} (expected /work/shared/cli-transcripts)",
        dir.display()
    );
    dir
}

/// The version folders (`X.Y.Z/`), oldest first.
fn version_dirs() -> Vec<(CliVersion, PathBuf)> {
    let mut out: Vec<(CliVersion, PathBuf)> = std::fs::read_dir(transcripts_root())
        .expect("list cli-transcripts")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .map(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let v = name
                .parse()
                .unwrap_or_else(|e| panic!("{}: a folder that is not a version: {e}", p.display()));
            (v, p)
        })
        .collect();
    out.sort();
    out
}

/// Lines of a transcript file with their direction (`<` from the CLI, `>` to it).
fn lines_of(path: &Path) -> Vec<(String, String)> {
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
        Message::System(SystemMessage::Init(i)) => {
            raw.extend(unknown_capabilities("system/init", i.capabilities()));
            if let Some(SandboxEnabled::Other(s)) = &i.sandbox_enabled {
                raw.push(format!("system/init sandbox_enabled {s:?}"));
            }
        }
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
        Message::ControlResponse(r) => match &r.response {
            ControlResponseBody::Unknown(_) => raw.push("control_response/?".into()),
            // The answer to `initialize` is the one success body with a typed form.
            ControlResponseBody::Success(ok)
                if ok.response.get("claude_code_version").is_some() =>
            {
                match InitializeResponse::from_value(ok.response.clone()) {
                    Ok(init) => {
                        if serde_json::to_value(&init).ok().as_ref() != Some(&ok.response) {
                            raw.push("initialize answer: typed form differs".into());
                        }
                        raw.extend(unknown_capabilities(
                            "initialize answer",
                            init.capabilities(),
                        ));
                        if let Some(SandboxEnabled::Other(s)) = &init.sandbox_enabled {
                            raw.push(format!("initialize answer sandbox_enabled {s:?}"));
                        }
                    }
                    Err(e) => raw.push(format!("initialize answer untyped: {e}")),
                }
            }
            _ => {}
        },
        _ => {}
    }
    raw
}

fn unknown_capabilities<'a>(
    at: &'a str,
    caps: &'a [Capability],
) -> impl Iterator<Item = String> + 'a {
    caps.iter()
        .filter(|c| !c.is_known())
        .map(move |c| format!("{at} capability {c}"))
}

/// What one version folder held.
struct FolderStats {
    lines: usize,
    files: usize,
    /// `claude_code_version` of every `system/init` and `initialize` answer.
    reported_versions: BTreeMap<String, usize>,
    /// `sandbox_enabled` values seen (typed).
    sandbox: BTreeMap<String, usize>,
    /// Results carrying `begun_message_ids`.
    results_with_begun_ids: usize,
}

#[test]
fn transcript_folders_are_exactly_the_tested_versions() {
    let found: Vec<CliVersion> = version_dirs().into_iter().map(|(v, _)| v).collect();
    assert_eq!(
        found, SUPPORTED_CLI.tested,
        "shared/cli-transcripts/ must hold one folder per tested version of SUPPORTED_CLI"
    );
}

#[test]
fn every_transcript_line_of_every_version_roundtrips_typed() {
    let dirs = version_dirs();
    assert!(!dirs.is_empty(), "no version folders in cli-transcripts");
    for (version, dir) in &dirs {
        let stats = check_folder(dir);
        println!(
            "{version}: {} lines from {} files; versions reported {:?}; sandbox_enabled {:?}; \
             results with begun_message_ids: {}",
            stats.lines,
            stats.files,
            stats.reported_versions,
            stats.sandbox,
            stats.results_with_begun_ids
        );
        // The frames say which CLI printed them: the folder name must be that version.
        assert_eq!(
            stats.reported_versions.keys().collect::<Vec<_>>(),
            vec![&version.to_string()],
            "{}: frames report other versions",
            dir.display()
        );
        if *version == CliVersion::new(2, 1, 329) {
            assert!(
                stats.lines >= 350,
                "2.1.329: suspiciously few lines: {} (360 expected)",
                stats.lines
            );
            assert!(stats.sandbox.is_empty(), "2.1.329 has no sandbox_enabled");
            assert_eq!(stats.results_with_begun_ids, 0);
        }
        if *version == CliVersion::new(2, 1, 332) {
            assert!(
                stats.lines >= 150,
                "2.1.332: suspiciously few lines: {}",
                stats.lines
            );
            // Every init and initialize answer reports it; these runs had no sandbox.
            assert_eq!(stats.sandbox.keys().collect::<Vec<_>>(), vec!["Disabled"]);
            assert!(
                stats.results_with_begun_ids >= 4,
                "2.1.332 results with --include-partial-messages carry begun_message_ids"
            );
        }
    }
}

fn check_folder(dir: &Path) -> FolderStats {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("list transcripts")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    let mut total = 0usize;
    let mut per_type: BTreeMap<String, usize> = BTreeMap::new();
    let mut raw: BTreeMap<String, usize> = BTreeMap::new();
    let mut expected_raw: BTreeMap<String, usize> = BTreeMap::new();
    let mut jsonl_files = 0;
    let mut reported_versions: BTreeMap<String, usize> = BTreeMap::new();
    let mut sandbox: BTreeMap<String, usize> = BTreeMap::new();
    let mut results_with_begun_ids = 0;
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
            match &msg {
                Message::System(SystemMessage::Init(i)) => {
                    if let Some(v) = &i.claude_code_version {
                        *reported_versions.entry(v.clone()).or_default() += 1;
                    }
                    if let Some(sb) = &i.sandbox_enabled {
                        *sandbox.entry(format!("{sb:?}")).or_default() += 1;
                    }
                }
                Message::ControlResponse(r) => {
                    if let ControlResponseBody::Success(ok) = &r.response {
                        if let Ok(init) = InitializeResponse::from_value(ok.response.clone()) {
                            if let Some(v) = &init.claude_code_version {
                                *reported_versions.entry(v.clone()).or_default() += 1;
                            }
                            if let Some(sb) = &init.sandbox_enabled {
                                *sandbox.entry(format!("{sb:?}")).or_default() += 1;
                            }
                        }
                    }
                }
                Message::Result(r) if !r.begun_message_ids().is_empty() => {
                    assert!(
                        r.begun_message_ids()
                            .iter()
                            .all(|id| id.starts_with("msg_")),
                        "{name}: begun_message_ids {:?}",
                        r.begun_message_ids()
                    );
                    results_with_begun_ids += 1;
                }
                _ => {}
            }
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
    println!(
        "{}: parsed {total} lines from {jsonl_files} files",
        dir.display()
    );
    for (t, n) in &per_type {
        println!("  {t}: {n}");
    }
    println!("raw by design: {expected_raw:?}");
    println!("raw for lack of a type: {raw:?}");
    assert_eq!(
        expected_raw.values().sum::<usize>(),
        1,
        "{}: the unknown control subtype sent in control.jsonl.timed",
        dir.display()
    );
    assert!(
        raw.is_empty(),
        "{}: lines fell into raw variants: {raw:#?}",
        dir.display()
    );
    FolderStats {
        lines: total,
        files: jsonl_files,
        reported_versions,
        sandbox,
        results_with_begun_ids,
    }
}

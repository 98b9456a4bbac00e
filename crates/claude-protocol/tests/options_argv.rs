//! Options → argv, environment, spill files, initialize request, and validation errors.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use claude_protocol::{
    ClaudeOptions, CommandSpec, Effort, McpServers, OptionsError, PermissionMode, SettingSource,
    Settings, Thinking, Tools,
};
use serde_json::{Value, json};

const PROGRAM: &str = "/opt/claude";
const BASE: [&str; 5] = [
    "--output-format",
    "stream-json",
    "--verbose",
    "--input-format",
    "stream-json",
];

fn spec(o: &ClaudeOptions) -> CommandSpec {
    o.command(Path::new(PROGRAM), None).expect("command")
}

fn args(o: &ClaudeOptions) -> Vec<String> {
    spec(o)
        .args
        .into_iter()
        .map(|a| a.into_string().expect("utf-8 arg"))
        .collect()
}

/// The args after the base two-way flags.
fn extra(o: &ClaudeOptions) -> Vec<String> {
    let a = args(o);
    assert_eq!(&a[..5], &BASE, "base flags first");
    a[5..].to_vec()
}

fn err(b: claude_protocol::ClaudeOptionsBuilder) -> String {
    b.build()
        .expect_err("options should be rejected")
        .to_string()
}

#[test]
fn default_options_give_only_the_two_way_flags_and_env() {
    let o = ClaudeOptions::builder().build().unwrap();
    let s = spec(&o);
    assert_eq!(s.program, PathBuf::from(PROGRAM));
    assert_eq!(args(&o), BASE);
    assert_eq!(
        s.env,
        vec![(
            OsString::from("CLAUDE_CODE_ENTRYPOINT"),
            OsString::from("sdk-rust")
        )]
    );
    assert_eq!(s.env_remove, vec![OsString::from("CLAUDECODE")]);
    assert!(s.cwd.is_none());
    assert!(s.spill_files.is_empty());
}

#[test]
fn every_valued_option_uses_the_equals_form() {
    let o = ClaudeOptions::builder()
        .model("-weird-model")
        .fallback_model("claude-haiku-4-5,claude-sonnet-4-5")
        .system_prompt("--be terse")
        .append_system_prompt("-also this")
        .tools(Tools::List(vec!["Bash".into(), "Read".into()]))
        .allowed_tools(["Bash(git *)", "Edit"])
        .disallowed_tools(["WebFetch"])
        .permission_mode(PermissionMode::AcceptEdits)
        .permission_prompt_tool("stdio")
        .max_turns(3)
        .max_budget_usd(1.5)
        .add_dir("/a")
        .add_dir("-b")
        .resume("-abc")
        .fork_session(true)
        .session_id("aaaaaaaa-0000-4000-8000-000000000001")
        .resume_session_at("bbbbbbbb-0000-4000-8000-000000000002")
        .effort(Effort::High)
        .betas(["context-1m-2025-08-07", "x"])
        .plugin_dir("/plugins/p1")
        .setting_sources([SettingSource::User, SettingSource::Project])
        .build()
        .unwrap();
    assert_eq!(
        extra(&o),
        [
            "--model=-weird-model",
            "--fallback-model=claude-haiku-4-5,claude-sonnet-4-5",
            "--system-prompt=--be terse",
            "--append-system-prompt=-also this",
            "--tools=Bash,Read",
            "--allowedTools=Bash(git *),Edit",
            "--disallowedTools=WebFetch",
            "--permission-mode=acceptEdits",
            "--permission-prompt-tool=stdio",
            "--max-turns=3",
            "--max-budget-usd=1.5",
            "--add-dir=/a",
            "--add-dir=-b",
            "--setting-sources=user,project",
            "--resume=-abc",
            "--fork-session",
            "--session-id=aaaaaaaa-0000-4000-8000-000000000001",
            "--resume-session-at=bbbbbbbb-0000-4000-8000-000000000002",
            "--effort=high",
            "--betas=context-1m-2025-08-07,x",
            "--plugin-dir=/plugins/p1",
        ]
    );
}

#[test]
fn boolean_flags() {
    let o = ClaudeOptions::builder()
        .continue_conversation(true)
        .strict_mcp_config(true)
        .include_partial_messages(true)
        .include_hook_events(true)
        .replay_user_messages(true)
        .no_session_persistence(true)
        .bare(true)
        .build()
        .unwrap();
    assert_eq!(
        extra(&o),
        [
            "--strict-mcp-config",
            "--continue",
            "--include-partial-messages",
            "--include-hook-events",
            "--replay-user-messages",
            "--no-session-persistence",
            "--bare",
        ]
    );
}

#[test]
fn tools_presets_and_empty_list() {
    let none = ClaudeOptions::builder()
        .tools(Tools::List(vec![]))
        .build()
        .unwrap();
    assert_eq!(extra(&none), ["--tools="]);
    let default = ClaudeOptions::builder()
        .tools(Tools::Default)
        .build()
        .unwrap();
    assert_eq!(extra(&default), ["--tools=default"]);
    let no_sources = ClaudeOptions::builder()
        .setting_sources([])
        .build()
        .unwrap();
    assert_eq!(extra(&no_sources), ["--setting-sources="]);
}

#[test]
fn thinking_variants() {
    let cases = [
        (Thinking::Adaptive, "--thinking=adaptive"),
        (Thinking::Disabled, "--thinking=disabled"),
        (
            Thinking::Enabled {
                budget_tokens: 2048,
            },
            "--max-thinking-tokens=2048",
        ),
    ];
    for (t, flag) in cases {
        let o = ClaudeOptions::builder().thinking(t).build().unwrap();
        assert_eq!(extra(&o), [flag]);
    }
    let o = ClaudeOptions::builder()
        .max_thinking_tokens(100)
        .build()
        .unwrap();
    assert_eq!(extra(&o), ["--max-thinking-tokens=100"]);
}

#[test]
fn extra_args_bare_and_valued() {
    let o = ClaudeOptions::builder()
        .extra_arg("debug-file", Some("/tmp/d.log".into()))
        .extra_arg("disable-slash-commands", None)
        .extra_arg("agent", Some("-reviewer".into()))
        .build()
        .unwrap();
    assert_eq!(
        extra(&o),
        [
            "--debug-file=/tmp/d.log",
            "--disable-slash-commands",
            "--agent=-reviewer"
        ]
    );
}

#[test]
fn mcp_servers_map_includes_sdk_servers_and_initialize_names_them() {
    let o = ClaudeOptions::builder()
        .mcp_server("calc", McpServers::sdk_server("calc"))
        .mcp_server("fs", json!({"command": "mcp-fs", "args": ["--root", "/"]}))
        .build()
        .unwrap();
    let a = extra(&o);
    assert_eq!(a.len(), 1);
    let json_part = a[0].strip_prefix("--mcp-config=").expect("mcp flag");
    let v: Value = serde_json::from_str(json_part).unwrap();
    assert_eq!(
        v,
        json!({"mcpServers": {"calc": {"type": "sdk", "name": "calc"},
                              "fs": {"command": "mcp-fs", "args": ["--root", "/"]}}})
    );
    let init = o.initialize_request();
    assert_eq!(init.sdk_mcp_servers, vec!["calc".to_string()]);

    let path = ClaudeOptions::builder()
        .mcp_servers(McpServers::Path("/etc/mcp.json".into()))
        .build()
        .unwrap();
    assert_eq!(extra(&path), ["--mcp-config=/etc/mcp.json"]);
}

#[test]
fn settings_json_path_and_sandbox_merge() {
    let json_settings = ClaudeOptions::builder()
        .settings(Settings::Json(json!({"a": 1})))
        .build()
        .unwrap();
    assert_eq!(extra(&json_settings), [r#"--settings={"a":1}"#]);

    let path_settings = ClaudeOptions::builder()
        .settings(Settings::Path("/s.json".into()))
        .build()
        .unwrap();
    assert_eq!(extra(&path_settings), ["--settings=/s.json"]);

    let merged = ClaudeOptions::builder()
        .settings(Settings::Json(json!({"a": 1, "sandbox": {"old": true}})))
        .sandbox(json!({"enabled": true}))
        .build()
        .unwrap();
    let a = extra(&merged);
    let v: Value = serde_json::from_str(a[0].strip_prefix("--settings=").unwrap()).unwrap();
    assert_eq!(v, json!({"a": 1, "sandbox": {"enabled": true}}));

    let sandbox_only = ClaudeOptions::builder()
        .sandbox(json!({"enabled": true}))
        .build()
        .unwrap();
    let a = extra(&sandbox_only);
    let v: Value = serde_json::from_str(a[0].strip_prefix("--settings=").unwrap()).unwrap();
    assert_eq!(v, json!({"sandbox": {"enabled": true}}));

    // A settings file is read when a sandbox must be merged into it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("settings.json");
    std::fs::write(&file, r#"{"model":"x"}"#).unwrap();
    let from_file = ClaudeOptions::builder()
        .settings(Settings::Path(file))
        .sandbox(json!({"enabled": false}))
        .build()
        .unwrap();
    let a = extra(&from_file);
    let v: Value = serde_json::from_str(a[0].strip_prefix("--settings=").unwrap()).unwrap();
    assert_eq!(v, json!({"model": "x", "sandbox": {"enabled": false}}));

    let missing = ClaudeOptions::builder()
        .settings(Settings::Path(dir.path().join("nope.json")))
        .sandbox(json!({}))
        .build()
        .unwrap();
    let e = missing.command(Path::new(PROGRAM), None).unwrap_err();
    assert!(matches!(e, OptionsError::SettingsFile { .. }));
    assert!(e.to_string().contains("settings"), "{e}");
}

#[test]
fn large_payloads_spill_to_files_named_in_argv() {
    let big = "x".repeat(10 * 1024);
    let o = ClaudeOptions::builder()
        .system_prompt(big.clone())
        .append_system_prompt(big.clone())
        .settings(Settings::Json(json!({"big": big})))
        .mcp_server("s", json!({"command": big}))
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = o.command(Path::new(PROGRAM), Some(dir.path())).unwrap();
    let a: Vec<String> = s
        .args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(s.spill_files.len(), 4);
    for (flag, f) in [
        "--system-prompt-file=",
        "--append-system-prompt-file=",
        "--mcp-config=",
        "--settings=",
    ]
    .iter()
    .zip([0, 1, 2, 3])
    {
        let path = &s.spill_files[f].path;
        assert!(path.starts_with(dir.path()));
        assert!(
            a.contains(&format!("{flag}{}", path.display())),
            "{flag} missing in {a:?}"
        );
    }
    assert_eq!(s.spill_files[0].contents, big);
    let mcp: Value = serde_json::from_str(&s.spill_files[2].contents).unwrap();
    assert_eq!(mcp["mcpServers"]["s"]["command"], json!(big));
    // Nothing large stays in argv.
    assert!(a.iter().all(|x| x.len() < 1024), "large arg left in argv");
    s.write_spill_files().unwrap();
    assert_eq!(
        std::fs::read_to_string(&s.spill_files[0].path).unwrap(),
        big
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&s.spill_files[0].path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn large_payload_without_spill_dir_names_the_option() {
    let o = ClaudeOptions::builder()
        .system_prompt("y".repeat(9000))
        .build()
        .unwrap();
    let e = o.command(Path::new(PROGRAM), None).unwrap_err();
    assert!(
        matches!(
            e,
            OptionsError::TooLarge {
                option: "system_prompt",
                size: 9000,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("system_prompt"));
    let small = ClaudeOptions::builder()
        .spill_threshold(4)
        .settings(Settings::Json(json!({"k": 1})))
        .build()
        .unwrap();
    let e = small.command(Path::new(PROGRAM), None).unwrap_err();
    assert!(e.to_string().contains("`settings`"), "{e}");
}

#[test]
fn agents_and_schema_travel_in_initialize_not_argv() {
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}});
    let o = ClaudeOptions::builder()
        .agent(
            "reviewer",
            json!({"description": "Reviews code", "prompt": "You review"}),
        )
        .json_schema(schema.clone())
        .build()
        .unwrap();
    assert_eq!(extra(&o), Vec::<String>::new());
    let init = o.initialize_request();
    let v = serde_json::to_value(&init).unwrap();
    assert_eq!(
        v,
        json!({"hooks": null,
               "agents": {"reviewer": {"description": "Reviews code", "prompt": "You review"}},
               "jsonSchema": schema})
    );
}

#[test]
fn environment_set_remove_and_entrypoint() {
    let o = ClaudeOptions::builder()
        .env("ANTHROPIC_BASE_URL", "http://127.0.0.1:1")
        .env_remove("HTTP_PROXY")
        .cwd("/srv/work")
        .user("agent")
        .build()
        .unwrap();
    let s = spec(&o);
    assert!(
        s.env
            .contains(&("ANTHROPIC_BASE_URL".into(), "http://127.0.0.1:1".into()))
    );
    assert!(
        s.env
            .contains(&("CLAUDE_CODE_ENTRYPOINT".into(), "sdk-rust".into()))
    );
    assert_eq!(
        s.env_remove,
        vec![OsString::from("CLAUDECODE"), OsString::from("HTTP_PROXY")]
    );
    assert_eq!(s.cwd, Some(PathBuf::from("/srv/work")));
    assert_eq!(s.user.as_deref(), Some("agent"));

    let own = ClaudeOptions::builder()
        .env("CLAUDE_CODE_ENTRYPOINT", "mine")
        .build()
        .unwrap();
    let s = spec(&own);
    let entry: Vec<_> = s
        .env
        .iter()
        .filter(|(k, _)| k == "CLAUDE_CODE_ENTRYPOINT")
        .collect();
    assert_eq!(
        entry,
        vec![&(
            OsString::from("CLAUDE_CODE_ENTRYPOINT"),
            OsString::from("mine")
        )]
    );

    let cmd = spec(&o).to_std_command();
    assert_eq!(cmd.get_program(), PROGRAM);
    assert_eq!(cmd.get_current_dir(), Some(Path::new("/srv/work")));
}

#[test]
fn resuming_for_a_restart_drops_one_shot_options() {
    let o = ClaudeOptions::builder()
        .session_id("aaaaaaaa-0000-4000-8000-000000000001")
        .model("m")
        .build()
        .unwrap();
    let r = o.resuming("aaaaaaaa-0000-4000-8000-000000000001");
    r.validate().unwrap();
    assert_eq!(
        extra(&r),
        ["--model=m", "--resume=aaaaaaaa-0000-4000-8000-000000000001"]
    );
    let c = ClaudeOptions::builder()
        .continue_conversation(true)
        .fork_session(true)
        .build()
        .unwrap();
    assert_eq!(extra(&c.resuming("s1")), ["--resume=s1"]);
}

#[test]
fn validation_errors_name_the_options() {
    let cases: Vec<(claude_protocol::ClaudeOptionsBuilder, &[&str])> = vec![
        (
            ClaudeOptions::builder()
                .continue_conversation(true)
                .resume("x"),
            &["continue_conversation", "resume"],
        ),
        (
            ClaudeOptions::builder().fork_session(true),
            &["fork_session", "resume", "continue_conversation"],
        ),
        (
            ClaudeOptions::builder()
                .resume("x")
                .session_id("aaaaaaaa-0000-4000-8000-000000000001"),
            &["session_id", "resume"],
        ),
        (
            ClaudeOptions::builder()
                .continue_conversation(true)
                .session_id("aaaaaaaa-0000-4000-8000-000000000001"),
            &["session_id", "continue_conversation"],
        ),
        (
            ClaudeOptions::builder().session_id("not-a-uuid"),
            &["session_id", "UUID"],
        ),
        (
            ClaudeOptions::builder().resume_session_at("u"),
            &["resume_session_at", "resume"],
        ),
        (ClaudeOptions::builder().max_turns(0), &["max_turns"]),
        (
            ClaudeOptions::builder().max_budget_usd(-1.0),
            &["max_budget_usd"],
        ),
        (
            ClaudeOptions::builder().max_budget_usd(f64::NAN),
            &["max_budget_usd"],
        ),
        (ClaudeOptions::builder().model(""), &["model", "empty"]),
        (
            ClaudeOptions::builder().model("m").fallback_model("m"),
            &["fallback_model", "model"],
        ),
        (
            ClaudeOptions::builder().fallback_model("  "),
            &["fallback_model"],
        ),
        (
            ClaudeOptions::builder().permission_prompt_tool(""),
            &["permission_prompt_tool"],
        ),
        (
            ClaudeOptions::builder()
                .thinking(Thinking::Adaptive)
                .max_thinking_tokens(5),
            &["thinking", "max_thinking_tokens"],
        ),
        (
            ClaudeOptions::builder().max_thinking_tokens(0),
            &["max_thinking_tokens"],
        ),
        (
            ClaudeOptions::builder().json_schema(json!([1])),
            &["json_schema"],
        ),
        (ClaudeOptions::builder().agent("a", json!("x")), &["agents"]),
        (
            ClaudeOptions::builder().mcp_server("s", json!(1)),
            &["mcp_servers"],
        ),
        (
            ClaudeOptions::builder().settings(Settings::Json(json!(3))),
            &["settings"],
        ),
        (ClaudeOptions::builder().sandbox(json!(true)), &["sandbox"]),
        (ClaudeOptions::builder().env("A=B", "v"), &["env"]),
        (
            ClaudeOptions::builder().env("CLAUDECODE", "1"),
            &["env", "CLAUDECODE"],
        ),
        (
            ClaudeOptions::builder().extra_arg("--x", None),
            &["extra_args"],
        ),
        (
            ClaudeOptions::builder().extra_arg("resume", Some("x".into())),
            &["extra_args", "--resume"],
        ),
        (
            ClaudeOptions::builder().allowed_tools([""]),
            &["allowed_tools"],
        ),
        (
            ClaudeOptions::builder().system_prompt("a\0b"),
            &["system_prompt", "NUL"],
        ),
        (
            ClaudeOptions::builder().spill_threshold(0),
            &["spill_threshold"],
        ),
    ];
    for (builder, names) in cases {
        let msg = err(builder);
        for n in names {
            assert!(msg.contains(n), "error {msg:?} does not name {n:?}");
        }
    }
}

#[test]
fn fork_with_resume_or_continue_is_fine_and_fork_allows_session_id() {
    ClaudeOptions::builder()
        .resume("x")
        .fork_session(true)
        .build()
        .unwrap();
    ClaudeOptions::builder()
        .continue_conversation(true)
        .fork_session(true)
        .build()
        .unwrap();
    ClaudeOptions::builder()
        .resume("x")
        .fork_session(true)
        .session_id("aaaaaaaa-0000-4000-8000-000000000001")
        .build()
        .unwrap();
    assert!(claude_protocol::is_uuid(
        "AAAAAAAA-0000-4000-8000-00000000000f"
    ));
    assert!(!claude_protocol::is_uuid(
        "aaaaaaaa00000-4000-8000-000000000001"
    ));
}

//! The frames we write, control bodies, and fallback to raw variants with a reason.

use claude_protocol::{
    ContentBlock, ControlCancelRequest, ControlRequest, ControlRequestBody, ControlResponse,
    HookMatcher, InitializeRequest, InitializeResponse, Message, ParseError, PermissionDecision,
    PermissionMode, RequestIdGenerator, ResultSubtype, UserInput, UserMessage,
};
use serde_json::{Value, json};

fn line_value(m: impl Into<Message>) -> Value {
    let line = m.into().to_json_line();
    assert!(!line.contains('\n'));
    serde_json::from_str(&line).unwrap()
}

#[test]
fn user_frames_text_and_blocks() {
    assert_eq!(
        line_value(UserMessage::text("-hi")),
        json!({"type":"user","message":{"role":"user","content":"-hi"},"parent_tool_use_id":null,"session_id":"default"})
    );
    let blocks = UserInput::blocks(vec![
        ContentBlock::text("look"),
        ContentBlock::image_base64("image/png", "AAAA"),
    ])
    .with_uuid("aaaaaaaa-0000-4000-8000-000000000001");
    assert_eq!(
        line_value(blocks),
        json!({"type":"user","message":{"role":"user","content":[
                {"type":"text","text":"look"},
                {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]},
               "parent_tool_use_id":null,"session_id":"default","uuid":"aaaaaaaa-0000-4000-8000-000000000001"})
    );
}

#[test]
fn control_requests_we_send() {
    let ids = RequestIdGenerator::new();
    let a = ids.next_id();
    let b = ids.next_id();
    assert_ne!(a, b);
    for (id, n) in [(&a, 1), (&b, 2)] {
        let parts: Vec<&str> = id.as_str().split('_').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert_eq!(parts[0], "req");
        assert_eq!(parts[1], n.to_string());
        assert_eq!(parts[2].len(), 8);
        assert!(parts[2].chars().all(|c| c.is_ascii_hexdigit()));
    }
    let cases = [
        (
            ControlRequestBody::Interrupt,
            json!({"subtype":"interrupt"}),
        ),
        (
            ControlRequestBody::SetModel {
                model: Some("claude-haiku-4-5".into()),
            },
            json!({"subtype":"set_model","model":"claude-haiku-4-5"}),
        ),
        (
            ControlRequestBody::SetModel { model: None },
            json!({"subtype":"set_model","model":null}),
        ),
        (
            ControlRequestBody::SetPermissionMode {
                mode: PermissionMode::AcceptEdits,
            },
            json!({"subtype":"set_permission_mode","mode":"acceptEdits"}),
        ),
        (
            ControlRequestBody::McpStatus,
            json!({"subtype":"mcp_status"}),
        ),
        (
            ControlRequestBody::GetContextUsage,
            json!({"subtype":"get_context_usage"}),
        ),
        (
            ControlRequestBody::Initialize(InitializeRequest::new()),
            json!({"subtype":"initialize","hooks":null}),
        ),
    ];
    for (body, expect) in cases {
        let v = line_value(ControlRequest::new(&a, body.clone()));
        assert_eq!(
            v,
            json!({"type":"control_request","request_id":a.as_str(),"request":expect})
        );
        let back = Message::from_value(v).unwrap();
        let Message::ControlRequest(r) = back else {
            panic!("{back:?}")
        };
        assert_eq!(r.request, body);
    }
}

#[test]
fn initialize_with_hooks_uses_camel_case() {
    let mut init = InitializeRequest::new();
    let mut hooks = claude_protocol::HooksConfig::new();
    hooks.insert(
        "PreToolUse".into(),
        vec![HookMatcher::new(Some("Bash".into()), vec!["hook_0".into()])],
    );
    hooks.insert(
        "Stop".into(),
        vec![HookMatcher::new(None, vec!["hook_1".into()])],
    );
    init.set_hooks(Some(hooks));
    init.sdk_mcp_servers = vec!["calc".into()];
    assert_eq!(
        serde_json::to_value(&init).unwrap(),
        json!({"hooks":{"PreToolUse":[{"matcher":"Bash","hookCallbackIds":["hook_0"]}],
                        "Stop":[{"matcher":null,"hookCallbackIds":["hook_1"]}]},
               "sdkMcpServers":["calc"]})
    );
    assert_eq!(init.hooks().unwrap().len(), 2);
}

#[test]
fn control_responses_and_cancel() {
    let ok = ControlResponse::success(
        "abc",
        PermissionDecision::Allow {
            updated_input: json!({"command":"ls"}),
            updated_permissions: None,
        }
        .to_value(),
    );
    assert_eq!(
        line_value(ok.clone()),
        json!({"type":"control_response","response":{"subtype":"success","request_id":"abc",
               "response":{"behavior":"allow","updatedInput":{"command":"ls"}}}})
    );
    assert_eq!(ok.request_id(), Some("abc"));
    assert!(ok.is_success());
    let deny = PermissionDecision::Deny {
        message: "no".into(),
        interrupt: false,
    }
    .to_value();
    assert_eq!(deny, json!({"behavior":"deny","message":"no"}));
    let err = ControlResponse::error("abc", "boom");
    assert_eq!(
        line_value(err.clone()),
        json!({"type":"control_response","response":{"subtype":"error","request_id":"abc","error":"boom"}})
    );
    assert_eq!(err.into_result(), Err("boom".to_string()));
    assert_eq!(
        line_value(ControlCancelRequest::new("x")),
        json!({"type":"control_cancel_request","request_id":"x"})
    );
}

#[test]
fn initialize_response_from_transcript_is_typed_and_lossless() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/cli-transcripts/2.1.329/control.jsonl");
    let text = std::fs::read_to_string(&dir).expect("control.jsonl");
    let line = text
        .lines()
        .find(|l| l.contains("\"request_id\":\"req_1\"") && l.contains("control_response"))
        .unwrap();
    let Message::ControlResponse(r) = Message::from_json_line(line).unwrap() else {
        panic!()
    };
    let value = r.into_result().unwrap();
    let init = InitializeResponse::from_value(value.clone()).unwrap();
    assert_eq!(init.claude_code_version.as_deref(), Some("2.1.329"));
    assert_eq!(init.current_permission_mode, Some(PermissionMode::Default));
    assert!(init.pid.is_some());
    assert!(!init.models.as_ref().unwrap().is_empty());
    assert_eq!(serde_json::to_value(&init).unwrap(), value);
}

#[test]
fn wrong_shapes_fall_back_to_malformed_with_a_reason() {
    let line = r#"{"type":"result","subtype":"success","is_error":"nope","session_id":"s","num_turns":1,"duration_ms":1}"#;
    let m = Message::from_json_line(line).unwrap();
    let Message::Malformed(mm) = &m else {
        panic!("{m:?}")
    };
    assert_eq!(mm.type_name, "result");
    assert!(
        mm.reason.contains("is_error") || mm.reason.contains("boolean"),
        "{}",
        mm.reason
    );
    assert_eq!(m.type_name(), "result");
    assert_eq!(m.session_id(), Some("s"));
    assert_eq!(m.to_value(), serde_json::from_str::<Value>(line).unwrap());
    assert!(m.is_raw());

    // Not re-serialisable exactly (set_model without `model`): kept raw, with a reason.
    let odd = json!({"type":"control_request","request_id":"r","request":{"subtype":"set_model"}});
    let m = Message::from_value(odd.clone()).unwrap();
    let Message::Malformed(mm) = &m else {
        panic!("{m:?}")
    };
    assert!(mm.reason.contains("re-serialise"), "{}", mm.reason);
    assert_eq!(m.to_value(), odd);

    let bad_type = json!({"type": 5});
    assert!(matches!(
        Message::from_value(bad_type).unwrap(),
        Message::Malformed(_)
    ));
    assert!(matches!(
        Message::from_value(json!({"no_type": 1})).unwrap(),
        Message::Unknown(_)
    ));
}

#[test]
fn only_invalid_json_or_non_objects_fail() {
    assert!(matches!(
        Message::from_json_line("{not json"),
        Err(ParseError::InvalidJson { .. })
    ));
    let e = Message::from_json_line("[1,2]").unwrap_err();
    assert!(matches!(e, ParseError::NotAnObject { kind: "an array" }));
    assert!(e.to_string().contains("array"));
    assert!(serde_json::from_str::<Message>("42").is_err());
}

#[test]
fn result_accessors() {
    let m = Message::from_value(
        json!({"type":"result","subtype":"error_during_execution","is_error":true,
        "session_id":"s","num_turns":0,"duration_ms":0,"total_cost_usd":0,
        "errors":["No conversation found with session ID: x"]}),
    )
    .unwrap();
    let Message::Result(r) = m else { panic!() };
    assert_eq!(r.subtype, ResultSubtype::ErrorDuringExecution);
    assert_eq!(r.errors(), ["No conversation found with session ID: x"]);
    assert!(r.permission_denials().is_empty());
    assert!(r.model_usage().is_empty());
    assert_eq!(r.total_cost_usd, Some(0.0));
    let other = Message::from_value(
        json!({"type":"result","subtype":"error_new_kind","is_error":true,
        "session_id":"s","num_turns":0,"duration_ms":0}),
    )
    .unwrap();
    let Message::Result(r) = other else { panic!() };
    assert_eq!(r.subtype, ResultSubtype::Other("error_new_kind".into()));
}

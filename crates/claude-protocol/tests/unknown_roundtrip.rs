//! Property tests: unknown types and unknown fields round-trip losslessly.

use claude_protocol::{ContentBlock, Message, SystemMessage};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const KNOWN: &[&str] = &[
    "system",
    "assistant",
    "user",
    "result",
    "stream_event",
    "control_request",
    "control_response",
    "control_cancel_request",
    "rate_limit_event",
    "command_lifecycle",
    "prompt_suggestion",
    "conversation_reset",
    "keep_alive",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_]{1,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Extra keys that no typed struct models (prefixed so they cannot collide).
fn extra_fields() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("zz_[a-z]{1,8}", json_value(), 0..5)
        .prop_map(|m| m.into_iter().collect())
}

/// One sample of each known frame, as the CLI or we write it.
fn samples() -> Vec<Value> {
    vec![
        json!({"type":"system","subtype":"init","cwd":"/w","session_id":"s","tools":["Bash"],
               "mcp_servers":[{"name":"m","status":"connected"}],"model":"claude","permissionMode":"default",
               "claude_code_version":"2.1.329","uuid":"u"}),
        json!({"type":"system","subtype":"status","status":null,"permissionMode":"plan","session_id":"s","uuid":"u"}),
        json!({"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"retry_delay_ms":500,
               "error_status":529,"error":"overloaded","session_id":"s","uuid":"u"}),
        json!({"type":"system","subtype":"compact_boundary","compact_metadata":{"trigger":"auto","pre_tokens":1},"session_id":"s"}),
        json!({"type":"assistant","message":{"id":"m","type":"message","role":"assistant","model":"c",
               "content":[{"type":"thinking","thinking":"hm","signature":"sig"},{"type":"tool_use","id":"t","name":"Bash","input":{"command":"ls"}},
                          {"type":"redacted_thinking","data":"xx"},{"type":"server_tool_use","id":"s","name":"web_search","input":{}}],
               "stop_reason":null,"usage":{"input_tokens":1,"output_tokens":2}},
               "parent_tool_use_id":null,"session_id":"s","uuid":"u"}),
        json!({"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"ok","is_error":false},
               {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]},
               "parent_tool_use_id":"p","session_id":"s","tool_use_result":{"stdout":"ok"}}),
        json!({"type":"result","subtype":"error_max_budget_usd","is_error":true,"session_id":"s","num_turns":1,
               "duration_ms":5,"total_cost_usd":0.5,"modelUsage":{"c":{"inputTokens":1,"costUSD":0}},
               "permission_denials":[{"tool_name":"Bash","tool_use_id":"t","tool_input":{}}],"errors":[]}),
        json!({"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}},
               "parent_tool_use_id":null,"session_id":"s","uuid":"u"}),
        json!({"type":"control_request","request_id":"r","request":{"subtype":"can_use_tool","tool_name":"Bash","input":{}}}),
        json!({"type":"control_request","request_id":"r","request":{"subtype":"hook_callback","callback_id":"h","input":{},"tool_use_id":null}}),
        json!({"type":"control_request","request_id":"r","request":{"subtype":"mcp_message","server_name":"m","message":{"jsonrpc":"2.0"}}}),
        json!({"type":"control_request","request_id":"r","request":{"subtype":"initialize","hooks":{"Stop":[{"matcher":null,"hookCallbackIds":["a"],"timeout":5}]},
               "sdkMcpServers":["m"],"agents":{},"jsonSchema":{}}}),
        json!({"type":"control_response","response":{"subtype":"success","request_id":"r","response":{}}}),
        json!({"type":"control_response","response":{"subtype":"error","request_id":"r","error":"e","error_code":"x"}}),
        json!({"type":"control_cancel_request","request_id":"r"}),
        json!({"type":"rate_limit_event","rate_limit_info":{"status":"allowed"},"session_id":"s","uuid":"u"}),
        json!({"type":"command_lifecycle","command_uuid":"c","state":"queued","session_id":"s","uuid":"u"}),
        json!({"type":"prompt_suggestion","suggestion":"next?","session_id":"s","uuid":"u"}),
        json!({"type":"conversation_reset","session_id":"s2","uuid":"u"}),
        json!({"type":"keep_alive"}),
    ]
}

/// Whether any part of the message is raw.
fn has_raw(m: &Message) -> bool {
    if m.is_raw() {
        return true;
    }
    match m {
        Message::Assistant(a) => a.message.content.iter().any(ContentBlock::is_unknown),
        Message::System(SystemMessage::Other(_)) => true,
        _ => false,
    }
}

#[test]
fn samples_are_typed() {
    for s in samples() {
        let m = Message::from_value(s.clone()).unwrap();
        assert!(!has_raw(&m), "sample fell into a raw variant: {m:?}");
        assert_eq!(m.to_value(), s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn unknown_type_roundtrips(t in "[a-z_]{1,16}", fields in extra_fields()) {
        prop_assume!(!KNOWN.contains(&t.as_str()));
        let mut obj = fields;
        obj.insert("type".into(), Value::from(t.clone()));
        let v = Value::Object(obj);
        let m = Message::from_json_line(&v.to_string()).unwrap();
        prop_assert!(matches!(m, Message::Unknown(_)));
        prop_assert_eq!(m.type_name(), t.as_str());
        prop_assert_eq!(m.to_value(), v);
    }

    #[test]
    fn any_object_roundtrips(v in prop::collection::btree_map("[a-z_]{1,8}", json_value(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect())))
    {
        // Whatever it is — missing type, wrong shapes — nothing is lost.
        let m = Message::from_value(v.clone()).unwrap();
        prop_assert_eq!(m.to_value(), v);
    }

    #[test]
    fn unknown_fields_on_known_types_roundtrip_typed(idx in 0usize..20, fields in extra_fields(),
                                                     inner in extra_fields()) {
        let samples = samples();
        let mut v = samples[idx % samples.len()].clone();
        let obj = v.as_object_mut().unwrap();
        obj.extend(fields);
        // Unknown keys one level down too, where there is an object body.
        for key in ["message", "request", "response"] {
            if let Some(Value::Object(body)) = obj.get_mut(key) {
                body.extend(inner.clone());
            }
        }
        let m = Message::from_json_line(&v.to_string()).unwrap();
        prop_assert!(!has_raw(&m), "fell into raw: {:?}", m);
        prop_assert_eq!(m.to_value(), v);
    }

    #[test]
    fn unknown_content_blocks_and_subtypes_roundtrip(t in "zz[a-z_]{1,10}", fields in extra_fields()) {
        let mut block = fields.clone();
        block.insert("type".into(), Value::from(t.clone()));
        let v = json!({"type":"assistant","message":{"id":"m","model":"c","content":[Value::Object(block)]},
                       "parent_tool_use_id":null});
        let m = Message::from_value(v.clone()).unwrap();
        let Message::Assistant(a) = &m else { panic!("not typed: {m:?}") };
        prop_assert!(a.message.content[0].is_unknown());
        prop_assert_eq!(a.message.content[0].type_name(), t.as_str());
        prop_assert_eq!(m.to_value(), v);

        let mut sys = fields;
        sys.insert("type".into(), "system".into());
        sys.insert("subtype".into(), Value::from(t.clone()));
        let v = Value::Object(sys);
        let m = Message::from_value(v.clone()).unwrap();
        let Message::System(SystemMessage::Other(_)) = &m else { panic!("not system/other: {m:?}") };
        prop_assert_eq!(m.to_value(), v);
    }
}

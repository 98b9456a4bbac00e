//! `Message::from_slice` (the one-pass fast path of a session's reader) against the verifying
//! `Message::from_json_line`: unknown keys at every level survive, key order does not matter,
//! wrong shapes become `Malformed` (or a catch-all one level down) exactly as on the slow path.

use claude_protocol::{
    ContentBlock, Delta, Message, ParseError, SseEvent, SystemMessage, UserContent,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// The frames the CLI prints in bulk, in the CLI's layout.
fn hot_samples() -> Vec<Value> {
    vec![
        json!({"type":"stream_event","event":{"type":"message_start","message":{"id":"msg_1","type":"message",
               "role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,
               "usage":{"input_tokens":2586,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}},
               "session_id":"s","parent_tool_use_id":null,"uuid":"u","ttft_ms":90,"api_message_id":"msg_1"}),
        json!({"type":"stream_event","event":{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}},
               "session_id":"s","parent_tool_use_id":null,"uuid":"u"}),
        json!({"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"mock "}},
               "session_id":"s","parent_tool_use_id":null,"uuid":"u"}),
        json!({"type":"stream_event","event":{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}},
               "session_id":"s","parent_tool_use_id":"toolu_1","uuid":"u"}),
        json!({"type":"stream_event","event":{"type":"content_block_stop","index":0},"session_id":"s","parent_tool_use_id":null,"uuid":"u"}),
        json!({"type":"stream_event","event":{"type":"message_delta","context_management":null,
               "delta":{"container":null,"stop_reason":"end_turn","stop_sequence":null},
               "usage":{"output_tokens_details":{"thinking_tokens":0},"input_tokens":1,"output_tokens":2,"iterations":[]}},
               "session_id":"s","parent_tool_use_id":null,"uuid":"u"}),
        json!({"type":"stream_event","event":{"type":"message_stop"},"session_id":"s","parent_tool_use_id":null,"uuid":"u",
               "abandoned_blocks":{"api_message_id":"msg_1","from_block_index":1}}),
        json!({"type":"assistant","message":{"id":"m","type":"message","role":"assistant","model":"c",
               "content":[{"type":"thinking","thinking":"hm","signature":"sig"},{"type":"tool_use","id":"t","name":"Bash","input":{"command":"ls"}},
                          {"type":"text","text":"hi"}],
               "stop_reason":null,"usage":{"input_tokens":1,"output_tokens":2}},
               "parent_tool_use_id":null,"session_id":"s","uuid":"u"}),
        json!({"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"ok","is_error":false}]},
               "parent_tool_use_id":null,"session_id":"s","uuid":"u","tool_use_result":{"stdout":"ok"}}),
        json!({"type":"user","message":{"role":"user","content":"plain"},"session_id":"s","isReplay":true}),
        json!({"type":"result","subtype":"success","is_error":false,"duration_ms":5,"duration_api_ms":4,"num_turns":1,
               "result":"hi","stop_reason":"end_turn","session_id":"s","total_cost_usd":0.25,
               "usage":{"input_tokens":1,"output_tokens":2},"modelUsage":{"c":{"inputTokens":1,"costUSD":0.25}},
               "permission_denials":[{"tool_name":"Bash","tool_use_id":"t","tool_input":{}}],"uuid":"u"}),
        json!({"type":"system","subtype":"init","cwd":"/w","session_id":"s","tools":["Bash"],
               "mcp_servers":[{"name":"m","status":"connected"}],"model":"claude","permissionMode":"default",
               "capabilities":["msg_lifecycle_v1"],"claude_code_version":"2.1.332","uuid":"u"}),
        json!({"type":"system","subtype":"status","status":null,"session_id":"s","uuid":"u"}),
        json!({"type":"rate_limit_event","rate_limit_info":{"status":"allowed"},"session_id":"s","uuid":"u"}),
    ]
}

/// Whether any part of the message fell into a catch-all.
fn has_raw(m: &Message) -> bool {
    if m.is_raw() {
        return true;
    }
    match m {
        Message::Assistant(a) => a.message.content.iter().any(ContentBlock::is_unknown),
        Message::User(u) => match &u.message.content {
            UserContent::Blocks(b) => b.iter().any(ContentBlock::is_unknown),
            UserContent::Text(_) => false,
            _ => true,
        },
        Message::StreamEvent(e) => e.event.is_unknown(),
        _ => false,
    }
}

/// Both parsers, which must agree; returns the message.
fn both(v: &Value) -> Message {
    let line = v.to_string();
    let fast = Message::from_slice(line.as_bytes()).expect("from_slice");
    let slow = Message::from_json_line(&line).expect("from_json_line");
    assert_eq!(fast, slow, "from_slice and from_json_line differ on {line}");
    fast
}

/// Adds `fields` to every object in `v`, at every depth.
fn add_everywhere(v: &mut Value, fields: &Map<String, Value>) {
    match v {
        Value::Object(m) => {
            let is_struct = !m.contains_key("c"); // `modelUsage` is a map of model → usage
            for child in m.values_mut() {
                add_everywhere(child, fields);
            }
            if is_struct {
                m.extend(fields.clone());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| add_everywhere(i, fields)),
        _ => {}
    }
}

/// Moves the key `first` of every object to the end (so `type`/`subtype` are no longer first).
fn move_to_end(v: &mut Value, first: &str) {
    match v {
        Value::Object(m) => {
            m.values_mut().for_each(|c| move_to_end(c, first));
            if let Some(t) = m.shift_remove(first) {
                m.insert(first.to_owned(), t);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| move_to_end(i, first)),
        _ => {}
    }
}

#[test]
fn hot_samples_are_typed_and_round_trip() {
    for s in hot_samples() {
        let m = both(&s);
        assert!(!has_raw(&m), "fell into a catch-all: {m:?}");
        assert_eq!(m.to_value(), s);
    }
}

#[test]
fn stream_events_are_typed() {
    let s = &hot_samples()[2];
    let Message::StreamEvent(e) = both(s) else {
        panic!("not a stream event")
    };
    assert_eq!(e.event_type(), Some("content_block_delta"));
    assert_eq!(e.text_delta(), Some("mock "));
    assert_eq!(e.session_id.as_deref(), Some("s"));
    let Message::StreamEvent(e) = both(&hot_samples()[5]) else {
        panic!("not a stream event")
    };
    let SseEvent::MessageDelta(d) = &e.event else {
        panic!("not a message_delta: {:?}", e.event)
    };
    assert_eq!(d.delta.stop_reason, Some(Some("end_turn".into())));
    assert_eq!(d.usage.as_ref().and_then(|u| u.output_tokens), Some(2));
    assert_eq!(d.extra["context_management"], Value::Null);
    assert!(d.delta.extra.contains_key("container"));
}

#[test]
fn type_and_subtype_need_not_come_first() {
    for s in hot_samples() {
        let mut v = s.clone();
        move_to_end(&mut v, "type");
        move_to_end(&mut v, "subtype");
        assert_ne!(v.to_string(), s.to_string(), "the layout changed");
        let m = both(&v);
        assert!(!has_raw(&m), "fell into a catch-all: {m:?}");
        assert_eq!(m, both(&s), "typed differently for another key order");
        assert_eq!(m.to_value(), v);
    }
    let v: Value = serde_json::from_str(
        r#"{"event":{"index":0,"delta":{"text":"x","type":"text_delta"},"type":"content_block_delta"},"type":"stream_event"}"#,
    )
    .unwrap();
    let Message::StreamEvent(e) = both(&v) else {
        panic!("not a stream event")
    };
    assert_eq!(e.text_delta(), Some("x"));
}

#[test]
fn wrong_shaped_known_fields_are_malformed_with_the_reason() {
    let cases = [
        (
            json!({"type":"result","subtype":"success","is_error":"yes","session_id":"s","num_turns":1,"duration_ms":1}),
            "invalid type",
        ),
        (
            json!({"type":"result","subtype":"success","is_error":false,"num_turns":1,"duration_ms":1}),
            "missing field `session_id`",
        ),
        (
            json!({"type":"assistant","message":{"id":5,"model":"c","content":[]}}),
            "invalid type",
        ),
        (
            json!({"type":"stream_event","event":{"type":"message_stop"},"session_id":7}),
            "invalid type",
        ),
    ];
    for (v, reason) in cases {
        let m = both(&v);
        let Message::Malformed(bad) = &m else {
            panic!("not malformed: {m:?}")
        };
        assert!(
            bad.reason.contains(reason),
            "{v}: reason {:?} does not say {reason:?}",
            bad.reason
        );
        assert_eq!(bad.type_name, v["type"].as_str().unwrap());
        assert_eq!(m.to_value(), v);
    }
    // A wrong shape one level down lands in that level's catch-all, as on the slow path.
    let v = json!({"type":"system","subtype":"init","session_id":"s"});
    assert!(matches!(both(&v), Message::System(SystemMessage::Other(_))));
    assert_eq!(both(&v).to_json_line(), v.to_string());
    let v = json!({"type":"assistant","message":{"id":"m","model":"c","content":[{"type":"text","text":5}]}});
    let Message::Assistant(a) = both(&v) else {
        panic!("not typed")
    };
    assert!(a.message.content[0].is_unknown());
    let v = json!({"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":[]}}});
    let Message::StreamEvent(e) = both(&v) else {
        panic!("not typed")
    };
    assert!(matches!(
        &e.event,
        SseEvent::ContentBlockDelta(d) if matches!(d.delta, Delta::Unknown(_))
    ));
    assert_eq!(both(&v).to_value(), v);
    let v = json!({"type":"stream_event","event":{"type":"content_block_delta","index":"zero"}});
    let Message::StreamEvent(e) = both(&v) else {
        panic!("not typed")
    };
    assert!(matches!(e.event, SseEvent::Unknown(_)));
}

#[test]
fn unusual_lines_keep_their_documented_outcome() {
    // A duplicate key: the last one wins, as in a `Value`.
    let line = r#"{"type":"keep_alive","type":"hologram","x":1}"#;
    let m = Message::from_slice(line.as_bytes()).unwrap();
    assert_eq!(m, Message::from_json_line(line).unwrap());
    assert!(matches!(m, Message::Unknown(_)));
    let line = r#"{"type":"stream_event","event":{"type":"message_stop"},"uuid":"a","uuid":"b"}"#;
    let m = Message::from_slice(line.as_bytes()).unwrap();
    assert_eq!(m, Message::from_json_line(line).unwrap());
    let Message::StreamEvent(e) = &m else {
        panic!("not typed")
    };
    assert_eq!(e.uuid.as_deref(), Some("b"));
    // `type` not a string; no `type`; an unknown system subtype.
    let m = Message::from_slice(br#"{"type":5}"#).unwrap();
    assert!(matches!(&m, Message::Malformed(b) if b.reason.contains("not a string")));
    // A malformed line is re-emitted as it came, `type` where it was.
    let line = r#"{"a":1,"type":"result","b":2}"#;
    let m = Message::from_slice(line.as_bytes()).unwrap();
    assert!(matches!(&m, Message::Malformed(_)));
    assert_eq!(m.to_json_line(), line);
    assert!(matches!(
        Message::from_slice(br#"{"x":1}"#).unwrap(),
        Message::Unknown(_)
    ));
    let line = r#"{"type":"system","subtype":"zz_new","x":[1]}"#;
    let m = Message::from_slice(line.as_bytes()).unwrap();
    assert!(matches!(m, Message::System(SystemMessage::Other(_))));
    assert_eq!(m.to_json_line(), line);
    // Errors: invalid JSON (also trailing garbage) and non-objects only.
    for bad in [
        &br#"{"type":"keep_alive""#[..],
        br#"{"type":"keep_alive"} x"#,
        b"not json",
    ] {
        assert!(
            matches!(
                Message::from_slice(bad),
                Err(ParseError::InvalidJson { .. })
            ),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(matches!(
        Message::from_slice(b"[1]"),
        Err(ParseError::NotAnObject { .. })
    ));
    assert!(matches!(
        Message::from_slice(b"{\"type\":\"keep_alive\",\"x\":\"\xff\"}"),
        Err(ParseError::InvalidJson { .. })
    ));
    // Surrounding whitespace is ignored, as by `from_json_line`.
    for line in [
        &b"{\"type\":\"keep_alive\"}\n"[..],
        b" \t{\"type\":\"keep_alive\"} ",
    ] {
        assert!(matches!(
            Message::from_slice(line),
            Ok(Message::KeepAlive(_))
        ));
    }
    // Escapes in keys and values.
    let line = r#"{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\"\n\u00e9"}},"\u0075uid":"u","z\"z":1}"#;
    let Message::StreamEvent(e) = both(&serde_json::from_str(line).unwrap()) else {
        panic!("not typed")
    };
    assert_eq!(e.text_delta(), Some("a\"\né"));
    assert_eq!(e.uuid.as_deref(), Some("u"));
    assert_eq!(e.extra["z\"z"], 1);
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Unknown keys added to every object at every level survive `from_slice` → `to_value`,
    /// and the line stays typed at every level.
    #[test]
    fn unknown_keys_at_every_level_survive(idx in 0usize..14,
        fields in prop::collection::btree_map("zz_[a-z]{1,8}", json_value(), 1..4)) {
        let samples = hot_samples();
        let mut v = samples[idx % samples.len()].clone();
        let fields: Map<String, Value> = fields.into_iter().collect();
        add_everywhere(&mut v, &fields);
        let m = both(&v);
        prop_assert!(!has_raw(&m), "fell into a catch-all: {:?}", m);
        prop_assert_eq!(m.to_value(), v);
    }
}

//! The supported CLI range (`SUPPORTED_CLI`) and the types of the fields new releases added
//! (`Capability`, `SandboxEnabled`, `begun_message_ids`).

use claude_protocol::{
    Capability, CliSupport, CliVersion, InitializeResponse, MIN_SUPPORTED_VERSION, Message,
    PINNED_VERSION, SUPPORTED_CLI, SandboxEnabled, SystemMessage,
};
use serde_json::json;

#[test]
fn the_range_is_consistent_and_the_aliases_derive_from_it() {
    assert!(SUPPORTED_CLI.is_consistent());
    assert_eq!(PINNED_VERSION, SUPPORTED_CLI.pinned);
    assert_eq!(MIN_SUPPORTED_VERSION, SUPPORTED_CLI.minimum);
    assert!(SUPPORTED_CLI.tested.contains(&SUPPORTED_CLI.pinned));
    assert_eq!(
        SUPPORTED_CLI.newest_tested(),
        *SUPPORTED_CLI.tested.iter().max().unwrap()
    );
}

#[test]
fn support_classifies_versions() {
    let r = SUPPORTED_CLI;
    let below = CliVersion::new(r.minimum.major, r.minimum.minor, r.minimum.patch - 1);
    assert_eq!(r.support(below), CliSupport::TooOld { minimum: r.minimum });
    assert!(!r.support(below).is_usable());
    assert_eq!(r.support(r.minimum), CliSupport::InRange);
    for v in r.tested {
        assert_eq!(r.support(*v), CliSupport::Tested, "{v}");
    }
    let newest = r.newest_tested();
    let newer = CliVersion::new(newest.major, newest.minor, newest.patch + 1);
    assert_eq!(
        r.support(newer),
        CliSupport::NewerThanTested {
            newest_tested: newest
        }
    );
    assert!(r.support(newer).is_usable());
    assert_eq!(
        r.support(CliVersion::new(newest.major + 1, 0, 0)),
        CliSupport::NewerThanTested {
            newest_tested: newest
        }
    );
}

#[test]
fn inconsistent_ranges_are_detected() {
    // `SupportedCli` is non_exhaustive: build variants from the real one.
    const DESCENDING: &[CliVersion] = &[CliVersion::new(2, 1, 332), CliVersion::new(2, 1, 329)];
    const WITHOUT_PINNED: &[CliVersion] = &[CliVersion::new(2, 1, 332)];
    let mut r = SUPPORTED_CLI;
    r.tested = DESCENDING;
    assert!(!r.is_consistent(), "not ascending");
    let mut r = SUPPORTED_CLI;
    r.tested = WITHOUT_PINNED;
    assert!(!r.is_consistent(), "pinned not tested");
    let mut r = SUPPORTED_CLI;
    r.minimum = CliVersion::new(3, 0, 0);
    assert!(!r.is_consistent(), "minimum above pinned");
}

#[test]
fn versions_serialise_as_strings() {
    let v = CliVersion::new(2, 1, 332);
    assert_eq!(serde_json::to_value(v).unwrap(), json!("2.1.332"));
    assert_eq!(
        serde_json::from_value::<CliVersion>(json!("2.1.332")).unwrap(),
        v
    );
    assert!(serde_json::from_value::<CliVersion>(json!("2.1")).is_err());
}

#[test]
fn capabilities_round_trip_known_and_unknown_names() {
    for c in Capability::KNOWN {
        assert!(c.is_known());
        assert_eq!(Capability::from(c.as_str()), *c);
        assert_eq!(serde_json::to_value(c).unwrap(), json!(c.as_str()));
        assert!(c.recorded_since().is_some());
    }
    assert_eq!(
        Capability::from("mcp_call_soft_error_result_v1"),
        Capability::McpCallSoftErrorResultV1
    );
    assert_eq!(
        Capability::WithdrawnToolsV1.recorded_since(),
        Some(CliVersion::new(2, 1, 332))
    );
    let future: Capability = serde_json::from_value(json!("teleport_v9")).unwrap();
    assert_eq!(future, Capability::Other("teleport_v9".into()));
    assert!(!future.is_known());
    assert_eq!(serde_json::to_value(&future).unwrap(), json!("teleport_v9"));
    // Names are unique: one wire spelling per variant.
    let mut names: Vec<&str> = Capability::KNOWN.iter().map(Capability::as_str).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Capability::KNOWN.len());
}

#[test]
fn sandbox_enabled_is_a_bool_or_unknown_and_round_trips() {
    for (wire, typed) in [
        (json!(true), SandboxEnabled::Enabled),
        (json!(false), SandboxEnabled::Disabled),
        (json!("unknown"), SandboxEnabled::Unknown),
        (json!("later"), SandboxEnabled::Other("later".into())),
    ] {
        let got: SandboxEnabled = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(got, typed);
        assert_eq!(serde_json::to_value(&got).unwrap(), wire);
    }
    assert_eq!(SandboxEnabled::Enabled.as_bool(), Some(true));
    assert_eq!(SandboxEnabled::Unknown.as_bool(), None);
    assert!(serde_json::from_value::<SandboxEnabled>(json!(1)).is_err());
}

#[test]
fn init_of_2_1_332_is_typed() {
    let line = json!({
        "type": "system", "subtype": "init", "cwd": "/w", "session_id": "s", "tools": [],
        "mcp_servers": [], "model": "m", "permissionMode": "default",
        "claude_code_version": "2.1.332", "sandbox_enabled": "unknown",
        "capabilities": ["interrupt_receipt_v1", "withdrawn_tools_v1", "brand_new_v1"],
    });
    let msg = Message::from_value(line.clone()).unwrap();
    let Message::System(SystemMessage::Init(init)) = &msg else {
        panic!("{msg:?}")
    };
    assert_eq!(init.sandbox_enabled, Some(SandboxEnabled::Unknown));
    assert_eq!(init.cli_version(), Some(CliVersion::new(2, 1, 332)));
    assert!(init.has_capability(&Capability::WithdrawnToolsV1));
    assert_eq!(
        init.capabilities()[2],
        Capability::Other("brand_new_v1".into())
    );
    assert!(init.extra.is_empty(), "{:?}", init.extra);
    assert_eq!(msg.to_value(), line);
}

#[test]
fn initialize_answer_of_2_1_332_is_typed() {
    let body = json!({
        "claude_code_version": "2.1.332", "sandbox_enabled": true,
        "capabilities": ["ui_surface_v1", "mcp_call_soft_error_result_v1"],
    });
    let init = InitializeResponse::from_value(body.clone()).unwrap();
    assert_eq!(init.sandbox_enabled, Some(SandboxEnabled::Enabled));
    assert_eq!(init.cli_version(), Some(CliVersion::new(2, 1, 332)));
    assert_eq!(
        init.capabilities(),
        [
            Capability::UiSurfaceV1,
            Capability::McpCallSoftErrorResultV1
        ]
    );
    assert!(init.extra.is_empty());
    assert_eq!(serde_json::to_value(&init).unwrap(), body);
}

#[test]
fn result_begun_message_ids_are_typed() {
    let line = json!({
        "type": "result", "subtype": "success", "is_error": false, "session_id": "s",
        "num_turns": 1, "duration_ms": 3, "begun_message_ids": ["msg_1", "msg_2"],
    });
    let Message::Result(r) = Message::from_value(line.clone()).unwrap() else {
        panic!()
    };
    assert_eq!(r.begun_message_ids(), ["msg_1", "msg_2"]);
    assert!(r.extra.is_empty());
    assert_eq!(Message::Result(r).to_value(), line);
    let without = json!({
        "type": "result", "subtype": "success", "is_error": false, "session_id": "s",
        "num_turns": 1, "duration_ms": 3,
    });
    let Message::Result(r) = Message::from_value(without).unwrap() else {
        panic!()
    };
    assert!(r.begun_message_ids().is_empty());
}

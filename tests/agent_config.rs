//! One agent, described in TOML and in Rust, makes the same CLI command line; a wrong key is
//! refused with its name.

use std::path::Path;
use std::time::Duration;

use claude_supervisor::{Agent, LostConversation, PermissionMode, RestartType};

const TOML: &str = r#"
name = "reviewer"
model = "sonnet"
append_system_prompt = "You review diffs. Be brief."
allowed_tools = ["Read", "Grep"]
disallowed_tools = ["Bash"]
permission_mode = "plan"
cwd = "/srv/repo"
add_dirs = ["/srv/shared"]
max_turns = 8
include_partial_messages = true
restart = "transient"
intensity = 3
period = "1m"
idle_timeout = "10m"
turn_timeout = "5m"
group = "ci"
on_lost_conversation = "fail"

[env]
REVIEW_STYLE = "terse"
"#;

fn in_rust() -> Agent {
    Agent::new("reviewer")
        .model("sonnet")
        .append_system_prompt("You review diffs. Be brief.")
        .allow_tools(["Read", "Grep"])
        .disallow_tools(["Bash"])
        .permission_mode(PermissionMode::Plan)
        .cwd("/srv/repo")
        .add_dir("/srv/shared")
        .max_turns(8)
        .include_partial_messages(true)
        .restart(RestartType::Transient)
        .intensity(3, Duration::from_secs(60))
        .idle_timeout(Duration::from_secs(600))
        .turn_timeout(Duration::from_secs(300))
        .group("ci")
        .on_lost_conversation(LostConversation::Fail)
        .env("REVIEW_STYLE", "terse")
}

#[test]
fn the_same_agent_in_toml_and_in_rust_makes_the_same_argv() {
    let from_toml: Agent = toml::from_str(TOML).unwrap();
    let from_rust = in_rust();
    assert_eq!(from_toml, from_rust);
    let cli = Path::new("/usr/local/bin/claude");
    let a = from_toml.options().unwrap().command(cli, None).unwrap();
    let b = from_rust.options().unwrap().command(cli, None).unwrap();
    assert_eq!(a.args, b.args);
    assert_eq!(a.env, b.env);
    assert_eq!(a.cwd, b.cwd);
    let argv: Vec<String> = a
        .args
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    for expected in [
        "--model=sonnet",
        "--max-turns=8",
        "--permission-mode=plan",
        "--include-partial-messages",
    ] {
        assert!(
            argv.iter().any(|s| s == expected),
            "{expected} missing from {argv:?}"
        );
    }
    // The tree's layer agrees too.
    let spec = from_toml.spec().unwrap();
    assert_eq!(spec.name(), "reviewer");
    assert_eq!(spec.options(), &from_rust.options().unwrap());
}

#[test]
fn a_wrong_key_or_value_is_refused_with_its_name() {
    let err = toml::from_str::<Agent>("name = \"x\"\nmodle = \"sonnet\"\n").unwrap_err();
    assert!(err.to_string().contains("modle"), "{err}");
    let err = toml::from_str::<Agent>("name = \"x\"\nturn_timeout = \"soon\"\n").unwrap_err();
    assert!(err.to_string().contains("turn_timeout"), "{err}");
}

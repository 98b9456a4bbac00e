//! Under the default (clean) environment policy a variable of the host's environment —
//! `DATABASE_URL`, a cloud secret — does not reach the real CLI: not its own
//! `/proc/<pid>/environ`, not the output of a tool it runs; and a conversation still works.
//! Under `EnvPolicy::Inherit` the same variable does reach it (so the check can fail).
//!
//! The host variables must be in this process's environment from its start (setting them at
//! run time races with the threads that read the environment), so each test re-runs this binary
//! as a child with them set.

#[path = "support/common.rs"]
mod support;

use std::collections::BTreeMap;

use claude_session::{EnvPolicy, LAUNCH_ID_ENV, SESSION_ENV, Session};
use claude_testing::procs;
use claude_testing::real_cli::SafeEnv;
use support::{RealEnv, RealEnvExt, pid_of};

const CHILD: &str = "ENV_POLICY_TEST_CHILD";
const SECRET_URL: &str = "postgres://host-user:host-secret@db.internal/prod";
const SECRET_KEY: &str = "host-cloud-secret-do-not-leak";
/// Printed by a child that ran its checks to the end (not skipped).
const CHECKED: &str = "ENV-POLICY-CHECKED";

/// Runs the test named `name` again in a child with the host secrets in its environment; true
/// when this is the child (which then runs the body).
fn in_child(name: &str) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    if claude_testing::real_cli::real_cli_or_skip().is_none() {
        return false;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("DATABASE_URL", SECRET_URL)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .expect("the child test runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert!(
        output.status.success() && stdout.contains("1 passed") && stdout.contains(CHECKED),
        "the child test failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    false
}

fn environ(pid: i32) -> BTreeMap<String, String> {
    procs::environ(pid)
        .expect("the CLI's environment is readable")
        .into_iter()
        .collect()
}

async fn tool_output(session: &Session, command: &str) -> String {
    let out = session
        .query(format!("RUN_TOOL: {command}"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    let calls = out.tool_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    calls[0]
        .result
        .as_ref()
        .map(|r| r.to_string())
        .unwrap_or_default()
}

#[test]
fn the_clean_default_keeps_host_secrets_from_the_cli_and_its_tools() {
    if !in_child("the_clean_default_keeps_host_secrets_from_the_cli_and_its_tools") {
        return;
    }
    assert_eq!(std::env::var("DATABASE_URL").as_deref(), Ok(SECRET_URL));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let Some(env) = RealEnv::start().await else {
                return;
            };
            let options = env.options().allowed_tools(["Bash"]).build().unwrap();
            let config = env.config("clean-env", options).build().unwrap();
            assert_eq!(
                config.env_policy(),
                &EnvPolicy::clean(),
                "clean is the default"
            );
            let session = Session::start(config).await.unwrap();
            let got = environ(pid_of(&session).await);
            assert!(!got.contains_key("DATABASE_URL"), "{got:#?}");
            assert!(!got.contains_key("AWS_SECRET_ACCESS_KEY"), "{got:#?}");
            assert!(
                got.values()
                    .all(|v| !v.contains("host-secret") && v != SECRET_KEY),
                "{got:#?}"
            );
            // Exactly the allow-list, the options' variables and the session's markers.
            let safe = SafeEnv::new(&env.sandbox, &env.api.base_url()).unwrap();
            let allowed: Vec<String> = safe.vars().into_iter().map(|(k, _)| k).collect();
            for key in got.keys() {
                assert!(
                    EnvPolicy::clean().keeps(key)
                        || allowed.contains(key)
                        || [SESSION_ENV, LAUNCH_ID_ENV, "CLAUDE_CODE_ENTRYPOINT"]
                            .contains(&key.as_str()),
                    "`{key}` is neither kept nor set by the options"
                );
            }
            for (k, v) in safe.vars() {
                assert_eq!(got.get(&k), Some(&v), "{k} set by the options");
            }
            let output = tool_output(
                &session,
                "echo \"db=[$DATABASE_URL] key=[$AWS_SECRET_ACCESS_KEY]\"",
            )
            .await;
            assert!(output.contains("db=[] key=[]"), "{output}");
            // And the conversation works.
            let out = session
                .query("still talking?")
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            assert_eq!(out.final_text(), Some("mock reply to: still talking?"));
            session.stop().await.unwrap();
            println!("{CHECKED}");
        });
}

#[test]
fn inherit_passes_the_host_environment_on() {
    if !in_child("inherit_passes_the_host_environment_on") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let Some(env) = RealEnv::start().await else {
                return;
            };
            let options = env.options().allowed_tools(["Bash"]).build().unwrap();
            let config = env
                .config("inherit-env", options)
                .env_policy(EnvPolicy::Inherit)
                .build()
                .unwrap();
            let session = Session::start(config).await.unwrap();
            let got = environ(pid_of(&session).await);
            assert_eq!(
                got.get("DATABASE_URL").map(String::as_str),
                Some(SECRET_URL)
            );
            let output = tool_output(&session, "echo \"db=[$DATABASE_URL]\"").await;
            assert!(output.contains(SECRET_URL), "{output}");
            session.stop().await.unwrap();
            println!("{CHECKED}");
        });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_home_gives_the_cli_its_own_config_dir() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let home = env.sandbox.root().join("session-home");
    // The safe environment sets HOME and the config dir itself; the isolated home applies to
    // what the options leave unset, so drop those two from the options here.
    let safe = SafeEnv::new(&env.sandbox, &env.api.base_url()).unwrap();
    let mut builder = claude_protocol::ClaudeOptions::builder().cwd(env.sandbox.work_dir());
    for (k, v) in safe.vars() {
        if !matches!(
            k.as_str(),
            "HOME"
                | "CLAUDE_CONFIG_DIR"
                | "XDG_CONFIG_HOME"
                | "XDG_CACHE_HOME"
                | "XDG_DATA_HOME"
                | "XDG_STATE_HOME"
        ) {
            builder = builder.env(k, v);
        }
    }
    let config = env
        .config("own-home", builder.build().unwrap())
        .isolated_home(&home)
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let got = environ(pid_of(&session).await);
    assert_eq!(got.get("HOME"), Some(&home.display().to_string()));
    assert_eq!(
        got.get("CLAUDE_CONFIG_DIR"),
        Some(&home.join(".claude").display().to_string())
    );
    let out = session
        .query("remember me")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    session.stop().await.unwrap();
    // The conversation was stored in the session's own config dir.
    let projects = home.join(".claude").join("projects");
    let stored = std::fs::read_dir(&projects)
        .map(|d| d.count())
        .unwrap_or_default();
    assert!(stored > 0, "nothing under {}", projects.display());
}

//! The real CLI started through a command-prefix launcher — `unshare` into new UTS, IPC and PID
//! namespaces — gets exactly the safe environment and working directory (carried through argv),
//! completes a multi-turn conversation, is killed with SIGKILL through the launcher's process
//! group, is started again with its conversation (`--resume`) through the same launcher, and
//! leaves no process behind.

#[path = "support/common.rs"]
mod support;

use std::collections::BTreeMap;

use claude_session::{CommandPrefixLauncher, Session};
use claude_testing::fake_api::user_texts_of;
use claude_testing::procs;
use claude_testing::real_cli::SafeEnv;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use support::*;

fn environ(pid: i32) -> BTreeMap<String, String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    raw.split(|b| *b == 0)
        .filter(|e| !e.is_empty())
        .filter_map(|e| {
            let e = String::from_utf8_lossy(e);
            e.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

fn pid_namespace(pid: i32) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).expect("pid namespace")
}

/// The wrapped CLI: the wrapper's (`unshare`'s) child, in its process group.
fn wrapped_cli(pgid: i32) -> i32 {
    let children: Vec<_> = procs::children(pgid)
        .into_iter()
        .filter(|p| p.pgid == pgid && !p.is_zombie())
        .collect();
    assert_eq!(children.len(), 1, "{children:#?}");
    children[0].pid
}

fn launcher() -> CommandPrefixLauncher {
    CommandPrefixLauncher::new([
        "unshare",
        "--uts",
        "--ipc",
        "--pid",
        "--fork",
        "--kill-child",
        "--",
    ])
}

fn unshare_works() -> bool {
    std::process::Command::new("unshare")
        .args([
            "--uts",
            "--ipc",
            "--pid",
            "--fork",
            "--kill-child",
            "--",
            "true",
        ])
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaced_cli_converses_is_killed_and_resumes_its_conversation() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    if !unshare_works() {
        assert!(
            std::env::var("CLAUDE_REQUIRE_REAL_CLI").as_deref() != Ok("1"),
            "unshare is required here but does not work"
        );
        eprintln!("SKIPPED: unshare into new namespaces is not permitted on this machine");
        return;
    }
    let options = env.options().build().unwrap();
    let config = env
        .config("wrapped", options.clone())
        .launcher(launcher())
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pgid = pid_of(&session).await;
    assert_eq!(
        procs::info(pgid).map(|p| p.pgid),
        Some(pgid),
        "the wrapper leads its own process group"
    );

    // The CLI really runs wrapped: another PID namespace, the sandbox's cwd, exactly the safe
    // environment.
    let cli = wrapped_cli(pgid);
    assert_ne!(pid_namespace(cli), pid_namespace(std::process::id() as i32));
    assert_eq!(
        std::fs::read_link(format!("/proc/{cli}/cwd")).unwrap(),
        env.sandbox.work_dir()
    );
    let safe = SafeEnv::new(&env.sandbox, &env.api.base_url()).unwrap();
    let got = environ(cli);
    for (k, v) in safe.vars() {
        assert_eq!(
            got.get(&k),
            Some(&v),
            "{k} in the wrapped CLI's environment"
        );
    }
    for k in safe.removed() {
        assert!(!got.contains_key(&k), "{k} leaked into the wrapped CLI");
    }

    // A multi-turn conversation.
    for prompt in ["first fact: the sky is green", "second fact: grass is blue"] {
        let out = session
            .query(prompt)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert!(!out.is_error(), "{:?}", out.result);
    }
    let texts = user_texts_of(&env.api.last_main_request().unwrap());
    assert!(
        texts.iter().any(|t| t.contains("first fact"))
            && texts.iter().any(|t| t.contains("second fact")),
        "{texts:?}"
    );
    let session_id = session.session_id().expect("a session id");

    // SIGKILL through the launcher's process group: the wrapper and the CLI die, the session
    // fails, nothing is left.
    killpg(Pid::from_raw(pgid), Signal::SIGKILL).unwrap();
    wait_stopped(&session).await;
    assert_group_gone(pgid).await;
    drop(session);

    // Started again through the same launcher, resuming: the conversation is back.
    let config = env
        .config("wrapped", options.resuming(&session_id))
        .launcher(launcher())
        .build()
        .unwrap();
    let again = Session::start(config).await.unwrap();
    let pgid2 = pid_of(&again).await;
    assert_ne!(pgid2, pgid);
    let out = again
        .query("third: what did I say?")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    assert_eq!(out.session_id(), session_id, "resume keeps the id");
    let texts = user_texts_of(&env.api.last_main_request().unwrap());
    for needle in ["first fact", "second fact", "third: what did I say?"] {
        assert!(
            texts.iter().any(|t| t.contains(needle)),
            "{needle} missing after the restart: {texts:?}"
        );
    }
    stop_and_check(again, pgid2).await;
    assert_eq!(processes_in(&env.sandbox.work_dir()), Vec::<i32>::new());
}

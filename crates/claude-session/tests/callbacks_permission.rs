//! The permission callback on the real CLI: a Bash command that needs approval is allowed once
//! (it runs) and denied once (it does not run; the denial is in the result); a failing or
//! panicking callback becomes an error answer and the session lives on.

#[path = "support/common.rs"]
mod support;

use std::sync::{Arc, Mutex};

use claude_session::{CallbackError, Callbacks, Permission, Session};
use support::*;

#[derive(Debug, Clone)]
struct Asked {
    session: String,
    tool: String,
    command: String,
    tool_use_id: Option<String>,
    suggestions: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_allows_once_and_denies_once() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let asked: Arc<Mutex<Vec<Asked>>> = Arc::default();
    let log = asked.clone();
    let callbacks = Callbacks::builder()
        .can_use_tool(move |req| {
            let log = log.clone();
            async move {
                let command = req.input["command"].as_str().unwrap_or("").to_owned();
                log.lock().unwrap().push(Asked {
                    session: req.session.to_string(),
                    tool: req.tool_name.clone(),
                    command: command.clone(),
                    tool_use_id: req.tool_use_id.clone(),
                    suggestions: req.suggestions.len(),
                });
                if command.contains("please-panic") {
                    panic!("a callback bug");
                }
                if command.contains("please-fail") {
                    return Err(CallbackError::msg("the policy service is down"));
                }
                if command.contains("allowed") {
                    Ok(Permission::allow())
                } else {
                    Ok(Permission::deny("denied by the host's policy"))
                }
            }
        })
        .build();
    let options = env.options().build().unwrap();
    let config = env
        .config("perm", options)
        .callbacks(callbacks)
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    let work = env.sandbox.work_dir();

    // Allowed: the command runs.
    let allowed_file = work.join("allowed.txt");
    let out = session
        .query(format!(
            "RUN_TOOL: echo allowed-1 | tee {}",
            allowed_file.display()
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!out.is_error(), "{:?}", out.result);
    assert_eq!(
        std::fs::read_to_string(&allowed_file).unwrap().trim(),
        "allowed-1"
    );
    assert!(
        out.result.permission_denials().is_empty(),
        "{:?}",
        out.result
    );
    let results = env.api.last_main_request().unwrap().latest_tool_results();
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(!results[0].is_error, "{results:?}");
    assert!(results[0].content.contains("allowed-1"), "{results:?}");

    // Denied: the command does not run, the denial is in the result and reaches the model.
    let denied_file = work.join("denied.txt");
    let out = session
        .query(format!(
            "RUN_TOOL: echo nope-2 | tee {}",
            denied_file.display()
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!denied_file.exists(), "the denied command ran");
    let denials = out.result.permission_denials();
    assert_eq!(denials.len(), 1, "{:?}", out.result);
    assert_eq!(denials[0].tool_name, "Bash");
    let results = env.api.last_main_request().unwrap().latest_tool_results();
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(results[0].is_error, "{results:?}");
    assert!(
        results[0].content.contains("denied by the host's policy"),
        "{results:?}"
    );

    let asked_now = asked.lock().unwrap().clone();
    assert_eq!(asked_now.len(), 2, "{asked_now:?}");
    for a in &asked_now {
        assert_eq!(a.session, "perm");
        assert_eq!(a.tool, "Bash");
        assert!(
            a.tool_use_id
                .as_deref()
                .is_some_and(|id| id.starts_with("toolu_")),
            "{a:?}"
        );
        assert!(a.suggestions > 0, "{a:?}");
    }
    assert!(asked_now[0].command.contains("allowed-1"));
    assert!(asked_now[1].command.contains("nope-2"));

    // A failing and a panicking callback: error answers, the commands do not run, and the
    // session goes on.
    for (word, file) in [("please-fail", "fail.txt"), ("please-panic", "panic.txt")] {
        let path = work.join(file);
        let out = session
            .query(format!("RUN_TOOL: echo {word} | tee {}", path.display()))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert!(!path.exists(), "{word}: the command ran");
        let results = env.api.last_main_request().unwrap().latest_tool_results();
        assert!(
            results.iter().all(|r| r.is_error),
            "{word}: {results:?} / {:?}",
            out.result
        );
    }
    assert_eq!(asked.lock().unwrap().len(), 4);
    let after = session
        .query(format!(
            "RUN_TOOL: echo allowed-again | tee {}",
            work.join("again.txt").display()
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!after.is_error(), "{:?}", after.result);
    assert!(work.join("again.txt").exists());
    stop_and_check(session, pid).await;
}

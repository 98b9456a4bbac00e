//! Each way a launch is refused has its own typed error naming the value: a working directory
//! that does not exist or is not a directory, a CLI path that does not exist or is not
//! executable, a user that does not exist, a required containment that is not available. They
//! come from `SessionConfig::preflight` (before anything runs) and from `Session::start` (at
//! every launch), and nothing is left running.

#[path = "support/common.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use claude_session::{
    CommandPrefixLauncher, ContainmentKind, ContainmentPolicy, LaunchError, Session, SessionConfig,
    SessionError,
};
use claude_testing::fake_claude::Scenario;
use support::FakeEnv;

async fn start_error(config: SessionConfig) -> LaunchError {
    let preflight = config.preflight();
    let started = Session::start(config).await;
    let (Err(SessionError::Launch { source: early, .. }), Err(SessionError::Launch { source, .. })) =
        (preflight, started)
    else {
        panic!("expected a launch error from both the preflight and the start");
    };
    assert_eq!(
        early.to_string(),
        source.to_string(),
        "same verdict early and at launch"
    );
    source
}

fn with_cwd(env: &FakeEnv, cwd: &Path) -> SessionConfig {
    let options = env
        .options(&Scenario::new())
        .cwd(cwd)
        .build()
        .expect("options");
    SessionConfig::builder("bad-cwd", env.cli_path())
        .options(options)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_working_directory_is_not_a_missing_cli() {
    let env = FakeEnv::new();
    let missing = env.path("no/such/dir");
    match start_error(with_cwd(&env, &missing)).await {
        LaunchError::CwdNotFound { path } => assert_eq!(path, missing),
        other => panic!("expected CwdNotFound, got {other:?}"),
    }
    let file = env.path("a-file");
    std::fs::write(&file, "x").unwrap();
    let e = start_error(with_cwd(&env, &file)).await;
    assert!(
        matches!(&e, LaunchError::CwdNotADirectory { path } if *path == file),
        "{e:?}"
    );
    assert!(e.to_string().contains(&file.display().to_string()), "{e}");
}

fn with_cli(env: &FakeEnv, cli: impl Into<PathBuf>) -> SessionConfig {
    SessionConfig::builder("bad-cli", cli)
        .options(env.options(&Scenario::new()).build().unwrap())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_that_cannot_run_says_why() {
    let env = FakeEnv::new();
    let missing = env.path("no-such-claude");
    match start_error(with_cli(&env, &missing)).await {
        LaunchError::ProgramNotFound {
            program,
            searched_path,
        } => {
            assert_eq!(program, missing.display().to_string());
            assert!(!searched_path);
        }
        other => panic!("expected ProgramNotFound, got {other:?}"),
    }
    let not_executable = env.path("claude-no-x");
    std::fs::write(&not_executable, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = start_error(with_cli(&env, &not_executable)).await;
    match &e {
        LaunchError::ProgramNotExecutable { program, reason } => {
            assert_eq!(*program, not_executable.display().to_string());
            assert!(reason.contains("no execute permission"), "{reason}");
        }
        other => panic!("expected ProgramNotExecutable, got {other:?}"),
    }
    let dir = env.path("work");
    let e = start_error(with_cli(&env, &dir)).await;
    assert!(
        matches!(&e, LaunchError::ProgramNotExecutable { reason, .. } if reason.contains("is a directory")),
        "{e:?}"
    );
    let e = start_error(with_cli(&env, "surely-not-a-claude-on-path")).await;
    assert!(
        matches!(
            &e,
            LaunchError::ProgramNotFound {
                searched_path: true,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("on PATH"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_that_does_not_exist_is_named() {
    let env = FakeEnv::new();
    let options = env
        .options(&Scenario::new())
        .user("no-such-user-x9")
        .build()
        .unwrap();
    let config = SessionConfig::builder("bad-user", env.cli_path())
        .options(options)
        .build()
        .unwrap();
    match start_error(config).await {
        LaunchError::NoSuchUser { user } => assert_eq!(user, "no-such-user-x9"),
        other => panic!("expected NoSuchUser, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_wrapper_and_a_missing_local_cwd_through_a_prefix() {
    let env = FakeEnv::new();
    let config = SessionConfig::builder("bad-wrapper", env.cli_path())
        .options(env.options(&Scenario::new()).build().unwrap())
        .launcher(CommandPrefixLauncher::new(["no-such-wrapper-x9", "--"]))
        .build()
        .unwrap();
    let e = match Session::start(config).await {
        Err(SessionError::Launch { source, .. }) => source,
        other => panic!("expected a launch error, got {other:?}"),
    };
    assert!(
        matches!(&e, LaunchError::ProgramNotFound { program, .. } if program == "no-such-wrapper-x9"),
        "{e:?}"
    );
    let options = env
        .options(&Scenario::new())
        .cwd(env.path("gone"))
        .build()
        .unwrap();
    let config = SessionConfig::builder("bad-cwd-wrapper", env.cli_path())
        .options(options)
        .launcher(CommandPrefixLauncher::new(["nice", "--"]))
        .build()
        .unwrap();
    let e = match Session::start(config).await {
        Err(SessionError::Launch { source, .. }) => source,
        other => panic!("expected a launch error, got {other:?}"),
    };
    assert!(matches!(&e, LaunchError::CwdNotFound { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_containment_that_a_launcher_cannot_give_fails_the_start() {
    let env = FakeEnv::new();
    // A launcher that knows nothing of containment (only `launch`): its process group cannot
    // pass for a required PID namespace.
    #[derive(Debug)]
    struct Plain(claude_session::LocalLauncher);
    impl claude_session::Launcher for Plain {
        fn launch<'a>(
            &'a self,
            spec: &'a claude_protocol::CommandSpec,
        ) -> futures::future::BoxFuture<'a, Result<claude_session::LaunchedProcess, LaunchError>>
        {
            let ctx = claude_session::LaunchContext::for_spec(spec)
                .containment(ContainmentPolicy::require(ContainmentKind::ProcessGroup));
            Box::pin(async move { self.0.launch_with(spec, &ctx).await })
        }
    }
    let config = env
        .config("required", &Scenario::new())
        .containment(ContainmentPolicy::require(ContainmentKind::PidNamespace))
        .launcher(Plain(claude_session::LocalLauncher::new()))
        .build()
        .unwrap();
    let e = match Session::start(config).await {
        Err(SessionError::Launch { source, .. }) => source,
        other => panic!("expected a launch error, got {other:?}"),
    };
    match &e {
        LaunchError::ContainmentUnavailable { required, tried } => {
            assert_eq!(*required, Some(ContainmentKind::PidNamespace));
            assert!(tried.contains("process_group"), "{tried}");
        }
        other => panic!("expected ContainmentUnavailable, got {other:?}"),
    }
    // Nothing it started is left.
    let marker = claude_testing::procs::Marker::env(claude_session::SESSION_ENV, "required");
    if let Err(left) =
        claude_testing::procs::wait_none_marked(&marker, std::time::Duration::from_secs(10)).await
    {
        panic!("processes left: {left:#?}");
    }
}

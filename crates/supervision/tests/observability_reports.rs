//! O1, O2: supervisor reports as tracing events.
#[path = "support/helpers.rs"]
mod support;

use std::time::Duration;

use supervision::report::*;
use supervision::*;
use support::*;

#[tokio::test(start_paused = true)]
async fn o1_one_event_per_occurrence_with_fields() {
    let (captured, _guard) = capture();
    let log = Log::new();
    let sup = Supervisor::start(
        Some("o1_sup".into()),
        SupervisorFlags::builder().intensity(5).build().unwrap(),
        vec![
            worker("a", &log)
                .restart(RestartType::Transient)
                .build()
                .unwrap(),
            worker("stuck", &log)
                .shutdown(Shutdown::Timeout(Duration::from_secs(1)))
                .build()
                .unwrap(),
        ],
    )
    .await
    .unwrap();
    assert_eq!(captured.with_context(CHILD_STARTED).len(), 2);

    send(&child(&sup, "a").await, WMsg::Crash);
    eventually("restart", || log.count("start:a") == 2).await;
    assert!(
        sup.start_child(failing("bad", &log).build().unwrap())
            .await
            .is_err()
    );
    send(
        &child(&sup, "stuck").await,
        WMsg::Block(Duration::from_secs(3600)),
    );
    sup.stop().await;

    let contexts: Vec<String> = captured
        .events()
        .iter()
        .map(|e| e["context"].clone())
        .collect();
    assert_eq!(
        contexts,
        [
            CHILD_STARTED,
            CHILD_STARTED,
            CHILD_TERMINATED,
            CHILD_RESTARTING,
            CHILD_STARTED,
            START_ERROR,
            SHUTDOWN_ERROR,
        ]
    );
    for e in captured.events() {
        for field in [
            "supervisor",
            "child_id",
            "restart_type",
            "reason",
            "context",
        ] {
            assert!(e.contains_key(field), "{field} missing in {e:?}");
        }
        assert_eq!(e["supervisor"], "o1_sup");
    }
    let exit = &captured.with_context(CHILD_TERMINATED)[0];
    assert_eq!(
        (exit["child_id"].as_str(), exit["restart_type"].as_str()),
        ("a", "transient")
    );
    assert_eq!(exit["reason"], "a crashed");
    assert_eq!(
        captured.with_context(START_ERROR)[0]["reason"],
        "bad cannot start"
    );
    assert_eq!(
        captured.with_context(SHUTDOWN_ERROR)[0]["child_id"],
        "stuck"
    );
}

#[tokio::test(start_paused = true)]
async fn o2_meltdown_reported_with_context_shutdown() {
    let (captured, _guard) = capture();
    let log = Log::new();
    let sup = Supervisor::start(
        None,
        SupervisorFlags::default(),
        vec![worker("a", &log).build().unwrap()],
    )
    .await
    .unwrap();
    send(&child(&sup, "a").await, WMsg::Crash);
    eventually("restart", || log.count("start:a") == 2).await;
    send(&child(&sup, "a").await, WMsg::Crash);
    sup.wait().await;
    let shutdowns = captured.with_context(SHUTDOWN);
    assert_eq!(shutdowns.len(), 1);
    assert_eq!(shutdowns[0]["reason"], "reached max restart intensity");
    assert_eq!(shutdowns[0]["child_id"], "a");
    assert_eq!(captured.with_context(CHILD_RESTARTING).len(), 1);
}

/// A worker whose cleanup (`post_stop`) fails: it exits with that error, not `shutdown`.
struct DirtyStop;

impl ractor::Actor for DirtyStop {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _: ractor::ActorRef<()>,
        _: (),
    ) -> Result<(), ractor::ActorProcessingErr> {
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ractor::ActorRef<()>,
        _: &mut (),
    ) -> Result<(), ractor::ActorProcessingErr> {
        Err("cleanup failed".into())
    }
}

fn dirty(id: &str) -> ChildSpec {
    ChildSpec::builder(id)
        .start(|args| async move { args.spawn_linked(None, DirtyStop, ()).await })
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn o1_shutdown_error_whenever_the_exit_reason_is_not_shutdown() {
    // OTP's do_terminate: a shutdown error unless the child exited with `shutdown` (or was
    // brutally killed); a child killed after its timeout exited with `killed`.
    let (captured, _guard) = capture();
    let log = Log::new();
    let nested = Supervisor::child_spec(
        "nested",
        None,
        SupervisorFlags::default(),
        vec![worker("inner", &log).build().unwrap()],
    )
    .build()
    .unwrap();
    let sup = Supervisor::start(
        Some("o1_shutdown_error_sup".into()),
        SupervisorFlags::default(),
        vec![
            worker("clean", &log).build().unwrap(),
            nested,
            dirty("dirty"),
            worker("stuck", &log)
                .shutdown(Shutdown::Timeout(Duration::from_secs(1)))
                .build()
                .unwrap(),
            worker("brutal", &log)
                .shutdown(Shutdown::BrutalKill)
                .build()
                .unwrap(),
        ],
    )
    .await
    .unwrap();
    send(
        &child(&sup, "stuck").await,
        WMsg::Block(Duration::from_secs(3600)),
    );
    sup.terminate_child("dirty").await.unwrap();
    let errors = captured.with_context(SHUTDOWN_ERROR);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["child_id"], "dirty");
    assert!(errors[0]["reason"].contains("cleanup failed"), "{errors:?}");
    sup.stop().await;
    let errors = captured.with_context(SHUTDOWN_ERROR);
    let ids: Vec<_> = errors.iter().map(|e| e["child_id"].as_str()).collect();
    assert_eq!(ids, ["dirty", "stuck"], "{errors:?}");
    assert_eq!(errors[1]["reason"], "killed");
    assert_eq!(errors[1]["supervisor"], "o1_shutdown_error_sup");

    // The dynamic supervisor's concurrent shutdown judges exits the same way.
    let (captured, _guard) = capture();
    let dynsup = DynamicSupervisor::start(None, DynamicFlags::default())
        .await
        .unwrap();
    dynsup.start_child(dirty("d1")).await.unwrap();
    dynsup
        .start_child(worker("fine", &log).build().unwrap())
        .await
        .unwrap();
    dynsup.stop().await;
    let errors = captured.with_context(SHUTDOWN_ERROR);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["child_id"], "d1");
}

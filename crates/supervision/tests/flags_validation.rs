//! F1..F6: flags and spec validation.
#[path = "support/helpers.rs"]
mod support;

use std::time::Duration;

use supervision::*;
use support::*;

#[test]
fn f1_defaults_follow_otp() {
    let f = SupervisorFlags::default();
    assert_eq!(f.strategy(), Strategy::OneForOne);
    assert_eq!(f.intensity(), 1);
    assert_eq!(f.period(), Duration::from_secs(5));
    assert_eq!(f.auto_shutdown(), AutoShutdown::Never);
    assert!(f.backoff().is_none());
    assert_eq!(SupervisorFlags::builder().build().unwrap(), f);
    let elixir = SupervisorFlags::elixir_defaults();
    assert_eq!(
        (elixir.intensity(), elixir.period()),
        (3, Duration::from_secs(5))
    );
}

#[test]
fn f2_period_zero_is_rejected() {
    let err = SupervisorFlags::builder()
        .period(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(matches!(err, FlagsError::ZeroPeriod));
    assert!(
        DynamicFlags::builder()
            .period(Duration::ZERO)
            .build()
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn f2_intensity_zero_first_restart_shuts_down() {
    let log = Log::new();
    let flags = SupervisorFlags::builder().intensity(0).build().unwrap();
    let sup = Supervisor::start(None, flags, vec![worker("a", &log).build().unwrap()])
        .await
        .unwrap();
    send(&child(&sup, "a").await, WMsg::Crash);
    sup.wait().await;
    assert_eq!(log.entries(), ["start:a", "crash:a"]);
}

#[tokio::test]
async fn f3_duplicate_child_ids_do_not_start() {
    let log = Log::new();
    let err = Supervisor::start(
        Some("f3_sup".into()),
        SupervisorFlags::default(),
        vec![
            worker("a", &log).build().unwrap(),
            worker("a", &log).build().unwrap(),
        ],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, SupervisorError::DuplicateChildId { ref child, .. } if child.as_str() == "a")
    );
    assert!(err.to_string().contains("f3_sup") && err.to_string().contains("`a`"));
    assert!(log.entries().is_empty(), "nothing was started");
    assert!(ractor::registry::where_is("f3_sup").is_none());
}

#[test]
fn f4_significant_permanent_is_rejected() {
    let log = Log::new();
    let err = worker("p", &log).significant(true).build().unwrap_err();
    assert!(matches!(err, SpecError::SignificantPermanent { .. }));
    assert!(
        worker("t", &log)
            .restart(RestartType::Transient)
            .significant(true)
            .build()
            .is_ok()
    );
}

#[tokio::test]
async fn f5_significant_under_never_is_rejected_at_start_and_on_start_child() {
    let log = Log::new();
    let sig = || {
        worker("s", &log)
            .restart(RestartType::Transient)
            .significant(true)
            .build()
            .unwrap()
    };
    let err = Supervisor::start(None, SupervisorFlags::default(), vec![sig()])
        .await
        .unwrap_err();
    assert!(matches!(err, SupervisorError::SignificantUnderNever { .. }));
    assert!(log.entries().is_empty());

    let sup = Supervisor::start(None, SupervisorFlags::default(), vec![])
        .await
        .unwrap();
    let err = sup.start_child(sig()).await.unwrap_err();
    assert!(matches!(err, ChildError::SignificantUnderNever { .. }));
    assert_eq!(sup.count_children().await.unwrap().specs, 0);

    let dynsup = DynamicSupervisor::start(None, DynamicFlags::default())
        .await
        .unwrap();
    let err = dynsup.start_child(sig()).await.unwrap_err();
    assert!(matches!(err, ChildError::SignificantUnderNever { .. }));
    assert!(log.entries().is_empty());
    sup.stop().await;
    dynsup.stop().await;
}

#[test]
fn f6_default_shutdown_per_kind() {
    let log = Log::new();
    let w = worker("w", &log).build().unwrap();
    assert_eq!(w.shutdown(), Shutdown::Timeout(Duration::from_secs(5)));
    let s = worker("s", &log)
        .kind(ChildKind::Supervisor)
        .build()
        .unwrap();
    assert_eq!(s.shutdown(), Shutdown::Infinity);
    let nested = Supervisor::child_spec("n", None, SupervisorFlags::default(), vec![])
        .build()
        .unwrap();
    assert_eq!(nested.kind(), ChildKind::Supervisor);
    assert_eq!(nested.shutdown(), Shutdown::Infinity);
}

#[test]
fn backoff_constructor_validates() {
    assert!(Backoff::exponential(Duration::ZERO, Duration::from_secs(1), 0.1).is_err());
    assert!(Backoff::exponential(Duration::from_secs(2), Duration::from_secs(1), 0.1).is_err());
    assert!(Backoff::exponential(Duration::from_secs(1), Duration::from_secs(2), 1.5).is_err());
    let b = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1), 0.0).unwrap();
    assert_eq!(b.nominal_delay(1), Duration::from_millis(100));
    assert_eq!(b.nominal_delay(3), Duration::from_millis(400));
    assert_eq!(b.nominal_delay(10), Duration::from_secs(1));
}

//! RG1..RG5: the registry.
#[path = "support/helpers.rs"]
mod support;

use std::time::Duration;

use ractor::{Actor, ActorCell};
use supervision::*;
use support::*;

async fn spawn_worker(log: &Log, name: &str) -> ActorCell {
    let (r, _) = Actor::spawn(
        None,
        Worker,
        WorkerArgs {
            name: name.into(),
            log: log.clone(),
            stop_delay: None,
        },
    )
    .await
    .unwrap();
    r.get_cell()
}

#[tokio::test]
async fn rg1_unique_names() {
    let (reg, log) = (Registry::new(), Log::new());
    let a = spawn_worker(&log, "a").await;
    let b = spawn_worker(&log, "b").await;
    let first = reg.register("svc", a.clone()).unwrap();
    assert_eq!(first.generation, 1);
    match reg.register("svc", b.clone()) {
        Err(RegistryError::AlreadyRegistered {
            holder,
            name,
            generation,
        }) => {
            assert_eq!(holder.get_id(), a.get_id());
            assert_eq!((name.as_str(), generation), ("svc", 1));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(reg.lookup("svc").unwrap().cell.get_id(), a.get_id());
    a.stop(None);
    b.stop(None);
}

#[tokio::test]
async fn rg2_unregistered_when_actor_dies_whatever_the_reason() {
    let (reg, log) = (Registry::new(), Log::new());
    let mut events = reg.subscribe();
    let how: [fn(&ActorCell); 3] = [|c| c.stop(None), |c| send(c, WMsg::Crash), |c| c.kill()];
    for (i, kill) in how.iter().enumerate() {
        let name = format!("n{i}");
        let cell = spawn_worker(&log, &name).await;
        reg.register(name.clone(), cell.clone()).unwrap();
        let _ = events.recv().await.unwrap();
        kill(&cell);
        cell.wait(None).await.unwrap();
        assert!(
            reg.lookup(&name).is_none(),
            "a dead holder is never returned"
        );
        match events.recv().await.unwrap() {
            RegistryEvent::Unregistered {
                name: n, reason, ..
            } => {
                assert_eq!(n, name);
                assert_eq!(reason, UnregisterReason::Exited);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(reg.list().iter().all(|r| r.name != name));
    }
}

#[tokio::test(start_paused = true)]
async fn rg3_name_follows_restarts_with_generations() {
    let (reg, log) = (Registry::new(), Log::new());
    let r2 = reg.clone();
    let l2 = log.clone();
    let spec = ChildSpec::builder("svc")
        .start(move |args| {
            let (reg, log) = (r2.clone(), l2.clone());
            async move {
                let out = args
                    .spawn_linked(
                        None,
                        Worker,
                        WorkerArgs {
                            name: "svc".into(),
                            log,
                            stop_delay: None,
                        },
                    )
                    .await?;
                if let StartOutcome::Started(cell) = &out {
                    reg.register("svc", cell.clone())
                        .map_err(StartError::from_error)?;
                }
                Ok(out)
            }
        })
        .build()
        .unwrap();
    let backoff =
        Backoff::exponential(Duration::from_secs(1), Duration::from_secs(1), 0.0).unwrap();
    let flags = SupervisorFlags::builder().backoff(backoff).build().unwrap();
    let sup = Supervisor::start(None, flags, vec![spec]).await.unwrap();
    let handle = reg.handle("svc");
    let first = handle.resolve().unwrap();
    assert_eq!(first.generation, 1);
    send(&first.cell, WMsg::Crash);
    first.cell.wait(None).await.unwrap();
    eventually("unregistered", || reg.lookup("svc").is_none()).await;
    assert!(matches!(
        handle.resolve(),
        Err(RegistryError::Restarting {
            last_generation: 1,
            ..
        })
    ));
    let second = handle.resolve_wait(Duration::from_secs(5)).await.unwrap();
    assert_eq!(second.generation, 2);
    assert_ne!(second.cell.get_id(), first.cell.get_id());
    assert!(!reg.is_current(&first), "the stale instance is detectable");
    assert!(reg.is_current(&second));
    assert!(matches!(
        reg.handle("other").resolve(),
        Err(RegistryError::NotRegistered { .. })
    ));
    sup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rg4_listing_is_a_point_in_time_snapshot() {
    let (reg, log) = (Registry::new(), Log::new());
    for i in 0..10 {
        reg.register(format!("a{i}"), spawn_worker(&log, "x").await)
            .unwrap();
    }
    let snapshot = reg.list();
    // Writers proceed while the snapshot is held across awaits: no lock is held.
    let mut tasks = vec![];
    for t in 0..4 {
        let reg = reg.clone();
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let cell = spawn_worker(&log, "y").await;
                reg.register(format!("t{t}-{i}"), cell).unwrap();
                tokio::task::yield_now().await;
                let _ = reg.list();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(snapshot.len(), 10, "the snapshot did not change");
    assert_eq!(reg.list().len(), 110);
    for r in reg.list() {
        r.cell.stop(None);
    }
}

#[tokio::test]
async fn rg5_events_reach_subscribers() {
    let (reg, log) = (Registry::new(), Log::new());
    let mut sub1 = reg.subscribe();
    let mut sub2 = reg.subscribe();
    let cell = spawn_worker(&log, "a").await;
    reg.register("ev", cell.clone()).unwrap();
    reg.unregister("ev").unwrap();
    for sub in [&mut sub1, &mut sub2] {
        assert!(
            matches!(sub.recv().await.unwrap(), RegistryEvent::Registered { ref name, generation: 1, .. } if name == "ev")
        );
        assert!(matches!(
            sub.recv().await.unwrap(),
            RegistryEvent::Unregistered {
                reason: UnregisterReason::Explicit,
                generation: 1,
                ..
            }
        ));
    }
    reg.register("ev", cell.clone()).unwrap();
    cell.stop(None);
    assert!(matches!(
        sub1.recv().await.unwrap(),
        RegistryEvent::Registered { generation: 2, .. }
    ));
    assert!(matches!(
        sub1.recv().await.unwrap(),
        RegistryEvent::Unregistered {
            reason: UnregisterReason::Exited,
            generation: 2,
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn rg3_a_name_nobody_restarts_is_forgotten_after_the_grace() {
    let grace = Duration::from_secs(5);
    let (reg, log) = (Registry::with_restart_grace(grace), Log::new());
    assert_eq!(reg.restart_grace(), grace);
    assert_eq!(
        Registry::new().restart_grace(),
        Registry::DEFAULT_RESTART_GRACE
    );
    let mut events = reg.subscribe();
    let cell = spawn_worker(&log, "gone").await;
    reg.register("gone", cell.clone()).unwrap();
    let _ = events.recv().await.unwrap();
    cell.stop(None);
    assert!(matches!(
        events.recv().await.unwrap(),
        RegistryEvent::Unregistered { .. }
    ));
    let handle = reg.handle("gone");
    // Within the grace a restart may be under way.
    assert!(matches!(
        handle.resolve(),
        Err(RegistryError::Restarting {
            last_generation: 1,
            ..
        })
    ));
    assert_eq!(reg.tombstone_count(), 1);
    tokio::time::sleep(grace + Duration::from_millis(10)).await;
    // Nobody registered it again: it is not restarting, and nothing is kept for it.
    assert!(matches!(
        handle.resolve(),
        Err(RegistryError::NotRegistered { .. })
    ));
    assert_eq!(reg.tombstone_count(), 0, "the tombstone was dropped");
    // A registration within the grace continues the generations.
    let a = spawn_worker(&log, "a").await;
    assert_eq!(reg.register("gone", a.clone()).unwrap().generation, 1);
    reg.unregister("gone").unwrap();
    let b = spawn_worker(&log, "b").await;
    let second = reg.register("gone", b.clone()).unwrap();
    assert_eq!(second.generation, 2);
    // A stale registration is never current, even when generations start again at 1.
    let stale = Registration {
        name: "gone".into(),
        cell: a.clone(),
        generation: 2,
    };
    assert!(!reg.is_current(&stale));
    assert!(reg.is_current(&second));
    a.stop(None);
    b.stop(None);
}

#[tokio::test(start_paused = true)]
async fn rg3_many_short_lived_names_leave_nothing_behind() {
    let reg = Registry::with_restart_grace(Duration::from_secs(1));
    let log = Log::new();
    let mut cells = vec![];
    for i in 0..100 {
        let cell = spawn_worker(&log, "s").await;
        reg.register(format!("session-{i}"), cell.clone()).unwrap();
        cells.push(cell);
    }
    for c in &cells {
        c.stop(None);
        c.wait(None).await.unwrap();
    }
    eventually("all unregistered", || reg.list().is_empty()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(reg.tombstone_count(), 0);
}

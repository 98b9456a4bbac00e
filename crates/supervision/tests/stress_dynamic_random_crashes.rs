//! Stress: 1,000 children under a dynamic supervisor crashing at random, then shutdown.
#[path = "support/helpers.rs"]
mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::ActorCell;
use rand::seq::IndexedRandom;
use supervision::*;
use support::*;

const CHILDREN: usize = 1_000;

/// A worker whose instance name is `<id>#<generation>`; every cell ever started is kept.
fn spec(id: usize, log: &Log, cells: &Arc<Mutex<Vec<ActorCell>>>) -> ChildSpec {
    let (log, cells) = (log.clone(), cells.clone());
    ChildSpec::builder(format!("c{id}"))
        .shutdown(Shutdown::Timeout(Duration::from_secs(5)))
        .start(move |args| {
            let (log, cells) = (log.clone(), cells.clone());
            async move {
                let name = format!("{}#{}", args.child_id(), args.generation());
                log.push(format!("start:{name}"));
                let out = args
                    .spawn_linked(
                        None,
                        Worker,
                        WorkerArgs {
                            name,
                            log,
                            stop_delay: None,
                        },
                    )
                    .await?;
                if let StartOutcome::Started(c) = &out {
                    cells.lock().unwrap().push(c.clone());
                }
                Ok(out)
            }
        })
        .build()
        .unwrap()
}

/// Every started instance ended exactly once (a crash or a graceful stop), and nothing else.
fn assert_each_instance_ended_once(log: &Log) -> (usize, usize) {
    let mut started = HashSet::new();
    let mut ends: HashMap<String, usize> = HashMap::new();
    let (mut crashes, mut stops) = (0, 0);
    for e in log.entries() {
        if let Some(n) = e.strip_prefix("start:") {
            assert!(started.insert(n.to_string()), "{n} started twice");
        } else if let Some(n) = e.strip_prefix("crash:") {
            *ends.entry(n.to_string()).or_default() += 1;
            crashes += 1;
        } else if let Some(n) = e.strip_prefix("stop:") {
            *ends.entry(n.to_string()).or_default() += 1;
            stops += 1;
        }
    }
    for n in &started {
        assert_eq!(ends.get(n), Some(&1), "{n} ended {:?} times", ends.get(n));
    }
    assert_eq!(ends.len(), started.len());
    (crashes, stops)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_random_crashes_then_stop_every_child_stopped_once() {
    let (log, cells) = (Log::new(), Arc::new(Mutex::new(Vec::new())));
    let intensity = 10_000;
    let flags = DynamicFlags::builder()
        .intensity(intensity)
        .period(Duration::from_secs(3600))
        .build()
        .unwrap();
    let sup = DynamicSupervisor::start(None, flags).await.unwrap();
    for i in 0..CHILDREN {
        sup.start_child(spec(i, &log, &cells)).await.unwrap();
    }
    let mut injected = 0;
    for round in 0..20 {
        let running: Vec<ActorCell> = sup
            .which_children()
            .await
            .unwrap()
            .iter()
            .filter_map(|c| c.cell.clone())
            .collect();
        let victims: Vec<ActorCell> = running
            .choose_multiple(&mut rand::rng(), 25 + round)
            .cloned()
            .collect();
        for v in &victims {
            send(
                v,
                if round % 2 == 0 {
                    WMsg::Crash
                } else {
                    WMsg::Panic
                },
            );
        }
        injected += victims.len();
        for v in &victims {
            v.wait(None).await.unwrap();
        }
        let expected = CHILDREN + injected;
        for _ in 0..10_000 {
            if cells.lock().unwrap().len() == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(cells.lock().unwrap().len(), expected, "round {round}");
    }
    let snap = sup.inspect().await.unwrap();
    let restarts: u64 = snap.children.iter().map(|c| c.restarts).sum();
    assert_eq!(restarts as usize, injected, "one restart per crash");
    assert_eq!(snap.restarts_in_window, injected);
    assert!(snap.restarts_in_window <= intensity as usize);
    assert_eq!(sup.count_children().await.unwrap().active, CHILDREN);

    sup.stop().await;
    let (crashes, stops) = assert_each_instance_ended_once(&log);
    assert_eq!((crashes, stops), (injected, CHILDREN));
    assert!(
        cells.lock().unwrap().iter().all(is_stopped),
        "no actor left alive"
    );
    assert!(is_stopped(&sup.cell()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_crash_storm_melts_down_after_exactly_intensity_restarts() {
    let (log, cells) = (Log::new(), Arc::new(Mutex::new(Vec::new())));
    let intensity = 100;
    let flags = DynamicFlags::builder()
        .intensity(intensity)
        .period(Duration::from_secs(3600))
        .build()
        .unwrap();
    let sup = DynamicSupervisor::start(None, flags).await.unwrap();
    for i in 0..CHILDREN {
        sup.start_child(spec(i, &log, &cells)).await.unwrap();
    }
    let running: Vec<ActorCell> = cells.lock().unwrap().clone();
    let victims: Vec<&ActorCell> = running.choose_multiple(&mut rand::rng(), 150).collect();
    for v in &victims {
        send(v, WMsg::Crash);
    }
    sup.wait().await;
    // Restarts happened for the first `intensity` crashes only; the next one melted it down.
    assert_eq!(cells.lock().unwrap().len(), CHILDREN + intensity as usize);
    let (crashes, stops) = assert_each_instance_ended_once(&log);
    assert_eq!(crashes + stops, CHILDREN + intensity as usize);
    assert!(crashes <= 150);
    assert!(
        cells.lock().unwrap().iter().all(is_stopped),
        "no actor left alive"
    );
}

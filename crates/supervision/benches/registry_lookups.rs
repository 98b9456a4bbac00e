//! Registry lookups per second under contention from 8 tasks (plus a writer re-registering).
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use supervision::Registry;

struct Idle;

impl Actor for Idle {
    type Msg = ();
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

const NAMES: usize = 1_000;
const TASKS: usize = 8;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(TASKS)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let reg = Registry::new();
        let mut cells = vec![];
        for i in 0..NAMES {
            let (a, _) = Actor::spawn(None, Idle, ()).await.expect("spawn");
            reg.register(format!("n{i}"), a.get_cell()).expect("register");
            cells.push(a.get_cell());
        }
        for with_writer in [false, true] {
            let stop = Arc::new(AtomicBool::new(false));
            let total = Arc::new(AtomicU64::new(0));
            let mut tasks = vec![];
            for t in 0..TASKS {
                let (reg, stop, total) = (reg.clone(), stop.clone(), total.clone());
                tasks.push(tokio::spawn(async move {
                    let mut n = 0u64;
                    let mut i = t * 97;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..1_000 {
                            i = (i + 7) % NAMES;
                            std::hint::black_box(reg.lookup(&format!("n{i}")));
                            n += 1;
                        }
                        tokio::task::yield_now().await;
                    }
                    total.fetch_add(n, Ordering::Relaxed);
                }));
            }
            let writer = with_writer.then(|| {
                let (reg, stop) = (reg.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut writes = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let (a, _) = Actor::spawn(None, Idle, ()).await.expect("spawn");
                        let name = format!("w{}", writes % 100);
                        if let Some(old) = reg.unregister(&name) {
                            old.cell.stop(None);
                        }
                        reg.register(name, a.get_cell()).expect("register");
                        writes += 1;
                        tokio::task::yield_now().await;
                    }
                    writes
                })
            });
            let t0 = Instant::now();
            tokio::time::sleep(Duration::from_secs(2)).await;
            stop.store(true, Ordering::Relaxed);
            for t in tasks {
                t.await.expect("task");
            }
            let secs = t0.elapsed().as_secs_f64();
            let writes = match writer {
                Some(w) => w.await.expect("writer"),
                None => 0,
            };
            println!(
                "registry: {TASKS} reader tasks, {NAMES} names{}: {:.2} M lookups/s total ({:.0} writes/s)",
                if with_writer { ", 1 writer" } else { "" },
                total.load(Ordering::Relaxed) as f64 / secs / 1e6,
                writes as f64 / secs,
            );
        }
        for c in cells {
            c.stop(None);
        }
    });
}

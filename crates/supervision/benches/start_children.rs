//! Time to start 10,000 trivial children (dynamic `start_child` one by one, and a static list),
//! and to terminate 10,000 dynamic children one by one (session churn).
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use supervision::{ChildSpec, DynamicFlags, DynamicSupervisor, Supervisor, SupervisorFlags};

struct Trivial;

impl Actor for Trivial {
    type Msg = ();
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

fn spec(i: usize) -> ChildSpec {
    ChildSpec::builder(format!("c{i}"))
        .start(|args| async move { args.spawn_linked(None, Trivial, ()).await })
        .build()
        .expect("valid spec")
}

const N: usize = 10_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for run in 0..3 {
            let sup = DynamicSupervisor::start(None, DynamicFlags::default())
                .await
                .expect("start");
            let t0 = Instant::now();
            for i in 0..N {
                sup.start_child(spec(i)).await.expect("start_child");
            }
            let dynamic = t0.elapsed();
            let t1 = Instant::now();
            sup.stop().await;
            let stop = t1.elapsed();

            let sup = DynamicSupervisor::start(None, DynamicFlags::default())
                .await
                .expect("start");
            for i in 0..N {
                sup.start_child(spec(i)).await.expect("start_child");
            }
            let t4 = Instant::now();
            for i in 0..N {
                sup.terminate_child(format!("c{i}"))
                    .await
                    .expect("terminate_child");
            }
            let terminate = t4.elapsed();
            sup.stop().await;

            let specs: Vec<_> = (0..N).map(spec).collect();
            let t2 = Instant::now();
            let sup = Supervisor::start(None, SupervisorFlags::default(), specs)
                .await
                .expect("start");
            let static_start = t2.elapsed();
            let t3 = Instant::now();
            sup.stop().await;
            let static_stop = t3.elapsed();
            println!(
                "run {run}: dynamic start_child x{N}: {} ({:.1} us/child), concurrent stop: {}; \
                 terminate_child x{N}: {} ({:.1} us/child); \
                 static start x{N}: {} ({:.1} us/child), ordered stop: {}",
                ms(dynamic),
                dynamic.as_secs_f64() * 1e6 / N as f64,
                ms(stop),
                ms(terminate),
                terminate.as_secs_f64() * 1e6 / N as f64,
                ms(static_start),
                static_start.as_secs_f64() * 1e6 / N as f64,
                ms(static_stop),
            );
        }
    });
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

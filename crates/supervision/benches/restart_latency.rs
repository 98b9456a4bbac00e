//! Restart latency of one child: from the crash message to the new instance running.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use supervision::{ChildSpec, StartOutcome, Supervisor, SupervisorFlags};
use tokio::sync::mpsc;

struct Crashy;

impl Actor for Crashy {
    type Msg = ();
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn handle(&self, _: ActorRef<()>, _: (), _: &mut ()) -> Result<(), ActorProcessingErr> {
        Err("crash".into())
    }
}

const ROUNDS: usize = 5_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let spec = ChildSpec::builder("crashy")
            .start(move |args| {
                let tx = tx.clone();
                async move {
                    let out = args.spawn_linked(None, Crashy, ()).await?;
                    if let StartOutcome::Started(cell) = &out {
                        let _ = tx.send(cell.clone());
                    }
                    Ok(out)
                }
            })
            .build()
            .expect("spec");
        let flags = SupervisorFlags::builder()
            .intensity(u32::MAX)
            .period(Duration::from_secs(3600))
            .build()
            .expect("flags");
        let sup = Supervisor::start(None, flags, vec![spec])
            .await
            .expect("start");
        let mut cell = rx.recv().await.expect("first instance");
        let mut samples = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let t0 = Instant::now();
            cell.send_message(()).expect("send");
            cell = rx.recv().await.expect("restarted instance");
            samples.push(t0.elapsed());
        }
        samples.sort();
        let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];
        println!(
            "restart latency over {ROUNDS} crashes: median {:?}, p90 {:?}, p99 {:?}, max {:?}",
            pct(0.5),
            pct(0.9),
            pct(0.99),
            samples[samples.len() - 1]
        );
        sup.stop().await;
    });
}

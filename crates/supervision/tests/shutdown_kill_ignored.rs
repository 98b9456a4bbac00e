//! SH2, SH3: a kill is never waited for without bound. (Alone in its binary: it captures
//! `tracing` events, whose per-callsite interest cache races with tests on other threads.)
#[path = "support/helpers.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use supervision::*;
use support::*;

/// An actor whose handler blocks its thread in a synchronous wait (never an `.await`), so it
/// cannot act on a stop or a kill until released: a kill that is not honoured.
struct ThreadBlocker;

enum BMsg {
    Block,
}

impl ractor::Actor for ThreadBlocker {
    type Msg = BMsg;
    type State = (std::sync::mpsc::Receiver<()>, Arc<AtomicBool>);
    type Arguments = (std::sync::mpsc::Receiver<()>, Arc<AtomicBool>);

    async fn pre_start(
        &self,
        _: ractor::ActorRef<BMsg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ractor::ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _: ractor::ActorRef<BMsg>,
        BMsg::Block: BMsg,
        (release, blocked): &mut Self::State,
    ) -> Result<(), ractor::ActorProcessingErr> {
        blocked.store(true, Ordering::SeqCst);
        let _ = release.recv();
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn sh2_sh3_a_kill_that_is_not_honoured_never_hangs_the_supervisor() {
    // The blocker runs on a runtime of its own, whose only thread it blocks; the supervisor
    // (on this paused runtime) must give up on it after a bounded wait and move on.
    let other = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for shutdown in [
        Shutdown::BrutalKill,
        Shutdown::Timeout(Duration::from_secs(1)),
    ] {
        let (captured, _guard) = capture();
        let log = Log::new();
        let (release, wait_release) = std::sync::mpsc::channel::<()>();
        let blocked = Arc::new(AtomicBool::new(false));
        let slot = Arc::new(Mutex::new(Some((wait_release, blocked.clone()))));
        let rt = other.handle().clone();
        let blocker = ChildSpec::builder("blocker")
            .shutdown(shutdown)
            .start(move |args| {
                let (rt, state) = (rt.clone(), slot.lock().unwrap().take());
                async move {
                    let state = state.ok_or("started twice")?;
                    let sup = args.supervisor().clone();
                    let (actor, _) = rt
                        .spawn(ractor::Actor::spawn_linked(None, ThreadBlocker, state, sup))
                        .await
                        .map_err(StartError::from_error)??;
                    Ok(StartOutcome::Started(actor.get_cell()))
                }
            })
            .build()
            .unwrap();
        let sup = Supervisor::start(
            None,
            SupervisorFlags::default(),
            vec![worker("w", &log).build().unwrap(), blocker],
        )
        .await
        .unwrap();
        let b = child(&sup, "blocker").await;
        b.send_message(BMsg::Block).unwrap();
        // The other runtime runs on a real thread: wait for it in real time (bounded).
        for _ in 0..10_000 {
            if blocked.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(blocked.load(Ordering::SeqCst), "the blocker never blocked");
        let stopped = tokio::time::timeout(Duration::from_secs(24 * 3600), sup.stop()).await;
        let _ = release.send(());
        assert!(
            stopped.is_ok(),
            "{shutdown:?}: the supervisor hung on a kill"
        );
        assert_eq!(log.entries(), ["start:w", "stop:w"], "it moved on to w");
        let errors = captured.with_context(report::SHUTDOWN_ERROR);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0]["child_id"], "blocker");
        assert!(errors[0]["reason"].contains("kill"), "{errors:?}");
        b.wait(None).await.unwrap();
    }
    other.shutdown_background();
}

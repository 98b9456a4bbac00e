//! A permission callback that blocks (until released) delays neither an interrupt of its own
//! session nor the turns of another session; the CLI's `control_cancel_request` cancels it.

#[path = "support/common.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use claude_session::{Callbacks, Permission, Session};
use support::*;
use tokio::sync::Notify;

/// Sets its flag when dropped: the callback's future was dropped (cancelled or finished).
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_callback_delays_neither_an_interrupt_nor_another_session() {
    let Some(env) = RealEnv::start().await else {
        return;
    };
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let released = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    let callbacks = {
        let (entered, release, released, dropped) = (
            entered.clone(),
            release.clone(),
            released.clone(),
            dropped.clone(),
        );
        Callbacks::builder()
            .can_use_tool(move |_req| {
                let (entered, release, released, dropped) = (
                    entered.clone(),
                    release.clone(),
                    released.clone(),
                    dropped.clone(),
                );
                async move {
                    let _guard = DropFlag(dropped);
                    entered.notify_one();
                    release.notified().await;
                    released.store(true, Ordering::SeqCst);
                    Ok(Permission::allow())
                }
            })
            .deadline(Duration::from_secs(600))
            .build()
    };
    let slow = Session::start(
        env.config("slow", env.options().build().unwrap())
            .callbacks(callbacks)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let fast = env.session("fast").await;
    let (slow_pid, fast_pid) = (pid_of(&slow).await, pid_of(&fast).await);

    let marker = env.sandbox.work_dir().join("slow.txt");
    let turn = slow
        .query(format!("RUN_TOOL: echo slow | tee {}", marker.display()))
        .await
        .unwrap();
    let slow_turn = tokio::spawn(turn.collect());
    tokio::time::timeout(Duration::from_secs(60), entered.notified())
        .await
        .expect("the permission callback was asked");

    // Another session's turn completes while the callback is blocked.
    let other = fast
        .query("hello from the other session")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!other.is_error(), "{:?}", other.result);
    assert!(!released.load(Ordering::SeqCst));

    // The interrupt completes while the callback is still blocked, and ends the turn.
    assert!(slow.interrupt().await.expect("interrupt confirmed"));
    assert!(!released.load(Ordering::SeqCst));
    let out = slow_turn.await.unwrap().expect("the interrupted turn ends");
    assert!(out.is_error(), "{:?}", out.result);
    assert!(!released.load(Ordering::SeqCst));
    assert!(!marker.exists(), "the command ran without permission");

    // The CLI gave up on the request (`control_cancel_request`): the callback was cancelled.
    for _ in 0..400 {
        if dropped.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        dropped.load(Ordering::SeqCst) && !released.load(Ordering::SeqCst),
        "the blocked callback was not cancelled"
    );

    // Both sessions go on.
    let again = slow
        .query("are you still there")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(!again.is_error(), "{:?}", again.result);
    release.notify_waiters();
    stop_and_check(slow, slow_pid).await;
    stop_and_check(fast, fast_pid).await;
}

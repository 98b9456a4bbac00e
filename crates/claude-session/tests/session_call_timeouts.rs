//! Every call from a [`Session`] into its actor is bounded: when the actor is stuck (here in a
//! launcher's group signal that hangs, as a kill over a dead remote link would), `health`,
//! `interrupt`, the control requests and `stop` return a typed error within their bounds
//! instead of waiting for ever; `start` does not wait for ever on a launcher that never
//! finishes.

#[path = "support/common.rs"]
mod support;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use claude_protocol::CommandSpec;
use claude_session::{
    GroupSignal, GroupSignaller, LaunchError, LaunchedProcess, Launcher, LocalLauncher, Session,
    SessionError,
};
use claude_testing::fake_claude::{Scenario, Turn};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use support::{FakeEnv, pid_of};
use tokio::io::{AsyncRead, ReadBuf};

/// Far above every bound under test: only a call that waits for ever exceeds it.
const NEVER: Duration = Duration::from_secs(30);

/// Holds every SIGKILL until released, and says when one is held.
#[derive(Debug, Default)]
struct Gate {
    held: AtomicBool,
    released: Mutex<bool>,
    open: Condvar,
}

impl Gate {
    fn hold(&self) {
        if *self.released.lock().unwrap() {
            return;
        }
        // Blocks this worker thread, as a synchronous remote kill would; `block_in_place` hands
        // the worker's other tasks to another thread meanwhile.
        tokio::task::block_in_place(|| {
            self.held.store(true, Ordering::SeqCst);
            let mut released = self.released.lock().unwrap();
            while !*released {
                released = self.open.wait(released).unwrap();
            }
        });
    }

    fn release(&self) {
        *self.released.lock().unwrap() = true;
        self.open.notify_all();
    }
}

/// Releases the gate when the test ends, pass or fail, so that a held worker never keeps the
/// runtime from shutting down.
struct ReleaseOnDrop(Arc<Gate>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[derive(Debug)]
struct HeldKill {
    inner: Arc<dyn GroupSignaller>,
    gate: Arc<Gate>,
}

impl GroupSignaller for HeldKill {
    fn signal(&self, signal: GroupSignal) -> io::Result<()> {
        if signal == GroupSignal::Kill {
            self.gate.hold();
        }
        self.inner.signal(signal)
    }

    fn group_alive(&self) -> Option<bool> {
        self.inner.group_alive()
    }
}

/// Cuts a [`CutStdout`]: from then on it reads as closed (a dropped link).
#[derive(Debug, Default)]
struct Cut {
    done: AtomicBool,
    reader: Mutex<Option<Waker>>,
}

impl Cut {
    fn cut(&self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(waker) = self.reader.lock().unwrap().take() {
            waker.wake();
        }
    }
}

/// The CLI's stdout, which reads as closed once cut.
struct CutStdout {
    inner: Pin<Box<dyn AsyncRead + Send>>,
    cut: Arc<Cut>,
}

impl AsyncRead for CutStdout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        *self.cut.reader.lock().unwrap() = Some(cx.waker().clone());
        if self.cut.done.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        self.inner.as_mut().poll_read(cx, buf)
    }
}

/// A local launcher whose stdout can be cut and whose SIGKILL hangs until released.
#[derive(Debug)]
struct Wedging {
    local: LocalLauncher,
    gate: Arc<Gate>,
    cut: Arc<Cut>,
}

impl Launcher for Wedging {
    fn launch<'a>(
        &'a self,
        spec: &'a CommandSpec,
    ) -> BoxFuture<'a, Result<LaunchedProcess, LaunchError>> {
        async move {
            let mut launched = self.local.launch(spec).await?;
            launched.stdout = Box::pin(CutStdout {
                inner: launched.stdout,
                cut: self.cut.clone(),
            });
            launched.signaller = Arc::new(HeldKill {
                inner: launched.signaller,
                gate: self.gate.clone(),
            });
            Ok(launched)
        }
        .boxed()
    }
}

fn assert_unresponsive(what: &str, result: Result<(), SessionError>, bound: Duration) {
    match result {
        Err(SessionError::Unresponsive {
            session,
            request,
            timeout,
        }) => {
            assert_eq!(session, "stuck");
            assert_eq!(request, what);
            assert_eq!(timeout, bound, "{what}");
        }
        other => panic!("{what}: expected Unresponsive, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_into_a_stuck_actor_return_typed_errors_within_their_bounds() {
    let env = FakeEnv::new();
    let gate = Arc::new(Gate::default());
    let _release = ReleaseOnDrop(gate.clone());
    let cut = Arc::new(Cut::default());
    let scenario = Scenario::new().turn(Turn::text("a long answer").slow(200, 50));
    let control = Duration::from_millis(500);
    let config = env
        .config("stuck", &scenario)
        .no_stall_timeout()
        .control_timeout(control)
        .stdin_grace("200ms")
        .term_grace("200ms")
        .launcher(Wedging {
            local: LocalLauncher::new(),
            gate: gate.clone(),
            cut: cut.clone(),
        })
        .build()
        .unwrap();
    let session = Session::start(config).await.unwrap();
    let pid = pid_of(&session).await;
    let mut turn = session.query("go").await.unwrap();
    turn.next().await.unwrap().unwrap();
    // The link drops: stdout reads as closed while the CLI lives on, so the actor kills the
    // CLI, and the kill hangs. The actor is stuck in that handler, still "running".
    cut.cut();
    for _ in 0..400 {
        if gate.held.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(gate.held.load(Ordering::SeqCst), "the kill is held");
    assert!(session.is_running(), "the actor looks alive");

    let health = tokio::time::timeout(NEVER, session.health())
        .await
        .expect("health returned");
    assert_unresponsive("health", health.map(drop), control);
    let interrupt = tokio::time::timeout(NEVER, session.interrupt())
        .await
        .expect("interrupt returned");
    assert_unresponsive("interrupt", interrupt.map(drop), control);
    let set_model = tokio::time::timeout(NEVER, session.set_model(Some("claude-x")))
        .await
        .expect("set_model returned");
    assert_unresponsive("set_model", set_model, control);
    let context = tokio::time::timeout(NEVER, session.context_usage())
        .await
        .expect("context_usage returned");
    assert_unresponsive("get_context_usage", context.map(drop), control);

    // `stop` waits for the whole shutdown recipe, and no longer; then it kills the actor.
    let stop = tokio::time::timeout(NEVER * 2, session.stop())
        .await
        .expect("stop returned");
    match stop {
        Err(SessionError::Unresponsive { request, .. }) => assert_eq!(request, "stop"),
        other => panic!("stop: expected Unresponsive, got {other:?}"),
    }
    gate.release();
    support::wait_stopped(&session).await;
    support::assert_group_gone(pid).await;
    drop(turn);
}

/// A launcher that never finishes.
#[derive(Debug)]
struct NeverLaunches;

impl Launcher for NeverLaunches {
    fn launch<'a>(
        &'a self,
        _spec: &'a CommandSpec,
    ) -> BoxFuture<'a, Result<LaunchedProcess, LaunchError>> {
        futures::future::pending().boxed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_does_not_wait_for_ever_on_a_launcher_that_never_finishes() {
    let env = FakeEnv::new();
    let config = env
        .config("never", &Scenario::new())
        .init_timeout("500ms")
        .launcher(NeverLaunches)
        .build()
        .unwrap();
    let err = tokio::time::timeout(NEVER, Session::start(config))
        .await
        .expect("start returned")
        .unwrap_err();
    match &err {
        SessionError::LaunchTimeout { session, timeout } => {
            assert_eq!(session, "never");
            assert_eq!(*timeout, Duration::from_millis(500));
        }
        other => panic!("expected LaunchTimeout, got {other:?}"),
    }
    assert!(err.to_string().contains("launcher"), "{err}");
}

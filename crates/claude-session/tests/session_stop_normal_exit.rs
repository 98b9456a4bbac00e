//! A stop the owner asked for ends the actor with a *normal* reason, so that a supervisor does
//! not restart a transient session it was told to stop; a dropped handle too. A crash stays
//! abnormal.
//!
//! The classification is the one `supervision::ExitReason::from_stop_reason` makes (and
//! docs/semantics.md tabulates): `None`, `"normal"`, `"shutdown"` and `"shutdown:<anything>"`
//! are normal, every other reason and every failure is abnormal.

#[path = "support/common.rs"]
mod support;

use std::time::Duration;

use claude_session::{Session, StartOptions};
use claude_testing::fake_claude::{Fault, Scenario};
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use support::{FakeEnv, pid_of};
use tokio::sync::mpsc;

/// How a linked child ended, as a parent actor sees it.
#[derive(Debug)]
enum Exit {
    Terminated(Option<String>),
    Failed(String),
}

impl Exit {
    fn is_normal(&self) -> bool {
        match self {
            Exit::Terminated(None) => true,
            Exit::Terminated(Some(r)) => {
                r == "normal" || r == "shutdown" || r.starts_with("shutdown:")
            }
            Exit::Failed(_) => false,
        }
    }
}

/// A parent that reports its children's exits.
struct Parent;

impl Actor for Parent {
    type Msg = ();
    type State = mpsc::UnboundedSender<Exit>;
    type Arguments = mpsc::UnboundedSender<Exit>;

    async fn pre_start(
        &self,
        _myself: ActorRef<()>,
        exits: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(exits)
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<()>,
        event: SupervisionEvent,
        exits: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(_, _, reason) => {
                let _ = exits.send(Exit::Terminated(reason));
            }
            SupervisionEvent::ActorFailed(_, err) => {
                let _ = exits.send(Exit::Failed(err.to_string()));
            }
            _ => {}
        }
        Ok(())
    }
}

async fn linked_session(
    env: &FakeEnv,
    name: &str,
    scenario: &Scenario,
) -> (Session, mpsc::UnboundedReceiver<Exit>, ActorRef<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (parent, _join) = Actor::spawn(None, Parent, tx).await.unwrap();
    let mut options = StartOptions::default();
    options.supervisor = Some(parent.get_cell());
    let config = env.config(name, scenario).build().unwrap();
    let session = Session::start_with(config, options).await.unwrap();
    (session, rx, parent)
}

async fn next_exit(exits: &mut mpsc::UnboundedReceiver<Exit>) -> Exit {
    tokio::time::timeout(Duration::from_secs(30), exits.recv())
        .await
        .expect("the parent heard of the exit")
        .expect("the parent is running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_actor_with_a_normal_reason() {
    let env = FakeEnv::new();
    let (session, mut exits, parent) = linked_session(&env, "stopped", &Scenario::new()).await;
    let pid = pid_of(&session).await;
    session.query("hi").await.unwrap().collect().await.unwrap();
    session.stop().await.unwrap();
    let exit = next_exit(&mut exits).await;
    assert!(exit.is_normal(), "a stop is a normal exit: {exit:?}");
    support::assert_group_gone(pid).await;
    parent.stop(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_handle_ends_the_actor_with_a_normal_reason() {
    let env = FakeEnv::new();
    let (session, mut exits, parent) = linked_session(&env, "dropped", &Scenario::new()).await;
    let pid = pid_of(&session).await;
    drop(session);
    let exit = next_exit(&mut exits).await;
    assert!(
        exit.is_normal(),
        "a dropped handle is a normal exit: {exit:?}"
    );
    support::assert_group_gone(pid).await;
    parent.stop(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_ends_the_actor_abnormally() {
    let env = FakeEnv::new();
    let scenario = Scenario::new().fault_on_turn(1, Fault::crash_mid_turn(3, "boom"));
    let (session, mut exits, parent) = linked_session(&env, "crashed", &scenario).await;
    let pid = pid_of(&session).await;
    let _ = session.query("hi").await.unwrap().collect().await;
    let exit = next_exit(&mut exits).await;
    assert!(!exit.is_normal(), "a crash is abnormal: {exit:?}");
    assert!(
        matches!(&exit, Exit::Failed(reason) if reason.contains("exit code 3")),
        "{exit:?}"
    );
    support::assert_group_gone(pid).await;
    parent.stop(None);
}

//! Stopping one child per its shutdown spec, and judging the reason it exited with (OTP's
//! `shutdown/1` and `do_terminate/2`).
//!
//! The exit reason of a child the supervisor stops arrives as a supervision event in the
//! supervisor's own port, which it cannot read while it is inside a handler (or in `post_stop`)
//! waiting for that child. So each supervisor has an [`ExitRelay`], a small unlinked actor that
//! *monitors* (ractor's `monitors` feature) every child just before it is stopped: the child's
//! exit event reaches the relay too, and the supervisor asks the relay for the reasons once the
//! children are gone (one question for a whole shutdown). ractor sends the exit event before it marks the actor stopped (which is what
//! `wait` waits for), and an actor reads its supervision port before its message port, so the
//! question is always answered after the event has been recorded.

use std::collections::HashMap;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};

use crate::child::{RestartType, Shutdown};
use crate::reason::ExitReason;

/// Asks the relay for the recorded exit reasons of children (one call for a whole shutdown).
pub(crate) enum RelayMsg {
    Take(Vec<ActorId>, RpcReplyPort<Vec<Option<ExitReason>>>),
}

pub(crate) struct RelayState {
    supervisor: ActorId,
    reasons: HashMap<ActorId, ExitReason>,
}

/// Records the exit reasons of the children its supervisor is stopping. It also monitors the
/// supervisor and stops itself when the supervisor exits, however it exits (a killed
/// supervisor runs no `post_stop`), so it never outlives it.
pub(crate) struct ExitRelay;

impl Actor for ExitRelay {
    type Msg = RelayMsg;
    type State = RelayState;
    type Arguments = ActorCell;

    async fn pre_start(
        &self,
        myself: ActorRef<RelayMsg>,
        supervisor: ActorCell,
    ) -> Result<RelayState, ActorProcessingErr> {
        myself.get_cell().monitor(supervisor.clone());
        Ok(RelayState {
            supervisor: supervisor.get_id(),
            reasons: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<RelayMsg>,
        msg: RelayMsg,
        st: &mut RelayState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RelayMsg::Take(ids, reply) => {
                let reasons = ids.iter().map(|id| st.reasons.remove(id)).collect();
                let _ = reply.send(reasons);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RelayMsg>,
        event: SupervisionEvent,
        st: &mut RelayState,
    ) -> Result<(), ActorProcessingErr> {
        if let (Some(cell), Some(reason)) = (event.actor_cell(), ExitReason::from_event(&event)) {
            if cell.get_id() == st.supervisor {
                myself.stop(None);
            } else {
                st.reasons.insert(cell.get_id(), reason);
            }
        }
        Ok(())
    }
}

/// Spawns a relay for `supervisor`; `None` if ractor refuses (the stops then go unjudged).
pub(crate) async fn spawn_relay(supervisor: ActorCell) -> Option<ActorRef<RelayMsg>> {
    Actor::spawn(None, ExitRelay, supervisor)
        .await
        .ok()
        .map(|(relay, _)| relay)
}

/// Whether an exit during shutdown is the expected one (OTP's `shutdown/1` and
/// `do_terminate/2`): `shutdown` after a graceful stop, `killed` after a brutal kill, and
/// `normal` (or `shutdown` for a brutal kill) from a child that is not permanent.
fn clean_exit(shutdown: Shutdown, restart: RestartType, reason: &str) -> bool {
    let not_permanent = restart != RestartType::Permanent;
    match shutdown {
        Shutdown::BrutalKill => {
            reason == "killed" || (not_permanent && (reason == "shutdown" || reason == "normal"))
        }
        Shutdown::Timeout(_) | Shutdown::Infinity => {
            reason == "shutdown" || (not_permanent && reason == "normal")
        }
    }
}

/// Kills `cell` and waits a bounded time for it to be gone; false if it ignored the kill.
async fn kill(cell: &ActorCell) -> bool {
    cell.kill();
    cell.wait(Some(Shutdown::KILL_WAIT)).await.is_ok()
}

/// A child stopped by [`stop_cell`], to be judged by [`judge`] once its reason is known.
pub(crate) struct Stopped {
    actor: ActorId,
    shutdown: Shutdown,
    pub(crate) restart: RestartType,
    /// False: it did not act on a kill within [`Shutdown::KILL_WAIT`] and was abandoned.
    gone: bool,
}

/// Stops one child instance per its shutdown spec; `relay` (if any) monitors it first so that
/// its exit reason can be judged.
pub(crate) async fn stop_cell(
    cell: &ActorCell,
    shutdown: Shutdown,
    restart: RestartType,
    relay: Option<&ActorRef<RelayMsg>>,
) -> Stopped {
    if let Some(relay) = relay {
        relay.get_cell().monitor(cell.clone());
    }
    let gone = match shutdown {
        Shutdown::BrutalKill => kill(cell).await,
        Shutdown::Timeout(d) => {
            cell.stop(Some("shutdown".to_string()));
            cell.wait(Some(d)).await.is_ok() || kill(cell).await
        }
        Shutdown::Infinity => {
            cell.stop(Some("shutdown".to_string()));
            let _ = cell.wait(None).await;
            true
        }
    };
    if !gone {
        if let Some(relay) = relay {
            relay.get_cell().unmonitor(cell.clone());
        }
    }
    Stopped {
        actor: cell.get_id(),
        shutdown,
        restart,
        gone,
    }
}

/// Judges stopped children: `Err(reason)` is a shutdown error, in the order given. A child
/// that exited with an unexpected reason (`killed` after its timeout included) or was
/// abandoned is one. An exit whose reason is unknown (no relay, or the child was already gone
/// before it could be monitored: it exited by itself at that very moment) is not reported.
pub(crate) async fn judge(
    relay: Option<&ActorRef<RelayMsg>>,
    stopped: &[Stopped],
) -> Vec<Result<(), String>> {
    let ids: Vec<ActorId> = stopped.iter().map(|s| s.actor).collect();
    let mut reasons = match relay {
        // Bounded like every call: the relay answers at once unless it is gone (then:
        // unknown). The children are gone, so their events are already in its port.
        Some(relay) => match relay
            .call(
                |reply| RelayMsg::Take(ids, reply),
                Some(Shutdown::KILL_WAIT),
            )
            .await
        {
            Ok(CallResult::Success(reasons)) => reasons,
            _ => Vec::new(),
        },
        None => Vec::new(),
    };
    reasons.resize(stopped.len(), None);
    stopped
        .iter()
        .zip(reasons)
        .map(|(s, reason)| {
            if !s.gone {
                return Err(abandoned());
            }
            match reason {
                Some(r) if !clean_exit(s.shutdown, s.restart, &r.reason) => Err(r.reason),
                _ => Ok(()),
            }
        })
        .collect()
}

fn abandoned() -> String {
    let waited: Duration = Shutdown::KILL_WAIT;
    format!("killed, but still running after {waited:?}: abandoned")
}

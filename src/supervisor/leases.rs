//! The tree's lease keeper: which session holds which conversation.
//!
//! One actor under the root owns the table (conversation id → session name), so that two
//! sessions of one tree never resume the same conversation at once; every call into it is
//! bounded by the tree's call timeout. (In a fleet this is where the node's lease heartbeat
//! belongs.)

use std::collections::HashMap;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use supervision::{ChildSpec, StartOutcome};

use super::SupervisorError;

pub(crate) enum LeaseMsg {
    Acquire {
        session_id: String,
        name: String,
        reply: RpcReplyPort<Result<(), String>>,
    },
    ReleaseAll {
        name: String,
    },
}

struct LeaseKeeper;

impl Actor for LeaseKeeper {
    type Msg = LeaseMsg;
    type State = HashMap<String, String>;
    type Arguments = ();

    async fn pre_start(
        &self,
        _: ActorRef<LeaseMsg>,
        (): (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(HashMap::new())
    }

    async fn handle(
        &self,
        _: ActorRef<LeaseMsg>,
        msg: LeaseMsg,
        leases: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            LeaseMsg::Acquire {
                session_id,
                name,
                reply,
            } => {
                let holder = leases.entry(session_id).or_insert_with(|| name.clone());
                let answer = if *holder == name {
                    Ok(())
                } else {
                    Err(holder.clone())
                };
                let _ = reply.send(answer);
            }
            LeaseMsg::ReleaseAll { name } => leases.retain(|_, holder| *holder != name),
        }
        Ok(())
    }
}

/// The lease keeper's address; it is a child of the root, so it may be replaced after a crash
/// (its table is rebuilt as sessions take their leases again).
#[derive(Clone)]
pub(crate) struct Leases {
    actor: tokio::sync::watch::Sender<Option<ActorRef<LeaseMsg>>>,
    timeout: Duration,
}

impl Leases {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            actor: tokio::sync::watch::channel(None).0,
            timeout,
        }
    }

    /// The root's child spec: the keeper, restarted by the root if it crashes.
    pub(crate) fn child_spec(&self) -> ChildSpec {
        let slot = self.actor.clone();
        ChildSpec::builder("leases")
            .start(move |args| {
                let slot = slot.clone();
                async move {
                    let (actor, _) =
                        Actor::spawn_linked(None, LeaseKeeper, (), args.supervisor().clone())
                            .await
                            .map_err(supervision::StartError::from_error)?;
                    slot.send_replace(Some(actor.clone()));
                    Ok(StartOutcome::Started(actor.get_cell()))
                }
            })
            .build()
            .expect("a static id and a start function make a valid spec")
    }

    /// Takes the lease on `session_id` for `name` (a no-op if `name` holds it already).
    pub(crate) async fn acquire(
        &self,
        session_id: &str,
        name: &str,
    ) -> Result<(), SupervisorError> {
        let actor = self.actor.borrow().clone().ok_or_else(|| self.gone(name))?;
        let answer = ractor::call_t!(
            actor,
            |reply| LeaseMsg::Acquire {
                session_id: session_id.to_owned(),
                name: name.to_owned(),
                reply
            },
            self.timeout.as_millis() as u64
        );
        match answer {
            Ok(Ok(())) => Ok(()),
            Ok(Err(holder)) => Err(SupervisorError::Leased {
                name: name.to_owned(),
                session_id: session_id.to_owned(),
                holder,
            }),
            Err(_) => Err(SupervisorError::CallTimeout {
                name: name.to_owned(),
                call: "acquire lease",
                timeout: self.timeout,
            }),
        }
    }

    /// Releases every lease `name` holds.
    pub(crate) fn release_all(&self, name: &str) {
        if let Some(actor) = self.actor.borrow().clone() {
            let _ = actor.cast(LeaseMsg::ReleaseAll {
                name: name.to_owned(),
            });
        }
    }

    fn gone(&self, name: &str) -> SupervisorError {
        SupervisorError::Unavailable {
            name: name.to_owned(),
            reason: "the tree's lease keeper is not running".into(),
        }
    }
}

//! A fleet: several supervisor processes ("nodes") on one store that keeps leases.
//!
//! Each named session is owned by the one node that holds its lease in the store. A node
//! claims a session's lease before it launches anything for it (when the session is started,
//! and again in the keeper's `Prepare` before every launch), carries the lease's fencing token
//! in every write (records and transcript appends), and renews all of its leases in one call
//! per heartbeat ([`SessionStore::renew_leases`]). A refused renewal or a write refused as
//! stale means another node took the session over: this node stops the session's subtree (its
//! CLI with it), marks it owned elsewhere, and never writes for it again. A renewal that cannot
//! reach the store keeps the session only until its lease's expiry: past it, the node stops
//! the session itself (it cannot prove it still owns it).
//!
//! Each heartbeat the node also looks for sessions whose lease has expired (their owner died
//! or was cut off) and claims its share of them by the placement rule: fewest sessions first
//! (a node claims while it holds fewer than the even share of the live sessions and orphans
//! over the live nodes), never past its cap. A claimed session is loaded from the store and
//! resumes its conversation (the transcript is what moves between nodes).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::mpsc;

use super::entry::{Ending, SessionState};
use super::{SessionSpec, SupervisorError, SupervisorEventKind, Tree, contained};
use crate::store::{Lease, SessionRecord, SessionStore, StoreError, now_ms};

/// Builds the spec of a session this node takes over, from its stored record (`None`: this
/// node does not run it, and leaves it to another).
pub type SpecForRecord = Arc<dyn Fn(&SessionRecord) -> Option<SessionSpec> + Send + Sync>;

/// How a supervisor takes part in a fleet (see [`ClaudeSupervisorBuilder::fleet`]).
///
/// [`ClaudeSupervisorBuilder::fleet`]: crate::ClaudeSupervisorBuilder::fleet
#[derive(Clone)]
#[non_exhaustive]
pub struct FleetConfig {
    /// This node's id, unique in the fleet (the owner written into leases).
    pub node_id: String,
    /// How long a lease lasts without a renewal: how long the fleet waits before it takes a
    /// silent node's sessions over (default 15 s).
    pub ttl: Duration,
    /// How often the node renews its leases and looks for orphaned sessions (default 5 s;
    /// keep it well under the TTL).
    pub heartbeat: Duration,
    /// At most this many sessions on this node (default: no cap).
    pub max_sessions_per_node: Option<usize>,
    /// Each session's working directory, when its options name none:
    /// `<data_dir>/<encoded name>` (created on launch). A shared volume mounted at the same
    /// path on every node keeps the files a session's CLI wrote; without one, only the
    /// conversation (the transcript in the store) moves with a session.
    pub data_dir: Option<PathBuf>,
    spec_for: SpecForRecord,
}

impl std::fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetConfig")
            .field("node_id", &self.node_id)
            .field("ttl", &self.ttl)
            .field("heartbeat", &self.heartbeat)
            .field("max_sessions_per_node", &self.max_sessions_per_node)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl FleetConfig {
    /// A node `node_id` that builds the spec of a session it takes over with `spec_for`.
    pub fn new(
        node_id: impl Into<String>,
        spec_for: impl Fn(&SessionRecord) -> Option<SessionSpec> + Send + Sync + 'static,
    ) -> Self {
        Self {
            node_id: node_id.into(),
            ttl: Duration::from_secs(15),
            heartbeat: Duration::from_secs(5),
            max_sessions_per_node: None,
            data_dir: None,
            spec_for: Arc::new(spec_for),
        }
    }

    /// The lease TTL.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The heartbeat period.
    pub fn heartbeat(mut self, heartbeat: Duration) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// The per-node cap.
    pub fn max_sessions_per_node(mut self, n: usize) -> Self {
        self.max_sessions_per_node = Some(n);
        self
    }

    /// The node's data dir (per-session working directories under it).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }
}

/// Who owns one session of the fleet, as the store's leases say.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct FleetSession {
    /// The session name.
    pub name: String,
    /// The node that holds its lease.
    pub owner: String,
    /// Whether the lease has expired (its owner is silent; the fleet is taking it over).
    pub expired: bool,
    /// The lease's fencing token.
    pub token: u64,
}

/// A node's fleet state: its config and the leases it holds.
pub(crate) struct Fleet {
    pub(crate) config: FleetConfig,
    leases: DashMap<String, Lease>,
    lost: mpsc::UnboundedSender<String>,
}

impl Fleet {
    pub(crate) fn new(config: FleetConfig) -> (Self, mpsc::UnboundedReceiver<String>) {
        let (lost, rx) = mpsc::unbounded_channel();
        (
            Self {
                config,
                leases: DashMap::new(),
                lost,
            },
            rx,
        )
    }

    pub(crate) fn node_id(&self) -> &str {
        &self.config.node_id
    }

    /// The fencing token of this node's lease on `name`, if it holds one.
    pub(crate) fn fence(&self, name: &str) -> Option<u64> {
        self.leases.get(name).map(|l| l.token)
    }

    /// Takes (or extends) the lease of `name` for this node. Returns whether it is a new
    /// lease (a new token: whatever was loaded before must be loaded again).
    pub(crate) async fn claim(&self, tree: &Tree, name: &str) -> Result<bool, SupervisorError> {
        let acquired = contained("acquire_lease", || {
            tree.store
                .acquire_lease(name, self.node_id(), self.config.ttl)
        })
        .await;
        match acquired {
            Ok(lease) => {
                let previous = self.leases.insert(name.to_owned(), lease.clone());
                Ok(previous.is_none_or(|p| p.token != lease.token))
            }
            Err(StoreError::LeaseHeld { owner, .. }) => Err(SupervisorError::OwnedElsewhere {
                name: name.to_owned(),
                owner,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the lease of `name` up (the session ends fleet-wide: nobody takes it over).
    pub(crate) async fn release(&self, tree: &Tree, name: &str) {
        if let Some((_, lease)) = self.leases.remove(name) {
            release_lease(tree.store.clone(), lease).await;
        }
    }

    /// As [`release`](Self::release), from synchronous code (the release runs in a task).
    pub(crate) fn release_detached(&self, store: Arc<dyn SessionStore>, name: &str) {
        if let Some((_, lease)) = self.leases.remove(name) {
            tokio::spawn(release_lease(store, lease));
        }
    }

    /// A write for `name` was refused as stale: the session was taken over.
    pub(crate) fn report_stale(&self, name: &str) {
        // At once: no later write of this node carries the stale token, and a turn that just
        // finished sees that it was not stored.
        self.leases.remove(name);
        let _ = self.lost.send(name.to_owned());
    }

    /// Terminates a session another node owns (or an orphan nobody runs): ends its lease in
    /// the store, so that its owner's renewals and writes are refused from now on (the owner
    /// stops its CLI at its next heartbeat) and nobody takes it over. Its record stays.
    pub(crate) async fn revoke(&self, tree: &Tree, name: &str) -> Result<(), SupervisorError> {
        match contained("revoke_lease", || tree.store.revoke_lease(name)).await? {
            Some(lease) => {
                tracing::info!(session = name, owner = %lease.owner, token = lease.token, node = self.node_id(), "terminated from this node: the session's lease is revoked");
                tree.emit(Some(name), SupervisorEventKind::Terminated);
                Ok(())
            }
            None => Err(SupervisorError::NotFound {
                name: name.to_owned(),
            }),
        }
    }

    /// The owner of `name` by the store's leases (`None`: nobody holds it).
    pub(crate) async fn owner_of(
        &self,
        tree: &Tree,
        name: &str,
    ) -> Result<Option<String>, SupervisorError> {
        Ok(fleet_sessions(tree)
            .await?
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| s.owner))
    }
}

async fn release_lease(store: Arc<dyn SessionStore>, lease: Lease) {
    if let Err(e) = contained("release_lease", || store.release_lease(&lease)).await {
        tracing::warn!(session = %lease.name, error = %e, "could not release the session's lease");
    }
}

/// The lease that says a node is alive (held even while it runs no session, so that placement
/// counts it). A name no session can have: session names never start with a dot.
fn node_lease(node_id: &str) -> String {
    format!("{NODE_LEASE}{node_id}")
}

const NODE_LEASE: &str = ".node:";

/// Every lease of the fleet (sessions' and nodes'), in name order.
async fn all_leases(tree: &Tree) -> Result<Vec<FleetSession>, SupervisorError> {
    let list = contained("list_leases", || tree.store.list_leases()).await?;
    Ok(list
        .into_iter()
        .map(|s| FleetSession {
            name: s.lease.name,
            owner: s.lease.owner,
            expired: s.expired,
            token: s.lease.token,
        })
        .collect())
}

/// The fleet as this node sees it in the store's leases, for [`TreeHealth`].
///
/// [`TreeHealth`]: crate::TreeHealth
#[derive(Clone, Debug, Default, serde::Serialize)]
#[non_exhaustive]
pub struct FleetHealth {
    /// This node's id.
    pub node: String,
    /// The live nodes (their own lease current), each with how many live sessions it owns.
    pub nodes: BTreeMap<String, usize>,
    /// Every session of the fleet with its owner, in name order (expired: being taken over).
    pub sessions: Vec<FleetSession>,
    /// Why the leases could not be read (the rest of the report is this node's own).
    pub error: Option<String>,
}

pub(crate) async fn health(tree: &Tree, fleet: &Fleet) -> FleetHealth {
    let mut report = FleetHealth {
        node: fleet.node_id().to_owned(),
        ..FleetHealth::default()
    };
    match all_leases(tree).await {
        Ok(all) => {
            for s in &all {
                if let Some(node) = s.name.strip_prefix(NODE_LEASE)
                    && !s.expired
                {
                    report.nodes.entry(node.to_owned()).or_default();
                }
            }
            for s in all {
                if s.name.starts_with(NODE_LEASE) {
                    continue;
                }
                if !s.expired
                    && let Some(n) = report.nodes.get_mut(&s.owner)
                {
                    *n += 1;
                }
                report.sessions.push(s);
            }
        }
        Err(e) => report.error = Some(e.to_string()),
    }
    report
}

/// Every leased session of the fleet, in name order.
pub(crate) async fn fleet_sessions(tree: &Tree) -> Result<Vec<FleetSession>, SupervisorError> {
    let mut all = all_leases(tree).await?;
    all.retain(|s| !s.name.starts_with(NODE_LEASE));
    Ok(all)
}

/// The node's heartbeat: renews its leases, stops the sessions it lost, claims its share of
/// orphaned ones. Runs until the tree is gone or shutting down (then its leases expire, and
/// the fleet takes its sessions over).
pub(crate) async fn run(tree: Weak<Tree>, mut lost: mpsc::UnboundedReceiver<String>) {
    let Some(period) = tree
        .upgrade()
        .and_then(|t| t.fleet.as_ref().map(|f| f.config.heartbeat))
    else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stale = tokio::select! {
            _ = tick.tick() => None,
            name = lost.recv() => name,
        };
        let Some(tree) = tree.upgrade() else { return };
        if tree.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        let Some(fleet) = tree.fleet.clone() else {
            return;
        };
        match stale {
            Some(name) => lose(&tree, &fleet, &name, Loss::Refused).await,
            None => {
                renew(&tree, &fleet).await;
                let alive = node_lease(fleet.node_id());
                if fleet.fence(&alive).is_none() {
                    // First beat, or lost: say this node is alive (renewed with the rest).
                    if let Err(e) = fleet.claim(&tree, &alive).await {
                        tracing::warn!(node = fleet.node_id(), error = %e, "could not take this node's own lease");
                    }
                }
                claim_orphans(&tree, &fleet).await;
            }
        }
    }
}

async fn renew(tree: &Arc<Tree>, fleet: &Fleet) {
    let leases: Vec<Lease> = fleet.leases.iter().map(|l| l.value().clone()).collect();
    if leases.is_empty() {
        return;
    }
    let renewed = contained("renew_leases", || {
        tree.store.renew_leases(&leases, fleet.config.ttl)
    })
    .await;
    match renewed {
        Ok(results) => {
            for (old, result) in leases.iter().zip(results) {
                match result {
                    Ok(new) => {
                        // Only if it is still held (a concurrent release or loss wins).
                        if let Some(mut held) = fleet.leases.get_mut(&old.name)
                            && held.token == new.token
                        {
                            *held = new;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(session = %old.name, error = %e, "lease renewal refused: the session was taken over or terminated elsewhere");
                        lose(tree, fleet, &old.name, Loss::Refused).await;
                    }
                }
            }
        }
        Err(e) => {
            // The store cannot be reached: a lease past its expiry may be someone else's now.
            tracing::warn!(node = fleet.node_id(), error = %e, "could not renew this node's leases");
            let now = now_ms();
            for lease in leases.iter().filter(|l| l.expires_at_ms <= now) {
                lose(tree, fleet, &lease.name, Loss::Expired).await;
            }
        }
    }
}

/// How this node learnt that it no longer owns a session.
#[derive(Clone, Copy)]
enum Loss {
    /// The store refused its renewal or a write: another node took the lease, or the session
    /// was terminated from another node (its lease revoked).
    Refused,
    /// The store could not be reached and the lease ran out.
    Expired,
}

/// Stops a session this node no longer owns (its subtree, its CLI with it) and forgets it.
async fn lose(tree: &Arc<Tree>, fleet: &Fleet, name: &str, loss: Loss) {
    fleet.leases.remove(name);
    if tree.entry(name).is_none() {
        return;
    }
    // Stopping a CLI takes its stop recipe's time: never in the heartbeat's way.
    let (tree, name) = (tree.clone(), name.to_owned());
    tokio::spawn(async move {
        if let Some(fleet) = tree.fleet.clone() {
            stop_lost(&tree, &fleet, &name, loss).await;
        }
    });
}

async fn stop_lost(tree: &Arc<Tree>, fleet: &Fleet, name: &str, loss: Loss) {
    let owner = fleet.owner_of(tree, name).await;
    // Refused, and nobody holds the lease now: it was revoked (terminated from another node).
    let revoked = matches!((loss, &owner), (Loss::Refused, Ok(None)));
    let owner = owner.ok().flatten().filter(|o| o != fleet.node_id());
    tracing::warn!(session = name, owner = ?owner, "this node lost the session's lease: stopping it here");
    let Some(entry) = tree.entry(name) else {
        return;
    };
    let reason = match &owner {
        Some(o) => format!("its lease was taken over by node `{o}`"),
        None if revoked => {
            "terminated from another node of the fleet (its lease was revoked)".to_owned()
        }
        None => "its lease expired on this node".to_owned(),
    };
    entry.view.send_modify(|v| {
        v.moved_to = owner.clone();
        v.reason = Some(reason.clone());
    });
    let _ = tree.stop_subtree(&entry, Ending::Terminated).await;
    entry.view.send_modify(|v| {
        v.state = SessionState::Gone;
        v.reason = Some(reason.clone());
    });
    // Reported once, by whoever removes it (a refused save and a refused append may both
    // report the same loss).
    if tree.remove(name).is_some() {
        let kind = if revoked {
            SupervisorEventKind::Terminated
        } else {
            SupervisorEventKind::LeaseLost { owner }
        };
        tree.emit(Some(name), kind);
    }
}

/// At most this many take-overs per heartbeat (two store calls each), so that a node taking
/// over a big node's sessions still renews its own leases on time.
const CLAIMS_PER_BEAT: usize = 64;

/// Claims this node's share of sessions whose lease expired.
async fn claim_orphans(tree: &Arc<Tree>, fleet: &Fleet) {
    let Ok(sessions) = all_leases(tree).await else {
        return;
    };
    let me = fleet.node_id();
    // The live nodes (their own leases current), each with its live sessions.
    let mut live: BTreeMap<&str, usize> = sessions
        .iter()
        .filter(|s| !s.expired && s.name.starts_with(NODE_LEASE))
        .map(|s| (s.owner.as_str(), 0))
        .collect();
    let mut orphans = Vec::new();
    for s in &sessions {
        if s.name.starts_with(NODE_LEASE) {
            continue;
        }
        if s.expired {
            if !tree.entries.contains_key(&s.name) {
                orphans.push(s);
            }
        } else if let Some(n) = live.get_mut(s.owner.as_str()) {
            *n += 1;
        }
    }
    if orphans.is_empty() {
        return;
    }
    let mine = tree.entries.len();
    live.insert(me, mine);
    let total: usize = live.values().sum::<usize>() - live[me] + mine + orphans.len();
    let share = total.div_ceil(live.len());
    let cap = fleet.config.max_sessions_per_node.unwrap_or(usize::MAX);
    let target = share.min(cap);
    // Start at a place of our own in the list, so that nodes claiming at once collide less.
    let offset = (fnv(me) as usize) % orphans.len();
    let mut claimed = HashMap::new();
    for i in 0..orphans.len() {
        if tree.entries.len() >= target || claimed.len() >= CLAIMS_PER_BEAT {
            break;
        }
        let orphan = orphans[(i + offset) % orphans.len()];
        if claimed.contains_key(&orphan.name) {
            continue;
        }
        claimed.insert(orphan.name.clone(), ());
        take_over(tree, fleet, &orphan.name, &orphan.owner).await;
    }
}

/// Takes one session over: its lease, its record, a subtree here resuming its conversation.
async fn take_over(tree: &Arc<Tree>, fleet: &Fleet, name: &str, from: &str) {
    match fleet.claim(tree, name).await {
        Ok(_) => {}
        Err(SupervisorError::OwnedElsewhere { .. }) => return,
        Err(e) => {
            tracing::warn!(session = name, error = %e, "could not take the session over");
            return;
        }
    }
    let record = match contained("load", || tree.store.load(name)).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            // A lease without a record: nothing to resume (a session that never started).
            fleet.release(tree, name).await;
            return;
        }
        Err(e) => {
            tracing::warn!(session = name, error = %e, "could not load a session to take over");
            fleet.release(tree, name).await;
            return;
        }
    };
    let Some(spec) = (fleet.config.spec_for)(&record) else {
        fleet.release(tree, name).await;
        return;
    };
    tracing::info!(
        session = name,
        from,
        node = fleet.node_id(),
        "taking the session over"
    );
    tree.emit(
        Some(name),
        SupervisorEventKind::TakenOver {
            from: from.to_owned(),
        },
    );
    // Not awaited: the heartbeat goes on while the CLI launches (the name is taken at once).
    let start = super::start_task(tree.clone(), spec);
    let name = name.to_owned();
    tokio::spawn(async move {
        match start.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(session = %name, error = %e, "a taken-over session did not start")
            }
            Err(e) => tracing::warn!(session = %name, error = %e, "the take-over task failed"),
        }
    });
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

//! A name registry: unique names, automatic unregistration on death, generation numbers and
//! register / unregister events. Readers never take a lock that a writer holds across an
//! `.await` (the map is a `DashMap`; no guard lives across an `.await`).
//!
//! A name that becomes vacant leaves a tombstone (its last generation) for the registry's
//! restart grace: meanwhile `resolve` answers "restarting" and a new registration continues the
//! generations; then the tombstone is dropped, so a registry of short-lived names (one per
//! session) does not grow without bound.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use ractor::{ActorCell, ActorId, ActorStatus};
use tokio::sync::broadcast;
use tokio::time::Instant;

/// A registered name: the actor and the generation of the registration.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The name.
    pub name: String,
    /// The actor holding it.
    pub cell: ActorCell,
    /// 1 for the first registration of this name, +1 for each later one. A name vacant for
    /// longer than the registry's restart grace is forgotten and starts again at 1 (a stale
    /// registration is still detected: [`Registry::is_current`] compares actors too).
    pub generation: u64,
}

/// Why a name was unregistered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnregisterReason {
    /// Its actor exited.
    Exited,
    /// [`Registry::unregister`] was called.
    Explicit,
}

/// An event delivered to subscribers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RegistryEvent {
    /// A name was registered.
    Registered {
        /// The name.
        name: String,
        /// The actor.
        actor: ActorId,
        /// The generation.
        generation: u64,
    },
    /// A name was unregistered.
    Unregistered {
        /// The name.
        name: String,
        /// The actor that held it.
        actor: ActorId,
        /// The generation that ended.
        generation: u64,
        /// Why.
        reason: UnregisterReason,
    },
}

/// A registry failure.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The name is taken by a live actor.
    #[error("name `{name}` is already registered (generation {generation})")]
    AlreadyRegistered {
        /// The name.
        name: String,
        /// The holder.
        holder: ActorCell,
        /// The holder's generation.
        generation: u64,
    },
    /// The name is not registered, and was not within the restart grace (never, or longer
    /// ago): no restart is expected.
    #[error("name `{name}` is not registered")]
    NotRegistered {
        /// The name.
        name: String,
    },
    /// The name was registered until less than the restart grace ago and is not now: its actor
    /// is down, presumably being restarted.
    #[error("name `{name}` is restarting (last generation {last_generation})")]
    Restarting {
        /// The name.
        name: String,
        /// The generation of the last holder.
        last_generation: u64,
    },
    /// No new registration arrived in time.
    #[error("name `{name}` was not registered again within {waited:?}")]
    Timeout {
        /// The name.
        name: String,
        /// How long we waited.
        waited: Duration,
    },
}

/// What the registry keeps per name.
enum Slot {
    /// Held (the actor may be stopping: `lookup` hides it until the watcher removes it).
    Held(Registration),
    /// Vacant since `since`; the last generation is kept for the restart grace.
    Vacant { generation: u64, since: Instant },
}

struct Inner {
    names: DashMap<String, Slot>,
    grace: Duration,
    events: broadcast::Sender<RegistryEvent>,
}

impl Inner {
    fn expired(&self, since: Instant) -> bool {
        since.elapsed() > self.grace
    }

    /// Marks `name` vacant if `generation` of actor `id` still holds it; answers since when.
    fn vacate(&self, name: &str, id: ActorId, generation: u64) -> Option<Instant> {
        let mut slot = self.names.get_mut(name)?;
        match &*slot {
            Slot::Held(r) if r.cell.get_id() == id && r.generation == generation => {
                let since = Instant::now();
                *slot = Slot::Vacant { generation, since };
                Some(since)
            }
            _ => None,
        }
    }

    /// Drops the tombstone left at `since` once the grace is over (unless the name was
    /// registered again meanwhile: then the slot is no longer that tombstone).
    async fn forget_after_grace(weak: Weak<Inner>, name: String, since: Instant) {
        let Some(grace) = weak.upgrade().map(|inner| inner.grace) else {
            return;
        };
        tokio::time::sleep_until(since + grace).await;
        if let Some(inner) = weak.upgrade() {
            inner.names.remove_if(
                &name,
                |_, slot| matches!(slot, Slot::Vacant { since: s, .. } if *s == since),
            );
        }
    }
}

/// The registry. Cheap to clone (shared).
///
/// # Examples
/// ```
/// use supervision::Registry;
/// let registry = Registry::new();
/// assert!(registry.lookup("nobody").is_none());
/// ```
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("names", &self.inner.names.len())
            .field("grace", &self.inner.grace)
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

fn alive(cell: &ActorCell) -> bool {
    cell.get_status() < ActorStatus::Stopping
}

impl Registry {
    /// The default restart grace: how long a vacant name answers "restarting".
    pub const DEFAULT_RESTART_GRACE: Duration = Duration::from_secs(5);

    /// An empty registry with the default restart grace (subscribers may lag by up to 1024
    /// events before losing some).
    pub fn new() -> Self {
        Self::with_restart_grace(Self::DEFAULT_RESTART_GRACE)
    }

    /// An empty registry whose vacant names answer [`RegistryError::Restarting`] for `grace`
    /// (then [`RegistryError::NotRegistered`]) and keep their generation numbers for as long.
    /// Pick at least the longest restart delay of the supervisors whose children register
    /// (their backoff `max`).
    pub fn with_restart_grace(grace: Duration) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                names: DashMap::new(),
                grace,
                events,
            }),
        }
    }

    /// The restart grace.
    pub fn restart_grace(&self) -> Duration {
        self.inner.grace
    }

    /// How many vacant names are remembered now (each for the restart grace).
    pub fn tombstone_count(&self) -> usize {
        self.inner
            .names
            .iter()
            .filter(|slot| matches!(slot.value(), Slot::Vacant { .. }))
            .count()
    }

    /// Registers `cell` under `name`. The name is unregistered automatically when the actor
    /// exits, whatever the reason. Must be called within a tokio runtime.
    ///
    /// # Errors
    /// [`RegistryError::AlreadyRegistered`] with the holder when a live actor holds the name.
    pub fn register(
        &self,
        name: impl Into<String>,
        cell: ActorCell,
    ) -> Result<Registration, RegistryError> {
        let name = name.into();
        let next = |generation: u64| Registration {
            name: name.clone(),
            cell: cell.clone(),
            generation: generation + 1,
        };
        let registration = match self.inner.names.entry(name.clone()) {
            Entry::Occupied(mut o) => {
                let reg = match o.get() {
                    Slot::Held(r) if r.cell.get_id() == cell.get_id() => return Ok(r.clone()),
                    Slot::Held(r) if alive(&r.cell) => {
                        return Err(RegistryError::AlreadyRegistered {
                            name,
                            holder: r.cell.clone(),
                            generation: r.generation,
                        });
                    }
                    // A dead holder its watcher has not removed yet.
                    Slot::Held(r) => next(r.generation),
                    Slot::Vacant { since, .. } if self.inner.expired(*since) => next(0),
                    Slot::Vacant { generation, .. } => next(*generation),
                };
                o.insert(Slot::Held(reg.clone()));
                reg
            }
            Entry::Vacant(v) => {
                let reg = next(0);
                v.insert(Slot::Held(reg.clone()));
                reg
            }
        };
        let _ = self.inner.events.send(RegistryEvent::Registered {
            name: name.clone(),
            actor: cell.get_id(),
            generation: registration.generation,
        });
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let generation = registration.generation;
        tokio::spawn(async move {
            let _ = cell.wait(None).await;
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let id = cell.get_id();
            let Some(since) = inner.vacate(&name, id, generation) else {
                return;
            };
            let _ = inner.events.send(RegistryEvent::Unregistered {
                name: name.clone(),
                actor: id,
                generation,
                reason: UnregisterReason::Exited,
            });
            drop(inner);
            Inner::forget_after_grace(weak, name, since).await;
        });
        Ok(registration)
    }

    /// Removes a registration; answers what was removed. The name's generation is remembered
    /// for the restart grace, as after an exit (the tombstone is dropped by a task when called
    /// within a tokio runtime, otherwise by the next registration of the name).
    pub fn unregister(&self, name: &str) -> Option<Registration> {
        let reg = match self.inner.names.get(name).as_deref() {
            Some(Slot::Held(r)) => r.clone(),
            _ => return None,
        };
        let since = self.inner.vacate(name, reg.cell.get_id(), reg.generation)?;
        let _ = self.inner.events.send(RegistryEvent::Unregistered {
            name: reg.name.clone(),
            actor: reg.cell.get_id(),
            generation: reg.generation,
            reason: UnregisterReason::Explicit,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&self.inner);
            rt.spawn(Inner::forget_after_grace(weak, reg.name.clone(), since));
        }
        Some(reg)
    }

    /// The live holder of `name` (an actor already stopping is not returned).
    pub fn lookup(&self, name: &str) -> Option<Registration> {
        match self.inner.names.get(name).as_deref() {
            Some(Slot::Held(r)) if alive(&r.cell) => Some(r.clone()),
            _ => None,
        }
    }

    /// Whether `registration` is still the current holder of its name (not stale): same
    /// generation, same actor, alive.
    pub fn is_current(&self, registration: &Registration) -> bool {
        self.lookup(&registration.name).is_some_and(|r| {
            r.generation == registration.generation && r.cell.get_id() == registration.cell.get_id()
        })
    }

    /// A point-in-time snapshot of all registrations (an owned `Vec`; no lock held afterwards).
    pub fn list(&self) -> Vec<Registration> {
        self.inner
            .names
            .iter()
            .filter_map(|slot| match slot.value() {
                Slot::Held(r) => Some(r.clone()),
                Slot::Vacant { .. } => None,
            })
            .collect()
    }

    /// Subscribes to register / unregister events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RegistryEvent> {
        self.inner.events.subscribe()
    }

    /// A stable handle to a name: it resolves to whichever instance holds the name now.
    pub fn handle(&self, name: impl Into<String>) -> NameHandle {
        NameHandle {
            registry: self.clone(),
            name: name.into(),
        }
    }
}

/// A handle to a name that outlives restarts of the actor behind it.
#[derive(Debug, Clone)]
pub struct NameHandle {
    registry: Registry,
    name: String,
}

impl NameHandle {
    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current holder.
    ///
    /// # Errors
    /// [`RegistryError::Restarting`] if the name was held until less than the restart grace
    /// ago (or its holder is stopping); [`RegistryError::NotRegistered`] otherwise.
    pub fn resolve(&self) -> Result<Registration, RegistryError> {
        let inner = &self.registry.inner;
        let restarting = |last_generation| RegistryError::Restarting {
            name: self.name.clone(),
            last_generation,
        };
        match inner.names.get(&self.name).as_deref() {
            Some(Slot::Held(r)) if alive(&r.cell) => Ok(r.clone()),
            Some(Slot::Held(r)) => Err(restarting(r.generation)),
            Some(Slot::Vacant { generation, since }) if !inner.expired(*since) => {
                Err(restarting(*generation))
            }
            _ => Err(RegistryError::NotRegistered {
                name: self.name.clone(),
            }),
        }
    }

    /// The current holder, waiting up to `timeout` for one to register.
    ///
    /// # Errors
    /// [`RegistryError::Timeout`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn resolve_wait(&self, timeout: Duration) -> Result<Registration, RegistryError> {
        let mut events = self.registry.subscribe();
        if let Ok(r) = self.resolve() {
            return Ok(r);
        }
        let wait = async {
            loop {
                match events.recv().await {
                    Ok(RegistryEvent::Registered { name, .. }) if name == self.name => {
                        if let Ok(r) = self.resolve() {
                            return Some(r);
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if let Ok(r) = self.resolve() {
                            return Some(r);
                        }
                    }
                    _ => {}
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(Some(r)) => Ok(r),
            _ => Err(RegistryError::Timeout {
                name: self.name.clone(),
                waited: timeout,
            }),
        }
    }
}

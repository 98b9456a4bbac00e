//! A name registry: unique names, automatic unregistration on death, generation numbers and
//! register / unregister events. Readers never take a lock that a writer holds across an
//! `.await` (the map is a `DashMap`; no guard lives across an `.await`).

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use ractor::{ActorCell, ActorId, ActorStatus};
use tokio::sync::broadcast;

/// A registered name: the actor and the generation of the registration.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The name.
    pub name: String,
    /// The actor holding it.
    pub cell: ActorCell,
    /// 1 for the first registration of this name, +1 for each later one.
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
    /// The name was never registered.
    #[error("name `{name}` is not registered")]
    NotRegistered {
        /// The name.
        name: String,
    },
    /// The name was registered before and is not now: its actor is down, presumably being
    /// restarted.
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

struct Inner {
    entries: DashMap<String, Registration>,
    generations: DashMap<String, u64>,
    events: broadcast::Sender<RegistryEvent>,
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
            .field("len", &self.inner.entries.len())
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
    /// An empty registry (subscribers may lag by up to 1024 events before losing some).
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                entries: DashMap::new(),
                generations: DashMap::new(),
                events,
            }),
        }
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
        let registration = match self.inner.entries.entry(name.clone()) {
            Entry::Occupied(mut o)
                if !alive(&o.get().cell) || o.get().cell.get_id() == cell.get_id() =>
            {
                if o.get().cell.get_id() == cell.get_id() {
                    return Ok(o.get().clone());
                }
                let reg = self.next_registration(&name, cell.clone());
                o.insert(reg.clone());
                reg
            }
            Entry::Occupied(o) => {
                return Err(RegistryError::AlreadyRegistered {
                    name,
                    holder: o.get().cell.clone(),
                    generation: o.get().generation,
                });
            }
            Entry::Vacant(v) => {
                let reg = self.next_registration(&name, cell.clone());
                v.insert(reg.clone());
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
            if let Some(inner) = weak.upgrade() {
                let id = cell.get_id();
                let removed = inner.entries.remove_if(&name, |_, r| {
                    r.cell.get_id() == id && r.generation == generation
                });
                if removed.is_some() {
                    let _ = inner.events.send(RegistryEvent::Unregistered {
                        name,
                        actor: id,
                        generation,
                        reason: UnregisterReason::Exited,
                    });
                }
            }
        });
        Ok(registration)
    }

    fn next_registration(&self, name: &str, cell: ActorCell) -> Registration {
        let mut g = self.inner.generations.entry(name.to_string()).or_insert(0);
        *g += 1;
        Registration {
            name: name.to_string(),
            cell,
            generation: *g,
        }
    }

    /// Removes a registration; answers what was removed.
    pub fn unregister(&self, name: &str) -> Option<Registration> {
        let (_, reg) = self.inner.entries.remove(name)?;
        let _ = self.inner.events.send(RegistryEvent::Unregistered {
            name: reg.name.clone(),
            actor: reg.cell.get_id(),
            generation: reg.generation,
            reason: UnregisterReason::Explicit,
        });
        Some(reg)
    }

    /// The live holder of `name` (an actor already stopping is not returned).
    pub fn lookup(&self, name: &str) -> Option<Registration> {
        let reg = self.inner.entries.get(name)?.clone();
        alive(&reg.cell).then_some(reg)
    }

    /// Whether `registration` is still the current holder of its name (not stale).
    pub fn is_current(&self, registration: &Registration) -> bool {
        self.inner
            .entries
            .get(&registration.name)
            .is_some_and(|r| r.generation == registration.generation && alive(&r.cell))
    }

    /// A point-in-time snapshot of all registrations (an owned `Vec`; no lock held afterwards).
    pub fn list(&self) -> Vec<Registration> {
        self.inner
            .entries
            .iter()
            .map(|r| r.value().clone())
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
    /// [`RegistryError::Restarting`] if the name was held before and is not now;
    /// [`RegistryError::NotRegistered`] if it never was.
    pub fn resolve(&self) -> Result<Registration, RegistryError> {
        if let Some(r) = self.registry.lookup(&self.name) {
            return Ok(r);
        }
        match self.registry.inner.generations.get(&self.name) {
            Some(g) => Err(RegistryError::Restarting {
                name: self.name.clone(),
                last_generation: *g,
            }),
            None => Err(RegistryError::NotRegistered {
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

//! Egress control: where a session's processes — the CLI, its tools, anything they start — may
//! connect.
//!
//! An [`EgressPolicy`] is an allow-list of TCP socket addresses. Where the machine allows it
//! (Linux, `CAP_SYS_ADMIN`: root), a local launch runs the session in a **network namespace of
//! its own** that has nothing but a loopback interface: no route leaves it, so every connection
//! fails (`ECONNREFUSED`, `ENETUNREACH`) except to the listeners the supervisor binds inside it,
//! one per allowed address, at that same address. Each connection accepted there is relayed by
//! the supervisor, from the host's network, to the address it names. So the CLI and its tools use
//! the allowed addresses as they are, and nothing else is reachable — not the host's other
//! loopback services, not the internet, not DNS (a name resolves only through an allowed
//! resolver's TCP address; allow-list addresses, not names).
//!
//! ```text
//!  session's netns (lo only)              supervisor (host netns)
//!  tool ──▶ 10.0.0.5:3128 (listener) ──▶  relay ──▶ 10.0.0.5:3128
//!  tool ──▶ 1.2.3.4:443               ✗   (no route)
//! ```
//!
//! Where it cannot be enforced — another OS, no privilege, a launcher that runs the CLI elsewhere
//! (`ssh`, `docker exec`) or its own way — the launch goes ahead unrestricted and the session's
//! health says so ([`EgressReport::enforced_by`] `None`, with the reason), unless the policy was
//! [required](EgressPolicy::require): then the launch fails with
//! [`LaunchError::EgressUnavailable`](crate::LaunchError::EgressUnavailable).

#[cfg(target_os = "linux")]
pub(crate) mod netns;

use std::net::SocketAddr;

use serde::Serialize;

/// Where a session's processes may connect: only the listed TCP addresses (see the
/// [module docs](self) for how it is enforced).
///
/// # Examples
///
/// ```
/// use claude_session::EgressPolicy;
///
/// // Only a package mirror; the launch fails where that cannot be enforced.
/// let policy = EgressPolicy::deny_all()
///     .allow("10.0.0.5:3128".parse().unwrap())
///     .require();
/// assert_eq!(policy.allowed().len(), 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct EgressPolicy {
    allow: Vec<SocketAddr>,
    required: bool,
}

impl EgressPolicy {
    /// No connection out of the session (add what it may reach with [`allow`](Self::allow)).
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// Also allows connections to `addr` (an address the session's processes use as it is).
    /// IPv4 addresses and `[::1]` are supported; a port of 0 or another IPv6 address fails the
    /// launch with [`LaunchError::EgressUnavailable`](crate::LaunchError::EgressUnavailable).
    pub fn allow(mut self, addr: SocketAddr) -> Self {
        if !self.allow.contains(&addr) {
            self.allow.push(addr);
        }
        self
    }

    /// Also allows each of `addrs`.
    pub fn allow_all(self, addrs: impl IntoIterator<Item = SocketAddr>) -> Self {
        addrs.into_iter().fold(self, Self::allow)
    }

    /// A launch fails where the policy cannot be enforced, instead of going ahead unrestricted.
    pub fn require(mut self) -> Self {
        self.required = true;
        self
    }

    /// The allowed addresses.
    pub fn allowed(&self) -> &[SocketAddr] {
        &self.allow
    }

    /// Whether a launch fails where the policy cannot be enforced.
    pub fn is_required(&self) -> bool {
        self.required
    }
}

/// What enforces a session's egress policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EgressMechanism {
    /// A network namespace of the session's own with only loopback, and a relay in the
    /// supervisor per allowed address.
    NetworkNamespace,
}

/// How a session's egress policy stands, for health reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EgressReport {
    /// What enforces the policy; `None`: nothing does, the session's processes can connect
    /// anywhere the host can (see [`not_enforced_because`](Self::not_enforced_because)).
    pub enforced_by: Option<EgressMechanism>,
    /// The addresses the policy allows.
    pub allowed: Vec<SocketAddr>,
    /// Why it is not enforced, when it is not.
    pub not_enforced_because: Option<String>,
}

impl EgressReport {
    /// The report of a policy that nothing enforces, and why.
    pub fn not_enforced(policy: &EgressPolicy, why: impl Into<String>) -> Self {
        Self {
            enforced_by: None,
            allowed: policy.allowed().to_vec(),
            not_enforced_because: Some(why.into()),
        }
    }

    /// The report of a policy that `mechanism` enforces.
    pub fn enforced(policy: &EgressPolicy, mechanism: EgressMechanism) -> Self {
        Self {
            enforced_by: Some(mechanism),
            allowed: policy.allowed().to_vec(),
            not_enforced_because: None,
        }
    }
}

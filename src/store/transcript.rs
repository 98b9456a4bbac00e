//! Transcript entries and leases: the values a store keeps besides records.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::StoreError;

/// One line of a CLI session file, as mirrored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    /// What makes the entry unique in its file: its `uuid`, or, for the few kinds of line that
    /// have none (`last-prompt`, `cost-state`, …), `h:` and a 64-bit FNV-1a hash of its text.
    /// Empty for a line a store could not decode.
    pub key: String,
    /// The line's JSON text (no newline).
    pub line: String,
}

impl TranscriptEntry {
    /// The entry of one mirrored line.
    pub fn from_value(value: &Value) -> TranscriptEntry {
        let line = value.to_string();
        let key = match value.get("uuid").and_then(Value::as_str) {
            Some(uuid) if !uuid.is_empty() => uuid.to_owned(),
            _ => format!("h:{:016x}", fnv1a(line.as_bytes())),
        };
        TranscriptEntry { key, line }
    }

    /// The entry of a stored line: its key recomputed from its text, or empty when the text is
    /// not a JSON object.
    pub fn from_line(line: &str) -> TranscriptEntry {
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v.is_object() => TranscriptEntry::from_value(&v),
            _ => TranscriptEntry {
                key: String::new(),
                line: line.to_owned(),
            },
        }
    }

    /// The line as JSON (an object).
    ///
    /// # Errors
    ///
    /// The decoding error when the line is not a JSON object.
    pub fn parse(&self) -> Result<Value, String> {
        match serde_json::from_str::<Value>(&self.line) {
            Ok(v) if v.is_object() => Ok(v),
            Ok(_) => Err("not a JSON object".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One transcript file of a conversation, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranscriptFile {
    /// The file, relative to the CLI's project folder (`<id>.jsonl`, `<id>/subagents/…`).
    pub file: String,
    /// Its entries in append order.
    pub entries: Vec<TranscriptEntry>,
}

/// Who owns a session, until when, and the fencing token its writes carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The session name.
    pub name: String,
    /// The owner (a supervisor's id).
    pub owner: String,
    /// The fencing token: greater than every token of this name granted before it.
    pub token: u64,
    /// When it expires (milliseconds since the Unix epoch).
    pub expires_at_ms: u64,
}

/// A current (not released) lease as [`SessionStore::list_leases`](super::SessionStore::list_leases)
/// sees it, judged by the store's own clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseStatus {
    /// The lease.
    pub lease: Lease,
    /// Whether it has expired (by the store's clock): anyone may take it.
    pub expired: bool,
}

/// The lease state of one name, as the embedded stores keep it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct LeaseRow {
    /// The current lease, if one was granted and not released.
    pub(crate) current: Option<Lease>,
    /// The greatest token ever granted (tokens never repeat, even after a release).
    pub(crate) last_token: u64,
}

impl LeaseRow {
    pub(crate) fn acquire(
        &mut self,
        name: &str,
        owner: &str,
        ttl_ms: u64,
        now: u64,
    ) -> Result<Lease, StoreError> {
        if let Some(l) = &mut self.current {
            if l.owner == owner {
                l.expires_at_ms = now.saturating_add(ttl_ms);
                return Ok(l.clone());
            }
            if l.expires_at_ms > now {
                return Err(StoreError::LeaseHeld {
                    name: name.to_owned(),
                    owner: l.owner.clone(),
                    token: l.token,
                    expires_at_ms: l.expires_at_ms,
                });
            }
        }
        self.last_token += 1;
        let lease = Lease {
            name: name.to_owned(),
            owner: owner.to_owned(),
            token: self.last_token,
            expires_at_ms: now.saturating_add(ttl_ms),
        };
        self.current = Some(lease.clone());
        Ok(lease)
    }

    pub(crate) fn renew(
        &mut self,
        lease: &Lease,
        ttl_ms: u64,
        now: u64,
    ) -> Result<Lease, StoreError> {
        self.check(&lease.name, Some(lease.token))?;
        let current = self.current.as_mut().expect("checked: a current lease");
        current.expires_at_ms = now.saturating_add(ttl_ms);
        Ok(current.clone())
    }

    /// The current lease and whether it has expired at `now`.
    pub(crate) fn status(&self, now: u64) -> Option<LeaseStatus> {
        self.current.as_ref().map(|l| LeaseStatus {
            lease: l.clone(),
            expired: l.expires_at_ms <= now,
        })
    }

    pub(crate) fn release(&mut self, lease: &Lease) {
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.token == lease.token)
        {
            self.current = None;
        }
    }

    /// Ends the current lease, whoever holds it; returns it.
    pub(crate) fn revoke(&mut self) -> Option<Lease> {
        self.current.take()
    }

    /// A write with `fence` is allowed: no fence, or the current lease's token.
    pub(crate) fn check(&self, name: &str, fence: Option<u64>) -> Result<(), StoreError> {
        let Some(token) = fence else { return Ok(()) };
        match &self.current {
            Some(c) if c.token == token => Ok(()),
            _ => Err(StoreError::StaleFence {
                name: name.to_owned(),
                token,
                current: self.current.as_ref().map_or(self.last_token, |c| c.token),
            }),
        }
    }
}

pub(crate) fn ttl_ms(ttl: std::time::Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

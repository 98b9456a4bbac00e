//! Per-session tokens: minted from 32 bytes of randomness, checked in constant time, revoked
//! with the session.
//!
//! A token is `sk-ant-gw-<id>-<secret>`: `id` (8 random bytes, hex) finds the session's entry
//! in a map, and the whole token is then compared with the presented one in constant time
//! (`subtle`), so the time a refusal takes says nothing about the secret part (32 random bytes,
//! hex). The `sk-ant-` prefix keeps the shape of an API key the CLI expects.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rand::RngCore;
use subtle::ConstantTimeEq;

use super::budget::Meter;
use super::stats::Traffic;

const PREFIX: &str = "sk-ant-gw-";

/// A session's token. Its `Debug` prints `***`: it is a secret too (it is the session's
/// credential at the gateway).
#[derive(Clone)]
pub(crate) struct SessionToken(Arc<str>);

impl SessionToken {
    fn mint() -> (String, SessionToken) {
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        // `rand::rng()` is a CSPRNG seeded from the OS (ChaCha, reseeded periodically).
        let mut rng = rand::rng();
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        let id = hex(&id);
        let token = format!("{PREFIX}{id}-{}", hex(&secret));
        (id, SessionToken(token.into()))
    }

    /// The token's text, for the CLI's environment.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `id` part of a presented token, if it has the token's shape.
fn id_of(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(PREFIX)?;
    let (id, _secret) = rest.split_once('-')?;
    Some(id)
}

/// One session's issued token, its traffic counters and its budgets' meters.
pub(super) struct Issued {
    pub(super) session: String,
    token: SessionToken,
    pub(super) traffic: Arc<Traffic>,
    /// The session's own meter first, then its group's (the order [`admit`] locks them in).
    ///
    /// [`admit`]: super::budget::admit
    pub(super) meters: Vec<Arc<Meter>>,
}

#[derive(Default)]
struct Maps {
    /// Token id → issued token.
    by_id: HashMap<String, Arc<Issued>>,
    /// Session name → token id.
    by_session: HashMap<String, String>,
    /// Session name → the ids of spares' tokens it adopted (revoked with it).
    adopted: HashMap<String, Vec<String>>,
    /// Warm spare name → token id (not a session: no traffic of its own in the stats).
    by_spare: HashMap<String, String>,
}

/// The tokens the gateway accepts.
#[derive(Default)]
pub(super) struct Tokens {
    maps: RwLock<Maps>,
}

impl Tokens {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Mints a token for `session` unless it has one (a restart keeps its token, its
    /// counters and its budgets' windows); `meters` makes the new token's meters.
    pub(super) fn issue(&self, session: &str, meters: impl FnOnce() -> Vec<Arc<Meter>>) {
        let mut maps = self.write();
        if maps.by_session.contains_key(session) {
            return;
        }
        let (id, token) = SessionToken::mint();
        let issued = Arc::new(Issued {
            session: session.to_owned(),
            token,
            traffic: Arc::default(),
            meters: meters(),
        });
        maps.by_session.insert(session.to_owned(), id.clone());
        maps.by_id.insert(id, issued);
    }

    /// Mints a token for a warm spare, until a session adopts it.
    pub(super) fn issue_spare(&self, spare: &str) -> SessionToken {
        let (id, token) = SessionToken::mint();
        let issued = Arc::new(Issued {
            session: spare.to_owned(),
            token: token.clone(),
            traffic: Arc::default(),
            meters: Vec::new(),
        });
        let mut maps = self.write();
        if let Some(old) = maps.by_spare.insert(spare.to_owned(), id.clone()) {
            maps.by_id.remove(&old);
        }
        maps.by_id.insert(id, issued);
        token
    }

    pub(super) fn token(&self, session: &str) -> Option<SessionToken> {
        let maps = self.read();
        let id = maps.by_session.get(session)?;
        maps.by_id.get(id).map(|i| i.token.clone())
    }

    /// Whether a token was revoked (a session's, with the spares' tokens it adopted; or an
    /// unclaimed spare's).
    pub(super) fn revoke(&self, session: &str) -> bool {
        let mut maps = self.write();
        for id in maps.adopted.remove(session).unwrap_or_default() {
            maps.by_id.remove(&id);
        }
        if let Some(id) = maps.by_spare.remove(session) {
            return maps.by_id.remove(&id).is_some();
        }
        match maps.by_session.remove(session) {
            Some(id) => maps.by_id.remove(&id).is_some(),
            None => false,
        }
    }

    /// Rebinds the token issued to `spare` (a warm spare's CLI has it in its environment) to
    /// `session`: requests with it count as the session's, against its budgets, and it is
    /// revoked with the session. Whether both were issued.
    pub(super) fn adopt(&self, spare: &str, session: &str) -> bool {
        let mut maps = self.write();
        let Some(own) = maps
            .by_session
            .get(session)
            .and_then(|id| maps.by_id.get(id))
            .cloned()
        else {
            return false;
        };
        let Some(id) = maps.by_spare.remove(spare) else {
            return false;
        };
        let Some(spares) = maps.by_id.remove(&id) else {
            return false;
        };
        let adopted = Arc::new(Issued {
            session: session.to_owned(),
            token: spares.token.clone(),
            traffic: own.traffic.clone(),
            meters: own.meters.clone(),
        });
        maps.by_id.insert(id.clone(), adopted);
        maps.adopted.entry(session.to_owned()).or_default().push(id);
        true
    }

    /// The session a presented token belongs to, if it is a valid (unrevoked) token.
    pub(super) fn authenticate(&self, presented: &str) -> Option<Arc<Issued>> {
        let id = id_of(presented)?;
        let issued = self.read().by_id.get(id).cloned()?;
        // Lengths are public (every token has the same); the content is compared in constant
        // time.
        bool::from(issued.token.expose().as_bytes().ct_eq(presented.as_bytes())).then_some(issued)
    }

    /// Every session's traffic, by name (once each: an adopted token shares its session's).
    pub(super) fn each(&self) -> Vec<Arc<Issued>> {
        let maps = self.read();
        maps.by_session
            .values()
            .filter_map(|id| maps.by_id.get(id).cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_carries_32_random_bytes_and_authenticates_its_session_only() {
        let tokens = Tokens::default();
        tokens.issue("a", Vec::new);
        tokens.issue("b", Vec::new);
        let a = tokens.token("a").unwrap();
        let b = tokens.token("b").unwrap();
        assert_ne!(a.expose(), b.expose());
        let secret = a.expose().rsplit('-').next().unwrap();
        assert_eq!(secret.len(), 64, "32 bytes, hex");
        assert_eq!(tokens.authenticate(a.expose()).unwrap().session, "a");
        assert_eq!(tokens.authenticate(b.expose()).unwrap().session, "b");
        // The right id with a wrong secret, a truncated token, garbage: refused.
        let id = id_of(a.expose()).unwrap();
        let forged = format!("{PREFIX}{id}-{}", "0".repeat(64));
        assert!(tokens.authenticate(&forged).is_none());
        assert!(
            tokens
                .authenticate(&a.expose()[..a.expose().len() - 1])
                .is_none()
        );
        assert!(tokens.authenticate("sk-ant-test-dummy-key").is_none());
        assert!(tokens.authenticate("").is_none());
    }

    #[test]
    fn issue_keeps_a_token_and_revoke_ends_it() {
        let tokens = Tokens::default();
        tokens.issue("a", Vec::new);
        let first = tokens.token("a").unwrap();
        tokens.issue("a", Vec::new);
        assert_eq!(tokens.token("a").unwrap().expose(), first.expose());
        assert!(tokens.revoke("a"));
        assert!(!tokens.revoke("a"));
        assert!(tokens.token("a").is_none());
        assert!(tokens.authenticate(first.expose()).is_none());
        tokens.issue("a", Vec::new);
        assert_ne!(tokens.token("a").unwrap().expose(), first.expose());
    }

    #[test]
    fn an_adopted_spare_token_authenticates_as_its_session_and_is_revoked_with_it() {
        let tokens = Tokens::default();
        tokens.issue("s", Vec::new);
        let spare = tokens.issue_spare("pool/spare-1");
        assert_eq!(tokens.each().len(), 1, "a spare is not a session");
        assert_eq!(
            tokens.authenticate(spare.expose()).unwrap().session,
            "pool/spare-1"
        );
        assert!(!tokens.adopt("pool/spare-1", "nobody"), "no such session");
        assert!(tokens.adopt("pool/spare-1", "s"));
        let issued = tokens.authenticate(spare.expose()).unwrap();
        assert_eq!(issued.session, "s");
        let own = tokens
            .authenticate(tokens.token("s").unwrap().expose())
            .unwrap();
        assert!(
            Arc::ptr_eq(&issued.traffic, &own.traffic),
            "one traffic count"
        );
        assert_eq!(tokens.each().len(), 1, "the session counted once");
        assert!(!tokens.adopt("pool/spare-1", "s"), "adopted once");
        assert!(tokens.revoke("s"));
        assert!(tokens.authenticate(spare.expose()).is_none());
        // An unclaimed spare's token is revoked by its name.
        let unclaimed = tokens.issue_spare("pool/spare-2");
        assert!(tokens.revoke("pool/spare-2"));
        assert!(tokens.authenticate(unclaimed.expose()).is_none());
    }

    #[test]
    fn debug_hides_the_token() {
        let (_, token) = SessionToken::mint();
        assert_eq!(format!("{token:?}"), "SessionToken(***)");
    }
}

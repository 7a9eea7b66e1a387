//! What a connect session keeps beside its token: the server's HTTP client, the server as
//! status shows it, and the vault and item IDs it has looked up. [`crate::session::Session`]
//! holds a [`Link`]; this module knows nothing of sessions or the daemon.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use op_session_protocol::ConnectServer;

use super::client::ConnectClient;

/// What a connect session keeps beside its token.
#[derive(Debug)]
pub struct Link {
    /// The HTTP client for this server.
    pub client: ConnectClient,
    /// The server as status shows it.
    pub server: ConnectServer,
    /// Vault and item IDs by name, for the value cache's TTL.
    pub(super) ids: IdCache,
}

impl Link {
    /// The base URL.
    pub fn host(&self) -> &str {
        &self.server.host
    }
}

/// Vault IDs by name and item IDs by (vault ID, title), each until the TTL passes. Keys are
/// lower-cased, as names in references are case-insensitive. Lives in the session's [`Link`],
/// so it ends with the session.
#[derive(Debug)]
pub(super) struct IdCache {
    ttl: Duration,
    map: Mutex<HashMap<String, (String, String, Duration)>>,
}

impl IdCache {
    pub(super) fn new(ttl: Duration) -> Self {
        IdCache {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, String, Duration)>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The (ID, name) cached under `key`, if still fresh at `now`.
    pub(super) fn get(&self, key: &str, now: Duration) -> Option<(String, String)> {
        let mut map = self.lock();
        match map.get(key) {
            Some((id, name, exp)) if now < *exp => Some((id.clone(), name.clone())),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub(super) fn put(&self, key: String, id: &str, name: &str, now: Duration) {
        if self.ttl.is_zero() {
            return;
        }
        self.lock()
            .insert(key, (id.to_string(), name.to_string(), now + self.ttl));
    }

    pub(super) fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

pub(super) fn vault_key(name: &str) -> String {
    format!("v:{}", name.to_ascii_lowercase())
}

pub(super) fn item_key(vault_id: &str, title: &str) -> String {
    format!("i:{vault_id}:{}", title.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_cache_expires_and_forgets() {
        let c = IdCache::new(Duration::from_secs(10));
        let t0 = Duration::from_secs(1);
        c.put(vault_key("Dev"), "abc", "Dev", t0);
        assert_eq!(
            c.get(&vault_key("DEV"), t0).map(|v| v.0),
            Some("abc".into())
        );
        assert!(
            c.get(&vault_key("dev"), t0 + Duration::from_secs(10))
                .is_none()
        );
        c.put(item_key("abc", "Stripe"), "def", "Stripe", t0);
        c.forget(&item_key("abc", "stripe"));
        assert!(c.get(&item_key("abc", "Stripe"), t0).is_none());
    }
}

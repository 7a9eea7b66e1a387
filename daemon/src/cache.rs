//! The resolved-value cache and the coalescing of concurrent misses.
//!
//! Owns: values per account keyed by the normalized reference (references are
//! case-insensitive), each until its TTL passes on the deadline clock; and the in-flight table
//! that lets 64 concurrent requests for one uncached reference share one `op` call. Values are
//! `SecretString`s (zeroized on drop); dropping an account's entries wipes them. Never logs a
//! value; callers log references only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use op_session_protocol::ErrorBody;
use secrecy::SecretString;
use tokio::sync::watch;

/// The result every waiter on one in-flight reference receives.
pub type Shared = Option<Result<Arc<SecretString>, ErrorBody>>;

#[derive(Debug)]
struct Entry {
    value: Arc<SecretString>,
    expires: Duration,
}

#[derive(Debug, Default)]
struct Inner {
    values: HashMap<String, HashMap<String, Entry>>,
    inflight: HashMap<(String, String), watch::Receiver<Shared>>,
}

/// What [`Cache::claim`] decided for one key.
#[derive(Debug)]
pub enum Claim {
    /// This request resolves the key and must publish through the sender.
    Lead(watch::Sender<Shared>),
    /// Another request is resolving it; wait on the receiver.
    Follow(watch::Receiver<Shared>),
}

/// The cache.
#[derive(Debug)]
pub struct Cache {
    ttl: Duration,
    inner: Mutex<Inner>,
}

impl Cache {
    /// A cache keeping values for `ttl` (zero: keep nothing, still coalesce).
    pub fn new(ttl: Duration) -> Self {
        Cache {
            ttl,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A live cached value.
    pub fn get(&self, account: &str, key: &str, now: Duration) -> Option<Arc<SecretString>> {
        let mut inner = self.lock();
        let per = inner.values.get_mut(account)?;
        match per.get(key) {
            Some(e) if now < e.expires => Some(e.value.clone()),
            Some(_) => {
                per.remove(key);
                None
            }
            None => None,
        }
    }

    /// Store a value.
    pub fn put(&self, account: &str, key: &str, value: Arc<SecretString>, now: Duration) {
        if self.ttl.is_zero() {
            return;
        }
        self.lock()
            .values
            .entry(account.to_string())
            .or_default()
            .insert(
                key.to_string(),
                Entry {
                    value,
                    expires: now + self.ttl,
                },
            );
    }

    /// Lead or follow the resolution of `key`.
    pub fn claim(&self, account: &str, key: &str) -> Claim {
        let mut inner = self.lock();
        let k = (account.to_string(), key.to_string());
        if let Some(rx) = inner.inflight.get(&k) {
            return Claim::Follow(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        inner.inflight.insert(k, rx);
        Claim::Lead(tx)
    }

    /// Publish a lead's result, cache it on success, and end the in-flight entry.
    pub fn publish(
        &self,
        account: &str,
        key: &str,
        tx: &watch::Sender<Shared>,
        result: Result<Arc<SecretString>, ErrorBody>,
        now: Duration,
    ) {
        if let Ok(v) = &result {
            self.put(account, key, v.clone(), now);
        }
        self.lock()
            .inflight
            .remove(&(account.to_string(), key.to_string()));
        let _ = tx.send(Some(result));
    }

    /// Forget a lead that ended without publishing (its request was cancelled).
    pub fn abandon(&self, account: &str, key: &str) {
        self.lock()
            .inflight
            .remove(&(account.to_string(), key.to_string()));
    }

    /// Drop (and wipe) one account's values.
    pub fn drop_account(&self, account: &str) -> usize {
        self.lock()
            .values
            .remove(account)
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Drop everything.
    pub fn clear(&self) {
        self.lock().values.clear();
    }

    /// Live entries for an account.
    pub fn count(&self, account: &str, now: Duration) -> usize {
        self.lock()
            .values
            .get(account)
            .map(|m| m.values().filter(|e| now < e.expires).count())
            .unwrap_or(0)
    }

    /// Every cached value of an account (to scrub them from `op`'s stderr).
    pub fn values(&self, account: &str) -> Vec<Arc<SecretString>> {
        self.lock()
            .values
            .get(account)
            .map(|m| m.values().map(|e| e.value.clone()).collect())
            .unwrap_or_default()
    }
}

/// Wait for a follower's result. A lead that vanished without publishing yields an error.
pub async fn follow(mut rx: watch::Receiver<Shared>) -> Result<Arc<SecretString>, ErrorBody> {
    loop {
        if let Some(r) = rx.borrow().clone() {
            return r;
        }
        if rx.changed().await.is_err() {
            if let Some(r) = rx.borrow().clone() {
                return r;
            }
            return Err(ErrorBody::new(
                op_session_protocol::ErrorCode::Internal,
                "a concurrent request resolving the same reference was cancelled",
            )
            .with_fix("retry"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[tokio::test]
    async fn ttl_coalescing_and_drop() {
        let c = Cache::new(Duration::from_secs(10));
        let t0 = Duration::from_secs(1);
        let Claim::Lead(tx) = c.claim("my", "op://v/i/f") else {
            panic!("first is lead")
        };
        let Claim::Follow(rx) = c.claim("my", "op://v/i/f") else {
            panic!("second follows")
        };
        let waiter = tokio::spawn(follow(rx));
        c.publish(
            "my",
            "op://v/i/f",
            &tx,
            Ok(Arc::new(SecretString::from("v1"))),
            t0,
        );
        assert_eq!(
            waiter.await.expect("joins").expect("ok").expose_secret(),
            "v1"
        );
        assert!(
            c.get("my", "op://v/i/f", t0 + Duration::from_secs(9))
                .is_some()
        );
        assert!(
            c.get("my", "op://v/i/f", t0 + Duration::from_secs(10))
                .is_none(),
            "ttl"
        );
        c.put("my", "k", Arc::new(SecretString::from("x")), t0);
        assert_eq!(c.drop_account("my"), 1);
        assert!(c.get("my", "k", t0).is_none());
        assert!(
            matches!(c.claim("my", "op://v/i/f"), Claim::Lead(_)),
            "inflight cleared"
        );
    }

    #[test]
    fn zero_ttl_keeps_nothing() {
        let c = Cache::new(Duration::ZERO);
        c.put(
            "a",
            "k",
            Arc::new(SecretString::from("x")),
            Duration::from_secs(1),
        );
        assert!(c.get("a", "k", Duration::from_secs(1)).is_none());
    }
}

//! The resolved-value cache and the coalescing of concurrent misses.
//!
//! Owns: values per account keyed by the normalized reference (references are
//! case-insensitive), each until its TTL passes on the deadline clock; the negative cache
//! beside them (a reference's "not found" answer, kept for `negative_ttl`, so a caller that
//! loops on a missing item costs one `op` call per `negative_ttl`, not one per try); and the
//! in-flight table that lets 64 concurrent requests for one uncached reference share one `op`
//! call. Values are `SecretString`s (zeroized on drop); dropping an account's entries wipes
//! them. Never logs a value; callers log references only.
//!
//! A remembered miss lives in the same per-account slot as the values, so it obeys the same
//! rules (docs/architecture.md, "Generations"): it belongs to the session generation that saw
//! it, and is dropped with the values on lock, expiry, re-init and after a write through the
//! daemon. Only errors [`is_not_found`] accepts are remembered: anything else (an auth
//! failure, a timeout, a 429) says nothing lasting about the reference.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::Error;
use secrecy::SecretString;
use tokio::sync::watch;

/// The result every waiter on one in-flight reference receives.
pub(crate) type Shared = Option<Result<Arc<SecretString>, Error>>;

#[derive(Debug)]
struct Entry {
    value: Arc<SecretString>,
    expires: Duration,
}

/// A remembered "not found".
#[derive(Debug)]
struct Miss {
    error: Error,
    expires: Duration,
}

/// One account's values and misses, all from one session generation.
#[derive(Debug, Default)]
struct Slot {
    generation: u64,
    entries: HashMap<String, Entry>,
    misses: HashMap<String, Miss>,
}

impl Slot {
    /// The slot for `generation`: a newer one replaces an older slot; `None` for a store from
    /// an older generation (a session that ended).
    fn for_generation(&mut self, generation: u64) -> Option<&mut Slot> {
        if self.generation > generation {
            return None;
        }
        if self.generation < generation {
            *self = Slot {
                generation,
                ..Slot::default()
            };
        }
        Some(self)
    }
}

/// Whether `op`'s (or Connect's, worded like `op`'s) error says the reference names nothing:
/// no such vault, item or field (docs/op-behaviour.md §3.3 and §7.4). Such an answer is
/// remembered for `negative_ttl`.
pub(crate) fn is_not_found(e: &Error) -> bool {
    let Error::OpFailed(d) = e else {
        return false;
    };
    d.message.contains("isn't an item")
        || d.message.contains("isn't a vault")
        || d.message.contains("does not have a field")
        || d.message.contains("isn't a field")
}

/// An in-flight resolution: account, session generation, reference key.
type FlightKey = (String, u64, String);

#[derive(Debug, Default)]
struct Inner {
    values: HashMap<String, Slot>,
    inflight: HashMap<FlightKey, watch::Receiver<Shared>>,
}

/// What [`Cache::claim`] decided for one key.
#[derive(Debug)]
pub enum Claim<'a> {
    /// This request resolves the key and must publish through the guard.
    Lead(Lead<'a>),
    /// Another request is resolving it; wait on the receiver.
    Follow(watch::Receiver<Shared>),
}

/// A lead's duty to publish. Dropped without publishing (the request was cancelled or
/// panicked), it ends the in-flight entry, and its followers get an error (the sender is
/// gone) while later requests lead afresh instead of waiting on a dead entry.
#[derive(Debug)]
pub struct Lead<'a> {
    cache: &'a Cache,
    key: Option<FlightKey>,
    tx: watch::Sender<Shared>,
}

impl Lead<'_> {
    /// Send `result` to every follower and, when `keep` and it succeeded, cache it.
    pub fn publish(mut self, result: Result<Arc<SecretString>, Error>, keep: bool, now: Duration) {
        if let Some((account, generation, key)) = self.key.take() {
            if keep && let Ok(v) = &result {
                self.cache.put(&account, generation, &key, v.clone(), now);
            }
            self.cache
                .lock()
                .inflight
                .remove(&(account, generation, key));
        }
        let _ = self.tx.send(Some(result));
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.cache.lock().inflight.remove(&k);
        }
    }
}

/// The cache.
#[derive(Debug)]
pub struct Cache {
    ttl: Duration,
    negative_ttl: Duration,
    inner: Mutex<Inner>,
}

impl Cache {
    /// A cache keeping values for `ttl` (zero: keep nothing, still coalesce) and no misses.
    pub fn new(ttl: Duration) -> Self {
        Cache {
            ttl,
            negative_ttl: Duration::ZERO,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Also remember "not found" answers for `ttl` (zero: never).
    pub fn with_negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// How long a miss is remembered.
    pub fn negative_ttl(&self) -> Duration {
        self.negative_ttl
    }

    /// A remembered "not found" of this session generation, marked as remembered.
    pub fn get_miss(
        &self,
        account: &str,
        generation: u64,
        key: &str,
        now: Duration,
    ) -> Option<Error> {
        let mut inner = self.lock();
        let slot = inner.values.get_mut(account)?;
        if slot.generation != generation {
            return None;
        }
        match slot.misses.get(key) {
            Some(m) if now < m.expires => {
                let mut e = m.error.clone();
                e.detail_mut().remembered = true;
                Some(e)
            }
            Some(_) => {
                slot.misses.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remember that `key` names nothing, if `error` says so ([`is_not_found`]). A store from
    /// an older generation is ignored, as for values.
    pub fn put_miss(
        &self,
        account: &str,
        generation: u64,
        key: &str,
        error: &Error,
        now: Duration,
    ) {
        if self.negative_ttl.is_zero() || !is_not_found(error) {
            return;
        }
        let mut inner = self.lock();
        let Some(slot) = inner
            .values
            .entry(account.to_string())
            .or_default()
            .for_generation(generation)
        else {
            return;
        };
        slot.misses.insert(
            key.to_string(),
            Miss {
                error: error.clone(),
                expires: now + self.negative_ttl,
            },
        );
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A live cached value of this session generation.
    pub fn get(
        &self,
        account: &str,
        generation: u64,
        key: &str,
        now: Duration,
    ) -> Option<Arc<SecretString>> {
        let mut inner = self.lock();
        let slot = inner.values.get_mut(account)?;
        if slot.generation != generation {
            return None;
        }
        match slot.entries.get(key) {
            Some(e) if now < e.expires => Some(e.value.clone()),
            Some(_) => {
                slot.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Store a value for a session generation. Values of an older generation are dropped when
    /// a newer one stores; a store from an older generation is ignored.
    pub fn put(
        &self,
        account: &str,
        generation: u64,
        key: &str,
        value: Arc<SecretString>,
        now: Duration,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        let mut inner = self.lock();
        let Some(slot) = inner
            .values
            .entry(account.to_string())
            .or_default()
            .for_generation(generation)
        else {
            return;
        };
        slot.misses.remove(key);
        slot.entries.insert(
            key.to_string(),
            Entry {
                value,
                expires: now + self.ttl,
            },
        );
    }

    /// Lead or follow the resolution of `key` under session generation `generation`.
    pub fn claim(&self, account: &str, generation: u64, key: &str) -> Claim<'_> {
        let mut inner = self.lock();
        let k = (account.to_string(), generation, key.to_string());
        if let Some(rx) = inner.inflight.get(&k) {
            return Claim::Follow(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        inner.inflight.insert(k.clone(), rx);
        Claim::Lead(Lead {
            cache: self,
            key: Some(k),
            tx,
        })
    }

    /// Drop (and wipe) one account's values.
    pub fn drop_account(&self, account: &str) -> usize {
        self.lock()
            .values
            .remove(account)
            .map(|m| m.entries.len())
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
            .map(|m| m.entries.values().filter(|e| now < e.expires).count())
            .unwrap_or(0)
    }

    /// Every cached value of an account (to scrub them from `op`'s stderr).
    pub fn values(&self, account: &str) -> Vec<Arc<SecretString>> {
        self.lock()
            .values
            .get(account)
            .map(|m| m.entries.values().map(|e| e.value.clone()).collect())
            .unwrap_or_default()
    }
}

/// Wait for a follower's result. A lead that vanished without publishing yields an error.
pub(crate) async fn follow(mut rx: watch::Receiver<Shared>) -> Result<Arc<SecretString>, Error> {
    loop {
        if let Some(r) = rx.borrow().clone() {
            return r;
        }
        if rx.changed().await.is_err() {
            if let Some(r) = rx.borrow().clone() {
                return r;
            }
            return Err(Error::internal(
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

    fn v(s: &str) -> Arc<SecretString> {
        Arc::new(SecretString::from(s))
    }

    #[tokio::test]
    async fn ttl_coalescing_and_drop() {
        let c = Cache::new(Duration::from_secs(10));
        let t0 = Duration::from_secs(1);
        let Claim::Lead(lead) = c.claim("my", 1, "op://v/i/f") else {
            panic!("first is lead")
        };
        let Claim::Follow(rx) = c.claim("my", 1, "op://v/i/f") else {
            panic!("second follows")
        };
        let waiter = tokio::spawn(follow(rx));
        lead.publish(Ok(v("v1")), true, t0);
        assert_eq!(
            waiter.await.expect("joins").expect("ok").expose_secret(),
            "v1"
        );
        assert!(
            c.get("my", 1, "op://v/i/f", t0 + Duration::from_secs(9))
                .is_some()
        );
        assert!(
            c.get("my", 1, "op://v/i/f", t0 + Duration::from_secs(10))
                .is_none(),
            "ttl"
        );
        c.put("my", 1, "k", v("x"), t0);
        assert_eq!(c.drop_account("my"), 1);
        assert!(c.get("my", 1, "k", t0).is_none());
        assert!(
            matches!(c.claim("my", 1, "op://v/i/f"), Claim::Lead(_)),
            "inflight cleared"
        );
    }

    #[test]
    fn values_never_cross_session_generations() {
        let c = Cache::new(Duration::from_secs(10));
        let t0 = Duration::from_secs(1);
        c.put("my", 1, "k", v("old"), t0);
        assert!(
            c.get("my", 2, "k", t0).is_none(),
            "a new session sees nothing of the old"
        );
        c.put("my", 2, "k", v("new"), t0);
        // A late store from the ended session is ignored.
        c.put("my", 1, "k", v("stale"), t0);
        assert_eq!(c.get("my", 2, "k", t0).expect("new").expose_secret(), "new");
        assert!(c.get("my", 1, "k", t0).is_none());
    }

    #[tokio::test]
    async fn a_cancelled_lead_releases_its_followers_and_later_requests_retry() {
        let c = Cache::new(Duration::from_secs(10));
        let Claim::Lead(lead) = c.claim("my", 1, "k") else {
            panic!("lead")
        };
        let Claim::Follow(rx) = c.claim("my", 1, "k") else {
            panic!("follow")
        };
        drop(lead); // the leading request was cancelled
        assert!(
            follow(rx).await.is_err(),
            "the follower is released with an error"
        );
        assert!(
            matches!(c.claim("my", 1, "k"), Claim::Lead(_)),
            "the next request leads instead of waiting on a dead entry"
        );
    }

    fn missing() -> Error {
        op_session_protocol::ErrorBody::new(
            op_session_protocol::ErrorCode::OpFailed,
            "could not read secret 'op://v/nope/f': could not get item v/nope: \"nope\" isn't an item in the \"v\" vault. Specify the item with its UUID, name, or domain.",
        )
        .into()
    }

    #[test]
    fn misses_are_remembered_for_their_ttl_and_only_not_found() {
        let c = Cache::new(Duration::from_secs(300)).with_negative_ttl(Duration::from_secs(30));
        let t0 = Duration::from_secs(1);
        c.put_miss("my", 1, "k", &missing(), t0);
        let e = c
            .get_miss("my", 1, "k", t0 + Duration::from_secs(29))
            .expect("remembered");
        assert!(e.detail().remembered);
        assert_eq!(
            e.detail().message,
            missing().detail().message,
            "the same words as op's"
        );
        assert!(
            c.get_miss("my", 1, "k", t0 + Duration::from_secs(30))
                .is_none(),
            "ttl"
        );
        // Not every failure is a lasting fact about the reference.
        for other in [
            Error::OpFailed(crate::error::Detail::new("(500) Internal Server Error")),
            Error::RateLimited(crate::error::Detail::new("isn't an item")),
            Error::Expired(crate::error::Detail::new("not signed in")),
        ] {
            c.put_miss("my", 1, "o", &other, t0);
            assert!(c.get_miss("my", 1, "o", t0).is_none(), "{other}");
        }
        // A value found later replaces the miss.
        c.put_miss("my", 1, "k", &missing(), t0);
        c.put("my", 1, "k", v("now it exists"), t0);
        assert!(c.get_miss("my", 1, "k", t0).is_none());
        // Zero turns it off.
        let off = Cache::new(Duration::from_secs(300));
        off.put_miss("my", 1, "k", &missing(), t0);
        assert!(off.get_miss("my", 1, "k", t0).is_none());
    }

    #[test]
    fn misses_belong_to_their_session_generation_and_end_with_it() {
        let c = Cache::new(Duration::ZERO).with_negative_ttl(Duration::from_secs(30));
        let t0 = Duration::from_secs(1);
        c.put_miss("my", 1, "k", &missing(), t0);
        assert!(
            c.get_miss("my", 2, "k", t0).is_none(),
            "re-init sees nothing"
        );
        c.put_miss("my", 2, "k", &missing(), t0);
        c.put_miss("my", 1, "late", &missing(), t0);
        assert!(
            c.get_miss("my", 1, "late", t0).is_none(),
            "a late store is ignored"
        );
        c.drop_account("my");
        assert!(c.get_miss("my", 2, "k", t0).is_none(), "lock drops misses");
        c.put_miss("my", 3, "k", &missing(), t0);
        c.clear();
        assert!(c.get_miss("my", 3, "k", t0).is_none(), "stop drops misses");
    }

    #[test]
    fn zero_ttl_keeps_nothing() {
        let c = Cache::new(Duration::ZERO);
        c.put("a", 1, "k", v("x"), Duration::from_secs(1));
        assert!(c.get("a", 1, "k", Duration::from_secs(1)).is_none());
    }
}

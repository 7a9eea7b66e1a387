//! Held sessions: who they are, their credential, and their deadlines.
//!
//! Owns the table of sessions (one per account), the default-account rule, and the deadline
//! arithmetic on the suspend-aware clock: idle measured from the last successful `op` call,
//! a hard limit from sign-in, checked on every lookup. Pure state: running `op` is someone
//! else's job (sign-in is [`crate::init`]'s; sign-out and keepalive [`crate::lifecycle`]'s).
//!
//! The table sits behind a std `Mutex` that is never held across an `.await` (mini-redis's
//! rule): every method takes the lock, does arithmetic, and returns. Credentials are handed
//! out as `Arc<SecretToken>`, so a session wiped while an `op` call is in flight keeps its
//! token only until that call ends, then the page is zeroed.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use op_session_protocol::{Mode, SessionStatus};
use tokio::sync::Notify;

use crate::clock::unix_now;
use crate::error::Error;
use crate::securemem::SecretToken;
mod account;
mod credential;
mod end;
mod identity;
mod lease;

pub(crate) use account::{Account, unnamed_session};
pub(crate) use credential::Credential;
pub(crate) use end::{EndReason, expired_error};
pub(crate) use identity::Identity;
use identity::normalize_url;
pub(crate) use lease::{Lease, not_signed_in};

/// Why a lease failed: the error for the client, and the session that just ran out (if one
/// did), which the caller must wipe and revoke.
pub(crate) type LeaseError = (Error, Option<Box<(Session, EndReason)>>);

/// One held session.
#[derive(Debug)]
pub struct Session {
    /// The account's name in op-session (what `--account` was at init, or derived).
    pub name: String,
    /// Who it is.
    pub identity: Identity,
    /// How it authenticates, and what it holds to (its mode is [`Session::mode`]).
    pub credential: Credential,
    /// Unix time of sign-in (display only).
    pub signed_in_unix: u64,
    /// Sign-in time on the deadline clock.
    pub started: Duration,
    /// Last successful `op` call on the deadline clock (what the server's idle timer counts).
    pub last_op_use: Duration,
    /// Idle limit (`None`: no idle limit, e.g. service accounts).
    pub idle_limit: Option<Duration>,
    /// Absolute hard deadline on the deadline clock.
    pub hard_deadline: Duration,
    /// Keepalive on for this session.
    pub keepalive: bool,
    /// A keepalive call is in flight.
    pub keepalive_running: bool,
    /// Changes whenever the account is re-initialized, so a stale request cannot end a new
    /// session.
    pub generation: u64,
}

impl Session {
    /// How it authenticates.
    pub fn mode(&self) -> Mode {
        self.credential.mode()
    }

    /// Whether `name` names this session (name, shorthand, address, UUIDs, email).
    pub fn matches(&self, name: &str) -> bool {
        let n = name.trim();
        if n.eq_ignore_ascii_case(&self.name) {
            return true;
        }
        let id = &self.identity;
        let eq = |v: &Option<String>| v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(n));
        eq(&id.shorthand)
            || eq(&id.user_uuid)
            || eq(&id.account_uuid)
            || eq(&id.email)
            || id.host().is_some_and(|h| h == normalize_url(n))
    }

    /// When the session ends by time, and why (the earlier of idle and hard).
    pub fn deadline(&self) -> (Duration, EndReason) {
        match self.idle_limit {
            Some(idle) if self.last_op_use + idle < self.hard_deadline => {
                (self.last_op_use + idle, EndReason::Idle)
            }
            _ => (self.hard_deadline, EndReason::Hard),
        }
    }

    /// `Some(reason)` if the session has run out at `now`.
    pub fn expired(&self, now: Duration) -> Option<EndReason> {
        let (at, why) = self.deadline();
        (now >= at).then_some(why)
    }

    /// What to tell `op --account` so it picks this account.
    pub fn account_arg(&self) -> Option<String> {
        match self.mode() {
            Mode::ServiceAccount | Mode::Connect => None,
            Mode::Token | Mode::App => self
                .identity
                .user_uuid
                .clone()
                .or_else(|| Some(self.name.clone())),
        }
    }

    fn status(&self, now: Duration, default: bool, cache_entries: usize) -> SessionStatus {
        let left = |at: Duration| at.saturating_sub(now).as_secs();
        SessionStatus {
            account: self.name.clone(),
            mode: self.mode(),
            default,
            email: self.identity.email.clone(),
            url: self.identity.url.clone(),
            user_uuid: self.identity.user_uuid.clone(),
            account_uuid: self.identity.account_uuid.clone(),
            signed_in_at: self.signed_in_unix,
            last_use_s_ago: now.saturating_sub(self.last_op_use).as_secs(),
            idle_remaining_s: self
                .idle_limit
                .map(|i| left((self.last_op_use + i).min(self.hard_deadline))),
            hard_remaining_s: left(self.hard_deadline),
            keepalive: self.keepalive,
            cache_entries,
            connect: self.credential.link().map(|l| l.server.clone()),
            quota: None, // filled in by the status request (crate::quota)
        }
    }
}

#[derive(Debug, Default)]
struct Table {
    sessions: Vec<Session>,
    configured_default: Option<String>,
    first: Option<String>,
    next_generation: u64,
}

impl Table {
    fn default_name(&self) -> Option<&str> {
        self.configured_default.as_deref().or(self.first.as_deref())
    }

    fn find(&self, account: Option<&str>) -> Option<usize> {
        match account {
            Some(a) => self.sessions.iter().position(|s| s.matches(a)),
            None => match self.default_name() {
                Some(d) => self.sessions.iter().position(|s| s.matches(d)),
                None if self.sessions.len() == 1 => Some(0),
                None => None,
            },
        }
    }
}

/// The session table.
#[derive(Debug, Default)]
pub struct Sessions {
    table: Mutex<Table>,
    /// Woken whenever deadlines change, so the expiry timer re-plans.
    pub changed: Notify,
}

impl Sessions {
    /// An empty table; `configured_default` is config `default_account`.
    pub fn new(configured_default: Option<String>) -> Self {
        Sessions {
            table: Mutex::new(Table {
                configured_default,
                ..Table::default()
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding this lock would be a bug in arithmetic code; the table is
        // still consistent (no partial updates), so keep serving rather than poisoning.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Allocate a generation number for a new session.
    pub fn next_generation(&self) -> u64 {
        let mut t = self.lock();
        t.next_generation += 1;
        t.next_generation
    }

    /// Borrow the session for `account` (None: default). An expired session is removed and
    /// returned in the error so the caller can revoke it.
    pub fn lease(&self, account: Option<&str>, now: Duration) -> Result<Lease, LeaseError> {
        let mut t = self.lock();
        let Some(i) = t.find(account) else {
            return Err((not_signed_in(account, t.default_name()), None));
        };
        if let Some(why) = t.sessions[i].expired(now) {
            let s = t.sessions.remove(i);
            let err = expired_error(&s.name, why);
            self.changed.notify_one();
            return Err((err, Some(Box::new((s, why)))));
        }
        let s = &t.sessions[i];
        Ok(Lease {
            name: s.name.clone(),
            credential: s.credential.clone(),
            generation: s.generation,
            account_arg: s.account_arg(),
        })
    }

    /// Record a successful `op` call (resets the idle timer, never past the hard limit).
    pub fn touch(&self, name: &str, generation: u64, now: Duration) {
        let mut t = self.lock();
        if let Some(s) = t
            .sessions
            .iter_mut()
            .find(|s| s.name == name && s.generation == generation)
        {
            s.last_op_use = s.last_op_use.max(now);
            if let Credential::App { confirmed } = &mut s.credential {
                *confirmed = (*confirmed).max(now);
            }
            self.changed.notify_one();
        }
    }

    /// Whether `name` is still the session of `generation` and has not run out: a value
    /// resolved under an older lease (before a lock, expiry or re-init) must not be published.
    pub fn is_current(&self, name: &str, generation: u64, now: Duration) -> bool {
        self.lock()
            .sessions
            .iter()
            .any(|s| s.name == name && s.generation == generation && s.expired(now).is_none())
    }

    /// When the app authorization of `name` (generation `generation`) was last confirmed;
    /// `None` for a session that is gone or not an app session.
    pub fn app_confirmed(&self, name: &str, generation: u64) -> Option<Duration> {
        let t = self.lock();
        let s = t
            .sessions
            .iter()
            .find(|s| s.name == name && s.generation == generation)?;
        match s.credential {
            Credential::App { confirmed } => Some(confirmed),
            Credential::Token { .. }
            | Credential::ServiceAccount { .. }
            | Credential::Connect { .. } => None,
        }
    }

    /// Decide whether a keepalive call is due for `name`: keepalive on, idle limit set, at
    /// least half the idle window used, none in flight, hard limit not reached. Marks it in
    /// flight when due.
    pub fn keepalive_due(&self, name: &str, generation: u64, now: Duration) -> bool {
        let mut t = self.lock();
        let Some(s) = t
            .sessions
            .iter_mut()
            .find(|s| s.name == name && s.generation == generation)
        else {
            return false;
        };
        let Some(idle) = s.idle_limit else {
            return false;
        };
        let due = s.keepalive
            && !s.keepalive_running
            && now < s.hard_deadline
            && now.saturating_sub(s.last_op_use) >= idle / 2;
        if due {
            s.keepalive_running = true;
        }
        due
    }

    /// Clear the keepalive-in-flight mark.
    pub fn keepalive_done(&self, name: &str, generation: u64) {
        let mut t = self.lock();
        if let Some(s) = t
            .sessions
            .iter_mut()
            .find(|s| s.name == name && s.generation == generation)
        {
            s.keepalive_running = false;
        }
    }

    /// Add a session, replacing one with the same name (returned, for revocation).
    pub fn insert(&self, session: Session) -> Option<Session> {
        let mut t = self.lock();
        let old = t
            .sessions
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(&session.name))
            .map(|i| t.sessions.remove(i));
        if t.first.is_none() {
            t.first = Some(session.name.clone());
        }
        t.sessions.push(session);
        self.changed.notify_one();
        old
    }

    /// Whether a live session named `account` (None: default) exists at `now`.
    pub fn has_live(&self, account: Option<&str>, now: Duration) -> bool {
        let t = self.lock();
        t.find(account)
            .is_some_and(|i| t.sessions[i].expired(now).is_none())
    }

    /// Remove the session `name` if it is still generation `generation`.
    pub fn end(&self, name: &str, generation: u64) -> Option<Session> {
        let mut t = self.lock();
        let i = t
            .sessions
            .iter()
            .position(|s| s.name == name && s.generation == generation)?;
        self.changed.notify_one();
        Some(t.sessions.remove(i))
    }

    /// Remove the session for `account` (None: default).
    pub fn remove(&self, account: Option<&str>) -> Result<Session, Error> {
        let mut t = self.lock();
        let Some(i) = t.find(account) else {
            return Err(not_signed_in(account, t.default_name()));
        };
        self.changed.notify_one();
        Ok(t.sessions.remove(i))
    }

    /// Remove every session.
    pub fn remove_all(&self) -> Vec<Session> {
        let mut t = self.lock();
        self.changed.notify_one();
        std::mem::take(&mut t.sessions)
    }

    /// Remove every session whose mode `ends` picks (presence: sleep and screen lock).
    pub fn remove_modes(&self, ends: impl Fn(Mode) -> bool) -> Vec<Session> {
        let mut t = self.lock();
        let (gone, kept) = std::mem::take(&mut t.sessions)
            .into_iter()
            .partition(|s| ends(s.mode()));
        t.sessions = kept;
        self.changed.notify_one();
        gone
    }

    /// Every credential held now, for scrubbing what a passthrough prints.
    pub fn credentials(&self) -> Vec<Arc<SecretToken>> {
        self.lock()
            .sessions
            .iter()
            .filter_map(|s| s.credential.token().cloned())
            .collect()
    }

    /// Whether a session of a mode `pick` picks is held.
    pub fn any_mode(&self, pick: impl Fn(Mode) -> bool) -> bool {
        self.lock().sessions.iter().any(|s| pick(s.mode()))
    }

    /// Remove sessions that ran out by `now`.
    pub fn sweep(&self, now: Duration) -> Vec<(Session, EndReason)> {
        let mut t = self.lock();
        let mut out = Vec::new();
        let mut i = 0;
        while i < t.sessions.len() {
            if let Some(why) = t.sessions[i].expired(now) {
                out.push((t.sessions.remove(i), why));
            } else {
                i += 1;
            }
        }
        out
    }

    /// The earliest deadline of any session.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.lock().sessions.iter().map(|s| s.deadline().0).min()
    }

    /// How many sessions are held.
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The default account's name, if any.
    pub fn default_name(&self) -> Option<String> {
        self.lock().default_name().map(str::to_string)
    }

    /// Status of every live session. `cache_count` gives the cached values per account name.
    pub fn status(&self, now: Duration, cache_count: impl Fn(&str) -> usize) -> Vec<SessionStatus> {
        let t = self.lock();
        let default = t.find(None);
        t.sessions
            .iter()
            .enumerate()
            .filter(|(_, s)| s.expired(now).is_none())
            .map(|(i, s)| s.status(now, Some(i) == default, cache_count(&s.name)))
            .collect()
    }

    /// Build a new session value (not yet inserted), signed in at `now` on the deadline
    /// clock, with the next generation.
    pub fn build(&self, new: NewSession, now: Duration) -> Session {
        let mut credential = new.credential;
        if let Credential::App { confirmed } = &mut credential {
            // Signing in proved the app's authorization.
            *confirmed = now;
        }
        Session {
            name: new.name,
            identity: new.identity,
            credential,
            signed_in_unix: unix_now(),
            started: now,
            last_op_use: now,
            idle_limit: new.idle_limit,
            hard_deadline: now + new.hard_limit,
            keepalive: new.keepalive,
            keepalive_running: false,
            generation: self.next_generation(),
        }
    }
}

/// What a new session starts with: everything [`Sessions::build`] does not derive from the
/// clock and the table.
#[derive(Debug)]
pub struct NewSession {
    /// The account's name in op-session.
    pub name: String,
    /// Who it is.
    pub identity: Identity,
    /// How it authenticates (its mode follows).
    pub credential: Credential,
    /// Idle limit (`None`: no idle limit).
    pub idle_limit: Option<Duration>,
    /// How long after sign-in the session ends whatever happens.
    pub hard_limit: Duration,
    /// Refresh the server session while clients are active.
    pub keepalive: bool,
}

impl NewSession {
    /// A session for `name` holding `credential`, with no idle limit, no keepalive and the
    /// given hard limit; set the rest with struct update syntax.
    pub fn new(name: impl Into<String>, credential: Credential, hard_limit: Duration) -> Self {
        NewSession {
            name: name.into(),
            identity: Identity::default(),
            credential,
            idle_limit: None,
            hard_limit,
            keepalive: false,
        }
    }
}

#[cfg(test)]
mod tests;

//! Held sessions: who they are, their credential, and their deadlines.
//!
//! Owns the table of sessions (one per account), the default-account rule, and the deadline
//! arithmetic on the suspend-aware clock: idle measured from the last successful `op` call,
//! a hard limit from sign-in, checked on every lookup. Pure state: running `op` (sign-in,
//! sign-out, keepalive) is [`crate::lifecycle`]'s job.
//!
//! The table sits behind a std `Mutex` that is never held across an `.await` (mini-redis's
//! rule): every method takes the lock, does arithmetic, and returns. Credentials are handed
//! out as `Arc<SecretToken>`, so a session wiped while an `op` call is in flight keeps its
//! token only until that call ends, then the page is zeroed.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use op_session_protocol::{ErrorBody, ErrorCode, Mode, SessionStatus};
use tokio::sync::Notify;

use crate::clock::unix_now;
use crate::oprun::Auth;
use crate::securemem::SecretToken;
use secrecy::ExposeSecret;

/// Who a session belongs to, as `op whoami` reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The user's email (people only).
    pub email: Option<String>,
    /// Sign-in address.
    pub url: Option<String>,
    /// User UUID.
    pub user_uuid: Option<String>,
    /// Account UUID.
    pub account_uuid: Option<String>,
    /// Shorthand, when op reported one.
    pub shorthand: Option<String>,
}

impl Identity {
    /// Parse `op whoami --format json` (either key style of docs/op-behaviour.md §1.7).
    pub fn from_whoami(json: &[u8]) -> Option<Identity> {
        let v: serde_json::Value = serde_json::from_slice(json).ok()?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        Some(Identity {
            email: s("email"),
            url: s("url").or_else(|| s("URL")),
            user_uuid: s("user_uuid"),
            account_uuid: s("account_uuid"),
            shorthand: s("shorthand"),
        })
    }

    /// The sign-in address without scheme or trailing slash, lower-cased.
    pub fn host(&self) -> Option<String> {
        self.url.as_deref().map(normalize_url)
    }

    /// A short name for the account: the shorthand, else the first label of the host.
    pub fn short_name(&self) -> Option<String> {
        self.shorthand.clone().or_else(|| {
            self.host()
                .and_then(|h| h.split('.').next().map(str::to_string))
        })
    }
}

fn normalize_url(u: &str) -> String {
    let u = u.trim().to_ascii_lowercase();
    let u = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .unwrap_or(&u)
        .to_string();
    u.trim_end_matches('/').to_string()
}

/// One held session.
#[derive(Debug)]
pub struct Session {
    /// The account's name in op-session (what `--account` was at init, or derived).
    pub name: String,
    /// How it authenticates.
    pub mode: Mode,
    /// Who it is.
    pub identity: Identity,
    /// The token (token and service-account modes).
    pub credential: Option<Arc<SecretToken>>,
    /// `OP_SESSION_<USERUUID>` (token mode).
    pub session_var: Option<String>,
    /// Unix time of sign-in (display only).
    pub signed_in_unix: u64,
    /// Sign-in time on the deadline clock.
    pub started: Duration,
    /// Last successful `op` call on the deadline clock (what the server's idle timer counts).
    pub last_op_use: Duration,
    /// App mode: when an `op` call last proved the desktop app's authorization live. Cached
    /// values are served only within `app_check_interval` of this (a locked app revokes
    /// every authorization at once, and the cache must not outlive that).
    pub app_confirmed: Duration,
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
    /// Connect mode: the server this session resolves against (its token is `credential`).
    pub connect: Option<Arc<crate::connect::link::Link>>,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Idle limit passed.
    Idle,
    /// Hard limit passed.
    Hard,
    /// `op` said the session is gone.
    Revoked,
    /// `op-session lock`.
    Locked,
    /// Daemon shutdown.
    Shutdown,
    /// Replaced by a new init.
    Replaced,
}

impl EndReason {
    /// For logs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Idle => "idle limit reached",
            EndReason::Hard => "12-hour limit reached",
            EndReason::Revoked => "revoked by 1Password",
            EndReason::Locked => "locked",
            EndReason::Shutdown => "daemon stopped",
            EndReason::Replaced => "replaced by a new sign-in",
        }
    }
}

impl Session {
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
        match self.mode {
            Mode::ServiceAccount | Mode::Connect => None,
            _ => self
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
            mode: self.mode,
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
            connect: self.connect.as_ref().map(|l| l.server.clone()),
        }
    }
}

/// What a request borrows from a session for one `op` call.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The session's name.
    pub name: String,
    /// Its mode.
    pub mode: Mode,
    /// Its credential.
    pub credential: Option<Arc<SecretToken>>,
    /// Its session variable.
    pub session_var: Option<String>,
    /// Its generation (see [`Session::generation`]).
    pub generation: u64,
    /// What to pass as `--account`.
    pub account_arg: Option<String>,
    /// Connect mode: the server to resolve against.
    pub connect: Option<Arc<crate::connect::link::Link>>,
}

impl Lease {
    /// The child's credential.
    pub fn auth(&self) -> Auth<'_> {
        match (self.mode, &self.credential, &self.session_var) {
            (Mode::Token, Some(c), Some(var)) => Auth::Token {
                var,
                token: c.expose_secret().as_str(),
            },
            (Mode::ServiceAccount, Some(c), _) => Auth::ServiceAccount {
                token: c.expose_secret().as_str(),
            },
            (Mode::Connect, Some(c), _) => match &self.connect {
                Some(link) => Auth::Connect {
                    host: link.host(),
                    token: c.expose_secret().as_str(),
                },
                None => Auth::None,
            },
            _ => Auth::None,
        }
    }

    /// The held credential as text, for scrubbing.
    pub fn secret_str(&self) -> &str {
        self.credential
            .as_ref()
            .map(|c| c.expose_secret().as_str())
            .unwrap_or("")
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

/// Why a lease failed: the error for the client, and the session that just ran out (if one
/// did), which the caller must wipe and revoke.
pub type LeaseError = (ErrorBody, Option<Box<(Session, EndReason)>>);

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
            mode: s.mode,
            credential: s.credential.clone(),
            session_var: s.session_var.clone(),
            generation: s.generation,
            account_arg: s.account_arg(),
            connect: s.connect.clone(),
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
            s.app_confirmed = s.app_confirmed.max(now);
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

    /// When the app authorization of `name` (generation `generation`) was last confirmed.
    pub fn app_confirmed(&self, name: &str, generation: u64) -> Option<Duration> {
        self.lock()
            .sessions
            .iter()
            .find(|s| s.name == name && s.generation == generation)
            .map(|s| s.app_confirmed)
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
    pub fn remove(&self, account: Option<&str>) -> Result<Session, ErrorBody> {
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
            .partition(|s| ends(s.mode));
        t.sessions = kept;
        self.changed.notify_one();
        gone
    }

    /// Whether a session of a mode `pick` picks is held.
    pub fn any_mode(&self, pick: impl Fn(Mode) -> bool) -> bool {
        self.lock().sessions.iter().any(|s| pick(s.mode))
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
        Session {
            name: new.name,
            mode: new.mode,
            identity: new.identity,
            credential: new.credential.map(Arc::new),
            session_var: new.session_var,
            signed_in_unix: unix_now(),
            started: now,
            last_op_use: now,
            app_confirmed: now,
            idle_limit: new.idle_limit,
            hard_deadline: now + new.hard_limit,
            keepalive: new.keepalive,
            keepalive_running: false,
            generation: self.next_generation(),
            connect: new.connect,
        }
    }
}

/// What a new session starts with: everything [`Sessions::build`] does not derive from the
/// clock and the table.
#[derive(Debug)]
pub struct NewSession {
    /// The account's name in op-session.
    pub name: String,
    /// How it authenticates.
    pub mode: Mode,
    /// Who it is.
    pub identity: Identity,
    /// The token (token, service-account and connect modes).
    pub credential: Option<SecretToken>,
    /// `OP_SESSION_<USERUUID>` (token mode).
    pub session_var: Option<String>,
    /// Idle limit (`None`: no idle limit).
    pub idle_limit: Option<Duration>,
    /// How long after sign-in the session ends whatever happens.
    pub hard_limit: Duration,
    /// Refresh the server session while clients are active.
    pub keepalive: bool,
    /// Connect mode: the server this session resolves against.
    pub connect: Option<Arc<crate::connect::link::Link>>,
}

impl NewSession {
    /// A session of `mode` for `name` with no credential, no idle limit, no keepalive and
    /// the given hard limit; set the rest with struct update syntax.
    pub fn new(name: impl Into<String>, mode: Mode, hard_limit: Duration) -> Self {
        NewSession {
            name: name.into(),
            mode,
            identity: Identity::default(),
            credential: None,
            session_var: None,
            idle_limit: None,
            hard_limit,
            keepalive: false,
            connect: None,
        }
    }
}

/// The error for "no session for this account".
pub fn not_signed_in(account: Option<&str>, default: Option<&str>) -> ErrorBody {
    let which = account.or(default);
    let (msg, fix) = match which {
        Some(a) => (
            format!("no 1Password session is held for account {a}"),
            format!("run `op-session init --account {a}` in a terminal"),
        ),
        None => (
            "no 1Password session is held".to_string(),
            "run `op-session init` in a terminal".to_string(),
        ),
    };
    ErrorBody::new(ErrorCode::NotSignedIn, msg).with_fix(fix)
}

/// The error for a session that ran out.
pub fn expired_error(name: &str, why: EndReason) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::SessionExpired,
        format!(
            "the 1Password session for account {name} ended ({})",
            why.as_str()
        ),
    )
    .with_fix(format!(
        "run `op-session init --account {name}` in a terminal to sign in again"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(t: &Sessions, name: &str, now: Duration, idle: Option<u64>, hard: u64) -> Session {
        t.build(
            NewSession {
                identity: Identity {
                    url: Some(format!("https://{name}.1password.com/")),
                    user_uuid: Some(format!("{}UUID", name.to_uppercase())),
                    ..Identity::default()
                },
                session_var: Some("OP_SESSION_X".into()),
                idle_limit: idle.map(Duration::from_secs),
                keepalive: true,
                ..NewSession::new(name, Mode::Token, Duration::from_secs(hard))
            },
            now,
        )
    }

    #[test]
    fn idle_is_measured_from_the_last_op_call_and_capped_by_hard() {
        let t = Sessions::new(None);
        let s0 = Duration::from_secs(100);
        t.insert(session(&t, "my", s0, Some(30), 50));
        let l = t.lease(None, s0 + Duration::from_secs(20)).expect("live");
        t.touch(&l.name, l.generation, s0 + Duration::from_secs(20));
        assert!(
            t.lease(None, s0 + Duration::from_secs(45)).is_ok(),
            "idle reset by use"
        );
        let (err, ended) = t
            .lease(None, s0 + Duration::from_secs(50))
            .expect_err("hard limit even while in use");
        assert_eq!(err.code, ErrorCode::SessionExpired);
        assert_eq!(ended.map(|b| b.1), Some(EndReason::Hard));
        assert!(t.is_empty());
    }

    #[test]
    fn idle_expiry_without_use() {
        let t = Sessions::new(None);
        let s0 = Duration::from_secs(10);
        t.insert(session(&t, "my", s0, Some(2), 3600));
        let (err, ended) = t
            .lease(Some("my"), s0 + Duration::from_secs(2))
            .expect_err("idle");
        assert_eq!(err.code, ErrorCode::SessionExpired);
        assert_eq!(ended.map(|b| b.1), Some(EndReason::Idle));
    }

    #[test]
    fn accounts_match_by_name_address_and_uuid_and_default_is_first() {
        let t = Sessions::new(None);
        let now = Duration::from_secs(1);
        t.insert(session(&t, "work", now, None, 100));
        t.insert(session(&t, "home", now, None, 100));
        assert_eq!(t.lease(None, now).expect("default").name, "work");
        assert_eq!(t.lease(Some("HOME"), now).expect("by name").name, "home");
        assert_eq!(
            t.lease(Some("https://home.1password.com"), now)
                .expect("by url")
                .name,
            "home"
        );
        assert_eq!(
            t.lease(Some("HOMEUUID"), now).expect("by uuid").name,
            "home"
        );
        let (err, _) = t.lease(Some("nope"), now).expect_err("unknown");
        assert_eq!(err.code, ErrorCode::NotSignedIn);
        assert!(err.fix.contains("--account nope"));
    }

    #[test]
    fn keepalive_is_due_after_half_the_idle_window_once() {
        let t = Sessions::new(None);
        let s0 = Duration::from_secs(0);
        t.insert(session(&t, "my", s0, Some(10), 100));
        let l = t.lease(None, s0).expect("live");
        assert!(!t.keepalive_due(&l.name, l.generation, s0 + Duration::from_secs(4)));
        assert!(t.keepalive_due(&l.name, l.generation, s0 + Duration::from_secs(5)));
        assert!(
            !t.keepalive_due(&l.name, l.generation, s0 + Duration::from_secs(6)),
            "in flight"
        );
        t.keepalive_done(&l.name, l.generation);
        t.touch(&l.name, l.generation, s0 + Duration::from_secs(6));
        assert!(!t.keepalive_due(&l.name, l.generation, s0 + Duration::from_secs(7)));
    }

    #[test]
    fn stale_generations_cannot_end_a_new_session() {
        let t = Sessions::new(None);
        let now = Duration::from_secs(1);
        t.insert(session(&t, "my", now, None, 100));
        let old = t.lease(None, now).expect("live");
        t.insert(session(&t, "my", now, None, 100));
        assert!(t.end(&old.name, old.generation).is_none());
        assert_eq!(t.len(), 1);
    }
}

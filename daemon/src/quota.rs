//! The request budget of service-account and connect sessions, and the wait a 429 imposes.
//!
//! 1Password limits a service account's requests per hour (reads and writes apart) and the
//! whole account's per day (docs/op-behaviour.md §6); a caller that loops on a miss can spend
//! the quota of every other service of the company. The daemon therefore counts the `op` calls
//! and Connect HTTP requests it makes for each such session, in one-minute buckets over a
//! sliding hour and day on the injected deadline clock ([`crate::clock`]), and refuses a
//! request that would pass a limit before anything is run, with the time the budget frees up.
//!
//! Owns: the `[quota]` table ([`QuotaConfig`]) and the limits each mode gets from it
//! ([`Limits`]); the counts per session name ([`Quotas::charge`]); the 90% warning (once per
//! window until the use falls back below it); the retry time a 429 from `op` or Connect sets
//! ([`Quotas::rate_limited`]), which holds back every mode's calls, not only metered ones; the
//! `quota` part of `status` ([`Quotas::status`]); and keeping all of it across a daemon
//! restart in `$XDG_STATE_HOME/op-session/quota.json` (0600, directory 0700).
//!
//! Why persisted: 1Password's counters do not restart with the daemon. A daemon that exits
//! when idle, is restarted by its service manager, or crashes would otherwise forget the
//! calls it made and let a looping caller spend the real quota again, and forget a 429 and
//! call into it. The file holds session names, minute counts and a retry time, never a token,
//! a reference or a value. Times in it are wall-clock seconds, converted to and from the
//! deadline clock on save and load; a count loaded from before a reboot is treated as at most
//! as old as the machine's uptime, which can only count it longer (conservative). Saves are
//! at most one per second while calls are made (a crash loses at most that second), at once
//! after a 429, and at shutdown.
//!
//! The budget is keyed by session name, not by generation: it counts what the account spent,
//! which a lock or a re-init does not give back. It holds nothing an authorization grants.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use op_session_protocol::{Mode, QuotaStatus, QuotaWindow};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::{Detail, Error};

use crate::clock::{Clock, unix_now};

/// 1Password Teams' hourly read limit per service-account token (docs/op-behaviour.md §6).
pub(crate) const TEAMS_READS_PER_HOUR: u64 = 1_000;
/// 1Password Teams' hourly write limit per service-account token.
pub(crate) const TEAMS_WRITES_PER_HOUR: u64 = 100;
/// 1Password Teams' daily limit per account (reads and writes together).
pub(crate) const TEAMS_REQUESTS_PER_DAY: u64 = 5_000;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
/// The file in the state directory.
pub(crate) const FILE_NAME: &str = "quota.json";
/// How long a 429 without a readable retry time holds calls back (ours: op prints one).
const DEFAULT_RETRY: Duration = Duration::from_secs(60);
/// Fewest seconds between two saves of the file while calls are made.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The `[quota]` table. An unset limit takes its mode's default (service accounts: the Teams
/// figures; connect: none); `0` turns a limit off.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// Reads per sliding hour.
    pub reads_per_hour: Option<u64>,
    /// Writes per sliding hour.
    pub writes_per_hour: Option<u64>,
    /// Requests per sliding day. Named for reads, it counts writes too, as 1Password's daily
    /// per-account cap does.
    pub reads_per_day: Option<u64>,
    /// Errors in a row within a minute after which one caller is answered from memory only
    /// (see [`crate::brake`]); `0` turns the brake off. Default 30.
    pub caller_errors_per_minute: Option<u64>,
}

impl QuotaConfig {
    /// The brake's threshold (`0`: off).
    pub fn caller_errors_per_minute(&self) -> u64 {
        self.caller_errors_per_minute.unwrap_or(30)
    }

    /// The limits of a session of `mode`; `None` for modes that have no budget (token, app).
    pub fn limits(&self, mode: Mode) -> Option<Limits> {
        let (rh, wh, d) = match mode {
            Mode::ServiceAccount => (
                TEAMS_READS_PER_HOUR,
                TEAMS_WRITES_PER_HOUR,
                TEAMS_REQUESTS_PER_DAY,
            ),
            Mode::Connect => (0, 0, 0),
            Mode::Token | Mode::App => return None,
        };
        Some(Limits {
            reads_per_hour: self.reads_per_hour.unwrap_or(rh),
            writes_per_hour: self.writes_per_hour.unwrap_or(wh),
            per_day: self.reads_per_day.unwrap_or(d),
        })
    }
}

/// One session's limits; `0` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Reads per hour.
    pub reads_per_hour: u64,
    /// Writes per hour.
    pub writes_per_hour: u64,
    /// Reads and writes per day.
    pub per_day: u64,
}

/// What a request costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Reading (every call that changes nothing).
    Read,
    /// Creating, changing or deleting.
    Write,
}

impl Kind {
    /// The kind of an `op` command by its effect in the grammar.
    pub fn of(effect: op_grammar::Effect) -> Kind {
        match effect {
            op_grammar::Effect::Write | op_grammar::Effect::Destructive => Kind::Write,
            _ => Kind::Read,
        }
    }
}

/// Why a request was not sent: the message names the limit and when it frees up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// One line.
    pub message: String,
    /// When a retry may succeed.
    pub retry_after: Duration,
}

impl Refusal {
    /// The client's error: `rate_limited` (exit 75) with the time to retry.
    pub fn to_error(&self) -> Error {
        Error::RateLimited(Detail {
            retry_after_s: Some(self.retry_after.as_secs().max(1)),
            fix: Some(format!(
                "retry in {}; nothing was sent to 1Password",
                wait_text(self.retry_after)
            )),
            ..Detail::new(self.message.clone())
        })
    }
}

/// Counts per minute, oldest first: `(minute on the deadline clock, count)`.
#[derive(Debug, Default, Clone)]
struct Buckets(VecDeque<(u64, u64)>);

impl Buckets {
    fn add(&mut self, minute: u64) {
        match self.0.back_mut() {
            Some((m, n)) if *m == minute => *n += 1,
            _ => self.0.push_back((minute, 1)),
        }
    }

    /// Forget minutes that left the day.
    fn prune(&mut self, now_min: u64) {
        while let Some((m, _)) = self.0.front() {
            if m + DAY / MINUTE <= now_min {
                self.0.pop_front();
            } else {
                break;
            }
        }
    }

    /// Calls within the last `window` seconds (by minute: a call counts for at least the
    /// window and at most one minute more).
    fn used(&self, now_min: u64, window: u64) -> u64 {
        let w = window / MINUTE;
        self.0
            .iter()
            .filter(|(m, _)| m + w > now_min)
            .map(|(_, n)| n)
            .sum()
    }

    /// The minute after which `used(window)` falls below `limit`, as a clock time.
    fn frees_at(&self, now_min: u64, window: u64, limit: u64) -> Duration {
        let w = window / MINUTE;
        let mut used = self.used(now_min, window);
        for (m, n) in self.0.iter().filter(|(m, _)| m + w > now_min) {
            used -= n;
            if used < limit {
                return Duration::from_secs((m + w) * MINUTE);
            }
        }
        Duration::from_secs((now_min + 1) * MINUTE)
    }
}

/// Two bucket lists merged minute by minute (for the day window, which counts both kinds).
fn merged(a: &Buckets, b: &Buckets) -> Buckets {
    let mut all: Vec<(u64, u64)> = a.0.iter().chain(b.0.iter()).copied().collect();
    all.sort_by_key(|(m, _)| *m);
    let mut out = Buckets::default();
    for (m, n) in all {
        match out.0.back_mut() {
            Some((last, c)) if *last == m => *c += n,
            _ => out.0.push_back((m, n)),
        }
    }
    out
}

/// One session name's counts.
#[derive(Debug, Default, Clone)]
struct Budget {
    reads: Buckets,
    writes: Buckets,
    /// A 429 said not to call before this (deadline clock).
    retry_at: Option<Duration>,
    /// Which windows have had their 90% warning: reads/hour, writes/hour, day.
    warned: [bool; 3],
}

/// Every budget, and where they are kept.
#[derive(Debug)]
pub struct Quotas {
    config: QuotaConfig,
    clock: Arc<dyn Clock>,
    path: Option<PathBuf>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    budgets: HashMap<String, Budget>,
    dirty: bool,
    saved_at: Option<Duration>,
}

impl Quotas {
    /// Budgets under `config`, on `clock`, kept in `path` (loaded now; `None`: memory only).
    pub fn new(config: QuotaConfig, clock: Arc<dyn Clock>, path: Option<PathBuf>) -> Quotas {
        let budgets = path
            .as_deref()
            .map(|p| load(p, clock.now()))
            .unwrap_or_default();
        Quotas {
            config,
            clock,
            path,
            inner: Mutex::new(Inner {
                budgets,
                ..Inner::default()
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &QuotaConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count one request of `kind` for session `name` of `mode`, or refuse it without
    /// counting: while a 429's retry time has not passed (any mode), or when the request
    /// would pass one of the mode's limits.
    pub fn charge(&self, name: &str, mode: Mode, kind: Kind) -> Result<(), Refusal> {
        let now = self.clock.now();
        let now_min = now.as_secs() / MINUTE;
        let limits = self.config.limits(mode);
        let mut inner = self.lock();
        if limits.is_none() && !inner.budgets.contains_key(name) {
            return Ok(()); // no budget and no 429 on record
        }
        let b = inner.budgets.entry(name.to_string()).or_default();
        if let Some(at) = b.retry_at {
            if now < at {
                return Err(held_back(name, at - now));
            }
            b.retry_at = None;
        }
        let Some(limits) = limits else {
            return Ok(());
        };
        b.reads.prune(now_min);
        b.writes.prune(now_min);
        let (hourly, hour_limit, what) = match kind {
            Kind::Read => (&b.reads, limits.reads_per_hour, "reads per hour"),
            Kind::Write => (&b.writes, limits.writes_per_hour, "writes per hour"),
        };
        if hour_limit > 0 && hourly.used(now_min, HOUR) >= hour_limit {
            let at = hourly.frees_at(now_min, HOUR, hour_limit);
            return Err(refusal(name, hour_limit, what, at.saturating_sub(now)));
        }
        if limits.per_day > 0 {
            let both = merged(&b.reads, &b.writes);
            if both.used(now_min, DAY) >= limits.per_day {
                let at = both.frees_at(now_min, DAY, limits.per_day);
                return Err(refusal(
                    name,
                    limits.per_day,
                    "requests per day",
                    at.saturating_sub(now),
                ));
            }
        }
        match kind {
            Kind::Read => b.reads.add(now_min),
            Kind::Write => b.writes.add(now_min),
        }
        warn_near(name, b, limits, now_min);
        inner.dirty = true;
        if inner
            .saved_at
            .is_none_or(|t| now.saturating_sub(t) >= SAVE_EVERY)
        {
            self.save_locked(&mut inner, now);
        }
        Ok(())
    }

    /// Whether `name` may call now (a 429's retry time), without counting anything.
    pub fn check(&self, name: &str) -> Result<(), Refusal> {
        let now = self.clock.now();
        let inner = self.lock();
        match inner.budgets.get(name).and_then(|b| b.retry_at) {
            Some(at) if now < at => Err(held_back(name, at - now)),
            _ => Ok(()),
        }
    }

    /// Record a 429 for `name`: no call until `retry_after` (a minute when none was given)
    /// has passed. Saved at once.
    pub fn rate_limited(&self, name: &str, retry_after: Option<Duration>) {
        let now = self.clock.now();
        let at = now + retry_after.unwrap_or(DEFAULT_RETRY);
        let mut inner = self.lock();
        let b = inner.budgets.entry(name.to_string()).or_default();
        if b.retry_at.is_none_or(|t| t < at) {
            b.retry_at = Some(at);
        }
        warn!(account = %name, retry_after_s = (at - now).as_secs(), "1Password answered 429; holding calls back until the retry time");
        inner.dirty = true;
        self.save_locked(&mut inner, now);
    }

    /// The `quota` part of a session's status: for metered modes always, for the others only
    /// while a 429 holds calls back.
    pub fn status(&self, name: &str, mode: Mode) -> Option<QuotaStatus> {
        let now = self.clock.now();
        let now_min = now.as_secs() / MINUTE;
        let inner = self.lock();
        let b = inner.budgets.get(name);
        let retry_after_s = b
            .and_then(|b| b.retry_at)
            .filter(|at| now < *at)
            .map(|at| (at - now).as_secs().max(1));
        let Some(limits) = self.config.limits(mode) else {
            return retry_after_s.map(|s| QuotaStatus {
                retry_after_s: Some(s),
                ..QuotaStatus::default()
            });
        };
        let empty = Budget::default();
        let b = b.unwrap_or(&empty);
        let window = |used: u64, limit: u64| QuotaWindow {
            used,
            limit,
            left: (limit > 0).then(|| limit.saturating_sub(used)),
        };
        let reads_hour = window(b.reads.used(now_min, HOUR), limits.reads_per_hour);
        let writes_hour = window(b.writes.used(now_min, HOUR), limits.writes_per_hour);
        let day = window(
            merged(&b.reads, &b.writes).used(now_min, DAY),
            limits.per_day,
        );
        let near = [&reads_hour, &writes_hour, &day]
            .iter()
            .any(|w| w.limit > 0 && w.used * 10 >= w.limit * 9);
        Some(QuotaStatus {
            reads_per_hour: Some(reads_hour),
            writes_per_hour: Some(writes_hour),
            per_day: Some(day),
            retry_after_s,
            warning: near.then(|| "90% of a limit is used".to_string()),
        })
    }

    /// Save now if anything changed since the last save (shutdown).
    pub fn flush(&self) {
        let now = self.clock.now();
        let mut inner = self.lock();
        if inner.dirty {
            self.save_locked(&mut inner, now);
        }
    }

    fn save_locked(&self, inner: &mut Inner, now: Duration) {
        inner.saved_at = Some(now);
        inner.dirty = false;
        let Some(path) = &self.path else { return };
        let file = to_file(&inner.budgets, now);
        let Ok(data) = serde_json::to_vec(&file) else {
            return;
        };
        let written = path
            .parent()
            .map(|d| op_session_paths::ensure_private_dir(d).map_err(std::io::Error::other))
            .unwrap_or(Ok(()))
            .and_then(|_| op_session_paths::write_atomic(path, &data, Some(0o600)));
        if let Err(e) = written {
            warn!(path = %path.display(), error = %e, "cannot save the request budget");
        }
    }
}

/// A wait as people read it, rounded up to the minute above a minute (never promise early).
fn wait_text(wait: Duration) -> String {
    let s = wait.as_secs().max(1);
    op_session_protocol::human::duration(if s > 60 { s.div_ceil(60) * 60 } else { s })
}

fn held_back(name: &str, wait: Duration) -> Refusal {
    Refusal {
        message: format!(
            "1Password rate-limited account {name} (429); op-session sends nothing for another {}",
            wait_text(wait)
        ),
        retry_after: wait,
    }
}

fn refusal(name: &str, limit: u64, what: &str, wait: Duration) -> Refusal {
    let wait = wait.max(Duration::from_secs(1));
    Refusal {
        message: format!(
            "the request budget of account {name} is spent ({limit} {what}, [quota] in the op-session config); it frees up in {}",
            wait_text(wait)
        ),
        retry_after: wait,
    }
}

/// Log once when a window reaches 90% of its limit; re-arm when it falls back below.
fn warn_near(name: &str, b: &mut Budget, limits: Limits, now_min: u64) {
    let both = merged(&b.reads, &b.writes);
    let windows = [
        (
            b.reads.used(now_min, HOUR),
            limits.reads_per_hour,
            "reads per hour",
        ),
        (
            b.writes.used(now_min, HOUR),
            limits.writes_per_hour,
            "writes per hour",
        ),
        (both.used(now_min, DAY), limits.per_day, "requests per day"),
    ];
    for (i, (used, limit, what)) in windows.into_iter().enumerate() {
        let near = limit > 0 && used * 10 >= limit * 9;
        if near && !b.warned[i] {
            warn!(account = %name, used, limit, window = what, "90% of the request budget is used");
        } else if !near && b.warned[i] {
            info!(account = %name, used, limit, window = what, "the request budget is below 90% again");
        }
        b.warned[i] = near;
    }
}

/// The file's form: wall-clock seconds, no secret.
#[derive(Debug, Serialize, Deserialize)]
struct File {
    version: u32,
    budgets: HashMap<String, FileBudget>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileBudget {
    /// `[unix seconds of the minute's start, count]`.
    #[serde(default)]
    reads: Vec<(u64, u64)>,
    #[serde(default)]
    writes: Vec<(u64, u64)>,
    #[serde(default)]
    retry_at: Option<u64>,
}

fn to_file(budgets: &HashMap<String, Budget>, now: Duration) -> File {
    let wall_now = unix_now();
    let to_wall = |t: u64| wall_now.saturating_sub(now.as_secs().saturating_sub(t));
    let list = |b: &Buckets| -> Vec<(u64, u64)> {
        b.0.iter().map(|(m, n)| (to_wall(m * MINUTE), *n)).collect()
    };
    File {
        version: 1,
        budgets: budgets
            .iter()
            .filter(|(_, b)| {
                !b.reads.0.is_empty() || !b.writes.0.is_empty() || b.retry_at.is_some()
            })
            .map(|(name, b)| {
                (
                    name.clone(),
                    FileBudget {
                        reads: list(&b.reads),
                        writes: list(&b.writes),
                        retry_at: b
                            .retry_at
                            .filter(|at| *at > now)
                            .map(|at| wall_now + (at - now).as_secs()),
                    },
                )
            })
            .collect(),
    }
}

fn load(path: &std::path::Path, now: Duration) -> HashMap<String, Budget> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return HashMap::new(),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot read the saved request budget; starting from zero");
            return HashMap::new();
        }
    };
    let file: File = match serde_json::from_slice(&data) {
        Ok(f) => f,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "the saved request budget is unreadable; starting from zero");
            return HashMap::new();
        }
    };
    let wall_now = unix_now();
    // A wall time `age` seconds ago, on the deadline clock (never before its origin).
    let to_clock = |wall: u64| now.as_secs().saturating_sub(wall_now.saturating_sub(wall));
    let buckets = |list: &[(u64, u64)]| {
        let mut b = Buckets::default();
        let mut sorted: Vec<(u64, u64)> = list
            .iter()
            .map(|(t, n)| (to_clock(*t) / MINUTE, *n))
            .collect();
        sorted.sort_by_key(|(m, _)| *m);
        for (m, n) in sorted {
            match b.0.back_mut() {
                Some((last, c)) if *last == m => *c += n,
                _ => b.0.push_back((m, n)),
            }
        }
        b.prune(now.as_secs() / MINUTE);
        b
    };
    file.budgets
        .into_iter()
        .map(|(name, f)| {
            let budget = Budget {
                reads: buckets(&f.reads),
                writes: buckets(&f.writes),
                retry_at: f
                    .retry_at
                    .filter(|at| *at > wall_now)
                    .map(|at| now + Duration::from_secs(at - wall_now)),
                warned: [false; 3],
            };
            (name, budget)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn quotas(cfg: QuotaConfig) -> (Arc<ManualClock>, Quotas) {
        let clock = Arc::new(ManualClock::new());
        let q = Quotas::new(cfg, clock.clone(), None);
        (clock, q)
    }

    fn limits(r: u64, w: u64, d: u64) -> QuotaConfig {
        QuotaConfig {
            reads_per_hour: Some(r),
            writes_per_hour: Some(w),
            reads_per_day: Some(d),
            caller_errors_per_minute: None,
        }
    }

    #[test]
    fn defaults_are_teams_for_service_accounts_and_none_for_connect() {
        let c = QuotaConfig::default();
        let sa = c.limits(Mode::ServiceAccount).expect("metered");
        assert_eq!(
            (sa.reads_per_hour, sa.writes_per_hour, sa.per_day),
            (1000, 100, 5000)
        );
        let cn = c.limits(Mode::Connect).expect("metered");
        assert_eq!(
            (cn.reads_per_hour, cn.writes_per_hour, cn.per_day),
            (0, 0, 0)
        );
        assert!(c.limits(Mode::Token).is_none());
        assert!(c.limits(Mode::App).is_none());
        assert_eq!(c.caller_errors_per_minute(), 30);
    }

    #[test]
    fn the_hour_slides_and_the_refusal_says_when_it_frees_up() {
        let (clock, q) = quotas(limits(3, 0, 0));
        q.charge("ci", Mode::ServiceAccount, Kind::Read).expect("1");
        clock.advance(Duration::from_secs(20 * 60));
        q.charge("ci", Mode::ServiceAccount, Kind::Read).expect("2");
        q.charge("ci", Mode::ServiceAccount, Kind::Read).expect("3");
        let r = q
            .charge("ci", Mode::ServiceAccount, Kind::Read)
            .expect_err("the fourth read in an hour");
        // The first read leaves the hour 40 minutes from now (to the minute).
        let s = r.retry_after.as_secs();
        assert!((39 * 60..=41 * 60).contains(&s), "{s}");
        assert!(r.message.contains("3 reads per hour"), "{}", r.message);
        assert!(r.message.contains("frees up in 40m"), "{}", r.message);
        assert_eq!(r.to_error().code().exit_code(), 75);
        assert_eq!(r.to_error().detail().retry_after_s, Some(s));
        // Writes are counted apart.
        q.charge("ci", Mode::ServiceAccount, Kind::Write)
            .expect("a write");
        clock.advance(r.retry_after);
        q.charge("ci", Mode::ServiceAccount, Kind::Read)
            .expect("the first read left the hour");
        q.charge("ci", Mode::ServiceAccount, Kind::Read)
            .expect_err("the other two are still in it");
    }

    #[test]
    fn the_day_counts_reads_and_writes_together() {
        let (clock, q) = quotas(limits(0, 0, 4));
        for _ in 0..2 {
            q.charge("ci", Mode::ServiceAccount, Kind::Read)
                .expect("read");
            q.charge("ci", Mode::ServiceAccount, Kind::Write)
                .expect("write");
        }
        let r = q
            .charge("ci", Mode::ServiceAccount, Kind::Read)
            .expect_err("five in a day");
        assert!(r.message.contains("4 requests per day"), "{}", r.message);
        assert!(
            r.retry_after > Duration::from_secs(23 * 3600),
            "{:?}",
            r.retry_after
        );
        clock.advance(Duration::from_secs(12 * 3600));
        q.charge("ci", Mode::ServiceAccount, Kind::Read)
            .expect_err("still the same day");
        clock.advance(Duration::from_secs(12 * 3600 + 60));
        q.charge("ci", Mode::ServiceAccount, Kind::Read)
            .expect("a new day");
    }

    #[test]
    fn zero_turns_a_limit_off_and_people_are_never_metered() {
        let (_, q) = quotas(limits(0, 0, 0));
        for _ in 0..5000 {
            q.charge("ci", Mode::ServiceAccount, Kind::Read)
                .expect("no limit");
        }
        let s = q.status("ci", Mode::ServiceAccount).expect("metered");
        let reads = s.reads_per_hour.expect("window");
        assert_eq!((reads.used, reads.limit, reads.left), (5000, 0, None));
        let (_, q) = quotas(limits(1, 1, 1));
        for _ in 0..10 {
            q.charge("me", Mode::Token, Kind::Read)
                .expect("token mode is not metered");
        }
        assert!(q.status("me", Mode::Token).is_none());
    }

    #[test]
    fn a_429_holds_every_call_back_until_its_time() {
        let (clock, q) = quotas(limits(0, 0, 0));
        q.rate_limited("ci", Some(Duration::from_secs(58 * 60)));
        let r = q
            .charge("ci", Mode::ServiceAccount, Kind::Read)
            .expect_err("held back");
        assert_eq!(r.retry_after, Duration::from_secs(58 * 60));
        assert!(r.message.contains("58m"), "{}", r.message);
        assert_eq!(
            q.status("ci", Mode::ServiceAccount)
                .and_then(|s| s.retry_after_s),
            Some(58 * 60)
        );
        // A person's session too.
        q.rate_limited("me", None);
        q.check("me")
            .expect_err("a token session is held back as well");
        clock.advance(Duration::from_secs(58 * 60));
        q.charge("ci", Mode::ServiceAccount, Kind::Read)
            .expect("time passed");
        q.check("me").expect("a minute passed");
    }

    #[test]
    fn status_warns_at_ninety_percent() {
        let (_, q) = quotas(limits(10, 0, 0));
        for _ in 0..8 {
            q.charge("ci", Mode::ServiceAccount, Kind::Read)
                .expect("read");
        }
        assert!(
            q.status("ci", Mode::ServiceAccount)
                .and_then(|s| s.warning)
                .is_none()
        );
        q.charge("ci", Mode::ServiceAccount, Kind::Read)
            .expect("ninth");
        let s = q.status("ci", Mode::ServiceAccount).expect("status");
        assert!(s.warning.is_some());
        assert_eq!(s.reads_per_hour.and_then(|w| w.left), Some(1));
    }

    #[test]
    fn the_budget_survives_a_restart_in_a_private_file_without_secrets() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("state/op-session/quota.json");
        let clock = Arc::new(ManualClock::new());
        clock.advance(Duration::from_secs(3 * 3600));
        let q = Quotas::new(limits(2, 0, 0), clock.clone(), Some(path.clone()));
        q.charge("ci", Mode::ServiceAccount, Kind::Read).expect("1");
        clock.advance(Duration::from_secs(2));
        q.charge("ci", Mode::ServiceAccount, Kind::Read).expect("2");
        q.rate_limited("other", Some(Duration::from_secs(600)));
        q.flush();
        drop(q);
        let mode = std::fs::metadata(&path)
            .expect("saved")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(path.parent().expect("dir"))
            .expect("dir")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        let text = std::fs::read_to_string(&path).expect("text");
        assert!(!text.contains("op://") && !text.contains("ops_"), "{text}");

        // A new daemon on the same boot clock.
        let q = Quotas::new(limits(2, 0, 0), clock.clone(), Some(path.clone()));
        let r = q
            .charge("ci", Mode::ServiceAccount, Kind::Read)
            .expect_err("the two reads are remembered");
        assert!(
            r.retry_after > Duration::from_secs(58 * 60),
            "{:?}",
            r.retry_after
        );
        let held = q.check("other").expect_err("the 429 is remembered");
        assert!(
            held.retry_after > Duration::from_secs(590),
            "{:?}",
            held.retry_after
        );
        // Without the file, the same daemon would have forgotten.
        let fresh = Quotas::new(limits(2, 0, 0), clock, None);
        fresh
            .charge("ci", Mode::ServiceAccount, Kind::Read)
            .expect("nothing remembered in memory only");
    }

    #[test]
    fn an_unreadable_file_starts_from_zero() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("quota.json");
        std::fs::write(&path, b"{not json").expect("write");
        let clock = Arc::new(ManualClock::new());
        let q = Quotas::new(limits(1, 0, 0), clock, Some(path));
        q.charge("ci", Mode::ServiceAccount, Kind::Read)
            .expect("fresh");
    }
}

//! The per-caller brake: a caller that fails again and again is answered from memory only.
//!
//! A job that crash-loops on a missing item asks again every second, forever. The negative
//! cache ([`crate::cache`]) already makes that one `op` call per `negative_ttl`; the brake
//! stops the rest: one caller (the same executable under the same top process, see
//! [`caller_key`]) with more than `[quota] caller_errors_per_minute` errors in a row, all
//! within a minute, gets answers from the caches only, and no `op` call at all, until it has
//! sent nothing for a whole minute. A success between errors starts the count again.
//!
//! Owns the per-caller counts, on the injected deadline clock. Knows nothing of requests or
//! sessions; [`crate::requests`] asks [`Brake::braked`] before resolving and tells
//! [`Brake::record`] the outcome. Holds no reference, value or token: a caller is named by
//! executable paths and a pid.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use op_session_protocol::audit::ProcessInfo;

use crate::clock::Clock;

/// How long errors are counted, and how long a braked caller must be quiet.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Callers tracked at most; the quiet ones are forgotten first.
const MAX_CALLERS: usize = 4096;

/// Who a caller is, for the brake: the program that ran `op-session` (the client's parent)
/// and the outermost ancestor the daemon read (its pid and executable), so a loop that starts
/// a fresh process each time is still one caller. `None` when the chain is unknown (no
/// `/proc`): such callers are never braked.
pub(crate) fn caller_key(chain: &[ProcessInfo]) -> Option<String> {
    let caller = chain.get(1).or(chain.first())?;
    let top = chain.last()?;
    Some(format!("{}|{}:{}", caller.exe, top.pid, top.exe))
}

/// The short form of a caller for messages: its executable.
pub(crate) fn caller_name(key: &str) -> &str {
    key.split('|').next().unwrap_or(key)
}

#[derive(Debug, Default)]
struct Track {
    /// Times of the errors in a row, within the window.
    errors: VecDeque<Duration>,
    braked: bool,
    last_seen: Duration,
}

/// The brake.
#[derive(Debug)]
pub struct Brake {
    limit: u64,
    clock: Arc<dyn Clock>,
    callers: Mutex<HashMap<String, Track>>,
}

impl Brake {
    /// A brake that engages after more than `limit` errors in a row within a minute
    /// (`0`: never).
    pub fn new(limit: u64, clock: Arc<dyn Clock>) -> Brake {
        Brake {
            limit,
            clock,
            callers: Mutex::new(HashMap::new()),
        }
    }

    /// The threshold.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether `caller` is braked now. Counts as a sign of life: a braked caller stays braked
    /// until it has been quiet for [`WINDOW`].
    pub fn braked(&self, caller: Option<&str>) -> bool {
        let (Some(key), true) = (caller, self.limit > 0) else {
            return false;
        };
        let now = self.clock.now();
        let mut callers = self.callers.lock().unwrap_or_else(|e| e.into_inner());
        if callers.len() >= MAX_CALLERS && !callers.contains_key(key) {
            callers.retain(|_, t| now.saturating_sub(t.last_seen) < WINDOW);
        }
        let t = callers.entry(key.to_string()).or_default();
        if t.braked && now.saturating_sub(t.last_seen) >= WINDOW {
            tracing::info!(
                caller = caller_name(key),
                "a looping caller was quiet for a minute; the brake is off"
            );
            t.braked = false;
            t.errors.clear();
        }
        t.last_seen = now;
        t.braked
    }

    /// Record a request's outcome for `caller`.
    pub fn record(&self, caller: Option<&str>, failed: bool) {
        let (Some(key), true) = (caller, self.limit > 0) else {
            return;
        };
        let now = self.clock.now();
        let mut callers = self.callers.lock().unwrap_or_else(|e| e.into_inner());
        let t = callers.entry(key.to_string()).or_default();
        t.last_seen = now;
        if !failed {
            t.errors.clear();
            return;
        }
        t.errors.push_back(now);
        while t
            .errors
            .front()
            .is_some_and(|at| now.saturating_sub(*at) >= WINDOW)
        {
            t.errors.pop_front();
        }
        while t.errors.len() as u64 > self.limit + 1 {
            t.errors.pop_front();
        }
        if !t.braked && t.errors.len() as u64 > self.limit {
            tracing::warn!(
                caller = caller_name(key),
                errors = t.errors.len(),
                "a caller is looping on errors; answering it from memory only until it stops for a minute"
            );
            t.braked = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn brake(limit: u64) -> (Arc<ManualClock>, Brake) {
        let clock = Arc::new(ManualClock::new());
        (clock.clone(), Brake::new(limit, clock))
    }

    #[test]
    fn more_than_the_limit_in_a_row_brakes_until_a_quiet_minute() {
        let (clock, b) = brake(3);
        let me = Some("/usr/bin/python3|100:/bin/bash");
        for _ in 0..3 {
            assert!(!b.braked(me));
            b.record(me, true);
            clock.advance(Duration::from_secs(1));
        }
        assert!(!b.braked(me), "three errors are allowed");
        b.record(me, true);
        assert!(b.braked(me), "the fourth in a row brakes");
        assert!(
            !b.braked(Some("/usr/bin/other|100:/bin/bash")),
            "only that caller"
        );
        // Asking again keeps it braked, even a minute later in small steps.
        for _ in 0..10 {
            clock.advance(Duration::from_secs(10));
            assert!(b.braked(me));
        }
        clock.advance(WINDOW);
        assert!(!b.braked(me), "quiet for a minute");
        b.record(me, true);
        assert!(!b.braked(me), "the count starts again");
    }

    #[test]
    fn a_success_or_a_slow_pace_does_not_brake() {
        let (clock, b) = brake(2);
        let me = Some("a|1:b");
        for _ in 0..10 {
            b.record(me, true);
            b.record(me, true);
            b.record(me, false);
        }
        assert!(!b.braked(me), "successes in between");
        for _ in 0..10 {
            b.record(me, true);
            clock.advance(Duration::from_secs(31));
        }
        assert!(!b.braked(me), "two errors a minute is under the limit");
    }

    #[test]
    fn off_and_unknown_callers_are_never_braked() {
        let (_, b) = brake(0);
        for _ in 0..100 {
            b.record(Some("a|1:b"), true);
        }
        assert!(!b.braked(Some("a|1:b")));
        let (_, b) = brake(1);
        for _ in 0..100 {
            b.record(None, true);
        }
        assert!(!b.braked(None));
    }

    #[test]
    fn the_key_is_the_parent_program_and_the_top_process() {
        let p = |pid, exe: &str| ProcessInfo {
            pid,
            exe: exe.into(),
        };
        let chain = vec![
            p(300, "/usr/bin/op-session"),
            p(200, "/usr/bin/python3"),
            p(100, "/bin/bash"),
        ];
        assert_eq!(
            caller_key(&chain).as_deref(),
            Some("/usr/bin/python3|100:/bin/bash")
        );
        assert_eq!(
            caller_name("/usr/bin/python3|100:/bin/bash"),
            "/usr/bin/python3"
        );
        // A new process of the same loop is the same caller.
        let again = vec![
            p(301, "/usr/bin/op-session"),
            p(201, "/usr/bin/python3"),
            p(100, "/bin/bash"),
        ];
        assert_eq!(caller_key(&chain), caller_key(&again));
        assert!(caller_key(&[]).is_none());
    }
}

//! What the presence watchers have seen, for `status`, and the per-account memory of why a
//! session was locked, so a later request is told. Plain state behind std locks, never held
//! across an `.await`; the shared [`crate::state::Daemon`] holds one [`Presence`], and the
//! watchers in [`super`] update it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use op_session_protocol::{PresenceEvent, PresenceStatus};

use crate::error::Error;
use tokio::sync::Notify;

/// One bus connection's state, for status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Source {
    /// Not connected yet.
    #[default]
    Starting,
    /// Connected and subscribed.
    Watching,
    /// Connected, but something is missing (e.g. no delay inhibitor was granted): a note.
    Degraded(String),
    /// Not watching: why, in one sentence (and when the next try is).
    Down(String),
}

#[derive(Debug, Default)]
struct Watch {
    /// System bus (logind): sleep and session locks.
    system: Source,
    /// Session bus (screensavers): screen locks.
    session: Source,
    /// A sleep-delay inhibitor is held.
    inhibitor: bool,
}

/// Shared presence state: one per daemon.
#[derive(Debug)]
pub struct Presence {
    watch: Mutex<Watch>,
    /// Account name (lower-cased) → the event that ended its last session.
    ended: Mutex<HashMap<String, PresenceEvent>>,
    /// Woken when a session starts, so the sleep watcher takes its inhibitor at once.
    pub(crate) session_started: Notify,
    /// Bus addresses, read from the environment once at start.
    #[cfg(target_os = "linux")]
    pub(crate) buses: super::bus::Addresses,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only plain assignments happen under these locks; a poisoned one is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Presence {
    /// Read the bus addresses from this process's environment (`DBUS_SYSTEM_BUS_ADDRESS`,
    /// `DBUS_SESSION_BUS_ADDRESS`, `XDG_SESSION_ID`).
    pub fn from_env() -> Presence {
        Presence {
            watch: Mutex::new(Watch::default()),
            ended: Mutex::new(HashMap::new()),
            session_started: Notify::new(),
            #[cfg(target_os = "linux")]
            buses: super::bus::Addresses::from_env(),
        }
    }

    /// Record the system bus watcher's state.
    pub fn set_system(&self, s: Source) {
        locked(&self.watch).system = s;
    }

    /// Record the session bus watcher's state.
    pub fn set_session(&self, s: Source) {
        locked(&self.watch).session = s;
    }

    /// Record whether a sleep-delay inhibitor is held.
    pub fn set_inhibitor(&self, held: bool) {
        locked(&self.watch).inhibitor = held;
    }

    /// What status reports.
    pub fn report(&self, rules: &super::rules::PresenceConfig) -> PresenceStatus {
        let w = locked(&self.watch);
        let mut watching = Vec::new();
        let mut notes = Vec::new();
        let up = |s: &Source| matches!(s, Source::Watching | Source::Degraded(_));
        if up(&w.system) {
            watching.push(PresenceEvent::Sleep);
        }
        if up(&w.system) || up(&w.session) {
            watching.push(PresenceEvent::ScreenLock);
        }
        for s in [&w.system, &w.session] {
            if let Source::Down(why) | Source::Degraded(why) = s {
                notes.push(why.clone());
            }
        }
        if cfg!(not(target_os = "linux")) {
            notes.push("sleep and screen lock are not watched on this system yet".into());
        }
        PresenceStatus {
            watching,
            notes,
            sleep_inhibitor: w.inhibitor,
            ends_on_sleep: rules.modes_ended_by(PresenceEvent::Sleep),
            ends_on_screen_lock: rules.modes_ended_by(PresenceEvent::ScreenLock),
        }
    }

    /// A session for `name` started: forget why its last one ended, and wake the sleep
    /// watcher (it may need an inhibitor now).
    pub fn session_started(&self, name: &str) {
        locked(&self.ended).remove(&name.to_ascii_lowercase());
        self.session_started.notify_one();
    }

    pub(super) fn remember(&self, name: &str, why: PresenceEvent) {
        locked(&self.ended).insert(name.to_ascii_lowercase(), why);
    }

    /// Why the session for `account` (or the default) was locked by an event, if it was.
    pub fn why_gone(&self, account: Option<&str>, default: Option<&str>) -> Option<PresenceEvent> {
        let ended = locked(&self.ended);
        match account.or(default) {
            Some(a) => ended.get(&a.trim().to_ascii_lowercase()).copied(),
            // No name to go by: only unambiguous when one account was locked.
            None if ended.len() == 1 => ended.values().next().copied(),
            None => None,
        }
    }

    /// Add why to a "no session" error when an event ended that session.
    pub fn explain(&self, mut err: Error, account: Option<&str>, default: Option<&str>) -> Error {
        if let Error::NotSignedIn(d) = &mut err
            && let Some(why) = self.why_gone(account, default)
        {
            d.message = format!("{}: it was {}", d.message, why.ended_because());
        }
        err
    }
}

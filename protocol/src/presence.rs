//! The presence part of the status report: which of the person's comings and goings the
//! daemon watches (sleep, screen lock) and which sessions each one ends.
//!
//! Wire types only; the daemon's `presence` module fills them in. The JSON form is stable:
//! keys are only ever added.

use serde::{Deserialize, Serialize};

use crate::message::Mode;

/// Something that says the person has walked away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceEvent {
    /// The machine is about to suspend or hibernate (logind `PrepareForSleep(true)`).
    Sleep,
    /// The screen locked (logind `Session.Lock`/`LockedHint`, or a screensaver's
    /// `ActiveChanged(true)`).
    ScreenLock,
}

impl PresenceEvent {
    /// The name in config keys, audit records and status: `sleep`, `screen_lock`.
    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }

    /// Why a session is gone, for the person who finds it gone.
    pub fn ended_because(self) -> &'static str {
        match self {
            PresenceEvent::Sleep => "locked when the machine went to sleep",
            PresenceEvent::ScreenLock => "locked when the screen locked",
        }
    }
}

impl std::fmt::Display for PresenceEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the presence watcher sees, for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceStatus {
    /// The events being watched now.
    pub watching: Vec<PresenceEvent>,
    /// Why something is not watched, or is being reconnected: one sentence each, e.g.
    /// "no system bus at unix:path=/run/dbus/system_bus_socket (…); retrying in 30s".
    #[serde(default)]
    pub notes: Vec<String>,
    /// Whether a logind sleep-delay inhibitor is held now (it is while a session that sleep
    /// would end is held, so the wipe happens before the machine sleeps).
    #[serde(default)]
    pub sleep_inhibitor: bool,
    /// The session modes that sleep ends (config `on_sleep`).
    #[serde(default)]
    pub ends_on_sleep: Vec<Mode>,
    /// The session modes that a screen lock ends (config `on_screen_lock`).
    #[serde(default)]
    pub ends_on_screen_lock: Vec<Mode>,
}

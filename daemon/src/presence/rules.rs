//! The `[presence]` config table: which session modes sleep and a screen lock end.
//!
//! Owns the TOML shape, its defaults and its validation (every key known, every value
//! `"lock"` or `"keep"`, an error naming the full key otherwise). No I/O.
//!
//! ```toml
//! [presence]
//! on_sleep = "lock"          # every mode, unless its own table says otherwise
//! on_screen_lock = "lock"
//!
//! [presence.service_account] # also [presence.token] and [presence.app]
//! on_sleep = "keep"
//! ```
//!
//! With neither, token and app sessions lock and service-account sessions (unattended use)
//! keep. Connect sessions are unattended too and follow the service-account table.

use op_session_protocol::{Mode, PresenceEvent};
use serde::Deserialize;

/// What an event does to a session of some mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// End it (the same path as `op-session lock`).
    Lock,
    /// Leave it alone.
    Keep,
}

/// The validated rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceConfig {
    /// `on_sleep` for token, app and service-account sessions.
    on_sleep: [Action; 3],
    /// `on_screen_lock` for token, app and service-account sessions.
    on_screen_lock: [Action; 3],
}

const MODES: [Mode; 3] = [Mode::Token, Mode::App, Mode::ServiceAccount];

fn index(mode: Mode) -> usize {
    match mode {
        Mode::Token => 0,
        Mode::App => 1,
        // Connect sessions are unattended like service accounts and follow their table.
        Mode::ServiceAccount | Mode::Connect => 2,
    }
}

impl Default for PresenceConfig {
    fn default() -> Self {
        use Action::{Keep, Lock};
        PresenceConfig {
            on_sleep: [Lock, Lock, Keep],
            on_screen_lock: [Lock, Lock, Keep],
        }
    }
}

impl PresenceConfig {
    /// What `event` does to a session of `mode`.
    pub fn action(&self, event: PresenceEvent, mode: Mode) -> Action {
        match event {
            PresenceEvent::Sleep => self.on_sleep[index(mode)],
            PresenceEvent::ScreenLock => self.on_screen_lock[index(mode)],
        }
    }

    /// Whether `event` ends sessions of `mode`.
    pub fn ends(&self, event: PresenceEvent, mode: Mode) -> bool {
        self.action(event, mode) == Action::Lock
    }

    /// The modes `event` ends, in a fixed order (for status).
    pub fn modes_ended_by(&self, event: PresenceEvent) -> Vec<Mode> {
        MODES.into_iter().filter(|m| self.ends(event, *m)).collect()
    }
}

/// `[presence]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPresence {
    on_sleep: Option<String>,
    on_screen_lock: Option<String>,
    token: Option<RawRule>,
    app: Option<RawRule>,
    service_account: Option<RawRule>,
}

/// `[presence.<mode>]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    on_sleep: Option<String>,
    on_screen_lock: Option<String>,
}

/// A bad value: the full key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadValue {
    /// The full dotted key, e.g. `presence.service_account.on_sleep`.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

fn action(key: &'static str, v: &Option<String>) -> Result<Option<Action>, BadValue> {
    match v.as_deref() {
        None => Ok(None),
        Some("lock") => Ok(Some(Action::Lock)),
        Some("keep") => Ok(Some(Action::Keep)),
        Some(other) => Err(BadValue {
            key,
            message: format!("is \"{other}\"; use \"lock\" or \"keep\""),
        }),
    }
}

impl RawPresence {
    /// Validate into rules.
    pub(crate) fn validate(self) -> Result<PresenceConfig, BadValue> {
        let mut c = PresenceConfig::default();
        if let Some(a) = action("presence.on_sleep", &self.on_sleep)? {
            c.on_sleep = [a; 3];
        }
        if let Some(a) = action("presence.on_screen_lock", &self.on_screen_lock)? {
            c.on_screen_lock = [a; 3];
        }
        let tables: [(Mode, &Option<RawRule>, &'static str, &'static str); 3] = [
            (
                Mode::Token,
                &self.token,
                "presence.token.on_sleep",
                "presence.token.on_screen_lock",
            ),
            (
                Mode::App,
                &self.app,
                "presence.app.on_sleep",
                "presence.app.on_screen_lock",
            ),
            (
                Mode::ServiceAccount,
                &self.service_account,
                "presence.service_account.on_sleep",
                "presence.service_account.on_screen_lock",
            ),
        ];
        for (mode, rule, sleep_key, lock_key) in tables {
            let Some(rule) = rule else { continue };
            if let Some(a) = action(sleep_key, &rule.on_sleep)? {
                c.on_sleep[index(mode)] = a;
            }
            if let Some(a) = action(lock_key, &rule.on_screen_lock)? {
                c.on_screen_lock[index(mode)] = a;
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PresenceEvent::{ScreenLock, Sleep};

    fn parse(s: &str) -> Result<PresenceConfig, BadValue> {
        toml::from_str::<RawPresence>(s)
            .expect("parses as TOML")
            .validate()
    }

    #[test]
    fn people_lock_and_service_accounts_keep_by_default() {
        let c = PresenceConfig::default();
        assert!(c.ends(Sleep, Mode::Token) && c.ends(Sleep, Mode::App));
        assert!(c.ends(ScreenLock, Mode::Token) && c.ends(ScreenLock, Mode::App));
        assert!(!c.ends(Sleep, Mode::ServiceAccount));
        assert!(!c.ends(ScreenLock, Mode::ServiceAccount));
        assert_eq!(c.modes_ended_by(Sleep), vec![Mode::Token, Mode::App]);
    }

    #[test]
    fn the_table_sets_every_mode_and_a_mode_table_overrides_it() {
        let c = parse(
            "on_sleep = \"keep\"\n[service_account]\non_sleep = \"lock\"\non_screen_lock = \"lock\"",
        )
        .expect("valid");
        assert!(!c.ends(Sleep, Mode::Token));
        assert!(!c.ends(Sleep, Mode::App));
        assert!(c.ends(Sleep, Mode::ServiceAccount));
        assert!(c.ends(ScreenLock, Mode::ServiceAccount));
        assert!(c.ends(ScreenLock, Mode::Token), "untouched default");
    }

    #[test]
    fn bad_values_name_the_full_key() {
        let e = parse("on_screen_lock = \"yes\"").expect_err("bad");
        assert_eq!(e.key, "presence.on_screen_lock");
        assert!(e.message.contains("\"lock\" or \"keep\""), "{}", e.message);
        let e = parse("[app]\non_sleep = \"Lock\"").expect_err("case matters");
        assert_eq!(e.key, "presence.app.on_sleep");
    }
}

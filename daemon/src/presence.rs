//! Sessions follow the person: sleep and a screen lock end the sessions the config says they
//! end, exactly as `op-session lock` would (wipe token and cache, `op signout`, an audit
//! record), and a later request is told why its session is gone.
//!
//! Owns: what the watcher sees (for `status`), the per-account memory of why a session was
//! locked, and [`end_sessions`], the one place an event ends sessions. The watching itself is
//! Linux-only D-Bus code in [`logind`] (system bus: sleep, session locks, the sleep-delay
//! inhibitor) and [`screensaver`] (session bus: `ActiveChanged`); the bus facts they rely on
//! are in `docs/presence.md`. On other systems nothing is watched and status says so.
//!
//! Never fails the daemon: no bus, a bus that goes away, or garbage on the bus only changes
//! what status reports. Never holds a lock across an `.await`.

pub(crate) mod rules;
pub(crate) mod seen;

#[cfg(target_os = "linux")]
pub(crate) mod bus;
#[cfg(target_os = "linux")]
mod logind;
#[cfg(target_os = "linux")]
mod screensaver;

use std::sync::Arc;
use std::time::{Duration, Instant};

use op_session_protocol::PresenceEvent;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::audit::{AuditRecord, Decision, now_rfc3339};
use crate::state::Daemon;

#[cfg(test)]
use seen::Presence;
pub(crate) use seen::Source;

/// How long the revocations after an event may take. logind waits at most
/// `InhibitDelayMaxSec` (5 s by default) for a delay inhibitor; we let go well before that.
/// Tokens are wiped at once either way; only `op signout` is cut short.
pub(crate) const REVOKE_BUDGET: Duration = Duration::from_secs(3);

/// End every session that `event` ends under the config, the same way `op-session lock`
/// does: remove it, drop its cached values, write an audit record with the reason, and
/// sign token and app sessions out with `op signout`. Waits for the revocations, at most
/// [`REVOKE_BUDGET`]. Returns how many sessions ended.
pub(crate) async fn end_sessions(daemon: &Arc<Daemon>, event: PresenceEvent) -> usize {
    let rules = daemon.config.presence;
    // The person stepped away: no remembered confirmation survives that.
    let forgotten = daemon.confirm.forget_all();
    if forgotten > 0 {
        info!(event = %event, approvals = forgotten, "remembered confirmations dropped");
    }
    let gone = daemon.sessions.remove_modes(|m| rules.ends(event, m));
    if gone.is_empty() {
        tracing::debug!(event = %event, "nothing to lock");
        return 0;
    }
    let n = gone.len();
    let started = Instant::now();
    let mut revokes = JoinSet::new();
    for s in gone {
        let dropped = daemon.cache.drop_account(&s.name);
        daemon.presence.remember(&s.name, event);
        info!(account = %s.name, mode = %s.mode(), reason = event.as_str(), cached_dropped = dropped, "session locked");
        audit(daemon, &s.name, event, started);
        if crate::lifecycle::needs_signout(&s, crate::session::EndReason::Locked) {
            let d = daemon.clone();
            revokes.spawn(async move { crate::lifecycle::revoke(&d, s).await });
        }
    }
    if tokio::time::timeout(REVOKE_BUDGET, revokes.join_all())
        .await
        .is_err()
    {
        // Dropping the set aborts the calls; their tokens are wiped as they drop.
        warn!(event = %event, "op signout did not finish in time; the tokens are wiped anyway");
    }
    info!(event = %event, sessions_ended = n, elapsed_ms = started.elapsed().as_millis() as u64, "sessions locked");
    n
}

fn audit(daemon: &Daemon, account: &str, event: PresenceEvent, started: Instant) {
    let Some(audit) = &daemon.audit else {
        return;
    };
    audit.write(&AuditRecord {
        time: now_rfc3339(),
        peer_pid: None,
        peer_uid: daemon.info.uid,
        peer_exe: None,
        parents: Vec::new(),
        account: Some(account.to_string()),
        verb: "lock".into(),
        references: Vec::new(),
        decision: Decision::Allow,
        outcome: "ok".into(),
        op_exit_code: None,
        cache_hits: 0,
        negative_cache: false,
        duration_ms: started.elapsed().as_millis() as u64,
        reason: Some(event),
        grant: None,
        confirm: None,
        via: None,
        client_name: None,
        reveal: false,
    });
}

/// Start watching (Linux); the tasks end when the daemon shuts down.
pub(crate) fn spawn(daemon: &Arc<Daemon>) -> Vec<tokio::task::JoinHandle<()>> {
    #[cfg(target_os = "linux")]
    {
        vec![
            tokio::spawn(logind::watch(daemon.clone())),
            tokio::spawn(screensaver::watch(daemon.clone())),
        ]
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = daemon;
        info!("sleep and screen lock are not watched on this system yet");
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use op_session_protocol::Mode;

    #[test]
    fn a_no_session_error_says_the_screen_lock_ended_it_until_a_new_sign_in() {
        let p = Presence::from_env();
        let err = || crate::session::not_signed_in(Some("my"), None);
        assert!(
            !p.explain(err(), Some("my"), None)
                .to_string()
                .contains("locked")
        );
        p.remember("My", PresenceEvent::ScreenLock);
        let e = p.explain(err(), Some("my"), None);
        assert!(
            e.to_string().ends_with("locked when the screen locked"),
            "{}",
            e.to_string()
        );
        assert!(
            p.explain(err(), None, Some("MY"))
                .to_string()
                .contains("locked when the screen locked"),
            "the default account"
        );
        p.session_started("my");
        assert!(
            !p.explain(err(), Some("my"), None)
                .to_string()
                .contains("locked")
        );
    }

    fn daemon(config: crate::config::Config) -> Arc<Daemon> {
        Arc::new(Daemon::new(
            config,
            crate::state::DaemonInfo::for_tests(),
            Arc::new(crate::clock::ManualClock::new()),
        ))
    }

    fn hold(d: &Daemon, name: &str, credential: crate::session::Credential) {
        let now = d.clock.now();
        let s = d.sessions.build(
            crate::session::NewSession::new(name, credential, Duration::from_secs(3600)),
            now,
        );
        d.sessions.insert(s);
        let generation = d
            .sessions
            .lease(Some(name), now)
            .map(|l| l.generation)
            .unwrap_or_default();
        d.cache
            .put(name, generation, "op://v/i/f", Arc::new("x".into()), now);
    }

    #[tokio::test]
    async fn an_event_ends_the_modes_the_rules_name_and_remembers_why() {
        let d = daemon(crate::config::Config {
            audit: false,
            ..Default::default()
        });
        hold(&d, "team", crate::session::Credential::app());
        hold(
            &d,
            "ci",
            crate::session::Credential::ServiceAccount {
                token: Arc::new(crate::securemem::secret_token(b"ops_test").expect("token")),
            },
        );
        assert_eq!(end_sessions(&d, PresenceEvent::ScreenLock).await, 1);
        assert_eq!(d.sessions.len(), 1, "the service account keeps by default");
        assert_eq!(d.cache.count("team", d.clock.now()), 0, "cache dropped");
        assert_eq!(d.cache.count("ci", d.clock.now()), 1);
        assert_eq!(
            d.presence.why_gone(Some("TEAM"), None),
            Some(PresenceEvent::ScreenLock)
        );
        assert_eq!(
            end_sessions(&d, PresenceEvent::Sleep).await,
            0,
            "idempotent"
        );
    }

    #[test]
    fn status_says_what_is_watched_and_why_not() {
        let p = Presence::from_env();
        let rules = rules::PresenceConfig::default();
        p.set_system(Source::Down("no system bus at unix:path=/nope".into()));
        p.set_session(Source::Watching);
        let r = p.report(&rules);
        assert_eq!(r.watching, vec![PresenceEvent::ScreenLock]);
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("no system bus at unix:path=/nope"))
        );
        p.set_system(Source::Watching);
        assert_eq!(
            p.report(&rules).watching,
            vec![PresenceEvent::Sleep, PresenceEvent::ScreenLock]
        );
        assert_eq!(r.ends_on_sleep, vec![Mode::Token, Mode::App]);
    }
}

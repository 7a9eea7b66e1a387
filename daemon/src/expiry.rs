//! The expiry timer: ends sessions and grants when their deadlines pass, with no request
//! needed to notice.
//!
//! Requests re-check deadlines themselves ([`crate::lifecycle::lease`]); this task only makes
//! the wipe prompt. It sits above both the session code and [`crate::grants`], so neither
//! has to know about the other's deadlines.

use std::sync::Arc;
use std::time::Duration;

use crate::lifecycle::end_session;
use crate::state::Daemon;

/// The expiry timer: sleeps until the earliest deadline (or a change), then wipes what ran
/// out. Requests re-check deadlines themselves; this only makes the wipe prompt. It also
/// wakes at least once a minute, because tokio's timers stop during suspend while the
/// deadline clock does not.
pub(crate) async fn expiry_task(daemon: Arc<Daemon>) {
    loop {
        let now = daemon.clock.now();
        for (s, why) in daemon.sessions.sweep(now) {
            end_session(&daemon, s, why);
        }
        // Grants end with their TTL and with the session they draw on.
        daemon.grants.sweep(&daemon.sessions, now);
        // No session, no timer: an idle daemon without sessions never wakes.
        let next = match (
            daemon.sessions.next_deadline(),
            daemon.grants.next_deadline(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wait = next.map(|d| {
            (d.saturating_sub(now) + Duration::from_millis(5)).min(Duration::from_secs(60))
        });
        let sleep = async {
            match wait {
                Some(w) => tokio::time::sleep(w).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = daemon.shutdown.cancelled() => return,
            _ = daemon.sessions.changed.notified() => {}
            _ = sleep => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::config::Config;
    use crate::session::{Credential, NewSession};
    use crate::state::DaemonInfo;

    fn daemon(clock: Arc<ManualClock>) -> Arc<Daemon> {
        let config = Config {
            audit: false,
            idle_timeout: Duration::from_secs(10),
            ..Config::default()
        };
        Arc::new(Daemon::new(config, DaemonInfo::for_tests(), clock))
    }

    #[tokio::test(start_paused = true)]
    async fn the_expiry_timer_wipes_a_session_promptly_without_any_request() {
        let clock = Arc::new(ManualClock::new());
        let d = daemon(clock.clone());
        let s = d.sessions.build(
            NewSession {
                idle_limit: Some(Duration::from_secs(10)),
                ..NewSession::new("team", Credential::app(), Duration::from_secs(3600))
            },
            clock.now(),
        );
        d.sessions.insert(s);
        d.cache
            .put("team", 1, "op://v/i/f", Arc::new("x".into()), clock.now());
        let task = tokio::spawn(expiry_task(d.clone()));
        tokio::task::yield_now().await;

        clock.advance(Duration::from_secs(9));
        tokio::time::advance(Duration::from_secs(9)).await;
        tokio::task::yield_now().await;
        assert_eq!(d.sessions.len(), 1, "wiped early");

        clock.advance(Duration::from_secs(2));
        tokio::time::advance(Duration::from_secs(2)).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(d.sessions.len(), 0, "not wiped at the idle deadline");
        assert_eq!(d.cache.count("team", clock.now()), 0, "cache not dropped");
        d.shutdown.cancel();
        task.await.expect("task ends at shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_session_the_timer_never_wakes() {
        let clock = Arc::new(ManualClock::new());
        let d = daemon(clock);
        let task = tokio::spawn(expiry_task(d.clone()));
        // A day of idle time passes in an instant; the task must still be parked, not spinning.
        tokio::time::advance(Duration::from_secs(86_400)).await;
        tokio::task::yield_now().await;
        assert!(!task.is_finished());
        d.shutdown.cancel();
        task.await.expect("ends");
    }
}

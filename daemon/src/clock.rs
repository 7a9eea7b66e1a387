//! The clock that session deadlines are measured on.
//!
//! Deadlines must count time the machine spends suspended: a laptop closed for an hour has had
//! its session idle for an hour, even though tokio's timers and `Instant` stopped. On Linux we
//! read `CLOCK_BOOTTIME`; on macOS `CLOCK_MONOTONIC`, which Apple documents as continuing to
//! increment while the system is asleep.
//! Timers only *wake* the daemon to wipe promptly; every request re-checks against this clock.
//! Tests inject [`ManualClock`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A source of "time since boot, including suspend".
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, as a duration since an arbitrary fixed origin.
    fn now(&self) -> Duration;
}

/// The system clock that counts suspend.
#[derive(Debug, Default, Clone, Copy)]
pub struct BootClock;

impl Clock for BootClock {
    fn now(&self) -> Duration {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let id = nix::time::ClockId::CLOCK_BOOTTIME;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let id = nix::time::ClockId::CLOCK_MONOTONIC;
        match nix::time::clock_gettime(id) {
            Ok(ts) => Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32),
            // clock_gettime on a valid clock id cannot fail; fall back to wall time anyway.
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
        }
    }
}

/// A clock tests move by hand.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock at an arbitrary non-zero origin.
    pub fn new() -> Self {
        ManualClock {
            nanos: AtomicU64::new(1_000_000_000),
        }
    }

    /// Move forward.
    pub fn advance(&self, d: Duration) {
        self.nanos.fetch_add(d.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// Seconds since the Unix epoch, for display only (never for deadlines).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_clock_moves_forward() {
        let a = BootClock.now();
        let b = BootClock.now();
        assert!(b >= a);
        assert!(a > Duration::ZERO);
    }

    #[test]
    fn manual_clock_advances() {
        let c = ManualClock::new();
        let a = c.now();
        c.advance(Duration::from_secs(5));
        assert_eq!(c.now() - a, Duration::from_secs(5));
    }
}

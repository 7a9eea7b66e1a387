//! Where the buses are, connecting to them, and the wait between tries.
//!
//! The addresses come from this process's environment, read once at start:
//! `DBUS_SYSTEM_BUS_ADDRESS` (else the well-known system socket) and
//! `DBUS_SESSION_BUS_ADDRESS` (else `$XDG_RUNTIME_DIR/bus` when it exists). We resolve them
//! ourselves rather than let zbus do it so status can name the address it tried.

use std::time::Duration;

/// The system bus's address when `DBUS_SYSTEM_BUS_ADDRESS` is unset (D-Bus specification).
pub(crate) const DEFAULT_SYSTEM_BUS: &str = "unix:path=/var/run/dbus/system_bus_socket";

/// The buses to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Addresses {
    /// The system bus.
    pub system: String,
    /// The session bus, when there is one.
    pub session: Option<String>,
    /// `XDG_SESSION_ID`: our own logind session, when we were started inside one.
    pub xdg_session_id: Option<String>,
}

impl Addresses {
    /// From this process's environment.
    pub(crate) fn from_env() -> Addresses {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let session = var("DBUS_SESSION_BUS_ADDRESS").or_else(|| {
            let runtime = var("XDG_RUNTIME_DIR")?;
            let path = std::path::Path::new(&runtime).join("bus");
            path.exists()
                .then(|| format!("unix:path={}", path.display()))
        });
        Addresses {
            system: without_guid(
                &var("DBUS_SYSTEM_BUS_ADDRESS").unwrap_or_else(|| DEFAULT_SYSTEM_BUS.into()),
            ),
            session: session.map(|s| without_guid(&s)),
            xdg_session_id: var("XDG_SESSION_ID"),
        }
    }
}

/// The address without its `guid=` keys. A guid pins one run of the bus: after the bus
/// restarts, a connection that insists on the old guid fails its handshake forever, and we
/// want the restarted bus.
pub(crate) fn without_guid(address: &str) -> String {
    address
        .split(';')
        .map(|one| match one.split_once(':') {
            Some((transport, keys)) => {
                let keys: Vec<&str> = keys
                    .split(',')
                    .filter(|kv| !kv.trim_start().starts_with("guid="))
                    .collect();
                format!("{transport}:{}", keys.join(","))
            }
            None => one.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// A connection failure in a few words: the address is already in the sentence around it.
pub(crate) fn reason(e: &zbus::Error) -> String {
    match e {
        zbus::Error::Connection(io, _) => io.to_string(),
        other => other.to_string(),
    }
}

/// How long a connect or a method call may take. zbus's socket reader waits when a signal
/// stream's queue is full, so a reply could otherwise wait forever behind a storm of signals
/// that the watcher, busy awaiting that reply, is not draining. With a deadline the call
/// fails, the watcher goes back to its streams, and the queue drains.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Connect to the bus at `address` as an ordinary bus client.
pub(crate) async fn connect(address: &str) -> zbus::Result<zbus::Connection> {
    let build = zbus::connection::Builder::address(address)
        .method_timeout(CALL_TIMEOUT)
        .build();
    tokio::time::timeout(CALL_TIMEOUT, build)
        .await
        .unwrap_or_else(|_| {
            Err(zbus::Error::InputOutput(std::sync::Arc::new(
                std::io::Error::new(std::io::ErrorKind::TimedOut, "the bus did not answer"),
            )))
        })
}

/// Exponential backoff between reconnects: 1 s doubling to 60 s, back to 1 s after a
/// connection that stayed up for a while (so a bus that restarts once costs a second, and a
/// bus that keeps dropping us costs at most one try a minute). A bus never seen at all (a
/// container, CI) is tried three times in the first seconds, then every ten minutes, so an
/// idle daemon there does not keep waking for it.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    cap: Duration,
    /// Whether the bus has ever answered (survives [`Backoff::reset`]).
    ever_connected: bool,
}

/// The longest wait between tries of a bus that has answered before.
const CAP: Duration = Duration::from_secs(60);
/// The longest wait between tries of a bus that has never answered.
const PATIENT_CAP: Duration = Duration::from_secs(600);

/// A connection that lasted this long resets the backoff.
pub(crate) const STABLE: Duration = Duration::from_secs(10);

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_secs(1),
            cap: CAP,
            ever_connected: false,
        }
    }
}

impl Backoff {
    /// The wait before the next try; doubles the one after.
    pub(crate) fn next(&mut self) -> Duration {
        let w = self.next;
        self.next = (self.next * 2).min(self.cap);
        w
    }

    /// The bus has never answered: after the first few quick tries, wait [`PATIENT_CAP`].
    pub(crate) fn patient(&mut self) {
        self.cap = PATIENT_CAP;
        if self.next >= Duration::from_secs(8) {
            self.next = PATIENT_CAP;
        }
    }

    /// The wait before the next try, after a connection attempt that ran for `ran_for` and
    /// did (or never) get connected: a long enough run starts the backoff over, and a bus that
    /// has never answered in this watcher's life is tried patiently.
    pub(crate) fn after(&mut self, ran_for: Duration, connected: bool) -> Duration {
        if ran_for >= STABLE {
            self.reset();
        }
        self.ever_connected |= connected;
        if !self.ever_connected {
            self.patient();
        }
        self.next()
    }

    /// Start over from the shortest wait.
    pub(crate) fn reset(&mut self) {
        *self = Backoff {
            ever_connected: self.ever_connected,
            ..Backoff::default()
        };
    }
}

/// How a watcher reports that its bus is down: the note `status` shows, logged once at info
/// (as a warning when a working bus was lost), then at debug while the bus stays away.
#[derive(Debug)]
pub(crate) struct Outage {
    /// `system` or `session`.
    bus: &'static str,
    /// What goes unwatched while it is down, for the log.
    watched: &'static str,
    logged: bool,
}

impl Outage {
    /// The reporter for one bus's watcher.
    pub(crate) fn new(bus: &'static str, watched: &'static str) -> Outage {
        Outage {
            bus,
            watched,
            logged: false,
        }
    }

    /// The note for this outage: `note` when the watcher has a more precise one, else "lost
    /// the {bus} bus …" after a working connection or "no {bus} bus …" before one.
    pub(crate) fn report(
        &mut self,
        address: &str,
        lost: &dyn std::fmt::Display,
        connected: bool,
        wait: Duration,
        note: Option<String>,
    ) -> String {
        let (bus, watched) = (self.bus, self.watched);
        let note = note.unwrap_or_else(|| {
            if connected {
                format!(
                    "lost the {bus} bus at {address} ({lost}); reconnecting in {}s",
                    wait.as_secs()
                )
            } else {
                format!(
                    "no {bus} bus at {address} ({lost}); retrying in {}s",
                    wait.as_secs()
                )
            }
        });
        if connected {
            tracing::warn!(%note, "{watched} are not watched until the {bus} bus is back");
        } else if !self.logged {
            tracing::info!(%note, "{watched} are not watched");
        } else {
            tracing::debug!(%note, "{bus} bus still unavailable");
        }
        self.logged = !connected || self.logged;
        note
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_dropped_so_a_restarted_bus_is_reachable() {
        assert_eq!(
            without_guid("unix:path=/run/bus,guid=0123abcd"),
            "unix:path=/run/bus"
        );
        assert_eq!(
            without_guid("unix:guid=ab,path=/a;tcp:host=h,port=1"),
            "unix:path=/a;tcp:host=h,port=1"
        );
        assert_eq!(without_guid(DEFAULT_SYSTEM_BUS), DEFAULT_SYSTEM_BUS);
    }

    #[test]
    fn backoff_doubles_to_a_minute_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..8).map(|_| b.next().as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        b.reset();
        assert_eq!(b.next().as_secs(), 1);
    }

    #[test]
    fn a_bus_never_seen_is_tried_patiently() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..6)
            .map(|_| {
                b.patient();
                b.next().as_secs()
            })
            .collect();
        assert_eq!(waits, vec![1, 2, 4, 600, 600, 600]);
        b.reset();
        let waits: Vec<u64> = (0..8).map(|_| b.next().as_secs()).collect();
        assert_eq!(waits[7], 60, "once seen, a minute at most again");
    }

    #[test]
    fn after_a_connection_a_lost_bus_is_retried_within_a_minute_again() {
        let mut b = Backoff::default();
        let short = Duration::from_millis(10);
        let waits: Vec<u64> = (0..4).map(|_| b.after(short, false).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 600], "never seen: patient");
        // The bus appears and stays up a while, then drops us.
        assert_eq!(b.after(STABLE, true).as_secs(), 1);
        let waits: Vec<u64> = (0..7).map(|_| b.after(short, false).as_secs()).collect();
        assert_eq!(
            waits,
            vec![2, 4, 8, 16, 32, 60, 60],
            "seen once: a minute at most"
        );
    }
}

//! The session bus watcher: a screensaver saying the screen locked.
//!
//! Listens for `ActiveChanged(true)` from `org.freedesktop.ScreenSaver` and
//! `org.gnome.ScreenSaver` (any path; desktops differ, see `docs/presence.md`) and ends the
//! sessions a screen lock ends. Any process of the user can emit such a signal; the worst it
//! can do is lock, which that user could do anyway with `op-session lock`.
//!
//! Reconnects with backoff when the bus goes away; never takes the daemon down.

use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use op_session_protocol::PresenceEvent;
use tracing::{debug, info};
use zbus::message::Type as MessageType;
use zbus::{MatchRule, MessageStream};

use super::bus::{Backoff, Outage, connect};
use super::{Source, end_sessions};
use crate::state::Daemon;

const INTERFACES: [&str; 2] = ["org.freedesktop.ScreenSaver", "org.gnome.ScreenSaver"];

#[derive(Debug, thiserror::Error)]
enum Lost {
    #[error("{}", super::bus::reason(.0))]
    Bus(#[from] zbus::Error),
    #[error("the bus closed the connection")]
    Closed,
}

/// Watch the session bus until the daemon shuts down, reconnecting with backoff.
pub(super) async fn watch(daemon: Arc<Daemon>) {
    let Some(address) = daemon.presence.buses.session.clone() else {
        info!("no session bus (DBUS_SESSION_BUS_ADDRESS is not set): screensavers are not watched");
        daemon.presence.set_session(Source::Down(
            "no session bus (DBUS_SESSION_BUS_ADDRESS is not set): screensavers are not watched"
                .into(),
        ));
        return;
    };
    let mut backoff = Backoff::default();
    let mut outage = Outage::new("session", "screensavers");
    loop {
        let started = Instant::now();
        let mut connected = false;
        let result = tokio::select! {
            _ = daemon.shutdown.cancelled() => return,
            r = run(&daemon, &address, &mut connected) => r,
        };
        let Err(lost) = result;
        let wait = backoff.after(started.elapsed(), connected);
        let note = outage.report(&address, &lost, connected, wait, None);
        daemon.presence.set_session(Source::Down(note));
        tokio::select! {
            _ = daemon.shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn run(
    daemon: &Arc<Daemon>,
    address: &str,
    connected: &mut bool,
) -> Result<Infallible, Lost> {
    let conn = connect(address).await?;
    let mut streams = Vec::new();
    for interface in INTERFACES {
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .interface(interface)
            .member("ActiveChanged")
            .build()?;
        streams.push(MessageStream::for_match_rule(rule, &conn, NonZeroUsize::new(64)).await?);
    }
    let mut signals = futures_util::stream::select_all(streams);
    *connected = true;
    daemon.presence.set_session(Source::Watching);
    info!(address = %address, "watching screensavers on the session bus");
    loop {
        let m = match signals.next().await {
            None => return Err(Lost::Closed),
            Some(Err(e)) => {
                debug!(error = %e, "unreadable message on the session bus; ignored");
                continue;
            }
            Some(Ok(m)) => m,
        };
        match m.body().deserialize::<bool>() {
            Ok(true) => {
                let from = m.header().interface().map(|i| i.to_string());
                info!(interface = ?from, "the screensaver locked the screen; locking sessions");
                end_sessions(daemon, PresenceEvent::ScreenLock).await;
            }
            Ok(false) => debug!("the screensaver went away"),
            Err(e) => debug!(error = %e, "ActiveChanged with an unexpected body; ignored"),
        }
        tokio::task::yield_now().await;
    }
}

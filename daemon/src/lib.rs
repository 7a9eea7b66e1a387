//! `op-sessiond`: a per-user daemon that holds 1Password CLI sessions for callers with no
//! terminal, runs every `op` child itself with the token only in that child's environment,
//! enforces idle and hard expiry on its own clock, caches resolved values briefly, and answers
//! over a user-owned Unix socket after checking each peer's uid.
//!
//! The binary (`main.rs`) parses flags, hardens the process, sets up the socket and calls
//! [`run`]; everything else lives here so tests can run the server in-process.
//!
//! Module map (one responsibility each): [`socket`] (path, lock, bind, activation),
//! [`peer`] (uid check, audit identity), [`server`] (accept loop, limits, deadlines, grant
//! sockets), [`connection`] (frames), [`requests`] (one module per request kind), [`error`]
//! (the daemon's own error, turned into the wire error once), [`session`] (the
//! table, deadlines, leases, account names), [`init`] (signing in, per mode), [`lifecycle`]
//! (storing, leasing, calling `op` with a session, keepalive, ending, revocation), [`expiry`]
//! (the deadline timer), [`gate`] (coalescing app authorizations), [`oprun`] (spawning `op`),
//! [`resolve`] and [`cache`] (values), [`passthrough`], [`policy`], [`audit`], [`scrub`],
//! [`hardening`], [`securemem`], [`clock`], [`config`], [`notify`], [`launchd`] (macOS
//! socket activation), [`presence`] (sleep and screen lock end sessions), [`connect`]
//! (sessions against a 1Password Connect server, resolved over its REST API), [`mcp`] (what
//! `op-session mcp` may do), [`grants`] (scoped grant sockets), [`quota`] (the request budget
//! of service-account and connect sessions, and 429s), [`brake`] (the per-caller brake),
//! [`confirm`] (a person confirms each use of a sensitive secret).
//!
//! No module imports one that imports it back; docs/architecture.md lists the order.
//!
//! Only what `main.rs` uses is `pub`; everything else is `pub(crate)`, and `unreachable_pub`
//! keeps it so, so that dead code shows up as dead.

#![warn(unreachable_pub)]

pub(crate) mod audit;
pub(crate) mod brake;
pub(crate) mod cache;
pub mod clock;
pub mod config;
pub(crate) mod confirm;
pub(crate) mod connect;
pub(crate) mod connection;
pub(crate) mod error;
pub(crate) mod expiry;
pub(crate) mod gate;
pub(crate) mod grants;
pub mod hardening;
pub(crate) mod init;
pub mod launchd;
pub(crate) mod lifecycle;
pub(crate) mod mcp;
pub mod notify;
pub(crate) mod oprun;
pub(crate) mod passthrough;
pub(crate) mod peer;
pub(crate) mod policy;
pub(crate) mod presence;
pub(crate) mod quota;
pub(crate) mod requests;
pub(crate) mod resolve;
pub(crate) mod scrub;
pub(crate) mod securemem;
pub(crate) mod server;
pub(crate) mod session;
pub mod socket;
pub(crate) mod state;

use std::sync::Arc;
use std::time::Duration;

use tracing::info;

pub use state::{Daemon, DaemonInfo};

/// Serve on `listener` until SIGTERM/SIGINT or a `stop` request; then wipe and revoke every
/// session. `on_ready` runs once the server accepts connections.
pub async fn run(
    listener: tokio::net::UnixListener,
    daemon: Arc<Daemon>,
    on_ready: impl FnOnce(),
) -> anyhow::Result<()> {
    let expiry = tokio::spawn(expiry::expiry_task(daemon.clone()));
    let signals = tokio::spawn(watch_signals(daemon.clone()));
    let server = tokio::spawn(server::serve(listener, daemon.clone()));
    let presence = presence::spawn(&daemon);
    on_ready();
    {
        let d = daemon.clone();
        tokio::spawn(async move { init::start_from_credentials(&d).await });
    }
    info!(socket = %daemon.info.socket.display(), pid = std::process::id(), started_by = %daemon.info.started_by, "serving");
    daemon.shutdown.cancelled().await;
    notify::stopping();
    let _ = server.await;
    daemon.grants.revoke_all();
    let n = tokio::time::timeout(
        daemon.config.op_timeout + Duration::from_secs(1),
        lifecycle::end_all(&daemon, session::EndReason::Shutdown),
    )
    .await
    .unwrap_or(0);
    daemon.quota.flush();
    info!(sessions_ended = n, "stopped");
    expiry.abort();
    signals.abort();
    for p in presence {
        p.abort();
    }
    Ok(())
}

async fn watch_signals(daemon: Arc<Daemon>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; SIGTERM will kill without wiping");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { info!("SIGINT: shutting down"); break; }
            // A closed terminal must not end sessions an agent still uses.
            _ = hup.recv() => { info!("SIGHUP ignored"); }
        }
    }
    daemon.shutdown.cancel();
}

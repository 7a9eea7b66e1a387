//! The accept loop: bounded connections, a deadline per request, graceful shutdown.
//!
//! Owns: accepting, the uid check before anything is read, the connection limit (a client
//! past it gets a `busy` error at once, never a hang), the read deadline (a silent client is
//! closed without delaying anyone else), and waiting for in-flight requests at shutdown. A
//! failing connection is logged and never stops the loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use op_session_protocol::{
    ErrorBody, ErrorCode, FrameError, PREAMBLE_FDS, PREAMBLE_PLAIN, Request, Response,
    decode_request,
};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::connection::{read_frame, read_preamble, write_response};
use crate::grants::{Grant, Opened};
use crate::peer::{allowed, peer_of};
use crate::requests::handle;
use crate::state::Daemon;

/// Serve until `daemon.shutdown` is cancelled, then wait for in-flight requests.
pub(crate) async fn serve(listener: UnixListener, daemon: Arc<Daemon>) {
    let tracker = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(daemon.config.max_connections));
    let idle_check = daemon.info.exit_when_idle;
    let mut last_active = Instant::now();
    let mut opened = daemon.grants.take_opened();
    let mut idle_tick = tokio::time::interval(
        idle_check
            .map(|d| d / 4)
            .unwrap_or(Duration::from_secs(3600))
            .max(Duration::from_millis(50)),
    );
    loop {
        tokio::select! {
            _ = daemon.shutdown.cancelled() => break,
            _ = idle_tick.tick(), if idle_check.is_some() => {
                let busy = slots.available_permits() < daemon.config.max_connections;
                if busy || !daemon.sessions.is_empty() {
                    last_active = Instant::now();
                } else if idle_check.is_some_and(|d| last_active.elapsed() >= d) {
                    info!("no sessions and no clients for the idle period; exiting (the service manager restarts us on the next connection)");
                    daemon.shutdown.cancel();
                }
            }
            Some(o) = next_grant(&mut opened) => {
                let d = daemon.clone();
                tracker.spawn(async move {
                    let g = o.grant.clone();
                    serve_grant(o.listener, d.clone(), o.grant).await;
                    if !g.ended.is_cancelled() {
                        warn!(grant = %g.name, "grant socket stopped serving; ending it");
                        d.grants.revoke(&g.name, "its socket failed");
                    }
                });
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    last_active = Instant::now();
                    let d = daemon.clone();
                    let permit = slots.clone().try_acquire_owned().ok();
                    tracker.spawn(async move {
                        let _permit = permit.as_ref();
                        connection(d, stream, permit.is_some(), None).await;
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off briefly rather than spin.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    tracker.close();
    tracker.wait().await;
}

/// The next grant socket to serve; never, once the channel is gone.
async fn next_grant(
    opened: &mut Option<tokio::sync::mpsc::UnboundedReceiver<Opened>>,
) -> Option<Opened> {
    match opened {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Serve a grant's socket until the grant ends or the daemon stops. Connections get the same
/// handling as the main socket (uid check, limits, deadline) with the grant as their scope,
/// and are dropped when the grant ends.
///
/// Grant sockets reach [`serve`] over a channel from [`crate::grants`] (see
/// [`crate::grants::Grants::serve`]), so a request that opens a grant never calls back here.
async fn serve_grant(listener: UnixListener, daemon: Arc<Daemon>, grant: Arc<Grant>) {
    let tracker = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(daemon.config.max_connections));
    loop {
        tokio::select! {
            _ = grant.ended.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let d = daemon.clone();
                    let g = grant.clone();
                    let permit = slots.clone().try_acquire_owned().ok();
                    tracker.spawn(async move {
                        let _permit = permit.as_ref();
                        let ended = g.ended.clone();
                        tokio::select! {
                            _ = connection(d, stream, permit.is_some(), Some(g)) => {}
                            // Nothing outlives the grant: its connections end with it.
                            _ = ended.cancelled() => {}
                        }
                    });
                }
                Err(e) => {
                    warn!(grant = %grant.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

async fn send_error(stream: &mut UnixStream, body: ErrorBody) {
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        write_response(stream, &Response::Error(body)),
    )
    .await;
}

async fn connection(
    daemon: Arc<Daemon>,
    mut stream: UnixStream,
    have_slot: bool,
    scope: Option<Arc<Grant>>,
) {
    let peer = match peer_of(&stream) {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "cannot read peer credentials; closing");
            return;
        }
    };
    if !allowed(&peer, daemon.info.uid) {
        warn!(
            peer_pid = peer.pid,
            peer_uid = peer.uid,
            "refused a connection from another user"
        );
        send_error(
            &mut stream,
            ErrorBody::new(
                ErrorCode::PermissionDenied,
                format!(
                    "op-sessiond serves uid {} only; uid {} was refused",
                    daemon.info.uid, peer.uid
                ),
            ),
        )
        .await;
        return;
    }
    if !have_slot {
        warn!(peer_pid = peer.pid, "connection limit reached; refusing");
        send_error(
            &mut stream,
            ErrorBody::new(ErrorCode::Busy, "op-sessiond is at its connection limit"),
        )
        .await;
        return;
    }
    // Who the peer is, read now, while it waits for its answer (audit identity, and the
    // caller a confirmation prompt names, and the caller the brake counts errors for).
    let chain = match peer.pid {
        Some(pid)
            if daemon.audit.is_some()
                || daemon.brake.limit() > 0
                || daemon.confirm.is_active()
                || scope.is_some() =>
        {
            crate::peer::identify(&stream, pid, &daemon.ancestry)
        }
        _ => Vec::new(),
    };
    let caller = crate::brake::caller_key(&chain);
    let read = async {
        let (pre, fds) = read_preamble(&stream).await.map_err(FrameError::Io)?;
        let payload = read_frame(&mut stream).await?;
        Ok::<_, FrameError>((pre, fds, payload))
    };
    let (pre, fds, payload) = match tokio::time::timeout(daemon.config.read_timeout, read).await {
        Err(_) => {
            debug!(
                peer_pid = peer.pid,
                "no request before the deadline; closing"
            );
            send_error(
                &mut stream,
                ErrorBody::new(
                    ErrorCode::BadRequest,
                    format!(
                        "no request within {}s; closing",
                        daemon.config.read_timeout.as_secs_f32()
                    ),
                ),
            )
            .await;
            return;
        }
        Ok(Err(FrameError::Closed)) => return,
        Ok(Err(FrameError::Io(e))) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
        Ok(Err(e)) => {
            debug!(peer_pid = peer.pid, error = %e, "bad frame");
            send_error(
                &mut stream,
                ErrorBody::new(ErrorCode::BadRequest, e.to_string()),
            )
            .await;
            return;
        }
        Ok(Ok(v)) => v,
    };
    if pre != PREAMBLE_PLAIN && pre != PREAMBLE_FDS {
        send_error(
            &mut stream,
            ErrorBody::new(
                ErrorCode::BadRequest,
                "unknown preamble byte (not an op-session client?)",
            ),
        )
        .await;
        return;
    }
    let req = match decode_request(&payload) {
        Ok(r) => r,
        Err(e) => {
            let mut body = e.to_body();
            if body.code == ErrorCode::VersionMismatch {
                body.daemon = Some(Box::new(op_session_protocol::DaemonIdentity {
                    protocol: op_session_protocol::PROTOCOL_VERSION,
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    pid: std::process::id(),
                    started_by: daemon.info.started_by,
                }));
            }
            send_error(&mut stream, body).await;
            return;
        }
    };
    drop(payload);
    let stop_asked = matches!(req, Request::Stop);
    debug!(peer_pid = peer.pid, request = req.name(), "request");
    // Who would be named in a prompt; read only where something may ask.
    let asker = if daemon.confirm.is_active() || scope.as_ref().is_some_and(|g| g.confirm) {
        crate::confirm::Caller::new(peer.pid, &chain)
    } else {
        crate::confirm::Caller::default()
    };
    let (resp, outcome) = handle(
        &daemon,
        req,
        fds,
        &mut stream,
        scope.as_deref(),
        crate::requests::Callers {
            brake: caller.as_deref(),
            confirm: &asker,
        },
    )
    .await;
    if let Err(e) = write_response(&mut stream, &resp).await {
        debug!(peer_pid = peer.pid, error = %e, "client left before the answer");
    }
    drop(stream);
    crate::requests::audit(&daemon, &peer, chain, &resp, outcome);
    // A grant whose budget this request spent ends now that its answer is out.
    if let Some(g) = &scope
        && g.spent()
    {
        daemon.grants.revoke(&g.name, "its read budget is spent");
    }
    // Only a stop that was granted stops the daemon (a grant socket refuses it).
    if stop_asked && matches!(resp, Response::Done { .. }) {
        info!(peer_pid = peer.pid, "stop requested");
        daemon.shutdown.cancel();
    }
}

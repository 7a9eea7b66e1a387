//! The accept loop: bounded connections, a deadline per request, graceful shutdown.
//!
//! Owns: accepting, the uid check before anything is read, the connection limit (a client
//! past it gets a `busy` error at once, never a hang), the read deadline (a silent client is
//! closed without delaying anyone else), and waiting for in-flight requests at shutdown. A
//! failing connection is logged and never stops the loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::os::fd::OwnedFd;

use op_session_protocol::{
    ErrorBody, ErrorCode, FrameError, PREAMBLE_FDS, PREAMBLE_PLAIN, PREAMBLE_REUSE, REUSE_IDLE,
    Request, Response, decode_request,
};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use crate::connection::{
    next_request, read_frame, read_frame_after, read_preamble, write_response,
};
use crate::grants::{Grant, Opened};
use crate::peer::{ProcessInfo, allowed, peer_of};
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

async fn send_error(stream: &UnixStream, body: ErrorBody) {
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
            &stream,
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
            &stream,
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
    let who = Who {
        peer: &peer,
        chain: &chain,
        caller: caller.as_deref(),
        scope: scope.as_ref(),
    };
    let read = async {
        let (pre, fds) = read_preamble(&stream).await.map_err(FrameError::Io)?;
        let payload = read_frame(&stream).await?;
        Ok::<_, FrameError>((pre, fds, payload))
    };
    let Some((pre, fds, payload)) = within_deadline(&daemon, &stream, &peer, read).await else {
        return;
    };
    match pre {
        PREAMBLE_PLAIN | PREAMBLE_FDS => {
            answer(&daemon, &mut stream, &who, fds, payload, false).await;
        }
        PREAMBLE_REUSE if fds.is_empty() => {
            reused(&daemon, &mut stream, &who, payload).await;
        }
        PREAMBLE_REUSE => {
            drop(fds);
            send_error(
                &stream,
                ErrorBody::new(
                    ErrorCode::BadRequest,
                    "a reused connection takes no descriptors",
                ),
            )
            .await;
        }
        _ => {
            send_error(
                &stream,
                ErrorBody::new(
                    ErrorCode::BadRequest,
                    "unknown preamble byte (not an op-session client?)",
                ),
            )
            .await;
        }
    }
}

/// Who is on the other end of a connection, read once when it was accepted.
struct Who<'a> {
    peer: &'a crate::peer::Peer,
    chain: &'a [ProcessInfo],
    /// The key the error brake counts this caller's failures under.
    caller: Option<&'a str>,
    scope: Option<&'a Arc<Grant>>,
}

/// Read with the request deadline; a late, malformed or vanished request is answered (where
/// there is anyone to answer) and gives `None`.
async fn within_deadline<T>(
    daemon: &Daemon,
    stream: &UnixStream,
    peer: &crate::peer::Peer,
    read: impl std::future::Future<Output = Result<T, FrameError>>,
) -> Option<T> {
    match tokio::time::timeout(daemon.config.read_timeout, read).await {
        Err(_) => {
            debug!(
                peer_pid = peer.pid,
                "no request before the deadline; closing"
            );
            send_error(
                stream,
                ErrorBody::new(
                    ErrorCode::BadRequest,
                    format!(
                        "no request within {}s; closing",
                        daemon.config.read_timeout.as_secs_f32()
                    ),
                ),
            )
            .await;
            None
        }
        Ok(Err(FrameError::Closed)) => None,
        Ok(Err(FrameError::Io(e))) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
        Ok(Err(e)) => {
            debug!(peer_pid = peer.pid, error = %e, "bad frame");
            send_error(stream, ErrorBody::new(ErrorCode::BadRequest, e.to_string())).await;
            None
        }
        Ok(Ok(v)) => Some(v),
    }
}

/// Serve a reused connection (`PREAMBLE_REUSE`): answer `first`, then each request frame that
/// follows, until the client closes, sends something unreadable, stays silent for
/// [`REUSE_IDLE`], or the daemon stops. Every request is checked on its own (policy, session,
/// grant, brake, audit), exactly as on a connection of its own; only the peer's identity is
/// read once, as it is for any connection.
async fn reused(
    daemon: &Arc<Daemon>,
    stream: &mut UnixStream,
    who: &Who<'_>,
    first: Zeroizing<Vec<u8>>,
) {
    let mut payload = first;
    loop {
        if answer(daemon, stream, who, Vec::new(), payload, true).await == Flow::Close {
            return;
        }
        // Idle between requests: wait for the next one's first bytes, the idle limit, or the
        // daemon stopping (an idle connection never holds up shutdown).
        let mut header = [0u8; 4];
        let got = tokio::select! {
            // A stop wins over a request already waiting.
            biased;
            _ = daemon.shutdown.cancelled() => return,
            r = tokio::time::timeout(REUSE_IDLE, next_request(stream, &mut header)) => match r {
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(n)) => n,
                Err(_) => {
                    debug!(peer_pid = who.peer.pid, "reused connection idle; closing");
                    return;
                }
            }
        };
        let read = read_frame_after(stream, header, got);
        match within_deadline(daemon, stream, who.peer, read).await {
            Some(p) => payload = p,
            None => return,
        }
    }
}

/// Whether a connection goes on after an answer.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Next,
    Close,
}

/// Decode one request, handle it, write its answer, and audit it. On a `reused` connection a
/// passthrough is refused (it streams and takes descriptors) and ends the connection.
async fn answer(
    daemon: &Arc<Daemon>,
    stream: &mut UnixStream,
    who: &Who<'_>,
    fds: Vec<OwnedFd>,
    payload: Zeroizing<Vec<u8>>,
    reused: bool,
) -> Flow {
    let peer = who.peer;
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
            send_error(stream, body).await;
            return Flow::Close;
        }
    };
    drop(payload);
    // A refused passthrough ends a reused connection (its client expected a stream of its own).
    let last = reused && matches!(req, Request::Passthrough(_));
    let stop_asked = matches!(req, Request::Stop);
    debug!(peer_pid = peer.pid, request = req.name(), "request");
    // Who would be named in a prompt; read only where something may ask.
    let asker = if daemon.confirm.is_active() || who.scope.is_some_and(|g| g.confirm) {
        crate::confirm::Caller::new(peer.pid, who.chain)
    } else {
        crate::confirm::Caller::default()
    };
    let (resp, outcome) = handle(
        daemon,
        req,
        fds,
        reused,
        stream,
        who.scope.map(|g| &**g),
        crate::requests::Callers {
            brake: who.caller,
            confirm: &asker,
        },
    )
    .await;
    // A client that does not read its answer is given read_timeout, as one that does not send
    // its request is: it never holds a slot, or the daemon's stop, for longer.
    let sent = match tokio::time::timeout(daemon.config.read_timeout, write_response(stream, &resp))
        .await
    {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            debug!(peer_pid = peer.pid, error = %e, "client left before the answer");
            false
        }
        Err(_) => {
            debug!(
                peer_pid = peer.pid,
                "client did not read its answer before the deadline; closing"
            );
            false
        }
    };
    crate::requests::audit(daemon, peer, who.chain.to_vec(), &resp, outcome);
    let mut flow = if sent && reused && !last {
        Flow::Next
    } else {
        Flow::Close
    };
    // A grant whose budget this request spent ends now that its answer is out.
    if let Some(g) = who.scope
        && g.spent()
    {
        daemon.grants.revoke(&g.name, "its read budget is spent");
        flow = Flow::Close;
    }
    // Only a stop that was granted stops the daemon (a grant socket refuses it).
    if stop_asked && matches!(resp, Response::Done { .. }) {
        info!(peer_pid = peer.pid, "stop requested");
        daemon.shutdown.cancel();
        flow = Flow::Close;
    }
    flow
}

#[cfg(test)]
mod tests {
    use super::*;
    use op_session_protocol::{MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, frame};
    use tokio::io::AsyncWriteExt;

    fn daemon() -> Arc<Daemon> {
        let config = crate::config::Config {
            audit: false,
            ..Default::default()
        };
        Arc::new(Daemon::new(
            config,
            crate::state::DaemonInfo::for_tests(),
            Arc::new(crate::clock::ManualClock::new()),
        ))
    }

    /// A daemon serving one connection; the client's end of it.
    fn serving(d: &Arc<Daemon>) -> (UnixStream, tokio::task::JoinHandle<()>) {
        let (client, ours) = UnixStream::pair().expect("pair");
        let task = tokio::spawn(connection(d.clone(), ours, true, None));
        (client, task)
    }

    async fn send(client: &mut UnixStream, preamble: Option<u8>, json: &str) {
        let mut bytes: Vec<u8> = preamble.into_iter().collect();
        bytes.extend_from_slice(&frame::encode(json.as_bytes(), MAX_REQUEST_FRAME).expect("frame"));
        client.write_all(&bytes).await.expect("write");
    }

    /// Every wait in these tests ends by here (paused time: it costs nothing, and it is past
    /// the idle limit, so it never cuts short what a test waits for).
    const DEADLINE: Duration = Duration::from_secs(600);

    /// The connection task's end, within the deadline.
    async fn ends(task: tokio::task::JoinHandle<()>) {
        tokio::time::timeout(DEADLINE, task)
            .await
            .expect("the connection task ends within the deadline")
            .expect("the connection task ends");
    }

    async fn answer_of(client: &mut UnixStream) -> Response {
        let body = tokio::time::timeout(
            DEADLINE,
            frame::read_frame_async(client, MAX_RESPONSE_FRAME),
        )
        .await
        .expect("an answer within the deadline")
        .expect("an answer");
        op_session_protocol::decode_response(&body).expect("decodes")
    }

    /// Whether the daemon closed the connection (with unread bytes left, the kernel reports
    /// that as a reset).
    async fn closed(client: &mut UnixStream) -> bool {
        match tokio::time::timeout(
            DEADLINE,
            frame::read_frame_async(client, MAX_RESPONSE_FRAME),
        )
        .await
        {
            Ok(Err(FrameError::Closed)) => true,
            Ok(Err(FrameError::Io(e))) => e.kind() == std::io::ErrorKind::ConnectionReset,
            _ => false,
        }
    }

    const STATUS: &str = r#"{"version":2,"type":"status"}"#;

    /// Request after request on one connection, each answered; a request after most of the
    /// idle limit still is; the connection closes once the limit passes with nothing sent.
    #[tokio::test(start_paused = true)]
    async fn a_reused_connection_answers_request_after_request_then_closes_when_idle() {
        let d = daemon();
        let (mut client, task) = serving(&d);
        send(&mut client, Some(PREAMBLE_REUSE), STATUS).await;
        assert!(matches!(answer_of(&mut client).await, Response::Status(_)));
        for _ in 0..3 {
            send(&mut client, None, STATUS).await;
            assert!(matches!(answer_of(&mut client).await, Response::Status(_)));
        }
        tokio::time::sleep(REUSE_IDLE - Duration::from_secs(1)).await;
        send(&mut client, None, STATUS).await;
        assert!(matches!(answer_of(&mut client).await, Response::Status(_)));
        let idle_from = tokio::time::Instant::now();
        assert!(closed(&mut client).await, "closed when idle");
        assert!(
            idle_from.elapsed() >= REUSE_IDLE,
            "{:?}",
            idle_from.elapsed()
        );
        ends(task).await;
    }

    /// A request that trickles in after an idle spell is read whole: the idle wait takes what
    /// came first and the frame read takes the rest, however the header was split.
    #[tokio::test(start_paused = true)]
    async fn a_reused_connections_next_request_may_arrive_in_pieces() {
        let d = daemon();
        let (mut client, task) = serving(&d);
        send(&mut client, Some(PREAMBLE_REUSE), STATUS).await;
        assert!(matches!(answer_of(&mut client).await, Response::Status(_)));
        for split in [1, 2, 3, 4, 5] {
            tokio::time::sleep(Duration::from_secs(30)).await;
            let framed = frame::encode(STATUS.as_bytes(), MAX_REQUEST_FRAME).expect("frame");
            client.write_all(&framed[..split]).await.expect("write");
            tokio::time::sleep(Duration::from_millis(100)).await;
            client.write_all(&framed[split..]).await.expect("write");
            assert!(matches!(answer_of(&mut client).await, Response::Status(_)));
        }
        drop(client);
        ends(task).await;
    }

    /// A plain connection still carries one request: a second frame is never read.
    #[tokio::test(start_paused = true)]
    async fn a_plain_connection_carries_one_request() {
        let d = daemon();
        let (mut client, task) = serving(&d);
        send(&mut client, Some(PREAMBLE_PLAIN), STATUS).await;
        send(&mut client, None, STATUS).await;
        assert!(matches!(answer_of(&mut client).await, Response::Status(_)));
        assert!(closed(&mut client).await);
        ends(task).await;
    }

    /// An idle reused connection never holds up the daemon's stop.
    #[tokio::test(start_paused = true)]
    async fn an_idle_reused_connection_ends_when_the_daemon_stops() {
        let d = daemon();
        let (mut client, task) = serving(&d);
        send(&mut client, Some(PREAMBLE_REUSE), STATUS).await;
        assert!(matches!(answer_of(&mut client).await, Response::Status(_)));
        let asked = tokio::time::Instant::now();
        d.shutdown.cancel();
        ends(task).await;
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "{:?}",
            asked.elapsed()
        );
        assert!(closed(&mut client).await);
    }

    /// What needs a connection of its own is refused on a reused one, and that ends it; so does
    /// a frame that cannot be read, and a request of another protocol version.
    #[tokio::test(start_paused = true)]
    async fn a_reused_connection_refuses_a_passthrough_and_ends_on_bad_input() {
        let passthrough =
            r#"{"version":2,"type":"passthrough","args":["whoami"],"cwd":"/","env":[]}"#;
        for (bad, want) in [
            (passthrough.as_bytes().to_vec(), "connection of its own"),
            (b"{not json".to_vec(), ""),
            (br#"{"version":99,"type":"status"}"#.to_vec(), ""),
        ] {
            let d = daemon();
            let (mut client, task) = serving(&d);
            send(&mut client, Some(PREAMBLE_REUSE), STATUS).await;
            assert!(matches!(answer_of(&mut client).await, Response::Status(_)));
            let mut bytes = (bad.len() as u32).to_be_bytes().to_vec();
            bytes.extend_from_slice(&bad);
            client.write_all(&bytes).await.expect("write");
            match answer_of(&mut client).await {
                Response::Error(e) => assert!(e.message.contains(want), "{}", e.message),
                _ => panic!("not refused"),
            }
            // At once, not at the idle limit (paused time would reach that too).
            let ended = tokio::time::timeout(Duration::from_secs(1), closed(&mut client)).await;
            assert!(matches!(ended, Ok(true)), "the connection ends");
            ends(task).await;
        }
        // An oversized header: refused before anything is allocated, and the end.
        let d = daemon();
        let (mut client, task) = serving(&d);
        send(&mut client, Some(PREAMBLE_REUSE), STATUS).await;
        assert!(matches!(answer_of(&mut client).await, Response::Status(_)));
        client.write_all(&[0xff, 0, 0, 0]).await.expect("write");
        assert!(matches!(answer_of(&mut client).await, Response::Error(_)));
        let ended = tokio::time::timeout(Duration::from_secs(1), closed(&mut client)).await;
        assert!(matches!(ended, Ok(true)), "the connection ends");
        ends(task).await;
    }

    /// A client that sends request after request and reads no answer fills its socket; the
    /// daemon gives it `read_timeout` to read, then closes, so neither a slot nor the daemon's
    /// stop waits on it.
    #[tokio::test(start_paused = true)]
    async fn a_client_that_reads_no_answers_is_closed_at_the_deadline() {
        let d = daemon();
        let (mut client, task) = serving(&d);
        let framed = frame::encode(STATUS.as_bytes(), MAX_REQUEST_FRAME).expect("frame");
        let mut bytes = vec![PREAMBLE_REUSE];
        for _ in 0..1000 {
            bytes.extend_from_slice(&framed);
        }
        client.write_all(&bytes).await.expect("write");
        // Let the daemon answer until the client's socket is full and its write waits.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!task.is_finished(), "the daemon was not kept waiting");
        let started = tokio::time::Instant::now();
        d.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the connection ends at the write deadline")
            .expect("the connection task ends");
        assert!(
            started.elapsed() <= d.config.read_timeout + Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
}

//! Talking to op-sessiond from the MCP process.
//!
//! Owns the socket checks (the socket's directory must be ours and private, so nothing is sent
//! to a socket another user planted), the framing (see the protocol crate's walk-through), the
//! connections kept open between requests, and a bound on how long one request may take, so an
//! agent never hangs on a stuck daemon. Holds no credential; response buffers that may hold
//! values are wiped on drop.
//!
//! An agent's tool calls come one after another for as long as the server runs, so it keeps
//! its connections: each opens with the reuse preamble and then carries request after request
//! (docs/architecture.md, "Reused connections"). That saves the daemon the accept, the peer's
//! identity and the teardown per call (docs/BENCHMARKS.md). Every request is still checked by
//! the daemon on its own; nothing about a session is remembered here. A connection idle for
//! half the daemon's idle limit is closed, not reused; one the daemon closed (it stopped, or
//! restarted) is noticed before sending, and a request that still finds its connection gone is
//! sent once more on a new one if it only reads and prompts no one (status, checks, listing and
//! getting items); any other is reported failed rather than risk doing it twice. A daemon that does not know the
//! reuse preamble gets one request per connection from then on.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use op_session_protocol::{
    ErrorBody, ErrorCode, FrameError, ItemOp, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME,
    PREAMBLE_PLAIN, PREAMBLE_REUSE, REUSE_IDLE, Request, Response, decode_response, encode_request,
    frame,
};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use zeroize::Zeroizing;

/// The longest one request may take: the daemon's own `op` timeout is 60 s by default, and an
/// app prompt is bounded by it too.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(150);

/// How to reach the daemon.
#[derive(Debug, Clone)]
pub struct DaemonClient {
    socket: PathBuf,
    kept: Arc<Kept>,
}

/// Connections kept for the next request, shared by every clone of a [`DaemonClient`].
#[derive(Debug, Default)]
struct Kept {
    /// Open reused connections and when each last answered, most recent last.
    idle: Mutex<Vec<(UnixStream, Instant)>>,
    /// The daemon refused the reuse preamble (an older daemon): one request per connection.
    plain_only: AtomicBool,
}

/// At most this many idle connections are kept (one per tool call running at once).
const KEEP: usize = 4;

/// A connection the daemon has not closed may be reused for this long after its last answer:
/// half the daemon's limit, so the daemon never closes one a request is being sent on.
const REUSE_FOR: Duration = Duration::from_secs(REUSE_IDLE.as_secs() / 2);

fn unavailable(message: String) -> ErrorBody {
    ErrorBody::new(ErrorCode::Busy, message).with_fix(
        "start the daemon (`op-session status` starts it), then retry; `op-session status` shows whether it runs",
    )
}

fn lost(e: &dyn std::fmt::Display) -> ErrorBody {
    unavailable(format!("lost the connection to op-sessiond: {e}"))
}

/// How an exchange on a connection failed.
enum Failed {
    /// The connection ended before any byte of the answer: a kept connection the daemon
    /// closed, or a daemon that refused the reuse preamble.
    BeforeAnswer(ErrorBody),
    /// Anything else: reported as is.
    Other(ErrorBody),
}

impl DaemonClient {
    /// A client for the daemon at `socket`.
    pub fn new(socket: PathBuf) -> Self {
        DaemonClient {
            socket,
            kept: Arc::default(),
        }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Send one request and read its one response. Failures to reach the daemon are
    /// reported as an [`ErrorBody`] like the daemon's own, so tools show them the same way.
    pub async fn request(&self, req: &Request) -> Result<Response, ErrorBody> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(req)).await {
            Ok(r) => r,
            Err(_) => Err(unavailable(format!(
                "op-sessiond did not answer within {}s",
                REQUEST_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn exchange(&self, req: &Request) -> Result<Response, ErrorBody> {
        let payload = encode_request(req).map_err(|e| lost(&e))?;
        let framed = Zeroizing::new(frame::encode(&payload, MAX_REQUEST_FRAME).map_err(|e| {
            ErrorBody::new(ErrorCode::BadRequest, format!("request too large: {e}"))
                .with_fix("send fewer or shorter references")
        })?);
        drop(payload);
        // Only a request that reads and prompts no one is sent twice.
        let resend = match req {
            Request::Status | Request::McpInfo | Request::Check(_) => true,
            Request::Item(i) => matches!(
                i.op,
                ItemOp::ListVaults | ItemOp::ListItems { .. } | ItemOp::GetItem { .. }
            ),
            _ => false,
        };
        if let Some(mut stream) = self.take_kept() {
            match on(&mut stream, None, &framed).await {
                Ok(resp) => return version_checked(self.keep(stream, resp)),
                Err(Failed::BeforeAnswer(e)) if !resend => return Err(e),
                Err(Failed::BeforeAnswer(_)) => {}
                Err(Failed::Other(e)) => return Err(e),
            }
        }
        let reuse = !self.kept.plain_only.load(Ordering::Relaxed);
        let mut stream = self.connect().await?;
        let preamble = if reuse {
            PREAMBLE_REUSE
        } else {
            PREAMBLE_PLAIN
        };
        let resp = match on(&mut stream, Some(preamble), &framed).await {
            Ok(resp) => resp,
            Err(Failed::BeforeAnswer(e) | Failed::Other(e)) => return Err(e),
        };
        if reuse && refused_reuse(&resp) {
            // An older daemon: it read nothing past the preamble, so send the request again.
            self.kept.plain_only.store(true, Ordering::Relaxed);
            let mut stream = self.connect().await?;
            return match on(&mut stream, Some(PREAMBLE_PLAIN), &framed).await {
                Ok(resp) => version_checked(resp),
                Err(Failed::BeforeAnswer(e) | Failed::Other(e)) => Err(e),
            };
        }
        if reuse {
            version_checked(self.keep(stream, resp))
        } else {
            version_checked(resp)
        }
    }

    /// A new connection, after checking that the socket's directory is ours and private.
    async fn connect(&self) -> Result<UnixStream, ErrorBody> {
        if let Some(dir) = self.socket.parent()
            && let Err(e) = op_session_paths::verify_private_dir(dir)
        {
            return Err(ErrorBody::new(
                ErrorCode::PermissionDenied,
                format!("cannot use {}: {e}", self.socket.display()),
            )
            .with_fix("fix the directory as the message says"));
        }
        UnixStream::connect(&self.socket).await.map_err(|e| {
            unavailable(format!(
                "op-sessiond is not running at {} ({e})",
                self.socket.display()
            ))
        })
    }

    /// The most recently used kept connection that is fresh enough and still open.
    fn take_kept(&self) -> Option<UnixStream> {
        let mut idle = self.kept.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((stream, at)) = idle.pop() {
            if at.elapsed() < REUSE_FOR && !closed(&stream) {
                return Some(stream);
            }
        }
        None
    }

    /// Keep `stream` for the next request unless its answer says the daemon is done with it;
    /// then return the checked answer.
    fn keep(&self, stream: UnixStream, resp: Response) -> Response {
        // The daemon closes a reused connection after an error it cannot go on from (a bad
        // frame, another protocol version, a stop); an error answer is rare, so never keep one.
        if !matches!(resp, Response::Error(_)) {
            let mut idle = self.kept.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < KEEP {
                idle.push((stream, Instant::now()));
            }
        }
        resp
    }
}

/// Whether the daemon closed `stream` (it never sends anything unasked, so anything to read
/// means the end of the stream).
fn closed(stream: &UnixStream) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => false,
        Ok(_) | Err(_) => true,
    }
}

/// The answer of a daemon that does not know the reuse preamble (its exact words: it answers
/// so before reading the request, so nothing was done).
fn refused_reuse(resp: &Response) -> bool {
    matches!(resp, Response::Error(e) if e.code == ErrorCode::BadRequest
        && e.message.starts_with("unknown preamble byte"))
}

/// Send `framed` (after `preamble` on a new connection) and read the one answer.
async fn on(
    stream: &mut UnixStream,
    preamble: Option<u8>,
    framed: &[u8],
) -> Result<Response, Failed> {
    let mut out = Zeroizing::new(Vec::with_capacity(framed.len() + 1));
    out.extend(preamble);
    out.extend_from_slice(framed);
    if let Err(e) = stream.write_all(&out).await {
        return Err(Failed::BeforeAnswer(lost(&e)));
    }
    let body = match frame::read_frame_async(stream, MAX_RESPONSE_FRAME).await {
        Ok(b) => b,
        Err(e @ FrameError::Closed) => return Err(Failed::BeforeAnswer(lost(&e))),
        Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            return Err(Failed::BeforeAnswer(lost(&e)));
        }
        Err(e) => return Err(Failed::Other(lost(&e))),
    };
    decode_response(&body).map_err(|e| Failed::Other(lost(&e)))
}

/// The answer, or the person's fix when the daemon speaks another protocol.
fn version_checked(resp: Response) -> Result<Response, ErrorBody> {
    if let Response::Error(e) = &resp
        && e.code == ErrorCode::VersionMismatch
    {
        return Err(ErrorBody::new(
            ErrorCode::VersionMismatch,
            "op-sessiond speaks another protocol than this op-session mcp",
        )
        .with_fix("restart the daemon with the matching version: `op-session stop`, then retry"));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use op_session_protocol::{ItemRequest, encode_response};
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::AtomicUsize;
    use tokio::io::AsyncReadExt;
    use tokio::net::UnixListener;

    /// How the fake daemon treats a connection.
    #[derive(Clone, Copy)]
    enum Fake {
        /// Answers every request, as many as come.
        Serve,
        /// Answers one request, then shuts its side for writing (it still reads and counts).
        OneThenClose,
        /// Answers the first request; reads the second and closes without answering.
        DropSecond,
        /// An older daemon: refuses the reuse preamble, answers one plain request.
        Old,
    }

    struct Seen {
        accepts: AtomicUsize,
        requests: AtomicUsize,
        preambles: Mutex<Vec<u8>>,
    }

    /// A fake daemon in a private directory; what it saw.
    fn fake(dir: &Path, how: Fake) -> (DaemonClient, Arc<Seen>) {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let socket = dir.join("agent.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let seen = Arc::new(Seen {
            accepts: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            preambles: Mutex::new(Vec::new()),
        });
        let s = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                s.accepts.fetch_add(1, Ordering::SeqCst);
                let s = s.clone();
                tokio::spawn(async move {
                    let pre = stream.read_u8().await.unwrap();
                    s.preambles.lock().unwrap().push(pre);
                    let mut n = 0;
                    while frame::read_frame_async(&mut stream, MAX_REQUEST_FRAME)
                        .await
                        .is_ok()
                    {
                        s.requests.fetch_add(1, Ordering::SeqCst);
                        n += 1;
                        let resp = match how {
                            Fake::Old if pre != PREAMBLE_PLAIN => Response::Error(ErrorBody::new(
                                ErrorCode::BadRequest,
                                "unknown preamble byte (not an op-session client?)",
                            )),
                            Fake::DropSecond if n == 2 => return,
                            Fake::OneThenClose if n > 1 => continue,
                            _ => Response::Done {
                                message: "ok".into(),
                            },
                        };
                        let body = encode_response(&resp).unwrap();
                        let framed = frame::encode(&body, MAX_RESPONSE_FRAME).unwrap();
                        stream.write_all(&framed).await.unwrap();
                        if matches!(how, Fake::Old) {
                            return;
                        }
                        if matches!(how, Fake::OneThenClose) && n == 1 {
                            // Closed for answers, but anything sent still counts.
                            stream.shutdown().await.unwrap();
                        }
                    }
                });
            }
        });
        (DaemonClient::new(socket), seen)
    }

    fn done(r: Result<Response, ErrorBody>) -> bool {
        matches!(r, Ok(Response::Done { .. }))
    }

    #[tokio::test]
    async fn requests_one_after_another_share_one_connection() {
        let dir = tempfile::tempdir().unwrap();
        let (client, seen) = fake(dir.path(), Fake::Serve);
        for _ in 0..5 {
            assert!(done(client.request(&Request::Status).await));
        }
        assert_eq!(seen.accepts.load(Ordering::SeqCst), 1);
        assert_eq!(seen.requests.load(Ordering::SeqCst), 5);
        assert_eq!(*seen.preambles.lock().unwrap(), vec![PREAMBLE_REUSE]);
        // A clone shares the kept connection.
        assert!(done(client.clone().request(&Request::Status).await));
        assert_eq!(seen.accepts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_daemon_closed_is_left_for_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let (client, seen) = fake(dir.path(), Fake::OneThenClose);
        for _ in 0..3 {
            assert!(done(client.request(&Request::Status).await));
        }
        assert_eq!(seen.accepts.load(Ordering::SeqCst), 3);
        // Each request was sent once: the closed connection was noticed before sending (one
        // sent on it would be counted, then sent again).
        assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_request_lost_on_a_kept_connection_is_resent_only_if_it_reads() {
        let dir = tempfile::tempdir().unwrap();
        let (client, seen) = fake(dir.path(), Fake::DropSecond);
        assert!(done(client.request(&Request::Status).await));
        // The second request on the kept connection is read and never answered: sent again
        // on a new connection.
        assert!(done(client.request(&Request::Status).await));
        assert_eq!(seen.accepts.load(Ordering::SeqCst), 2);
        assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
        // Creating an item is never sent twice: the error is reported instead.
        let create = Request::Item(ItemRequest {
            account: None,
            op: ItemOp::CreateItem {
                vault: "Dev".into(),
                title: "t".into(),
                category: "Login".into(),
                fields: Vec::new(),
                password_recipe: None,
                tags: Vec::new(),
                url: None,
            },
            via: None,
        });
        let e = client.request(&create).await.expect_err("not resent");
        assert!(e.message.contains("lost the connection"), "{}", e.message);
        assert_eq!(seen.accepts.load(Ordering::SeqCst), 2);
        assert_eq!(seen.requests.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn an_older_daemon_gets_one_request_per_connection() {
        let dir = tempfile::tempdir().unwrap();
        let (client, seen) = fake(dir.path(), Fake::Old);
        for _ in 0..3 {
            assert!(done(client.request(&Request::Status).await));
        }
        assert_eq!(
            *seen.preambles.lock().unwrap(),
            vec![
                PREAMBLE_REUSE,
                PREAMBLE_PLAIN,
                PREAMBLE_PLAIN,
                PREAMBLE_PLAIN
            ]
        );
    }

    #[tokio::test]
    async fn nothing_is_sent_to_a_socket_in_a_directory_others_can_enter() {
        let dir = tempfile::tempdir().unwrap();
        let (client, seen) = fake(dir.path(), Fake::Serve);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = client.request(&Request::Status).await.expect_err("refused");
        assert_eq!(e.code, ErrorCode::PermissionDenied);
        assert_eq!(seen.accepts.load(Ordering::SeqCst), 0);
    }
}

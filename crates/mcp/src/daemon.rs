//! Talking to op-sessiond from the MCP process: one request per connection, as the CLI does.
//!
//! Owns the socket checks (the socket's directory must be ours and private, so nothing is sent
//! to a socket another user planted), the framing (see the protocol crate's walk-through) and
//! a bound on how long one request may take, so an agent never hangs on a stuck daemon.
//! Holds no credential; response buffers that may hold values are wiped on drop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use op_session_protocol::{
    ErrorBody, ErrorCode, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, PREAMBLE_PLAIN, Request, Response,
    decode_response, encode_request, frame,
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
}

fn unavailable(message: String) -> ErrorBody {
    ErrorBody::new(ErrorCode::Busy, message).with_fix(
        "start the daemon (`op-session status` starts it), then retry; `op-session status` shows whether it runs",
    )
}

impl DaemonClient {
    /// A client for the daemon at `socket`.
    pub fn new(socket: PathBuf) -> Self {
        DaemonClient { socket }
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
        if let Some(dir) = self.socket.parent()
            && let Err(e) = op_session_paths::verify_private_dir(dir)
        {
            return Err(ErrorBody::new(
                ErrorCode::PermissionDenied,
                format!("cannot use {}: {e}", self.socket.display()),
            )
            .with_fix("fix the directory as the message says"));
        }
        let mut stream = UnixStream::connect(&self.socket).await.map_err(|e| {
            unavailable(format!(
                "op-sessiond is not running at {} ({e})",
                self.socket.display()
            ))
        })?;
        let lost = |e: &dyn std::fmt::Display| {
            unavailable(format!("lost the connection to op-sessiond: {e}"))
        };
        let payload = encode_request(req).map_err(|e| lost(&e))?;
        let framed = frame::encode(&payload, MAX_REQUEST_FRAME).map_err(|e| {
            ErrorBody::new(ErrorCode::BadRequest, format!("request too large: {e}"))
                .with_fix("send fewer or shorter references")
        })?;
        let mut out = Zeroizing::new(Vec::with_capacity(framed.len() + 1));
        out.push(PREAMBLE_PLAIN);
        out.extend_from_slice(&framed);
        stream.write_all(&out).await.map_err(|e| lost(&e))?;
        let body = frame::read_frame_async(&mut stream, MAX_RESPONSE_FRAME)
            .await
            .map_err(|e| lost(&e))?;
        let resp = decode_response(&body).map_err(|e| lost(&e))?;
        if let Response::Error(e) = &resp
            && e.code == ErrorCode::VersionMismatch
        {
            return Err(ErrorBody::new(
                ErrorCode::VersionMismatch,
                "op-sessiond speaks another protocol than this op-session mcp",
            )
            .with_fix(
                "restart the daemon with the matching version: `op-session stop`, then retry",
            ));
        }
        Ok(resp)
    }
}

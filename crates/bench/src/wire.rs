//! Speaking the protocol from inside the bench process, without starting `op-session`: one
//! connection, the plain preamble, one request frame, one response frame (what
//! `client/src/conn.rs` does); or one reused connection carrying request after request (what
//! the MCP server does).
//!
//! Used to tell the daemon's share of a request from the client process's start-up cost, and
//! to drive cached reads from many threads for the throughput figure. Never prints a value.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, Result, bail};
use op_session_protocol::{
    MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, PREAMBLE_REUSE, Request, ResolvePurpose, ResolveRequest,
    Response, decode_response, encode_request, fdpass, frame,
};

/// A request for one cached reference, as `op-session read REF` sends it.
pub fn read_request(reference: &str) -> Request {
    Request::Resolve(ResolveRequest {
        account: None,
        refs: vec![reference.to_string()],
        no_cache: false,
        purpose: ResolvePurpose::Read,
        ..ResolveRequest::default()
    })
}

/// The request's bytes on the wire after the preamble.
pub fn framed(req: &Request) -> Result<Vec<u8>> {
    let payload = encode_request(req).context("encoding the request")?;
    Ok(frame::encode(&payload, MAX_REQUEST_FRAME)
        .context("framing the request")?
        .to_vec())
}

/// One round trip on a fresh connection.
pub fn round_trip(socket: &Path, framed_request: &[u8]) -> Result<Response> {
    let mut stream = UnixStream::connect(socket).context("connecting")?;
    fdpass::send_request(stream.as_fd(), None, framed_request).context("sending the request")?;
    let payload = frame::read_only_frame(&mut stream, MAX_RESPONSE_FRAME).context("reading")?;
    decode_response(&payload).context("decoding the response")
}

/// A connection that carries one request after another (the reuse preamble).
pub struct Reused {
    stream: UnixStream,
    opened: bool,
}

impl Reused {
    /// Connect; the preamble goes with the first request.
    pub fn connect(socket: &Path) -> Result<Reused> {
        Ok(Reused {
            stream: UnixStream::connect(socket).context("connecting")?,
            opened: false,
        })
    }

    /// One round trip on this connection.
    pub fn round_trip(&mut self, framed_request: &[u8]) -> Result<Response> {
        if self.opened {
            self.stream
                .write_all(framed_request)
                .context("sending the request")?;
        } else {
            let mut first = Vec::with_capacity(framed_request.len() + 1);
            first.push(PREAMBLE_REUSE);
            first.extend_from_slice(framed_request);
            self.stream
                .write_all(&first)
                .context("sending the request")?;
            self.opened = true;
        }
        let payload =
            frame::read_only_frame(&mut self.stream, MAX_RESPONSE_FRAME).context("reading")?;
        decode_response(&payload).context("decoding the response")
    }

    /// A round trip that must come back as cached values.
    pub fn cached_read(&mut self, framed_request: &[u8]) -> Result<()> {
        all_cached(self.round_trip(framed_request)?)
    }
}

/// A round trip that must come back as values, every one of them from the cache.
pub fn cached_read(socket: &Path, framed_request: &[u8]) -> Result<()> {
    all_cached(round_trip(socket, framed_request)?)
}

fn all_cached(resp: Response) -> Result<()> {
    match resp {
        Response::Values(v) if v.values.iter().all(|x| x.cached) => Ok(()),
        Response::Values(_) => bail!("the daemon resolved a value that should have been cached"),
        Response::Error(e) => bail!("{}: {}", e.code.as_str(), e.message),
        _ => bail!("unexpected response"),
    }
}

/// The pid the daemon at `socket` reports, if one answers within two seconds.
pub fn daemon_pid(socket: &Path) -> Option<i32> {
    let req = framed(&Request::Status).ok()?;
    let mut stream = UnixStream::connect(socket).ok()?;
    let limit = Some(std::time::Duration::from_secs(2));
    stream.set_read_timeout(limit).ok()?;
    stream.set_write_timeout(limit).ok()?;
    fdpass::send_preamble(stream.as_fd(), None).ok()?;
    stream.write_all(&req).ok()?;
    let payload = frame::read_frame(&mut stream, MAX_RESPONSE_FRAME).ok()?;
    match decode_response(&payload).ok()? {
        Response::Status(s) => i32::try_from(s.pid).ok(),
        _ => None,
    }
}

/// A round trip that must come back as a status report.
pub fn status(socket: &Path, framed_request: &[u8]) -> Result<()> {
    match round_trip(socket, framed_request)? {
        Response::Status(_) => Ok(()),
        Response::Error(e) => bail!("{}: {}", e.code.as_str(), e.message),
        _ => bail!("unexpected response"),
    }
}

//! One client connection: the preamble, the request frame, the response frame.
//!
//! Owns reading with a deadline (a slow or silent client is dropped, never waited on forever),
//! the frame size cap, and taking passed descriptors with `recvmsg` before any buffered read
//! (a buffered reader would silently drop them). Frame buffers are zeroized after use.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use op_session_protocol::{ClientEvent, FrameError, MAX_REQUEST_FRAME, Response, fdpass, frame};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::UnixStream;
use zeroize::Zeroizing;

/// Read the one-byte preamble and any descriptors sent with it.
pub(crate) async fn read_preamble(stream: &UnixStream) -> io::Result<(u8, Vec<OwnedFd>)> {
    loop {
        stream.readable().await?;
        match stream.try_io(Interest::READABLE, || fdpass::recv_preamble(stream.as_fd())) {
            Ok(v) => return Ok(v),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Read one frame (request cap).
pub(crate) async fn read_frame(stream: &mut UnixStream) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    frame::read_frame_async(stream, MAX_REQUEST_FRAME).await
}

/// Read a client event (during a passthrough). `Ok(None)` means the client hung up.
pub(crate) async fn read_event(stream: &mut UnixStream) -> Result<Option<ClientEvent>, FrameError> {
    match read_frame(stream).await {
        Ok(p) => op_session_protocol::decode_event(&p).map(Some),
        Err(FrameError::Closed) | Err(FrameError::Truncated) => Ok(None),
        Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset => Ok(None),
        Err(e) => Err(e),
    }
}

/// Write one response frame.
pub(crate) async fn write_response(
    stream: &mut UnixStream,
    resp: &Response,
) -> Result<(), FrameError> {
    let payload = op_session_protocol::encode_response(resp)?;
    let frame = frame::encode(&payload, op_session_protocol::MAX_RESPONSE_FRAME)?;
    stream.write_all(&frame).await?;
    stream.flush().await?;
    Ok(())
}

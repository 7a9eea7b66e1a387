//! One client connection: the preamble, the request frame, the response frame.
//!
//! Owns reading with a deadline (a slow or silent client is dropped, never waited on forever),
//! the frame size cap, and taking passed descriptors with `recvmsg` before any buffered read
//! (a buffered reader would silently drop them). Frame buffers are zeroized after use.
//!
//! Every read and write tries the socket first and asks tokio to wait only when it would
//! block. A client sends its whole request before the daemon accepts it, but tokio learns a
//! new stream's readiness only on the reactor's next turn: waiting for it first cost every
//! request one more `epoll_wait` and wake-up (docs/BENCHMARKS.md, issue 23). Waiting goes
//! through `try_io`, which clears tokio's readiness on `EAGAIN`, so a stale "ready" never
//! spins.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use op_session_protocol::{ClientEvent, FrameError, MAX_REQUEST_FRAME, Response, fdpass, frame};
use tokio::io::Interest;
use tokio::net::UnixStream;
use zeroize::Zeroizing;

/// Run `op` on the socket now; if it would block, wait for `interest` and run it again.
async fn now_or_ready<T>(
    stream: &UnixStream,
    interest: Interest,
    mut op: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            other => return other,
        }
    }
    when_ready(stream, interest, op).await
}

/// Wait for `interest` and run `op`, again until it does not block. tokio's readiness may be
/// stale (a read that went straight to the socket does not clear it); `try_io` clears it when
/// `op` finds nothing, so the next wait is a real one.
async fn when_ready<T>(
    stream: &UnixStream,
    interest: Interest,
    mut op: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    loop {
        stream.ready(interest).await?;
        match stream.try_io(interest, &mut op) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            other => return other,
        }
    }
}

/// One `recv` into `buf` (0 at end of stream).
fn recv_now(stream: &UnixStream, buf: &mut [u8]) -> io::Result<usize> {
    recv_with(stream, buf, 0)
}

/// One `recv` into `buf` with `flags` besides `MSG_DONTWAIT` (`MSG_PEEK` to look without
/// taking); never waits.
pub(crate) fn recv_with(
    stream: &UnixStream,
    buf: &mut [u8],
    flags: libc::c_int,
) -> io::Result<usize> {
    // SAFETY: buf is live and writable for its length for the duration of the call.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | flags,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// The start of a reused connection's next request: the first of its header's bytes, as soon
/// as any arrive (0 when the client closed instead). This is the idle wait between requests,
/// kept apart from [`read_frame_after`] so the frame's short deadline never counts idle time.
///
/// Unlike the other reads it asks tokio first: between requests the socket is usually empty,
/// and a first try would only find that out with one more `recv`.
pub(crate) async fn next_request(stream: &UnixStream, header: &mut [u8; 4]) -> io::Result<usize> {
    when_ready(stream, Interest::READABLE, || {
        recv_now(stream, &mut header[..])
    })
    .await
}

/// Fill `buf`; the bytes read before the end of the stream.
async fn fill(stream: &UnixStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = now_or_ready(stream, Interest::READABLE, || {
            recv_now(stream, &mut buf[got..])
        })
        .await?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// Read the one-byte preamble and any descriptors sent with it.
pub(crate) async fn read_preamble(stream: &UnixStream) -> io::Result<(u8, Vec<OwnedFd>)> {
    now_or_ready(stream, Interest::READABLE, || {
        fdpass::recv_preamble(stream.as_fd())
    })
    .await
}

/// Read one request frame: [`frame::read_frame_async`]'s checks (the cap and the empty frame
/// before any allocation; `Closed` between frames, `Truncated` inside one), socket first.
pub(crate) async fn read_frame(stream: &UnixStream) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    read_frame_after(stream, [0u8; 4], 0).await
}

/// [`read_frame`] for a frame whose first `got` header bytes are already in `header`.
pub(crate) async fn read_frame_after(
    stream: &UnixStream,
    mut header: [u8; 4],
    got: usize,
) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let got = got.min(4);
    match got + fill(stream, &mut header[got..]).await? {
        0 => return Err(FrameError::Closed),
        4 => {}
        _ => return Err(FrameError::Truncated),
    }
    let len = frame::payload_len(header, MAX_REQUEST_FRAME)?;
    let mut payload = Zeroizing::new(vec![0u8; len]);
    if fill(stream, &mut payload).await? < len {
        return Err(FrameError::Truncated);
    }
    Ok(payload)
}

/// Read a client event (during a passthrough). `Ok(None)` means the client hung up.
pub(crate) async fn read_event(stream: &mut UnixStream) -> Result<Option<ClientEvent>, FrameError> {
    match frame::read_frame_async(stream, MAX_REQUEST_FRAME).await {
        Ok(p) => op_session_protocol::decode_event(&p).map(Some),
        Err(FrameError::Closed) | Err(FrameError::Truncated) => Ok(None),
        Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset => Ok(None),
        Err(e) => Err(e),
    }
}

/// Write one response frame.
pub(crate) async fn write_response(stream: &UnixStream, resp: &Response) -> Result<(), FrameError> {
    let payload = op_session_protocol::encode_response(resp)?;
    let frame = frame::encode(&payload, op_session_protocol::MAX_RESPONSE_FRAME)?;
    let mut rest = &frame[..];
    while !rest.is_empty() {
        let n = now_or_ready(stream, Interest::WRITABLE, || send_now(stream, rest)).await?;
        if n == 0 {
            return Err(FrameError::Io(io::ErrorKind::WriteZero.into()));
        }
        rest = &rest[n..];
    }
    Ok(())
}

/// One `send` of `buf` (never SIGPIPE: a vanished client is `EPIPE`).
fn send_now(stream: &UnixStream, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is live and readable for its length for the duration of the call.
    let n = unsafe {
        libc::send(
            stream.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | fdpass::NO_SIGPIPE,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use op_session_protocol::{ErrorBody, ErrorCode, MAX_RESPONSE_FRAME, PREAMBLE_PLAIN};
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    /// Every wait in these tests ends here.
    const DEADLINE: Duration = Duration::from_secs(10);

    /// A request that trickles in a byte at a time takes the waiting path for every piece
    /// (the socket is tried first, finds nothing, then tokio waits): it must still be read
    /// whole, without spinning and without losing a byte.
    #[tokio::test]
    async fn a_request_that_arrives_a_byte_at_a_time_is_read_whole() {
        let (mut client, daemon) = UnixStream::pair().expect("pair");
        let payload = br#"{"version":2,"type":"status"}"#;
        let framed = frame::encode(payload, MAX_REQUEST_FRAME).expect("frame");
        let writer = tokio::spawn(async move {
            let mut bytes = vec![PREAMBLE_PLAIN];
            bytes.extend_from_slice(&framed);
            for b in bytes {
                client.write_all(&[b]).await.expect("write");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            client
        });
        let read = async {
            let (pre, fds) = read_preamble(&daemon).await.map_err(FrameError::Io)?;
            let got = read_frame(&daemon).await?;
            Ok::<_, FrameError>((pre, fds.len(), got))
        };
        let (pre, fds, got) = tokio::time::timeout(DEADLINE, read)
            .await
            .expect("read within the deadline")
            .expect("read");
        assert_eq!((pre, fds), (PREAMBLE_PLAIN, 0));
        assert_eq!(&got[..], &payload[..]);
        drop(
            tokio::time::timeout(DEADLINE, writer)
                .await
                .expect("writer done within the deadline")
                .expect("writer"),
        );
    }

    /// A client that leaves mid-frame, or between frames, gets the same errors the async
    /// frame reader gives.
    #[tokio::test]
    async fn a_client_that_leaves_mid_frame_is_truncated_and_between_frames_closed() {
        for (sent, want) in [
            (&[][..], "Closed"),
            (&[0, 0][..], "Truncated"),
            (&[0, 0, 0, 9, b'{'][..], "Truncated"),
            (&[0, 0, 0, 0][..], "Empty"),
            (&[0xff, 0, 0, 0][..], "TooLarge"),
        ] {
            let (mut client, daemon) = UnixStream::pair().expect("pair");
            client.write_all(sent).await.expect("write");
            drop(client);
            let err = tokio::time::timeout(DEADLINE, read_frame(&daemon))
                .await
                .expect("answer within the deadline")
                .expect_err("refused");
            assert!(format!("{err:?}").starts_with(want), "{sent:?}: {err:?}");
        }
    }

    /// An answer larger than the socket's buffer fills it, waits for the client to read, and
    /// arrives whole.
    #[tokio::test]
    async fn an_answer_larger_than_the_socket_buffer_arrives_whole() {
        let (mut client, daemon) = UnixStream::pair().expect("pair");
        let message = "x".repeat(4 * 1024 * 1024);
        let resp = Response::Error(ErrorBody::new(ErrorCode::BadRequest, message.clone()));
        let writer = tokio::spawn(async move {
            write_response(&daemon, &resp).await.expect("write");
        });
        // Let the writer fill the buffer and wait before anything is read.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let got = tokio::time::timeout(
            DEADLINE,
            frame::read_frame_async(&mut client, MAX_RESPONSE_FRAME),
        )
        .await
        .expect("read within the deadline")
        .expect("frame");
        match op_session_protocol::decode_response(&got).expect("decode") {
            Response::Error(e) => assert_eq!(e.message, message),
            other => panic!("unexpected answer {other:?}"),
        }
        tokio::time::timeout(DEADLINE, writer)
            .await
            .expect("writer done within the deadline")
            .expect("writer");
    }
}

//! Length-prefixed frames: a 4-byte big-endian length, then the payload.
//!
//! The decoder is total: any byte string yields a frame, "need more bytes", or an error, never
//! a panic, and never an allocation larger than the cap (the length is checked before the
//! buffer is reserved). Buffers are [`Zeroizing`] because a frame may carry a token or a value.

use std::io::{self, Read, Write};

use zeroize::Zeroizing;

/// Largest request frame a daemon accepts (64 KiB).
pub const MAX_REQUEST_FRAME: usize = 64 * 1024;
/// Largest response frame a client accepts (16 MiB: a batch of resolved values or files).
pub const MAX_RESPONSE_FRAME: usize = 16 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer announced a frame larger than allowed.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The cap in force.
        max: usize,
    },
    /// A zero-length frame: never valid JSON.
    #[error("empty frame")]
    Empty,
    /// The connection ended before a whole frame arrived.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The connection ended cleanly between frames.
    #[error("connection closed")]
    Closed,
    /// The payload was not the JSON this protocol expects.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The socket failed.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
}

/// Check a 4-byte header against the cap; return the payload length.
pub fn payload_len(header: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// Build one frame (header plus payload).
pub fn encode(payload: &[u8], max: usize) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    if payload.is_empty() {
        return Err(FrameError::Empty);
    }
    if payload.len() > max {
        return Err(FrameError::TooLarge {
            len: payload.len(),
            max,
        });
    }
    let mut out = Zeroizing::new(Vec::with_capacity(payload.len() + 4));
    // The length fits: max is far below u32::MAX and was checked above.
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Try to take one frame from the front of `buf`.
///
/// `Ok(None)` means more bytes are needed; `Ok(Some((payload, consumed)))` is a whole frame.
pub fn decode(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(header) = buf.get(..4) else {
        return Ok(None);
    };
    let mut h = [0u8; 4];
    h.copy_from_slice(header);
    let len = payload_len(h, max)?;
    match buf.get(4..4 + len) {
        Some(payload) => Ok(Some((payload, 4 + len))),
        None => Ok(None),
    }
}

/// Read one whole frame from a blocking reader.
pub fn read_frame<R: Read>(r: &mut R, max: usize) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut header = [0u8; 4];
    read_header(r, &mut header)?;
    let len = payload_len(header, max)?;
    let mut payload = Zeroizing::new(vec![0u8; len]);
    r.read_exact(&mut payload).map_err(payload_error)?;
    Ok(payload)
}

/// Read the one frame a peer sends and then stops (a request's answer): the header and up to
/// 4 KiB of payload in one `read`, so a small answer costs one system call, not two
/// (docs/BENCHMARKS.md, issue 23). The checks are [`read_frame`]'s. Never for a stream of
/// frames: bytes after the frame are read and dropped.
pub fn read_only_frame<R: Read>(r: &mut R, max: usize) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut first = Zeroizing::new([0u8; 4096]);
    let got = read_header(r, &mut first[..])?;
    let len = payload_len([first[0], first[1], first[2], first[3]], max)?;
    let have = (got - 4).min(len);
    let mut payload = Zeroizing::new(vec![0u8; len]);
    payload[..have].copy_from_slice(&first[4..4 + have]);
    r.read_exact(&mut payload[have..]).map_err(payload_error)?;
    Ok(payload)
}

/// Read into `buf` (at least 4 bytes long) until it holds a whole header; the bytes read.
fn read_header<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, FrameError> {
    let mut got = 0;
    while got < 4 {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Err(ended(got)),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(got)
}

/// Read one whole frame from an async reader: the same checks as [`read_frame`] (the cap and
/// the empty frame before any allocation), for the daemon and the MCP server.
#[cfg(feature = "tokio")]
pub async fn read_frame_async<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut header[got..]).await {
            Ok(0) => return Err(ended(got)),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let len = payload_len(header, max)?;
    let mut payload = Zeroizing::new(vec![0u8; len]);
    r.read_exact(&mut payload).await.map_err(payload_error)?;
    Ok(payload)
}

/// The connection ended after `got` header bytes: cleanly between frames, or mid-frame.
fn ended(got: usize) -> FrameError {
    if got == 0 {
        FrameError::Closed
    } else {
        FrameError::Truncated
    }
}

/// A failed payload read: the peer went away mid-frame, or the socket failed.
fn payload_error(e: io::Error) -> FrameError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        FrameError::Truncated
    } else {
        FrameError::Io(e)
    }
}

/// Write one whole frame to a blocking writer.
pub fn write_frame<W: Write>(w: &mut W, payload: &[u8], max: usize) -> Result<(), FrameError> {
    let frame = encode(payload, max)?;
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(payload in proptest::collection::vec(any::<u8>(), 1..2048)) {
            let frame = encode(&payload, MAX_REQUEST_FRAME).expect("encodes");
            let (got, used) = decode(&frame, MAX_REQUEST_FRAME).expect("decodes").expect("whole");
            prop_assert_eq!(got, &payload[..]);
            prop_assert_eq!(used, frame.len());
            let mut r = &frame[..];
            let only = read_only_frame(&mut r, MAX_REQUEST_FRAME).expect("reads");
            prop_assert_eq!(&only[..], &payload[..]);
            let mut r = &frame[..];
            let read = read_frame(&mut r, MAX_REQUEST_FRAME).expect("reads");
            prop_assert_eq!(&read[..], &payload[..]);
        }

        #[test]
        fn truncated_frames_need_more_or_fail(payload in proptest::collection::vec(any::<u8>(), 1..512), cut in 0usize..516) {
            let frame = encode(&payload, MAX_REQUEST_FRAME).expect("encodes");
            let cut = cut.min(frame.len() - 1);
            prop_assert!(decode(&frame[..cut], MAX_REQUEST_FRAME).expect("no error").is_none());
            let mut r = &frame[..cut];
            let err = read_frame(&mut r, MAX_REQUEST_FRAME).expect_err("truncated");
            prop_assert!(matches!(err, FrameError::Truncated | FrameError::Closed));
            let mut r = &frame[..cut];
            let err = read_only_frame(&mut r, MAX_REQUEST_FRAME).expect_err("truncated");
            prop_assert!(matches!(err, FrameError::Truncated | FrameError::Closed));
        }

        #[test]
        fn the_only_frame_reader_takes_frames_past_its_first_read(payload in proptest::collection::vec(any::<u8>(), 4000..12000)) {
            let mut frame = encode(&payload, MAX_REQUEST_FRAME).expect("encodes").to_vec();
            frame.extend_from_slice(b"trailing");
            let mut r = &frame[..];
            let got = read_only_frame(&mut r, MAX_REQUEST_FRAME).expect("reads");
            prop_assert_eq!(&got[..], &payload[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = decode(&bytes, MAX_REQUEST_FRAME);
            let mut r = &bytes[..];
            let _ = read_frame(&mut r, MAX_REQUEST_FRAME);
            let mut r = &bytes[..];
            let _ = read_only_frame(&mut r, MAX_REQUEST_FRAME);
        }

        #[test]
        fn oversized_lengths_are_refused_before_allocating(len in (MAX_REQUEST_FRAME as u32 + 1)..u32::MAX) {
            let mut bytes = len.to_be_bytes().to_vec();
            bytes.extend_from_slice(b"{}");
            let err = decode(&bytes, MAX_REQUEST_FRAME).expect_err("too large");
            let is_too_large = matches!(err, FrameError::TooLarge { .. });
            prop_assert!(is_too_large);
        }
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn the_async_reader_checks_as_the_blocking_one_does() {
        let frame = encode(b"{}", MAX_REQUEST_FRAME).expect("encodes");
        let mut r = &frame[..];
        let got = read_frame_async(&mut r, MAX_REQUEST_FRAME)
            .await
            .expect("reads");
        assert_eq!(&got[..], b"{}");
        for (bytes, want) in [
            (&[][..], "Closed"),
            (&[0, 0][..], "Truncated"),
            (&[0, 0, 0, 0][..], "Empty"),
            (&[0, 0, 0, 3, b'{'][..], "Truncated"),
            (&[0xff, 0, 0, 0][..], "TooLarge"),
        ] {
            let mut r = bytes;
            let err = read_frame_async(&mut r, MAX_REQUEST_FRAME)
                .await
                .expect_err("refused");
            assert!(format!("{err:?}").starts_with(want), "{bytes:?}: {err:?}");
            let mut r = bytes;
            let err = read_frame(&mut r, MAX_REQUEST_FRAME).expect_err("refused");
            assert!(format!("{err:?}").starts_with(want), "{bytes:?}: {err:?}");
            let mut r = bytes;
            let err = read_only_frame(&mut r, MAX_REQUEST_FRAME).expect_err("refused");
            assert!(format!("{err:?}").starts_with(want), "{bytes:?}: {err:?}");
        }
    }

    #[test]
    fn empty_frames_are_refused() {
        assert!(matches!(
            decode(&[0, 0, 0, 0], MAX_REQUEST_FRAME),
            Err(FrameError::Empty)
        ));
        assert!(matches!(encode(b"", 10), Err(FrameError::Empty)));
    }
}

//! The connection preamble: one byte, optionally carrying stdin, stdout and stderr as
//! `SCM_RIGHTS`.
//!
//! Both functions take a raw socket and do one `sendmsg`/`recvmsg`. The daemon calls
//! [`recv_preamble`] on its non-blocking socket inside tokio's `async_io`, so `EAGAIN` is
//! returned as [`std::io::ErrorKind::WouldBlock`]. Received descriptors are close-on-exec
//! (`MSG_CMSG_CLOEXEC` on Linux; `fcntl` elsewhere) and owned, so they close when dropped.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

use crate::{PREAMBLE_FDS, PREAMBLE_PLAIN};

/// How many descriptors a passthrough carries: stdin, stdout, stderr.
pub const PASSED_FDS: usize = 3;

/// Send the preamble byte, with `fds` attached if given.
pub fn send_preamble(sock: BorrowedFd<'_>, fds: Option<[RawFd; PASSED_FDS]>) -> io::Result<()> {
    send_request(sock, fds, &[])
}

/// Send the preamble byte (with `fds` attached if given) and `framed`, a whole request frame,
/// in one `sendmsg`: one system call and one message for the daemon to read instead of two
/// (docs/BENCHMARKS.md, issue 23). The daemon reads the byte and the descriptors first either
/// way; whatever of the frame the socket did not take at once is written after.
pub fn send_request(
    sock: BorrowedFd<'_>,
    fds: Option<[RawFd; PASSED_FDS]>,
    framed: &[u8],
) -> io::Result<()> {
    let byte = [if fds.is_some() {
        PREAMBLE_FDS
    } else {
        PREAMBLE_PLAIN
    }];
    let iov = [IoSlice::new(&byte), IoSlice::new(framed)];
    let iov = if framed.is_empty() {
        &iov[..1]
    } else {
        &iov[..]
    };
    let sent = match &fds {
        Some(fds) => {
            let cmsg = [ControlMessage::ScmRights(fds)];
            sendmsg::<()>(sock.as_raw_fd(), iov, &cmsg, MsgFlags::empty(), None)
        }
        None => sendmsg::<()>(sock.as_raw_fd(), iov, &[], MsgFlags::empty(), None),
    }
    .map_err(io::Error::from)?;
    if sent == 0 {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "preamble not sent",
        ));
    }
    // A stream socket may take less than the whole message; the rest goes in order after it.
    let mut rest = &framed[sent - 1..];
    while !rest.is_empty() {
        // SAFETY: rest points at live bytes of the stated length for the duration of the call.
        let n = unsafe {
            libc::send(
                sock.as_raw_fd(),
                rest.as_ptr().cast(),
                rest.len(),
                NO_SIGPIPE,
            )
        };
        match n {
            n if n > 0 => rest = &rest[n as usize..],
            0 => return Err(io::Error::new(io::ErrorKind::WriteZero, "request not sent")),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// `send` flags that make a vanished peer an `EPIPE` error, never SIGPIPE: `MSG_NOSIGNAL`
/// where the platform has it (the daemon's writes use it too).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const NO_SIGPIPE: libc::c_int = libc::MSG_NOSIGNAL;
/// `send` flags that make a vanished peer an `EPIPE` error: none here (the process ignores
/// SIGPIPE instead).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub const NO_SIGPIPE: libc::c_int = 0;

/// Room for the most descriptors one message can carry on Linux (`SCM_MAX_FD`), so a client
/// that sends more than a request takes cannot make the kernel truncate the control data.
const MAX_FDS_PER_MESSAGE: usize = 253;

/// Receive the preamble: the byte and any descriptors that came with it.
///
/// Every descriptor the kernel installed is owned (and closed on drop) before anything else is
/// checked, on every path: a client that sends more descriptors than a request takes, or
/// control data that came truncated (`MSG_CTRUNC`), cannot leak descriptors into the daemon.
/// The control messages are walked with the C macros directly because nix refuses to iterate
/// them at all when `MSG_CTRUNC` is set, which left the descriptors that did arrive unowned.
///
/// Returns `UnexpectedEof` if the peer closed before sending anything, and `InvalidData` (with
/// the descriptors already closed) when the control data was truncated.
pub fn recv_preamble(sock: BorrowedFd<'_>) -> io::Result<(u8, Vec<OwnedFd>)> {
    let mut byte = [0u8; 1];
    // u64 words keep the control buffer aligned for cmsghdr.
    let space =
        // SAFETY: CMSG_SPACE is a pure size computation.
        unsafe { libc::CMSG_SPACE((MAX_FDS_PER_MESSAGE * std::mem::size_of::<RawFd>()) as u32) }
            as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: an all-zero msghdr is a valid empty header; the fields are filled below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = (cbuf.len() * 8) as _;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = libc::MSG_CMSG_CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = 0;
    // SAFETY: msg points at live buffers of the stated sizes for the duration of the call.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: the kernel filled msg_control with well-formed cmsghdrs up to msg_controllen;
    // the CMSG macros stay within that length.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let header = libc::CMSG_LEN(0) as usize;
                let count =
                    ((*c).cmsg_len as usize).saturating_sub(header) / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    // The kernel just installed this descriptor in our table for us; nothing
                    // else owns it.
                    let owned = OwnedFd::from_raw_fd(fd);
                    #[cfg(not(any(target_os = "linux", target_os = "android")))]
                    {
                        use nix::fcntl::{FcntlArg, FdFlag, fcntl};
                        let _ = fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
                    }
                    fds.push(owned);
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before preamble",
        ));
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        drop(fds);
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "too many descriptors in preamble",
        ));
    }
    Ok((byte[0], fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn passes_three_descriptors_and_a_plain_byte() {
        let (a, b) = UnixStream::pair().expect("pair");
        let (mut p_r, p_w) = UnixStream::pair().expect("pipe-ish pair");
        let fds = [p_w.as_raw_fd(), p_w.as_raw_fd(), p_w.as_raw_fd()];
        send_preamble(a.as_fd(), Some(fds)).expect("send");
        let (byte, got) = recv_preamble(b.as_fd()).expect("recv");
        assert_eq!(byte, PREAMBLE_FDS);
        assert_eq!(got.len(), 3);
        let mut w = UnixStream::from(got.into_iter().nth(1).expect("stdout fd"));
        w.write_all(b"hi").expect("write via passed fd");
        let mut buf = [0u8; 2];
        p_r.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, b"hi");

        send_preamble(a.as_fd(), None).expect("send plain");
        let (byte, got) = recv_preamble(b.as_fd()).expect("recv plain");
        assert_eq!(byte, PREAMBLE_PLAIN);
        assert!(got.is_empty());
        drop(a);
        let err = recv_preamble(b.as_fd()).expect_err("eof");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_request_sent_in_one_message_reads_as_preamble_then_frame() {
        let (a, mut b) = UnixStream::pair().expect("pair");
        let (_keep, p_w) = UnixStream::pair().expect("pair");
        let fds = [p_w.as_raw_fd(); 3];
        let framed = crate::frame::encode(b"{\"x\":1}", 1024).expect("frame");
        send_request(a.as_fd(), Some(fds), &framed).expect("send");
        let (byte, got) = recv_preamble(b.as_fd()).expect("recv");
        assert_eq!(byte, PREAMBLE_FDS);
        assert_eq!(got.len(), 3);
        let payload = crate::frame::read_frame(&mut b, 1024).expect("frame");
        assert_eq!(&payload[..], b"{\"x\":1}");

        // A frame larger than the socket buffer still arrives whole, in order.
        let big = vec![b'a'; 1 << 20];
        let framed = crate::frame::encode(&big, 2 << 20).expect("frame");
        // Every wait has a deadline: a reader left without its bytes fails instead of hanging.
        b.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        let reader = std::thread::spawn(move || {
            let (byte, _) = recv_preamble(b.as_fd()).expect("recv");
            let payload = crate::frame::read_frame(&mut b, 2 << 20).expect("frame");
            (byte, payload.len())
        });
        send_request(a.as_fd(), None, &framed).expect("send big");
        assert_eq!(reader.join().expect("reader"), (PREAMBLE_PLAIN, 1 << 20));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn extra_descriptors_are_owned_and_closed() {
        let (a, b) = UnixStream::pair().expect("pair");
        let (keep, _other) = UnixStream::pair().expect("pair");
        let fds = [keep.as_raw_fd(); 16];
        let byte = [PREAMBLE_FDS];
        let iov = [IoSlice::new(&byte)];
        sendmsg::<()>(
            a.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .expect("send 16");
        let (_, got) = recv_preamble(b.as_fd()).expect("recv");
        // Every descriptor the kernel installed is owned (so dropping closes it); the daemon's
        // fd count under a flood is checked end to end in tests/tests/attacks.rs.
        assert_eq!(got.len(), 16, "every descriptor is owned");
    }
}

//! The connection preamble: one byte, optionally carrying stdin, stdout and stderr as
//! `SCM_RIGHTS`.
//!
//! Both functions take a raw socket and do one `sendmsg`/`recvmsg`. The daemon calls
//! [`recv_preamble`] on its non-blocking socket inside tokio's `async_io`, so `EAGAIN` is
//! returned as [`std::io::ErrorKind::WouldBlock`]. Received descriptors are close-on-exec
//! (`MSG_CMSG_CLOEXEC` on Linux; `fcntl` elsewhere) and owned, so they close when dropped.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

use crate::{PREAMBLE_FDS, PREAMBLE_PLAIN};

/// How many descriptors a passthrough carries: stdin, stdout, stderr.
pub const PASSED_FDS: usize = 3;

/// Send the preamble byte, with `fds` attached if given.
pub fn send_preamble(sock: BorrowedFd<'_>, fds: Option<[RawFd; PASSED_FDS]>) -> io::Result<()> {
    let byte = [if fds.is_some() {
        PREAMBLE_FDS
    } else {
        PREAMBLE_PLAIN
    }];
    let iov = [IoSlice::new(&byte)];
    let sent = match &fds {
        Some(fds) => {
            let cmsg = [ControlMessage::ScmRights(fds)];
            sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        }
        None => sendmsg::<()>(sock.as_raw_fd(), &iov, &[], MsgFlags::empty(), None),
    }
    .map_err(io::Error::from)?;
    if sent != 1 {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "preamble not sent",
        ));
    }
    Ok(())
}

/// Receive the preamble: the byte and any descriptors that came with it.
///
/// Returns `UnexpectedEof` if the peer closed before sending anything.
pub fn recv_preamble(sock: BorrowedFd<'_>) -> io::Result<(u8, Vec<OwnedFd>)> {
    let mut byte = [0u8; 1];
    let mut cmsg_buf = nix::cmsg_space!([RawFd; PASSED_FDS]);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = MsgFlags::MSG_CMSG_CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = MsgFlags::empty();
    let mut iov = [IoSliceMut::new(&mut byte)];
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg_buf), flags)
        .map_err(io::Error::from)?;
    let mut fds = Vec::new();
    let truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            for fd in raw {
                // SAFETY: the kernel just installed this descriptor in our table for us; nothing
                // else owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                #[cfg(not(any(target_os = "linux", target_os = "android")))]
                {
                    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
                    let _ = fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
                }
                fds.push(owned);
            }
        }
    }
    let bytes = msg.bytes;
    if bytes == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before preamble",
        ));
    }
    if truncated {
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
}

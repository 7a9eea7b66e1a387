//! Taking the listening socket from launchd (macOS), the counterpart of systemd's
//! `LISTEN_FDS` in [`crate::socket`].
//!
//! Owns one call: `launch_activate_socket(3)` with the name of the socket in the LaunchAgent's
//! `Sockets` dictionary ([`SOCKET_NAME`], the same name `op-session service install` writes
//! into `com.op-session.op-sessiond.plist`). launchd created and bound that socket at
//! `SockPathName` with `SockPathMode` 0600; it stays launchd's, so the daemon adopts it the same
//! way as a systemd socket ([`crate::socket::adopt`]): never unlinked, lock still taken.
//!
//! Call it after hardening (closing stray descriptors must not touch what libxpc opens for the
//! call) and before the tokio runtime starts. On every other platform it answers `None`.

use std::os::fd::RawFd;

/// The key of our socket in the plist's `Sockets` dictionary.
pub const SOCKET_NAME: &str = "Listener";

/// The descriptors launchd holds for us under [`SOCKET_NAME`], or `None` when we were not
/// started by launchd for that socket (a manual or auto-started daemon, where launchd answers
/// `ESRCH` or `ENOENT`). The descriptors are marked close-on-exec so `op` children never
/// inherit the listener.
#[cfg(target_os = "macos")]
pub fn activated_sockets() -> Option<Vec<RawFd>> {
    use libc::{c_char, c_int, size_t};

    // From <launch.h> (libSystem, macOS 10.10+).
    unsafe extern "C" {
        fn launch_activate_socket(
            name: *const c_char,
            fds: *mut *mut c_int,
            cnt: *mut size_t,
        ) -> c_int;
    }

    // Must match SOCKET_NAME; a C literal so no allocation and no NUL check are needed.
    let name = c"Listener";
    debug_assert_eq!(name.to_bytes(), SOCKET_NAME.as_bytes());
    let mut fds: *mut c_int = std::ptr::null_mut();
    let mut cnt: size_t = 0;
    // SAFETY: `name` is NUL-terminated; `fds` and `cnt` are valid out-pointers. On success
    // launchd stores a malloc'ed array of `cnt` descriptors in `fds`, which we copy and free.
    let rc = unsafe { launch_activate_socket(name.as_ptr(), &mut fds, &mut cnt) };
    if rc != 0 {
        return None;
    }
    let mut out = Vec::new();
    if !fds.is_null() {
        // SAFETY: on success `fds` points to `cnt` initialised ints (see above).
        out.extend_from_slice(unsafe { std::slice::from_raw_parts(fds, cnt) });
        // SAFETY: the array was allocated by launchd with malloc and is ours to free, once.
        unsafe { libc::free(fds.cast()) };
    }
    for &fd in &out {
        // SAFETY: fcntl on a descriptor launchd just handed to us; no memory is involved.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    (!out.is_empty()).then_some(out)
}

/// Not macOS: launchd never starts us.
#[cfg(not(target_os = "macos"))]
pub fn activated_sockets() -> Option<Vec<RawFd>> {
    None
}

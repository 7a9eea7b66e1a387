//! Process hardening at start: no ptrace or core dumps, no inherited descriptors, default
//! signal handling. Owns the record of which protections took hold, for `status`.
//!
//! Runs before the tokio runtime starts (closing descriptors or changing signal state under a
//! running runtime would break it). Every step is best effort and reported, never fatal: a
//! daemon that could not drop dumpability still serves, and says so.

use std::os::fd::RawFd;

use op_session_protocol::Protections;

/// Apply every protection; `keep` are descriptors that must survive (activation sockets, the
/// readiness pipe).
pub fn harden(keep: &[RawFd]) -> Protections {
    let mut p = Protections {
        peer_uid_checked: true,
        ..Protections::default()
    };
    p.core_dumps_disabled = disable_core_dumps();
    p.ptrace_disabled = disable_ptrace();
    p.signals_reset = reset_signals();
    p.stray_fds_closed = close_stray_fds(keep);
    raise_fd_limit();
    p
}

/// Raise the soft descriptor limit to the hard one (capped): each client connection and each
/// `op` child's pipes cost descriptors, and the usual soft limit of 1024 is below what
/// `max_connections` plus their children need.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let want = hard.min(65536);
        if soft < want {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, want, hard);
        }
    }
}

fn disable_core_dumps() -> bool {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    setrlimit(Resource::RLIMIT_CORE, 0, 0).is_ok()
        && matches!(getrlimit(Resource::RLIMIT_CORE), Ok((0, 0)))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn disable_ptrace() -> bool {
    nix::sys::prctl::set_dumpable(false).is_ok()
        && matches!(nix::sys::prctl::get_dumpable(), Ok(false))
}

#[cfg(target_os = "macos")]
fn disable_ptrace() -> bool {
    // PT_DENY_ATTACH: refuse debuggers for the rest of the process's life.
    // SAFETY: ptrace(PT_DENY_ATTACH) takes no pointers and only affects this process.
    unsafe { libc::ptrace(libc::PT_DENY_ATTACH, 0, std::ptr::null_mut(), 0) == 0 }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
fn disable_ptrace() -> bool {
    false
}

/// Default dispositions for every catchable signal and an empty mask, except SIGPIPE, which
/// stays ignored: a client that hangs up must give us EPIPE, not kill the daemon.
fn reset_signals() -> bool {
    use nix::sys::signal::{
        SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask,
    };
    let mut ok = true;
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        let handler = if sig == Signal::SIGPIPE {
            SigHandler::SigIgn
        } else {
            SigHandler::SigDfl
        };
        let action = SigAction::new(handler, SaFlags::empty(), SigSet::empty());
        // SAFETY: installing SIG_DFL/SIG_IGN runs no code of ours in signal context, and no
        // other thread exists yet.
        if unsafe { sigaction(sig, &action) }.is_err() {
            ok = false;
        }
    }
    ok && sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).is_ok()
}

/// Close every descriptor above stderr that is not in `keep`.
fn close_stray_fds(keep: &[RawFd]) -> bool {
    let mut open: Vec<RawFd> = Vec::new();
    match std::fs::read_dir("/proc/self/fd").or_else(|_| std::fs::read_dir("/dev/fd")) {
        Ok(dir) => {
            for entry in dir.flatten() {
                if let Some(fd) = entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<RawFd>().ok())
                {
                    open.push(fd);
                }
            }
            // The directory's own descriptor was in the listing and is closed now; closing it
            // again below just fails with EBADF.
        }
        Err(_) => {
            let max = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map(|(soft, _)| soft.min(65536) as RawFd)
                .unwrap_or(1024);
            open.extend(3..max);
        }
    }
    for fd in open {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: nothing in this process owns these descriptors yet (we run before any
            // file, socket or runtime is opened); they were inherited by accident.
            unsafe {
                libc::close(fd);
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn core_dump_limit_can_be_lowered() {
        // Lowering RLIMIT_CORE is always permitted; this runs in the test process, which is fine.
        assert!(super::disable_core_dumps());
    }
}

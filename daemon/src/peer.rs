//! Who is on the other end of a connection.
//!
//! Owns the uid check (`SO_PEERCRED` / `getpeereid` through tokio) and, for the audit record,
//! the peer's executable and parent chain. The uid check is the only access control the socket
//! has beyond its directory's mode; it runs on every connection before anything is read.

use tokio::net::UnixStream;

/// The peer of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its pid, where the platform reports one.
    pub pid: Option<i32>,
    /// Its effective uid.
    pub uid: u32,
}

/// Read the peer's credentials.
pub fn peer_of(stream: &UnixStream) -> std::io::Result<Peer> {
    let cred = stream.peer_cred()?;
    Ok(Peer {
        pid: cred.pid(),
        uid: cred.uid(),
    })
}

/// Whether the peer may talk to us: the same uid as the daemon.
pub fn allowed(peer: &Peer, our_uid: u32) -> bool {
    peer.uid == our_uid
}

pub use op_session_protocol::audit::ProcessInfo;

/// The peer's executable and up to `depth` ancestors, nearest first. Best effort (Linux
/// `/proc`); empty where unavailable.
pub fn ancestry(pid: i32, depth: usize) -> Vec<ProcessInfo> {
    let mut out = Vec::new();
    let mut cur = pid;
    while cur > 1 && out.len() <= depth {
        out.push(ProcessInfo {
            pid: cur,
            exe: exe_of(cur),
        });
        match parent_pid(cur) {
            Some(p) => cur = p,
            None => break,
        }
    }
    out
}

fn parent_pid(pid: i32) -> Option<i32> {
    stat_of(pid).map(|(ppid, _)| ppid)
}

/// `(ppid, start time)` from `/proc/<pid>/stat`.
fn stat_of(pid: i32) -> Option<(i32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces; fields follow the last ')'.
    let rest: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    // After ')': state is field 3, ppid 4, starttime 22.
    Some((rest.get(1)?.parse().ok()?, rest.get(19)?.parse().ok()?))
}

/// A process's start time (clock ticks since boot), which tells it apart from a later
/// process given the same pid.
pub fn start_time(pid: i32) -> Option<u64> {
    stat_of(pid).map(|(_, start)| start)
}

/// Ancestor chains, remembered per (pid, start time): an agent's tool calls are fresh
/// processes, but their parents (the agent, its shell) are the same for hours, so each request
/// reads only its own peer's `/proc` entries. The start time guards against pid reuse.
#[derive(Debug, Default)]
pub struct AncestryCache {
    chains: std::sync::Mutex<std::collections::HashMap<(i32, u64), Vec<ProcessInfo>>>,
}

impl AncestryCache {
    /// Most chains kept; the map is cleared when full (agents reuse few parents).
    const MAX: usize = 1024;

    /// Like [`ancestry`], reusing the chain above the peer's parent when it is known.
    pub fn of(&self, pid: i32, depth: usize) -> Vec<ProcessInfo> {
        let exe = exe_of(pid);
        let mut out = vec![ProcessInfo { pid, exe }];
        let Some((ppid, _)) = stat_of(pid) else {
            return out;
        };
        if ppid <= 1 || depth == 0 {
            return out;
        }
        let Some((_, pstart)) = stat_of(ppid) else {
            return out;
        };
        let mut map = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(chain) = map.get(&(ppid, pstart)) {
            out.extend(chain.iter().cloned());
            return out;
        }
        drop(map);
        let chain = ancestry(ppid, depth.saturating_sub(1));
        map = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert((ppid, pstart), chain.clone());
        out.extend(chain);
        out
    }
}

/// The peer's executable and ancestors, read when the connection is accepted: the client is
/// still waiting for its answer then, so it cannot have exited (a quick client that got its
/// answer first used to leave an empty record). Where the kernel has `SO_PEERPIDFD` (Linux
/// 6.5+), the pidfd is checked after `/proc` was read, so a pid recycled in between is never
/// recorded as the peer: such a record names no executable.
pub fn identify(stream: &UnixStream, pid: i32, cache: &AncestryCache) -> Vec<ProcessInfo> {
    let pidfd = peer_pidfd(stream);
    let chain = cache.of(pid, 6);
    match pidfd {
        Some(fd) if !pidfd_alive(&fd) => Vec::new(),
        _ => chain,
    }
}

#[cfg(target_os = "linux")]
fn peer_pidfd(stream: &UnixStream) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    const SO_PEERPIDFD: libc::c_int = 77;
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: fd and len are valid out-pointers of the sizes getsockopt expects.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&mut fd as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    // SAFETY: on success the kernel installed a new pidfd that only we own.
    (rc == 0 && fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

#[cfg(not(target_os = "linux"))]
fn peer_pidfd(_stream: &UnixStream) -> Option<std::os::fd::OwnedFd> {
    None
}

#[cfg(target_os = "linux")]
fn pidfd_alive(fd: &std::os::fd::OwnedFd) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal with signal 0 only checks the target; the pointer may be null.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
fn pidfd_alive(_fd: &std::os::fd::OwnedFd) -> bool {
    true
}

fn exe_of(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .or_else(|_| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|s| s.trim().to_string())
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestry_starts_with_ourselves() {
        let me = std::process::id() as i32;
        let chain = ancestry(me, 3);
        if std::path::Path::new("/proc/self/stat").exists() {
            assert_eq!(chain.first().map(|p| p.pid), Some(me));
            assert!(chain.len() >= 2);
        }
    }

    #[test]
    fn the_cache_gives_the_same_chain_as_a_fresh_walk() {
        let me = std::process::id() as i32;
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let cache = AncestryCache::default();
        let fresh: Vec<i32> = ancestry(me, 4).iter().map(|p| p.pid).collect();
        let first: Vec<i32> = cache.of(me, 4).iter().map(|p| p.pid).collect();
        let second: Vec<i32> = cache.of(me, 4).iter().map(|p| p.pid).collect();
        assert_eq!(first, fresh);
        assert_eq!(second, fresh);
        assert_eq!(cache.chains.lock().expect("lock").len(), 1);
    }

    #[test]
    fn other_uids_are_refused() {
        let p = Peer {
            pid: Some(1),
            uid: 1000,
        };
        assert!(allowed(&p, 1000));
        assert!(!allowed(&p, 0));
    }
}

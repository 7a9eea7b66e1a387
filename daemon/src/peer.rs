//! Who is on the other end of a connection.
//!
//! Owns the uid check (`SO_PEERCRED` / `getpeereid` through tokio) and, for the audit record,
//! the peer's executable and parent chain. The uid check is the only access control the socket
//! has beyond its directory's mode; it runs on every connection before anything is read.

use tokio::net::UnixStream;

/// The peer of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Peer {
    /// Its pid, where the platform reports one.
    pub pid: Option<i32>,
    /// Its effective uid.
    pub uid: u32,
}

/// Read the peer's credentials.
pub(crate) fn peer_of(stream: &UnixStream) -> std::io::Result<Peer> {
    let cred = stream.peer_cred()?;
    Ok(Peer {
        pid: cred.pid(),
        uid: cred.uid(),
    })
}

/// Whether the peer may talk to us: the same uid as the daemon.
pub(crate) fn allowed(peer: &Peer, our_uid: u32) -> bool {
    peer.uid == our_uid
}

pub(crate) use op_session_protocol::audit::ProcessInfo;

/// The peer's executable and up to `depth` ancestors, nearest first. Best effort (Linux
/// `/proc`); empty where unavailable.
pub(crate) fn ancestry(pid: i32, depth: usize) -> Vec<ProcessInfo> {
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

/// A small `/proc` file in one `read` (open, read, close): `read_to_string` asks for the
/// size first (0 for `/proc` files) and then reads in growing steps, about eight system calls
/// for a `stat` line, and the kernel formats the whole line again for each read.
fn read_proc(path: &str) -> Option<String> {
    use std::io::Read;
    let mut buf = [0u8; 1024];
    let mut f = std::fs::File::open(path).ok()?;
    let n = f.read(&mut buf).ok()?;
    if n == buf.len() {
        // Longer than we expect of a `stat` line: read the rest the ordinary way.
        let mut rest = Vec::new();
        f.read_to_end(&mut rest).ok()?;
        let mut all = buf.to_vec();
        all.extend(rest);
        return String::from_utf8(all).ok();
    }
    String::from_utf8(buf[..n].to_vec()).ok()
}

/// `(ppid, start time)` from `/proc/<pid>/stat`.
fn stat_of(pid: i32) -> Option<(i32, u64)> {
    let stat = read_proc(&format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may contain spaces; fields follow the last ')'.
    let rest: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    // After ')': state is field 3, ppid 4, starttime 22.
    Some((rest.get(1)?.parse().ok()?, rest.get(19)?.parse().ok()?))
}

/// A process's start time (clock ticks since boot), which tells it apart from a later
/// process given the same pid.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    stat_of(pid).map(|(_, start)| start)
}

/// Ancestor chains, remembered per (pid, start time): an agent's tool calls are fresh
/// processes, but their parents (the agent, its shell) are the same for hours, so each request
/// reads only its own peer's `/proc` entries. The start time guards against pid reuse.
///
/// Whole identities (the peer and its chain) are remembered too, per peer process: a
/// long-lived client (`op-session mcp`, a script holding a loop) connects again and again,
/// and then its `/proc` entries are not read again at all. That entry's key is the pid and
/// the process's birth ([`Born`]), so a recycled pid never finds an old entry; it is used only
/// while `/proc` still shows the executable it remembers (an `execve` keeps pid and birth);
/// and [`identify`] still checks the pidfd after it.
#[derive(Debug, Default)]
pub struct AncestryCache {
    chains: std::sync::Mutex<std::collections::HashMap<(i32, Born), Vec<ProcessInfo>>>,
    peers: std::sync::Mutex<std::collections::HashMap<(i32, Born), Vec<ProcessInfo>>>,
}

/// Which process a pid names, told apart from any later process given the same pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Born {
    /// The inode of its pidfd (pidfs, Linux 6.9+): unique per process for the whole boot.
    Pidfs(u64),
    /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    Ticks(u64),
}

impl AncestryCache {
    /// Most chains kept; the map is cleared when full (agents reuse few parents).
    const MAX: usize = 1024;

    /// Like [`ancestry`], reusing the chain above the peer's parent when it is known.
    pub fn of(&self, pid: i32, depth: usize) -> Vec<ProcessInfo> {
        let exe = exe_of(pid);
        self.walk(pid, exe, stat_of(pid).map(|(ppid, _)| ppid), depth)
    }

    /// The peer `pid` born `born` (or, without that, read from `/proc`): its remembered
    /// identity while its executable is unchanged, else a fresh [`AncestryCache::of`].
    pub fn identity(&self, pid: i32, born: Option<Born>, depth: usize) -> Vec<ProcessInfo> {
        self.identity_of(pid, born, || None, depth)
    }

    /// [`AncestryCache::identity`], asking `parent` for the peer's parent pid (from its pidfd,
    /// [`pidfd_parent`]) only when the identity is not remembered: then the peer's
    /// `/proc/<pid>/stat` is not read at all.
    fn identity_of(
        &self,
        pid: i32,
        born: Option<Born>,
        parent: impl FnOnce() -> Option<i32>,
        depth: usize,
    ) -> Vec<ProcessInfo> {
        let exe = exe_of(pid);
        let (stat, born) = match born {
            Some(b) => (None, b),
            None => {
                let stat = stat_of(pid);
                match stat {
                    Some((_, start)) => (stat, Born::Ticks(start)),
                    None => return vec![ProcessInfo { pid, exe }],
                }
            }
        };
        {
            let map = self.peers.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(chain) = map.get(&(pid, born))
                && chain.first().is_some_and(|p| p.exe == exe)
            {
                return chain.clone();
            }
        }
        let ppid = parent().or_else(|| stat.or_else(|| stat_of(pid)).map(|(ppid, _)| ppid));
        let chain = self.walk(pid, exe, ppid, depth);
        let mut map = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert((pid, born), chain.clone());
        chain
    }

    /// The peer (`exe` already read, parent `ppid`) and its ancestors, through the chain
    /// cache.
    fn walk(&self, pid: i32, exe: String, ppid: Option<i32>, depth: usize) -> Vec<ProcessInfo> {
        let mut out = vec![ProcessInfo { pid, exe }];
        let Some(ppid) = ppid else {
            return out;
        };
        if ppid <= 1 || depth == 0 {
            return out;
        }
        let Some(pborn) = born_of(ppid) else {
            return out;
        };
        let mut map = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(chain) = map.get(&(ppid, pborn)) {
            out.extend(chain.iter().cloned());
            return out;
        }
        drop(map);
        let chain = ancestry(ppid, depth.saturating_sub(1));
        map = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert((ppid, pborn), chain.clone());
        out.extend(chain);
        out
    }
}

/// Which process `pid` names now: the inode of a pidfd opened for it where pidfds live on
/// pidfs (`pidfd_open`, `fstat`, `close`: no `/proc` path to walk and no `stat` line for the
/// kernel to format), else its start time from `/proc/<pid>/stat`.
fn born_of(pid: i32) -> Option<Born> {
    if let Some(ino) = pidfd_open(pid).as_ref().and_then(pidfs_inode) {
        return Some(Born::Pidfs(ino));
    }
    start_time(pid).map(Born::Ticks)
}

#[cfg(target_os = "linux")]
fn pidfd_open(pid: i32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: on success the kernel installed a new pidfd that only we own.
    (raw >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(raw as i32) })
}

#[cfg(not(target_os = "linux"))]
fn pidfd_open(_pid: i32) -> Option<std::os::fd::OwnedFd> {
    None
}

/// The parent pid of the process behind a pidfd, from `PIDFD_GET_INFO` (Linux 6.13+), without
/// `/proc`; `None` on older kernels and once the process has exited (the kernel answers
/// `ESRCH` then, so a second call is also a liveness check).
#[cfg(target_os = "linux")]
fn pidfd_parent(fd: &std::os::fd::OwnedFd) -> Option<i32> {
    use std::os::fd::AsRawFd;
    /// `struct pidfd_info` as of Linux 6.13 (`PIDFD_INFO_SIZE_VER0`, 64 bytes); the kernel
    /// fills as much of a newer struct as the caller's size says.
    #[repr(C)]
    #[derive(Default)]
    struct PidfdInfo {
        mask: u64,
        cgroupid: u64,
        pid: u32,
        tgid: u32,
        ppid: u32,
        ruid: u32,
        rgid: u32,
        euid: u32,
        egid: u32,
        suid: u32,
        sgid: u32,
        fsuid: u32,
        fsgid: u32,
        exit_code: i32,
    }
    const PIDFD_INFO_PID: u64 = 1;
    /// `_IOWR(PIDFS_IOCTL_MAGIC = 0xFF, 11, struct pidfd_info)` from linux/pidfd.h.
    const PIDFD_GET_INFO: libc::c_ulong =
        (3 << 30) | ((std::mem::size_of::<PidfdInfo>() as libc::c_ulong) << 16) | (0xFF << 8) | 11;
    let mut info = PidfdInfo {
        mask: PIDFD_INFO_PID,
        ..PidfdInfo::default()
    };
    // SAFETY: info is a live, writable struct of the size the request number encodes.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), PIDFD_GET_INFO as _, &mut info) };
    (rc == 0 && info.mask & PIDFD_INFO_PID != 0).then_some(info.ppid as i32)
}

#[cfg(not(target_os = "linux"))]
fn pidfd_parent(_fd: &std::os::fd::OwnedFd) -> Option<i32> {
    None
}

/// The peer's executable and ancestors, read when the connection is accepted: the client is
/// still waiting for its answer then, so it cannot have exited (a quick client that got its
/// answer first used to leave an empty record). Where the kernel has `SO_PEERPIDFD` (Linux
/// 6.5+), the pidfd is checked after `/proc` was read, so a pid recycled in between is never
/// recorded as the peer: such a record names no executable. Where the pidfd lives on pidfs
/// (Linux 6.9+), its inode tells this process from any other that had the pid, so the peer's
/// identity is remembered per process (see [`AncestryCache`]).
///
/// Where the kernel has `PIDFD_GET_INFO` (Linux 6.13+), the parent pid of a peer not yet
/// remembered comes from the pidfd, so a fresh process costs one `/proc` read (its `exe`)
/// instead of three; the check after the reads is then that call again: it fails once the peer is gone, and a parent that changed
/// while we read means the peer was reparented (its parent died), so only the peer itself is
/// recorded, never a chain that was not its own.
pub(crate) fn identify(stream: &UnixStream, pid: i32, cache: &AncestryCache) -> Vec<ProcessInfo> {
    let pidfd = peer_pidfd(stream);
    let born = pidfd.as_ref().and_then(pidfs_inode).map(Born::Pidfs);
    let mut parent = None;
    let mut chain = cache.identity_of(
        pid,
        born,
        || {
            parent = pidfd.as_ref().and_then(pidfd_parent);
            parent
        },
        6,
    );
    match (pidfd, parent) {
        (Some(fd), Some(parent)) => match pidfd_parent(&fd) {
            None => Vec::new(),
            Some(now) if now != parent => {
                chain.truncate(1);
                chain
            }
            Some(_) => chain,
        },
        (Some(fd), None) if !pidfd_alive(&fd) => Vec::new(),
        _ => chain,
    }
}

/// The inode of a pidfd when it lives on pidfs, where the kernel numbers each process's
/// inode uniquely for the whole boot (64-bit inode numbers are never reused); `None` on
/// older kernels, whose pidfds all share one anonymous inode.
#[cfg(target_os = "linux")]
fn pidfs_inode(fd: &std::os::fd::OwnedFd) -> Option<u64> {
    use std::os::fd::AsRawFd;
    /// `PIDFS_MAGIC` from linux/magic.h.
    const PIDFS_MAGIC: i64 = 0x5049_4446;
    static ON_PIDFS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let on_pidfs = *ON_PIDFS.get_or_init(|| {
        // SAFETY: statfs is plain data; fstatfs fills it for a valid descriptor.
        let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: fd is an open descriptor and sfs a valid out-pointer.
        let rc = unsafe { libc::fstatfs(fd.as_raw_fd(), &mut sfs) };
        rc == 0 && sfs.f_type as i64 == PIDFS_MAGIC && std::mem::size_of::<libc::ino_t>() == 8
    });
    if !on_pidfs {
        return None;
    }
    // SAFETY: stat is plain data; fstat fills it for a valid descriptor.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is an open descriptor and st a valid out-pointer.
    let rc = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) };
    (rc == 0).then_some(st.st_ino as u64)
}

#[cfg(not(target_os = "linux"))]
fn pidfs_inode(_fd: &std::os::fd::OwnedFd) -> Option<u64> {
    None
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
            read_proc(&format!("/proc/{pid}/comm"))
                .map(|s| s.trim().to_string())
                .ok_or(())
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

    fn exes(chain: &[ProcessInfo]) -> Vec<(i32, String)> {
        chain.iter().map(|p| (p.pid, p.exe.clone())).collect()
    }

    #[test]
    fn a_remembered_identity_is_served_only_to_the_same_process_and_executable() {
        let me = std::process::id() as i32;
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let cache = AncestryCache::default();
        let fresh = exes(&cache.of(me, 4));
        let born = Born::Pidfs(7);
        assert_eq!(exes(&cache.identity(me, Some(born), 4)), fresh);
        // Plant a different chain under this process's key: a hit must serve it (so the
        // cache is really used) ...
        let mut planted = cache.identity(me, Some(born), 4);
        planted.push(ProcessInfo {
            pid: 4242,
            exe: "/planted".into(),
        });
        cache
            .peers
            .lock()
            .expect("lock")
            .insert((me, born), planted.clone());
        assert_eq!(exes(&cache.identity(me, Some(born), 4)), exes(&planted));
        // ... but never to another process that got the same pid (another birth) ...
        assert_eq!(exes(&cache.identity(me, Some(Born::Pidfs(8)), 4)), fresh);
        assert_eq!(exes(&cache.identity(me, None, 4)), fresh);
        // ... nor after the process ran another executable.
        planted[0].exe = "/bin/was-something-else".into();
        cache
            .peers
            .lock()
            .expect("lock")
            .insert((me, born), planted);
        assert_eq!(exes(&cache.identity(me, Some(born), 4)), fresh);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_pidfd_inode_names_one_process() {
        let (a, _b) = UnixStream::pair().expect("pair");
        let (Some(fd1), Some(fd2)) = (peer_pidfd(&a), peer_pidfd(&a)) else {
            return; // no SO_PEERPIDFD on this kernel
        };
        let (Some(i1), Some(i2)) = (pidfs_inode(&fd1), pidfs_inode(&fd2)) else {
            return; // pidfds are not on pidfs here: the start time is the key
        };
        assert_eq!(i1, i2, "two pidfds of one process share its inode");
        // A child's pidfd (another process) has another inode.
        let child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn");
        let mut child = child;
        if let Some(fd) = pidfd_open(child.id() as i32) {
            assert_ne!(pidfs_inode(&fd), Some(i1));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_pidfd_names_the_parent_as_proc_does() {
        let (a, _b) = UnixStream::pair().expect("pair");
        let Some(fd) = peer_pidfd(&a) else {
            return; // no SO_PEERPIDFD on this kernel
        };
        let Some(parent) = pidfd_parent(&fd) else {
            return; // no PIDFD_GET_INFO on this kernel (before 6.13)
        };
        let me = std::process::id() as i32;
        assert_eq!(Some(parent), stat_of(me).map(|(ppid, _)| ppid));
        // The chain through the pidfd's parent is the one /proc gives.
        let cache = AncestryCache::default();
        let via_pidfd = exes(&cache.identity_of(me, None, || Some(parent), 4));
        assert_eq!(via_pidfd, exes(&AncestryCache::default().of(me, 4)));
        // A process that has exited answers nothing: the check after the reads fails.
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let cfd = pidfd_open(child.id() as i32);
        let _ = child.wait();
        if let Some(cfd) = cfd {
            assert_eq!(pidfd_parent(&cfd), None);
        }
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

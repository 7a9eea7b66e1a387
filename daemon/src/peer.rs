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

/// One process in a peer's ancestry, for audit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcessInfo {
    /// Pid.
    pub pid: i32,
    /// Executable path (or the process name when the path is unreadable).
    pub exe: String,
}

/// The peer's executable and up to `depth` ancestors, nearest first. Best effort (Linux
/// `/proc`); empty where unavailable.
pub fn ancestry(pid: i32, depth: usize) -> Vec<ProcessInfo> {
    let mut out = Vec::new();
    let mut cur = pid;
    while cur > 1 && out.len() <= depth {
        let exe = std::fs::read_link(format!("/proc/{cur}/exe"))
            .map(|p| p.display().to_string())
            .or_else(|_| {
                std::fs::read_to_string(format!("/proc/{cur}/comm")).map(|s| s.trim().to_string())
            })
            .unwrap_or_default();
        out.push(ProcessInfo { pid: cur, exe });
        match parent_pid(cur) {
            Some(p) => cur = p,
            None => break,
        }
    }
    out
}

fn parent_pid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces; fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
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
    fn other_uids_are_refused() {
        let p = Peer {
            pid: Some(1),
            uid: 1000,
        };
        assert!(allowed(&p, 1000));
        assert!(!allowed(&p, 0));
    }
}

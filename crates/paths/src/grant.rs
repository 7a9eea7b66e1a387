//! Where grant sockets live, and how a client knows a socket is (or was) a grant's.
//!
//! A grant opened without `--grant-socket` gets `<daemon socket dir>/grants/<name>/agent.sock`
//! ([`grant_socket`]); one opened with `--grant-socket PATH` lives at `PATH`, and the daemon
//! leaves a marker beside it ([`grant_marker`], `PATH.grant`, empty, 0600) that outlives the
//! grant. [`is_grant_socket`] reads both, so a client pointed at a grant socket never
//! auto-starts a daemon on it: once the grant ends, its callers get "unavailable", not a fresh,
//! empty daemon serving the path the grant's holder was told to use.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::SOCKET_NAME;

/// The directory, beside the daemon's socket, that holds one directory per grant.
pub const GRANTS_DIR: &str = "grants";

/// The directory holding every grant directory of the daemon at `daemon_socket`.
#[must_use]
pub fn grants_dir(daemon_socket: &Path) -> PathBuf {
    daemon_socket
        .parent()
        .unwrap_or(Path::new("/"))
        .join(GRANTS_DIR)
}

/// The socket of grant `name` of the daemon at `daemon_socket`, in a directory of its own.
#[must_use]
pub fn grant_socket(daemon_socket: &Path, name: &str) -> PathBuf {
    grants_dir(daemon_socket).join(name).join(SOCKET_NAME)
}

/// The marker the daemon leaves beside a grant socket it opened at a path of the person's
/// choosing (`PATH` → `PATH.grant`).
#[must_use]
pub fn grant_marker(socket: &Path) -> PathBuf {
    let mut name: OsString = socket.file_name().map(OsString::from).unwrap_or_default();
    name.push(".grant");
    socket.with_file_name(name)
}

/// Whether `socket` is, or was, a grant's: it has the shape [`grant_socket`] gives, or its
/// [`grant_marker`] exists.
#[must_use]
pub fn is_grant_socket(socket: &Path) -> bool {
    let in_layout = socket.file_name().is_some_and(|n| n == SOCKET_NAME)
        && socket
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .is_some_and(|n| n == GRANTS_DIR);
    in_layout || grant_marker(socket).symlink_metadata().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_and_the_marker_both_say_grant() {
        let main = Path::new("/run/user/1000/op-session/agent.sock");
        let g = grant_socket(main, "sub");
        assert_eq!(
            g,
            Path::new("/run/user/1000/op-session/grants/sub/agent.sock")
        );
        assert!(is_grant_socket(&g));
        assert!(!is_grant_socket(main));

        let dir = tempfile::tempdir().expect("dir");
        let elsewhere = dir.path().join("g.sock");
        assert!(!is_grant_socket(&elsewhere));
        assert_eq!(grant_marker(&elsewhere), dir.path().join("g.sock.grant"));
        std::fs::write(grant_marker(&elsewhere), b"").expect("marker");
        assert!(is_grant_socket(&elsewhere));
    }
}

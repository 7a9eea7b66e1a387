//! Where op-session keeps things, and the checks that make those places safe.
//!
//! Owns: the socket path search order, the private-directory check (lstat: a real directory,
//! owned by us, no group or other bits), the `sun_path` length limit, the config, state and
//! lock locations, and the grant sockets' layout ([`grant_socket`], [`is_grant_socket`]). Used
//! by the daemon (which creates and verifies) and the client (which verifies before it sends
//! anything secret). Never follows a symlink for a directory it
//! vouches for.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

mod grant;
mod write;
pub use grant::{GRANTS_DIR, grant_marker, grant_socket, grants_dir, is_grant_socket};
pub use write::write_atomic;

/// The environment variable that names the socket.
pub const ENV_SOCKET: &str = "OPSESSION_SOCKET";
/// The environment variable that names the config file.
pub const ENV_CONFIG: &str = "OPSESSION_CONFIG";
/// Socket file name inside the runtime directory.
pub const SOCKET_NAME: &str = "agent.sock";

/// The person's session, as a program they run needs it: where their files are, the locale
/// and time zone, and how to reach the desktop and its session bus. Both the client's clean
/// auto-start of the daemon and the daemon's `op` children start from this list (each adds
/// what only it needs). Nothing that loads code (`LD_*`), chooses programs (`PATH`), redirects
/// traffic (proxies, CA bundles) or carries a credential is on it.
pub const SESSION_ENV: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "TZ",
    "TMPDIR",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "DBUS_SESSION_BUS_ADDRESS",
];

/// Prefixes of [`SESSION_ENV`] variables: the locale's categories and the XDG locations.
pub const SESSION_ENV_PREFIXES: &[&str] = &["LC_", "XDG_"];

/// Whether `name` belongs to the person's session environment ([`SESSION_ENV`]).
pub fn is_session_var(name: &str) -> bool {
    SESSION_ENV.contains(&name) || SESSION_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The fixed search path for `op` and for the environment of everything the daemon starts.
/// Never a caller's `PATH`: an agent that runs `PATH=/evil:$PATH op-session status` must not
/// choose the `op` that the person's next `op-session init` hands the password to. An `op`
/// elsewhere is named with `op_path` in the config.
#[cfg(target_os = "macos")]
pub const SYSTEM_PATH: &str = "/usr/local/bin:/opt/homebrew/bin:/usr/bin:/bin:/usr/sbin:/sbin";
/// See the macOS variant.
#[cfg(not(target_os = "macos"))]
pub const SYSTEM_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

/// Longest socket path the platform accepts, without the terminating NUL.
#[cfg(target_os = "linux")]
pub const MAX_SOCKET_PATH: usize = 107;
/// Longest socket path the platform accepts, without the terminating NUL.
#[cfg(not(target_os = "linux"))]
pub const MAX_SOCKET_PATH: usize = 103;

/// Why a path cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// The directory exists but is not safe to hold the socket.
    #[error("refusing {path}: {reason}; fix: {fix}")]
    Insecure {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// What to do.
        fix: String,
    },
    /// The socket path does not fit in `sun_path`.
    #[error(
        "socket path {path} is {len} bytes, over this platform's {max}-byte limit for Unix sockets; fix: set --socket or OPSESSION_SOCKET to a shorter path"
    )]
    TooLong {
        /// The path.
        path: PathBuf,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// No home directory to derive a default from.
    #[error("HOME is not set; fix: set HOME or pass an explicit path")]
    NoHome,
    /// A filesystem call failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// The socket path: `explicit`, else `$OPSESSION_SOCKET`, else
/// `$XDG_RUNTIME_DIR/op-session/agent.sock`, else `/run/user/<uid>/op-session/agent.sock` when
/// that runtime directory exists and is private (ours, 0700: what logind makes), else
/// `$TMPDIR/op-session-<uid>/agent.sock` (`/tmp` when TMPDIR is unset).
///
/// The `/run/user/<uid>` step is what lets a program started with a trimmed environment (MCP
/// clients often pass only HOME, PATH, USER, SHELL, TERM and LOGNAME) find the same daemon as
/// the person's shell and the systemd user units, instead of auto-starting a second, empty one
/// under `/tmp`.
pub fn socket_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os(ENV_SOCKET).filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(rt) = env_path("XDG_RUNTIME_DIR") {
        return runtime_socket_path(&rt);
    }
    let uid = nix::unistd::geteuid().as_raw();
    if let Some(rt) = private_run_user(Path::new(RUN_USER), uid) {
        return runtime_socket_path(&rt);
    }
    let tmp = env_path("TMPDIR").unwrap_or_else(|| PathBuf::from("/tmp"));
    tmp.join(format!("op-session-{uid}")).join(SOCKET_NAME)
}

/// Where logind makes each user's runtime directory (`$XDG_RUNTIME_DIR` is `/run/user/<uid>`).
pub const RUN_USER: &str = "/run/user";

/// `<base>/<uid>` when it is a private directory of ours ([`verify_private_dir`]).
fn private_run_user(base: &Path, uid: u32) -> Option<PathBuf> {
    let dir = base.join(uid.to_string());
    verify_private_dir(&dir).ok().map(|()| dir)
}

/// `path` with its directory resolved (symlinks, `.` and `..`) and its own name kept: the one
/// form in which `[mcp] run_allow` rules and the programs a `run` asks for are compared, so
/// `/bin/sh` and `/usr/bin/sh` are the same program on a merged-/usr system while a rule for a
/// symlink's own name still names that symlink (and not whatever else points at its target).
/// A path whose directory does not resolve is returned as it is.
pub fn with_resolved_dir(path: &Path) -> PathBuf {
    match (path.parent().map(Path::canonicalize), path.file_name()) {
        (Some(Ok(dir)), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// The socket inside a runtime directory: `<runtime>/op-session/agent.sock`.
fn runtime_socket_path(runtime: &Path) -> PathBuf {
    runtime.join("op-session").join(SOCKET_NAME)
}

/// The socket systemd's user socket unit listens on, `%t/op-session/agent.sock`: `%t` is the
/// user manager's runtime directory, `$XDG_RUNTIME_DIR`, else `/run/user/<uid>`. It is the
/// clients' default [`socket_path`] wherever `XDG_RUNTIME_DIR` is set or `/run/user/<uid>`
/// exists, whatever else their environment holds.
pub fn systemd_socket_path() -> PathBuf {
    let runtime = env_path("XDG_RUNTIME_DIR")
        .unwrap_or_else(|| Path::new(RUN_USER).join(nix::unistd::getuid().as_raw().to_string()));
    runtime_socket_path(&runtime)
}

/// Check that `path` fits in `sun_path`.
pub fn check_socket_len(path: &Path) -> Result<(), PathError> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(PathError::TooLong {
            path: path.to_path_buf(),
            len,
            max: MAX_SOCKET_PATH,
        });
    }
    Ok(())
}

/// The single-instance lock that sits beside the socket (`agent.sock` → `agent.sock.lock`).
pub fn lock_path(socket: &Path) -> PathBuf {
    let mut name: OsString = socket.file_name().map(OsString::from).unwrap_or_default();
    name.push(".lock");
    socket.with_file_name(name)
}

/// Verify that `dir` is a real directory (not a symlink), owned by the effective uid, with no
/// group or other permission bits.
pub fn verify_private_dir(dir: &Path) -> Result<(), PathError> {
    let meta = fs::symlink_metadata(dir).map_err(|source| PathError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let uid = nix::unistd::geteuid().as_raw();
    if meta.file_type().is_symlink() {
        return Err(PathError::Insecure {
            path: dir.to_path_buf(),
            reason: "it is a symbolic link".into(),
            fix: format!(
                "remove the link and let op-session create the directory: rm {}",
                dir.display()
            ),
        });
    }
    if !meta.is_dir() {
        return Err(PathError::Insecure {
            path: dir.to_path_buf(),
            reason: "it is not a directory".into(),
            fix: format!(
                "remove it or choose another socket path: rm {}",
                dir.display()
            ),
        });
    }
    if meta.uid() != uid {
        return Err(PathError::Insecure {
            path: dir.to_path_buf(),
            reason: format!("it is owned by uid {}, not by you (uid {uid})", meta.uid()),
            fix: format!(
                "remove it (another user may have planted it) or choose another socket path: sudo rm -r {}",
                dir.display()
            ),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(PathError::Insecure {
            path: dir.to_path_buf(),
            reason: format!("its mode is {mode:04o}; other users could reach the socket"),
            fix: format!("chmod 700 {}", dir.display()),
        });
    }
    Ok(())
}

/// Create `dir` (and missing parents) with mode 0700 if it does not exist, then verify it.
///
/// Parents that already exist are left alone; only `dir` itself must be private.
pub fn ensure_private_dir(dir: &Path) -> Result<(), PathError> {
    match fs::symlink_metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut b = fs::DirBuilder::new();
            b.recursive(true).mode(0o700);
            match b.create(dir) {
                Ok(()) => {
                    // The umask may have narrowed it further; never wider. Make it exactly 0700.
                    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(
                        |source| PathError::Io {
                            path: dir.to_path_buf(),
                            source,
                        },
                    )?;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(PathError::Io {
                        path: dir.to_path_buf(),
                        source,
                    });
                }
            }
        }
        Err(source) => {
            return Err(PathError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    }
    verify_private_dir(dir)
}

fn home() -> Result<PathBuf, PathError> {
    env_path("HOME").ok_or(PathError::NoHome)
}

/// The config file: `explicit`, else `$OPSESSION_CONFIG`, else
/// `$XDG_CONFIG_HOME/op-session/config.toml`, else `~/.config/op-session/config.toml`.
pub fn config_path(explicit: Option<&Path>) -> Result<PathBuf, PathError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(ENV_CONFIG).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let base = match env_path("XDG_CONFIG_HOME") {
        Some(p) => p,
        None => home()?.join(".config"),
    };
    Ok(base.join("op-session").join("config.toml"))
}

/// The home directory the password database gives the current user (never `$HOME`): where the
/// daemon looks for its config when nobody named one with `--config`, so a caller's
/// environment cannot choose it.
pub fn passwd_home() -> Result<PathBuf, PathError> {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.dir)
        .filter(|d| d.is_absolute())
        .ok_or(PathError::NoHome)
}

/// The config file the daemon reads when not started with `--config`:
/// `<home from the password database>/.config/op-session/config.toml`. No variable
/// (`OPSESSION_CONFIG`, `XDG_CONFIG_HOME`, `HOME`) moves it: an auto-started daemon's
/// environment comes from whichever process started it, and that may be an agent.
pub fn standard_config_path() -> Result<PathBuf, PathError> {
    Ok(passwd_home()?
        .join(".config")
        .join("op-session")
        .join("config.toml"))
}

/// The state directory (audit log): `$XDG_STATE_HOME/op-session`, else
/// `~/.local/state/op-session`.
pub fn state_dir() -> Result<PathBuf, PathError> {
    let base = match env_path("XDG_STATE_HOME") {
        Some(p) => p,
        None => home()?.join(".local").join("state"),
    };
    Ok(base.join("op-session"))
}

/// The audit log path.
pub fn audit_path() -> Result<PathBuf, PathError> {
    Ok(state_dir()?.join("audit.jsonl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_run_user_dir_is_used_and_any_other_is_not() {
        let t = tempfile::tempdir().expect("tempdir");
        let uid = nix::unistd::geteuid().as_raw();
        assert_eq!(private_run_user(t.path(), uid), None, "absent");
        let d = t.path().join(uid.to_string());
        fs::create_dir(&d).expect("mkdir");
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).expect("chmod");
        assert_eq!(private_run_user(t.path(), uid), Some(d.clone()));
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(private_run_user(t.path(), uid), None, "not private");
        fs::remove_dir(&d).expect("rmdir");
        std::os::unix::fs::symlink(t.path(), &d).expect("symlink");
        assert_eq!(private_run_user(t.path(), uid), None, "a link");
    }

    #[test]
    fn creates_0700_and_refuses_wide_or_linked_dirs() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path().join("a/b/op-session");
        ensure_private_dir(&d).expect("created");
        let mode = fs::metadata(&d).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o700);
        ensure_private_dir(&d).expect("idempotent");

        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).expect("chmod");
        let err = ensure_private_dir(&d)
            .expect_err("0755 refused")
            .to_string();
        assert!(err.contains("0755") && err.contains("chmod 700"), "{err}");

        let link = t.path().join("link");
        std::os::unix::fs::symlink(&d, &link).expect("symlink");
        let err = verify_private_dir(&link)
            .expect_err("link refused")
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn socket_length_is_checked() {
        let long = PathBuf::from(format!("/{}", "x".repeat(200)));
        assert!(check_socket_len(&long).is_err());
        assert!(check_socket_len(Path::new("/run/user/1000/op-session/agent.sock")).is_ok());
    }

    #[test]
    fn lock_sits_beside_the_socket() {
        assert_eq!(
            lock_path(Path::new("/r/op-session/agent.sock")),
            PathBuf::from("/r/op-session/agent.sock.lock")
        );
    }
}

//! The listening socket: where it is, who may reach it, and that only one daemon serves it.
//!
//! Owns: creating/verifying the private directory, the single-instance lock beside the socket
//! (flock, held for the daemon's life), the connect-probe before a stale socket is unlinked,
//! binding with mode 0600, taking a socket from systemd (`LISTEN_FDS`), and removing the socket
//! file at exit only if we created it and it is still ours. Client auto-start, socket activation
//! and a manual start all go through [`acquire_lock`], so two daemons never serve one path.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use op_session_paths::{
    PathError, check_socket_len, ensure_private_dir, lock_path, verify_private_dir,
};

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The path or its directory is unusable.
    #[error(transparent)]
    Path(#[from] PathError),
    /// Another daemon holds the lock.
    #[error(
        "another op-sessiond{pid} is already serving {socket}; fix: use it (op-session status), or stop it first with `op-session stop`"
    )]
    AlreadyRunning {
        /// The socket.
        socket: PathBuf,
        /// " (pid N)" when the lock file names one.
        pid: String,
    },
    /// Something that is not a socket sits at the path.
    #[error("{0} exists and is not a socket; fix: remove it or choose another --socket")]
    NotASocket(PathBuf),
    /// A system call failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SocketError + 'a {
    move |source| SocketError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The held single-instance lock. Dropping it releases the lock.
#[derive(Debug)]
pub struct InstanceLock {
    lock: Flock<File>,
}

impl InstanceLock {
    /// Write our pid into the lock file (again after detaching: the pid that took the lock
    /// was the parent's, which exits).
    pub fn record_pid(&mut self) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom};
        self.lock.set_len(0)?;
        self.lock.seek(SeekFrom::Start(0))?;
        writeln!(&mut *self.lock, "{}", std::process::id())?;
        self.lock.flush()
    }
}

/// Take the lock beside `socket` without waiting, and write our pid into it.
pub fn acquire_lock(socket: &Path) -> Result<InstanceLock, SocketError> {
    let path = lock_path(socket);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(io_err("cannot open lock file", &path))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => {
            let mut lock = InstanceLock { lock };
            lock.record_pid()
                .map_err(io_err("cannot write lock file", &path))?;
            Ok(lock)
        }
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            let pid = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default();
            Err(SocketError::AlreadyRunning {
                socket: socket.to_path_buf(),
                pid,
            })
        }
        Err((_, e)) => Err(SocketError::Io {
            what: "cannot lock",
            path,
            source: e.into(),
        }),
    }
}

/// A socket ready to serve.
#[derive(Debug)]
pub struct Bound {
    /// The listener (non-blocking).
    pub listener: UnixListener,
    /// Its path.
    pub path: PathBuf,
    /// The instance lock, held as long as this lives.
    pub lock: InstanceLock,
    /// `Some(dev, ino)` if we created the socket file and must remove it at exit.
    pub owned_inode: Option<(u64, u64)>,
    /// Whether the socket directory passed the private-directory check.
    pub dir_verified: bool,
}

/// Create the directory, take the lock, clear a stale socket, and bind `path` with mode 0600.
pub fn bind(path: &Path) -> Result<Bound, SocketError> {
    check_socket_len(path)?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    ensure_private_dir(dir)?;
    let lock = acquire_lock(path)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                // Someone answers but holds no lock (an older daemon, or a foreign server).
                return Err(SocketError::AlreadyRunning {
                    socket: path.to_path_buf(),
                    pid: String::new(),
                });
            }
            std::fs::remove_file(path).map_err(io_err("cannot remove stale socket", path))?;
        }
        Ok(_) => return Err(SocketError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("cannot inspect", path)(e)),
    }
    // Bind under a umask that leaves the socket 0600 from its first instant.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let listener = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = listener.map_err(io_err("cannot bind", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err("cannot chmod", path))?;
    listener
        .set_nonblocking(true)
        .map_err(io_err("cannot configure", path))?;
    let meta = std::fs::symlink_metadata(path).map_err(io_err("cannot inspect", path))?;
    Ok(Bound {
        listener,
        path: path.to_path_buf(),
        lock,
        owned_inode: Some((meta.dev(), meta.ino())),
        dir_verified: true,
    })
}

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// Descriptors passed by systemd socket activation, if they are meant for this process.
/// Removes the variables so `op` children do not see them.
pub fn activation_fds() -> Vec<RawFd> {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    let n = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<RawFd>().ok())
        .unwrap_or(0);
    // SAFETY (env): called from main before any thread exists.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    if !pid_ok || n <= 0 {
        return Vec::new();
    }
    (LISTEN_FDS_START..LISTEN_FDS_START + n).collect()
}

/// Adopt an activated listening socket. The socket file belongs to the service manager: we
/// never unlink it. The lock is still taken so a manual or auto-started daemon cannot serve
/// beside us.
pub fn adopt(fd: RawFd, path: &Path) -> Result<Bound, SocketError> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    // SAFETY: only borrowed for the checks below; ownership is taken after they pass.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    // A manager that set LISTEN_FDS but passed nothing must get an error, not an abort when
    // an OwnedFd for a closed descriptor is dropped.
    fcntl(borrowed, FcntlArg::F_GETFD).map_err(|e| SocketError::Io {
        what: "the service manager passed no usable socket for",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    // Activated descriptors arrive without close-on-exec: op children must not inherit the
    // listening socket.
    fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(|e| SocketError::Io {
        what: "cannot configure activated socket",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    // SAFETY: the service manager passed this descriptor to us alone; we take ownership once.
    let listener = unsafe { UnixListener::from_raw_fd(fd) };
    // Activated descriptors arrive blocking.
    listener
        .set_nonblocking(true)
        .map_err(io_err("cannot configure activated socket", path))?;
    let dir_verified = path.parent().is_some_and(|d| verify_private_dir(d).is_ok());
    let lock = acquire_lock(path)?;
    Ok(Bound {
        listener,
        path: path.to_path_buf(),
        lock,
        owned_inode: None,
        dir_verified,
    })
}

/// Remove the socket file if it is still the one we created.
pub fn remove_if_ours(path: &Path, inode: Option<(u64, u64)>) {
    let Some((dev, ino)) = inode else { return };
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.dev() == dev
        && meta.ino() == ino
    {
        let _ = std::fs::remove_file(path);
    }
}

//! Where the state lives and how it is changed safely.
//!
//! The home directory is `$FAKE_OP_HOME`, else `$HOME/.fake-op`. `state.json` is only ever
//! replaced whole (write a temporary file, then rename), so an unlocked reader always sees a
//! complete document; every read-modify-write holds an exclusive `flock` on `state.lock`, so
//! concurrent invocations never lose each other's updates. The lock is never held across
//! sleeps for latency or while `op run`'s child runs.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::state::State;

/// The environment variable naming the home directory.
pub const ENV_HOME: &str = "FAKE_OP_HOME";

/// The home directory: `$FAKE_OP_HOME`, else `$HOME/.fake-op`.
pub fn home_dir() -> PathBuf {
    match std::env::var_os(ENV_HOME) {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
            Path::new(&home).join(".fake-op")
        }
    }
}

/// The state file inside `home`.
pub fn state_path(home: &Path) -> PathBuf {
    home.join("state.json")
}

/// The call log inside `home`.
pub fn calls_path(home: &Path) -> PathBuf {
    home.join("calls.jsonl")
}

/// Read the state without locking: fine for a glance (latency), never for a change.
pub fn peek(home: &Path) -> io::Result<State> {
    read_state(&state_path(home))
}

fn read_state(path: &Path) -> io::Result<State> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(e),
    }
}

/// The state, locked for a read-modify-write. Dropping it without `save` releases the lock and
/// leaves the file as it was.
pub struct Locked {
    /// The exclusive lock; released on drop.
    _lock: Flock<File>,
    /// Where `save` writes.
    path: PathBuf,
    /// The state read under the lock.
    pub state: State,
}

impl Locked {
    /// Take the lock (blocking) and read the state; creates the home directory if needed.
    pub fn open(home: &Path) -> io::Result<Locked> {
        fs::create_dir_all(home)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(home.join("state.lock"))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| io::Error::from_raw_os_error(errno as i32))?;
        let path = state_path(home);
        let state = read_state(&path)?;
        Ok(Locked {
            _lock: lock,
            path,
            state,
        })
    }

    /// Write the state back (atomically) while still holding the lock.
    pub fn save(&self) -> io::Result<()> {
        let tmp = self
            .path
            .with_extension(format!("json.{}.tmp", std::process::id()));
        let bytes = serde_json::to_vec(&self.state).map_err(io::Error::other)?;
        {
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
        }
        fs::rename(&tmp, &self.path)
    }
}

/// Append one line to a file with a single `write` on an `O_APPEND` descriptor, so concurrent
/// writers never interleave within a line.
pub fn append_line(path: &Path, line: &str) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    f.write_all(&buf)
}

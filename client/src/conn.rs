//! Reaching the daemon: find the socket, check whose it is, start the daemon if nobody
//! answers, send one request, read the answer.
//!
//! Owns auto-start: spawn the `op-sessiond` installed beside this binary (no variable, no
//! PATH: a caller must not choose the daemon, its config or its `op`) with a clean
//! environment whose HOME is the password database's, and wait for its readiness (the detaching daemon exits once it serves), at most
//! about two seconds. Eight clients auto-starting at once end with one daemon, because the
//! daemon takes a lock beside the socket; the losers' clients simply connect to the winner.
//! Also owns restarting a daemon of another protocol version that a client started.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use op_session_protocol::{
    ErrorCode, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, Request, Response, StartedBy,
    decode_response, encode_request, exit, fdpass, frame,
};

use crate::error::{Failure, Reach, Result};

/// How to reach the daemon.
#[derive(Debug, Clone)]
pub struct Target {
    /// The socket.
    pub socket: PathBuf,
    /// Start the daemon if it is not running (flags and environment allow it; see
    /// [`Target::autostart`] for the rest).
    pub autostart_allowed: bool,
}

impl Target {
    /// From flags and environment.
    pub fn new(socket: Option<&Path>, no_autostart: bool) -> Self {
        let env_off = std::env::var("OPSESSION_NO_AUTOSTART")
            .map(|v| !v.is_empty() && v != "0")
            .unwrap_or(false);
        Target {
            socket: op_session_paths::socket_path(socket),
            autostart_allowed: !no_autostart && !env_off,
        }
    }

    /// Whether a daemon may be started for this socket. A grant's socket, in the daemon's
    /// layout or at a path of the person's choosing, is never served by a daemon of its own:
    /// once the grant ends, its callers get "unavailable", not a fresh, empty daemon
    /// (crates/paths owns how to tell). Asked only when no daemon answered, so a connection
    /// that works costs no look at the grant marker (docs/BENCHMARKS.md, issue 23).
    pub fn autostart(&self) -> bool {
        self.autostart_allowed && !op_session_paths::is_grant_socket(&self.socket)
    }
}

fn unavailable(msg: String, fix: &str) -> Failure {
    Failure::new(exit::UNAVAILABLE, msg, fix)
}

/// Connect once, verifying that the socket's directory is ours and private first (a token
/// must never be handed to a socket another user planted).
fn try_connect(socket: &Path) -> std::io::Result<UnixStream> {
    // One `lstat` of the directory: a missing directory is left to `connect` to report.
    if let Some(dir) = socket.parent() {
        match op_session_paths::verify_private_dir(dir) {
            Ok(()) => {}
            Err(op_session_paths::PathError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    e.to_string(),
                ));
            }
        }
    }
    UnixStream::connect(socket)
}

/// The `op-sessiond` to start: the one beside this binary, whatever the environment says.
/// An agent that could set `OPSESSION_DAEMON` (or PATH) would otherwise choose the program
/// the person's next `init` hands the password to.
pub fn daemon_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|me| me.parent().map(|d| d.join("op-sessiond")))
        .unwrap_or_else(|| PathBuf::from("op-sessiond"))
}

/// One of op-session's own programs: the path in `env_var`, else `name` beside this binary,
/// else `name` alone (looked up on PATH when run).
pub fn companion_binary(env_var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Ok(me) = std::env::current_exe()
        && let Some(dir) = me.parent()
    {
        let beside = dir.join(name);
        if beside.is_file() {
            return beside;
        }
    }
    PathBuf::from(name)
}

/// Variables an auto-started daemon inherits from the client that starts it, besides the
/// person's session ([`op_session_paths::SESSION_ENV`]): the system bus (presence) and our own
/// log setting. Nothing that loads code (`LD_*`), chooses programs (`PATH`: the daemon gets the fixed
/// system path), redirects traffic (proxies, CA bundles), carries a credential, or says where
/// configuration lives. An agent that runs `PATH=/evil:$PATH op-session status` (or
/// `OPSESSION_CONFIG=./x.toml`, `XDG_CONFIG_HOME=…`, `HOME=…`) must not choose the `op` binary
/// that the person's next `op-session init` hands the password to, nor `op`'s own config.
const AUTOSTART_ENV: &[&str] = &["DBUS_SYSTEM_BUS_ADDRESS", "OPSESSION_LOG"];

/// Session variables an auto-started daemon never takes from its caller: they say where
/// configuration, state and data live (the daemon's, and `op`'s own config directory with its
/// account addresses). HOME is set from the password database instead.
const AUTOSTART_DROPPED: &[&str] = &[
    "HOME",
    "XDG_CONFIG_HOME",
    "XDG_CONFIG_DIRS",
    "XDG_STATE_HOME",
    "XDG_DATA_HOME",
    "XDG_DATA_DIRS",
    "XDG_CACHE_HOME",
];

/// The environment of an auto-started daemon (see [`AUTOSTART_ENV`]).
pub fn autostart_env() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let mut env: Vec<_> = std::env::vars_os()
        .filter(|(k, _)| {
            k.to_str().is_some_and(|k| {
                (op_session_paths::is_session_var(k) || AUTOSTART_ENV.contains(&k))
                    && !AUTOSTART_DROPPED.contains(&k)
            })
        })
        .collect();
    if let Ok(home) = op_session_paths::passwd_home() {
        env.push(("HOME".into(), home.into()));
    }
    env.push(("PATH".into(), op_session_paths::SYSTEM_PATH.into()));
    env
}

/// Start the daemon and wait until the socket answers (about two seconds at most).
fn autostart(socket: &Path) -> Result<UnixStream> {
    let bin = daemon_binary();
    // The daemon starts in `/`, so it gets the socket by absolute path.
    let socket_abs = std::path::absolute(socket).unwrap_or_else(|_| socket.to_path_buf());
    let spawned = Command::new(&bin)
        .env_clear()
        .envs(autostart_env())
        .current_dir("/")
        .arg("--started-by")
        .arg(StartedBy::Autostart.as_str())
        .arg("--socket")
        .arg(&socket_abs)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = spawned.map_err(|e| {
        unavailable(
            format!(
                "op-sessiond is not running and could not be started ({}: {e})",
                bin.display()
            ),
            "install op-sessiond in the same directory as op-session (auto-start runs only that one), or start the daemon yourself",
        )
    })?;
    let deadline = Instant::now() + Duration::from_millis(2500);
    // The detaching daemon's first process exits once the server is ready (or failed).
    let mut status = None;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(s)) => {
                status = Some(s);
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => break,
        }
    }
    loop {
        match try_connect(socket) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(unavailable(
                    e.to_string(),
                    "fix the socket directory as described",
                ));
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                let mut why = String::new();
                if let Some(mut err) = child.stderr.take()
                    && status.is_some()
                {
                    let _ = err.read_to_string(&mut why);
                }
                let why = why.lines().next().unwrap_or("").to_string();
                return Err(unavailable(
                    format!(
                        "started op-sessiond but it did not answer at {} ({})",
                        socket.display(),
                        if why.is_empty() { e.to_string() } else { why }
                    ),
                    "run `op-sessiond --foreground` to see why",
                ));
            }
        }
    }
}

/// Connect, auto-starting the daemon if allowed.
pub fn connect(t: &Target) -> Result<UnixStream> {
    match try_connect(&t.socket) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(unavailable(
            format!("cannot use {}: {e}", t.socket.display()),
            "fix the directory as the message says",
        )),
        Err(e) => {
            if !t.autostart() {
                return Err(unavailable(
                    format!("op-sessiond is not running at {} ({e})", t.socket.display()),
                    "start it with `op-sessiond`, or allow auto-start (drop --no-autostart / OPSESSION_NO_AUTOSTART)",
                )
                .reached(Reach::Absent));
            }
            op_session_paths::check_socket_len(&t.socket)
                .map_err(|e| Failure::usage(e.to_string(), "set a shorter --socket"))?;
            autostart(&t.socket)
        }
    }
}

fn io_fail(e: impl std::fmt::Display) -> Failure {
    unavailable(
        format!("lost the connection to op-sessiond: {e}"),
        "retry; `op-session status` shows whether the daemon is running",
    )
    .reached(Reach::Lost)
}

/// Send the preamble (with fds for a passthrough) and the request.
pub fn send(stream: &mut UnixStream, req: &Request, fds: Option<[i32; 3]>) -> Result<()> {
    use std::os::fd::AsFd;
    let payload = encode_request(req).map_err(io_fail)?;
    let framed = frame::encode(&payload, MAX_REQUEST_FRAME).map_err(|e| {
        Failure::usage(
            format!("request too large: {e}"),
            "send fewer or shorter references",
        )
    })?;
    fdpass::send_request(stream.as_fd(), fds, &framed).map_err(io_fail)?;
    Ok(())
}

/// Read the first response of a stream of them (a passthrough's events follow it).
pub fn receive(stream: &mut UnixStream) -> Result<Response> {
    let payload = frame::read_frame(stream, MAX_RESPONSE_FRAME).map_err(io_fail)?;
    decode_response(&payload).map_err(io_fail)
}

/// Read the one response a request gets, header and a small answer in one `read`.
fn receive_only(stream: &mut UnixStream) -> Result<Response> {
    let payload = frame::read_only_frame(stream, MAX_RESPONSE_FRAME).map_err(io_fail)?;
    decode_response(&payload).map_err(io_fail)
}

/// One request, one response, with version-mismatch handling: a daemon of another version
/// that a client auto-started is stopped and started again; otherwise the error says what to
/// do.
pub fn request(t: &Target, req: &Request) -> Result<Response> {
    let mut stream = connect(t)?;
    send(&mut stream, req, None)?;
    let resp = receive_only(&mut stream)?;
    if let Response::Error(e) = &resp
        && e.code == ErrorCode::VersionMismatch
    {
        let restartable = e
            .daemon
            .as_ref()
            .filter(|d| d.started_by == StartedBy::Autostart && t.autostart())
            .map(|d| d.pid);
        if let Some(pid) = restartable {
            restart(t, pid)?;
            // The old daemon may still be closing its socket: retry until the new one answers.
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                let attempt = connect(t).and_then(|mut stream| {
                    send(&mut stream, req, None)?;
                    receive_only(&mut stream)
                });
                match attempt {
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    other => return other,
                }
            }
        }
        let who = e
            .daemon
            .as_ref()
            .map(|d| {
                format!(
                    "op-sessiond {} (protocol {}, pid {}, started by {})",
                    d.version, d.protocol, d.pid, d.started_by
                )
            })
            .unwrap_or_else(|| "op-sessiond".into());
        return Err(Failure::new(
            exit::PROTOCOL,
            format!(
                "{who} speaks another protocol than this op-session ({})",
                op_session_protocol::PROTOCOL_VERSION
            ),
            "restart the daemon with the matching version: `op-session stop`, then retry (or restart its service)",
        ));
    }
    Ok(resp)
}

fn restart(t: &Target, pid: u32) -> Result<()> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if kill(Pid::from_raw(pid as i32), None).is_err() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(Failure::new(
        exit::PROTOCOL,
        format!("an op-sessiond of another version (pid {pid}) did not stop"),
        format!("stop it yourself: kill {pid}"),
    ))
    .or_else(|e| {
        if try_connect(&t.socket).is_err() {
            Ok(())
        } else {
            Err(e)
        }
    })
}

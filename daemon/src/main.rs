//! `op-sessiond`: parse flags, harden the process, take the socket, detach if asked, serve.
//!
//! Thin on purpose (mini-redis's `bin/server.rs` shape): everything testable lives in the
//! library. Order matters: hardening and closing stray descriptors happen before anything is
//! opened; forking happens before the tokio runtime exists.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use op_session_protocol::StartedBy;
use op_sessiond::config::{Config, parse_duration};
use op_sessiond::{Daemon, DaemonInfo, socket};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Holds 1Password CLI sessions for callers with no terminal (AI agents, scripts, services).
#[derive(Debug, Parser)]
#[command(name = "op-sessiond", version, about)]
struct Args {
    /// Socket path [default: $OPSESSION_SOCKET, else $XDG_RUNTIME_DIR/op-session/agent.sock,
    /// else /run/user/<uid>/op-session/agent.sock when that directory is ours and private,
    /// else $TMPDIR/op-session-<uid>/agent.sock].
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Config file [default: ~/.config/op-session/config.toml, with ~ the home directory the
    /// password database gives this user; no environment variable moves it].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Stay in the foreground (for systemd, launchd and other supervisors).
    #[arg(long)]
    foreground: bool,
    /// Log level (error, warn, info, debug, trace) or a tracing filter [env: OPSESSION_LOG].
    #[arg(long)]
    log_level: Option<String>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Where a detached daemon writes its log [default: $XDG_STATE_HOME/op-session/op-sessiond.log].
    #[arg(long)]
    log_file: Option<PathBuf>,
    /// With socket activation: exit after this long with no session and no client.
    #[arg(long, value_parser = parse_duration)]
    exit_when_idle: Option<std::time::Duration>,
    /// Check the config file and exit: 0 and its path when valid, 1 and what is wrong.
    #[arg(long)]
    check_config: bool,
    /// Print the man page op-sessiond(8) (roff) and exit; packaging uses it.
    #[arg(long, hide = true)]
    man: bool,
    /// Who started us (set by `op-session` when it auto-starts the daemon).
    #[arg(long, hide = true, default_value = "manual")]
    started_by: StartedBy,
}

fn main() {
    // Before anything opens a descriptor: learn which ones systemd passed, then close the rest.
    let activation = socket::activation_fds();
    let protections = op_sessiond::hardening::harden(&activation);
    // macOS: a LaunchAgent's socket comes from launchd by name; asked after hardening so
    // closing stray descriptors never touches what libxpc opened for the call.
    let activation = if activation.is_empty() {
        op_sessiond::launchd::activated_sockets().unwrap_or_default()
    } else {
        activation
    };
    let args = Args::parse();
    if args.man {
        let page = clap_mangen::Man::new(<Args as clap::CommandFactory>::command()).section("8");
        let code = match page.render(&mut std::io::stdout()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("op-sessiond: cannot write the man page: {e}");
                1
            }
        };
        std::process::exit(code);
    }
    match real_main(args, activation, protections) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("op-sessiond: {e:#}");
            std::process::exit(1);
        }
    }
}

fn real_main(
    args: Args,
    activation: Vec<std::os::fd::RawFd>,
    mut protections: op_session_protocol::Protections,
) -> anyhow::Result<()> {
    // Only a person or a service manager passes --config; an auto-start (whose environment
    // may be an agent's) never does, so no variable of a caller picks the config (and with it
    // `op_path`, the program that receives the password).
    let config_path = match &args.config {
        Some(p) => p.clone(),
        None => op_session_paths::standard_config_path()?,
    };
    let explicit_config = args.config.is_some();
    let config = Config::load(&config_path, explicit_config)?;
    if args.check_config {
        // What the next start will use, not only whether it parses: an `op_path` that is not
        // an executable file fails here, where doctor reads it.
        if let Some(op) = &config.op_path {
            use std::os::unix::fs::PermissionsExt;
            match std::fs::metadata(op) {
                Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
                Ok(_) => anyhow::bail!(
                    "{}: op_path {} is not an executable file",
                    config_path.display(),
                    op.display()
                ),
                Err(e) => anyhow::bail!("{}: op_path {}: {e}", config_path.display(), op.display()),
            }
        }
        println!("op-sessiond: {} is valid", config_path.display());
        return Ok(());
    }

    let mut started_by = args.started_by;
    let bound = match activation.first() {
        Some(&fd) => {
            let path = activated_path(fd)
                .unwrap_or_else(|| op_session_paths::socket_path(args.socket.as_deref()));
            started_by = if cfg!(target_os = "macos") {
                StartedBy::Launchd
            } else {
                StartedBy::Systemd
            };
            socket::adopt(fd, &path)?
        }
        None => {
            let path = op_session_paths::socket_path(args.socket.as_deref());
            socket::bind(&path)?
        }
    };
    protections.socket_dir_verified = bound.dir_verified;

    let mut bound = bound;
    let ready_pipe = if args.foreground {
        None
    } else {
        let pipe = detach().context("cannot detach")?;
        bound
            .lock
            .record_pid()
            .context("cannot record our pid in the lock file")?;
        Some(pipe)
    };
    init_logging(&args, ready_pipe.is_some())?;

    let info = DaemonInfo {
        socket: bound.path.clone(),
        started_by,
        protections,
        started: Instant::now(),
        uid: nix::unistd::geteuid().as_raw(),
        exit_when_idle: args.exit_when_idle,
        config_path: config_path.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let socket::Bound {
        listener,
        path,
        lock,
        owned_inode,
        ..
    } = bound;
    let result = runtime.block_on(async move {
        let listener =
            tokio::net::UnixListener::from_std(listener).context("cannot register the socket")?;
        let daemon = Arc::new(Daemon::new(
            config,
            info,
            Arc::new(op_sessiond::clock::BootClock),
        ));
        op_sessiond::run(listener, daemon, move || {
            op_sessiond::notify::ready();
            if let Some(fd) = ready_pipe {
                let mut w = std::fs::File::from(fd);
                let _ = w.write_all(b"1");
            }
        })
        .await
    });
    socket::remove_if_ours(&path, owned_inode);
    drop(lock);
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// The filesystem path of an activated socket, from the socket itself.
fn activated_path(fd: std::os::fd::RawFd) -> Option<PathBuf> {
    let addr: nix::sys::socket::UnixAddr = nix::sys::socket::getsockname(fd).ok()?;
    addr.path().map(|p| p.to_path_buf())
}

/// Fork; the parent waits until the child says it serves (or fails), then exits with that
/// answer, so whoever started us knows the socket is ready when we return.
fn detach() -> anyhow::Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe().context("pipe")?;
    // SAFETY: single-threaded here (no runtime yet), so fork is sound.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        nix::unistd::ForkResult::Parent { .. } => {
            drop(w);
            let mut buf = [0u8; 1];
            let mut f = std::fs::File::from(r);
            let ok = matches!(f.read(&mut buf), Ok(1)) && buf[0] == b'1';
            std::process::exit(if ok { 0 } else { 1 });
        }
        nix::unistd::ForkResult::Child => {
            drop(r);
            nix::unistd::setsid().context("setsid")?;
            // stdin/stdout go to /dev/null; stderr stays until logging is set up.
            let null = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .context("/dev/null")?;
            for fd in [0, 1] {
                // SAFETY: dup2 onto the standard descriptors, which we own.
                unsafe { libc::dup2(null.as_raw_fd(), fd) };
            }
            Ok(w)
        }
    }
}

fn init_logging(args: &Args, detached: bool) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = args
        .log_level
        .clone()
        .or_else(|| std::env::var("OPSESSION_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let filter =
        EnvFilter::try_new(&filter).with_context(|| format!("bad log level {filter:?}"))?;
    if detached {
        let path = match &args.log_file {
            Some(p) => p.clone(),
            None => op_session_paths::state_dir()?.join("op-sessiond.log"),
        };
        if let Some(dir) = path.parent() {
            op_session_paths::ensure_private_dir(dir)?;
        }
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .with_context(|| format!("cannot open log file {}", path.display()))?;
        // Point stderr at the log too, so a panic message lands there.
        // SAFETY: dup2 onto stderr, which we own.
        unsafe { libc::dup2(file.as_raw_fd(), 2) };
        drop(file);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}

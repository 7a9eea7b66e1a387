//! `op-session service`: install, remove and inspect the systemd user units (Linux) or the
//! launchd LaunchAgent (macOS) that start op-sessiond on the first connection to its socket.
//!
//! Owns rendering the shipped templates (`systemd/op-sessiond.{socket,service}` and
//! `launchd/com.op-session.op-sessiond.plist`, compiled in, so what we test is what we write)
//! with this user's absolute op-sessiond path, writing them 0644 only when their content
//! differs (a second install changes nothing), and driving `systemctl --user` or `launchctl`
//! when that manager runs here; otherwise it prints exactly the commands it would run.
//! `--dry-run` prints the files and the commands and changes nothing (it may still ask the
//! manager read-only questions). It never starts a daemon itself, and stops one only through
//! the service manager on `uninstall`.
//!
//! The service manager and the client auto-start share one socket path and one lock (see the
//! daemon's `socket` module): the units listen on `%t/op-session/agent.sock`, which is
//! `$XDG_RUNTIME_DIR/op-session/agent.sock`, the clients' default; the plist listens on the
//! path clients compute when installing (`$TMPDIR/op-session-<uid>/agent.sock` on macOS).
//! launchd binds that socket but does not create its directory, so install creates it 0700;
//! should macOS clean it out of `$TMPDIR`, launchd cannot bind, clients auto-start a daemon on
//! the same path instead, `service status` says so, and `service install` repairs it.
//!
//! `OPSESSION_SERVICE_MANAGER` overrides detection (tests use it to exercise both kinds on one
//! machine): `systemd` or `launchd` choose that kind of files on any platform (commands still
//! run only where that manager actually runs), `none` writes this platform's files and runs
//! nothing.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use op_session_protocol::exit;

use crate::cli::ServiceAction;
use crate::error::{Failure, Result};

/// The shipped units and plist; `service install` writes these, filled in.
const SOCKET_UNIT: &str = include_str!("../../systemd/op-sessiond.socket");
const SERVICE_UNIT: &str = include_str!("../../systemd/op-sessiond.service");
const PLIST: &str = include_str!("../../launchd/com.op-session.op-sessiond.plist");

/// The `ExecStart=` line of the shipped service; install swaps in the real path.
const SHIPPED_EXEC_START: &str = "ExecStart=/usr/local/bin/op-sessiond";
const SOCKET_UNIT_NAME: &str = "op-sessiond.socket";
const SERVICE_UNIT_NAME: &str = "op-sessiond.service";
/// The LaunchAgent's label (and file name, with `.plist`).
const LABEL: &str = "com.op-session.op-sessiond";
/// launchd's PATH is /usr/bin:/bin:/usr/sbin:/sbin; `op` usually lives in one of these.
const LAUNCHD_PATH: &str = "/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
/// What each installed file starts with.
const WRITTEN_BY: &str = "Written by `op-session service install`; run it again after editing \
                          the shipped template, or edits here are overwritten.";
/// The override for tests and packagers.
const ENV_MANAGER: &str = "OPSESSION_SERVICE_MANAGER";

/// Run a service action. `status` exits 0 when the files are installed and the service manager
/// (if one runs here) has the socket listening, 1 otherwise.
pub fn run(action: &ServiceAction) -> Result<i32> {
    let host = Host::detect()?;
    match action {
        ServiceAction::Install { dry_run } => {
            let steps = host.install_steps()?;
            carry_out(&host, &steps, *dry_run)?;
            if !*dry_run {
                println!(
                    "op-sessiond starts on the first connection to {}",
                    host.socket.display()
                );
                host.warn_if_clients_look_elsewhere();
            }
            Ok(exit::OK)
        }
        ServiceAction::Uninstall { dry_run } => {
            let steps = host.uninstall_steps();
            carry_out(&host, &steps, *dry_run)?;
            Ok(exit::OK)
        }
        ServiceAction::Status => host.status(),
    }
}

/// Which kind of service definition we manage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `~/.config/systemd/user/op-sessiond.{socket,service}`.
    Systemd,
    /// `~/Library/LaunchAgents/com.op-session.op-sessiond.plist`.
    Launchd,
}

/// Everything the actions need to know about this user and machine.
#[derive(Debug)]
struct Host {
    /// The kind of files.
    kind: Kind,
    /// `None` when the service manager runs here and we may drive it; otherwise why not.
    manager_absent: Option<String>,
    /// The files we own, with the content install writes.
    files: Vec<(PathBuf, String)>,
    /// The socket the service manager listens on.
    socket: PathBuf,
    /// Our uid (launchd's `gui/<uid>` domain).
    uid: u32,
}

/// One thing install or uninstall does, in order.
#[derive(Debug)]
enum Step {
    /// Create a directory, mode 0700, owned by us (launchd's socket directory).
    PrivateDir(PathBuf),
    /// Write a file, mode 0644 (its directories created as needed).
    Write(PathBuf, String),
    /// The file already has this content; only its mode is wrong.
    Chmod(PathBuf),
    /// The file already has this content and mode.
    Unchanged(PathBuf),
    /// Remove a file.
    Remove(PathBuf),
    /// Run a service manager command.
    Run(Vec<String>),
    /// Tell the person something (why a step is left out).
    Note(String),
}

impl Host {
    fn detect() -> Result<Host> {
        let forced = std::env::var(ENV_MANAGER).unwrap_or_default();
        let native = if cfg!(target_os = "macos") {
            Kind::Launchd
        } else {
            Kind::Systemd
        };
        let (kind, disabled) = match forced.as_str() {
            "" => (native, false),
            "systemd" => (Kind::Systemd, false),
            "launchd" => (Kind::Launchd, false),
            "none" => (native, true),
            other => {
                return Err(Failure::usage(
                    format!("{ENV_MANAGER}={other:?} is not a service manager"),
                    format!("set {ENV_MANAGER} to systemd, launchd or none, or unset it"),
                ));
            }
        };
        let home = env_dir("HOME").ok_or_else(|| {
            Failure::new(
                exit::CONFIG,
                "HOME is not set to an absolute path",
                "set HOME to your home directory",
            )
        })?;
        let daemon = daemon_path()?;
        let uid = nix::unistd::getuid().as_raw();
        let host = match kind {
            Kind::Systemd => {
                let dir = env_dir("XDG_CONFIG_HOME")
                    .unwrap_or_else(|| home.join(".config"))
                    .join("systemd")
                    .join("user");
                let runtime = env_dir("XDG_RUNTIME_DIR")
                    .unwrap_or_else(|| PathBuf::from(format!("/run/user/{uid}")));
                Host {
                    kind,
                    manager_absent: None,
                    files: vec![
                        (dir.join(SOCKET_UNIT_NAME), render_socket_unit()),
                        (dir.join(SERVICE_UNIT_NAME), render_service_unit(&daemon)?),
                    ],
                    socket: runtime.join("op-session").join("agent.sock"),
                    uid,
                }
            }
            Kind::Launchd => {
                let socket = op_session_paths::socket_path(None);
                op_session_paths::check_socket_len(&socket).map_err(|e| {
                    Failure::new(exit::CONFIG, e.to_string(), "set a shorter TMPDIR")
                })?;
                let log = home.join("Library").join("Logs").join("op-sessiond.log");
                let plist = render_plist(&daemon, &socket, &log, &launchd_path())?;
                let file = home
                    .join("Library")
                    .join("LaunchAgents")
                    .join(format!("{LABEL}.plist"));
                Host {
                    kind,
                    manager_absent: None,
                    files: vec![(file, plist)],
                    socket,
                    uid,
                }
            }
        };
        let manager_absent = if disabled {
            Some(format!("{ENV_MANAGER}=none"))
        } else {
            host.manager_absent_reason()
        };
        Ok(Host {
            manager_absent,
            ..host
        })
    }

    /// `None` when the manager of our kind runs here, else why not.
    fn manager_absent_reason(&self) -> Option<String> {
        match self.kind {
            Kind::Systemd => {
                if let Some(rt) = env_dir("XDG_RUNTIME_DIR")
                    && rt.join("systemd").join("private").exists()
                {
                    return None;
                }
                match capture(&["systemctl", "--user", "is-system-running"]) {
                    Some((_, state))
                        if matches!(
                            state.as_str(),
                            "running"
                                | "degraded"
                                | "starting"
                                | "initializing"
                                | "maintenance"
                                | "stopping"
                        ) =>
                    {
                        None
                    }
                    Some((_, state)) if !state.is_empty() => Some(format!(
                        "no systemd user manager runs here (`systemctl --user is-system-running` says {state})"
                    )),
                    _ => Some("no systemd user manager runs here".into()),
                }
            }
            Kind::Launchd => {
                if cfg!(target_os = "macos") {
                    None
                } else {
                    Some("launchd runs only on macOS".into())
                }
            }
        }
    }

    fn manager_runs(&self) -> bool {
        self.manager_absent.is_none()
    }

    fn systemctl(args: &[&str]) -> Vec<String> {
        ["systemctl", "--user"]
            .iter()
            .chain(args)
            .map(|s| s.to_string())
            .collect()
    }

    fn domain(&self) -> String {
        format!("gui/{}", self.uid)
    }

    fn service_target(&self) -> String {
        format!("gui/{}/{LABEL}", self.uid)
    }

    /// Whether launchd has our agent loaded (only asked where launchd runs).
    fn launchd_loaded(&self) -> bool {
        self.manager_runs()
            && capture(&["launchctl", "print", &self.service_target()]).is_some_and(|(ok, _)| ok)
    }

    fn install_steps(&self) -> Result<Vec<Step>> {
        let mut steps = Vec::new();
        if self.kind == Kind::Launchd
            && let Some(dir) = self.socket.parent()
            && op_session_paths::verify_private_dir(dir).is_err()
        {
            steps.push(Step::PrivateDir(dir.to_path_buf()));
        }
        let mut changed = false;
        for (path, content) in &self.files {
            let step = file_step(path, content)?;
            changed |= matches!(step, Step::Write(..));
            steps.push(step);
        }
        match self.kind {
            Kind::Systemd => {
                if changed {
                    steps.push(Step::Run(Self::systemctl(&["daemon-reload"])));
                }
                if self.manager_runs() && self.foreign_daemon_serves() {
                    steps.push(Step::Run(Self::systemctl(&["enable", SOCKET_UNIT_NAME])));
                    steps.push(Step::Note(format!(
                        "an op-sessiond started outside systemd serves {}; to hand the socket to systemd, run `op-session stop` (it wipes its sessions), then `systemctl --user start {SOCKET_UNIT_NAME}`",
                        self.socket.display()
                    )));
                } else {
                    steps.push(Step::Run(Self::systemctl(&[
                        "enable",
                        "--now",
                        SOCKET_UNIT_NAME,
                    ])));
                }
            }
            Kind::Launchd => {
                let plist = self.files[0].0.display().to_string();
                let loaded = self.launchd_loaded();
                if loaded && changed {
                    steps.push(Step::Note(
                        "the agent is loaded with older settings: booting it out stops a running op-sessiond (its sessions are wiped)".into(),
                    ));
                    steps.push(Step::Run(launchctl(&["bootout", &self.service_target()])));
                }
                if !loaded || changed {
                    steps.push(Step::Run(launchctl(&["enable", &self.service_target()])));
                    steps.push(Step::Run(launchctl(&["bootstrap", &self.domain(), &plist])));
                }
            }
        }
        Ok(steps)
    }

    fn uninstall_steps(&self) -> Vec<Step> {
        let installed: Vec<&PathBuf> = self
            .files
            .iter()
            .map(|(p, _)| p)
            .filter(|p| p.symlink_metadata().is_ok())
            .collect();
        let mut steps = Vec::new();
        match self.kind {
            Kind::Systemd => {
                let enabled = self.manager_runs()
                    && capture(&Self::systemctl_refs(&["is-enabled", SOCKET_UNIT_NAME]))
                        .is_some_and(|(ok, _)| ok);
                if !installed.is_empty() || enabled {
                    steps.push(Step::Run(Self::systemctl(&[
                        "disable",
                        "--now",
                        SOCKET_UNIT_NAME,
                        SERVICE_UNIT_NAME,
                    ])));
                }
                steps.extend(installed.iter().map(|p| Step::Remove(p.to_path_buf())));
                // `enable` links the socket into sockets.target.wants; with no manager here to
                // `disable` it, remove the link ourselves so nothing dangles.
                if !self.manager_runs()
                    && let Some(dir) = self.files[0].0.parent()
                {
                    let wants = dir.join("sockets.target.wants").join(SOCKET_UNIT_NAME);
                    if wants
                        .symlink_metadata()
                        .is_ok_and(|m| m.file_type().is_symlink())
                    {
                        steps.push(Step::Remove(wants));
                    }
                }
                if !installed.is_empty() {
                    steps.push(Step::Run(Self::systemctl(&["daemon-reload"])));
                }
            }
            Kind::Launchd => {
                // Where launchd runs, ask; elsewhere print the command a Mac would need.
                if self.launchd_loaded() || (!self.manager_runs() && !installed.is_empty()) {
                    steps.push(Step::Run(launchctl(&["bootout", &self.service_target()])));
                }
                steps.extend(installed.iter().map(|p| Step::Remove(p.to_path_buf())));
            }
        }
        if steps.is_empty() {
            steps.push(Step::Note("not installed; nothing to remove".into()));
        }
        steps
    }

    fn systemctl_refs<'a>(args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["systemctl", "--user"];
        v.extend_from_slice(args);
        v
    }

    /// Something answers on the socket path while systemd's socket unit is not active: a
    /// manual or auto-started daemon. Enabling the socket now would take the path from it.
    fn foreign_daemon_serves(&self) -> bool {
        let active = capture(&Self::systemctl_refs(&[
            "is-active",
            "--quiet",
            SOCKET_UNIT_NAME,
        ]))
        .is_some_and(|(ok, _)| ok);
        !active && std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
    }

    fn status(&self) -> Result<i32> {
        let mut all_installed = true;
        println!(
            "kind: {}",
            match self.kind {
                Kind::Systemd => "systemd user units",
                Kind::Launchd => "launchd agent",
            }
        );
        for (path, content) in &self.files {
            let state = match std::fs::read_to_string(path) {
                Ok(c) if c == *content => "installed",
                Ok(_) => "installed, but differs from what `op-session service install` writes now",
                Err(_) => {
                    all_installed = false;
                    "not installed"
                }
            };
            println!("{}: {state}", path.display());
        }
        let mut listening = true;
        match (&self.manager_absent, self.kind) {
            (Some(why), _) => println!("service manager: not asked ({why})"),
            (None, Kind::Systemd) => {
                for unit in [SOCKET_UNIT_NAME, SERVICE_UNIT_NAME] {
                    let active = capture(&Self::systemctl_refs(&["is-active", unit]))
                        .map(|(_, s)| s)
                        .unwrap_or_else(|| "unknown".into());
                    let enabled = capture(&Self::systemctl_refs(&["is-enabled", unit]))
                        .map(|(_, s)| s)
                        .unwrap_or_else(|| "unknown".into());
                    if unit == SOCKET_UNIT_NAME && active != "active" {
                        listening = false;
                    }
                    println!("systemd: {unit}: {active} ({enabled})");
                }
            }
            (None, Kind::Launchd) => match capture(&["launchctl", "print", &self.service_target()])
            {
                Some((true, out)) => {
                    let state = out
                        .lines()
                        .find_map(|l| l.trim().strip_prefix("state = "))
                        .unwrap_or("unknown")
                        .to_string();
                    println!("launchd: {LABEL} loaded (state: {state})");
                }
                _ => {
                    listening = false;
                    println!("launchd: {LABEL} not loaded");
                }
            },
        }
        if self.kind == Kind::Launchd
            && all_installed
            && let Some(dir) = self.socket.parent()
            && let Err(e) = op_session_paths::verify_private_dir(dir)
        {
            listening = false;
            println!(
                "socket directory: {e}; launchd cannot listen there (run `op-session service install` to repair it)"
            );
        }
        println!("socket: {}", self.socket.display());
        self.warn_if_clients_look_elsewhere();
        Ok(if all_installed && listening {
            exit::OK
        } else {
            exit::FAILED
        })
    }

    /// Clients use `op_session_paths::socket_path`; say so if that is not our socket.
    fn warn_if_clients_look_elsewhere(&self) {
        let clients = op_session_paths::socket_path(None);
        if clients != self.socket {
            eprintln!(
                "op-session: note: clients in this environment use {} (OPSESSION_SOCKET or XDG_RUNTIME_DIR), not the service's {}; fix: unset OPSESSION_SOCKET or point it at the service's socket",
                clients.display(),
                self.socket.display()
            );
        }
    }
}

/// Do (or, for a dry run, print) the steps. Commands run only where the manager runs; where
/// it does not, they are printed for the person to run.
fn carry_out(host: &Host, steps: &[Step], dry_run: bool) -> Result<()> {
    if dry_run {
        println!("# dry run: nothing is written, removed or run");
    }
    let mut not_run: Vec<&[String]> = Vec::new();
    let mut changed = false;
    for step in steps {
        match step {
            Step::PrivateDir(dir) if dry_run => {
                println!("# would create directory {} (mode 0700)", dir.display());
            }
            Step::PrivateDir(dir) => {
                op_session_paths::ensure_private_dir(dir)
                    .and_then(|()| op_session_paths::verify_private_dir(dir))
                    .map_err(|e| {
                        Failure::new(
                            exit::CONFIG,
                            e.to_string(),
                            "fix the socket directory, then install again",
                        )
                    })?;
                println!("created {} (mode 0700)", dir.display());
                changed = true;
            }
            Step::Write(path, content) if dry_run => {
                println!("# would write {} (mode 0644):", path.display());
                print!("{content}");
                if !content.ends_with('\n') {
                    println!();
                }
            }
            Step::Write(path, content) => {
                write_file(path, content).map_err(|e| io_failure("cannot write", path, e))?;
                println!("wrote {}", path.display());
                changed = true;
            }
            Step::Chmod(path) if dry_run => {
                println!("# would chmod 0644 {} (content unchanged)", path.display());
            }
            Step::Chmod(path) => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
                    .map_err(|e| io_failure("cannot chmod", path, e))?;
                println!("chmod 0644 {} (content unchanged)", path.display());
                changed = true;
            }
            Step::Unchanged(path) => {
                let prefix = if dry_run { "# " } else { "" };
                println!("{prefix}unchanged {}", path.display());
            }
            Step::Remove(path) if dry_run => println!("# would remove {}", path.display()),
            Step::Remove(path) => {
                match std::fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_failure("cannot remove", path, e)),
                }
                println!("removed {}", path.display());
                changed = true;
            }
            Step::Run(argv) if dry_run || !host.manager_runs() => not_run.push(argv),
            Step::Run(argv) => {
                println!("$ {}", shell_words(argv));
                run_command(argv)?;
            }
            Step::Note(note) => println!("{}{note}", if dry_run { "# " } else { "" }),
        }
    }
    if !dry_run && !changed {
        println!("no files changed");
    }
    if !not_run.is_empty() {
        match (&host.manager_absent, dry_run) {
            (_, true) => println!("# would run:"),
            (Some(why), false) => println!("{why}; where it runs, also run:"),
            (None, false) => {}
        }
        for argv in not_run {
            println!("{}", shell_words(argv));
        }
    }
    Ok(())
}

/// What install does with one file: write it, fix its mode, or leave it.
fn file_step(path: &Path, content: &str) -> Result<Step> {
    match std::fs::read(path) {
        Ok(existing) if existing == content.as_bytes() => {
            let mode = std::fs::metadata(path)
                .map_err(|e| io_failure("cannot inspect", path, e))?
                .mode();
            Ok(if mode & 0o777 == 0o644 {
                Step::Unchanged(path.to_path_buf())
            } else {
                Step::Chmod(path.to_path_buf())
            })
        }
        Ok(_) => Ok(Step::Write(path.to_path_buf(), content.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(Step::Write(path.to_path_buf(), content.to_string()))
        }
        Err(e) => Err(io_failure("cannot read", path, e)),
    }
}

/// Write `content` to `path`, mode 0644, atomically (a temporary file beside it, renamed).
fn write_file(path: &Path, content: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(content.as_bytes())?;
        // The umask may have narrowed the mode; service managers and people read these.
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn io_failure(what: &str, path: &Path, e: std::io::Error) -> Failure {
    Failure::new(
        exit::FAILED,
        format!("{what} {}: {e}", path.display()),
        "check the directory's permissions, or use --dry-run and do it by hand",
    )
}

/// Run a service manager command, its output going to ours.
fn run_command(argv: &[String]) -> Result<()> {
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .status()
        .map_err(|e| {
            Failure::new(
                exit::FAILED,
                format!("cannot run {}: {e}", argv[0]),
                "run the command yourself (see --dry-run)",
            )
        })?;
    if !status.success() {
        return Err(Failure::new(
            exit::FAILED,
            format!("`{}` failed ({status})", shell_words(argv)),
            "see its message above; fix that, then run the same op-session service command again",
        ));
    }
    Ok(())
}

/// Run a read-only query: `Some((succeeded, trimmed stdout))`, `None` if it could not run.
fn capture(argv: &[&str]) -> Option<(bool, String)> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

fn launchctl(args: &[&str]) -> Vec<String> {
    std::iter::once("launchctl")
        .chain(args.iter().copied())
        .map(str::to_string)
        .collect()
}

/// An absolute directory from the environment.
fn env_dir(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// The op-sessiond the service runs: `OPSESSION_DAEMON`, else the one beside this binary.
fn daemon_path() -> Result<PathBuf> {
    let path = match std::env::var_os("OPSESSION_DAEMON").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()
            .ok()
            .and_then(|me| me.parent().map(|d| d.join("op-sessiond")))
            .unwrap_or_default(),
    };
    if !path.is_absolute() || !path.is_file() {
        return Err(Failure::new(
            exit::CONFIG,
            format!(
                "cannot find op-sessiond at {:?} to write into the service definition",
                path
            ),
            "install op-sessiond in the same directory as op-session, or set OPSESSION_DAEMON to its absolute path",
        ));
    }
    Ok(path)
}

fn render_socket_unit() -> String {
    format!("# {WRITTEN_BY}\n{SOCKET_UNIT}")
}

fn render_service_unit(daemon: &Path) -> Result<String> {
    let exec = systemd_exec_path(daemon)?;
    if !SERVICE_UNIT.contains(SHIPPED_EXEC_START) {
        return Err(Failure::new(
            exit::FAILED,
            "the built-in service unit has no ExecStart line to fill in",
            "report this bug",
        ));
    }
    Ok(format!(
        "# {WRITTEN_BY}\n{}",
        SERVICE_UNIT.replacen(SHIPPED_EXEC_START, &format!("ExecStart={exec}"), 1)
    ))
}

/// A path as the first word of `ExecStart=`: `%` and `$` doubled so systemd expands neither,
/// and quoted when it holds anything systemd would split on.
fn systemd_exec_path(path: &Path) -> Result<String> {
    let s = path
        .to_str()
        .filter(|s| !s.contains(['\n', '\r']))
        .ok_or_else(|| {
            Failure::new(
                exit::CONFIG,
                format!("{path:?} cannot be written into a unit file"),
                "install op-sessiond under a path without newlines or non-UTF-8 bytes",
            )
        })?;
    let escaped = s.replace('%', "%%").replace('$', "$$");
    if escaped.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';')) {
        Ok(format!(
            "\"{}\"",
            escaped.replace('\\', "\\\\").replace('"', "\\\"")
        ))
    } else {
        Ok(escaped)
    }
}

fn render_plist(daemon: &Path, socket: &Path, log: &Path, path_var: &str) -> Result<String> {
    let text = |p: &Path| {
        p.to_str().map(xml_escape).ok_or_else(|| {
            Failure::new(
                exit::CONFIG,
                format!("{p:?} is not UTF-8 and cannot be written into a plist"),
                "use paths that are valid UTF-8",
            )
        })
    };
    // The template's comment explains the placeholders; the installed file says who wrote it.
    let body = match (PLIST.find("<!--"), PLIST.find("-->")) {
        (Some(start), Some(end)) if start < end => format!(
            "{}<!-- {WRITTEN_BY} -->{}",
            &PLIST[..start],
            &PLIST[end + 3..]
        ),
        _ => PLIST.to_string(),
    };
    Ok(body
        .replace("@OPSESSIOND@", &text(daemon)?)
        .replace("@SOCKET@", &text(socket)?)
        .replace("@LOG@", &text(log)?)
        .replace("@PATH@", &xml_escape(path_var)))
}

/// launchd's PATH for the daemon: Homebrew's bins and the system's, with the directory of the
/// `op` found on our PATH first when it is elsewhere (our own `op` shim does not count).
fn launchd_path() -> String {
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok());
    let op_dir = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .filter(|d| d.is_absolute())
            .find(|d| {
                let op = d.join("op");
                let real = op.canonicalize().ok();
                op.metadata()
                    .is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
                    && real.is_some()
                    && real != me
            })
    });
    match op_dir.and_then(|d| d.to_str().map(str::to_string)) {
        Some(d) if !d.contains(':') && !LAUNCHD_PATH.split(':').any(|p| p == d) => {
            format!("{d}:{LAUNCHD_PATH}")
        }
        _ => LAUNCHD_PATH.to_string(),
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A command line a person can paste into a POSIX shell.
fn shell_words(argv: &[String]) -> String {
    let mut out = String::new();
    for (i, word) in argv.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let plain = !word.is_empty()
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
        if plain {
            out.push_str(word);
        } else {
            let _ = write!(out, "'{}'", word.replace('\'', r"'\''"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_service_has_the_line_install_fills_in() {
        let unit = render_service_unit(Path::new("/home/a b/bin/op-sessiond")).expect("renders");
        assert!(unit.contains("ExecStart=\"/home/a b/bin/op-sessiond\" --foreground"));
        assert!(!unit.contains(SHIPPED_EXEC_START));
    }

    #[test]
    fn exec_paths_are_escaped_for_systemd() {
        let p = |s: &str| systemd_exec_path(Path::new(s)).expect("escapes");
        assert_eq!(p("/usr/bin/op-sessiond"), "/usr/bin/op-sessiond");
        assert_eq!(p("/x/100%/op-sessiond"), "/x/100%%/op-sessiond");
        assert_eq!(p("/x/$HOME/d"), "/x/$$HOME/d");
        assert_eq!(p("/x/\"q\"/d"), "\"/x/\\\"q\\\"/d\"");
        assert!(systemd_exec_path(Path::new("/x\ny")).is_err());
    }

    #[test]
    fn the_plist_gets_every_placeholder_filled_and_escaped() {
        let plist = render_plist(
            Path::new("/Users/a&b/bin/op-sessiond"),
            Path::new("/tmp/op-session-501/agent.sock"),
            Path::new("/Users/a&b/Library/Logs/op-sessiond.log"),
            LAUNCHD_PATH,
        )
        .expect("renders");
        assert!(!plist.contains('@'), "{plist}");
        assert!(plist.contains("<string>/Users/a&amp;b/bin/op-sessiond</string>"));
        assert_eq!(plist.matches("/tmp/op-session-501/agent.sock").count(), 2);
        assert!(plist.contains("<integer>384</integer>"));
    }

    #[test]
    fn commands_are_printed_so_a_shell_reads_them_back() {
        let argv: Vec<String> = ["launchctl", "bootstrap", "gui/501", "/Users/a b/x's.plist"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            shell_words(&argv),
            r"launchctl bootstrap gui/501 '/Users/a b/x'\''s.plist'"
        );
    }
}

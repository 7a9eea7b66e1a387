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
//! Each manager lives in its own module ([`systemd`], [`launchd`]) behind [`ServiceManager`]:
//! its paths, its rendering and its steps. This module owns what they share: detection, the
//! plan of [`Step`]s and carrying it out, and `status`.
//!
//! `OPSESSION_SERVICE_MANAGER` overrides detection (tests use it to exercise both kinds on one
//! machine): `systemd` or `launchd` choose that kind of files on any platform (commands still
//! run only where that manager actually runs), `none` writes this platform's files and runs
//! nothing.

use std::fmt::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use op_session_protocol::exit;

use crate::cli::ServiceAction;
use crate::error::{Failure, Result};

pub mod launchd;
pub mod systemd;

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
                outln!(
                    "op-sessiond starts on the first connection to {}",
                    host.manager.socket().display()
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

/// One kind of service manager: everything that differs between systemd and launchd.
trait ServiceManager: std::fmt::Debug {
    /// What `status` calls the installed files.
    fn describe(&self) -> &'static str;
    /// The files we own, with the content install writes.
    fn files(&self) -> &[(PathBuf, String)];
    /// The socket the service manager listens on.
    fn socket(&self) -> &Path;
    /// `None` when this manager runs here and we may drive it, else why not.
    fn absent_reason(&self) -> Option<String>;
    /// A directory install must create (mode 0700) before the manager can listen, if any.
    fn socket_dir_needed(&self) -> Option<&Path> {
        None
    }
    /// What install does after writing the files (`changed`: some file was written).
    fn install_steps(&self, manager_runs: bool, changed: bool) -> Vec<Step>;
    /// What uninstall does, given the files that exist now.
    fn uninstall_steps(&self, manager_runs: bool, installed: &[&PathBuf]) -> Vec<Step>;
    /// Print what the manager says about the service (asked only where it runs); whether the
    /// socket is listening.
    fn report(&self) -> bool;
    /// Whether the socket's directory lets the manager listen (printing why not).
    fn socket_dir_ok(&self) -> bool {
        true
    }
}

/// Everything the actions need to know about this user and machine.
#[derive(Debug)]
struct Host {
    /// The manager whose files we write.
    manager: Box<dyn ServiceManager>,
    /// `None` when the service manager runs here and we may drive it; otherwise why not.
    manager_absent: Option<String>,
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
        let native_launchd = cfg!(target_os = "macos");
        let (launchd, disabled) = match forced.as_str() {
            "" => (native_launchd, false),
            "systemd" => (false, false),
            "launchd" => (true, false),
            "none" => (native_launchd, true),
            other => {
                return Err(Failure::usage(
                    format!("{ENV_MANAGER}={other:?} is not a service manager"),
                    format!("set {ENV_MANAGER} to systemd, launchd or none, or unset it"),
                ));
            }
        };
        let home = home()?;
        let daemon = daemon_path()?;
        let uid = nix::unistd::getuid().as_raw();
        let manager: Box<dyn ServiceManager> = if launchd {
            Box::new(launchd::Launchd::new(&home, &daemon, uid)?)
        } else {
            Box::new(systemd::Systemd::new(&home, &daemon)?)
        };
        let manager_absent = if disabled {
            Some(format!("{ENV_MANAGER}=none"))
        } else {
            manager.absent_reason()
        };
        Ok(Host {
            manager,
            manager_absent,
        })
    }

    fn manager_runs(&self) -> bool {
        self.manager_absent.is_none()
    }

    fn install_steps(&self) -> Result<Vec<Step>> {
        let mut steps = Vec::new();
        if let Some(dir) = self.manager.socket_dir_needed() {
            steps.push(Step::PrivateDir(dir.to_path_buf()));
        }
        let mut changed = false;
        for (path, content) in self.manager.files() {
            let step = file_step(path, content)?;
            changed |= matches!(step, Step::Write(..));
            steps.push(step);
        }
        steps.extend(self.manager.install_steps(self.manager_runs(), changed));
        Ok(steps)
    }

    fn uninstall_steps(&self) -> Vec<Step> {
        let installed: Vec<&PathBuf> = self
            .manager
            .files()
            .iter()
            .map(|(p, _)| p)
            .filter(|p| p.symlink_metadata().is_ok())
            .collect();
        let mut steps = self
            .manager
            .uninstall_steps(self.manager_runs(), &installed);
        if steps.is_empty() {
            steps.push(Step::Note("not installed; nothing to remove".into()));
        }
        steps
    }

    fn status(&self) -> Result<i32> {
        let mut all_installed = true;
        outln!("kind: {}", self.manager.describe());
        for (path, content) in self.manager.files() {
            let state = match std::fs::read_to_string(path) {
                Ok(c) if c == *content => "installed",
                Ok(_) => "installed, but differs from what `op-session service install` writes now",
                Err(_) => {
                    all_installed = false;
                    "not installed"
                }
            };
            outln!("{}: {state}", path.display());
        }
        let mut listening = match &self.manager_absent {
            Some(why) => {
                outln!("service manager: not asked ({why})");
                true
            }
            None => self.manager.report(),
        };
        if all_installed && !self.manager.socket_dir_ok() {
            listening = false;
        }
        outln!("socket: {}", self.manager.socket().display());
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
        let ours = self.manager.socket();
        if clients != ours {
            eprintln!(
                "op-session: note: clients in this environment use {} (OPSESSION_SOCKET or XDG_RUNTIME_DIR), not the service's {}; fix: unset OPSESSION_SOCKET or point it at the service's socket",
                clients.display(),
                ours.display()
            );
        }
    }
}

/// Do (or, for a dry run, print) the steps. Commands run only where the manager runs; where
/// it does not, they are printed for the person to run.
fn carry_out(host: &Host, steps: &[Step], dry_run: bool) -> Result<()> {
    if dry_run {
        outln!("# dry run: nothing is written, removed or run");
    }
    let mut not_run: Vec<&[String]> = Vec::new();
    let mut changed = false;
    for step in steps {
        match step {
            Step::PrivateDir(dir) if dry_run => {
                outln!("# would create directory {} (mode 0700)", dir.display());
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
                outln!("created {} (mode 0700)", dir.display());
                changed = true;
            }
            Step::Write(path, content) if dry_run => {
                outln!("# would write {} (mode 0644):", path.display());
                out!("{content}");
                if !content.ends_with('\n') {
                    outln!();
                }
            }
            Step::Write(path, content) => {
                write_file(path, content).map_err(|e| io_failure("cannot write", path, e))?;
                outln!("wrote {}", path.display());
                changed = true;
            }
            Step::Chmod(path) if dry_run => {
                outln!("# would chmod 0644 {} (content unchanged)", path.display());
            }
            Step::Chmod(path) => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
                    .map_err(|e| io_failure("cannot chmod", path, e))?;
                outln!("chmod 0644 {} (content unchanged)", path.display());
                changed = true;
            }
            Step::Unchanged(path) => {
                let prefix = if dry_run { "# " } else { "" };
                outln!("{prefix}unchanged {}", path.display());
            }
            Step::Remove(path) if dry_run => outln!("# would remove {}", path.display()),
            Step::Remove(path) => {
                match std::fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_failure("cannot remove", path, e)),
                }
                outln!("removed {}", path.display());
                changed = true;
            }
            Step::Run(argv) if dry_run || !host.manager_runs() => not_run.push(argv),
            Step::Run(argv) => {
                outln!("$ {}", shell_words(argv));
                run_command(argv)?;
            }
            Step::Note(note) => outln!("{}{note}", if dry_run { "# " } else { "" }),
        }
    }
    if !dry_run && !changed {
        outln!("no files changed");
    }
    if !not_run.is_empty() {
        match (&host.manager_absent, dry_run) {
            (_, true) => outln!("# would run:"),
            (Some(why), false) => outln!("{why}; where it runs, also run:"),
            (None, false) => {}
        }
        for argv in not_run {
            outln!("{}", shell_words(argv));
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

/// Write `content` to `path`, mode 0644, atomically, creating its directories.
fn write_file(path: &Path, content: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new("/")))?;
    // 0644 exactly, whatever the umask: service managers and people read these.
    op_session_paths::write_atomic(path, content.as_bytes(), Some(0o644))
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

/// An absolute directory from the environment.
fn env_dir(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// `$HOME`, which both managers' files live under.
fn home() -> Result<PathBuf> {
    env_dir("HOME").ok_or_else(|| {
        Failure::new(
            exit::CONFIG,
            "HOME is not set to an absolute path",
            "set HOME to your home directory",
        )
    })
}

/// The op-sessiond the service runs: the one clients would start ([`crate::conn::
/// daemon_binary`]), which must be an absolute path to a file to go into a service definition.
fn daemon_path() -> Result<PathBuf> {
    let path = crate::conn::daemon_binary();
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

//! The systemd user manager: where the units live, how they are rendered from the shipped
//! templates, and the `systemctl --user` steps that install, remove and report them.
//!
//! The socket unit listens on `%t/op-session/agent.sock`, which is
//! `op_session_paths::systemd_socket_path` (the clients' default wherever `$XDG_RUNTIME_DIR`
//! is set).

use std::path::{Path, PathBuf};

use op_session_protocol::exit;

use super::{ServiceManager, Step, WRITTEN_BY, capture, env_dir};
use crate::error::{Failure, Result};

/// The shipped units; `service install` writes these, filled in.
const SOCKET_UNIT: &str = include_str!("../../../systemd/op-sessiond.socket");
const SERVICE_UNIT: &str = include_str!("../../../systemd/op-sessiond.service");

/// The `ExecStart=` line of the shipped service; install swaps in the real path.
const SHIPPED_EXEC_START: &str = "ExecStart=/usr/local/bin/op-sessiond";
/// The socket unit's file name.
pub const SOCKET_UNIT_NAME: &str = "op-sessiond.socket";
/// The service unit's file name.
pub const SERVICE_UNIT_NAME: &str = "op-sessiond.service";

/// `~/.config/systemd/user/op-sessiond.{socket,service}`.
#[derive(Debug)]
pub struct Systemd {
    /// The units, with the content install writes.
    files: Vec<(PathBuf, String)>,
    /// The socket the socket unit listens on.
    socket: PathBuf,
}

/// The directory this user's units go in: `$XDG_CONFIG_HOME/systemd/user`, else
/// `~/.config/systemd/user`.
pub fn user_unit_dir(home: &Path) -> PathBuf {
    env_dir("XDG_CONFIG_HOME")
        .unwrap_or_else(|| home.join(".config"))
        .join("systemd")
        .join("user")
}

impl Systemd {
    /// The units for this user, running `daemon`.
    pub fn new(home: &Path, daemon: &Path) -> Result<Systemd> {
        let dir = user_unit_dir(home);
        Ok(Systemd {
            files: vec![
                (dir.join(SOCKET_UNIT_NAME), render_socket_unit()),
                (dir.join(SERVICE_UNIT_NAME), render_service_unit(daemon)?),
            ],
            socket: op_session_paths::systemd_socket_path(),
        })
    }

    /// Something answers on the socket path while systemd's socket unit is not active: a
    /// manual or auto-started daemon. Enabling the socket now would take the path from it.
    fn foreign_daemon_serves(&self) -> bool {
        let active =
            capture(&query(&["is-active", "--quiet", SOCKET_UNIT_NAME])).is_some_and(|(ok, _)| ok);
        !active && std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
    }
}

impl ServiceManager for Systemd {
    fn describe(&self) -> &'static str {
        "systemd user units"
    }

    fn files(&self) -> &[(PathBuf, String)] {
        &self.files
    }

    fn socket(&self) -> &Path {
        &self.socket
    }

    fn absent_reason(&self) -> Option<String> {
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

    fn install_steps(&self, manager_runs: bool, changed: bool) -> Vec<Step> {
        let mut steps = Vec::new();
        if changed {
            steps.push(Step::Run(systemctl(&["daemon-reload"])));
        }
        if manager_runs && self.foreign_daemon_serves() {
            steps.push(Step::Run(systemctl(&["enable", SOCKET_UNIT_NAME])));
            steps.push(Step::Note(format!(
                "an op-sessiond started outside systemd serves {}; to hand the socket to systemd, run `op-session stop` (it wipes its sessions), then `systemctl --user start {SOCKET_UNIT_NAME}`",
                self.socket.display()
            )));
        } else {
            steps.push(Step::Run(systemctl(&["enable", "--now", SOCKET_UNIT_NAME])));
        }
        steps
    }

    fn uninstall_steps(&self, manager_runs: bool, installed: &[&PathBuf]) -> Vec<Step> {
        let mut steps = Vec::new();
        let enabled = manager_runs
            && capture(&query(&["is-enabled", SOCKET_UNIT_NAME])).is_some_and(|(ok, _)| ok);
        if !installed.is_empty() || enabled {
            steps.push(Step::Run(systemctl(&[
                "disable",
                "--now",
                SOCKET_UNIT_NAME,
                SERVICE_UNIT_NAME,
            ])));
        }
        steps.extend(installed.iter().map(|p| Step::Remove(p.to_path_buf())));
        // `enable` links the socket into sockets.target.wants; with no manager here to
        // `disable` it, remove the link ourselves so nothing dangles.
        if !manager_runs && let Some(dir) = self.files[0].0.parent() {
            let wants = dir.join("sockets.target.wants").join(SOCKET_UNIT_NAME);
            if wants
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
            {
                steps.push(Step::Remove(wants));
            }
        }
        if !installed.is_empty() {
            steps.push(Step::Run(systemctl(&["daemon-reload"])));
        }
        steps
    }

    fn report(&self) -> bool {
        let mut listening = true;
        for unit in [SOCKET_UNIT_NAME, SERVICE_UNIT_NAME] {
            let active = capture(&query(&["is-active", unit]))
                .map(|(_, s)| s)
                .unwrap_or_else(|| "unknown".into());
            let enabled = capture(&query(&["is-enabled", unit]))
                .map(|(_, s)| s)
                .unwrap_or_else(|| "unknown".into());
            if unit == SOCKET_UNIT_NAME && active != "active" {
                listening = false;
            }
            outln!("systemd: {unit}: {active} ({enabled})");
        }
        listening
    }
}

/// `systemctl --user ARGS…`, as a step's command line.
fn systemctl(args: &[&str]) -> Vec<String> {
    query(args).into_iter().map(str::to_string).collect()
}

/// `systemctl --user ARGS…`, for a read-only [`capture`].
fn query<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["systemctl", "--user"];
    v.extend_from_slice(args);
    v
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
}

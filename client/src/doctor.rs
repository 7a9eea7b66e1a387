//! `op-session doctor [--json]`: check everything op-session depends on and say how to fix
//! what is wrong, one line per check.
//!
//! Owns the list of checks and their verdicts: ✓ fine, ✗ broken (doctor exits 1), ! worth
//! doing but optional (a missing service, shim or agent integration; clients still work). Each
//! check is a function of what it inspects, so tests can break one thing at a time and see that
//! check, and only it, named. Reads only; the one side effect is the daemon auto-start that any
//! client call would cause (unless `--no-autostart`), so a daemon that cannot start is caught.
//! Never prints a token or a value: the leftover-token check names files and variables only.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use op_session_protocol::{Request, Response, exit};
use serde::Serialize;

use crate::agent::{self, Presence};
use crate::cli::AgentKind;
use crate::conn::{Target, daemon_binary, request};
use crate::error::{Failure, Result};
use crate::migrate::skill_session_file;
use crate::status::unexpected_response;

/// The group the 1Password CLI must be setgid to on Linux for the desktop app to trust it.
const OP_GROUP: &str = "onepassword-cli";

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Fine.
    Ok,
    /// Optional and missing: worth doing, but clients work without it.
    Warn,
    /// Broken.
    Fail,
}

/// One check's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// A stable name (`op`, `daemon`, `agent:codex`, …).
    pub check: String,
    /// The verdict.
    pub status: Verdict,
    /// What was found.
    pub detail: String,
    /// What to do, when something is to be done.
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: &str, detail: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            status: Verdict::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(check: &str, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            status: Verdict::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn warn(check: &str, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            status: Verdict::Warn,
            ..Finding::fail(check, detail, fix)
        }
    }

    fn line(&self) -> String {
        let mark = match self.status {
            Verdict::Ok => "✓",
            Verdict::Warn => "!",
            Verdict::Fail => "✗",
        };
        match &self.fix {
            Some(fix) => format!("{mark} {}: {} (fix: {fix})", self.check, self.detail),
            None => format!("{mark} {}: {}", self.check, self.detail),
        }
    }
}

/// The JSON report.
#[derive(Debug, Serialize)]
struct Report<'a> {
    /// No check failed.
    ok: bool,
    /// Every check, in order.
    checks: &'a [Finding],
}

/// `doctor`.
pub fn doctor(t: &Target, json: bool) -> Result<i32> {
    let mut findings = Vec::new();
    let daemon = check_daemon(t);
    findings.push(daemon.finding);
    findings.extend(match daemon.op_path {
        // The daemon answered: the op it runs, or why it has none.
        Some(Ok(path)) => check_op(Some(&path)),
        Some(Err(why)) => vec![Finding::fail(
            "op",
            why.message.trim().to_string(),
            why.fix
                .unwrap_or_else(|| "install the 1Password CLI or fix op_path".into()),
        )],
        // No daemon to ask: the op it would most likely find.
        None => check_op(op_on_path().as_deref()),
    });
    findings.push(check_config());
    findings.push(check_socket_dir(&t.socket));
    findings.push(check_service());
    findings.push(check_shim());
    for kind in [AgentKind::ClaudeCode, AgentKind::Codex, AgentKind::Cursor] {
        findings.push(check_agent(kind));
    }
    findings.push(check_token_files());
    findings.push(check_token_env());
    let ok = findings.iter().all(|f| f.status != Verdict::Fail);
    if json {
        let report = Report {
            ok,
            checks: &findings,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        for f in &findings {
            println!("{}", f.line());
        }
    }
    Ok(if ok { exit::OK } else { exit::FAILED })
}

/// What the daemon check learned.
struct DaemonCheck {
    finding: Finding,
    /// The `op` the daemon runs (or why it has none), when it answered.
    op_path: Option<std::result::Result<String, Failure>>,
}

fn check_daemon(t: &Target) -> DaemonCheck {
    let status = match request(t, &Request::Status) {
        Ok(Response::Status(s)) => s,
        Ok(other) => {
            return DaemonCheck {
                finding: Finding::fail(
                    "daemon",
                    format!("unexpected answer at {}: {other:?}", t.socket.display()),
                    "op-session stop, then run any op-session command",
                ),
                op_path: None,
            };
        }
        Err(f) => {
            return DaemonCheck {
                finding: Finding::fail(
                    "daemon",
                    format!(
                        "not reachable at {}: {}",
                        t.socket.display(),
                        f.message.trim()
                    ),
                    f.fix.unwrap_or_else(|| "op-session service install".into()),
                ),
                op_path: None,
            };
        }
    };
    let op_path = match request(t, &Request::OpPath) {
        Ok(Response::OpPath { path, .. }) => Ok(path),
        Ok(Response::Error(e)) => Err(Failure::from(e)),
        Ok(other) => Err(unexpected_response(&other)),
        Err(f) => Err(f),
    };
    let ours = env!("CARGO_PKG_VERSION");
    let finding = if status.version != ours {
        Finding::fail(
            "daemon",
            format!(
                "op-sessiond {} is running, but this op-session is {ours}",
                status.version
            ),
            "op-session stop (the next call starts the installed daemon)",
        )
    } else {
        Finding::ok(
            "daemon",
            format!(
                "op-sessiond {} (pid {}) at {}, started by {}",
                status.version, status.pid, status.socket, status.started_by
            ),
        )
    };
    DaemonCheck {
        finding,
        op_path: Some(op_path),
    }
}

/// The first `op` on PATH that is not our own shim.
fn op_on_path() -> Option<String> {
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| std::fs::canonicalize(p).ok());
    path_ops()
        .into_iter()
        .find(|p| std::fs::canonicalize(p).ok() != me)
        .map(|p| p.display().to_string())
}

/// Every executable `op` on PATH, in PATH order.
fn path_ops() -> Vec<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("op"))
        .filter(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .collect()
}

fn check_op(op_path: Option<&str>) -> Vec<Finding> {
    let Some(op) = op_path else {
        return vec![Finding::fail(
            "op",
            "the 1Password CLI was not found (not configured, not on PATH)",
            "install it (developer.1password.com/docs/cli/get-started) or set op_path in config.toml",
        )];
    };
    let meta = match std::fs::metadata(op) {
        Ok(m) => m,
        Err(e) => {
            return vec![Finding::fail(
                "op",
                format!("{op}: {e}"),
                "install the 1Password CLI or fix op_path in config.toml",
            )];
        }
    };
    let version = Command::new(op)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .env_remove("OP_SESSION")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let mode = meta.permissions().mode() & 0o7777;
    let owner = user_name(meta.uid());
    let me = nix::unistd::geteuid().as_raw();
    let mut findings = Vec::new();
    let described = format!(
        "{op} ({}), owner {owner}, mode {mode:04o}",
        version.as_deref().unwrap_or("version unknown")
    );
    findings.push(if version.is_none() {
        Finding::fail(
            "op",
            format!("{described}: `op --version` failed"),
            "reinstall the 1Password CLI",
        )
    } else if mode & 0o022 != 0 {
        Finding::fail(
            "op",
            format!("{described}: others can replace it"),
            format!("chmod go-w {op}"),
        )
    } else if meta.uid() != 0 && meta.uid() != me {
        Finding::fail(
            "op",
            format!("{described}: owned by another user"),
            format!("sudo chown root {op}"),
        )
    } else {
        Finding::ok("op", described)
    });
    if cfg!(target_os = "linux") {
        let group = group_name(meta.gid());
        findings.push(if mode & 0o2000 != 0 && group == OP_GROUP {
            Finding::ok("op-group", format!("setgid {OP_GROUP}"))
        } else {
            Finding::warn(
                "op-group",
                format!(
                    "not setgid {OP_GROUP} (group {group}, mode {mode:04o}): the desktop app \
                     integration will not trust it; token and service-account sessions work"
                ),
                format!("sudo chgrp {OP_GROUP} {op} && sudo chmod g+s {op}"),
            )
        });
    }
    findings
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

fn group_name(gid: u32) -> String {
    nix::unistd::Group::from_gid(gid.into())
        .ok()
        .flatten()
        .map_or_else(|| gid.to_string(), |g| g.name)
}

fn check_config() -> Finding {
    let path = match op_session_paths::config_path(None) {
        Ok(p) => p,
        Err(e) => return Finding::fail("config", e.to_string(), "set HOME or XDG_CONFIG_HOME"),
    };
    if !path.exists() {
        return Finding::ok(
            "config",
            format!("{} does not exist; the defaults apply", path.display()),
        );
    }
    let daemon = daemon_binary();
    let out = Command::new(&daemon)
        .arg("--check-config")
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            Finding::ok("config", format!("{} is valid", path.display()))
        }
        Ok(o) => Finding::fail(
            "config",
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .trim_start_matches("op-sessiond: ")
                .to_string(),
            format!(
                "fix {}; `op-sessiond --check-config` checks it again",
                path.display()
            ),
        ),
        Err(e) => Finding::fail(
            "config",
            format!("cannot run {} --check-config: {e}", daemon.display()),
            "install op-sessiond next to op-session or on PATH",
        ),
    }
}

fn check_socket_dir(socket: &Path) -> Finding {
    let Some(dir) = socket.parent() else {
        return Finding::fail(
            "socket-dir",
            "the socket path has no directory",
            "set OPSESSION_SOCKET",
        );
    };
    if !dir.exists() {
        return Finding::ok(
            "socket-dir",
            format!(
                "{} does not exist yet (made 0700 when the daemon starts)",
                dir.display()
            ),
        );
    }
    match op_session_paths::verify_private_dir(dir) {
        Ok(()) => Finding::ok(
            "socket-dir",
            format!("{} is yours, mode 0700", dir.display()),
        ),
        Err(op_session_paths::PathError::Insecure { reason, fix, .. }) => {
            Finding::fail("socket-dir", format!("{}: {reason}", dir.display()), fix)
        }
        Err(e) => Finding::fail("socket-dir", e.to_string(), "check the directory"),
    }
}

fn check_service() -> Finding {
    if cfg!(target_os = "macos") {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let plist = crate::service::launchd::plist_path(&home);
        return if plist.exists() {
            Finding::ok("service", format!("{} installed", plist.display()))
        } else {
            Finding::warn(
                "service",
                "no launchd agent; clients start the daemon on first use",
                "op-session service install",
            )
        };
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let user_units = crate::service::systemd::user_unit_dir(&home);
    let unit_dirs = [user_units.clone(), PathBuf::from("/usr/lib/systemd/user")];
    let Some(dir) = unit_dirs.iter().find(|d| {
        d.join("op-sessiond.socket").is_file() && d.join("op-sessiond.service").is_file()
    }) else {
        return Finding::warn(
            "service",
            "no systemd user units; clients start the daemon on first use",
            "op-session service install",
        );
    };
    let service = std::fs::read_to_string(dir.join("op-sessiond.service")).unwrap_or_default();
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    if !Path::new(&exec).is_file() {
        return Finding::fail(
            "service",
            format!(
                "{}/op-sessiond.service starts {exec:?}, which does not exist",
                dir.display()
            ),
            "op-session service install",
        );
    }
    let wants = user_units.join("sockets.target.wants/op-sessiond.socket");
    if std::fs::symlink_metadata(&wants).is_err() {
        return Finding::fail(
            "service",
            format!(
                "units in {} but op-sessiond.socket is not enabled",
                dir.display()
            ),
            "systemctl --user enable --now op-sessiond.socket",
        );
    }
    Finding::ok(
        "service",
        format!(
            "op-sessiond.socket enabled (units in {}, starting {exec})",
            dir.display()
        ),
    )
}

fn check_shim() -> Finding {
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| std::fs::canonicalize(p).ok());
    let ops = path_ops();
    let is_shim = |p: &PathBuf| me.is_some() && std::fs::canonicalize(p).ok() == me;
    let shim = ops.iter().position(is_shim);
    let real = ops.iter().position(|p| !is_shim(p));
    match (shim, real) {
        (Some(s), Some(r)) if s < r => Finding::ok(
            "shim",
            format!(
                "`op` on PATH is the shim {}, ahead of {}",
                ops[s].display(),
                ops[r].display()
            ),
        ),
        (Some(s), None) => Finding::ok(
            "shim",
            format!("`op` on PATH is the shim {}", ops[s].display()),
        ),
        (Some(s), Some(r)) => Finding::fail(
            "shim",
            format!(
                "the real op {} comes before the shim {} on PATH",
                ops[r].display(),
                ops[s].display()
            ),
            format!(
                "put {} before {} in PATH",
                ops[s].parent().unwrap_or(Path::new("/")).display(),
                ops[r].parent().unwrap_or(Path::new("/")).display()
            ),
        ),
        (None, _) => Finding::warn(
            "shim",
            "not installed; plain `op` calls do not go through op-session",
            "op-session shim install",
        ),
    }
}

fn check_agent(kind: AgentKind) -> Finding {
    let name = match kind {
        AgentKind::ClaudeCode => "claude-code",
        AgentKind::Codex => "codex",
        AgentKind::Cursor => "cursor",
    };
    let check = format!("agent:{name}");
    let fix = format!("op-session agent install {name}");
    match agent::user_scope().map(|scope| agent::presence(kind, &scope)) {
        Some(Presence::Current) => Finding::ok(&check, "set up"),
        Some(Presence::Stale) => Finding::fail(
            &check,
            "partly set up, or out of date (op-session moved, or its instructions changed)",
            fix,
        ),
        Some(Presence::Absent) | None => Finding::warn(&check, "not set up for your user", fix),
    }
}

fn check_token_files() -> Finding {
    match skill_session_file() {
        Some(f) if std::fs::symlink_metadata(&f).is_ok() => Finding::fail(
            "token-files",
            format!("{} holds a session token on disk", f.display()),
            "op-session init --import-skill-session",
        ),
        _ => Finding::ok("token-files", "no leftover session token files"),
    }
}

fn check_token_env() -> Finding {
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| op_grammar::env::is_credential_var(k))
        .collect();
    names.sort();
    if names.is_empty() {
        Finding::ok("token-env", "no op session token in this environment")
    } else {
        Finding::fail(
            "token-env",
            format!(
                "{} set in this environment: every program started from here inherits it",
                names.join(", ")
            ),
            format!(
                "unset {} and remove it from your shell profile; `op-session init` holds sessions now",
                names.join(" ")
            ),
        )
    }
}

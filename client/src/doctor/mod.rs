//! `op-session doctor [--json]`: check everything op-session depends on and say how to fix
//! what is wrong, one line per check.
//!
//! Owns the list of checks and their verdicts: ✓ fine, ✗ broken (doctor exits 1), ! worth
//! doing but optional (a missing service, shim or agent integration; clients still work). Each
//! check is a function of what it inspects, so tests can break one thing at a time and see that
//! check, and only it, named. Reads only; the one side effect is the daemon auto-start that any
//! client call would cause (unless `--no-autostart`), so a daemon that cannot start is caught.
//! Never prints a token or a value: the leftover-token check names files and variables only.
//!
//! This module runs the checks in order, checks the daemon, its config and the socket
//! directory itself, and prints the report; [`op`] checks the 1Password CLI and [`setup`] what
//! is installed around it (service, shim, agents, leftover tokens).

mod op;
mod setup;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use op_session_protocol::{Request, Response, exit};
use serde::Serialize;

use crate::cli::AgentKind;
use crate::conn::{Target, daemon_binary, request};
use crate::error::{Failure, Result};
use crate::status::unexpected_response;

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
        Some(Ok(path)) => op::check_op(Some(&path)),
        Some(Err(why)) => vec![Finding::fail(
            "op",
            why.message.trim().to_string(),
            why.fix
                .unwrap_or_else(|| "install the 1Password CLI or fix op_path".into()),
        )],
        // No daemon to ask: the op it would most likely find.
        None => op::check_op(op::op_on_path().as_deref()),
    });
    findings.push(check_config(daemon.status.as_ref()));
    findings.push(check_socket_dir(&t.socket));
    findings.push(setup::check_service());
    findings.push(setup::check_shim());
    for kind in [AgentKind::ClaudeCode, AgentKind::Codex, AgentKind::Cursor] {
        findings.push(setup::check_agent(kind));
    }
    findings.push(setup::check_token_files());
    findings.push(setup::check_token_env());
    let ok = findings.iter().all(|f| f.status != Verdict::Fail);
    if json {
        let report = Report {
            ok,
            checks: &findings,
        };
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        for f in &findings {
            outln!("{}", f.line());
        }
    }
    Ok(if ok { exit::OK } else { exit::FAILED })
}

/// What the daemon check learned.
struct DaemonCheck {
    finding: Finding,
    /// Its status, when it answered.
    status: Option<op_session_protocol::StatusReport>,
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
                status: None,
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
                status: None,
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
    let binary = daemon_binary();
    let finding = if status.version != ours {
        Finding::fail(
            "daemon",
            format!(
                "op-sessiond {} is running, but this op-session is {ours}",
                status.version
            ),
            "op-session stop (the next call starts the installed daemon)",
        )
    } else if changed_since_start(&binary, status.uptime_s) {
        Finding::fail(
            "daemon",
            format!(
                "{} changed after the running op-sessiond (pid {}) started: it runs an older binary",
                binary.display(),
                status.pid
            ),
            "restart to apply: `op-session stop` (the next call starts the new one)",
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
        status: Some(status),
        op_path: Some(op_path),
    }
}

/// Whether `path` was modified after a process that has run `uptime_s` seconds started. Uptime
/// is whole seconds, so `now - uptime` is at or just after the real start; one more second of
/// slack keeps a file written just before the start from counting.
fn changed_since_start(path: &Path, uptime_s: u64) -> bool {
    let Ok(modified) = std::fs::metadata(path).and_then(|m| m.modified()) else {
        return false;
    };
    let now = std::time::SystemTime::now();
    let started = now - std::time::Duration::from_secs(uptime_s);
    modified > started + std::time::Duration::from_secs(1)
}

/// The config the next daemon start will read: it parses, its `op_path` is an executable file
/// (`op-sessiond --check-config` checks both), and the running daemon, if any, has not seen it
/// change since it started. The file is the one the daemon reads: the running daemon's (its
/// `--config`, given by a person or the service manager, is given again at the next start), else
/// the standard location under the password database's home, which no variable moves
/// (docs/architecture.md, "Auto-start").
fn check_config(status: Option<&op_session_protocol::StatusReport>) -> Finding {
    let running = status
        .and_then(|s| s.config_path.as_deref())
        .map(PathBuf::from);
    let path = match running {
        Some(p) => p,
        None => match op_session_paths::standard_config_path() {
            Ok(p) => p,
            Err(e) => {
                return Finding::fail(
                    "config",
                    e.to_string(),
                    "run op-session as a user with an entry in the password database",
                );
            }
        },
    };
    const RESTART: &str = "restart to apply: `op-session stop` (the next call starts it again)";
    if !path.exists() {
        return Finding::ok(
            "config",
            format!("{} does not exist; the defaults apply", path.display()),
        );
    }
    let daemon = daemon_binary();
    // The daemon reads no config location from the environment: name the file.
    let out = Command::new(&daemon)
        .arg("--check-config")
        .arg("--config")
        .arg(&path)
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => match status {
            Some(s) if changed_since_start(&path, s.uptime_s) => Finding::fail(
                "config",
                format!(
                    "{} changed after the running op-sessiond (pid {}) started; it still uses the old settings",
                    path.display(),
                    s.pid
                ),
                RESTART,
            ),
            _ => Finding::ok("config", format!("{} is valid", path.display())),
        },
        Ok(o) => {
            let detail = String::from_utf8_lossy(&o.stderr)
                .trim()
                .trim_start_matches("op-sessiond: ")
                .to_string();
            let fix = if detail.contains("op_path") {
                format!(
                    "install the 1Password CLI there or fix op_path in {}; then `op-session stop` so the next start reads it",
                    path.display()
                )
            } else {
                format!(
                    "fix {}; `op-sessiond --check-config` checks it again",
                    path.display()
                )
            };
            Finding::fail("config", detail, fix)
        }
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

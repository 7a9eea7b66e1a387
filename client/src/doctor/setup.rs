//! Doctor's checks of how op-session is set up around the person: the service definition, the
//! `op` shim, the agent integrations, and session tokens left in files or the environment
//! (named, never printed).

use std::path::{Path, PathBuf};

use super::Finding;
use super::op::path_ops;
use crate::agent::{self, Presence};
use crate::cli::AgentKind;
use crate::migrate::skill_session_file;
use crate::service::systemd::{SERVICE_UNIT_NAME, SOCKET_UNIT_NAME};

pub(super) fn check_service() -> Finding {
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
    let Some(dir) = unit_dirs
        .iter()
        .find(|d| d.join(SOCKET_UNIT_NAME).is_file() && d.join(SERVICE_UNIT_NAME).is_file())
    else {
        return Finding::warn(
            "service",
            "no systemd user units; clients start the daemon on first use",
            "op-session service install",
        );
    };
    let service = std::fs::read_to_string(dir.join(SERVICE_UNIT_NAME)).unwrap_or_default();
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
                "{}/{SERVICE_UNIT_NAME} starts {exec:?}, which does not exist",
                dir.display()
            ),
            "op-session service install",
        );
    }
    let wants = user_units
        .join("sockets.target.wants")
        .join(SOCKET_UNIT_NAME);
    if std::fs::symlink_metadata(&wants).is_err() {
        return Finding::fail(
            "service",
            format!(
                "units in {} but {SOCKET_UNIT_NAME} is not enabled",
                dir.display()
            ),
            format!("systemctl --user enable --now {SOCKET_UNIT_NAME}"),
        );
    }
    Finding::ok(
        "service",
        format!(
            "{SOCKET_UNIT_NAME} enabled (units in {}, starting {exec})",
            dir.display()
        ),
    )
}

pub(super) fn check_shim() -> Finding {
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

pub(super) fn check_agent(kind: AgentKind) -> Finding {
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

pub(super) fn check_token_files() -> Finding {
    match skill_session_file() {
        Some(f) if std::fs::symlink_metadata(&f).is_ok() => Finding::fail(
            "token-files",
            format!("{} holds a session token on disk", f.display()),
            "op-session init --import-skill-session",
        ),
        _ => Finding::ok("token-files", "no leftover session token files"),
    }
}

pub(super) fn check_token_env() -> Finding {
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

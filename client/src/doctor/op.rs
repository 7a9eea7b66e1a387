//! Doctor's checks of the 1Password CLI itself: which `op` the daemon runs (or would find on
//! PATH), its version, who owns it, and on Linux whether it is setgid `onepassword-cli` so the
//! desktop app trusts it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::Finding;

/// The group the 1Password CLI must be setgid to on Linux for the desktop app to trust it.
const OP_GROUP: &str = "onepassword-cli";

/// The first `op` on PATH that is not our own shim.
pub(super) fn op_on_path() -> Option<String> {
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| std::fs::canonicalize(p).ok());
    path_ops()
        .into_iter()
        .find(|p| std::fs::canonicalize(p).ok() != me)
        .map(|p| p.display().to_string())
}

/// Every executable `op` on PATH, in PATH order.
pub(super) fn path_ops() -> Vec<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("op"))
        .filter(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .collect()
}

pub(super) fn check_op(op_path: Option<&str>) -> Vec<Finding> {
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

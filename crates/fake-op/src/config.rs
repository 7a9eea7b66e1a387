//! op's configuration directory (docs/op-behaviour.md §5.3): where it is, the 700 rule, and the `config`
//! file fake-op mirrors there.
//!
//! The real state lives in `$FAKE_OP_HOME`; the config directory is checked (op refuses one
//! wider than 700) and, only when the caller named it with `--config` or `OP_CONFIG_DIR`,
//! written to after a sign-in, so tests never touch a developer's real `~/.config/op`.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use crate::error::OpError;
use crate::invocation::Ctx;
use crate::state::State;

/// The config directory op would use, and whether the caller named it explicitly.
pub fn locate(ctx: &Ctx) -> Option<(PathBuf, bool)> {
    if let Some(dir) = ctx.args.value("config") {
        return Some((PathBuf::from(dir), true));
    }
    if let Some(dir) = ctx.env.get("OP_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some((PathBuf::from(dir), true));
    }
    let home = ctx.env.get("HOME").map(PathBuf::from);
    let xdg = ctx
        .env
        .get("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    let candidates = [
        home.as_ref().map(|h| h.join(".op")),
        xdg.as_ref().map(|x| x.join(".op")),
        home.as_ref().map(|h| h.join(".config/op")),
        xdg.as_ref().map(|x| x.join("op")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_dir())
        .map(|p| (p, false))
}

/// Refuse a config directory with group or other permission bits.
pub fn check(ctx: &Ctx) -> Result<(), OpError> {
    let Some((dir, _)) = locate(ctx) else {
        return Ok(());
    };
    if let Ok(meta) = std::fs::metadata(&dir)
        && meta.permissions().mode() & 0o077 != 0
    {
        return Err(OpError::new(format!(
            "Can't continue. We can't safely access \"{}\" because its permissions are too broad. Change its permissions to 700 and try again.",
            dir.display()
        )));
    }
    Ok(())
}

/// Write `config` (latest_signin, device, accounts) into an explicitly named config directory.
pub fn write(ctx: &Ctx, state: &State) {
    let Some((dir, true)) = locate(ctx) else {
        return;
    };
    let latest = state
        .latest_signin
        .as_ref()
        .and_then(|u| state.accounts.iter().find(|a| &a.user_uuid == u))
        .map(|a| a.label());
    let accounts: Vec<_> = state
        .accounts
        .iter()
        .filter(|a| !a.forgotten && !a.app_integration)
        .map(|a| {
            serde_json::json!({
                "shorthand": a.label(),
                "accountUUID": a.account_uuid,
                "url": a.https_url(),
                "email": a.email,
                "accountKey": "A3-XXXXXX-XXXXXX-XXXXX-XXXXX-XXXXX-XXXXX",
                "userUUID": a.user_uuid,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "latest_signin": latest.unwrap_or_default(),
        "device": crate::encoding::derived_id(&format!("device:{}", ctx.home.display())),
        "accounts": accounts,
    });
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(dir.join("config"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, doc.to_string().as_bytes()));
    }
}

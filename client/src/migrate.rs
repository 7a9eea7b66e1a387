//! `op-session init --import-skill-session`: move a session off the token file that the
//! "op-session" Claude Code skill leaves in `~/.op-claude-session`, into the daemon.
//!
//! The file holds shell lines: `export OP_AUTH_MODE=…`, `export OP_SESSION=…` (or the
//! `OP_SESSION_<ID>=…` line `op signin` prints) and `export OP_ACCOUNT=…`. In token mode the
//! token goes to the daemon in an init request, exactly as `op-session init` hands over the
//! token it captured; the daemon verifies it with one `op whoami` with the token in that child's
//! environment only, never on an argv. Once the daemon holds the session, the file is
//! overwritten with zeros and removed. In app mode there is no token: the file is removed and an
//! app session started.
//!
//! Never prints the token, and keeps it only in zeroizing buffers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use op_session_protocol::{InitRequest, Mode, exit};
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::conn::Target;
use crate::error::{Failure, Result};
use crate::init::{op_path, send_init};

/// The skill's file, relative to `$HOME`.
pub const SKILL_SESSION_FILE: &str = ".op-claude-session";

/// What the skill's file says.
struct SkillSession {
    /// `OP_AUTH_MODE`, lower-cased.
    mode: Option<String>,
    /// The variable the token was exported as (`OP_SESSION` or `OP_SESSION_<ID>`).
    var: Option<String>,
    /// The token, if any.
    token: Option<Zeroizing<String>>,
    /// `OP_ACCOUNT`.
    account: Option<String>,
}

impl SkillSession {
    /// Whether the file describes a desktop-app session (no token to move).
    fn is_app(&self) -> bool {
        match self.mode.as_deref() {
            Some("app" | "desktop" | "desktop-app" | "biometric" | "integration") => true,
            Some(_) => false,
            None => self.token.is_none(),
        }
    }
}

/// Where the skill's file is, if `$HOME` is set.
pub fn skill_session_file() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(&h).join(SKILL_SESSION_FILE))
}

/// Parse the file's `export NAME=VALUE` lines (quotes optional; comments and other lines
/// ignored).
fn parse(text: &str) -> SkillSession {
    let mut s = SkillSession {
        mode: None,
        var: None,
        token: None,
        account: None,
    };
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        match name.trim() {
            "OP_AUTH_MODE" => s.mode = Some(value.to_ascii_lowercase()),
            "OP_ACCOUNT" if !value.is_empty() => s.account = Some(value.to_string()),
            var if (var == "OP_SESSION" || var.starts_with("OP_SESSION_")) && !value.is_empty() => {
                s.var = Some(var.to_string());
                s.token = Some(Zeroizing::new(value.to_string()));
            }
            _ => {}
        }
    }
    s
}

/// Overwrite the file with zeros, flush that to disk, then remove it. A symlink is removed
/// without writing through it.
pub fn shred(path: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_file() {
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        let len = usize::try_from(meta.len()).unwrap_or(0);
        f.write_all(&vec![0u8; len])?;
        f.sync_all()?;
    }
    std::fs::remove_file(path)
}

/// The `OP_SESSION_<user UUID>` name `op` wants for the skill's account, from `op account list`
/// (no session needed). `account` picks among several by shorthand, sign-in address, email,
/// account or user ID; with one account it may be omitted.
fn session_var(t: &Target, account: Option<&str>) -> Result<String> {
    let (op, _) = op_path(t)?;
    let mut cmd = Command::new(&op);
    cmd.args(op_grammar::OpCall::account_list().json().args())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, _) in std::env::vars_os() {
        // Every credential op reads, and the skill's own `OP_SESSION`.
        if k.to_str()
            .is_some_and(|k| k == "OP_SESSION" || op_grammar::env::is_credential_var(k))
        {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().map_err(|e| {
        Failure::new(
            exit::CONFIG,
            format!("cannot run {op}: {e}"),
            "install the 1Password CLI or set op_path",
        )
    })?;
    let accounts: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let bare = |s: &str| {
        s.trim_start_matches("https://")
            .trim_end_matches('/')
            .to_ascii_lowercase()
    };
    let matches = |a: &serde_json::Value| {
        let Some(want) = account else {
            return true;
        };
        let want = bare(want);
        ["shorthand", "url", "email", "user_uuid", "account_uuid"]
            .iter()
            .filter_map(|k| a[*k].as_str())
            .any(|v| bare(v) == want)
    };
    let found: Vec<&serde_json::Value> = accounts.iter().filter(|a| matches(a)).collect();
    match found.as_slice() {
        [one] => match one["user_uuid"].as_str() {
            Some(uuid) if !uuid.is_empty() => Ok(format!("OP_SESSION_{uuid}")),
            _ => Err(Failure::new(
                exit::FAILED,
                "op account list did not name the account's user ID",
                "run `op-session init` to sign in afresh",
            )),
        },
        [] => Err(Failure::new(
            exit::PERSON_MUST_ACT,
            format!(
                "no account on this device matches {}",
                account.unwrap_or("the skill's session")
            ),
            "run `op-session init` to sign in afresh",
        )),
        _ => Err(Failure::usage(
            "several accounts on this device, and the skill's file names none",
            "pass --account with the one the skill used",
        )),
    }
}

/// `init --import-skill-session`.
pub fn import_skill_session(t: &Target, account: Option<String>) -> Result<i32> {
    let path = skill_session_file()
        .ok_or_else(|| Failure::usage("HOME is not set", "set HOME and run it again"))?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => Zeroizing::new(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::usage(
                format!("there is no {}", path.display()),
                "run `op-session init` to sign in",
            ));
        }
        Err(e) => {
            return Err(Failure::new(
                exit::FAILED,
                format!("cannot read {}: {e}", path.display()),
                "check the file's permissions",
            ));
        }
    };
    let skill = parse(&text);
    drop(text);
    let account = account.or_else(|| skill.account.clone());
    let remove = |path: &Path| {
        shred(path).map_err(|e| {
            Failure::new(
                exit::FAILED,
                format!(
                    "the daemon holds the session, but {} could not be removed: {e}",
                    path.display()
                ),
                format!("remove it yourself: shred -u {}", path.display()),
            )
        })
    };
    if skill.is_app() {
        remove(&path)?;
        outln!(
            "op-session: removed {} (an app session has no token to move)",
            path.display()
        );
        return send_init(
            t,
            InitRequest {
                account,
                mode: Some(Mode::App),
                session_var: None,
                token: None,
                ..InitRequest::default()
            },
        );
    }
    let (Some(var), Some(token)) = (&skill.var, &skill.token) else {
        return Err(Failure::usage(
            format!("{} holds no session token", path.display()),
            "run `op-session init` to sign in, then delete the file",
        ));
    };
    let var = if var == "OP_SESSION" {
        session_var(t, account.as_deref())?
    } else {
        var.clone()
    };
    let code = send_init(
        t,
        InitRequest {
            account,
            mode: Some(Mode::Token),
            session_var: Some(var),
            token: Some(SecretString::from(token.as_str())),
            ..InitRequest::default()
        },
    )
    .map_err(|mut f| {
        f.fix = Some(format!(
            "the skill's session may have expired: run `op-session init`, then delete {}",
            path.display()
        ));
        f
    })?;
    remove(&path)?;
    outln!("op-session: overwrote and removed {}", path.display());
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_skills_export_lines() {
        let s = parse(
            "# op-session skill\nexport OP_AUTH_MODE=token\nexport OP_SESSION=\"tok_123\"\nexport OP_ACCOUNT='my'\n",
        );
        assert_eq!(s.mode.as_deref(), Some("token"));
        assert_eq!(s.var.as_deref(), Some("OP_SESSION"));
        assert_eq!(s.token.as_deref().map(String::as_str), Some("tok_123"));
        assert_eq!(s.account.as_deref(), Some("my"));
        assert!(!s.is_app());
        let app = parse("export OP_AUTH_MODE=app\nexport OP_ACCOUNT=team.1password.com\n");
        assert!(app.is_app());
        let signin = parse("export OP_SESSION_ABC123=\"t\"\n");
        assert_eq!(signin.var.as_deref(), Some("OP_SESSION_ABC123"));
        assert!(!signin.is_app());
    }

    #[test]
    fn shred_zeroes_then_removes() {
        let dir = tempfile_dir();
        let f = dir.join("s");
        std::fs::write(&f, "export OP_SESSION=abc\n").expect("write");
        shred(&f).expect("shred");
        assert!(!f.exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("op-session-migrate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }
}

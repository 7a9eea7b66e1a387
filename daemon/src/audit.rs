//! The audit log: one JSON line per request, at `$XDG_STATE_HOME/op-session/audit.jsonl`.
//!
//! Owns opening the file safely (directory 0700, file 0600, append-only, `O_NOFOLLOW` so a
//! planted symlink cannot redirect it) and the record's shape. Records name references,
//! verbs, peers and outcomes; never a value, never a token. A failure to write is logged and
//! does not fail the request.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;

use crate::peer::ProcessInfo;

/// One audit record.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// RFC 3339 UTC time.
    pub time: String,
    /// Peer pid.
    pub peer_pid: Option<i32>,
    /// Peer uid.
    pub peer_uid: u32,
    /// Peer executable.
    pub peer_exe: Option<String>,
    /// The peer's ancestors, nearest first (pid and exe).
    pub parents: Vec<ProcessInfo>,
    /// The account used.
    pub account: Option<&'a str>,
    /// What was asked: `read`, `run`, `inject`, `op item get`, `init`, `lock`, `status`…
    pub verb: String,
    /// References (never values).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// `allow` or `deny` (policy).
    pub decision: &'static str,
    /// `ok` or an error code.
    pub outcome: String,
    /// `op`'s exit code, when one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op_exit_code: Option<i32>,
    /// How many references were served from the cache.
    pub cache_hits: usize,
    /// Who relayed the request: `mcp` for `op-session mcp`; absent for the CLI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<&'a str>,
    /// The MCP client's self-reported name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<&'a str>,
    /// Values were returned to the relaying client (MCP `read_secret`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reveal: bool,
    /// Wall time of the request.
    pub duration_ms: u64,
    /// Why the daemon acted on its own, with no request: `sleep`, `screen_lock`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The grant whose socket the request came through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
}

/// The audit writer.
#[derive(Debug)]
pub struct Audit {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl Audit {
    /// A writer for `path` (opened on first use).
    pub fn new(path: PathBuf) -> Self {
        Audit {
            path,
            file: Mutex::new(None),
        }
    }

    fn open(&self) -> std::io::Result<File> {
        if let Some(dir) = self.path.parent() {
            op_session_paths::ensure_private_dir(dir).map_err(std::io::Error::other)?;
        }
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)
    }

    /// Append one record.
    pub fn write(&self, rec: &Record<'_>) {
        let Ok(mut line) = serde_json::to_vec(rec) else {
            return;
        };
        line.push(b'\n');
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            match self.open() {
                Ok(f) => *guard = Some(f),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot open the audit log");
                    return;
                }
            }
        }
        if let Some(f) = guard.as_mut()
            && let Err(e) = f.write_all(&line)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the audit log");
            *guard = None;
        }
    }
}

/// Now as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_0600_lines_and_refuses_symlinks() {
        let t = tempfile::tempdir().expect("tempdir");
        let path = t.path().join("state/audit.jsonl");
        let a = Audit::new(path.clone());
        let rec = Record {
            time: now_rfc3339(),
            peer_pid: Some(1),
            peer_uid: 0,
            peer_exe: None,
            parents: vec![],
            account: Some("my"),
            verb: "read".into(),
            references: vec!["op://a/b/c".into()],
            decision: "allow",
            outcome: "ok".into(),
            op_exit_code: Some(0),
            cache_hits: 0,
            via: None,
            client_name: None,
            reveal: false,
            duration_ms: 3,
            reason: None,
            grant: None,
        };
        a.write(&rec);
        a.write(&rec);
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 2);
        assert_eq!(
            std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );

        let link = t.path().join("state/link.jsonl");
        std::os::unix::fs::symlink(t.path().join("elsewhere"), &link).expect("symlink");
        let b = Audit::new(link);
        b.write(&rec);
        assert!(!t.path().join("elsewhere").exists(), "followed a symlink");
    }

    #[test]
    fn time_format() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z'));
    }
}

//! The audit log: one JSON line per request, at `$XDG_STATE_HOME/op-session/audit.jsonl`.
//!
//! Owns opening the file safely (directory 0700, file 0600, append-only, `O_NOFOLLOW` so a
//! planted symlink cannot redirect it); the record's shape is
//! [`op_session_protocol::audit::AuditRecord`], which `op-session audit` reads back. Records name references,
//! verbs, peers and outcomes; never a value, never a token. A failure to write is logged and
//! does not fail the request.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Mutex;

pub(crate) use op_session_protocol::audit::{AuditRecord, Decision};

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
    pub fn write(&self, rec: &AuditRecord) {
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

/// Now as RFC 3339 UTC with milliseconds, e.g. `2026-01-02T03:04:05.678Z`.
pub(crate) fn now_rfc3339() -> String {
    format!("{:.3}", jiff::Timestamp::now())
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
        let rec = AuditRecord {
            time: now_rfc3339(),
            peer_pid: Some(1),
            peer_uid: 0,
            peer_exe: None,
            parents: vec![],
            account: Some("my".into()),
            verb: "read".into(),
            references: vec!["op://a/b/c".into()],
            decision: Decision::Allow,
            outcome: "ok".into(),
            op_exit_code: Some(0),
            cache_hits: 0,
            negative_cache: false,
            via: None,
            client_name: None,
            reveal: false,
            duration_ms: 3,
            reason: None,
            grant: None,
            confirm: None,
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

//! The audit log's record: one JSON object per line of `audit.jsonl`, written by the daemon
//! and read back by `op-session audit`. One type serves both ends so they cannot disagree.
//!
//! A record names references, verbs, peers and outcomes; it has no field that could hold a
//! value or a token. The file is not the wire protocol: it outlives daemon versions, so
//! optional fields default when absent and [`crate::PROTOCOL_VERSION`] does not cover it.

use serde::{Deserialize, Serialize};

use crate::PresenceEvent;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the request ended: RFC 3339, UTC, milliseconds (`2026-01-02T03:04:05.678Z`).
    pub time: String,
    /// Peer pid; absent when the daemon acted on its own.
    pub peer_pid: Option<i32>,
    /// Peer uid.
    pub peer_uid: u32,
    /// Peer executable.
    pub peer_exe: Option<String>,
    /// The peer's ancestors, nearest first.
    #[serde(default)]
    pub parents: Vec<ProcessInfo>,
    /// The account used, as the request or session named it.
    pub account: Option<String>,
    /// What was asked: `read`, `run`, `inject`, `op item get`, `init`, `lock`, `status`…
    pub verb: String,
    /// References (never values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// What policy decided.
    pub decision: Decision,
    /// `ok`, `exit N`, or an error code.
    pub outcome: String,
    /// `op`'s exit code, when one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_exit_code: Option<i32>,
    /// How many references were served from the cache.
    #[serde(default)]
    pub cache_hits: usize,
    /// The answer was a remembered "not found" (the negative cache): no `op` call was made.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negative_cache: bool,
    /// Who relayed the request: `mcp` for `op-session mcp`; absent for the CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The MCP client's self-reported name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Values were returned to the relaying client (MCP `read_secret`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reveal: bool,
    /// Wall time of the request.
    #[serde(default)]
    pub duration_ms: u64,
    /// Why the daemon acted on its own, with no request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<PresenceEvent>,
    /// The grant whose socket the request came through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// How a person confirmed (or refused) the request, when `[confirm]` asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<crate::confirm::ConfirmRecord>,
}

/// What policy decided about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Allowed (it may still have failed: see the outcome).
    Allow,
    /// Refused by policy before any session was touched.
    Deny,
}

impl Decision {
    /// `allow` or `deny`, as written in the log.
    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }
}

/// One process in a peer's ancestry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Pid.
    pub pid: i32,
    /// Executable path (or the process name when the path is unreadable).
    pub exe: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written_and_old_lines_still_read() {
        let line = r#"{"time":"2026-01-02T03:04:05.678Z","peer_pid":7,"peer_uid":1000,"peer_exe":"/usr/bin/bash","parents":[{"pid":1,"exe":"init"}],"account":"my","verb":"read","references":["op://a/b/c"],"decision":"allow","outcome":"ok","op_exit_code":0,"cache_hits":1,"duration_ms":3}"#;
        let r: AuditRecord = serde_json::from_str(line).expect("parses");
        assert_eq!(r.decision, Decision::Allow);
        assert_eq!(r.parents[0].exe, "init");
        assert_eq!(serde_json::to_string(&r).expect("serializes"), line);
        let lock = r#"{"time":"t","peer_pid":null,"peer_uid":1,"peer_exe":null,"account":"my","verb":"lock","decision":"allow","outcome":"ok","cache_hits":0,"duration_ms":0,"reason":"screen_lock"}"#;
        let r: AuditRecord = serde_json::from_str(lock).expect("parses");
        assert_eq!(r.reason, Some(PresenceEvent::ScreenLock));
    }
}

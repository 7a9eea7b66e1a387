//! Confirmation of sensitive secrets on the wire: what `op-session approvals` lists, what
//! `status` says about `[confirm]`, and the `confirm` part of an audit record.
//!
//! Nothing here can approve anything. [`ApprovalsRequest`] only lists remembered approvals or
//! forgets them: a person's decision never travels over the socket (docs/confirm.md).

use serde::{Deserialize, Serialize};

/// List remembered approvals, or forget them all.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ApprovalsRequest {
    /// Drop every remembered approval (nothing else: forgetting never approves or widens).
    #[serde(default)]
    pub forget: bool,
}

/// One remembered approval. The JSON form is stable: keys are only ever added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalInfo {
    /// The reference it covers, in its normalized (lower-cased) form.
    pub reference: String,
    /// The account whose session it belongs to.
    pub account: String,
    /// The caller's executable.
    pub exe: String,
    /// The caller's agent process (the first ancestor that is not a shell), `exe (pid)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Seconds until it expires (it also ends with the session, and on sleep).
    pub expires_in_s: u64,
}

/// `[confirm]` as `status` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmStatus {
    /// The `refs` globs.
    pub refs: Vec<String>,
    /// The `vaults` whose every reference asks.
    pub vaults: Vec<String>,
    /// The channel a prompt would use now: `askpass`, `notification`, `osascript`, or
    /// `none` (then every matching request fails at once).
    pub channel: String,
    /// The askpass program, when that is the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub askpass: Option<String>,
    /// Seconds a prompt waits for an answer.
    pub timeout_s: u64,
    /// Seconds an approval covers the same caller and reference (0: never remembered).
    pub remember_s: u64,
    /// Prompts on screen now.
    pub prompts_open: usize,
    /// Approvals remembered now.
    pub approvals: usize,
}

/// The `confirm` part of an audit record: how the person was asked and what they said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmRecord {
    /// `askpass`, `notification`, `osascript`, `remembered` (an earlier approval covered it)
    /// or `none` (no channel could show a prompt).
    pub channel: String,
    /// `allow`, `deny`, `timeout`, `unavailable` or `gone` (the client left first).
    pub decision: String,
    /// Until when the approval is remembered (RFC 3339, UTC), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remembered_until: Option<String>,
}

//! Why a session ended, and what a request is told when its session ran out.

use crate::error::{Detail, Error};

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Idle limit passed.
    Idle,
    /// Hard limit passed.
    Hard,
    /// `op` said the session is gone.
    Revoked,
    /// `op-session lock`.
    Locked,
    /// Daemon shutdown.
    Shutdown,
    /// Replaced by a new init.
    Replaced,
}

impl EndReason {
    /// For logs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Idle => "idle limit reached",
            EndReason::Hard => "12-hour limit reached",
            EndReason::Revoked => "revoked by 1Password",
            EndReason::Locked => "locked",
            EndReason::Shutdown => "daemon stopped",
            EndReason::Replaced => "replaced by a new sign-in",
        }
    }
}

/// The error for a session that ran out.
pub(crate) fn expired_error(name: &str, why: EndReason) -> Error {
    Error::Expired(Detail::new(format!(
        "the 1Password session for account {name} ended ({})",
        why.as_str()
    )))
    .with_fix(format!(
        "run `op-session init --account {name}` in a terminal to sign in again"
    ))
}

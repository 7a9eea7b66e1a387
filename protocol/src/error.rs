//! Typed error codes: what went wrong, the human line, the one-line fix, and the exit code.
//!
//! Never put a token or a secret value in an [`ErrorBody`]: it is shown to the caller and may
//! be logged by it. Texts that came from `op` are scrubbed by the daemon before they get here.

use serde::{Deserialize, Serialize};

use crate::exit;

/// A stable, machine-readable error code. The JSON form is the snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request was malformed, oversized, or not allowed in this state.
    BadRequest,
    /// Client and daemon speak different protocol versions.
    VersionMismatch,
    /// No session is held for the account.
    NotSignedIn,
    /// The session ran out (idle or hard limit) or was revoked by 1Password.
    SessionExpired,
    /// The session was locked with `op-session lock`, or the desktop app is locked.
    Locked,
    /// The person dismissed the desktop app's authorization prompt.
    AuthDenied,
    /// The desktop app's authorization prompt was not answered in time.
    AuthTimeout,
    /// 1Password rate-limited the request (HTTP 429).
    RateLimited,
    /// The daemon's policy refused the request.
    PolicyDenied,
    /// `op` ran and failed; its (scrubbed) message is in the body.
    OpFailed,
    /// No `op` binary could be found.
    OpNotFound,
    /// `op` did not finish within the configured time and was killed.
    OpTimeout,
    /// The peer is not the daemon's owner.
    PermissionDenied,
    /// The daemon is at its connection limit or shutting down.
    Busy,
    /// A bug or an unexpected system failure inside the daemon.
    Internal,
    /// A server the daemon talks to directly (a Connect server) could not be reached.
    Unreachable,
    /// The person said no to a confirmation prompt (`[confirm]`).
    ConfirmDenied,
    /// A confirmation prompt was not answered in time, or no channel could show one.
    NotConfirmed,
}

impl ErrorCode {
    /// The exit code `op-session` returns for this error.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorCode::BadRequest => exit::USAGE,
            ErrorCode::VersionMismatch => exit::PROTOCOL,
            ErrorCode::NotSignedIn
            | ErrorCode::SessionExpired
            | ErrorCode::Locked
            | ErrorCode::AuthDenied
            | ErrorCode::AuthTimeout
            | ErrorCode::NotConfirmed => exit::PERSON_MUST_ACT,
            ErrorCode::RateLimited | ErrorCode::Busy => exit::RETRY_LATER,
            ErrorCode::PolicyDenied | ErrorCode::ConfirmDenied => exit::CONFIG,
            ErrorCode::OpFailed | ErrorCode::OpTimeout => exit::FAILED,
            ErrorCode::OpNotFound => exit::CONFIG,
            ErrorCode::PermissionDenied | ErrorCode::Internal | ErrorCode::Unreachable => {
                exit::UNAVAILABLE
            }
        }
    }

    /// The snake_case name, as on the wire (read from the serde derive: it cannot drift).
    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }

    /// The one-line fix a person can act on, used when the daemon has nothing more specific.
    pub fn default_fix(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "check the command line (op-session --help)",
            ErrorCode::VersionMismatch => {
                "restart the daemon so both sides match: op-session stop (the next call starts it again)"
            }
            ErrorCode::NotSignedIn => "run `op-session init` in a terminal to start a session",
            ErrorCode::SessionExpired => "run `op-session init` in a terminal to sign in again",
            ErrorCode::Locked => "run `op-session init` to unlock, and unlock the 1Password app",
            ErrorCode::AuthDenied => {
                "approve the 1Password prompt: run `op-session init` and accept it on the desktop"
            }
            ErrorCode::AuthTimeout => {
                "run `op-session init` again and answer the 1Password prompt on the desktop"
            }
            ErrorCode::RateLimited => "wait until the limit resets, then retry",
            ErrorCode::PolicyDenied => {
                "change [policy] in the op-session config if this should be allowed"
            }
            ErrorCode::OpFailed => "see op's message above",
            ErrorCode::OpNotFound => {
                "install the 1Password CLI (op) or set op_path in the op-session config"
            }
            ErrorCode::OpTimeout => {
                "retry; raise op_timeout in the op-session config if op is slow"
            }
            ErrorCode::PermissionDenied => {
                "connect as the user who owns the daemon; each user runs their own op-sessiond"
            }
            ErrorCode::Busy => "retry in a moment",
            ErrorCode::Internal => "retry; if it persists, restart with `op-session stop`",
            ErrorCode::Unreachable => {
                "check that the Connect server is up and reachable at the host given to init"
            }
            ErrorCode::ConfirmDenied => {
                "ask the person why; they decide each use of this secret (op-session approvals)"
            }
            ErrorCode::NotConfirmed => {
                "ask the person to answer the confirmation prompt on their desktop, then retry"
            }
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as the daemon reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What kind of failure this is.
    pub code: ErrorCode,
    /// One line: what happened. For [`ErrorCode::OpFailed`], `op`'s own (scrubbed) stderr,
    /// which may span several lines exactly as `op` printed them.
    pub message: String,
    /// One line: the fix.
    pub fix: String,
    /// For rate limits: seconds until a retry may succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// For [`ErrorCode::OpFailed`]: `op`'s exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_exit_code: Option<i32>,
    /// For [`ErrorCode::VersionMismatch`]: what the daemon is, so the client can decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon: Option<Box<DaemonIdentity>>,
    /// The answer came from the daemon's memory of a recent "not found" (the negative cache),
    /// not from a new `op` call.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remembered: bool,
}

/// Who answered: enough for a client to decide whether it may restart the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonIdentity {
    /// The daemon's protocol version.
    pub protocol: u32,
    /// The daemon's package version.
    pub version: String,
    /// The daemon's pid.
    pub pid: u32,
    /// How it was started.
    pub started_by: crate::StartedBy,
}

impl ErrorBody {
    /// An error with the code's default fix.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            fix: code.default_fix().to_string(),
            retry_after_s: None,
            op_exit_code: None,
            daemon: None,
            remembered: false,
        }
    }

    /// Replace the fix line.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = fix.into();
        self
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ErrorBody {}

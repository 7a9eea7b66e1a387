//! The daemon's own error: what went wrong, as the daemon's code tells it apart.
//!
//! Internal functions return [`Error`]; it becomes the wire [`ErrorBody`] once, where the
//! server answers a request ([`crate::requests`]). Control flow branches on the variant, never
//! on a wire code. Each variant carries a [`Detail`]: the human line, the fix when it is not
//! the code's default, and what `op` said about itself (its exit code, a retry time).
//!
//! Modules not yet moved over still build an [`ErrorBody`]; `From<ErrorBody>` reads it back
//! into the matching variant without losing anything, so `?` works across the seam.
//!
//! Never put a token or a secret value in an error: it is shown to the caller.

use op_session_protocol::{ErrorBody, ErrorCode};

use crate::oprun::OpError;

/// The words of an error, and what `op` said about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail {
    /// One line (for op's failures: op's own scrubbed text): what happened.
    pub message: String,
    /// The fix, when it is not the code's default one.
    pub fix: Option<String>,
    /// `op`'s exit code, when `op` ran.
    pub op_exit_code: Option<i32>,
    /// For rate limits: seconds until a retry may succeed.
    pub retry_after_s: Option<u64>,
    /// The answer came from the negative cache, not a new `op` call.
    pub remembered: bool,
}

impl Detail {
    /// Just the words.
    pub fn new(message: impl Into<String>) -> Self {
        Detail {
            message: message.into(),
            ..Detail::default()
        }
    }
}

impl std::fmt::Display for Detail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What went wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request was malformed, or asked for something the daemon does not do.
    #[error("{0}")]
    BadRequest(Detail),
    /// No session is held for the account.
    #[error("{0}")]
    NotSignedIn(Detail),
    /// The session ran out, was revoked, or 1Password no longer accepts it.
    #[error("{0}")]
    Expired(Detail),
    /// The desktop app is locked or unreachable.
    #[error("{0}")]
    Locked(Detail),
    /// The person dismissed the desktop app's authorization prompt.
    #[error("{0}")]
    AuthDenied(Detail),
    /// Nobody answered the desktop app's authorization prompt.
    #[error("{0}")]
    AuthTimeout(Detail),
    /// 1Password, a Connect server or the daemon's own quota says: not now.
    #[error("{0}")]
    RateLimited(Detail),
    /// A rule (policy, grant scope, `[mcp]`) refused the request; the message names it.
    #[error("{0}")]
    Denied(Detail),
    /// A person said no to a confirmation prompt.
    #[error("{0}")]
    ConfirmDenied(Detail),
    /// A confirmation prompt was not answered in time, or could not be shown.
    #[error("{0}")]
    NotConfirmed(Detail),
    /// `op` (or the Connect server speaking for it) ran and failed: its words and exit code.
    #[error("{0}")]
    OpFailed(Detail),
    /// No `op` binary could be found or started.
    #[error("{0}")]
    OpNotFound(Detail),
    /// `op` or the Connect server did not answer in time.
    #[error("{0}")]
    OpTimeout(Detail),
    /// A Connect server could not be reached.
    #[error("{0}")]
    Unreachable(Detail),
    /// The daemon is at a limit or shutting down.
    #[error("{0}")]
    Busy(Detail),
    /// A bug or an unexpected system failure inside the daemon.
    #[error("{0}")]
    Internal(Detail),
    /// The peer is not the daemon's owner.
    #[error("{0}")]
    PermissionDenied(Detail),
    /// Client and daemon speak different protocol versions.
    #[error("{0}")]
    VersionMismatch(Detail),
    /// A rule refused the request before anything ran, with the error the caller sees: the
    /// audit line records it as denied whatever its code (an unreadable `op` command line, a
    /// grant's scope).
    #[error("{0}")]
    Refused(Box<Error>),
}

/// The `Detail` every variant carries (a refusal's, from the error inside it), by `&` or
/// `&mut`: one list of variants for both accessors.
macro_rules! detail_of {
    ($e:expr, $accessor:ident) => {
        match $e {
            Error::BadRequest(d)
            | Error::NotSignedIn(d)
            | Error::Expired(d)
            | Error::Locked(d)
            | Error::AuthDenied(d)
            | Error::AuthTimeout(d)
            | Error::RateLimited(d)
            | Error::Denied(d)
            | Error::ConfirmDenied(d)
            | Error::NotConfirmed(d)
            | Error::OpFailed(d)
            | Error::OpNotFound(d)
            | Error::OpTimeout(d)
            | Error::Unreachable(d)
            | Error::Busy(d)
            | Error::Internal(d)
            | Error::PermissionDenied(d)
            | Error::VersionMismatch(d) => d,
            Error::Refused(e) => e.$accessor(),
        }
    };
}

impl Error {
    /// A malformed or unsupported request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Error::BadRequest(Detail::new(message))
    }

    /// A refusal by a rule.
    pub fn denied(message: impl Into<String>) -> Self {
        Error::Denied(Detail::new(message))
    }

    /// A failure inside the daemon.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(Detail::new(message))
    }

    /// Mark as refused before anything ran (for the audit's decision).
    pub fn refused(self) -> Self {
        match self {
            e @ Error::Refused(_) => e,
            e => Error::Refused(Box::new(e)),
        }
    }

    /// Replace the fix line.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.detail_mut().fix = Some(fix.into());
        self
    }

    /// The words and extras.
    pub fn detail(&self) -> &Detail {
        detail_of!(self, detail)
    }

    /// The words and extras, to change.
    pub fn detail_mut(&mut self) -> &mut Detail {
        detail_of!(self, detail_mut)
    }

    /// The wire code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::BadRequest(_) => ErrorCode::BadRequest,
            Error::NotSignedIn(_) => ErrorCode::NotSignedIn,
            Error::Expired(_) => ErrorCode::SessionExpired,
            Error::Locked(_) => ErrorCode::Locked,
            Error::AuthDenied(_) => ErrorCode::AuthDenied,
            Error::AuthTimeout(_) => ErrorCode::AuthTimeout,
            Error::RateLimited(_) => ErrorCode::RateLimited,
            Error::Denied(_) => ErrorCode::PolicyDenied,
            Error::ConfirmDenied(_) => ErrorCode::ConfirmDenied,
            Error::NotConfirmed(_) => ErrorCode::NotConfirmed,
            Error::OpFailed(_) => ErrorCode::OpFailed,
            Error::OpNotFound(_) => ErrorCode::OpNotFound,
            Error::OpTimeout(_) => ErrorCode::OpTimeout,
            Error::Unreachable(_) => ErrorCode::Unreachable,
            Error::Busy(_) => ErrorCode::Busy,
            Error::Internal(_) => ErrorCode::Internal,
            Error::PermissionDenied(_) => ErrorCode::PermissionDenied,
            Error::VersionMismatch(_) => ErrorCode::VersionMismatch,
            Error::Refused(e) => e.code(),
        }
    }

    /// Whether the audit records this as a denial: a rule or a person said no.
    pub fn is_denial(&self) -> bool {
        matches!(
            self,
            Error::Denied(_) | Error::ConfirmDenied(_) | Error::Refused(_)
        )
    }
}

impl From<Error> for ErrorBody {
    /// The one place a daemon error becomes what the client sees.
    fn from(e: Error) -> ErrorBody {
        let code = e.code();
        let d = match e {
            Error::Refused(inner) => return ErrorBody::from(*inner),
            e => e.detail().clone(),
        };
        let mut b = ErrorBody::new(code, d.message);
        if let Some(fix) = d.fix {
            b.fix = fix;
        }
        b.op_exit_code = d.op_exit_code;
        b.retry_after_s = d.retry_after_s;
        b.remembered = d.remembered;
        b
    }
}

impl From<ErrorBody> for Error {
    /// Read back an error built by a module that still speaks the wire type.
    fn from(b: ErrorBody) -> Error {
        let d = Detail {
            fix: (b.fix != b.code.default_fix()).then_some(b.fix),
            message: b.message,
            op_exit_code: b.op_exit_code,
            retry_after_s: b.retry_after_s,
            remembered: b.remembered,
        };
        match b.code {
            ErrorCode::BadRequest => Error::BadRequest(d),
            ErrorCode::VersionMismatch => Error::VersionMismatch(d),
            ErrorCode::NotSignedIn => Error::NotSignedIn(d),
            ErrorCode::SessionExpired => Error::Expired(d),
            ErrorCode::Locked => Error::Locked(d),
            ErrorCode::AuthDenied => Error::AuthDenied(d),
            ErrorCode::AuthTimeout => Error::AuthTimeout(d),
            ErrorCode::RateLimited => Error::RateLimited(d),
            ErrorCode::PolicyDenied => Error::Denied(d),
            ErrorCode::OpFailed => Error::OpFailed(d),
            ErrorCode::OpNotFound => Error::OpNotFound(d),
            ErrorCode::OpTimeout => Error::OpTimeout(d),
            ErrorCode::PermissionDenied => Error::PermissionDenied(d),
            ErrorCode::Busy => Error::Busy(d),
            ErrorCode::Internal => Error::Internal(d),
            ErrorCode::Unreachable => Error::Unreachable(d),
            ErrorCode::ConfirmDenied => Error::ConfirmDenied(d),
            ErrorCode::NotConfirmed => Error::NotConfirmed(d),
        }
    }
}

impl From<OpError> for Error {
    /// An `op` that could not be run to completion.
    fn from(e: OpError) -> Error {
        match e {
            OpError::NotFound(m) => Error::OpNotFound(Detail::new(m)),
            OpError::Timeout(d) => Error::OpTimeout(Detail::new(format!(
                "op did not finish within {}s and was stopped",
                d.as_secs_f32()
            ))),
            e @ OpError::TooMuchOutput => Error::OpFailed(Detail::new(e.to_string())),
            e @ OpError::Spawn { .. } => Error::OpNotFound(Detail::new(e.to_string())),
        }
    }
}

impl From<OpError> for ErrorBody {
    /// The client's error for an `op` that could not be run to completion.
    fn from(e: OpError) -> ErrorBody {
        ErrorBody::from(Error::from(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wire_error_reads_back_unchanged() {
        let mut b = ErrorBody::new(ErrorCode::RateLimited, "slow down").with_fix("wait");
        b.retry_after_s = Some(7);
        b.op_exit_code = Some(1);
        let e = Error::from(b.clone());
        assert!(matches!(e, Error::RateLimited(_)));
        assert_eq!(ErrorBody::from(e), b);
        let plain = ErrorBody::new(ErrorCode::PolicyDenied, "no");
        assert_eq!(ErrorBody::from(Error::from(plain.clone())), plain);
    }

    #[test]
    fn a_refusal_keeps_its_code_and_counts_as_denied() {
        let e = Error::bad_request("unreadable").refused();
        assert!(e.is_denial());
        assert_eq!(ErrorBody::from(e).code, ErrorCode::BadRequest);
        assert!(!Error::bad_request("x").is_denial());
    }
}

//! The client's error: an exit code an agent can branch on, and one line for a person.

use op_session_protocol::{ErrorBody, ErrorCode, exit};

/// A failure to report and exit with.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: i32,
    /// What happened.
    pub message: String,
    /// What to do, if a person can do something.
    pub fix: Option<String>,
    /// Print `message` verbatim (op's own stderr), without our prefix or fix.
    pub verbatim: bool,
    /// How far the request got, for the commands that treat "no daemon" apart from other
    /// failures (`stop`, `lock`).
    pub reach: Reach,
}

/// How far a request that failed got toward the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reach {
    /// Anything else: an answer that was an error, a socket we refused to use, a usage error.
    #[default]
    Other,
    /// No daemon answered at the socket.
    Absent,
    /// A daemon accepted the connection and dropped it before answering (it was stopping, or
    /// died).
    Lost,
}

impl Failure {
    /// A failure with a fix.
    pub fn new(code: i32, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            fix: Some(fix.into()),
            verbatim: false,
            reach: Reach::Other,
        }
    }

    /// This failure, marked with how far the request got.
    pub fn reached(self, reach: Reach) -> Self {
        Failure { reach, ..self }
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>, fix: impl Into<String>) -> Self {
        Failure::new(exit::USAGE, message, fix)
    }

    /// Print to stderr.
    pub fn print(&self) {
        if self.verbatim {
            let m = self.message.trim_end_matches('\n');
            eprintln!("{m}");
            return;
        }
        match &self.fix {
            Some(fix) => eprintln!("op-session: {}; fix: {}", self.message, fix),
            None => eprintln!("op-session: {}", self.message),
        }
    }
}

impl From<ErrorBody> for Failure {
    fn from(e: ErrorBody) -> Self {
        if e.code == ErrorCode::OpFailed {
            // op's own words, as op printed them, with op's exit code.
            // op's own exit code (1, or 2 for its panics); a crashed op (128+N) is exit 1,
            // so a signal number is never mistaken for one of our codes.
            // A refusal the daemon wrote in op's words (an unreadable reference) gets op's
            // `[ERROR] <time>` prefix, so it reads exactly as op's own would.
            let message = if e.message.starts_with("[ERROR] ") {
                e.message
            } else {
                format!("[ERROR] {} {}", crate::values::op_timestamp(), e.message)
            };
            return Failure {
                code: e
                    .op_exit_code
                    .filter(|c| (1..64).contains(c))
                    .unwrap_or(exit::FAILED),
                message,
                fix: None,
                verbatim: true,
                reach: Reach::Other,
            };
        }
        let code = e.code.exit_code();
        let mut message = e.message;
        if let Some(s) = e.retry_after_s {
            message.push_str(&format!(" (retry after {s}s)"));
        }
        Failure {
            code,
            message,
            fix: Some(e.fix),
            verbatim: false,
            reach: Reach::Other,
        }
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Failure>;

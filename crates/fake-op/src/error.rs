//! Errors as `op` prints them.
//!
//! Owns the one error type every command returns and the exact texts of docs/op-behaviour.md §1–§8 that
//! more than one module needs. Rendering (`[ERROR] YYYY/MM/DD HH:MM:SS <msg>`) happens once, in
//! `crate::invocation`, so no command ever writes to stderr itself.

use std::fmt;

/// ``You are not currently signed in. …`` (docs/op-behaviour.md §2).
pub const NOT_SIGNED_IN: &str =
    "You are not currently signed in. Please run `op signin --help` for instructions";
/// `op whoami` without a usable session (docs/op-behaviour.md §1.7).
pub const ACCOUNT_NOT_SIGNED_IN: &str = "account is not signed in";
/// Wrong password at `op signin` (docs/op-behaviour.md §1.2).
pub const WRONG_PASSWORD: &str = "Authentication: DB: 401: Unauthorized";
/// No terminal to prompt on (docs/op-behaviour.md §1.2).
pub const NO_TERMINAL: &str = "inappropriate ioctl for device";
/// The user dismissed the app's authorization prompt (docs/op-behaviour.md §2).
pub const PROMPT_DISMISSED: &str = "authorization prompt dismissed, please try again";
/// Nobody answered the app's authorization prompt (docs/op-behaviour.md §2).
pub const PROMPT_TIMEOUT: &str = "authorization timeout";
/// The desktop app is not running or its CLI integration is off (docs/op-behaviour.md §2).
pub const APP_UNREACHABLE: &str = "connecting to desktop app: read: connection reset, make sure 1Password CLI is installed correctly, then open the 1Password app, select 1Password > Settings > Developer and make sure the 'Integrate with 1Password CLI' setting is turned on. If you're still having trouble connecting, visit https://developer.1password.com/docs/cli/app-integration#troubleshooting for more help.";
/// whoami with a service-account token before any other command (docs/op-behaviour.md §1.7).
pub const SA_NOT_AUTHENTICATED: &str = "service account token set, but not authenticated yet";
/// A revoked or deleted service account (docs/op-behaviour.md §6), without the client prefix.
pub const SA_DELETED: &str = "Authentication: (failed to auth.LookupAuth), Network: (failed to request.DoUnencrypted), Server: (403) (Forbidden (Service Account Deleted)), The Service Account used in this integration has been deleted.";
/// A token that does not even start with `ops_` (docs/op-behaviour.md §6).
pub const SA_UNRECOGNIZED: &str =
    "failed to DeserializeServiceAccountAuthToken, unrecognized auth type";
/// No access to a resource (docs/op-behaviour.md §3.3).
pub const FORBIDDEN: &str = "(403) Forbidden: You aren't authorized to access this resource.";
/// The prefix of every client-setup failure (docs/op-behaviour.md §8).
pub const CLIENT_PREFIX: &str = "error initializing client: ";

/// A failed `op` invocation: the message after the timestamp, and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    /// Everything after `[ERROR] <ts> `; may span lines (ambiguity lists, usage text).
    pub message: String,
    /// 1 for nearly everything (docs/op-behaviour.md §8).
    pub code: i32,
}

impl OpError {
    /// An ordinary failure, exit code 1.
    pub fn new(message: impl Into<String>) -> Self {
        OpError {
            message: message.into(),
            code: 1,
        }
    }

    /// Prefix the message, e.g. `could not read secret '<ref>': `.
    pub fn prefixed(self, prefix: &str) -> Self {
        OpError {
            message: format!("{prefix}{}", self.message),
            code: self.code,
        }
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OpError {}

/// Why authentication failed, kept apart from its wording because the wording depends on the
/// command (`op read` wraps every one as `could not read secret '<ref>': error initializing
/// client: …`, `op whoami` has its own text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// A token-mode failure: the text is printed bare by ordinary commands.
    Token(String),
    /// An app-integration or service-account setup failure: ordinary commands print it after
    /// `error initializing client: `.
    Client(String),
    /// A failure after the client is up (429): `op read` puts its own prefix before it.
    Plain(String),
    /// A failure before any secret is involved (no such account): printed as is everywhere.
    Account(String),
}

impl AuthError {
    /// The error an ordinary command (item, vault, inject, run …) prints.
    pub fn for_command(&self) -> OpError {
        match self {
            AuthError::Token(m) | AuthError::Plain(m) | AuthError::Account(m) => {
                OpError::new(m.clone())
            }
            AuthError::Client(m) => OpError::new(format!("{CLIENT_PREFIX}{m}")),
        }
    }

    /// The error `op read <reference>` prints (docs/op-behaviour.md §2, §3.3).
    pub fn for_read(&self, reference: &str) -> OpError {
        match self {
            AuthError::Token(m) | AuthError::Client(m) => OpError::new(format!(
                "could not read secret '{reference}': {CLIENT_PREFIX}{m}"
            )),
            AuthError::Plain(m) => {
                OpError::new(format!("could not read secret '{reference}': {m}"))
            }
            AuthError::Account(m) => OpError::new(m.clone()),
        }
    }
}

//! What a request borrows from a session for one `op` call ([`Lease`]), and the errors a
//! request gets when there is nothing to borrow.

use op_session_protocol::Mode;
use secrecy::ExposeSecret;

use super::Credential;
use crate::error::{Detail, Error};
use crate::oprun::Auth;

/// What a request borrows from a session for one `op` call.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The session's name.
    pub name: String,
    /// Its credential (and so its mode).
    pub credential: Credential,
    /// Its generation (see [`super::Session::generation`]).
    pub generation: u64,
    /// What to pass as `--account`.
    pub account_arg: Option<String>,
}

impl Lease {
    /// Its mode.
    pub fn mode(&self) -> Mode {
        self.credential.mode()
    }

    /// The child's credential.
    pub fn auth(&self) -> Auth<'_> {
        self.credential.auth()
    }

    /// The held credential as text, for scrubbing (empty in app mode).
    pub fn secret_str(&self) -> &str {
        self.credential
            .token()
            .map(|c| c.expose_secret().as_str())
            .unwrap_or("")
    }
}

/// The error for "no session for this account".
pub(crate) fn not_signed_in(account: Option<&str>, default: Option<&str>) -> Error {
    let which = account.or(default);
    let (msg, fix) = match which {
        Some(a) => (
            format!("no 1Password session is held for account {a}"),
            format!("run `op-session init --account {a}` in a terminal"),
        ),
        None => (
            "no 1Password session is held".to_string(),
            "run `op-session init` in a terminal".to_string(),
        ),
    };
    Error::NotSignedIn(Detail::new(msg)).with_fix(fix)
}

//! What a request borrows from a session for one `op` call ([`Lease`]), and the errors a
//! request gets when there is nothing to borrow.

use std::sync::Arc;

use op_session_protocol::{ErrorBody, ErrorCode, Mode};
use secrecy::ExposeSecret;

use crate::oprun::Auth;
use crate::securemem::SecretToken;

/// What a request borrows from a session for one `op` call.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The session's name.
    pub name: String,
    /// Its mode.
    pub mode: Mode,
    /// Its credential.
    pub credential: Option<Arc<SecretToken>>,
    /// Its session variable.
    pub session_var: Option<String>,
    /// Its generation (see [`super::Session::generation`]).
    pub generation: u64,
    /// What to pass as `--account`.
    pub account_arg: Option<String>,
    /// Connect mode: the server to resolve against.
    pub connect: Option<Arc<crate::connect::link::Link>>,
}

impl Lease {
    /// The child's credential.
    pub fn auth(&self) -> Auth<'_> {
        match (self.mode, &self.credential, &self.session_var) {
            (Mode::Token, Some(c), Some(var)) => Auth::Token {
                var,
                token: c.expose_secret().as_str(),
            },
            (Mode::ServiceAccount, Some(c), _) => Auth::ServiceAccount {
                token: c.expose_secret().as_str(),
            },
            (Mode::Connect, Some(c), _) => match &self.connect {
                Some(link) => Auth::Connect {
                    host: link.host(),
                    token: c.expose_secret().as_str(),
                },
                None => Auth::None,
            },
            _ => Auth::None,
        }
    }

    /// The held credential as text, for scrubbing.
    pub fn secret_str(&self) -> &str {
        self.credential
            .as_ref()
            .map(|c| c.expose_secret().as_str())
            .unwrap_or("")
    }
}

/// The error for "no session for this account".
pub fn not_signed_in(account: Option<&str>, default: Option<&str>) -> ErrorBody {
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
    ErrorBody::new(ErrorCode::NotSignedIn, msg).with_fix(fix)
}

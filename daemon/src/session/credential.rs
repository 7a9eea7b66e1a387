//! How a session authenticates ([`Credential`]): one variant per mode, holding exactly what
//! that mode needs, so a token session without its variable, or a Connect session without its
//! server, cannot be written down. The mode is derived from it.
//!
//! Tokens stay in [`SecretToken`] (locked, wiped on drop); `Debug` never shows them.

use std::sync::Arc;
use std::time::Duration;

use op_session_protocol::Mode;
use secrecy::ExposeSecret;

use crate::connect::link::Link;
use crate::oprun::Auth;
use crate::securemem::SecretToken;

/// How a session authenticates, and what it holds to do so.
#[derive(Debug, Clone)]
pub enum Credential {
    /// The token `op signin` printed, passed in its `OP_SESSION_<ID>` variable.
    Token {
        /// `OP_SESSION_<USERUUID>`.
        var: String,
        /// The session token.
        token: Arc<SecretToken>,
    },
    /// The daemon's own process, signed in through the desktop app: nothing is held.
    App {
        /// When an `op` call last proved the app's authorization live (on the deadline
        /// clock). Cached values are served only within `app_check_interval` of this (a
        /// locked app revokes every authorization at once). Kept on the session; a lease's
        /// copy is not read.
        confirmed: Duration,
    },
    /// A service-account token.
    ServiceAccount {
        /// The `ops_…` token.
        token: Arc<SecretToken>,
    },
    /// A Connect server's token and the server it is for.
    Connect {
        /// The Connect token.
        token: Arc<SecretToken>,
        /// The server this session resolves against.
        link: Arc<Link>,
    },
}

impl Credential {
    /// An app session's (nothing held; confirmed at sign-in).
    pub fn app() -> Self {
        Credential::App {
            confirmed: Duration::ZERO,
        }
    }

    /// The mode this credential signs in with.
    pub fn mode(&self) -> Mode {
        match self {
            Credential::Token { .. } => Mode::Token,
            Credential::App { .. } => Mode::App,
            Credential::ServiceAccount { .. } => Mode::ServiceAccount,
            Credential::Connect { .. } => Mode::Connect,
        }
    }

    /// The held token, if the mode holds one.
    pub fn token(&self) -> Option<&Arc<SecretToken>> {
        match self {
            Credential::Token { token, .. }
            | Credential::ServiceAccount { token }
            | Credential::Connect { token, .. } => Some(token),
            Credential::App { .. } => None,
        }
    }

    /// The Connect server, in connect mode.
    pub fn link(&self) -> Option<&Arc<Link>> {
        match self {
            Credential::Connect { link, .. } => Some(link),
            Credential::Token { .. }
            | Credential::App { .. }
            | Credential::ServiceAccount { .. } => None,
        }
    }

    /// What an `op` child gets in its environment.
    pub fn auth(&self) -> Auth<'_> {
        match self {
            Credential::Token { var, token } => Auth::Token {
                var,
                token: token.expose_secret().as_str(),
            },
            Credential::App { .. } => Auth::None,
            Credential::ServiceAccount { token } => Auth::ServiceAccount {
                token: token.expose_secret().as_str(),
            },
            Credential::Connect { token, link } => Auth::Connect {
                host: link.host(),
                token: token.expose_secret().as_str(),
            },
        }
    }
}

//! Which account a sign-in is for, and the name its session takes.
//!
//! An `init` either names an account (`--account my`) or leaves the choice to `op`, which then
//! uses its own default (the only account, or the one signed in last). The session's name is
//! then the account's name, else the short name `op whoami` reported, else the name of the
//! mode's one unnamed session ([`unnamed_session`]). These names are visible: `status` shows
//! them and `--account` accepts them.

use op_session_protocol::Mode;

use super::identity::Identity;

/// The account a sign-in is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Account {
    /// The person named it (`--account`).
    Named(String),
    /// No `--account`: whichever account `op` picks.
    OpDefault,
}

impl Account {
    /// From a request's optional `account` field.
    pub(crate) fn from_request(account: Option<&str>) -> Self {
        match account {
            Some(a) => Account::Named(a.to_string()),
            None => Account::OpDefault,
        }
    }

    /// The `--account` value to hand `op`: `None` lets `op` pick.
    pub(crate) fn arg(&self) -> Option<&str> {
        match self {
            Account::Named(a) => Some(a),
            Account::OpDefault => None,
        }
    }

    /// The name of the session signed in for this account in `mode`: the account's name, else
    /// (token and app modes) the short name `op whoami` reported, else the mode's unnamed
    /// session.
    pub(crate) fn session_name(&self, mode: Mode, identity: &Identity) -> String {
        match self {
            Account::Named(a) => a.clone(),
            Account::OpDefault => match mode {
                Mode::Token | Mode::App => identity.short_name(),
                Mode::ServiceAccount | Mode::Connect => None,
            }
            .unwrap_or_else(|| unnamed_session(mode).to_string()),
        }
    }
}

/// How a message names the account: its name, or `(default)` when `op` picks.
impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Account::Named(a) => f.write_str(a),
            Account::OpDefault => f.write_str("(default)"),
        }
    }
}

/// The name a session of `mode` takes when nothing names its account. A service account has
/// one account, so its unnamed session is also what `--account service-account` means.
pub(crate) fn unnamed_session(mode: Mode) -> &'static str {
    match mode {
        Mode::Token => "default",
        Mode::App => "app",
        Mode::ServiceAccount => "service-account",
        Mode::Connect => "connect",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_account_names_its_session_else_whoami_else_the_mode() {
        let who = Identity {
            shorthand: Some("my".into()),
            ..Identity::default()
        };
        let named = Account::from_request(Some("work"));
        assert_eq!(named.session_name(Mode::App, &who), "work");
        assert_eq!(named.arg(), Some("work"));
        let op_picks = Account::from_request(None);
        assert_eq!(op_picks.arg(), None);
        assert_eq!(op_picks.to_string(), "(default)");
        assert_eq!(op_picks.session_name(Mode::Token, &who), "my");
        assert_eq!(
            op_picks.session_name(Mode::Token, &Identity::default()),
            "default"
        );
        assert_eq!(
            op_picks.session_name(Mode::App, &Identity::default()),
            "app"
        );
        assert_eq!(
            op_picks.session_name(Mode::ServiceAccount, &who),
            "service-account"
        );
        assert_eq!(op_picks.session_name(Mode::Connect, &who), "connect");
    }
}

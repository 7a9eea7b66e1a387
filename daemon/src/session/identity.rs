//! Who a session belongs to, as `op whoami` reported it, and the short name derived from it.

/// Who a session belongs to, as `op whoami` reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The user's email (people only).
    pub email: Option<String>,
    /// Sign-in address.
    pub url: Option<String>,
    /// User UUID.
    pub user_uuid: Option<String>,
    /// Account UUID.
    pub account_uuid: Option<String>,
    /// Shorthand, when op reported one.
    pub shorthand: Option<String>,
}

impl Identity {
    /// Parse `op whoami --format json` (either key style of docs/op-behaviour.md §1.7).
    pub fn from_whoami(json: &[u8]) -> Option<Identity> {
        let v: serde_json::Value = serde_json::from_slice(json).ok()?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        Some(Identity {
            email: s("email"),
            url: s("url").or_else(|| s("URL")),
            user_uuid: s("user_uuid"),
            account_uuid: s("account_uuid"),
            shorthand: s("shorthand"),
        })
    }

    /// The sign-in address without scheme or trailing slash, lower-cased.
    pub fn host(&self) -> Option<String> {
        self.url.as_deref().map(normalize_url)
    }

    /// A short name for the account: the shorthand, else the first label of the host.
    pub fn short_name(&self) -> Option<String> {
        self.shorthand.clone().or_else(|| {
            self.host()
                .and_then(|h| h.split('.').next().map(str::to_string))
        })
    }
}

pub(super) fn normalize_url(u: &str) -> String {
    let u = u.trim().to_ascii_lowercase();
    let u = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .unwrap_or(&u)
        .to_string();
    u.trim_end_matches('/').to_string()
}

//! Scrubbing `op`'s stderr before it leaves the daemon, and reading what it means.
//!
//! Owns two jobs on `op`'s error text: removing anything secret (the held tokens, cached
//! values, any `ops_…` service-account token shape) and classifying the failure into an
//! an [`Error`] so auth failures end the session at once (docs/architecture.md, "Expiry is enforced by the daemon": expiry is enforced, an
//! auth error marks the session expired) and the client gets one clear message.

use crate::error::{Detail, Error};

/// What replaces a scrubbed secret.
pub(crate) const REDACTED: &str = "<redacted>";

/// Remove every occurrence of each secret (empty ones ignored) and `ops_…` token shapes.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| s.len() >= 3).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets {
        if out.contains(s) {
            out = out.replace(s, REDACTED);
        }
    }
    scrub_ops_tokens(&out)
}

fn scrub_ops_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("ops_") {
        let (before, at) = rest.split_at(i);
        out.push_str(before);
        let body = &at[4..];
        let n = body
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .count();
        if n >= 16 {
            out.push_str("ops_");
            out.push_str(REDACTED);
            rest = &body[n..];
        } else {
            out.push_str("ops_");
            rest = body;
        }
    }
    out.push_str(rest);
    out
}

/// Drop op's `[ERROR] YYYY/MM/DD HH:MM:SS ` prefix from each line, for our one-line messages.
pub(crate) fn strip_error_prefix(text: &str) -> String {
    text.lines()
        .map(|l| {
            l.strip_prefix("[ERROR] ")
                .map(|r| {
                    // "YYYY/MM/DD HH:MM:SS " is 20 bytes.
                    if r.len() >= 20 && r.as_bytes()[4] == b'/' && r.as_bytes()[13] == b':' {
                        &r[20..]
                    } else {
                        r
                    }
                })
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How a failed `op` call should be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The session is gone (signed out, expired, revoked): end it.
    SessionGone,
    /// The app prompt was dismissed.
    Denied,
    /// The app prompt timed out.
    PromptTimeout,
    /// The desktop app is unreachable or locked.
    AppUnavailable,
    /// Rate limited; seconds until retry if op said.
    RateLimited(Option<u64>),
    /// Any other failure: show op's message.
    Other,
}

/// Classify `op`'s stderr (see docs/op-behaviour.md §2 and §6).
pub(crate) fn classify(stderr: &str) -> Failure {
    let s = stderr.to_ascii_lowercase();
    if s.contains("(429)") || s.contains("too many requests") {
        return Failure::RateLimited(retry_after(&s));
    }
    if s.contains("authorization prompt dismissed") {
        return Failure::Denied;
    }
    if s.contains("authorization timeout") || s.contains("context deadline exceeded") {
        return Failure::PromptTimeout;
    }
    if s.contains("connecting to desktop app") || s.contains("requestdelegatedsession") {
        return Failure::AppUnavailable;
    }
    const GONE: &[&str] = &[
        "not currently signed in",
        "account is not signed in",
        "could not find session token",
        "no active session found",
        "session expired",
        "service account deleted",
        "decodesacredentials",
        "deserializeserviceaccountauthtoken",
        "authentication: db: 401",
    ];
    if GONE.iter().any(|g| s.contains(g)) {
        return Failure::SessionGone;
    }
    Failure::Other
}

/// "Please retry in 58 minutes" / "in 23 hours and 59 minutes" → seconds.
fn retry_after(s: &str) -> Option<u64> {
    let i = s.find("retry in ")?;
    let words: Vec<&str> = s[i + 9..].split_whitespace().take(6).collect();
    let mut total = 0u64;
    let mut found = false;
    for pair in words.windows(2) {
        if let Ok(n) = pair[0].parse::<u64>() {
            let unit = pair[1].trim_end_matches(['.', ',']);
            let mult = match unit {
                u if u.starts_with("hour") => 3600,
                u if u.starts_with("minute") => 60,
                u if u.starts_with("second") => 1,
                _ => continue,
            };
            total += n * mult;
            found = true;
        }
    }
    found.then_some(total)
}

/// Turn a classified failure into the error the client sees. `message` is scrubbed op text;
/// every variant carries `op`'s exit code.
pub(crate) fn to_error(failure: Failure, account: &str, message: &str, op_code: i32) -> Error {
    let one_line = strip_error_prefix(message).trim().to_string();
    let detail = |message: String, fix: Option<String>| Detail {
        message,
        fix,
        op_exit_code: Some(op_code),
        ..Detail::default()
    };
    match failure {
        Failure::SessionGone => Error::Expired(detail(
            format!("the 1Password session for account {account} has ended ({one_line})"),
            Some(format!(
                "run `op-session init --account {account}` in a terminal to sign in again"
            )),
        )),
        Failure::Denied => Error::AuthDenied(detail(
            format!("the 1Password app's authorization prompt was dismissed for account {account}"),
            None,
        )),
        Failure::PromptTimeout => Error::AuthTimeout(detail(
            format!("nobody answered the 1Password app's authorization prompt for account {account}"),
            None,
        )),
        Failure::AppUnavailable => Error::Locked(detail(
            format!("the 1Password app is not reachable or is locked ({one_line})"),
            Some("open and unlock the 1Password app, enable Settings > Developer > Integrate with 1Password CLI, then run `op-session init`".into()),
        )),
        Failure::RateLimited(secs) => Error::RateLimited(Detail {
            retry_after_s: secs,
            ..detail(
                one_line,
                secs.map(|s| format!("retry in {} (1Password's rate limit)", op_session_protocol::human::duration(s))),
            )
        }),
        Failure::Other => {
            let text = if message.trim().is_empty() {
                // A crash or a kill prints nothing; say what happened instead of nothing.
                format!("op failed without a message ({})", describe_exit(op_code))
            } else {
                message.trim_end().to_string()
            };
            Error::OpFailed(detail(text, None))
        }
    }
}

/// "exit code 3", "killed by signal 11 (SIGSEGV)".
pub(crate) fn describe_exit(code: i32) -> String {
    if code > 128 {
        let sig = code - 128;
        let name = nix::sys::signal::Signal::try_from(sig)
            .map(|s| format!(" ({})", s.as_str()))
            .unwrap_or_default();
        format!("killed by signal {sig}{name}")
    } else {
        format!("exit code {code}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_tokens_values_and_ops_shapes() {
        let t = "[ERROR] 2024/01/01 00:00:00 bad token gXKhaUdTwsmM1ESz4Q6cakpvtXMAEom7AAw04_xB39s and ops_eyJzaWduSW5BZGRyZXNzIjoi and value hunter2";
        let s = scrub(
            t,
            &["gXKhaUdTwsmM1ESz4Q6cakpvtXMAEom7AAw04_xB39s", "hunter2", ""],
        );
        assert!(!s.contains("gXKhaUdT"), "{s}");
        assert!(!s.contains("eyJzaWdu"), "{s}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("ops_<redacted>"), "{s}");
        assert_eq!(scrub("ops_x short", &[]), "ops_x short");
    }

    #[test]
    fn classifies_op_auth_errors() {
        let gone = "[ERROR] 2024/01/01 00:00:00 You are not currently signed in. Please run `op signin --help` for instructions";
        assert_eq!(classify(gone), Failure::SessionGone);
        assert_eq!(
            classify(
                "[ERROR] 2024/01/01 00:00:00 could not read secret 'op://a/b/c': error initializing client: authorization prompt dismissed, please try again"
            ),
            Failure::Denied
        );
        assert_eq!(
            classify("error initializing client: authorization timeout"),
            Failure::PromptTimeout
        );
        assert_eq!(
            classify(
                "[ERROR] 2023/06/26 11:55:32 (429) Too Many Requests: You've reached the maximum number of this type of requests this service account is allowed to make. Please retry in 58 minutes or try other requests."
            ),
            Failure::RateLimited(Some(58 * 60))
        );
        assert_eq!(
            classify(
                "(429) Too Many Requests: … Please retry in 23 hours and 59 minutes or try other requests."
            ),
            Failure::RateLimited(Some(23 * 3600 + 59 * 60))
        );
        assert_eq!(classify("\"nope\" isn't an item"), Failure::Other);
    }

    #[test]
    fn strips_timestamps() {
        assert_eq!(
            strip_error_prefix("[ERROR] 2024/01/01 12:34:56 account is not signed in"),
            "account is not signed in"
        );
    }
}

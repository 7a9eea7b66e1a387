//! `op`'s environment namespace: which variables carry credentials, and which only change
//! how `op` presents its output.
//!
//! The daemon builds every `op` child's environment from its own allowlist; from a caller it
//! takes only [`CALLER_PRESENTATION_VARS`]. Whatever can carry a credential or redirect `op`
//! (its config directory, a proxy, a CA, the loader) never comes from a caller.

/// Variables a caller may set for an `op` passthrough: output format and timestamps only.
pub const CALLER_PRESENTATION_VARS: &[&str] =
    &["OP_FORMAT", "OP_ISO_TIMESTAMPS", "OP_INCLUDE_ARCHIVE"];

/// Whether a variable carries a 1Password credential (`OP_SESSION_<ID>`,
/// `OP_SERVICE_ACCOUNT_TOKEN`, `OP_CONNECT_TOKEN`).
pub fn is_credential_var(name: &str) -> bool {
    name.starts_with("OP_SESSION_")
        || name == "OP_SERVICE_ACCOUNT_TOKEN"
        || name == "OP_CONNECT_TOKEN"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_recognized() {
        assert!(is_credential_var("OP_SESSION_ABC"));
        assert!(is_credential_var("OP_SERVICE_ACCOUNT_TOKEN"));
        assert!(is_credential_var("OP_CONNECT_TOKEN"));
        assert!(!is_credential_var("OP_FORMAT"));
    }
}

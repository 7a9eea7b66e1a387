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

/// The variable that turns `op run`'s masking off, as `--no-masking` does.
pub const RUN_NO_MASKING: &str = "OP_RUN_NO_MASKING";

/// Whether a value of [`RUN_NO_MASKING`] turns masking off: only a value `op`'s flag parser
/// reads as true (`1`, `t`, `T`, `TRUE`, `true`, `True`); anything else, and unset, keeps
/// masking on. See docs/op-behaviour.md §4.2.
pub fn run_no_masking(value: Option<&str>) -> bool {
    value.and_then(crate::parse::parse_bool) == Some(true)
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

    #[test]
    fn only_true_turns_masking_off() {
        for v in ["1", "t", "T", "TRUE", "true", "True"] {
            assert!(run_no_masking(Some(v)), "{v}");
        }
        for v in ["", "0", "false", "yes", "on"] {
            assert!(!run_no_masking(Some(v)), "{v}");
        }
        assert!(!run_no_masking(None));
    }
}

//! Secret references (`op://vault/item[/section]/field[?attribute=…]`): parsing (delegated to
//! the shared `secret-ref` crate, so fake-op and the daemon agree on the grammar) and
//! resolution to a value against the state (docs/op-behaviour.md §3.3).
//!
//! Resolution never prints; it returns the value or an error text without the
//! `could not read secret '<ref>': ` prefix, which `op read` adds and `inject`/`run` also use.

use secret_ref::Attribute;

use crate::auth::Principal;
use crate::encoding::totp;
use crate::error::OpError;
use crate::items::{self, Lookup};
use crate::state::{Account, State};

pub use secret_ref::reference::SecretRef;

/// Parse a reference with the shared parser (`secret-ref`); the error is the text op prints
/// after `invalid secret reference '<r>': `.
pub fn parse(input: &str) -> Result<SecretRef, String> {
    secret_ref::reference::parse(input).map_err(|e| e.to_string())
}

/// The value a reference points at, for `principal`. Errors are worded as op prints them after
/// `could not read secret '<ref>': `.
pub fn resolve(
    state: &State,
    principal: Principal,
    r: &SecretRef,
    now_ms: i64,
) -> Result<String, OpError> {
    let account: &Account = &state.accounts[principal.account()];
    let visible = crate::auth::visible_vaults(state, principal);
    let vault = items::find_vault(account, &visible, &r.vault)
        .ok_or_else(|| OpError::new(format!("\"{}\" isn't a vault in this account", r.vault)))?;
    let (v, i) = items::find_item(account, &[vault], &r.item, false).map_err(|e| match e {
        Lookup::NotFound => OpError::new(format!(
            "could not get item {}/{}: \"{}\" isn't an item in the \"{}\" vault. Specify the item with its UUID, name, or domain.",
            r.vault, r.item, r.item, r.vault
        )),
        e @ Lookup::Ambiguous(_) => items::lookup_error(account, &r.item, Some(&r.vault), e),
    })?;
    let item = &account.vaults[v].items[i];
    let section_ok = |section: &Option<String>| match (&r.section, section) {
        (None, _) => true,
        (Some(want), Some(id)) => {
            id == want
                || item
                    .sections
                    .iter()
                    .any(|s| &s.id == id && s.label.eq_ignore_ascii_case(want))
        }
        (Some(_), None) => false,
    };
    let missing = || {
        OpError::new(format!(
            "item '{}/{}' does not have a field '{}'",
            r.vault, r.item, r.field
        ))
    };
    let field = item
        .fields
        .iter()
        .filter(|f| section_ok(&f.section))
        .find(|f| f.id == r.field || f.label.eq_ignore_ascii_case(&r.field));
    if let Some(f) = field {
        let value = f.value.clone().unwrap_or_default();
        return match r.attribute {
            None | Some(Attribute::Value) => Ok(value),
            Some(Attribute::Type) => Ok(f.kind.to_lowercase()),
            Some(Attribute::Id) => Ok(f.id.clone()),
            Some(Attribute::Purpose) => Ok(f.purpose.clone().unwrap_or_default().to_lowercase()),
            Some(Attribute::Otp) if f.kind == "OTP" => totp(&value, now_ms).ok_or_else(|| {
                OpError::new(format!(
                    "field '{}' has an invalid one-time password secret",
                    r.field
                ))
            }),
            Some(Attribute::Otp) => Err(OpError::new(format!(
                "field '{}' is not a one-time password field",
                r.field
            ))),
            Some(other) => Err(OpError::new(format!(
                "invalid attribute '{other}' for field '{}'",
                r.field
            ))),
        };
    }
    let file = item
        .files
        .iter()
        .filter(|f| section_ok(&f.section))
        .find(|f| f.id == r.field || f.name.eq_ignore_ascii_case(&r.field))
        .ok_or_else(missing)?;
    match r.attribute {
        None | Some(Attribute::Content) => Ok(file.content.clone()),
        Some(Attribute::Size) => Ok(file.content.len().to_string()),
        Some(Attribute::Name) => Ok(file.name.clone()),
        Some(Attribute::Id) => Ok(file.id.clone()),
        Some(Attribute::Type) => Ok("file".to_string()),
        Some(other) => Err(OpError::new(format!(
            "invalid attribute '{other}' for file '{}'",
            r.field
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_three_and_four_segments_with_attributes() {
        let r = parse("op://Dev/Stripe/key").unwrap();
        assert_eq!(
            (r.vault.as_str(), r.item.as_str(), r.field.as_str()),
            ("Dev", "Stripe", "key")
        );
        let r = parse("op://Dev/GitHub/Security/one-time password?attribute=otp").unwrap();
        assert_eq!(r.section.as_deref(), Some("Security"));
        assert_eq!(r.attribute, Some(Attribute::Otp));
    }

    #[test]
    fn rejects_like_op() {
        assert_eq!(
            parse("op://For Chang's Claude/item/credential").unwrap_err(),
            "invalid character in secret reference: '''"
        );
        assert!(
            parse("op://a/b/c/d/e")
                .unwrap_err()
                .starts_with("too many '/': ")
        );
    }
}

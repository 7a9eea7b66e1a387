//! Secret references (`op://vault/item[/section]/field[?attribute=…]`): parsing (delegated to
//! the shared `secret-ref` crate, so fake-op and the daemon agree on the grammar) and
//! resolution to a value against the state (docs/op-behaviour.md §3.3).
//!
//! Resolution never prints; it returns the value or an error text without the
//! `could not read secret '<ref>': ` prefix, which `op read` adds and `inject`/`run` also use.

use secret_ref::pick::{FieldInfo, FileInfo, Pick, SectionInfo, pick};

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
    let sections: Vec<SectionInfo> = item
        .sections
        .iter()
        .map(|s| SectionInfo {
            id: &s.id,
            label: &s.label,
        })
        .collect();
    let fields: Vec<FieldInfo> = item
        .fields
        .iter()
        .map(|f| FieldInfo {
            id: &f.id,
            label: &f.label,
            section: f.section.as_deref(),
            kind: &f.kind,
            purpose: f.purpose.as_deref().unwrap_or(""),
        })
        .collect();
    let files: Vec<FileInfo> = item
        .files
        .iter()
        .map(|f| FileInfo {
            id: &f.id,
            name: &f.name,
            section: f.section.as_deref(),
        })
        .collect();
    // Which field or file, and what of it, is the shared rule (secret_ref::pick).
    let picked = pick(r, &sections, &fields, &files).map_err(|e| OpError::new(e.message(r)))?;
    match picked {
        Pick::Value(i) => Ok(item.fields[i].value.clone().unwrap_or_default()),
        Pick::Otp(i) => {
            totp(item.fields[i].value.as_deref().unwrap_or(""), now_ms).ok_or_else(|| {
                OpError::new(format!(
                    "field '{}' has an invalid one-time password secret",
                    r.field
                ))
            })
        }
        Pick::FieldText(_, text) | Pick::FileText(_, text) => Ok(text),
        Pick::Content(i) => Ok(item.files[i].content.clone()),
        Pick::Size(i) => Ok(item.files[i].content.len().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use secret_ref::Attribute;

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

//! `op`'s JSON for vaults and items, typed in, and what the MCP item tools may show of it,
//! typed out.
//!
//! [`OpItem`] and [`OpVault`] read what `op … --format json` prints (the parts op-session uses;
//! anything else, such as `additional_information`, password history or TOTP codes, is never
//! read). [`ItemView`], [`ItemSummary`] and [`VaultView`] are what reaches the model: plain
//! values as printed, every other field value replaced by [`CONCEALED_MARKER`], with no length
//! and no prefix. The view types are the only way out: nothing here serializes an [`OpItem`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What replaces a concealed value in item JSON (the same words `op run` masks with).
pub(crate) const CONCEALED_MARKER: &str = secret_ref::mask::CONCEALED;

/// Field types whose values are shown; every other type's value is replaced by the marker.
const SHOWN_TYPES: &[&str] = &[
    "STRING",
    "EMAIL",
    "URL",
    "PHONE",
    "DATE",
    "MONTH_YEAR",
    "MENU",
    "REFERENCE",
];

/// One entry of `op vault list --format json`.
#[derive(Debug, Deserialize)]
pub(super) struct OpVault {
    id: Option<String>,
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// A vault as `list_vaults` shows it.
#[derive(Debug, Serialize)]
pub(super) struct VaultView {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
}

impl OpVault {
    /// Whether `allowed` (policy `vaults`, names or IDs, case-insensitive; empty: all) names
    /// this vault.
    pub(super) fn allowed(&self, allowed: &[String]) -> bool {
        allowed.is_empty()
            || [&self.id, &self.name]
                .into_iter()
                .flatten()
                .any(|s| allowed.iter().any(|a| a.eq_ignore_ascii_case(s)))
    }

    /// What the model sees.
    pub(super) fn view(self) -> VaultView {
        VaultView {
            id: self.id,
            name: self.name,
            kind: self.kind,
        }
    }
}

/// `{id, name}` of the vault an item is in.
#[derive(Debug, Deserialize, Serialize)]
pub(super) struct VaultRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

/// `{id, label}` of a section.
#[derive(Debug, Deserialize, Serialize)]
pub(super) struct SectionRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
}

/// One of an item's `urls`.
#[derive(Debug, Deserialize, Serialize)]
pub(super) struct ItemUrl {
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    href: Option<String>,
}

/// One field of an item, as `op` prints it (its value included: this type never leaves the
/// daemon; [`FieldView`] does).
#[derive(Debug, Deserialize)]
struct OpField {
    id: Option<String>,
    label: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    purpose: Option<String>,
    reference: Option<String>,
    section: Option<SectionRef>,
    /// As printed (a string for every type op-session knows).
    value: Option<Value>,
}

/// One file attached to an item (never its content).
#[derive(Debug, Deserialize, Serialize)]
struct ItemFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
}

/// An item as `op item get|create|edit --format json` prints it, or one entry of
/// `op item list --format json` (which has no sections, fields or files).
#[derive(Debug, Default, Deserialize)]
pub(super) struct OpItem {
    id: Option<String>,
    title: Option<String>,
    category: Option<String>,
    vault: Option<VaultRef>,
    tags: Option<Vec<String>>,
    urls: Option<Vec<ItemUrl>>,
    created_at: Option<String>,
    updated_at: Option<String>,
    #[serde(default)]
    sections: Vec<SectionRef>,
    #[serde(default)]
    fields: Vec<OpField>,
    files: Option<Vec<ItemFile>>,
}

/// An item as `list_items` shows it. Not `additional_information`: for some categories it is
/// part of a secret (a card number's last digits).
#[derive(Debug, Serialize)]
pub(super) struct ItemSummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vault: Option<VaultRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    urls: Option<Vec<ItemUrl>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<String>,
}

/// A field as `get_item` shows it: label, type, section and `op://` reference, and a value
/// only for plain types (else the marker).
#[derive(Debug, Serialize)]
pub(super) struct FieldView {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    section: Option<SectionRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
}

/// An item as `get_item` (and `create_item`, `edit_item`) shows it: identity, sections, and
/// its fields as [`FieldView`]s. Password history, TOTP codes and file contents are left out
/// entirely.
#[derive(Debug, Serialize)]
pub(super) struct ItemView {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vault: Option<VaultRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    urls: Option<Vec<ItemUrl>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sections: Vec<SectionRef>,
    fields: Vec<FieldView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<ItemFile>>,
}

impl OpField {
    fn view(self) -> FieldView {
        let has_value = self
            .value
            .as_ref()
            .is_some_and(|v| !v.is_null() && v.as_str() != Some(""));
        let shown = self
            .kind
            .as_deref()
            .is_some_and(|t| SHOWN_TYPES.contains(&t))
            && self.purpose.as_deref() != Some("PASSWORD");
        let value = match (has_value, shown) {
            (false, _) => None,
            (true, true) => self.value,
            (true, false) => Some(Value::String(CONCEALED_MARKER.into())),
        };
        FieldView {
            id: self.id,
            label: self.label,
            kind: self.kind,
            purpose: self.purpose,
            reference: self.reference,
            section: self.section,
            value,
        }
    }
}

impl OpItem {
    /// What `get_item`, `create_item` and `edit_item` show.
    pub(super) fn view(self) -> ItemView {
        ItemView {
            id: self.id,
            title: self.title,
            category: self.category,
            vault: self.vault,
            tags: self.tags,
            urls: self.urls,
            created_at: self.created_at,
            updated_at: self.updated_at,
            sections: self.sections,
            fields: self.fields.into_iter().map(OpField::view).collect(),
            files: self.files,
        }
    }

    /// What `list_items` shows.
    pub(super) fn summary(self) -> ItemSummary {
        ItemSummary {
            id: self.id,
            title: self.title,
            category: self.category,
            vault: self.vault,
            tags: self.tags,
            urls: self.urls,
            updated_at: self.updated_at,
        }
    }
}

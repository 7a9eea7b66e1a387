//! Output shapes: op's snake_case JSON (docs/op-behaviour.md §1.6, §1.7, §7) and its human-readable
//! layouts (tabwriter columns padded by four spaces, `Label:` blocks).
//!
//! JSON goes through `#[derive(Serialize)]` structs so keys keep op's order without turning on
//! serde_json's `preserve_order` for the whole workspace. Secrets are concealed in human
//! output unless `--reveal`; JSON carries values, as op's does.

use serde::Serialize;

use crate::clock;
use crate::encoding::totp;
use crate::state::{Field, Item, ItemFile, Vault};

/// Pretty JSON plus newline, as op prints it.
pub fn json<T: Serialize>(value: &T) -> String {
    // Serializing these plain structs cannot fail (no maps with non-string keys).
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}

/// Columns separated by at least four spaces (Go's tabwriter with padding 4).
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 4));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `{id, name}` of a vault inside an item.
#[derive(Serialize)]
pub struct VaultRef {
    id: String,
    name: String,
}

/// `{id, label}` of a section.
#[derive(Serialize)]
pub struct SectionOut {
    id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    label: String,
}

/// One field in item JSON.
#[derive(Serialize)]
pub struct FieldOut {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    section: Option<SectionOut>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose: Option<String>,
    label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    totp: Option<String>,
    reference: String,
}

/// One file in item JSON.
#[derive(Serialize)]
pub struct FileOut {
    id: String,
    name: String,
    size: usize,
    content_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    section: Option<SectionOut>,
}

/// `urls[]` entries.
#[derive(Serialize)]
pub struct UrlOut {
    #[serde(skip_serializing_if = "String::is_empty")]
    label: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    primary: bool,
    href: String,
}

/// An item, in full (`item get`) or as a summary (`item list`, no sections/fields/files).
#[derive(Serialize)]
pub struct ItemOut {
    id: String,
    title: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    favorite: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    version: u64,
    vault: VaultRef,
    category: String,
    last_edited_by: String,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_information: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    urls: Vec<UrlOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sections: Option<Vec<SectionOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<Vec<FieldOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<FileOut>>,
}

fn section_of(item: &Item, id: &Option<String>) -> Option<SectionOut> {
    let id = id.as_ref()?;
    let label = item
        .sections
        .iter()
        .find(|s| &s.id == id)
        .map(|s| s.label.clone())
        .unwrap_or_default();
    Some(SectionOut {
        id: id.clone(),
        label,
    })
}

/// The additional information shown in lists: explicit, else a login's username.
pub fn additional_information(item: &Item) -> Option<String> {
    item.additional_information.clone().or_else(|| {
        item.fields
            .iter()
            .find(|f| f.purpose.as_deref() == Some("USERNAME"))
            .and_then(|f| f.value.clone())
    })
}

/// `op://<vault>/<item>[/<section>]/<field>` as op prints it in `reference`.
pub fn field_reference(vault: &Vault, item: &Item, field: &Field) -> String {
    let section = section_of(item, &field.section)
        .map(|s| {
            if s.label.is_empty() {
                format!("{}/", s.id)
            } else {
                format!("{}/", s.label)
            }
        })
        .unwrap_or_default();
    let label = if field.label.is_empty() {
        &field.id
    } else {
        &field.label
    };
    format!("op://{}/{}/{section}{label}", vault.name, item.title)
}

/// One field as JSON; OTP fields carry the current code in `totp`.
pub fn field_out(
    vault: &Vault,
    item: &Item,
    field: &Field,
    now_ms: i64,
    conceal: bool,
) -> FieldOut {
    let totp = (field.kind == "OTP")
        .then(|| field.value.as_deref().and_then(|v| totp(v, now_ms)))
        .flatten();
    let value = if conceal && field.kind == "CONCEALED" {
        field.value.as_ref().map(|_| conceal_text(&item.id))
    } else {
        field.value.clone().filter(|v| !v.is_empty())
    };
    FieldOut {
        id: field.id.clone(),
        section: section_of(item, &field.section),
        kind: field.kind.clone(),
        purpose: field.purpose.clone(),
        label: field.label.clone(),
        value,
        totp,
        reference: field_reference(vault, item, field),
    }
}

fn file_out(vault: &Vault, item: &Item, file: &ItemFile) -> FileOut {
    FileOut {
        id: file.id.clone(),
        name: file.name.clone(),
        size: file.content.len(),
        content_path: format!(
            "/v1/vaults/{}/items/{}/files/{}/content",
            vault.id, item.id, file.id
        ),
        section: section_of(item, &file.section),
    }
}

/// Item JSON; `full` adds sections, fields and files.
pub fn item_out(vault: &Vault, item: &Item, full: bool, now_ms: i64) -> ItemOut {
    ItemOut {
        id: item.id.clone(),
        title: item.title.clone(),
        favorite: item.favorite,
        tags: item.tags.clone(),
        version: item.version,
        vault: VaultRef {
            id: vault.id.clone(),
            name: vault.name.clone(),
        },
        category: item.category.clone(),
        last_edited_by: item.last_edited_by.clone(),
        created_at: item.created_at.clone(),
        updated_at: item.updated_at.clone(),
        additional_information: additional_information(item),
        urls: item
            .urls
            .iter()
            .map(|u| UrlOut {
                label: u.label.clone(),
                primary: u.primary,
                href: u.href.clone(),
            })
            .collect(),
        sections: (full && !item.sections.is_empty()).then(|| {
            item.sections
                .iter()
                .map(|s| SectionOut {
                    id: s.id.clone(),
                    label: s.label.clone(),
                })
                .collect()
        }),
        fields: full.then(|| {
            item.fields
                .iter()
                .map(|f| field_out(vault, item, f, now_ms, false))
                .collect()
        }),
        files: (full && !item.files.is_empty()).then(|| {
            item.files
                .iter()
                .map(|f| file_out(vault, item, f))
                .collect()
        }),
    }
}

/// `[use 'op item get <id> --reveal' to reveal]`.
pub fn conceal_text(item_id: &str) -> String {
    format!("[use 'op item get {item_id} --reveal' to reveal]")
}

/// A time as human output shows it: relative, or RFC 3339 with `--iso-timestamps`.
pub fn when(rfc: &str, now_ms: i64, iso: bool) -> String {
    if iso {
        return rfc.to_string();
    }
    match clock::parse_rfc3339(rfc) {
        Some(t) => clock::ago(t, now_ms),
        None => rfc.to_string(),
    }
}

/// `Label:    value` lines with values aligned (tabwriter, padding 4), each prefixed by `indent`.
pub fn pairs(indent: &str, rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count() + 1)
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|(k, v)| {
            let pad = width - k.chars().count() - 1 + 4;
            format!("{indent}{k}:{}{v}", " ".repeat(pad))
                .trim_end()
                .to_string()
                + "\n"
        })
        .collect()
}

/// Human-readable `item get` (docs/op-behaviour.md §7.2).
pub fn item_human(vault: &Vault, item: &Item, reveal: bool, now_ms: i64, iso: bool) -> String {
    let mut out = pairs(
        "",
        &[
            ("ID".into(), item.id.clone()),
            ("Title".into(), item.title.clone()),
            ("Vault".into(), format!("{} ({})", vault.name, vault.id)),
            ("Created".into(), when(&item.created_at, now_ms, iso)),
            ("Updated".into(), when(&item.updated_at, now_ms, iso)),
            ("Favorite".into(), item.favorite.to_string()),
            ("Version".into(), item.version.to_string()),
            ("Category".into(), item.category.clone()),
        ],
    );
    let shown = |f: &Field| field_human_value(item, f, reveal, now_ms);
    let top: Vec<(String, String)> = item
        .fields
        .iter()
        .filter(|f| f.section.is_none() && f.value.is_some())
        .map(|f| (f.label.clone(), shown(f)))
        .collect();
    if !top.is_empty() {
        out.push_str("Fields:\n");
        out.push_str(&pairs("  ", &top));
    }
    for section in &item.sections {
        let rows: Vec<(String, String)> = item
            .fields
            .iter()
            .filter(|f| f.section.as_deref() == Some(section.id.as_str()) && f.value.is_some())
            .map(|f| (f.label.clone(), shown(f)))
            .collect();
        if rows.is_empty() {
            continue;
        }
        out.push('\n');
        out.push_str(&format!("{}:\n", section.label));
        out.push_str(&pairs("  ", &rows));
    }
    if !item.urls.is_empty() {
        out.push_str("URLs:\n");
        let rows: Vec<(String, String)> = item
            .urls
            .iter()
            .map(|u| {
                let primary = if u.primary { " (primary)" } else { "" };
                (u.label.clone(), format!("{}{primary}", u.href))
            })
            .collect();
        out.push_str(&pairs("  ", &rows));
    }
    out
}

/// A field's value in human output: concealed unless revealed; OTP fields show their code.
pub fn field_human_value(item: &Item, f: &Field, reveal: bool, now_ms: i64) -> String {
    let value = f.value.clone().unwrap_or_default();
    match f.kind.as_str() {
        "CONCEALED" if !reveal => conceal_text(&item.id),
        "OTP" if !reveal => conceal_text(&item.id),
        "OTP" => totp(&value, now_ms).unwrap_or(value),
        _ => value,
    }
}

//! How `op` picks what a reference names from the item it found: the field whose ID or label
//! (case-insensitively) is the reference's field, within the named section (by ID or label)
//! if there is one; else a file by ID or name; then the `?attribute=` asked of it
//! (docs/op-behaviour.md §3.3). fake-op and the daemon's Connect resolver both call [`pick`],
//! each describing its own item shape as [`SectionInfo`], [`FieldInfo`] and [`FileInfo`].
//!
//! Returns which field or file and what of it ([`Pick`]); fetching a file's content, computing
//! a one-time password and the error prefix stay with the caller. No value passes through here.

use crate::{Attribute, SecretRef};

/// A section of the item: its ID and label.
#[derive(Debug, Clone, Copy)]
pub struct SectionInfo<'a> {
    /// ID.
    pub id: &'a str,
    /// Label (empty if none).
    pub label: &'a str,
}

/// A field of the item, without its value.
#[derive(Debug, Clone, Copy)]
pub struct FieldInfo<'a> {
    /// ID.
    pub id: &'a str,
    /// Label (empty if none).
    pub label: &'a str,
    /// The ID of its section.
    pub section: Option<&'a str>,
    /// Its type as `op` spells it (`CONCEALED`, `OTP`, …).
    pub kind: &'a str,
    /// Its purpose (`USERNAME`, `PASSWORD`, `NOTES`; empty if none).
    pub purpose: &'a str,
}

/// A file attached to the item, without its content.
#[derive(Debug, Clone, Copy)]
pub struct FileInfo<'a> {
    /// ID.
    pub id: &'a str,
    /// File name.
    pub name: &'a str,
    /// The ID of its section.
    pub section: Option<&'a str>,
}

/// What the reference reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// The value of field `.0`.
    Value(usize),
    /// The current one-time password of OTP field `.0`.
    Otp(usize),
    /// Text about field `.0` (its type, ID or purpose, as `op` prints it).
    FieldText(usize, String),
    /// The content of file `.0`.
    Content(usize),
    /// The size in bytes of file `.0`.
    Size(usize),
    /// Text about file `.0` (its name, ID or `file`).
    FileText(usize, String),
}

impl Pick {
    /// The field picked, if a field was.
    #[must_use]
    pub fn field(&self) -> Option<usize> {
        match self {
            Pick::Value(i) | Pick::Otp(i) | Pick::FieldText(i, _) => Some(*i),
            _ => None,
        }
    }
}

/// Why nothing could be picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickError {
    /// No field or file by that name (in that section).
    NoField,
    /// `?attribute=otp` of a field that is not a one-time password.
    NotOtp,
    /// An attribute a field does not have.
    FieldAttribute(Attribute),
    /// An attribute a file does not have.
    FileAttribute(Attribute),
}

impl PickError {
    /// `op`'s words for it, without the `could not read secret '<ref>': ` prefix.
    #[must_use]
    pub fn message(self, r: &SecretRef) -> String {
        match self {
            PickError::NoField => format!(
                "item '{}/{}' does not have a field '{}'",
                r.vault, r.item, r.field
            ),
            PickError::NotOtp => format!("field '{}' is not a one-time password field", r.field),
            PickError::FieldAttribute(a) => {
                format!("invalid attribute '{a}' for field '{}'", r.field)
            }
            PickError::FileAttribute(a) => {
                format!("invalid attribute '{a}' for file '{}'", r.field)
            }
        }
    }
}

/// Pick what `r` names from an item with these sections, fields and files.
///
/// # Errors
///
/// [`PickError`]: nothing by that name, or an attribute it does not have.
pub fn pick(
    r: &SecretRef,
    sections: &[SectionInfo<'_>],
    fields: &[FieldInfo<'_>],
    files: &[FileInfo<'_>],
) -> Result<Pick, PickError> {
    let in_section = |section: Option<&str>| match (&r.section, section) {
        (None, _) => true,
        (Some(want), Some(id)) => {
            id == want
                || sections
                    .iter()
                    .any(|s| s.id == id && s.label.eq_ignore_ascii_case(want))
        }
        (Some(_), None) => false,
    };
    let named = |id: &str, label: &str| id == r.field || label.eq_ignore_ascii_case(&r.field);
    if let Some((i, f)) = fields
        .iter()
        .enumerate()
        .find(|(_, f)| in_section(f.section) && named(f.id, f.label))
    {
        return match r.attribute {
            None | Some(Attribute::Value) => Ok(Pick::Value(i)),
            Some(Attribute::Type) => Ok(Pick::FieldText(i, f.kind.to_ascii_lowercase())),
            Some(Attribute::Id) => Ok(Pick::FieldText(i, f.id.to_string())),
            Some(Attribute::Purpose) => Ok(Pick::FieldText(i, f.purpose.to_ascii_lowercase())),
            Some(Attribute::Otp) if f.kind == "OTP" => Ok(Pick::Otp(i)),
            Some(Attribute::Otp) => Err(PickError::NotOtp),
            Some(other) => Err(PickError::FieldAttribute(other)),
        };
    }
    let (i, file) = files
        .iter()
        .enumerate()
        .find(|(_, f)| in_section(f.section) && named(f.id, f.name))
        .ok_or(PickError::NoField)?;
    match r.attribute {
        None | Some(Attribute::Content) => Ok(Pick::Content(i)),
        Some(Attribute::Size) => Ok(Pick::Size(i)),
        Some(Attribute::Name) => Ok(Pick::FileText(i, file.name.to_string())),
        Some(Attribute::Id) => Ok(Pick::FileText(i, file.id.to_string())),
        Some(Attribute::Type) => Ok(Pick::FileText(i, "file".to_string())),
        Some(other) => Err(PickError::FileAttribute(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> SecretRef {
        crate::reference::parse(s).expect("parses")
    }

    const SECTIONS: &[SectionInfo<'static>] = &[SectionInfo {
        id: "s1",
        label: "Security",
    }];
    const FIELDS: &[FieldInfo<'static>] = &[
        FieldInfo {
            id: "password",
            label: "password",
            section: None,
            kind: "CONCEALED",
            purpose: "PASSWORD",
        },
        FieldInfo {
            id: "totp1",
            label: "one-time password",
            section: Some("s1"),
            kind: "OTP",
            purpose: "",
        },
    ];
    const FILES: &[FileInfo<'static>] = &[FileInfo {
        id: "f1",
        name: "key.pem",
        section: None,
    }];

    fn p(s: &str) -> Result<Pick, PickError> {
        pick(&r(s), SECTIONS, FIELDS, FILES)
    }

    #[test]
    fn fields_by_id_or_label_in_their_section_then_files() {
        assert_eq!(p("op://V/i/PASSWORD"), Ok(Pick::Value(0)));
        assert_eq!(
            p("op://V/i/security/One-Time Password?attribute=otp"),
            Ok(Pick::Otp(1))
        );
        assert_eq!(p("op://V/i/s1/totp1"), Ok(Pick::Value(1)));
        assert_eq!(p("op://V/i/other/totp1"), Err(PickError::NoField));
        assert_eq!(
            p("op://V/i/password?attribute=purpose"),
            Ok(Pick::FieldText(0, "password".into()))
        );
        assert_eq!(p("op://V/i/password?attribute=otp"), Err(PickError::NotOtp));
        assert_eq!(p("op://V/i/KEY.pem"), Ok(Pick::Content(0)));
        assert_eq!(p("op://V/i/f1?attribute=size"), Ok(Pick::Size(0)));
        assert_eq!(
            p("op://V/i/key.pem?attribute=type"),
            Ok(Pick::FileText(0, "file".into()))
        );
        assert_eq!(p("op://V/i/nope"), Err(PickError::NoField));
        assert_eq!(
            PickError::NoField.message(&r("op://V/i/nope")),
            "item 'V/i' does not have a field 'nope'"
        );
    }
}

//! The `?attribute=` (or `?attr=`) of a secret reference: which part of a field or file a
//! reference reads instead of its value (docs/op-behaviour.md §3.1).
//!
//! Owns the names `op` accepts and their canonical lower-case spelling. Which attributes apply
//! is known only once the reference is resolved (a field or a file), so parsing accepts any
//! of them and the resolver refuses the ones that do not fit.

use std::fmt;
use std::str::FromStr;

/// One attribute a reference may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attribute {
    /// The field's type (`concealed`, `otp`, …), or `file` for a file.
    Type,
    /// The field's value (the default for a field).
    Value,
    /// The field's or file's ID.
    Id,
    /// The field's purpose (`username`, `password`, `notes`), lower-cased.
    Purpose,
    /// The current one-time password of an OTP field.
    Otp,
    /// The file's content (the default for a file).
    Content,
    /// The file's size in bytes.
    Size,
    /// The file's name.
    Name,
}

/// Attributes a field reference may ask for.
pub const FIELD_ATTRIBUTES: &[Attribute] = &[
    Attribute::Type,
    Attribute::Value,
    Attribute::Id,
    Attribute::Purpose,
    Attribute::Otp,
];

/// Attributes a file reference may ask for.
pub const FILE_ATTRIBUTES: &[Attribute] = &[
    Attribute::Content,
    Attribute::Size,
    Attribute::Name,
    Attribute::Id,
    Attribute::Type,
];

impl Attribute {
    /// The canonical (lower-case) name, as in `?attribute=otp`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Attribute::Type => "type",
            Attribute::Value => "value",
            Attribute::Id => "id",
            Attribute::Purpose => "purpose",
            Attribute::Otp => "otp",
            Attribute::Content => "content",
            Attribute::Size => "size",
            Attribute::Name => "name",
        }
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Attribute {
    type Err = ();

    /// A name in any case; `Err` for a name `op` does not know.
    fn from_str(s: &str) -> Result<Attribute, ()> {
        FIELD_ATTRIBUTES
            .iter()
            .chain(FILE_ATTRIBUTES)
            .copied()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attribute_reads_back_in_any_case() {
        for a in FIELD_ATTRIBUTES.iter().chain(FILE_ATTRIBUTES) {
            assert_eq!(a.as_str().parse(), Ok(*a));
            assert_eq!(a.as_str().to_ascii_uppercase().parse(), Ok(*a));
        }
        assert_eq!("colour".parse::<Attribute>(), Err(()));
    }
}

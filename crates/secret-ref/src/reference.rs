//! One secret reference: `op://<vault>/<item>[/<section>]/<field>[?<query>]`.
//!
//! Owns the syntax of docs/op-behaviour.md §3.1: the `op://` scheme, three or four non-empty segments, the
//! characters a name may use, the `attribute`/`attr` and `ssh-format` query parameters, and the
//! lower-cased form used as a cache key (references are case-insensitive).
//!
//! Never resolves anything: whether a vault or item exists is the resolver's question. Error
//! texts quoted from real `op` are reproduced exactly, because the `op` simulator prints them
//! after its `[ERROR] <timestamp> ` prefix; the ones we had to invent say so.

use std::fmt;
use std::str::FromStr;

pub use crate::attribute::{Attribute, FIELD_ATTRIBUTES, FILE_ATTRIBUTES};

/// The scheme every secret reference starts with.
pub const SCHEME: &str = "op://";

/// Values accepted by `?ssh-format=`.
pub const SSH_FORMATS: &[&str] = &["openssh"];

/// The shape `op` reminds the user of when a reference has the wrong number of segments.
const SHAPE: &str = "secret references should match op://<vault>/<item>[/<section>]/<field>";

/// Why a string is not a secret reference.
///
/// The `Display` text is the message alone. Real `op` wraps it, for example
/// `invalid secret reference 'op://…': invalid character in secret reference: '''` (docs/op-behaviour.md
/// §3.1); adding that wrapper, if wanted, is the printer's job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// The text does not start with `op://`.
    ///
    /// Wording unconfirmed: real `op`'s text for this case is not on record.
    #[error("invalid secret reference: {SHAPE}")]
    MissingScheme,
    /// Fewer than three `/`-separated segments after `op://`.
    ///
    /// Wording unconfirmed: modelled on the recorded "too many '/'" message.
    #[error("invalid secret reference: {SHAPE}")]
    TooFewSegments,
    /// A segment is empty, as in `op://vault//field`.
    ///
    /// Wording unconfirmed (same text as [`RefError::TooFewSegments`]).
    #[error("invalid secret reference: {SHAPE}")]
    EmptySegment,
    /// More than four segments after `op://`. Text confirmed from real `op`.
    #[error("too many '/': {SHAPE}")]
    TooManySegments,
    /// A name uses a character outside `A-Z a-z 0-9 - _ .` and space. Text confirmed from real
    /// `op`; the fix is to name that vault, item, section or field by its ID instead.
    #[error("invalid character in secret reference: '{0}'")]
    InvalidCharacter(char),
    /// `?attribute=` (or `?attr=`) names no known attribute; holds the value lower-cased.
    ///
    /// Wording unconfirmed.
    #[error("invalid attribute '{0}'")]
    InvalidAttribute(String),
    /// `?ssh-format=` names a format other than `openssh`; holds the value lower-cased.
    ///
    /// Wording unconfirmed.
    #[error("invalid ssh-format '{0}'")]
    InvalidSshFormat(String),
    /// A query parameter other than `attribute`, `attr` or `ssh-format`, or one without `=`.
    ///
    /// Wording unconfirmed.
    #[error("invalid query parameter '{0}'")]
    InvalidQueryParameter(String),
    /// The same query parameter given twice (`attr` and `attribute` count as the same).
    ///
    /// Wording unconfirmed.
    #[error("duplicate query parameter '{0}'")]
    DuplicateQueryParameter(String),
}

/// A parsed secret reference.
///
/// Names keep the case they were written in; [`SecretRef::normalized`] gives the
/// case-insensitive key. `Display` prints the canonical form (query parameter spelled
/// `attribute`, `attribute` before `ssh-format`), which [`parse`] accepts back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    /// Vault name or ID.
    pub vault: String,
    /// Item name or ID.
    pub item: String,
    /// Section name or ID, present when the reference has four segments.
    pub section: Option<String>,
    /// Field label or ID, or a file attachment's name.
    pub field: String,
    /// `?attribute=` / `?attr=` value, one of [`FIELD_ATTRIBUTES`] and [`FILE_ATTRIBUTES`]
    /// (which of the two applies is known only once resolved).
    pub attribute: Option<Attribute>,
    /// `?ssh-format=` value, lower-cased; only `openssh` exists.
    pub ssh_format: Option<String>,
}

impl SecretRef {
    /// The case-insensitive identity of this reference: the canonical form lower-cased, for
    /// example `op://dev/stripe/key?attribute=otp`. Two references that `op` resolves to the
    /// same value by name have equal keys, so this is the cache key.
    #[must_use]
    pub fn normalized(&self) -> String {
        // Names are ASCII once parsed, so ASCII lower-casing is the whole story.
        self.to_string().to_ascii_lowercase()
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}/", self.vault, self.item)?;
        if let Some(section) = &self.section {
            write!(f, "{section}/")?;
        }
        f.write_str(&self.field)?;
        let mut separator = '?';
        if let Some(attribute) = &self.attribute {
            write!(f, "{separator}attribute={attribute}")?;
            separator = '&';
        }
        if let Some(format) = &self.ssh_format {
            write!(f, "{separator}ssh-format={format}")?;
        }
        Ok(())
    }
}

impl FromStr for SecretRef {
    type Err = RefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// A reference as a request wrote it, parsed once where the request enters: the daemon's
/// policy, a grant's scope and the resolver all read this one parse (as the grammar's
/// `OpCommand` serves every reader of a passthrough's argv), instead of each parsing the text
/// again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    /// The text as requested (answers echo it).
    pub text: String,
    /// Its parse.
    pub parsed: SecretRef,
    /// [`SecretRef::normalized`]: the case-insensitive cache key.
    pub key: String,
}

impl Requested {
    /// Parse `text` (see [`parse`]).
    ///
    /// # Errors
    ///
    /// The [`RefError`] of [`parse`].
    pub fn parse(text: &str) -> Result<Requested, RefError> {
        let parsed = parse(text)?;
        Ok(Requested::from_parsed(text.to_string(), parsed))
    }

    /// A reference already parsed, with the text it came from.
    #[must_use]
    pub fn from_parsed(text: String, parsed: SecretRef) -> Requested {
        let key = parsed.normalized();
        Requested { text, parsed, key }
    }
}

/// Whether `s` is meant as a secret reference (starts with `op://`), valid or not.
///
/// `op run` uses this test to decide which environment values to resolve.
#[must_use]
pub fn looks_like_reference(s: &str) -> bool {
    s.starts_with(SCHEME)
}

/// Whether a segment is a unique ID rather than a name: 26 lower-case letters and digits.
#[must_use]
pub fn is_id(segment: &str) -> bool {
    segment.len() == 26
        && segment
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Whether `c` may appear in a vault, item, section or field name.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '.' | '-')
}

/// Parses a secret reference, exactly as given (no trimming, no variable expansion).
///
/// The segment count is checked before the characters, so a name containing `/` reports
/// [`RefError::TooManySegments`], as `op` does.
///
/// # Errors
///
/// A [`RefError`] for a missing `op://`, a wrong number of segments, an empty segment, a
/// character no name may use, or an unknown or repeated query parameter or value.
pub fn parse(s: &str) -> Result<SecretRef, RefError> {
    let rest = s.strip_prefix(SCHEME).ok_or(RefError::MissingScheme)?;
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };

    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() > 4 {
        return Err(RefError::TooManySegments);
    }
    if segments.len() < 3 {
        return Err(RefError::TooFewSegments);
    }
    if segments.iter().any(|segment| segment.is_empty()) {
        return Err(RefError::EmptySegment);
    }
    if let Some(bad) = path.chars().find(|&c| c != '/' && !is_name_char(c)) {
        return Err(RefError::InvalidCharacter(bad));
    }

    let (attribute, ssh_format) = match query {
        Some(query) => parse_query(query)?,
        None => (None, None),
    };
    let owned = |segment: &str| segment.to_owned();
    let (section, field) = match segments.as_slice() {
        [_, _, section, field] => (Some(owned(section)), owned(field)),
        [_, _, field] => (None, owned(field)),
        // Unreachable: the count is 3 or 4 here. Kept as an error rather than a panic.
        _ => return Err(RefError::TooFewSegments),
    };
    Ok(SecretRef {
        vault: owned(segments[0]),
        item: owned(segments[1]),
        section,
        field,
        attribute,
        ssh_format,
    })
}

/// Parses `attribute=x&ssh-format=y` (keys case-insensitive, values lower-cased).
fn parse_query(query: &str) -> Result<(Option<Attribute>, Option<String>), RefError> {
    let mut attribute = None;
    let mut ssh_format = None;
    for param in query.split('&') {
        let Some((key, value)) = param.split_once('=') else {
            return Err(RefError::InvalidQueryParameter(param.to_owned()));
        };
        let value = value.to_ascii_lowercase();
        match key.to_ascii_lowercase().as_str() {
            "attribute" | "attr" => {
                if attribute.is_some() {
                    return Err(RefError::DuplicateQueryParameter("attribute".to_owned()));
                }
                let known = value
                    .parse()
                    .map_err(|()| RefError::InvalidAttribute(value))?;
                attribute = Some(known);
            }
            "ssh-format" => {
                if ssh_format.is_some() {
                    return Err(RefError::DuplicateQueryParameter("ssh-format".to_owned()));
                }
                if !SSH_FORMATS.contains(&value.as_str()) {
                    return Err(RefError::InvalidSshFormat(value));
                }
                ssh_format = Some(value);
            }
            _ => return Err(RefError::InvalidQueryParameter(key.to_owned())),
        }
    }
    Ok((attribute, ssh_format))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_requested_reference_keeps_its_text_and_keys_case_insensitively() {
        let a = Requested::parse("op://Dev/Stripe/Key").expect("parses");
        let b = Requested::parse("op://dev/stripe/key").expect("parses");
        assert_eq!(a.text, "op://Dev/Stripe/Key");
        assert_eq!(a.parsed.vault, "Dev");
        assert_eq!(a.key, b.key);
        assert_eq!(a.key, "op://dev/stripe/key");
        assert!(Requested::parse("not a ref").is_err());
    }

    fn err(s: &str) -> String {
        match parse(s) {
            Ok(r) => panic!("{s} parsed as {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_plain_three_segment_reference_parses() {
        let r = parse("op://app-prod/db/password").unwrap();
        assert_eq!(r.vault, "app-prod");
        assert_eq!(r.item, "db");
        assert_eq!(r.section, None);
        assert_eq!(r.field, "password");
        assert_eq!(r.attribute, None);
        assert_eq!(r.ssh_format, None);
    }

    #[test]
    fn a_section_and_spaces_are_allowed() {
        let r =
            parse("op://Test Data/Example Login 1/Example Section/Example Field 1 Label").unwrap();
        assert_eq!(r.vault, "Test Data");
        assert_eq!(r.section.as_deref(), Some("Example Section"));
        assert_eq!(r.field, "Example Field 1 Label");
        assert_eq!(
            r.to_string(),
            "op://Test Data/Example Login 1/Example Section/Example Field 1 Label"
        );
    }

    #[test]
    fn an_apostrophe_is_reported_as_op_does() {
        assert_eq!(
            err("op://For Chang's Claude/item/credential"),
            "invalid character in secret reference: '''"
        );
    }

    #[test]
    fn a_parenthesis_is_reported_as_op_does() {
        assert_eq!(
            err("op://vault/item (old)/password"),
            "invalid character in secret reference: '('"
        );
    }

    #[test]
    fn unicode_dashes_and_non_ascii_must_be_given_by_id() {
        assert_eq!(
            err("op://v/a–b/f"),
            "invalid character in secret reference: '–'"
        );
        assert_eq!(
            err("op://v/café/f"),
            "invalid character in secret reference: 'é'"
        );
        assert_eq!(
            err("op://$VAULT/i/f"),
            "invalid character in secret reference: '$'"
        );
    }

    #[test]
    fn too_many_slashes_is_reported_as_op_does() {
        assert_eq!(
            err("op://v/i/s/f/extra"),
            "too many '/': secret references should match op://<vault>/<item>[/<section>]/<field>"
        );
        // A name containing '/' is read as an extra segment, as op does.
        assert_eq!(parse("op://v/i/a/b/c"), Err(RefError::TooManySegments));
    }

    #[test]
    fn too_few_segments_empty_segments_and_no_scheme_are_rejected() {
        let shape = "invalid secret reference: secret references should match op://<vault>/<item>[/<section>]/<field>";
        assert_eq!(err("op://v/i"), shape);
        assert_eq!(parse("op://v/i"), Err(RefError::TooFewSegments));
        assert_eq!(parse("op://v"), Err(RefError::TooFewSegments));
        assert_eq!(parse("op://"), Err(RefError::TooFewSegments));
        assert_eq!(parse("op://v//f"), Err(RefError::EmptySegment));
        assert_eq!(parse("op://v/i/f/"), Err(RefError::EmptySegment));
        assert_eq!(err("op://v//f"), shape);
        assert_eq!(parse("v/i/f"), Err(RefError::MissingScheme));
        assert_eq!(parse("OP://v/i/f"), Err(RefError::MissingScheme));
        assert_eq!(err("https://v/i/f"), shape);
    }

    #[test]
    fn references_are_case_insensitive_through_normalized() {
        let upper = parse("op://Dev/Stripe/Key").unwrap();
        let lower = parse("op://dev/stripe/key").unwrap();
        assert_ne!(upper, lower, "parsing keeps the case as written");
        assert_eq!(upper.normalized(), lower.normalized());
        assert_eq!(upper.normalized(), "op://dev/stripe/key");
        assert_eq!(upper.to_string(), "op://Dev/Stripe/Key");
    }

    #[test]
    fn ids_are_26_lowercase_letters_and_digits() {
        assert!(is_id("nnotgv5xwrhjbdj6bt3rugrijy"));
        assert!(!is_id("Nnotgv5xwrhjbdj6bt3rugrijy"));
        assert!(!is_id("nnotgv5xwrhjbdj6bt3rugrij"));
        assert!(!is_id("nnotgv5xwrhjbdj6bt3rugrijyy"));
        assert!(!is_id("nnotgv5xwrhjbdj6bt3rug-ijy"));
        let r = parse("op://nnotgv5xwrhjbdj6bt3rugrijy/db/password").unwrap();
        assert!(is_id(&r.vault));
        assert!(!is_id(&r.item));
    }

    #[test]
    fn attributes_are_lower_cased_and_validated() {
        let r = parse("op://v/2fa/one-time password?attribute=OTP").unwrap();
        assert_eq!(r.attribute, Some(Attribute::Otp));
        assert_eq!(r.to_string(), "op://v/2fa/one-time password?attribute=otp");

        for a in FIELD_ATTRIBUTES.iter().chain(FILE_ATTRIBUTES) {
            let r = parse(&format!("op://v/i/f?attr={a}")).unwrap();
            assert_eq!(r.attribute, Some(*a));
        }
        assert_eq!(
            err("op://v/i/f?attribute=colour"),
            "invalid attribute 'colour'"
        );
        assert_eq!(err("op://v/i/f?attribute="), "invalid attribute ''");
        assert_eq!(
            err("op://v/i/f?colour=red"),
            "invalid query parameter 'colour'"
        );
        assert_eq!(
            err("op://v/i/f?attribute"),
            "invalid query parameter 'attribute'"
        );
        assert_eq!(err("op://v/i/f?"), "invalid query parameter ''");
        assert_eq!(
            err("op://v/i/f?attr=type&attribute=value"),
            "duplicate query parameter 'attribute'"
        );
    }

    #[test]
    fn ssh_format_combines_with_attribute_in_canonical_order() {
        let r = parse("op://Private/ssh key/private key?ssh-format=OpenSSH&attr=value").unwrap();
        assert_eq!(r.ssh_format.as_deref(), Some("openssh"));
        assert_eq!(r.attribute, Some(Attribute::Value));
        assert_eq!(
            r.to_string(),
            "op://Private/ssh key/private key?attribute=value&ssh-format=openssh"
        );
        assert_eq!(
            r.normalized(),
            "op://private/ssh key/private key?attribute=value&ssh-format=openssh"
        );
        let only = parse("op://v/i/private key?ssh-format=openssh").unwrap();
        assert_eq!(only.to_string(), "op://v/i/private key?ssh-format=openssh");
        assert_eq!(err("op://v/i/f?ssh-format=pem"), "invalid ssh-format 'pem'");
    }

    #[test]
    fn looks_like_reference_only_checks_the_scheme() {
        assert!(looks_like_reference("op://v/i/f"));
        assert!(looks_like_reference("op://broken"));
        assert!(!looks_like_reference("postgres://x"));
        assert!(!looks_like_reference(" op://v/i/f"));
    }

    #[test]
    fn from_str_is_parse() {
        let r: SecretRef = "op://v/i/f".parse().unwrap();
        assert_eq!(r.field, "f");
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = parse(&s);
        }

        #[test]
        fn parse_never_panics_on_reference_like_input(s in "op://[a-zA-Z0-9 /?=&'()é._-]{0,40}") {
            let _ = parse(&s);
        }

        #[test]
        fn display_round_trips(
            vault in "[A-Za-z0-9 _.-]{1,12}",
            item in "[A-Za-z0-9 _.-]{1,12}",
            section in proptest::option::of("[A-Za-z0-9 _.-]{1,12}"),
            field in "[A-Za-z0-9 _.-]{1,12}",
            attribute in proptest::option::of(proptest::sample::select(FIELD_ATTRIBUTES)),
            ssh in any::<bool>(),
        ) {
            let original = SecretRef {
                vault, item, section, field,
                attribute,
                ssh_format: ssh.then(|| "openssh".to_owned()),
            };
            let reparsed = parse(&original.to_string()).unwrap();
            prop_assert_eq!(&reparsed, &original);
            let upper = parse(&original.to_string().to_ascii_uppercase().replacen("OP://", "op://", 1)).unwrap();
            prop_assert_eq!(upper.normalized(), original.normalized());
        }
    }
}

//! Variable expansion: `$VAR`, `${VAR}` and `${VAR:-default}`.
//!
//! Owns the variable grammar shared by `op inject` templates and `op run` env files
//! (docs/op-behaviour.md §3.1, §4.1): a name is letters, digits and `_`, not starting with a digit;
//! `${ NAME }` may pad the name with spaces; `${NAME:-default}` uses `default` when the variable
//! is unset or empty. An unset variable without a default expands to nothing. Anything that is
//! not a well-formed variable (a lone `$`, `$1`, `${bad name}`, an unclosed `${`) stays literal.
//!
//! The caller decides where values come from with a lookup function; templates look names up
//! case-insensitively ([`case_insensitive_lookup`]), env files exactly. Expanded values are
//! inserted as they are: they are never expanded again.

use std::collections::HashMap;

/// Whether `name` is a valid variable name: ASCII letters, digits and `_`, not starting with a
/// digit, not empty.
#[must_use]
pub fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_alphabetic() || first == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Expands every variable in `input` using `lookup`.
///
/// `lookup` returns `None` for an unset variable; `${NAME:-default}` then (or when the value is
/// empty) gives `default`, verbatim and unexpanded, and every other form gives the empty string.
#[must_use]
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        match expand_one(after, &lookup) {
            Some((value, used)) => {
                out.push_str(&value);
                rest = &after[used..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Builds a lookup over `env` in which names match regardless of case, as `op inject` does.
///
/// An exact match wins; otherwise the first entry (in `env` order) whose name matches
/// ignoring ASCII case.
pub fn case_insensitive_lookup<I, K, V>(env: I) -> impl Fn(&str) -> Option<String>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    let mut exact: HashMap<String, String> = HashMap::new();
    let mut folded: HashMap<String, String> = HashMap::new();
    for (name, value) in env {
        let (name, value) = (name.into(), value.into());
        folded
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| value.clone());
        exact.insert(name, value);
    }
    move |name: &str| {
        exact
            .get(name)
            .or_else(|| folded.get(&name.to_ascii_lowercase()))
            .cloned()
    }
}

/// A variable found right after a `$`.
struct Var<'a> {
    /// The name, without braces or padding.
    name: &'a str,
    /// The `:-` default, if any.
    default: Option<&'a str>,
    /// Bytes consumed after the `$`.
    len: usize,
}

/// Expands the variable that starts right after a `$` (`after` is the text following it).
///
/// Returns the value and the number of bytes of `after` it replaces, or `None` when `$` is not
/// followed by a well-formed variable and must stay literal.
pub(crate) fn expand_one(
    after: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<(String, usize)> {
    let var = find_var(after)?;
    let value = match (lookup(var.name), var.default) {
        (Some(value), Some(default)) if value.is_empty() => default.to_owned(),
        (Some(value), _) => value,
        (None, Some(default)) => default.to_owned(),
        (None, None) => String::new(),
    };
    Some((value, var.len))
}

/// Recognises `NAME…` or `{ NAME }` / `{NAME:-default}` at the start of `after`.
fn find_var(after: &str) -> Option<Var<'_>> {
    if let Some(braced) = after.strip_prefix('{') {
        let close = braced.find('}')?;
        let inner = &braced[..close];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name.trim(), Some(default)),
            None => (inner.trim(), None),
        };
        is_valid_name(name).then_some(Var {
            name,
            default,
            len: close + 2,
        })
    } else {
        let len = after
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'_'))
            .unwrap_or(after.len());
        let name = &after[..len];
        is_valid_name(name).then_some(Var {
            name,
            default: None,
            len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }

    #[test]
    fn all_three_forms_expand() {
        let lookup = env(&[("APP_ENV", "prod"), ("ITEM", "mysql")]);
        assert_eq!(
            expand("op://$APP_ENV/${ITEM}/password", &lookup),
            "op://prod/mysql/password"
        );
        assert_eq!(
            expand("op://${VAULT:-dev}/docker/password", &lookup),
            "op://dev/docker/password"
        );
        assert_eq!(
            expand("op://${APP_ENV:-dev}/docker/password", &lookup),
            "op://prod/docker/password"
        );
    }

    #[test]
    fn default_applies_to_empty_values_too() {
        let lookup = env(&[("EMPTY", "")]);
        assert_eq!(expand("${EMPTY:-fallback}", &lookup), "fallback");
        assert_eq!(expand("[${EMPTY}]", &lookup), "[]");
    }

    #[test]
    fn unset_without_default_is_empty() {
        assert_eq!(expand("a${NOPE}b$NOPE.c", env(&[])), "ab.c");
    }

    #[test]
    fn a_lone_dollar_and_malformed_variables_stay_literal() {
        let lookup = env(&[("X", "x")]);
        assert_eq!(expand("costs $5 or $", &lookup), "costs $5 or $");
        assert_eq!(expand("$$X", &lookup), "$x");
        assert_eq!(
            expand("${bad name} ${unclosed", &lookup),
            "${bad name} ${unclosed"
        );
        assert_eq!(expand("${} $-", &lookup), "${} $-");
    }

    #[test]
    fn braces_may_pad_the_name_and_end_a_name_early() {
        let lookup = env(&[("A", "1")]);
        assert_eq!(expand("${ A }b ${A}b $Ab", &lookup), "1b 1b ");
    }

    #[test]
    fn values_are_not_expanded_again() {
        let lookup = env(&[("A", "$B"), ("B", "no")]);
        assert_eq!(expand("$A", &lookup), "$B");
    }

    #[test]
    fn names_follow_the_documented_rule() {
        assert!(is_valid_name("APP_ENV"));
        assert!(is_valid_name("_x1"));
        assert!(!is_valid_name("1x"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("a-b"));
        assert!(!is_valid_name("é"));
    }

    #[test]
    fn template_variables_match_any_case_but_exact_wins() {
        let lookup = case_insensitive_lookup([("App_Env", "prod"), ("HOME", "/h"), ("home", "/x")]);
        assert_eq!(expand("$app_env ${APP_ENV}", &lookup), "prod prod");
        assert_eq!(lookup("home").as_deref(), Some("/x"));
        assert_eq!(lookup("Home").as_deref(), Some("/h"));
        assert_eq!(lookup("missing"), None);
    }

    proptest! {
        #[test]
        fn expand_never_panics_and_is_identity_without_dollars(s in ".*") {
            let out = expand(&s, |_: &str| Some("v".to_owned()));
            if !s.contains('$') {
                prop_assert_eq!(out, s);
            }
        }
    }
}

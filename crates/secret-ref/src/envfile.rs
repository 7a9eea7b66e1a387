//! The dotenv dialect of `op run --env-file`, and how env files merge with the shell
//! environment (docs/op-behaviour.md §4.2).
//!
//! Owns: `KEY=VALUE` lines with an optional `export `; blank lines and `#` comments; inline
//! ` #` comments after unquoted values; single quotes (verbatim, no expansion), double quotes
//! (`\` escapes and expansion) and quoted values spanning lines; `$VAR` / `${VAR}` /
//! `${VAR:-default}` expansion from earlier lines of the same file, then from the caller's
//! lookup. Values may hold secret references or template syntax; resolving them is the
//! caller's job. Errors name a 1-based line number and never quote a value, since a value
//! may already be a secret. All error wording here is ours (op's is not on record).

use std::collections::HashMap;

use crate::vars;

/// Why an env file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvFileError {
    /// A non-blank, non-comment line has no `=`.
    #[error("line {line}: expected KEY=VALUE")]
    MissingEquals {
        /// 1-based line number.
        line: usize,
    },
    /// The key is not a variable name (letters, digits, `_` and `.`, not starting with a digit).
    #[error("line {line}: invalid variable name '{key}'")]
    InvalidKey {
        /// 1-based line number.
        line: usize,
        /// The key as written.
        key: String,
    },
    /// A quoted value is never closed.
    #[error("line {line}: missing closing {quote} for the value")]
    UnterminatedQuote {
        /// 1-based line where the value opens.
        line: usize,
        /// `'` or `"`.
        quote: char,
    },
    /// Something other than a comment follows a closing quote.
    #[error("line {line}: unexpected text after the closing quote")]
    TrailingText {
        /// 1-based line of the closing quote.
        line: usize,
    },
}

/// Parses an env file into `(key, value)` pairs in order of first assignment; a key assigned
/// again keeps its first position and takes the later value.
///
/// `lookup` supplies variables not defined earlier in the file (normally the process
/// environment); earlier lines win over it, as the file wins over the shell.
///
/// # Errors
///
/// An [`EnvFileError`] naming the line of the first malformed entry: no `=`, a key that is not
/// a variable name, a quote never closed, or text after a closing quote.
pub fn parse(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, EnvFileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut pos = 0;
    let mut line = 1;

    while pos < text.len() {
        let (current, next) = split_line(text, pos);
        let start_line = line;
        let trimmed = current.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            pos = next;
            line += 1;
            continue;
        }

        let body = strip_export(trimmed);
        let Some((key, _)) = body.split_once('=') else {
            return Err(EnvFileError::MissingEquals { line });
        };
        let key = key.trim();
        if !is_valid_key(key) {
            return Err(EnvFileError::InvalidKey {
                line,
                key: key.to_owned(),
            });
        }
        // Byte offset in `text` just after the `=`.
        let after_equals = pos
            + (current.len() - current.trim_start().len())
            + (trimmed.len() - body.len())
            + body.find('=').map_or(0, |at| at + 1);
        let raw = &text[after_equals..];
        let value_at = after_equals + (raw.len() - raw.trim_start_matches([' ', '\t']).len());

        let lookup_here = |name: &str| {
            index
                .get(name)
                .map(|&at| entries[at].1.clone())
                .or_else(|| lookup(name))
        };
        let value = match text[value_at..].chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let open = value_at + 1;
                let close = find_closing(&text[open..], quote)
                    .map(|at| open + at)
                    .ok_or(EnvFileError::UnterminatedQuote {
                        line: start_line,
                        quote,
                    })?;
                line += text[pos..close].matches('\n').count();
                let (rest_of_line, after) = split_line(text, close + 1);
                let rest = rest_of_line.trim();
                if !(rest.is_empty() || rest.starts_with('#')) {
                    return Err(EnvFileError::TrailingText { line });
                }
                pos = after;
                let inner = &text[open..close];
                if quote == '"' {
                    unescape_double(inner, &lookup_here)
                } else {
                    inner.to_owned()
                }
            }
            _ => {
                // From right after `=`, so that `KEY= # note` sees the space before `#`.
                let (rest_of_line, after) = split_line(text, after_equals);
                pos = after;
                vars::expand(strip_inline_comment(rest_of_line).trim(), lookup_here)
            }
        };
        line += 1;

        match index.get(key) {
            Some(&at) => entries[at].1 = value,
            None => {
                index.insert(key.to_owned(), entries.len());
                entries.push((key.to_owned(), value));
            }
        }
    }
    Ok(entries)
}

/// Overlays env files on the shell environment: a file's value beats the shell's, a later
/// file beats an earlier one. Keys keep the position of their first appearance (shell order,
/// then new keys in file order).
#[must_use]
pub fn merge(
    shell_env: impl IntoIterator<Item = (String, String)>,
    files: &[Vec<(String, String)>],
) -> Vec<(String, String)> {
    let mut merged: Vec<(String, String)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let pairs = shell_env.into_iter().chain(files.iter().flatten().cloned());
    for (key, value) in pairs {
        match index.get(&key) {
            Some(&at) => merged[at].1 = value,
            None => {
                index.insert(key.clone(), merged.len());
                merged.push((key, value));
            }
        }
    }
    merged
}

/// The line starting at byte `pos` (without its `\n` or `\r\n`) and the byte where the next
/// line starts.
fn split_line(text: &str, pos: usize) -> (&str, usize) {
    let rest = &text[pos..];
    let (line, next) = match rest.find('\n') {
        Some(at) => (&rest[..at], pos + at + 1),
        None => (rest, text.len()),
    };
    (line.strip_suffix('\r').unwrap_or(line), next)
}

/// Drops a leading `export` keyword followed by whitespace.
fn strip_export(line: &str) -> &str {
    match line.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => line,
    }
}

/// Whether `key` is a usable variable name: letters, digits, `_` and `.`, not starting with a
/// digit.
fn is_valid_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_alphabetic() || first == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// Byte offset of the quote closing a value, skipping `\"` inside double quotes.
fn find_closing(text: &str, quote: char) -> Option<usize> {
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        if c == quote {
            return Some(at);
        }
        if c == '\\' && quote == '"' {
            chars.next();
        }
    }
    None
}

/// Cuts an unquoted value at a `#` that follows whitespace (`a#b` keeps its `#`).
fn strip_inline_comment(value: &str) -> &str {
    let mut previous_is_space = true;
    for (at, c) in value.char_indices() {
        if c == '#' && previous_is_space && at > 0 {
            return &value[..at];
        }
        previous_is_space = c == ' ' || c == '\t';
    }
    value
}

/// Applies `\` escapes and expands variables in a double-quoted value. `\$` is a literal
/// dollar; an unknown escape keeps its backslash.
fn unescape_double(inner: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        rest = match c {
            '\\' => match after.chars().next() {
                Some(escaped) => {
                    match escaped {
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        '"' | '\\' | '$' => out.push(escaped),
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                    &after[escaped.len_utf8()..]
                }
                None => {
                    out.push('\\');
                    after
                }
            },
            '$' => match vars::expand_one(after, lookup) {
                Some((value, used)) => {
                    out.push_str(&value);
                    &after[used..]
                }
                None => {
                    out.push('$');
                    after
                }
            },
            other => {
                out.push(other);
                after
            }
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plain_lines_comments_and_blank_lines() {
        let file = "# database\n\nDB_USER=app\n  DB_HOST = db.internal  \n\t# indented comment\nDB_PASSWORD=op://prod/db/password\n";
        assert_eq!(
            parse(file, no_env).unwrap(),
            pairs(&[
                ("DB_USER", "app"),
                ("DB_HOST", "db.internal"),
                ("DB_PASSWORD", "op://prod/db/password")
            ])
        );
    }

    #[test]
    fn export_prefix_is_optional() {
        assert_eq!(
            parse("export A=1\nexport\tB=2\nexporter=3\nexport=4", no_env).unwrap(),
            pairs(&[("A", "1"), ("B", "2"), ("exporter", "3"), ("export", "4")])
        );
    }

    #[test]
    fn inline_comments_end_unquoted_values_only_after_whitespace() {
        assert_eq!(
            parse(
                "A=value # note\nB=pass#word\nC= # empty\nD=\"keep # this\" # not this\nE=#x",
                no_env
            )
            .unwrap(),
            pairs(&[
                ("A", "value"),
                ("B", "pass#word"),
                ("C", ""),
                ("D", "keep # this"),
                ("E", "#x")
            ])
        );
    }

    #[test]
    fn quotes_are_removed_and_keep_inner_whitespace() {
        assert_eq!(
            parse(
                "A=\"  padded  \"\nB='  single  '\nC=  \"x\"  \nD=\"\"",
                no_env
            )
            .unwrap(),
            pairs(&[
                ("A", "  padded  "),
                ("B", "  single  "),
                ("C", "x"),
                ("D", "")
            ])
        );
    }

    #[test]
    fn quoted_values_may_span_lines() {
        let file =
            "KEY=\"-----BEGIN KEY-----\nabc\n-----END KEY-----\"\nNEXT='one\ntwo'\nAFTER=1\nBAD";
        let err = parse(file, no_env).unwrap_err();
        assert_eq!(err, EnvFileError::MissingEquals { line: 7 });
        let ok = parse(&file[..file.len() - 4], no_env).unwrap();
        assert_eq!(
            ok,
            pairs(&[
                ("KEY", "-----BEGIN KEY-----\nabc\n-----END KEY-----"),
                ("NEXT", "one\ntwo"),
                ("AFTER", "1")
            ])
        );
    }

    #[test]
    fn double_quotes_apply_backslash_escapes() {
        assert_eq!(
            parse(r#"A="line1\nline2\t\"q\" \\ \$HOME \x""#, no_env).unwrap(),
            pairs(&[("A", "line1\nline2\t\"q\" \\ $HOME \\x")])
        );
        // No escapes in single quotes or unquoted values.
        assert_eq!(
            parse("A='a\\nb'\nB=a\\nb", no_env).unwrap(),
            pairs(&[("A", "a\\nb"), ("B", "a\\nb")])
        );
    }

    #[test]
    fn variables_expand_from_earlier_lines_and_the_environment() {
        let env = |name: &str| match name {
            "APP_ENV" => Some("prod".to_owned()),
            "VAULT" => Some("shell-vault".to_owned()),
            _ => None,
        };
        let file = "VAULT=file-vault\nA=op://$VAULT/db/password\nB=\"op://${APP_ENV}/x/y\"\nC='op://$VAULT/literal'\nD=${MISSING:-dflt}\nE=$UNSET.";
        assert_eq!(
            parse(file, env).unwrap(),
            pairs(&[
                ("VAULT", "file-vault"),
                ("A", "op://file-vault/db/password"),
                ("B", "op://prod/x/y"),
                ("C", "op://$VAULT/literal"),
                ("D", "dflt"),
                ("E", ".")
            ])
        );
    }

    #[test]
    fn defaults_in_double_quotes_may_be_non_ascii() {
        assert_eq!(
            parse("A=\"${X:-café} ok\"", no_env).unwrap(),
            pairs(&[("A", "café ok")])
        );
    }

    #[test]
    fn a_later_assignment_overrides_in_place() {
        assert_eq!(
            parse("A=1\nB=2\nA=$A$B", no_env).unwrap(),
            pairs(&[("A", "12"), ("B", "2")])
        );
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse("A=1\n\n# c\nJUST_A_WORD\n", no_env)
                .unwrap_err()
                .to_string(),
            "line 4: expected KEY=VALUE"
        );
        assert_eq!(
            parse("A=1\n1BAD=2", no_env).unwrap_err().to_string(),
            "line 2: invalid variable name '1BAD'"
        );
        assert_eq!(
            parse("A=1\nB=\"open\nstill open", no_env)
                .unwrap_err()
                .to_string(),
            "line 2: missing closing \" for the value"
        );
        assert_eq!(
            parse("B='open", no_env).unwrap_err(),
            EnvFileError::UnterminatedQuote {
                line: 1,
                quote: '\''
            }
        );
        assert_eq!(
            parse("A=\"x\ny\" trailing", no_env)
                .unwrap_err()
                .to_string(),
            "line 2: unexpected text after the closing quote"
        );
        assert_eq!(
            parse("=value", no_env).unwrap_err().to_string(),
            "line 1: invalid variable name ''"
        );
    }

    #[test]
    fn crlf_line_endings_and_a_byte_order_mark_are_accepted() {
        assert_eq!(
            parse("\u{feff}A=1\r\nB=\"two\"\r\n", no_env).unwrap(),
            pairs(&[("A", "1"), ("B", "two")])
        );
    }

    #[test]
    fn files_beat_the_shell_and_the_last_file_wins() {
        let shell = pairs(&[("PATH", "/bin"), ("DB", "shell"), ("TOKEN", "shell")]);
        let first = pairs(&[("DB", "first"), ("NEW", "first"), ("TOKEN", "first")]);
        let second = pairs(&[("TOKEN", "second"), ("LAST", "second")]);
        assert_eq!(
            merge(shell, &[first, second]),
            pairs(&[
                ("PATH", "/bin"),
                ("DB", "first"),
                ("TOKEN", "second"),
                ("NEW", "first"),
                ("LAST", "second")
            ])
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = parse(&s, no_env);
        }

        #[test]
        fn parse_never_panics_on_env_like_input(s in "([A-Z_ =#'\"\\\\$\\{\\}:\\-é\n\r]|export )*") {
            let _ = parse(&s, |name: &str| Some(format!("<{name}>")));
        }
    }
}

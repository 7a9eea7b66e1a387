//! The `op inject` template syntax (docs/op-behaviour.md §4.1).
//!
//! Owns splitting a template into literal text and secret references, and putting resolved
//! values back. Three constructs are recognised:
//!
//! - **enclosed** `{{ op://… }}`: padding spaces or tabs optional; the only way to write a
//!   reference whose names contain spaces;
//! - **unenclosed** `op://…`: see [`parse`] for where it starts and ends;
//! - **escaped** `{{ "…" }}`: the quoted text is output literally, with `\"` and `\\` unescaped,
//!   so `{{ "{{ op://prod/db/password }}" }}` prints `{{ op://prod/db/password }}`.
//!
//! A `{{` followed by anything else is ordinary text, so Helm or Jinja templates pass through.
//!
//! Variables are expanded over the whole template *before* parsing ([`expand_vars`]), because
//! `op` substitutes them before it resolves anything; so `{{ op://$ENV/db/password }}` works and
//! a variable whose value contains `op://…` becomes a reference. Parsing never resolves and
//! never sees a secret value; [`render`] is the only function that handles values, and its
//! errors name the reference, never a value.

use crate::vars;

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Literal text, escapes already applied.
    Text(String),
    /// A secret reference as written (trimmed of padding), not yet validated: resolving it
    /// validates it with [`crate::reference::parse`].
    Ref(String),
}

/// Why a template cannot be parsed or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template is malformed at `line:column` (both 1-based, column counted in
    /// characters). The prefix follows a recorded `op` message
    /// (`parsing error at 1:24: invalid character: (`); the messages after it other than
    /// `invalid character: <c>` are unconfirmed wording.
    #[error("parsing error at {line}:{column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// [`render`] was given no value for this reference. Wording is ours.
    #[error("no value for secret reference '{0}'")]
    Unresolved(String),
}

/// Expands `$VAR`, `${VAR}` and `${VAR:-default}` across the whole template; apply it before
/// [`parse`]. Build `lookup` with [`vars::case_insensitive_lookup`], since template variable
/// names are case-insensitive.
#[must_use]
pub fn expand_vars(template: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    vars::expand(template, lookup)
}

/// Whether `c` may continue an unenclosed reference.
///
/// op's docs list alphanumerics, `-`, `?`, `_` and `.`, which cannot be the whole truth: without
/// `/` no reference could get past its vault, and `?` is only there for the query, which needs
/// `=` (and `&` to combine `attribute` with `ssh-format`). So we add `/`, `=` and `&`. Anything
/// else ends the reference, notably space, quotes, `:`, `,`, `;`, `}` and newline. A `&` right
/// after a reference inside a URL query is therefore swallowed: enclose such references.
/// "Alphanumeric" is taken in the Unicode sense, so `op://v/café/f` stays whole and fails
/// validation loudly instead of being cut at `é`.
fn continues_unenclosed(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '?' | '_' | '.' | '/' | '=' | '&')
}

/// Whether a character just before `op://` stops it from starting an unenclosed reference.
fn blocks_unenclosed(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '+' | '\\' | '.')
}

/// Whether `c` may appear inside an enclosed reference after `op://`: name characters
/// (including space), `/` and the query's `?`, `=`, `&`.
fn allowed_enclosed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '.' | '-' | '/' | '?' | '=' | '&')
}

/// Padding allowed between the braces and what they enclose.
fn is_padding(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits a template (variables already expanded) into text and references.
///
/// # Errors
///
/// [`TemplateError::Syntax`] for a `{{ op://…` never closed on its line, a character inside
/// it that no reference may contain, or an escape `{{ "…` whose string or braces never close.
///
/// An unenclosed reference starts at `op://` unless the character before it is alphanumeric
/// or one of `- + \ .` (so `xop://…` and `\op://…` are text), and ends before the first
/// character outside alphanumerics and `- ? _ . / = &` (see the note on the end set in the
/// source). A trailing `.` is part of the reference, as op's rule says: end a sentence with a
/// space or enclose the reference. Adjacent text is merged into one [`Segment::Text`].
pub fn parse(template: &str) -> Result<Vec<Segment>, TemplateError> {
    let mut segments = Vec::new();
    let mut text = String::new();
    let mut text_start = 0;
    let mut i = 0;
    while i < template.len() {
        let rest = &template[i..];
        if rest.starts_with("{{") {
            if let Some((tag, end)) = enclosed(template, i)? {
                text.push_str(&template[text_start..i]);
                match tag {
                    Tag::Ref(reference) => {
                        if !text.is_empty() {
                            segments.push(Segment::Text(std::mem::take(&mut text)));
                        }
                        segments.push(Segment::Ref(reference));
                    }
                    Tag::Literal(literal) => text.push_str(&literal),
                }
                i = end;
                text_start = end;
                continue;
            }
        } else if rest.starts_with("op://")
            && !template[..i]
                .chars()
                .next_back()
                .is_some_and(blocks_unenclosed)
        {
            let body = &rest["op://".len()..];
            let len = body
                .char_indices()
                .find(|&(_, c)| !continues_unenclosed(c))
                .map_or(body.len(), |(at, _)| at);
            let end = i + "op://".len() + len;
            text.push_str(&template[text_start..i]);
            if !text.is_empty() {
                segments.push(Segment::Text(std::mem::take(&mut text)));
            }
            segments.push(Segment::Ref(template[i..end].to_owned()));
            i = end;
            text_start = end;
            continue;
        }
        // Step over one whole character so that `i` stays on a char boundary.
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    text.push_str(&template[text_start..]);
    if !text.is_empty() {
        segments.push(Segment::Text(text));
    }
    Ok(segments)
}

/// What a `{{ … }}` turned out to hold.
enum Tag {
    /// An enclosed reference, trimmed.
    Ref(String),
    /// An escaped literal, unescaped.
    Literal(String),
}

/// Parses the tag opening at byte `open` (which starts with `{{`). Returns the tag and the byte
/// just after its `}}`, or `None` when the braces do not open a tag and are plain text.
fn enclosed(template: &str, open: usize) -> Result<Option<(Tag, usize)>, TemplateError> {
    let inner_start = skip_padding(template, open + 2);
    let inner = &template[inner_start..];
    if inner.starts_with("op://") {
        let mut chars = inner.char_indices().skip("op://".len());
        loop {
            // A tag never spans lines: a newline means the `}}` was forgotten.
            let Some((at, c)) = chars.next().filter(|&(_, c)| c != '\n') else {
                return Err(syntax(template, open, "unclosed '{{': expected '}}'"));
            };
            if inner[at..].starts_with("}}") {
                let reference = inner[..at].trim_end_matches(is_padding).to_owned();
                return Ok(Some((Tag::Ref(reference), inner_start + at + 2)));
            }
            if !(allowed_enclosed(c) || is_padding(c)) {
                let message = format!("invalid character: {c}");
                return Err(syntax(template, inner_start + at, &message));
            }
        }
    }
    if let Some(quoted) = inner.strip_prefix('"') {
        let mut literal = String::new();
        let mut chars = quoted.char_indices();
        let close = loop {
            match chars.next() {
                None => return Err(syntax(template, inner_start, "unterminated string")),
                Some((at, '"')) => break at,
                Some((_, '\\')) => match chars.next() {
                    Some((_, c @ ('"' | '\\'))) => literal.push(c),
                    Some((_, c)) => {
                        literal.push('\\');
                        literal.push(c);
                    }
                    None => return Err(syntax(template, inner_start, "unterminated string")),
                },
                Some((_, c)) => literal.push(c),
            }
        };
        // Byte just after the closing quote.
        let after_quote = inner_start + 1 + close + 1;
        let closing = skip_padding(template, after_quote);
        if !template[closing..].starts_with("}}") {
            return Err(syntax(
                template,
                closing,
                "expected '}}' after the quoted text",
            ));
        }
        return Ok(Some((Tag::Literal(literal), closing + 2)));
    }
    Ok(None)
}

/// The byte offset of the first non-padding character at or after `from`.
fn skip_padding(template: &str, from: usize) -> usize {
    template[from..]
        .find(|c| !is_padding(c))
        .map_or(template.len(), |at| from + at)
}

/// A syntax error located at byte `offset`.
fn syntax(template: &str, offset: usize, message: &str) -> TemplateError {
    let before = &template[..offset];
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    TemplateError::Syntax {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
        message: message.to_owned(),
    }
}

/// The distinct references of a parsed template, in order of first appearance (compared as
/// written; normalise them with [`crate::SecretRef::normalized`] to merge case variants).
#[must_use]
pub fn references(segments: &[Segment]) -> Vec<&str> {
    let mut seen: Vec<&str> = Vec::new();
    for segment in segments {
        if let Segment::Ref(reference) = segment
            && !seen.contains(&reference.as_str())
        {
            seen.push(reference);
        }
    }
    seen
}

/// Puts the template back together with each reference replaced by `lookup(reference)`.
///
/// Fails, naming the first reference `lookup` has no value for, without producing any partial
/// output (so `op inject -o` never writes half a file).
///
/// # Errors
///
/// [`TemplateError::Unresolved`] naming the first reference without a value. The result holds secret values: keep
/// it in a zeroizing container if it outlives the write.
pub fn render<'v>(
    segments: &[Segment],
    lookup: impl Fn(&str) -> Option<&'v str>,
) -> Result<String, TemplateError> {
    let mut values = Vec::with_capacity(segments.len());
    for segment in segments {
        let piece = match segment {
            Segment::Text(text) => text.as_str(),
            Segment::Ref(reference) => {
                lookup(reference).ok_or_else(|| TemplateError::Unresolved(reference.clone()))?
            }
        };
        values.push(piece);
    }
    // `concat` sizes the buffer up front, so a buffer holding secrets is never reallocated
    // (which would leave a stray copy behind).
    Ok(values.concat())
}

#[cfg(test)]
mod tests;

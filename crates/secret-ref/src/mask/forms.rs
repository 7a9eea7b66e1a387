//! The encoded forms of a secret value that masking hides besides the value itself.
//!
//! Owns the list of byte strings a program is likely to print when it prints a value in
//! another form: base64 (standard and URL-safe alphabets, padded and unpadded, and the part of
//! the value's encoding that does not depend on its neighbours when the value sits inside a
//! longer base64 stream, at each of the three byte alignments), hex (lower and upper case),
//! percent-encoding (as the common encoders write it) and JSON string escaping (as the common
//! serializers write it).
//!
//! Pure functions, no I/O. Every form is built in a [`Zeroizing`] buffer whose capacity is
//! reserved up front, so no unwiped copy of a value or of its encodings is left behind.

use zeroize::Zeroizing;

/// The standard base64 alphabet (RFC 4648 §4).
pub(super) const BASE64_STANDARD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// The URL- and filename-safe base64 alphabet (RFC 4648 §5).
pub(super) const BASE64_URL: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Whether a byte may appear in a base64 (either alphabet, with padding) or hex form: the
/// forms that masking also finds when wrapped across lines.
pub(super) fn is_wrappable_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=')
}

/// Every encoded form of `value` that masking also hides, distinct, none equal to `value`
/// itself, none empty. The order is unspecified.
#[must_use]
pub fn encoded_forms(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut forms: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let mut add = |form: Zeroizing<Vec<u8>>| {
        if !form.is_empty()
            && form.as_slice() != value
            && !forms
                .iter()
                .any(|known| known.as_slice() == form.as_slice())
        {
            forms.push(form);
        }
    };
    for alphabet in [BASE64_STANDARD, BASE64_URL] {
        let padded = base64(value, alphabet);
        let unpadded_len = padded
            .iter()
            .position(|&b| b == b'=')
            .unwrap_or(padded.len());
        add(Zeroizing::new(padded[..unpadded_len].to_vec()));
        add(padded);
        for offset in 0..3 {
            add(base64_embedded(value, offset, alphabet));
        }
    }
    add(hex(value, b"0123456789abcdef"));
    add(hex(value, b"0123456789ABCDEF"));
    for style in PercentStyle::ALL {
        add(percent(value, style));
    }
    // Every byte percent-encoded (some encoders and obfuscators do), in both cases.
    add(percent_every_byte(value, b"0123456789ABCDEF"));
    add(percent_every_byte(value, b"0123456789abcdef"));
    for style in JsonStyle::ALL {
        if let Some(escaped) = json(value, style) {
            add(escaped);
        }
    }
    // Every character as a JSON `\uXXXX` escape, in both cases.
    for digits in [b"0123456789abcdef", b"0123456789ABCDEF"] {
        if let Some(escaped) = json_every_char(value, digits) {
            add(escaped);
        }
    }
    forms
}

/// Base64 of `value` with `=` padding.
pub(super) fn base64(value: &[u8], alphabet: &[u8; 64]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len().div_ceil(3) * 4));
    for group in value.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let sextets = [
            b[0] >> 2,
            ((b[0] & 0x03) << 4) | (b[1] >> 4),
            ((b[1] & 0x0f) << 2) | (b[2] >> 6),
            b[2] & 0x3f,
        ];
        // A group of n bytes fills n + 1 characters; the rest are padding.
        for (i, sextet) in sextets.iter().enumerate() {
            out.push(if i <= group.len() {
                alphabet[usize::from(*sextet)]
            } else {
                b'='
            });
        }
    }
    out
}

/// The characters of a base64 stream that are fixed by `value` alone when `value` starts
/// `offset` bytes (0, 1 or 2) past a 3-byte group boundary of the stream: the characters whose
/// six bits all come from `value`. The characters at either end that mix in neighbouring bytes
/// are left out, so this matches wherever the value sits at that alignment.
pub(super) fn base64_embedded(
    value: &[u8],
    offset: usize,
    alphabet: &[u8; 64],
) -> Zeroizing<Vec<u8>> {
    let mut padded = Zeroizing::new(Vec::with_capacity(offset + value.len() + 2));
    padded.resize(offset, 0);
    padded.extend_from_slice(value);
    let encoded = base64(&padded, alphabet);
    // Character i carries bits [6i, 6i + 6) of the stream; the value owns [8 offset, 8 end).
    let (first_bit, end_bit) = (8 * offset, 8 * (offset + value.len()));
    let first = first_bit.div_ceil(6);
    let end = end_bit / 6;
    if end <= first {
        return Zeroizing::new(Vec::new());
    }
    Zeroizing::new(encoded[first..end].to_vec())
}

/// `value` as hex digits from `digits`.
fn hex(value: &[u8], digits: &[u8; 16]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 2));
    for byte in value {
        out.push(digits[usize::from(byte >> 4)]);
        out.push(digits[usize::from(byte & 0x0f)]);
    }
    out
}

/// How a percent-encoder chooses what to leave alone.
#[derive(Debug, Clone, Copy)]
enum PercentStyle {
    /// RFC 3986 unreserved characters kept, upper-case hex (Python `quote(safe="")`, Go
    /// `url.PathEscape`, curl).
    Unreserved,
    /// The same with lower-case hex.
    UnreservedLower,
    /// Form encoding: a space becomes `+` (Go `url.QueryEscape`, Python `quote_plus`).
    Form,
    /// JavaScript `encodeURIComponent`, which also keeps `!*'()`.
    Component,
    /// Python's `quote` with its default `safe="/"`.
    KeepSlash,
}

impl PercentStyle {
    const ALL: [PercentStyle; 5] = [
        PercentStyle::Unreserved,
        PercentStyle::UnreservedLower,
        PercentStyle::Form,
        PercentStyle::Component,
        PercentStyle::KeepSlash,
    ];

    fn keeps(self, byte: u8) -> bool {
        let unreserved = byte.is_ascii_alphanumeric() || b"-._~".contains(&byte);
        match self {
            PercentStyle::Unreserved | PercentStyle::UnreservedLower | PercentStyle::Form => {
                unreserved
            }
            PercentStyle::Component => unreserved || b"!*'()".contains(&byte),
            PercentStyle::KeepSlash => unreserved || byte == b'/',
        }
    }
}

/// `value` percent-encoded in `style`.
fn percent(value: &[u8], style: PercentStyle) -> Zeroizing<Vec<u8>> {
    let digits = match style {
        PercentStyle::UnreservedLower => b"0123456789abcdef",
        _ => b"0123456789ABCDEF",
    };
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 3));
    for &byte in value {
        if style.keeps(byte) {
            out.push(byte);
        } else if byte == b' ' && matches!(style, PercentStyle::Form) {
            out.push(b'+');
        } else {
            out.extend_from_slice(&[
                b'%',
                digits[usize::from(byte >> 4)],
                digits[usize::from(byte & 0x0f)],
            ]);
        }
    }
    out
}

/// `value` with every byte as `%XX`.
fn percent_every_byte(value: &[u8], digits: &[u8; 16]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 3));
    for &byte in value {
        out.extend_from_slice(&[
            b'%',
            digits[usize::from(byte >> 4)],
            digits[usize::from(byte & 0x0f)],
        ]);
    }
    out
}

/// `value` (UTF-8) with every UTF-16 unit as a JSON `\uXXXX` escape.
fn json_every_char(value: &[u8], digits: &[u8; 16]) -> Option<Zeroizing<Vec<u8>>> {
    let text = std::str::from_utf8(value).ok()?;
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 12));
    let mut units = [0u16; 2];
    for c in text.chars() {
        for u in c.encode_utf16(&mut units) {
            out.extend_from_slice(b"\\u");
            for shift in [12, 8, 4, 0] {
                out.push(digits[usize::from((*u >> shift) & 0x0f)]);
            }
        }
    }
    Some(out)
}

/// How a JSON serializer escapes a string.
#[derive(Debug, Clone, Copy)]
enum JsonStyle {
    /// Only what JSON requires: `"`, `\` and control characters (serde_json,
    /// `JSON.stringify`).
    Minimal,
    /// Everything outside ASCII as `\uXXXX` too (Python's `json.dumps`).
    Ascii,
    /// `<`, `>` and `&` as `\u003c` and friends, for embedding in HTML (Go's `encoding/json`).
    HtmlSafe,
    /// `/` as `\/` and non-ASCII as `\uXXXX` (PHP's `json_encode`).
    Slash,
}

impl JsonStyle {
    const ALL: [JsonStyle; 4] = [
        JsonStyle::Minimal,
        JsonStyle::Ascii,
        JsonStyle::HtmlSafe,
        JsonStyle::Slash,
    ];
}

/// The body of a JSON string holding `value` (without the quotes), or `None` when `value` is
/// not UTF-8 (JSON strings hold text).
fn json(value: &[u8], style: JsonStyle) -> Option<Zeroizing<Vec<u8>>> {
    let text = std::str::from_utf8(value).ok()?;
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 6));
    let unit = |out: &mut Zeroizing<Vec<u8>>, u: u16| {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(DIGITS[usize::from((u >> shift) & 0x0f)]);
        }
    };
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '/' if matches!(style, JsonStyle::Slash) => out.extend_from_slice(b"\\/"),
            '<' | '>' | '&' if matches!(style, JsonStyle::HtmlSafe) => unit(&mut out, c as u16),
            c if u32::from(c) < 0x20 => unit(&mut out, c as u16),
            c if !c.is_ascii() && matches!(style, JsonStyle::Ascii | JsonStyle::Slash) => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    unit(&mut out, *u);
                }
            }
            c => {
                let mut bytes = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut bytes).as_bytes());
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(forms: &[Zeroizing<Vec<u8>>], form: &str) -> bool {
        forms.iter().any(|f| f.as_slice() == form.as_bytes())
    }

    #[test]
    fn base64_matches_rfc_4648_test_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(
                base64(plain.as_bytes(), BASE64_STANDARD).as_slice(),
                encoded.as_bytes()
            );
        }
        assert_eq!(base64(&[0xfb, 0xff], BASE64_STANDARD).as_slice(), b"+/8=");
        assert_eq!(base64(&[0xfb, 0xff], BASE64_URL).as_slice(), b"-_8=");
    }

    #[test]
    fn an_embedded_value_keeps_only_the_characters_it_fixes() {
        // "xfoobar": "foobar" one byte past a boundary encodes as "eGZvb2Jhcg=="; the
        // characters owned by "foobar" alone drop the mixed "G" and "g".
        let whole = base64(b"xfoobar", BASE64_STANDARD);
        let embedded = base64_embedded(b"foobar", 1, BASE64_STANDARD);
        assert_eq!(embedded.as_slice(), b"Zvb2Jhc");
        assert!(whole.windows(7).any(|w| w == embedded.as_slice()));
        assert_eq!(
            base64_embedded(b"foobar", 0, BASE64_STANDARD).as_slice(),
            b"Zm9vYmFy"
        );
        assert_eq!(
            base64_embedded(b"foobar", 2, BASE64_STANDARD).as_slice(),
            b"mb29iYX"
        );
        assert!(
            base64(b"xyfoobarz", BASE64_STANDARD)
                .windows(7)
                .any(|w| w == b"mb29iYX")
        );
    }

    #[test]
    fn every_listed_encoding_is_produced() {
        let forms = encoded_forms("p@ss/wörd \"x\"<&>".as_bytes());
        assert!(has(&forms, "cEBzcy93w7ZyZCAieCI8Jj4="));
        assert!(has(&forms, "cEBzcy93w7ZyZCAieCI8Jj4"));
        assert!(has(&forms, "cEBzcy93w7ZyZCAieCI8Jj4="));
        assert!(has(&forms, "704073732f77c3b67264202278223c263e"));
        assert!(has(&forms, "704073732F77C3B67264202278223C263E"));
        assert!(has(&forms, "p%40ss%2Fw%C3%B6rd%20%22x%22%3C%26%3E"));
        assert!(has(&forms, "p%40ss%2fw%c3%b6rd%20%22x%22%3c%26%3e"));
        assert!(has(&forms, "p%40ss%2Fw%C3%B6rd+%22x%22%3C%26%3E"));
        assert!(has(&forms, "p%40ss/w%C3%B6rd%20%22x%22%3C%26%3E"));
        assert!(has(&forms, "p@ss/wörd \\\"x\\\"<&>"));
        assert!(has(&forms, "p@ss/w\\u00f6rd \\\"x\\\"<&>"));
        assert!(has(&forms, "p@ss/wörd \\\"x\\\"\\u003c\\u0026\\u003e"));
        assert!(has(&forms, "p@ss\\/w\\u00f6rd \\\"x\\\"<&>"));
    }

    #[test]
    fn forms_are_distinct_and_never_the_value_itself() {
        let forms = encoded_forms(b"abcdefgh");
        assert!(
            !has(&forms, "abcdefgh"),
            "percent and JSON forms equal the value"
        );
        for (i, a) in forms.iter().enumerate() {
            assert!(forms[i + 1..].iter().all(|b| a.as_slice() != b.as_slice()));
            assert!(!a.is_empty());
        }
    }

    #[test]
    fn json_escapes_control_characters_and_astral_planes() {
        let minimal = json("a\u{1}\n😀".as_bytes(), JsonStyle::Minimal).expect("utf-8");
        assert_eq!(minimal.as_slice(), "a\\u0001\\n😀".as_bytes());
        let ascii = json("😀".as_bytes(), JsonStyle::Ascii).expect("utf-8");
        assert_eq!(ascii.as_slice(), b"\\ud83d\\ude00");
        assert!(json(&[0xff, 0xfe], JsonStyle::Minimal).is_none());
    }
}

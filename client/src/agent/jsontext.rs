//! Editing one member of a JSON object in place, in the file's own text: the agent configs
//! (`.mcp.json`, `~/.claude.json`, `.cursor/mcp.json`) are the person's files, so an install
//! adds our member where it belongs without re-serialising anything else (key order,
//! indentation and spacing stay theirs), and an uninstall removes exactly the bytes an install
//! added, so the file is again byte for byte what it was. The text must already be valid JSON
//! (the caller parses it first); this module only finds spans in it.

/// One `"key": value` member of an object, as byte offsets into the text.
#[derive(Debug, Clone)]
pub struct Member {
    /// The key, unescaped only as far as needed to compare plain names.
    pub key: String,
    /// Where the key's opening quote is.
    pub start: usize,
    /// Where the value starts.
    pub value_start: usize,
    /// One past the value's last byte.
    pub end: usize,
}

/// An object's members and where its braces are.
#[derive(Debug, Clone)]
pub struct Object {
    /// The `{`.
    pub open: usize,
    /// The `}`.
    pub close: usize,
    /// Its members, in order.
    pub members: Vec<Member>,
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// One past the end of the string starting at `i` (a `"`).
fn string_end(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// One past the end of the value starting at `i`.
fn value_end(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => string_end(b, i),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            b.len()
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']') && !b[j].is_ascii_whitespace()
            {
                j += 1;
            }
            j
        }
    }
}

/// The object whose `{` is at or after `at` (after whitespace), or `None` if none is there.
pub fn object_at(text: &str, at: usize) -> Option<Object> {
    let b = text.as_bytes();
    let open = skip_ws(b, at);
    if b.get(open) != Some(&b'{') {
        return None;
    }
    let mut members = Vec::new();
    let mut i = skip_ws(b, open + 1);
    loop {
        match b.get(i)? {
            b'}' => {
                return Some(Object {
                    open,
                    close: i,
                    members,
                });
            }
            b',' => i = skip_ws(b, i + 1),
            b'"' => {
                let key_end = string_end(b, i);
                let key: String = serde_json::from_str(text.get(i..key_end)?).ok()?;
                let colon = skip_ws(b, key_end);
                if b.get(colon) != Some(&b':') {
                    return None;
                }
                let value_start = skip_ws(b, colon + 1);
                let end = value_end(b, value_start);
                members.push(Member {
                    key,
                    start: i,
                    value_start,
                    end,
                });
                i = skip_ws(b, end);
            }
            _ => return None,
        }
    }
}

/// The file's indentation unit: the leading whitespace of its first indented line, else two
/// spaces.
pub fn indent_unit(text: &str) -> String {
    text.lines()
        .skip(1)
        .map(|l| &l[..l.len() - l.trim_start().len()])
        .find(|w| !w.is_empty())
        .unwrap_or("  ")
        .to_string()
}

/// `value` rendered pretty with `unit` indentation, its lines after the first indented by
/// `depth` units, to sit as a member at that depth.
pub fn render(value: &serde_json::Value, unit: &str, depth: usize) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(unit.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    if value.serialize(&mut ser).is_err() {
        return value.to_string();
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let pad = unit.repeat(depth);
    text.lines()
        .enumerate()
        .map(|(n, l)| {
            if n == 0 {
                l.to_string()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Insert `"key": value` as the last member of `obj` at nesting `depth` (the object's own
/// members sit at `depth` units).
pub fn insert_last(
    text: &str,
    obj: &Object,
    key: &str,
    value: &str,
    unit: &str,
    depth: usize,
) -> String {
    let pad = unit.repeat(depth);
    let key = serde_json::Value::String(key.to_string()).to_string();
    match obj.members.last() {
        Some(last) => format!(
            "{},\n{pad}{key}: {value}{}",
            &text[..last.end],
            &text[last.end..]
        ),
        None => format!(
            "{}{{\n{pad}{key}: {value}\n{}}}{}",
            &text[..obj.open],
            unit.repeat(depth.saturating_sub(1)),
            &text[obj.close + 1..]
        ),
    }
}

/// Remove member `at` of `obj`, with the separator an [`insert_last`] would have added: from
/// the previous member's end when there is one, else up to the next member's start. The only
/// member of an object leaves `{}`.
pub fn remove(text: &str, obj: &Object, at: usize) -> String {
    let m = &obj.members[at];
    if at > 0 {
        let prev = &obj.members[at - 1];
        format!("{}{}", &text[..prev.end], &text[m.end..])
    } else if let Some(next) = obj.members.get(1) {
        format!("{}{}", &text[..m.start], &text[next.start..])
    } else {
        format!("{}{{}}{}", &text[..obj.open], &text[obj.close + 1..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_found_past_strings_that_look_like_json() {
        let t = r#"{ "a": "x}\"{", "b": [1, {"c": 2}], "d": null }"#;
        let o = object_at(t, 0).expect("object");
        let keys: Vec<&str> = o.members.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "d"]);
        assert_eq!(
            &t[o.members[1].value_start..o.members[1].end],
            r#"[1, {"c": 2}]"#
        );
    }

    #[test]
    fn insert_then_remove_gives_back_the_same_bytes() {
        for t in [
            "{\n    \"zeta\": 1,\n    \"alpha\": [1,2]\n}\n",
            "{}\n",
            "{\n\t\"only\": true\n}",
        ] {
            let o = object_at(t, 0).expect("object");
            let unit = indent_unit(t);
            let v = render(
                &serde_json::json!({"command": "x", "args": ["mcp"]}),
                &unit,
                1,
            );
            let added = insert_last(t, &o, "op-session", &v, &unit, 1);
            assert!(
                serde_json::from_str::<serde_json::Value>(&added).is_ok(),
                "{added}"
            );
            let o2 = object_at(&added, 0).expect("object");
            let at = o2
                .members
                .iter()
                .position(|m| m.key == "op-session")
                .expect("ours");
            assert_eq!(remove(&added, &o2, at), t, "{added}");
        }
    }
}

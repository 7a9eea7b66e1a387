//! Field assignments (`[<section>.]<field>[[<type>]]=<value>`, op's own syntax) turned into
//! 1Password's item JSON template, so that values reach `op` on stdin and never on its argv
//! (where every user of the machine can read them in `/proc/PID/cmdline`).
//!
//! `op item create -` reads a template from stdin; `op item edit ITEM --template=/dev/stdin`
//! replaces the item's title, sections and fields with the template's, so an edit starts from
//! the item's own JSON (`op item get --format=json`) and applies the assignments to it
//! ([`apply`]). The template's shape and the assignment syntax are recorded, with their
//! sources, in docs/op-behaviour.md §7.

use serde_json::{Map, Value, json};

/// An assignment statement, parsed as op parses one: the first unescaped `=` ends the key, a
/// `\` escapes the next character, the last unescaped `.` separates a section, and a trailing
/// `[type]` names the field type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The section's label, if any.
    pub section: Option<String>,
    /// The field's label (or built-in id: `username`, `password`, `notesPlain`).
    pub label: String,
    /// The field type as written (`text`, `password`, `delete`…), lower-cased.
    pub kind: Option<String>,
    /// The value.
    pub value: String,
}

/// An assignment op would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Not `[<section>.]<field>[[<type>]]=<value>`.
    #[error(
        "invalid assignment statement {0:?}: expected [<section>.]<field>[[<fieldType>]]=<value>"
    )]
    Syntax(String),
    /// A field type op does not have.
    #[error("{0:?} isn't a valid field type")]
    FieldType(String),
    /// The item JSON to edit is not an object.
    #[error("the item op returned is not a JSON object")]
    NotAnItem,
}

/// Parse one assignment statement.
pub fn parse_assignment(s: &str) -> Result<Assignment, TemplateError> {
    let bad = || TemplateError::Syntax(s.to_string());
    let mut key = String::new();
    let mut dots = Vec::new();
    let mut chars = s.chars();
    let mut found = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    key.push(n);
                }
            }
            '=' => {
                found = true;
                break;
            }
            '.' => {
                dots.push(key.len());
                key.push('.');
            }
            _ => key.push(c),
        }
    }
    if !found {
        return Err(bad());
    }
    let value: String = chars.collect();
    let (mut label, kind) = match key.strip_suffix(']').and_then(|k| k.rsplit_once('[')) {
        Some((n, t)) => (n.to_string(), Some(t.to_lowercase())),
        None => (key.clone(), None),
    };
    let section = match dots.last() {
        Some(&at) if at < label.len() => {
            let s = label[..at].to_string();
            label = label[at + 1..].to_string();
            Some(s)
        }
        _ => None,
    };
    if label.is_empty() {
        return Err(bad());
    }
    if let Some(k) = &kind
        && k != "delete"
    {
        field_type(k)?;
    }
    Ok(Assignment {
        section,
        label,
        kind,
        value,
    })
}

/// The template `type` of an assignment's field type.
pub fn field_type(kind: &str) -> Result<&'static str, TemplateError> {
    Ok(match kind {
        "text" | "string" => "STRING",
        "password" | "concealed" => "CONCEALED",
        "email" => "EMAIL",
        "url" => "URL",
        "date" => "DATE",
        "monthyear" => "MONTH_YEAR",
        "phone" => "PHONE",
        "otp" => "OTP",
        other => return Err(TemplateError::FieldType(other.to_string())),
    })
}

/// The template for a new item: `title`, `category` and the assigned fields.
pub fn create(title: &str, category: &str, assignments: &[Assignment]) -> Value {
    let mut item = json!({
        "title": title,
        "category": category.trim().to_uppercase().replace(' ', "_"),
        "sections": [],
        "fields": [],
    });
    // Infallible: `item` is an object built just above.
    let _ = apply(&mut item, None, assignments);
    item
}

/// Apply a new title (if any) and the assignments to an item's JSON, as op applies them to an
/// item: a field is matched by label or id within its section; `[delete]` removes it.
pub fn apply(
    item: &mut Value,
    title: Option<&str>,
    assignments: &[Assignment],
) -> Result<(), TemplateError> {
    let obj = item.as_object_mut().ok_or(TemplateError::NotAnItem)?;
    if let Some(t) = title {
        obj.insert("title".into(), Value::String(t.to_string()));
    }
    for a in assignments {
        let section_id = a.section.as_ref().map(|label| section(obj, label));
        let fields = array(obj, "fields");
        let at = fields.iter().position(|f| {
            let in_section = f
                .get("section")
                .and_then(|s| s.get("id"))
                .and_then(Value::as_str);
            in_section == section_id.as_deref()
                && ["label", "id"].iter().any(|k| {
                    f.get(*k)
                        .and_then(Value::as_str)
                        .is_some_and(|v| v.eq_ignore_ascii_case(&a.label))
                })
        });
        if a.kind.as_deref() == Some("delete") {
            if let Some(at) = at {
                fields.remove(at);
            }
            continue;
        }
        let kind = a.kind.as_deref().map(field_type).transpose()?;
        match at.and_then(|at| fields[at].as_object_mut()) {
            Some(f) => {
                f.insert("value".into(), Value::String(a.value.clone()));
                if let Some(k) = kind {
                    f.insert("type".into(), Value::String(k.into()));
                }
            }
            None => {
                let builtin = section_id.is_none()
                    && matches!(a.label.as_str(), "username" | "password" | "notesPlain");
                let mut f = Map::new();
                let default_kind = match (builtin, a.label.as_str()) {
                    (true, "password") => {
                        f.insert("id".into(), "password".into());
                        f.insert("purpose".into(), "PASSWORD".into());
                        "CONCEALED"
                    }
                    (true, "username") => {
                        f.insert("id".into(), "username".into());
                        f.insert("purpose".into(), "USERNAME".into());
                        "STRING"
                    }
                    (true, _) => {
                        f.insert("id".into(), "notesPlain".into());
                        f.insert("purpose".into(), "NOTES".into());
                        "STRING"
                    }
                    _ => "STRING",
                };
                f.insert("type".into(), kind.unwrap_or(default_kind).into());
                f.insert("label".into(), Value::String(a.label.clone()));
                f.insert("value".into(), Value::String(a.value.clone()));
                if let Some(id) = &section_id {
                    f.insert("section".into(), json!({ "id": id }));
                }
                fields.push(Value::Object(f));
            }
        }
    }
    Ok(())
}

/// The array `key` of `obj`, created if absent or not an array.
fn array<'a>(obj: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let slot = obj.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    match slot {
        Value::Array(v) => v,
        _ => unreachable!("made an array just above"),
    }
}

/// The id of the section labelled `label`, added (with its label as id) when absent.
fn section(obj: &mut Map<String, Value>, label: &str) -> String {
    let sections = array(obj, "sections");
    if let Some(id) = sections.iter().find_map(|s| {
        s.get("label")
            .and_then(Value::as_str)
            .filter(|l| l.eq_ignore_ascii_case(label))
            .and_then(|_| s.get("id").and_then(Value::as_str))
    }) {
        return id.to_string();
    }
    let id = label.to_string();
    sections.push(json!({ "id": id, "label": label }));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_parse_as_op_reads_them() {
        let a = parse_assignment(r"Database Credentials.host[text]=33.166.240.221").unwrap();
        assert_eq!(a.section.as_deref(), Some("Database Credentials"));
        assert_eq!(a.label, "host");
        assert_eq!(a.kind.as_deref(), Some("text"));
        assert_eq!(a.value, "33.166.240.221");
        let a = parse_assignment(r"a\.b\=c=x=y").unwrap();
        assert_eq!(
            (a.section, a.label.as_str(), a.value.as_str()),
            (None, "a.b=c", "x=y")
        );
        assert!(parse_assignment("novalue").is_err());
        assert!(parse_assignment("x[nope]=1").is_err());
    }

    #[test]
    fn a_template_holds_the_values_and_an_edit_replaces_in_place() {
        let t = create(
            "Deploy",
            "API Credential",
            &[
                parse_assignment("password=s3cret").unwrap(),
                parse_assignment("Env.region=eu").unwrap(),
            ],
        );
        assert_eq!(t["category"], "API_CREDENTIAL");
        assert_eq!(t["fields"][0]["id"], "password");
        assert_eq!(t["fields"][0]["type"], "CONCEALED");
        assert_eq!(t["fields"][0]["value"], "s3cret");
        assert_eq!(t["fields"][1]["section"]["id"], "Env");
        assert_eq!(t["sections"][0]["label"], "Env");
        let mut item = t.clone();
        apply(
            &mut item,
            Some("Renamed"),
            &[
                parse_assignment("password=new").unwrap(),
                parse_assignment("Env.region[delete]=").unwrap(),
            ],
        )
        .unwrap();
        assert_eq!(item["title"], "Renamed");
        assert_eq!(item["fields"].as_array().unwrap().len(), 1);
        assert_eq!(item["fields"][0]["value"], "new");
    }
}

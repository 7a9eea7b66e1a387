//! Changing an item the way `op item create` and `op item edit` do: assignment statements
//! (`[section.]field[type]=value`), field types, generated passwords and the flags that set a
//! title, URL, tags or vault (docs/op-behaviour.md §7).

use crate::encoding::{random_bytes, random_id};
use crate::error::OpError;
use crate::invocation::Ctx;
use crate::state::{Field, Item, ItemUrl, Section};

/// A parsed `[<section>.]<field>[[<type>]]=<value>` assignment.
struct Assignment {
    section: Option<String>,
    label: String,
    kind: Option<String>,
    value: String,
}

fn parse_assignment(s: &str) -> Result<Assignment, OpError> {
    let bad = || {
        OpError::new(format!(
            "invalid assignment statement \"{s}\": expected [<section>.]<field>[[<fieldType>]]=<value>"
        ))
    };
    // Split at the first unescaped '='.
    let mut key = String::new();
    let mut chars = s.chars();
    let mut dots = Vec::new();
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
    let (mut name, kind) = match key.strip_suffix(']').and_then(|k| k.rsplit_once('[')) {
        Some((n, t)) => (n.to_string(), Some(t.to_lowercase())),
        None => (key.clone(), None),
    };
    let section = match dots.last() {
        Some(&at) if at < name.len() => {
            let s = name[..at].to_string();
            name = name[at + 1..].to_string();
            Some(s)
        }
        _ => None,
    };
    if name.is_empty() {
        return Err(bad());
    }
    Ok(Assignment {
        section,
        label: name,
        kind,
        value,
    })
}

fn field_type(kind: &str) -> Result<String, OpError> {
    Ok(match kind {
        "text" | "string" => "STRING",
        "password" | "concealed" => "CONCEALED",
        "email" => "EMAIL",
        "url" => "URL",
        "date" => "DATE",
        "monthyear" => "MONTH_YEAR",
        "phone" => "PHONE",
        "otp" => "OTP",
        other => {
            return Err(OpError::new(format!(
                "\"{other}\" isn't a valid field type"
            )));
        }
    }
    .to_string())
}

fn generated_password(recipe: &str) -> String {
    let length = recipe
        .split(',')
        .find_map(|p| p.trim().parse::<usize>().ok())
        .unwrap_or(32)
        .clamp(1, 64);
    let mut alphabet: Vec<u8> = Vec::new();
    let parts: Vec<String> = recipe.split(',').map(|p| p.trim().to_lowercase()).collect();
    let any = !parts
        .iter()
        .any(|p| ["letters", "digits", "symbols"].contains(&p.as_str()));
    if any || parts.iter().any(|p| p == "letters") {
        alphabet.extend(b'a'..=b'z');
        alphabet.extend(b'A'..=b'Z');
    }
    if any || parts.iter().any(|p| p == "digits") {
        alphabet.extend(b'0'..=b'9');
    }
    if parts.iter().any(|p| p == "symbols") {
        alphabet.extend(b"!@.-_*".iter());
    }
    random_bytes(length)
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect()
}

/// The item JSON template `op item create -` reads from stdin and `--template PATH` from a file
/// (`/dev/stdin` included), if this call has one.
pub(super) fn template(ctx: &Ctx) -> Result<Option<serde_json::Value>, OpError> {
    let text = match ctx.args.value("template") {
        Some("/dev/stdin" | "-") => ctx.stdin_data.clone().unwrap_or_default(),
        Some(path) => std::fs::read(path)
            .map_err(|e| OpError::new(format!("couldn't read the template file {path}: {e}")))?,
        None if ctx.args.positionals.iter().any(|a| a == "-") => {
            ctx.stdin_data.clone().unwrap_or_default()
        }
        None => return Ok(None),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| OpError::new(format!("invalid JSON in item template: {e}")))
}

/// Replace an item's title, sections and fields with a template's (as `op item edit
/// --template` does; `op item create` starts from an empty item). The category comes from the
/// template only when `--category` is absent.
pub(super) fn apply_template(item: &mut Item, t: &serde_json::Value) -> Result<(), OpError> {
    let bad = |what: &str| OpError::new(format!("invalid item template: {what}"));
    let t = t.as_object().ok_or_else(|| bad("not a JSON object"))?;
    if let Some(title) = t.get("title").and_then(|v| v.as_str()) {
        item.title = title.to_string();
    }
    item.sections = t
        .get("sections")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .map(|s| Section {
            id: s
                .get("id")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
            label: s
                .get("label")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
        })
        .collect();
    let mut fields = Vec::new();
    for f in t
        .get("fields")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let s = |k: &str| f.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let label = s("label")
            .or_else(|| s("id"))
            .ok_or_else(|| bad("a field has no label"))?;
        fields.push(Field {
            id: s("id").filter(|i| !i.is_empty()).unwrap_or_else(random_id),
            kind: s("type").unwrap_or_else(|| "STRING".to_string()),
            purpose: s("purpose"),
            label,
            value: s("value"),
            section: f
                .get("section")
                .and_then(|v| v.get("id"))
                .and_then(|v| v.as_str())
                .map(str::to_string),
        });
    }
    item.fields = fields;
    Ok(())
}

/// Apply assignments (and `--generate-password`) to an item.
pub(super) fn apply(item: &mut Item, ctx: &Ctx) -> Result<(), OpError> {
    let assignments: Vec<Assignment> = ctx
        .args
        .positionals
        .iter()
        .skip(usize::from(ctx.args.command == "item edit"))
        .filter(|a| *a != "-")
        .map(|a| parse_assignment(a))
        .collect::<Result<_, _>>()?;
    for a in assignments {
        let section_id = match &a.section {
            None => None,
            Some(label) => Some(
                match item
                    .sections
                    .iter()
                    .find(|s| s.label.eq_ignore_ascii_case(label))
                {
                    Some(s) => s.id.clone(),
                    None => {
                        let id = format!("Section_{}", random_id());
                        item.sections.push(Section {
                            id: id.clone(),
                            label: label.clone(),
                        });
                        id
                    }
                },
            ),
        };
        let existing = item.fields.iter().position(|f| {
            f.section == section_id && (f.label.eq_ignore_ascii_case(&a.label) || f.id == a.label)
        });
        if a.kind.as_deref() == Some("delete") {
            if let Some(at) = existing {
                item.fields.remove(at);
            }
            continue;
        }
        let kind = a.kind.as_deref().map(field_type).transpose()?;
        match existing {
            Some(at) => {
                let f = &mut item.fields[at];
                f.value = Some(a.value);
                if let Some(k) = kind {
                    f.kind = k;
                }
            }
            None => {
                let builtin = section_id.is_none()
                    && matches!(a.label.as_str(), "username" | "password" | "notesPlain");
                let (id, purpose, default_kind) = match (builtin, a.label.as_str()) {
                    (true, "username") => ("username".to_string(), Some("USERNAME"), "STRING"),
                    (true, "password") => ("password".to_string(), Some("PASSWORD"), "CONCEALED"),
                    (true, _) => ("notesPlain".to_string(), Some("NOTES"), "STRING"),
                    _ => (random_id(), None, "STRING"),
                };
                item.fields.push(Field {
                    id,
                    kind: kind.unwrap_or_else(|| default_kind.to_string()),
                    purpose: purpose.map(str::to_string),
                    label: a.label,
                    value: Some(a.value),
                    section: section_id,
                });
            }
        }
    }
    if ctx.args.has("generate-password") {
        let password = generated_password(ctx.args.value("generate-password").unwrap_or(""));
        match item.fields.iter_mut().find(|f| f.id == "password") {
            Some(f) => f.value = Some(password),
            None => item.fields.push(Field {
                id: "password".to_string(),
                kind: "CONCEALED".to_string(),
                purpose: Some("PASSWORD".to_string()),
                label: "password".to_string(),
                value: Some(password),
                section: None,
            }),
        }
    }
    if let Some(url) = ctx.args.value("url") {
        item.urls = vec![ItemUrl {
            label: "website".to_string(),
            primary: true,
            href: url.to_string(),
        }];
    }
    if let Some(tags) = ctx.args.value("tags") {
        item.tags = tags
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
    }
    if let Some(title) = ctx.args.value("title") {
        item.title = title.to_string();
    }
    if ctx.args.has("favorite") {
        item.favorite = ctx.args.bool("favorite");
    }
    Ok(())
}

//! The Connect API as this simulator answers it: routes, `filter`, JSON shapes, errors.
//!
//! Shapes follow Connect's API description: camelCase keys; vaults `{id, name, description,
//! attributeVersion, contentVersion, items, type, createdAt, updatedAt}`; item summaries
//! without fields; full items with `sections`, `fields` (`{id, type, purpose?, label, value?,
//! section?: {id}, totp?}`) and `files`; errors `{"status": N, "message": "…"}`. Everything
//! under `/v1` needs `Authorization: Bearer <token>`; `/health` and `/heartbeat` do not.
//!
//! Assumption (docs/connect.md): `eq` in a filter compares case-insensitively, as `op` does
//! for names; both `name eq` and `title eq` select vaults (the SDKs send `title`).

use fake_op::state::{Account, Item, State, Vault};
use serde_json::{Value, json};

/// One answer: status, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Answer {
    fn json(status: u16, v: &Value) -> Answer {
        Answer {
            status,
            content_type: "application/json",
            body: v.to_string().into_bytes(),
        }
    }

    /// Connect's error body.
    pub fn error(status: u16, message: &str) -> Answer {
        Answer::json(status, &json!({"status": status, "message": message}))
    }
}

/// What `/health` says about this server.
pub const SERVER_NAME: &str = "1Password Connect API";
/// The version `/health` reports.
pub const SERVER_VERSION: &str = "1.7.3-fake";

/// The account whose vaults the token may read (the fixture's first).
fn account(state: &State) -> Option<&Account> {
    state.accounts.first()
}

/// Decode `%XX` and `+` in a query component.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `<attr> eq "<value>"` → (attr, value). Anything else is a bad filter.
pub fn parse_filter(f: &str) -> Option<(String, String)> {
    let f = f.trim();
    let (attr, rest) = f.split_once(' ')?;
    let rest = rest.trim_start();
    let value = rest.strip_prefix("eq")?.trim_start();
    let inner = value.strip_prefix('"')?.strip_suffix('"')?;
    Some((
        attr.to_string(),
        inner.replace("\\\"", "\"").replace("\\\\", "\\"),
    ))
}

fn filter_of(query: Option<&str>) -> Result<Option<(String, String)>, Answer> {
    let Some(q) = query else { return Ok(None) };
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "filter" {
            return parse_filter(&percent_decode(v))
                .map(Some)
                .ok_or_else(|| Answer::error(400, "Invalid filter query"));
        }
    }
    Ok(None)
}

fn vault_json(v: &Vault) -> Value {
    json!({
        "id": v.id,
        "name": v.name,
        "description": v.description,
        "attributeVersion": v.attribute_version,
        "contentVersion": v.content_version,
        "items": v.items.iter().filter(|i| !i.archived).count(),
        "type": v.kind,
        "createdAt": v.created_at,
        "updatedAt": v.updated_at,
    })
}

fn summary_json(v: &Vault, i: &Item) -> Value {
    json!({
        "id": i.id,
        "title": i.title,
        "vault": {"id": v.id},
        "category": i.category,
        "tags": i.tags,
        "favorite": i.favorite,
        "version": i.version,
        "state": if i.archived { "ARCHIVED" } else { "" },
        "createdAt": i.created_at,
        "updatedAt": i.updated_at,
        "lastEditedBy": i.last_edited_by,
        "urls": i.urls.iter().map(|u| json!({"primary": u.primary, "label": u.label, "href": u.href})).collect::<Vec<_>>(),
    })
}

fn item_json(v: &Vault, i: &Item, now_ms: i64) -> Value {
    let mut out = summary_json(v, i);
    out["sections"] = i
        .sections
        .iter()
        .map(|s| json!({"id": s.id, "label": s.label}))
        .collect();
    out["fields"] = i
        .fields
        .iter()
        .map(|f| {
            let mut o = json!({"id": f.id, "type": f.kind, "label": f.label});
            if let Some(p) = &f.purpose {
                o["purpose"] = json!(p);
            }
            if let Some(val) = &f.value {
                o["value"] = json!(val);
                if f.kind == "OTP"
                    && let Some(code) = fake_op::encoding::totp(val, now_ms)
                {
                    o["totp"] = json!(code);
                }
            }
            if let Some(s) = &f.section {
                o["section"] = json!({"id": s});
            }
            o
        })
        .collect();
    out["files"] = i
        .files
        .iter()
        .map(|f| {
            let mut o = json!({
                "id": f.id,
                "name": f.name,
                "size": f.content.len(),
                "content_path": format!("/v1/vaults/{}/items/{}/files/{}/content", v.id, i.id, f.id),
            });
            if let Some(s) = &f.section {
                o["section"] = json!({"id": s});
            }
            o
        })
        .collect();
    out
}

/// Answer `GET path?query` for a caller whose token was (or was not) valid.
pub fn get(
    state: &State,
    path: &str,
    query: Option<&str>,
    authorized: bool,
    now_ms: i64,
) -> Answer {
    match path {
        "/heartbeat" => {
            return Answer {
                status: 200,
                content_type: "text/plain",
                body: b".".to_vec(),
            };
        }
        "/health" => {
            return Answer::json(
                200,
                &json!({
                    "name": SERVER_NAME,
                    "version": SERVER_VERSION,
                    "dependencies": [
                        {"service": "sync", "status": "ACTIVE"},
                        {"service": "sqlite", "status": "ACTIVE", "message": "Connected to ./1password.sqlite"}
                    ]
                }),
            );
        }
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/v1/") else {
        return Answer::error(404, "Not Found");
    };
    if !authorized {
        return Answer::error(401, "Invalid token signature");
    }
    let Some(acc) = account(state) else {
        return Answer::error(404, "No vaults are available");
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let filter = match filter_of(query) {
        Ok(f) => f,
        Err(a) => return a,
    };
    let vault = |id: &str| acc.vaults.iter().find(|v| v.id == id);
    match segs.as_slice() {
        ["vaults"] => {
            let list: Vec<Value> = acc
                .vaults
                .iter()
                .filter(|v| match &filter {
                    None => true,
                    Some((a, val)) if a == "name" || a == "title" => {
                        v.name.eq_ignore_ascii_case(val)
                    }
                    Some(_) => false,
                })
                .map(vault_json)
                .collect();
            if let Some((a, _)) = &filter
                && a != "name"
                && a != "title"
            {
                return Answer::error(400, &format!("Invalid filter attribute: {a}"));
            }
            Answer::json(200, &Value::Array(list))
        }
        ["vaults", vid] => match vault(vid) {
            Some(v) => Answer::json(200, &vault_json(v)),
            None => Answer::error(404, &format!("vault {vid} not found")),
        },
        ["vaults", vid, "items"] => {
            let Some(v) = vault(vid) else {
                return Answer::error(404, &format!("vault {vid} not found"));
            };
            if let Some((a, _)) = &filter
                && a != "title"
            {
                return Answer::error(400, &format!("Invalid filter attribute: {a}"));
            }
            let list: Vec<Value> = v
                .items
                .iter()
                .filter(|i| !i.archived)
                .filter(|i| match &filter {
                    None => true,
                    Some((_, t)) => i.title.eq_ignore_ascii_case(t),
                })
                .map(|i| summary_json(v, i))
                .collect();
            Answer::json(200, &Value::Array(list))
        }
        ["vaults", vid, "items", iid] => {
            let Some(v) = vault(vid) else {
                return Answer::error(404, &format!("vault {vid} not found"));
            };
            match v.items.iter().find(|i| i.id == *iid) {
                Some(i) => Answer::json(200, &item_json(v, i, now_ms)),
                None => Answer::error(404, &format!("item {iid} not found in vault {vid}")),
            }
        }
        ["vaults", vid, "items", iid, "files", fid, "content"] => {
            let file = vault(vid)
                .and_then(|v| v.items.iter().find(|i| i.id == *iid))
                .and_then(|i| i.files.iter().find(|f| f.id == *fid));
            match file {
                Some(f) => Answer {
                    status: 200,
                    content_type: "application/octet-stream",
                    body: f.content.clone().into_bytes(),
                },
                None => Answer::error(404, &format!("file {fid} not found")),
            }
        }
        _ => Answer::error(404, "Not Found"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn state() -> State {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fake-op/fixtures/basic.json"
        ))
        .unwrap();
        fake_op::fixture::load(&text).unwrap()
    }

    fn body(a: &Answer) -> Value {
        serde_json::from_slice(&a.body).unwrap()
    }

    #[test]
    fn filters_decode_and_match_names_either_way() {
        assert_eq!(
            percent_decode("name+eq+%22Dev%20Ops%22"),
            "name eq \"Dev Ops\""
        );
        assert_eq!(
            parse_filter("title eq \"Stripe\""),
            Some(("title".into(), "Stripe".into()))
        );
        assert!(parse_filter("title co \"x\"").is_none());
        let s = state();
        for q in ["filter=name+eq+%22dev%22", "filter=title%20eq%20%22Dev%22"] {
            let a = get(&s, "/v1/vaults", Some(q), true, 0);
            assert_eq!(a.status, 200);
            assert_eq!(body(&a).as_array().unwrap().len(), 1, "{q}");
        }
        assert_eq!(
            get(&s, "/v1/vaults", Some("filter=bogus"), true, 0).status,
            400
        );
    }

    #[test]
    fn items_need_the_token_and_come_with_values() {
        let s = state();
        assert_eq!(get(&s, "/v1/vaults", None, false, 0).status, 401);
        assert_eq!(get(&s, "/health", None, false, 0).status, 200);
        let dev = &s.accounts[0].vaults[0];
        let q = "filter=title+eq+%22Deploy+Key%22";
        let a = get(
            &s,
            &format!("/v1/vaults/{}/items", dev.id),
            Some(q),
            true,
            0,
        );
        assert_eq!(
            body(&a).as_array().unwrap().len(),
            2,
            "duplicate titles both listed"
        );
        let stripe = &dev.items[0];
        let a = get(
            &s,
            &format!("/v1/vaults/{}/items/{}", dev.id, stripe.id),
            None,
            true,
            0,
        );
        let v = body(&a);
        assert_eq!(v["fields"][1]["value"], "sk_test_4eC39HqLyjWDarjtT1zdp7dc");
        assert!(v["createdAt"].is_string(), "camelCase");
        let a = get(
            &s,
            &format!("/v1/vaults/{}/items/nope", dev.id),
            None,
            true,
            0,
        );
        assert_eq!(a.status, 404);
        assert_eq!(body(&a)["status"], 404);
    }
}

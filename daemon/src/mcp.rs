//! What the daemon does for requests relayed by `op-session mcp`, and the `[mcp]` rules.
//!
//! The MCP process is just another client: it holds no credential and decides nothing. This
//! module owns the decisions: whether a value may be revealed (`[mcp] reveal` plus the
//! request's acknowledged `reveal` flag), which programs `run` may hand values to
//! (`[mcp] run_allow`), building the fixed `op` command lines of the item tools (never caller
//! argv), and masking every concealed value out of what those commands print before it leaves
//! the daemon. See docs/MCP.md.
//!
//! Never returns a concealed value, a length or a prefix from [`item`] or [`check`]; never logs
//! a value.

use std::sync::Arc;

use secrecy::ExposeSecret;

use op_session_protocol::{
    CheckReport, CheckRequest, ErrorBody, ErrorCode, ItemOp, ItemRequest, McpInfo, ResolvePurpose,
    ResolveRequest, Response, Values,
};
use serde_json::{Map, Value, json};

use op_grammar::OpCall;

use crate::config::run_rule_for;
use crate::lifecycle;
use crate::policy;
use crate::resolve::resolve;
use crate::state::Daemon;

/// What replaces a concealed value in item JSON (the same words `op run` masks with).
pub const CONCEALED_MARKER: &str = secret_ref::mask::CONCEALED;

/// Field types whose values are shown; every other type's value is replaced by the marker.
const SHOWN_TYPES: &[&str] = &[
    "STRING",
    "EMAIL",
    "URL",
    "PHONE",
    "DATE",
    "MONTH_YEAR",
    "MENU",
    "REFERENCE",
];

/// What `op-session mcp` may offer.
pub fn info(daemon: &Daemon) -> McpInfo {
    let p = &daemon.config.policy;
    let allowed = |verb: &str| {
        let destructive =
            op_grammar::lookup(verb).is_some_and(|c| c.effect == op_grammar::Effect::Destructive);
        policy::check_verb(p, verb, destructive).is_ok()
    };
    McpInfo {
        reveal: daemon.config.mcp.reveal,
        run_allow: daemon.config.mcp.run_allow.clone(),
        can_create: allowed("item create"),
        can_edit: allowed("item edit"),
        can_delete: allowed("item delete"),
    }
}

fn denied(message: String, fix: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::PolicyDenied, message).with_fix(fix)
}

/// The `[mcp]` gate on a resolution relayed by `op-session mcp`. `Some` is the answer to
/// send instead of resolving (a refusal, or the empty answer that lets a `run` with no
/// references start).
pub fn gate_resolve(daemon: &Daemon, r: &ResolveRequest) -> Option<Response> {
    let via_mcp = r.via.as_ref().is_some_and(|v| v.is_mcp());
    if !via_mcp {
        return None;
    }
    let cfg = &daemon.config.mcp;
    match r.purpose {
        ResolvePurpose::Read => {
            if !cfg.reveal {
                return Some(Response::Error(denied(
                    "op-session mcp may not return secret values (rule: [mcp] reveal = false)"
                        .into(),
                    "use `run` or `inject` so values go only to a process or file; a person may set reveal = true under [mcp] in the op-session config",
                )));
            }
            if !r.reveal {
                return Some(Response::Error(denied(
                    "read_secret needs the acknowledgement that it returns plaintext".into(),
                    "pass acknowledge: \"I_UNDERSTAND_THIS_RETURNS_SECRET_PLAINTEXT\"",
                )));
            }
        }
        ResolvePurpose::Run => {
            let Some(program) = r.program.as_deref().filter(|p| p.starts_with('/')) else {
                return Some(Response::Error(ErrorBody::new(
                    ErrorCode::BadRequest,
                    "a run via op-session mcp must name the absolute program path",
                )));
            };
            if run_rule_for(cfg, program).is_none() {
                return Some(Response::Error(denied(
                    format!(
                        "op-session mcp may not run {program} (rule: [mcp] run_allow = {:?})",
                        cfg.run_allow
                    ),
                    "a person may add the program's absolute path or a glob to run_allow under [mcp] in the op-session config",
                )));
            }
            if r.refs.is_empty() {
                return Some(Response::Values(Values {
                    account: r.account.clone().unwrap_or_default(),
                    values: Vec::new(),
                }));
            }
        }
        ResolvePurpose::Inject => {}
    }
    None
}

/// `check_reference`: resolve (through the cache, single-flight) and say where it points.
pub async fn check(daemon: &Arc<Daemon>, c: &CheckRequest) -> Result<CheckReport, ErrorBody> {
    let parsed = secret_ref::reference::parse(&c.reference).map_err(|e| {
        ErrorBody::new(
            ErrorCode::BadRequest,
            format!("{} is not a secret reference: {e}", c.reference),
        )
        .with_fix("use op://vault/item[/section]/field")
    })?;
    policy::check_verb(&daemon.config.policy, "read", false)?;
    policy::check_vaults(&daemon.config.policy, [parsed.vault.as_str()])?;
    let lease = crate::init::lease_or_start(daemon, c.account.as_deref()).await?;
    lifecycle::maybe_keepalive(daemon, &lease);
    let resolved = resolve(daemon, &lease, std::slice::from_ref(&c.reference), false).await?;
    let cached = resolved.first().is_some_and(|r| r.cached);
    drop(resolved);
    // The field's type, resolved like any value (`?attribute=type`), so it works the same in
    // every mode (connect included) and is cached, per session, with the values.
    let type_ref = secret_ref::reference::SecretRef {
        attribute: Some(secret_ref::Attribute::Type),
        ssh_format: None,
        ..parsed.clone()
    }
    .to_string();
    let field_type = match resolve(daemon, &lease, &[type_ref], false).await {
        Ok(mut v) => v
            .pop()
            .map(|r| r.value.expose_secret().trim().to_ascii_uppercase()),
        Err(_) => None,
    };
    Ok(CheckReport {
        reference: c.reference.clone(),
        account: lease.name.clone(),
        vault: parsed.vault,
        item: parsed.item,
        section: parsed.section,
        field: parsed.field,
        field_type,
        cached,
    })
}

/// An argument that names an item, vault, tag or field: never something `op` would read as
/// a flag.
fn operand(what: &str, v: &str) -> Result<String, ErrorBody> {
    if v.is_empty() || v.starts_with('-') || v.contains('\0') {
        return Err(ErrorBody::new(
            ErrorCode::BadRequest,
            format!("{what} {v:?} is empty or starts with '-'"),
        )
        .with_fix(format!("name the {what} by its title or ID")));
    }
    Ok(v.to_string())
}

/// The `op` command line for an item operation: fixed verbs and flags, caller values only as
/// operands or flag values.
pub fn item_argv(op: &ItemOp) -> Result<Vec<String>, ErrorBody> {
    let mut a: Vec<String> = Vec::new();
    let vault_flag = |a: &mut Vec<String>, v: &Option<String>| -> Result<(), ErrorBody> {
        if let Some(v) = v {
            a.push("--vault".into());
            a.push(operand("vault", v)?);
        }
        Ok(())
    };
    match op {
        ItemOp::ListVaults => a.extend(["vault".into(), "list".into()]),
        ItemOp::ListItems {
            vault,
            categories,
            tags,
        } => {
            a.extend(["item".into(), "list".into()]);
            vault_flag(&mut a, vault)?;
            if !categories.is_empty() {
                a.push(format!("--categories={}", categories.join(",")));
            }
            if !tags.is_empty() {
                a.push(format!("--tags={}", tags.join(",")));
            }
        }
        ItemOp::GetItem { item, vault } => {
            a.extend(["item".into(), "get".into(), operand("item", item)?]);
            vault_flag(&mut a, vault)?;
        }
        ItemOp::CreateItem {
            vault,
            title,
            category,
            fields,
            password_recipe,
            tags,
            url,
        } => {
            a.extend(["item".into(), "create".into()]);
            a.push(format!("--category={}", operand("category", category)?));
            a.push(format!("--title={title}"));
            vault_flag(&mut a, &Some(vault.clone()))?;
            match password_recipe {
                Some(r) => a.push(format!("--generate-password={r}")),
                None => a.push("--generate-password".into()),
            }
            if !tags.is_empty() {
                a.push(format!("--tags={}", tags.join(",")));
            }
            if let Some(u) = url {
                a.push(format!("--url={u}"));
            }
            for f in fields {
                a.push(operand("field assignment", f)?);
            }
        }
        ItemOp::EditItem {
            item,
            vault,
            title,
            fields,
            generate_password,
        } => {
            a.extend(["item".into(), "edit".into(), operand("item", item)?]);
            vault_flag(&mut a, vault)?;
            if let Some(t) = title {
                a.push(format!("--title={t}"));
            }
            if *generate_password {
                a.push("--generate-password".into());
            }
            for f in fields {
                a.push(operand("field assignment", f)?);
            }
        }
        ItemOp::DeleteItem {
            item,
            vault,
            archive,
        } => {
            a.extend(["item".into(), "delete".into(), operand("item", item)?]);
            vault_flag(&mut a, vault)?;
            if *archive {
                a.push("--archive".into());
            }
        }
    }
    if !matches!(op, ItemOp::DeleteItem { .. }) {
        a.extend(["--format".into(), "json".into()]);
    }
    Ok(a)
}

/// Run an item operation: policy, then `op`, then the masked result. `argv` receives the
/// command line for the audit (it holds assignments' values, so only the verb is audited).
pub async fn item(
    daemon: &Arc<Daemon>,
    r: &ItemRequest,
    ask: &mut crate::confirm::Ask<'_>,
) -> Result<(String, Value), ErrorBody> {
    // Read with the one grammar, like a passthrough: what is checked is what runs.
    let cmd = op_grammar::parse(&item_argv(&r.op)?).map_err(|e| {
        ErrorBody::new(
            ErrorCode::BadRequest,
            format!("cannot build this op command line ({e})"),
        )
    })?;
    policy::check_command(&daemon.config.policy, &cmd)?;
    policy::check_passthrough_vaults(&daemon.config.policy, &cmd)?;
    let lease = crate::init::lease_or_start(daemon, r.account.as_deref()).await?;
    // An item's fields go back (concealed ones masked): a matching item asks, as a read does.
    ask.command(&daemon.confirm, &daemon.sessions, &lease, &cmd, false)
        .await?;
    lifecycle::maybe_keepalive(daemon, &lease);
    let out = lifecycle::call_op(daemon, &lease, OpCall::from_command(cmd), None).await;
    // A write may change cached values: drop the account's cache, as a passthrough write does.
    if matches!(
        r.op,
        ItemOp::CreateItem { .. } | ItemOp::EditItem { .. } | ItemOp::DeleteItem { .. }
    ) {
        daemon.cache.drop_account(&lease.name);
    }
    let out = out?;
    let raw: Value = if out.stdout.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&out.stdout).map_err(|e| {
            ErrorBody::new(
                ErrorCode::OpFailed,
                format!("op printed output that is not JSON ({e})"),
            )
        })?
    };
    let vaults = &daemon.config.policy.vaults;
    let json = match &r.op {
        ItemOp::ListVaults => Value::Array(
            raw.as_array()
                .into_iter()
                .flatten()
                .filter(|v| {
                    vaults.is_empty()
                        || ["id", "name"].iter().any(|k| {
                            v.get(k)
                                .and_then(Value::as_str)
                                .is_some_and(|s| vaults.iter().any(|a| a.eq_ignore_ascii_case(s)))
                        })
                })
                .map(|v| pick(v, &["id", "name", "type"]))
                .collect(),
        ),
        // Not `additional_information`: for some categories it is part of a secret (a card
        // number's last digits).
        ItemOp::ListItems { .. } => Value::Array(
            raw.as_array()
                .into_iter()
                .flatten()
                .map(|v| {
                    pick(
                        v,
                        &[
                            "id",
                            "title",
                            "category",
                            "vault",
                            "tags",
                            "urls",
                            "updated_at",
                        ],
                    )
                })
                .collect(),
        ),
        ItemOp::DeleteItem { item, archive, .. } => json!({
            "deleted": item,
            "archived": archive,
        }),
        ItemOp::GetItem { .. } | ItemOp::CreateItem { .. } | ItemOp::EditItem { .. } => {
            mask_item(&raw)
        }
    };
    Ok((lease.name.clone(), json))
}

/// Copy only `keys` of an object.
fn pick(v: &Value, keys: &[&str]) -> Value {
    let mut m = Map::new();
    for k in keys {
        if let Some(x) = v.get(*k) {
            m.insert((*k).to_string(), x.clone());
        }
    }
    Value::Object(m)
}

/// An item as `get_item` shows it: identity, sections, and per field its label, type,
/// section and `op://` reference. Values are shown only for plain types; every other value
/// (concealed, OTP, credit card, SSH key, anything unknown) is the marker, with no length
/// and no prefix. Password history, TOTP codes and file contents are left out entirely.
pub fn mask_item(item: &Value) -> Value {
    let mut out = pick(
        item,
        &[
            "id",
            "title",
            "category",
            "vault",
            "tags",
            "urls",
            "created_at",
            "updated_at",
        ],
    );
    let sections: Vec<Value> = item
        .get("sections")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| pick(s, &["id", "label"]))
        .collect();
    let fields: Vec<Value> = item
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| {
            let mut m = Map::new();
            for k in ["id", "label", "type", "purpose", "reference"] {
                if let Some(x) = f.get(k) {
                    m.insert(k.into(), x.clone());
                }
            }
            if let Some(s) = f.get("section") {
                m.insert("section".into(), pick(s, &["id", "label"]));
            }
            let ty = f.get("type").and_then(Value::as_str).unwrap_or("");
            let has_value = f
                .get("value")
                .is_some_and(|v| !v.is_null() && v.as_str() != Some(""));
            if has_value {
                let shown = SHOWN_TYPES.contains(&ty)
                    && f.get("purpose").and_then(Value::as_str) != Some("PASSWORD");
                m.insert(
                    "value".into(),
                    if shown {
                        f.get("value").cloned().unwrap_or(Value::Null)
                    } else {
                        Value::String(CONCEALED_MARKER.into())
                    },
                );
            }
            Value::Object(m)
        })
        .collect();
    if let Value::Object(m) = &mut out {
        if !sections.is_empty() {
            m.insert("sections".into(), Value::Array(sections));
        }
        m.insert("fields".into(), Value::Array(fields));
        if let Some(files) = item.get("files").and_then(Value::as_array) {
            m.insert(
                "files".into(),
                Value::Array(
                    files
                        .iter()
                        .map(|f| pick(f, &["id", "name", "size"]))
                        .collect(),
                ),
            );
        }
    }
    out
}

/// The audit verb of an item operation (never its assignments).
pub fn item_verb(op: &ItemOp) -> &'static str {
    match op {
        ItemOp::ListVaults => "op vault list",
        ItemOp::ListItems { .. } => "op item list",
        ItemOp::GetItem { .. } => "op item get",
        ItemOp::CreateItem { .. } => "op item create",
        ItemOp::EditItem { .. } => "op item edit",
        ItemOp::DeleteItem { .. } => "op item delete",
    }
}

#[cfg(test)]
mod tests;

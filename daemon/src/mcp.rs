//! What the daemon does for requests relayed by `op-session mcp`, and the `[mcp]` rules.
//!
//! The MCP process is just another client: it holds no credential and decides nothing. This
//! module owns the decisions: whether a value may be revealed (`[mcp] reveal` plus the
//! request's acknowledged `reveal` flag), which programs `run` may hand values to
//! (`[mcp] run_allow`), building the fixed `op` command lines of the item tools with the
//! grammar's [`OpCall`] builders (never caller argv), and answering with a view of what those
//! commands print (`mcp/view.rs`: typed in, concealed values masked on the way out) so no concealed
//! value leaves the daemon. See docs/MCP.md.
//!
//! Never returns a concealed value, a length or a prefix from [`item`] or [`check`]; never logs
//! a value.

use std::sync::Arc;

use secrecy::ExposeSecret;

use op_session_protocol::{
    CheckReport, CheckRequest, ItemOp, ItemRequest, McpInfo, ResolvePurpose, ResolveRequest,
    Response, Values,
};
use serde_json::{Value, json};

use op_grammar::OpCall;

use crate::config::run_rule_for;
use crate::error::{Detail, Error};
use crate::lifecycle;
use crate::policy;
use crate::resolve::resolve;
use crate::state::Daemon;

use view::{OpItem, OpVault};

mod view;
#[cfg(test)]
use view::CONCEALED_MARKER;

/// What `op-session mcp` may offer.
pub(crate) fn info(daemon: &Daemon) -> McpInfo {
    let p = &daemon.config.policy;
    let allowed = |verb: &str| {
        let destructive =
            op_grammar::lookup(verb).is_some_and(|c| c.effect == op_grammar::Effect::Destructive);
        policy::check_verb(p, verb, destructive).is_ok()
    };
    McpInfo {
        reveal: daemon.config.mcp.reveal,
        run_allow: daemon.config.mcp.run_allow.written(),
        can_create: allowed("item create"),
        can_edit: allowed("item edit"),
        can_delete: allowed("item delete"),
        roots: daemon.config.mcp.roots.clone(),
    }
}

fn denied(message: String, fix: &str) -> Error {
    Error::denied(message).with_fix(fix)
}

/// The `[mcp]` gate on a resolution relayed by `op-session mcp`. `Some` is the answer to
/// send instead of resolving: a refusal, or the empty answer that lets a `run` with no
/// references start.
pub(crate) fn gate_resolve(daemon: &Daemon, r: &ResolveRequest) -> Option<Result<Response, Error>> {
    // Only `op-session mcp` relays (the one `Via`).
    let relayed = r.relayed.as_ref()?;
    let cfg = &daemon.config.mcp;
    match r.purpose {
        ResolvePurpose::Read => {
            if !cfg.reveal {
                return Some(Err(denied(
                    "op-session mcp may not return secret values (rule: [mcp] reveal = false)"
                        .into(),
                    "use `run` or `inject` so values go only to a process or file; a person may set reveal = true under [mcp] in the op-session config",
                )));
            }
            if !relayed.reveal {
                return Some(Err(denied(
                    "read_secret needs the acknowledgement that it returns plaintext".into(),
                    "pass acknowledge: \"I_UNDERSTAND_THIS_RETURNS_SECRET_PLAINTEXT\"",
                )));
            }
        }
        ResolvePurpose::Run => {
            let Some(program) = relayed.program.as_deref().filter(|p| p.starts_with('/')) else {
                return Some(Err(Error::bad_request(
                    "a run via op-session mcp must name the absolute program path",
                )));
            };
            if run_rule_for(cfg, program).is_none() {
                let resolved = crate::config::resolved_program(program);
                let shown = if resolved == program {
                    program.to_string()
                } else {
                    format!("{program} (resolved: {resolved})")
                };
                return Some(Err(denied(
                    format!(
                        "op-session mcp may not run {shown} (rule: [mcp] run_allow = {:?})",
                        cfg.run_allow.written()
                    ),
                    "a person may add the program's absolute path or a glob to run_allow under [mcp] in the op-session config",
                )));
            }
            if r.refs.is_empty() {
                return Some(Ok(Response::Values(Values {
                    account: r.account.clone().unwrap_or_default(),
                    values: Vec::new(),
                })));
            }
        }
        ResolvePurpose::Inject => {}
    }
    None
}

/// `check_reference`: resolve (through the cache, single-flight) and say where it points.
pub(crate) async fn check(daemon: &Arc<Daemon>, c: &CheckRequest) -> Result<CheckReport, Error> {
    let parsed = secret_ref::reference::parse(&c.reference).map_err(|e| {
        Error::bad_request(format!("{} is not a secret reference: {e}", c.reference))
            .with_fix("use op://vault/item[/section]/field")
    })?;
    policy::check_verb(&daemon.config.policy, "read", false)?;
    policy::check_vaults(&daemon.config.policy, [parsed.vault.as_str()])?;
    let lease = crate::init::lease_or_start(daemon, c.account.as_deref()).await?;
    lifecycle::maybe_keepalive(daemon, &lease);
    let wanted = secret_ref::Requested::from_parsed(c.reference.clone(), parsed.clone());
    let resolved = resolve(daemon, &lease, std::slice::from_ref(&wanted), false).await?;
    let cached = resolved.first().is_some_and(|r| r.cached);
    drop(resolved);
    // The field's type, resolved like any value (`?attribute=type`), so it works the same in
    // every mode (connect included) and is cached, per session, with the values.
    let type_ref = secret_ref::reference::SecretRef {
        attribute: Some(secret_ref::Attribute::Type),
        ssh_format: None,
        ..parsed.clone()
    };
    let type_ref = secret_ref::Requested::from_parsed(type_ref.to_string(), type_ref);
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
fn operand(what: &str, v: &str) -> Result<String, Error> {
    if v.is_empty() || v.starts_with('-') || v.contains('\0') {
        return Err(
            Error::bad_request(format!("{what} {v:?} is empty or starts with '-'"))
                .with_fix(format!("name the {what} by its title or ID")),
        );
    }
    Ok(v.to_string())
}

/// What runs for an item operation, built with the grammar's [`OpCall`] builders: fixed verbs
/// and flags, caller values only as operands or flag values. Field values never go on an
/// argv (docs/op-behaviour.md §7): they reach `op` as an item JSON template on its stdin.
enum Plan {
    /// One call whose argv holds no value.
    Call(OpCall),
    /// `op item create -`, the template on stdin.
    Create(OpCall, zeroize::Zeroizing<Vec<u8>>),
    /// `op item get` for the item's JSON, then `op item edit --template=/dev/stdin` with the
    /// title and assignments applied to it.
    Edit {
        get: OpCall,
        edit: OpCall,
        title: Option<String>,
        assignments: Vec<op_grammar::template::Assignment>,
    },
}

fn assignments(fields: &[String]) -> Result<Vec<op_grammar::template::Assignment>, Error> {
    fields
        .iter()
        .map(|f| {
            op_grammar::template::parse_assignment(f).map_err(|e| {
                // The error names the statement, which holds the value: name the label only.
                let label = f.split('=').next().unwrap_or_default();
                Error::bad_request(format!(
                    "field {label:?}: {}",
                    match e {
                        op_grammar::template::TemplateError::Syntax(_) =>
                            "expected [<section>.]<field>[[<fieldType>]]=<value>".to_string(),
                        other => other.to_string(),
                    }
                ))
            })
        })
        .collect()
}

fn plan(op: &ItemOp) -> Result<Plan, Error> {
    let vault_of = |v: &Option<String>| -> Result<Option<String>, Error> {
        v.as_deref().map(|v| operand("vault", v)).transpose()
    };
    match op {
        ItemOp::CreateItem {
            vault,
            title,
            category,
            fields,
            password_recipe,
            tags,
            url,
        } => {
            let vault = operand("vault", vault)?;
            operand("category", category)?;
            let template = op_grammar::template::create(title, category, &assignments(fields)?);
            let call = OpCall::item_create(Some(&vault))
                .generate_password(password_recipe.as_deref())
                .tags(tags)
                .url(url.as_deref())
                .json();
            let bytes = zeroize::Zeroizing::new(template.to_string().into_bytes());
            Ok(Plan::Create(call, bytes))
        }
        ItemOp::EditItem {
            item,
            vault,
            title,
            fields,
            generate_password,
        } => {
            let item = operand("item", item)?;
            let vault = vault_of(vault)?;
            let assignments = assignments(fields)?;
            let mut edit = OpCall::item_edit(&item, vault.as_deref());
            if *generate_password {
                edit = edit.generate_password(None);
            }
            if assignments.is_empty() && title.is_none() {
                return Ok(Plan::Call(edit.json()));
            }
            Ok(Plan::Edit {
                get: OpCall::item_get_in(&item, vault.as_deref()).json(),
                edit: edit.template_on_stdin().json(),
                title: title.clone(),
                assignments,
            })
        }
        ItemOp::ListVaults => Ok(Plan::Call(OpCall::vault_list().json())),
        ItemOp::ListItems {
            vault,
            categories,
            tags,
        } => Ok(Plan::Call(
            OpCall::item_list(vault_of(vault)?.as_deref(), categories, tags).json(),
        )),
        ItemOp::GetItem { item, vault } => Ok(Plan::Call(
            OpCall::item_get_in(&operand("item", item)?, vault_of(vault)?.as_deref()).json(),
        )),
        ItemOp::DeleteItem {
            item,
            vault,
            archive,
        } => Ok(Plan::Call(OpCall::item_delete(
            &operand("item", item)?,
            vault_of(vault)?.as_deref(),
            *archive,
        ))),
    }
}

/// Policy for one call of a plan: the same checks a passthrough of it gets.
fn check_call(daemon: &Daemon, call: &OpCall) -> Result<(), Error> {
    policy::check_command(&daemon.config.policy, call.command())?;
    policy::check_passthrough_vaults(&daemon.config.policy, call.command())
}

/// Run an item operation: policy, then `op`, then the masked result.
pub(crate) async fn item(
    daemon: &Arc<Daemon>,
    r: &ItemRequest,
    ask: &mut crate::confirm::Ask<'_>,
) -> Result<(String, Value), Error> {
    let plan = plan(&r.op)?;
    match &plan {
        Plan::Call(c) | Plan::Create(c, _) => check_call(daemon, c)?,
        Plan::Edit { get, edit, .. } => {
            check_call(daemon, get)?;
            check_call(daemon, edit)?;
        }
    }
    let lease = crate::init::lease_or_start(daemon, r.account.as_deref()).await?;
    // An item's fields go back (concealed ones masked): a matching item asks, as a read does.
    // An edit reads the item first: that read is what asks.
    let asked = match &plan {
        Plan::Call(c) | Plan::Create(c, _) => c.command(),
        Plan::Edit { get, .. } => get.command(),
    };
    ask.command(&daemon.confirm, &daemon.sessions, &lease, asked, false)
        .await?;
    lifecycle::maybe_keepalive(daemon, &lease);
    let out = match plan {
        Plan::Call(c) => lifecycle::call_op(daemon, &lease, c, None).await,
        Plan::Create(c, stdin) => lifecycle::call_op(daemon, &lease, c, Some(&stdin)).await,
        Plan::Edit {
            get,
            edit,
            title,
            assignments,
        } => {
            let current = lifecycle::call_op(daemon, &lease, get, None).await?;
            let mut item: Value = serde_json::from_slice(&current.stdout).map_err(|e| {
                Error::OpFailed(Detail::new(format!(
                    "op printed an item that is not JSON ({e})"
                )))
            })?;
            op_grammar::template::apply(&mut item, title.as_deref(), &assignments)
                .map_err(|e| Error::OpFailed(Detail::new(e.to_string())))?;
            let stdin = zeroize::Zeroizing::new(item.to_string().into_bytes());
            lifecycle::call_op(daemon, &lease, edit, Some(&stdin)).await
        }
    };
    // A write may change cached values: drop the account's cache, as a passthrough write does.
    if matches!(
        r.op,
        ItemOp::CreateItem { .. } | ItemOp::EditItem { .. } | ItemOp::DeleteItem { .. }
    ) {
        daemon.cache.drop_account(&lease.name);
    }
    let out = out?;
    let json = match &r.op {
        ItemOp::ListVaults => {
            let vaults: Vec<OpVault> = op_json(&out.stdout)?.unwrap_or_default();
            let allowed = &daemon.config.policy.vaults;
            to_json(
                &vaults
                    .into_iter()
                    .filter(|v| v.allowed(allowed))
                    .map(OpVault::view)
                    .collect::<Vec<_>>(),
            )?
        }
        ItemOp::ListItems { .. } => {
            let items: Vec<OpItem> = op_json(&out.stdout)?.unwrap_or_default();
            to_json(&items.into_iter().map(OpItem::summary).collect::<Vec<_>>())?
        }
        ItemOp::DeleteItem { item, archive, .. } => json!({
            "deleted": item,
            "archived": archive,
        }),
        ItemOp::GetItem { .. } | ItemOp::CreateItem { .. } | ItemOp::EditItem { .. } => {
            let item: OpItem = op_json(&out.stdout)?.unwrap_or_default();
            to_json(&item.view())?
        }
    };
    Ok((lease.name.clone(), json))
}

/// `op`'s JSON output read into `T`; `None` when it printed nothing.
fn op_json<T: serde::de::DeserializeOwned>(stdout: &[u8]) -> Result<Option<T>, Error> {
    if stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(stdout).map(Some).map_err(|e| {
        Error::OpFailed(Detail::new(format!(
            "op printed output that is not the JSON expected ({e})"
        )))
    })
}

/// A view as the JSON the MCP tool returns.
fn to_json<T: serde::Serialize>(view: &T) -> Result<Value, Error> {
    serde_json::to_value(view)
        .map_err(|e| Error::internal(format!("cannot render the item view ({e})")))
}

/// The audit verb of an item operation (never its assignments).
pub(crate) fn item_verb(op: &ItemOp) -> &'static str {
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

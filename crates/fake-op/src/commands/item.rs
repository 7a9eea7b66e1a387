//! `op item get/list/create/edit/delete` (docs/op-behaviour.md §7).

mod assign;

use assign::{apply, apply_template, template};

use crate::auth::{self, Principal, Quota};
use crate::clock;
use crate::encoding::random_id;
use crate::error::OpError;
use crate::invocation::{Ctx, Outcome};
use crate::items;
use crate::render;
use crate::state::{Field, Item, State};

/// op's text when a service account omits `--vault` where it is required (recorded, 2.3x).
const SA_VAULT_REQUIRED: &str = "a vault query must be provided when this command is called by a service account. Please specify one either through the --vault flag or through piped input";

/// Service-account requests `item get` costs.
const ITEM_GET_READS: u64 = 3;

fn include_archive(ctx: &Ctx) -> bool {
    ctx.args.bool("include-archive")
        || ctx
            .env
            .get("OP_INCLUDE_ARCHIVE")
            .is_some_and(|v| crate::args::parse_bool(v) == Some(true))
}

/// The vaults to search: `--vault` (which must exist and be visible), else every visible one.
/// Service accounts must name a vault when `require_for_sa`.
fn scope(
    ctx: &Ctx,
    state: &State,
    principal: Principal,
    require_for_sa: bool,
) -> Result<(Vec<usize>, Option<String>), OpError> {
    let visible = auth::visible_vaults(state, principal);
    let account = &state.accounts[principal.account()];
    match ctx.args.value("vault") {
        Some(v) => {
            let found =
                items::find_vault(account, &visible, v).ok_or_else(|| items::vault_not_found(v))?;
            Ok((vec![found], Some(account.vaults[found].name.clone())))
        }
        None if require_for_sa && matches!(principal, Principal::ServiceAccount { .. }) => {
            Err(OpError::new(SA_VAULT_REQUIRED))
        }
        None => Ok((visible, None)),
    }
}

fn locate(
    ctx: &Ctx,
    state: &State,
    principal: Principal,
    query: &str,
    archived_too: bool,
) -> Result<(usize, usize), OpError> {
    let (vaults, label) = scope(ctx, state, principal, true)?;
    let account = &state.accounts[principal.account()];
    items::find_item(account, &vaults, query, archived_too)
        .map_err(|e| items::lookup_error(account, query, label.as_deref(), e))
}

/// `op item get <item> [--vault V] [--fields …] [--reveal] [--otp] [--include-archive]`.
pub fn get(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    super::exact_args(ctx, 1)?;
    let principal = auth::authenticate(ctx, state).map_err(|e| e.for_command())?;
    let query = ctx.args.positionals[0].clone();
    let (v, i) = locate(ctx, state, principal, &query, include_archive(ctx))?;
    auth::charge(ctx, state, principal, Quota::Read, ITEM_GET_READS)
        .map_err(|e| e.for_command())?;
    let vault = &state.accounts[principal.account()].vaults[v];
    let item = &vault.items[i];
    let reveal = ctx.args.bool("reveal");
    if ctx.args.bool("otp") {
        let code = item
            .fields
            .iter()
            .find(|f| f.kind == "OTP")
            .and_then(|f| f.value.as_deref())
            .and_then(|v| crate::encoding::totp(v, ctx.now))
            .ok_or_else(|| {
                OpError::new(format!(
                    "item \"{}\" doesn't have a one-time password field",
                    item.title
                ))
            })?;
        return Ok(Outcome::text(format!("{code}\n")));
    }
    if let Some(spec) = ctx.args.value("fields") {
        let fields = select_fields(item, spec)?;
        if ctx.json {
            let conceal = state.quirks.conceal_json_fields && !reveal;
            let outs: Vec<_> = fields
                .iter()
                .map(|f| render::field_out(vault, item, f, ctx.now, conceal))
                .collect();
            return Ok(Outcome::text(if outs.len() == 1 {
                render::json(&outs[0])
            } else {
                render::json(&outs)
            }));
        }
        let joined: Vec<String> = fields
            .iter()
            .map(|f| render::field_human_value(item, f, reveal, ctx.now))
            .collect();
        return Ok(Outcome::text(format!("{}\n", joined.join(","))));
    }
    if ctx.json {
        return Ok(Outcome::text(render::json(&render::item_out(
            vault, item, true, ctx.now,
        ))));
    }
    Ok(Outcome::text(render::item_human(
        vault, item, reveal, ctx.now, ctx.iso,
    )))
}

/// `--fields label=a,type=concealed,b`: label selectors must match; type selectors may not.
fn select_fields<'i>(item: &'i Item, spec: &str) -> Result<Vec<&'i Field>, OpError> {
    let mut out: Vec<&Field> = Vec::new();
    for selector in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(kind) = selector.strip_prefix("type=") {
            out.extend(
                item.fields
                    .iter()
                    .filter(|f| f.kind.eq_ignore_ascii_case(kind)),
            );
            continue;
        }
        let label = selector.strip_prefix("label=").unwrap_or(selector);
        let found = item
            .fields
            .iter()
            .find(|f| f.label.eq_ignore_ascii_case(label) || f.id == label)
            .ok_or_else(|| {
                OpError::new(format!(
                    "\"{label}\" isn't a field in the \"{}\" item",
                    item.title
                ))
            })?;
        out.push(found);
    }
    Ok(out)
}

/// `op item list [--vault V] [--categories …] [--tags …] [--favorite] [--include-archive]`.
pub fn list(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    super::exact_args(ctx, 0)?;
    let principal = auth::authenticate(ctx, state).map_err(|e| e.for_command())?;
    let (vaults, _) = scope(ctx, state, principal, false)?;
    let reads = match ctx.args.value("vault") {
        Some(v) if crate::encoding::is_id(v) => 2,
        Some(_) => 3,
        None => 1 + vaults.len() as u64,
    };
    auth::charge(ctx, state, principal, Quota::Read, reads).map_err(|e| e.for_command())?;
    let norm = |s: &str| s.trim().to_uppercase().replace(' ', "_");
    let categories: Vec<String> = ctx
        .args
        .value("categories")
        .map(|c| c.split(',').map(norm).filter(|c| !c.is_empty()).collect())
        .unwrap_or_default();
    let tags: Vec<String> = ctx
        .args
        .value("tags")
        .map(|t| t.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    let archived_too = include_archive(ctx);
    let account = &state.accounts[principal.account()];
    let mut found = Vec::new();
    for &v in &vaults {
        let vault = &account.vaults[v];
        for item in &vault.items {
            let keep = (archived_too || !item.archived)
                && (categories.is_empty() || categories.contains(&item.category))
                && (tags.is_empty() || item.tags.iter().any(|t| tags.contains(t)))
                && (!ctx.args.bool("favorite") || item.favorite);
            if keep {
                found.push((vault, item));
            }
        }
    }
    if ctx.json {
        let outs: Vec<_> = found
            .iter()
            .map(|(v, i)| render::item_out(v, i, false, ctx.now))
            .collect();
        return Ok(Outcome::text(render::json(&outs)));
    }
    let mut rows = vec![vec![
        "ID".to_string(),
        "TITLE".to_string(),
        "VAULT".to_string(),
        "EDITED".to_string(),
    ]];
    for (v, i) in &found {
        rows.push(vec![
            i.id.clone(),
            i.title.clone(),
            v.name.clone(),
            render::when(&i.updated_at, ctx.now, ctx.iso),
        ]);
    }
    Ok(Outcome::text(render::table(&rows)))
}

fn user_uuid(state: &State, principal: Principal) -> String {
    match principal {
        Principal::Person { account, .. } => state.accounts[account].user_uuid.clone(),
        Principal::ServiceAccount { sa, .. } => state.service_accounts[sa].user_uuid.clone(),
    }
}

fn show(ctx: &Ctx, state: &State, account: usize, v: usize, item: &Item) -> Outcome {
    let vault = &state.accounts[account].vaults[v];
    if ctx.json {
        Outcome::text(render::json(&render::item_out(vault, item, true, ctx.now)))
    } else {
        Outcome::text(render::item_human(
            vault,
            item,
            ctx.args.bool("reveal"),
            ctx.now,
            ctx.iso,
        ))
    }
}

/// `op item create --category C [--title T] [--vault V] [assignments… | - | --template P]`.
pub fn create(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    let principal = auth::authenticate(ctx, state).map_err(|e| e.for_command())?;
    let template = template(ctx)?;
    let category = ctx
        .args
        .value("category")
        .or_else(|| {
            template
                .as_ref()
                .and_then(|t| t.get("category"))
                .and_then(|c| c.as_str())
        })
        .map(|c| c.trim().to_uppercase().replace(' ', "_"))
        .ok_or_else(|| OpError::new("a category is required: use the --category flag"))?;
    let account = principal.account();
    let v = match ctx.args.value("vault") {
        Some(_) => scope(ctx, state, principal, true)?.0[0],
        None => {
            if matches!(principal, Principal::ServiceAccount { .. }) {
                return Err(OpError::new(SA_VAULT_REQUIRED));
            }
            let visible = auth::visible_vaults(state, principal);
            let acct = &state.accounts[account];
            visible
                .iter()
                .copied()
                .find(|&v| acct.vaults[v].is_personal())
                .ok_or_else(|| items::vault_not_found("Private"))?
        }
    };
    auth::charge(ctx, state, principal, Quota::Write, 1).map_err(|e| e.for_command())?;
    let now = clock::rfc3339(ctx.now);
    let title_case: String = category
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + &c.as_str().to_lowercase())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut item = Item {
        id: random_id(),
        title: format!("Untitled {title_case} item"),
        category,
        version: 1,
        created_at: now.clone(),
        updated_at: now,
        last_edited_by: user_uuid(state, principal),
        ..Item::default()
    };
    if let Some(t) = &template {
        apply_template(&mut item, t)?;
    }
    apply(&mut item, ctx)?;
    let out = show(ctx, state, account, v, &item);
    if !ctx.args.bool("dry-run") {
        let vault = &mut state.accounts[account].vaults[v];
        vault.items.push(item);
        vault.content_version += 1;
    }
    Ok(out)
}

/// `op item edit <item> [--vault V] [assignments…] [--title …] [--template P]`.
pub fn edit(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    if ctx.args.positionals.is_empty() {
        return Err(OpError::new("accepts at least 1 arg(s), received 0"));
    }
    let principal = auth::authenticate(ctx, state).map_err(|e| e.for_command())?;
    let query = ctx.args.positionals[0].clone();
    let (v, i) = locate(ctx, state, principal, &query, include_archive(ctx))?;
    auth::charge(ctx, state, principal, Quota::Write, 1).map_err(|e| e.for_command())?;
    let account = principal.account();
    let mut item = state.accounts[account].vaults[v].items[i].clone();
    if let Some(t) = template(ctx)? {
        apply_template(&mut item, &t)?;
    }
    apply(&mut item, ctx)?;
    item.version += 1;
    item.updated_at = clock::rfc3339(ctx.now);
    item.last_edited_by = user_uuid(state, principal);
    let out = show(ctx, state, account, v, &item);
    if !ctx.args.bool("dry-run") {
        let vault = &mut state.accounts[account].vaults[v];
        vault.items[i] = item;
        vault.content_version += 1;
    }
    Ok(out)
}

/// `op item delete <item> [--vault V] [--archive]`.
pub fn delete(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    super::exact_args(ctx, 1)?;
    let principal = auth::authenticate(ctx, state).map_err(|e| e.for_command())?;
    let query = ctx.args.positionals[0].clone();
    let (v, i) = locate(ctx, state, principal, &query, false)?;
    auth::charge(ctx, state, principal, Quota::Write, 1).map_err(|e| e.for_command())?;
    let vault = &mut state.accounts[principal.account()].vaults[v];
    if ctx.args.bool("archive") {
        vault.items[i].archived = true;
    } else {
        vault.items.remove(i);
    }
    vault.content_version += 1;
    Ok(Outcome::default())
}

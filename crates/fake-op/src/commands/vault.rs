//! `op vault list` and `op vault get` (docs/op-behaviour.md §7.3).

use serde::Serialize;

use crate::auth::{self, Principal, Quota};
use crate::error::{self, OpError};
use crate::invocation::{Ctx, Outcome};
use crate::items;
use crate::render;
use crate::state::State;

#[derive(Serialize)]
struct VaultSummary {
    id: String,
    name: String,
    content_version: u64,
}

#[derive(Serialize)]
struct VaultOut {
    id: String,
    name: String,
    content_version: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    attribute_version: u64,
    items: usize,
    #[serde(rename = "type")]
    kind: String,
    created_at: String,
    updated_at: String,
}

/// `op vault list` (the op 2.30 shape: id, name, content_version).
pub fn list(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    super::exact_args(ctx, 0)?;
    let principal = auth::authenticate(ctx, state).map_err(|e| e.for_command())?;
    if matches!(principal, Principal::ServiceAccount { .. })
        && (ctx.args.has("user") || ctx.args.has("group"))
    {
        return Err(OpError::new(error::FORBIDDEN));
    }
    auth::charge(ctx, state, principal, Quota::Read, 1).map_err(|e| e.for_command())?;
    let account = &state.accounts[principal.account()];
    let vaults: Vec<VaultSummary> = auth::visible_vaults(state, principal)
        .into_iter()
        .map(|v| &account.vaults[v])
        .map(|v| VaultSummary {
            id: v.id.clone(),
            name: v.name.clone(),
            content_version: v.content_version,
        })
        .collect();
    if ctx.json {
        return Ok(Outcome::text(render::json(&vaults)));
    }
    let mut rows = vec![vec!["ID".to_string(), "NAME".to_string()]];
    rows.extend(vaults.into_iter().map(|v| vec![v.id, v.name]));
    Ok(Outcome::text(render::table(&rows)))
}

/// `op vault get <vault>`.
pub fn get(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    super::exact_args(ctx, 1)?;
    let principal = auth::authenticate(ctx, state).map_err(|e| e.for_command())?;
    auth::charge(ctx, state, principal, Quota::Read, 1).map_err(|e| e.for_command())?;
    let query = &ctx.args.positionals[0];
    let account = &state.accounts[principal.account()];
    let visible = auth::visible_vaults(state, principal);
    let v =
        items::find_vault(account, &visible, query).ok_or_else(|| items::vault_not_found(query))?;
    let vault = &account.vaults[v];
    let out = VaultOut {
        id: vault.id.clone(),
        name: vault.name.clone(),
        content_version: vault.content_version,
        description: vault.description.clone(),
        attribute_version: vault.attribute_version,
        items: vault.items.iter().filter(|i| !i.archived).count(),
        kind: vault.kind.clone(),
        created_at: vault.created_at.clone(),
        updated_at: vault.updated_at.clone(),
    };
    if ctx.json {
        return Ok(Outcome::text(render::json(&out)));
    }
    Ok(Outcome::text(render::pairs(
        "",
        &[
            ("ID".into(), out.id),
            ("Name".into(), out.name),
            ("Type".into(), out.kind),
            (
                "Attribute version".into(),
                out.attribute_version.to_string(),
            ),
            ("Content version".into(), out.content_version.to_string()),
            ("Items".into(), out.items.to_string()),
            (
                "Created".into(),
                render::when(&out.created_at, ctx.now, ctx.iso),
            ),
            (
                "Updated".into(),
                render::when(&out.updated_at, ctx.now, ctx.iso),
            ),
        ],
    )))
}

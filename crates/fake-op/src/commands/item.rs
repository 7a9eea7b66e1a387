//! `op item get/list/create/edit/delete` (docs/op-behaviour.md §7).

use crate::auth::{self, Principal, Quota};
use crate::clock;
use crate::encoding::{random_bytes, random_id};
use crate::error::OpError;
use crate::invocation::{Ctx, Outcome};
use crate::items;
use crate::render;
use crate::state::{Field, Item, ItemUrl, Section, State};

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

/// Apply assignments (and `--generate-password`) to an item.
fn apply(item: &mut Item, ctx: &Ctx) -> Result<(), OpError> {
    let assignments: Vec<Assignment> = ctx
        .args
        .positionals
        .iter()
        .skip(usize::from(ctx.args.command == "item edit"))
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

/// `op item create --category C [--title T] [--vault V] [assignments…]`.
pub fn create(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    let principal = auth::authenticate(ctx, state).map_err(|e| e.for_command())?;
    let category = ctx
        .args
        .value("category")
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
    apply(&mut item, ctx)?;
    let out = show(ctx, state, account, v, &item);
    if !ctx.args.bool("dry-run") {
        let vault = &mut state.accounts[account].vaults[v];
        vault.items.push(item);
        vault.content_version += 1;
    }
    Ok(out)
}

/// `op item edit <item> [--vault V] [assignments…] [--title …]`.
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

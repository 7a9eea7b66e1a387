//! Finding vaults and items the way op does, with op's lookup errors (docs/op-behaviour.md §7.4).
//!
//! Vaults match by ID or case-insensitive name. Items match by ID (archived ones included),
//! else by case-insensitive title, else by website domain; archived items only with
//! `--include-archive`. Several matches are an error listing every candidate.

use crate::encoding::is_id;
use crate::error::OpError;
use crate::state::{Account, Item, ItemUrl, strip_scheme};

/// `"X" isn't a vault in this account. Specify the vault with its ID or name.`
pub fn vault_not_found(query: &str) -> OpError {
    OpError::new(format!(
        "\"{query}\" isn't a vault in this account. Specify the vault with its ID or name."
    ))
}

/// Find a vault among the visible ones.
pub fn find_vault(account: &Account, visible: &[usize], query: &str) -> Option<usize> {
    visible
        .iter()
        .copied()
        .find(|&v| account.vaults[v].id == query)
        .or_else(|| {
            visible
                .iter()
                .copied()
                .find(|&v| account.vaults[v].name.eq_ignore_ascii_case(query))
        })
}

/// Why an item lookup failed.
#[derive(Debug)]
pub enum Lookup {
    /// Nothing matched.
    NotFound,
    /// Several matched: (vault index, item index) of each.
    Ambiguous(Vec<(usize, usize)>),
}

fn host_of(u: &ItemUrl) -> &str {
    strip_scheme(&u.href).split(['/', ':']).next().unwrap_or("")
}

/// Find an item in the given vaults.
pub fn find_item(
    account: &Account,
    vaults: &[usize],
    query: &str,
    include_archive: bool,
) -> Result<(usize, usize), Lookup> {
    let all = || {
        vaults.iter().flat_map(|&v| {
            account.vaults[v]
                .items
                .iter()
                .enumerate()
                .map(move |(i, item)| (v, i, item))
        })
    };
    if is_id(query)
        && let Some((v, i, _)) = all().find(|(_, _, item)| item.id == query)
    {
        return Ok((v, i));
    }
    let visible = |item: &&Item| include_archive || !item.archived;
    let pick = |hits: Vec<(usize, usize)>| match hits.len() {
        0 => Err(Lookup::NotFound),
        1 => Ok(hits[0]),
        _ => Err(Lookup::Ambiguous(hits)),
    };
    let by_title: Vec<_> = all()
        .filter(|(_, _, item)| visible(item) && item.title.eq_ignore_ascii_case(query))
        .map(|(v, i, _)| (v, i))
        .collect();
    if !by_title.is_empty() {
        return pick(by_title);
    }
    let by_domain: Vec<_> = all()
        .filter(|(_, _, item)| {
            visible(item)
                && item
                    .urls
                    .iter()
                    .any(|u| host_of(u).eq_ignore_ascii_case(query))
        })
        .map(|(v, i, _)| (v, i))
        .collect();
    pick(by_domain)
}

/// op's text for a failed item lookup; `vault_label` is the vault named by the caller, if any.
pub fn lookup_error(
    account: &Account,
    query: &str,
    vault_label: Option<&str>,
    e: Lookup,
) -> OpError {
    match e {
        Lookup::NotFound => match vault_label {
            Some(v) => OpError::new(format!(
                "\"{query}\" isn't an item in the \"{v}\" vault. Specify the item with its UUID, name, or domain."
            )),
            None => OpError::new(format!(
                "\"{query}\" isn't an item. Specify the item with its UUID, name, or domain."
            )),
        },
        Lookup::Ambiguous(hits) => {
            let mut msg = format!(
                "More than one item matches \"{query}\". Try again and specify the item by its ID: "
            );
            for (v, i) in hits {
                let vault = &account.vaults[v];
                let item = &vault.items[i];
                msg.push_str(&format!(
                    "\n\t* for the item \"{}\" in vault {}: {}",
                    item.title, vault.name, item.id
                ));
            }
            OpError::new(msg)
        }
    }
}

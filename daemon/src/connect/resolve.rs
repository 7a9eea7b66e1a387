//! Resolving `op://vault/item[/section]/field[?attribute=…]` over Connect's REST API.
//!
//! Called by [`crate::resolve`] for the cache misses of a connect session, so the value cache,
//! the coalescing of concurrent misses and the generation rules are the same as in the other
//! modes. Here: each distinct vault is looked up once (by ID, else `filter=name eq "…"`), then
//! each distinct item once and concurrently (by ID, else `filter=title eq "…"`, then the full
//! item), and every reference picks its field from the fetched item: by ID or label, within
//! the named section. Vault and item IDs are cached in the session's [`Link`] for the cache TTL.
//!
//! Error texts follow what `op read` prints for the same case (`could not read secret
//! '<ref>': …`, docs/connect.md "Errors"). Never logs a value.

use std::collections::HashMap;
use std::sync::Arc;

use op_session_protocol::{ErrorBody, ErrorCode};
use secrecy::{ExposeSecret, SecretString};
use secret_ref::pick::{FieldInfo, FileInfo, Pick, SectionInfo};
use secret_ref::reference::{SecretRef, is_id};

use super::client::{ConnectError, Item};
use super::{Link, api_error, item_key, vault_key};
use crate::session::Lease;
use crate::state::Daemon;

/// Why one vault, item or field could not be found.
#[derive(Debug)]
enum Miss {
    /// The request itself failed (auth, rate limit, unreachable, garbage).
    Api(Arc<ConnectError>),
    /// Found nothing, or too much: `op`'s words, without the `could not read secret` prefix.
    Lookup(String),
}

impl Clone for Miss {
    fn clone(&self) -> Self {
        match self {
            Miss::Api(e) => Miss::Api(e.clone()),
            Miss::Lookup(s) => Miss::Lookup(s.clone()),
        }
    }
}

/// A vault as resolution knows it: its ID and its name as the server spells it.
type Vault = (String, String);

/// Resolve `refs` (each distinct) for a connect session; one result per reference, in order.
pub(crate) async fn fetch(
    daemon: &Arc<Daemon>,
    lease: &Lease,
    link: &Arc<Link>,
    refs: &[&str],
) -> Vec<Result<SecretString, ErrorBody>> {
    let token = lease.secret_str();
    let now = daemon.clock.now();
    let parsed: Vec<Result<SecretRef, String>> = refs
        .iter()
        .map(|r| {
            secret_ref::reference::parse(r)
                .map_err(|e| format!("invalid secret reference '{r}': {e}"))
        })
        .collect();

    // Each distinct vault once.
    let mut vaults: HashMap<String, Result<Vault, Miss>> = HashMap::new();
    for r in parsed.iter().flatten() {
        let key = r.vault.to_ascii_lowercase();
        if let std::collections::hash_map::Entry::Vacant(slot) = vaults.entry(key) {
            slot.insert(find_vault(link, token, &r.vault, now).await);
        }
    }
    // Each distinct item once, all at the same time: its ID, then the item itself.
    let mut items: HashMap<(String, String), Result<Arc<Item>, Miss>> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut pending = std::collections::HashSet::new();
    for r in parsed.iter().flatten() {
        let Some(Ok(vault)) = vaults.get(&r.vault.to_ascii_lowercase()) else {
            continue;
        };
        let key = (vault.0.clone(), r.item.to_ascii_lowercase());
        if !pending.insert(key.clone()) {
            continue;
        }
        let (link, credential) = (link.clone(), lease.credential.token().cloned());
        let (vault, r) = (vault.clone(), r.clone());
        tasks.spawn(async move {
            let token = credential
                .as_ref()
                .map(|c| c.expose_secret().as_str())
                .unwrap_or("");
            (key, find_item(&link, token, &vault, &r, now).await)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((key, item)) => {
                items.insert(key, item);
            }
            // A panicked lookup leaves its references "not looked up" below: an error, not a
            // crash of the request.
            Err(e) => tracing::error!(error = %e, "a Connect item lookup task failed"),
        }
    }

    let mut out = Vec::with_capacity(refs.len());
    let mut ok = false;
    for (raw, parsed) in refs.iter().zip(&parsed) {
        let r = match parsed {
            Ok(r) => r,
            Err(msg) => {
                out.push(Err(op_failed(msg.clone())));
                continue;
            }
        };
        let found = match vaults.get(&r.vault.to_ascii_lowercase()) {
            Some(Ok(vault)) => match items.get(&(vault.0.clone(), r.item.to_ascii_lowercase())) {
                Some(Ok(item)) => pick(link, token, &vault.0, item, r).await,
                Some(Err(m)) => Err(m.clone()),
                None => Err(Miss::Lookup("the item could not be looked up".into())),
            },
            Some(Err(m)) => Err(m.clone()),
            None => Err(Miss::Lookup("the vault was not looked up".into())),
        };
        out.push(match found {
            Ok(v) => {
                ok = true;
                Ok(v)
            }
            Err(Miss::Lookup(m)) => Err(op_failed(format!("could not read secret '{raw}': {m}"))),
            Err(Miss::Api(e)) => match &*e {
                // 403 and unknown statuses read like op's (prefix, then "(403) Forbidden: …").
                ConnectError::Status { status, .. } if !matches!(status, 401 | 429 | 500..=599) => {
                    let mut b = api_error(daemon, lease, &e);
                    b.message = format!("could not read secret '{raw}': {}", b.message);
                    Err(b)
                }
                _ => Err(api_error(daemon, lease, &e)),
            },
        });
    }
    if ok {
        daemon
            .sessions
            .touch(&lease.name, lease.generation, daemon.clock.now());
    }
    out
}

fn op_failed(message: String) -> ErrorBody {
    let mut b = ErrorBody::new(ErrorCode::OpFailed, message);
    b.op_exit_code = Some(1);
    b
}

fn api(e: ConnectError) -> Miss {
    Miss::Api(Arc::new(e))
}

async fn find_vault(
    link: &Link,
    token: &str,
    segment: &str,
    now: std::time::Duration,
) -> Result<Vault, Miss> {
    if is_id(segment) {
        return Ok((segment.to_string(), segment.to_string()));
    }
    let key = vault_key(segment);
    if let Some(hit) = link.ids.get(&key, now) {
        return Ok(hit);
    }
    let listed = link
        .client
        .vaults(token, Some(segment))
        .await
        .map_err(api)?;
    // Filter again here: a server whose `eq` is case-sensitive, or that ignores the filter,
    // still gives op's case-insensitive match.
    let hits: Vec<_> = listed
        .into_iter()
        .filter(|v| v.name.eq_ignore_ascii_case(segment))
        .collect();
    match hits.as_slice() {
        [] => Err(Miss::Lookup(format!(
            "\"{segment}\" isn't a vault in this account"
        ))),
        [one] => {
            link.ids.put(key, &one.id, &one.name, now);
            Ok((one.id.clone(), one.name.clone()))
        }
        many => {
            let mut msg = format!(
                "More than one vault matches \"{segment}\". Try again and specify the vault by its ID: "
            );
            for v in many {
                msg.push_str(&format!("\n\t* for the vault \"{}\": {}", v.name, v.id));
            }
            Err(Miss::Lookup(msg))
        }
    }
}

fn item_missing(r: &SecretRef) -> Miss {
    Miss::Lookup(format!(
        "could not get item {v}/{i}: \"{i}\" isn't an item in the \"{v}\" vault. Specify the item with its UUID, name, or domain.",
        v = r.vault,
        i = r.item
    ))
}

async fn find_item(
    link: &Link,
    token: &str,
    vault: &Vault,
    r: &SecretRef,
    now: std::time::Duration,
) -> Result<Arc<Item>, Miss> {
    let (vault_id, vault_name) = vault;
    let key = item_key(vault_id, &r.item);
    let item_id = if is_id(&r.item) {
        r.item.clone()
    } else if let Some((id, _)) = link.ids.get(&key, now) {
        id
    } else {
        let listed = match link.client.items_titled(token, vault_id, &r.item).await {
            Ok(l) => l,
            Err(ConnectError::Status { status: 404, .. }) => {
                link.ids.forget(&vault_key(&r.vault));
                return Err(Miss::Lookup(format!(
                    "\"{}\" isn't a vault in this account",
                    r.vault
                )));
            }
            Err(e) => return Err(api(e)),
        };
        let hits: Vec<_> = listed
            .into_iter()
            .filter(|i| i.title.eq_ignore_ascii_case(&r.item))
            .collect();
        match hits.as_slice() {
            [] => return Err(item_missing(r)),
            [one] => {
                link.ids.put(key.clone(), &one.id, &one.title, now);
                one.id.clone()
            }
            many => {
                let mut msg = format!(
                    "More than one item matches \"{}\". Try again and specify the item by its ID: ",
                    r.item
                );
                for i in many {
                    msg.push_str(&format!(
                        "\n\t* for the item \"{}\" in vault {vault_name}: {}",
                        i.title, i.id
                    ));
                }
                return Err(Miss::Lookup(msg));
            }
        }
    };
    match link.client.item(token, vault_id, &item_id).await {
        Ok(item) => Ok(Arc::new(item)),
        Err(ConnectError::Status {
            status: 404,
            message,
            ..
        }) => {
            // Deleted or moved since its IDs were cached: forget both. Connect's 404 body says
            // which one it could not find ("vault … not found" / "item … not found").
            link.ids.forget(&key);
            link.ids.forget(&vault_key(&r.vault));
            if message.to_ascii_lowercase().starts_with("vault") {
                return Err(Miss::Lookup(format!(
                    "\"{}\" isn't a vault in this account",
                    r.vault
                )));
            }
            Err(item_missing(r))
        }
        Err(e) => Err(api(e)),
    }
}

/// Pick the field (or file) a reference names from its item, and the attribute asked for.
async fn pick(
    link: &Link,
    token: &str,
    vault_id: &str,
    item: &Item,
    r: &SecretRef,
) -> Result<SecretString, Miss> {
    // The API description spells the one-time password type `TOTP`, the Go SDK (and `op`)
    // `OTP` (docs/connect.md, "Items"); `op` reports it as `otp`.
    fn kind(f: &super::client::Field) -> &str {
        match f.kind.as_deref().unwrap_or("STRING") {
            "TOTP" => "OTP",
            k => k,
        }
    }
    let sections: Vec<SectionInfo> = item
        .sections
        .iter()
        .map(|s| SectionInfo {
            id: &s.id,
            label: s.label.as_deref().unwrap_or(""),
        })
        .collect();
    let fields: Vec<FieldInfo> = item
        .fields
        .iter()
        .map(|f| FieldInfo {
            id: &f.id,
            label: f.label.as_deref().unwrap_or(""),
            section: f.section.as_ref().map(|s| s.id.as_str()),
            kind: kind(f),
            purpose: f.purpose.as_deref().unwrap_or(""),
        })
        .collect();
    let files: Vec<FileInfo> = item
        .files
        .iter()
        .map(|f| FileInfo {
            id: &f.id,
            name: &f.name,
            section: f.section.as_ref().map(|s| s.id.as_str()),
        })
        .collect();
    // Which field or file, and what of it, is op's rule, shared with fake-op (secret_ref::pick).
    let picked = secret_ref::pick::pick(r, &sections, &fields, &files)
        .map_err(|e| Miss::Lookup(e.message(r)))?;
    if let Some(i) = picked.field()
        && r.ssh_format.is_some()
        && fields[i].kind == "SSHKEY"
    {
        return Err(Miss::Lookup(format!(
            "?ssh-format is not available in connect mode for field '{}': Connect does not convert keys",
            r.field
        )));
    }
    match picked {
        Pick::Value(i) => Ok(item.fields[i]
            .value
            .clone()
            .unwrap_or_else(|| SecretString::from(""))),
        Pick::Otp(i) => item.fields[i].totp.clone().ok_or_else(|| {
            Miss::Lookup(format!(
                "field '{}' has an invalid one-time password secret",
                r.field
            ))
        }),
        Pick::FieldText(_, text) | Pick::FileText(_, text) => Ok(SecretString::from(text)),
        Pick::Content(i) => {
            let file = &item.files[i];
            let bytes = link
                .client
                .file_content(token, vault_id, &item.id, &file.id)
                .await
                .map_err(api)?;
            let text = std::str::from_utf8(&bytes).map_err(|_| {
                Miss::Lookup(format!(
                    "file '{}' is not UTF-8 text; read it with `op document get` instead",
                    file.name
                ))
            })?;
            Ok(SecretString::from(text))
        }
        Pick::Size(i) => Ok(SecretString::from(
            item.files[i]
                .size
                .map(|s| s.to_string())
                .unwrap_or_default(),
        )),
    }
}

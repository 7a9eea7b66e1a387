//! Turning a terse fixture into a complete state.
//!
//! A fixture is a `State` document with most fields left out (README, "Fixture format").
//! `normalize` fills in what op would have: IDs derived from names (stable, so the README can
//! list them), built-in field IDs and purposes, section IDs for sections named by label,
//! default categories and timestamps, and `ops_` tokens for service accounts. It is idempotent,
//! so it can run on every load.

use crate::encoding::{base64url_encode, derived_id, derived_uuid, sha1};
use crate::state::{Account, Field, ServiceAccount, State, strip_scheme};

/// The timestamp fixtures get when they give none.
const DEFAULT_TIME: &str = "2024-01-15T09:30:00Z";

/// Parse a fixture (or a saved state) and fill in the gaps.
pub fn load(json: &str) -> Result<State, String> {
    let mut state: State = serde_json::from_str(json).map_err(|e| e.to_string())?;
    normalize(&mut state);
    Ok(state)
}

/// Fill in everything a fixture may leave out. Idempotent.
pub fn normalize(state: &mut State) {
    for account in &mut state.accounts {
        normalize_account(account);
    }
    let first = state.accounts.first().map(Account::label);
    for sa in &mut state.service_accounts {
        if sa.account.is_none() {
            sa.account = first.clone();
        }
        let address = sa
            .account
            .as_deref()
            .and_then(|a| {
                state
                    .accounts
                    .iter()
                    .find(|acc| crate::auth::account_matches(acc, a))
            })
            .map(|acc| acc.https_url())
            .unwrap_or_else(|| "https://my.1password.com".to_string());
        normalize_service_account(sa, &address);
    }
}

fn normalize_account(account: &mut Account) {
    if account.url.is_empty() {
        account.url = "my.1password.com".to_string();
    }
    let host = strip_scheme(&account.url).to_string();
    if account.email.is_empty() {
        account.email = format!("user@{host}");
    }
    if account.user_uuid.is_empty() {
        account.user_uuid = derived_uuid(&format!("user:{host}:{}", account.email));
    }
    if account.account_uuid.is_empty() {
        account.account_uuid = derived_uuid(&format!("account:{host}"));
    }
    if account.shorthand.is_none() && !account.app_integration {
        account.shorthand = host.split('.').next().map(str::to_string);
    }
    if account.name.is_empty() {
        account.name = host.split('.').next().unwrap_or("1Password").to_string();
    }
    let editor = account.user_uuid.clone();
    for vault in &mut account.vaults {
        if vault.id.is_empty() {
            vault.id = derived_id(&format!("vault:{}:{}", account.account_uuid, vault.name));
        }
        if vault.kind.is_empty() {
            vault.kind = if vault.is_personal() {
                "PERSONAL"
            } else {
                "USER_CREATED"
            }
            .to_string();
        }
        default_time(&mut vault.created_at);
        default_time(&mut vault.updated_at);
        if vault.attribute_version == 0 {
            vault.attribute_version = 1;
        }
        if vault.content_version == 0 {
            vault.content_version = vault.items.len() as u64 + 1;
        }
        for (index, item) in vault.items.iter_mut().enumerate() {
            if item.id.is_empty() {
                item.id = derived_id(&format!("item:{}:{}:{index}", vault.id, item.title));
            }
            item.category = if item.category.is_empty() {
                "LOGIN".to_string()
            } else {
                item.category.to_uppercase().replace(' ', "_")
            };
            if item.version == 0 {
                item.version = 1;
            }
            default_time(&mut item.created_at);
            if item.updated_at.is_empty() {
                item.updated_at = item.created_at.clone();
            }
            if item.last_edited_by.is_empty() {
                item.last_edited_by = editor.clone();
            }
            let item_id = item.id.clone();
            for section in &mut item.sections {
                if section.id.is_empty() {
                    section.id = format!(
                        "Section_{}",
                        derived_id(&format!("{item_id}:{}", section.label))
                    );
                }
            }
            for (fi, field) in item.fields.iter_mut().enumerate() {
                normalize_field(field, &item_id, fi, &mut item.sections);
            }
            for file in &mut item.files {
                if file.id.is_empty() {
                    file.id = derived_id(&format!("file:{item_id}:{}", file.name));
                }
            }
        }
    }
}

fn normalize_field(
    field: &mut Field,
    item_id: &str,
    index: usize,
    sections: &mut Vec<crate::state::Section>,
) {
    field.kind = if field.kind.is_empty() {
        "STRING".to_string()
    } else {
        field.kind.to_uppercase()
    };
    if let Some(s) = field.section.clone() {
        let id = match sections
            .iter()
            .find(|x| x.id == s)
            .or_else(|| sections.iter().find(|x| x.label == s))
        {
            Some(found) => found.id.clone(),
            None => {
                let id = format!("Section_{}", derived_id(&format!("{item_id}:{s}")));
                sections.push(crate::state::Section {
                    id: id.clone(),
                    label: s,
                });
                id
            }
        };
        field.section = Some(id);
    }
    let builtin = field.section.is_none()
        && matches!(field.label.as_str(), "username" | "password" | "notesPlain");
    if field.id.is_empty() {
        field.id = if builtin {
            field.label.clone()
        } else {
            derived_id(&format!("field:{item_id}:{index}:{}", field.label))
        };
    }
    if field.purpose.is_none() {
        field.purpose = match field.id.as_str() {
            "username" => Some("USERNAME".to_string()),
            "password" => Some("PASSWORD".to_string()),
            "notesPlain" => Some("NOTES".to_string()),
            _ => None,
        };
    }
    if field.label.is_empty() {
        field.label = field.id.clone();
    }
}

fn default_time(s: &mut String) {
    if s.is_empty() {
        *s = DEFAULT_TIME.to_string();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn normalize_service_account(sa: &mut ServiceAccount, address: &str) {
    if sa.name.is_empty() {
        sa.name = "service account".to_string();
    }
    if sa.email.is_empty() {
        let slug = derived_id(&format!("sa:{}", sa.name));
        sa.email = format!("{}@1passwordserviceaccounts.com", &slug[..13]);
    }
    if sa.user_uuid.is_empty() {
        sa.user_uuid = derived_uuid(&format!("sa-user:{}", sa.email));
    }
    if sa.token.is_empty() {
        sa.token = build_token(address, &sa.email);
    }
}

/// An `ops_` token with the key set docs/op-behaviour.md §6 decoded from a real (revoked) one, derived
/// deterministically from the sign-in address and email.
pub fn build_token(address: &str, email: &str) -> String {
    let seed = |tag: &str| sha1(format!("{tag}:{email}").as_bytes());
    let salt = base64url_encode(&seed("salt")[..16]);
    let k = base64url_encode(&[seed("k1"), seed("k2")].concat()[..32]);
    let srp_x = hex(&[seed("x1"), seed("x2")].concat()[..32]);
    let secret_key = derived_uuid(&format!("secret:{email}"));
    let device = derived_id(&format!("device:{email}"));
    let throttle_uuid = derived_id(&format!("throttle:{email}"));
    let json = format!(
        concat!(
            r#"{{"signInAddress":"{address}","userAuth":{{"method":"SRPg-4096","alg":"PBES2g-HS256","iterations":650000,"salt":"{salt}"}},"#,
            r#""email":"{email}","srpX":"{srp_x}","muk":{{"alg":"A256GCM","ext":true,"k":"{k}","key_ops":["decrypt","encrypt"],"kty":"oct","kid":"mp"}},"#,
            r#""secretKey":"A3-{sk1}-{sk2}-{sk3}-{sk4}-{sk5}-{sk6}","throttleSecret":{{"seed":"{seed}","uuid":"{throttle_uuid}"}},"deviceUuid":"{device}"}}"#
        ),
        address = address,
        salt = salt,
        email = email,
        srp_x = srp_x,
        k = k,
        sk1 = &secret_key[0..6],
        sk2 = &secret_key[6..12],
        sk3 = &secret_key[12..17],
        sk4 = &secret_key[17..22],
        sk5 = &secret_key[22..26],
        sk6 = &secret_key[0..5],
        seed = hex(&seed("throttle")[..16]),
        throttle_uuid = throttle_uuid,
        device = device,
    );
    format!("ops_{}", base64url_encode(json.as_bytes()))
}

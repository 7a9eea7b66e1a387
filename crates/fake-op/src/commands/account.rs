//! `op whoami`, `op account list`, `op account forget` (docs/op-behaviour.md §1.5–§1.7).

use serde::Serialize;

use crate::auth::{self, Principal};
use crate::error::OpError;
use crate::invocation::{Ctx, Outcome};
use crate::render;
use crate::state::State;

#[derive(Serialize)]
struct WhoamiOut {
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    user_uuid: String,
    account_uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_type: Option<String>,
}

/// `op whoami`: never prompts; see `auth::whoami_principal`.
pub fn whoami(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    super::exact_args(ctx, 0)?;
    let principal = auth::whoami_principal(ctx, state).map_err(|e| e.for_command())?;
    let account = &state.accounts[principal.account()];
    let slash = if state.quirks.whoami_url_trailing_slash {
        "/"
    } else {
        ""
    };
    let out = match principal {
        Principal::Person { .. } => WhoamiOut {
            url: format!("{}{slash}", account.https_url()),
            email: Some(account.email.clone()),
            user_uuid: account.user_uuid.clone(),
            account_uuid: account.account_uuid.clone(),
            user_type: state.quirks.whoami_user_type.clone(),
        },
        Principal::ServiceAccount { sa, .. } => WhoamiOut {
            url: format!("{}{slash}", account.https_url()),
            email: None,
            user_uuid: state.service_accounts[sa].user_uuid.clone(),
            account_uuid: account.account_uuid.clone(),
            user_type: Some("SERVICE_ACCOUNT".to_string()),
        },
    };
    if ctx.json {
        return Ok(Outcome::text(render::json(&out)));
    }
    let mut rows = vec![("URL".to_string(), out.url)];
    if let Some(email) = out.email {
        rows.push(("Email".to_string(), email));
    }
    rows.push(("User ID".to_string(), out.user_uuid));
    if let Some(t) = out.user_type {
        rows.push(("User Type".to_string(), t));
    }
    Ok(Outcome::text(render::pairs("", &rows)))
}

#[derive(Serialize)]
struct AccountOut {
    url: String,
    email: String,
    user_uuid: String,
    account_uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    shorthand: Option<String>,
}

/// `op account list`: accounts on this device; app-integrated ones have no shorthand.
pub fn list(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    super::exact_args(ctx, 0)?;
    let accounts: Vec<AccountOut> = state
        .accounts
        .iter()
        .filter(|a| !a.forgotten)
        .map(|a| AccountOut {
            url: a.url.clone(),
            email: a.email.clone(),
            user_uuid: a.user_uuid.clone(),
            account_uuid: a.account_uuid.clone(),
            shorthand: if a.app_integration {
                None
            } else {
                a.shorthand.clone()
            },
        })
        .collect();
    if ctx.json {
        return Ok(Outcome::text(render::json(&accounts)));
    }
    if accounts.is_empty() {
        return Ok(Outcome::default());
    }
    let manual = accounts.iter().any(|a| a.shorthand.is_some());
    let mut rows = vec![
        if manual {
            vec!["SHORTHAND", "URL", "EMAIL", "USER UUID"]
        } else {
            vec!["URL", "EMAIL", "USER ID"]
        }
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>(),
    ];
    for a in accounts {
        let mut row = Vec::new();
        if manual {
            row.push(a.shorthand.unwrap_or_default());
        }
        row.extend([a.url, a.email, a.user_uuid]);
        rows.push(row);
    }
    Ok(Outcome::text(render::table(&rows)))
}

/// `op account forget [account] [--all]`.
pub fn forget(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    super::max_args(ctx, 1)?;
    let targets: Vec<usize> = if ctx.args.bool("all") {
        (0..state.accounts.len()).collect()
    } else {
        let filter = ctx
            .args
            .positionals
            .first()
            .cloned()
            .or_else(|| auth::account_filter(ctx))
            .unwrap_or_default();
        let i = state
            .accounts
            .iter()
            .position(|a| !a.forgotten && auth::account_matches(a, &filter))
            .ok_or_else(|| OpError::new(format!("no account found for filter {filter}")))?;
        vec![i]
    };
    for i in targets {
        let uuid = state.accounts[i].user_uuid.clone();
        state.accounts[i].forgotten = true;
        state.sessions.retain(|s| s.user_uuid != uuid);
        if state.latest_signin.as_deref() == Some(uuid.as_str()) {
            state.latest_signin = None;
        }
    }
    Ok(Outcome::default())
}

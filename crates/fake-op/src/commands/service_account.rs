//! `op service-account ratelimit [name|id]` (docs/op-behaviour.md §6): the hourly token windows and the
//! daily account window. Uses no quota.

use serde::Serialize;

use crate::auth::{self, DEFAULT_DAILY_LIMIT, DEFAULT_READ_LIMIT, DEFAULT_WRITE_LIMIT};
use crate::clock::{HOUR_MS, retry_in};
use crate::error::OpError;
use crate::invocation::{Ctx, Outcome};
use crate::render;
use crate::state::{State, Window};

#[derive(Serialize)]
struct Row {
    #[serde(rename = "type")]
    kind: &'static str,
    action: &'static str,
    limit: u64,
    used: u64,
    remaining: u64,
    reset: String,
}

fn row(
    kind: &'static str,
    action: &'static str,
    limit: u64,
    w: &Window,
    length: i64,
    now: i64,
) -> Row {
    let live = w.start_ms.filter(|s| now - s < length);
    let used = if live.is_some() { w.used } else { 0 };
    Row {
        kind,
        action,
        limit,
        used,
        remaining: limit.saturating_sub(used),
        reset: match live {
            Some(s) => format!("{} from now", retry_in(s + length - now)),
            None => "N/A".to_string(),
        },
    }
}

/// `op service-account ratelimit`.
pub fn ratelimit(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    super::max_args(ctx, 1)?;
    let sa = match auth::sa_token(ctx) {
        Some(token) => auth::find_service_account(state, token).map_err(|e| e.for_command())?,
        None => {
            let principal = auth::authenticate(ctx, state).map_err(|e| e.for_command())?;
            let name = ctx
                .args
                .positionals
                .first()
                .ok_or_else(|| OpError::new("specify the service account by its name or ID"))?;
            let account = &state.accounts[principal.account()];
            state
                .service_accounts
                .iter()
                .position(|s| {
                    (s.name.eq_ignore_ascii_case(name) || s.user_uuid == *name)
                        && s.account
                            .as_deref()
                            .is_some_and(|a| auth::account_matches(account, a))
                })
                .ok_or_else(|| {
                    OpError::new(format!(
                        "\"{name}\" isn't a service account in this account. Specify the service account with its name or ID."
                    ))
                })?
        }
    };
    let s = &state.service_accounts[sa];
    let account = s
        .account
        .as_deref()
        .and_then(|f| state.accounts.iter().find(|a| auth::account_matches(a, f)));
    let now = ctx.now;
    let mut rows = vec![
        row(
            "token",
            "write",
            s.write_limit.unwrap_or(DEFAULT_WRITE_LIMIT),
            &s.writes,
            HOUR_MS,
            now,
        ),
        row(
            "token",
            "read",
            s.read_limit.unwrap_or(DEFAULT_READ_LIMIT),
            &s.reads,
            HOUR_MS,
            now,
        ),
    ];
    if let Some(a) = account {
        rows.push(row(
            "account",
            "read_write",
            a.daily_limit.unwrap_or(DEFAULT_DAILY_LIMIT),
            &a.daily_usage,
            24 * HOUR_MS,
            now,
        ));
    }
    if ctx.json {
        return Ok(Outcome::text(render::json(&rows)));
    }
    let mut table = vec![
        ["TYPE", "ACTION", "LIMIT", "USED", "REMAINING", "RESET"]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    ];
    for r in rows {
        table.push(vec![
            r.kind.to_string(),
            r.action.to_string(),
            r.limit.to_string(),
            r.used.to_string(),
            r.remaining.to_string(),
            r.reset,
        ]);
    }
    Ok(Outcome::text(render::table(&table)))
}

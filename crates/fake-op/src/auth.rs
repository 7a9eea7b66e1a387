//! Who is calling, and may they: account selection, token-mode sessions, app-integration
//! authorizations, service-account tokens and their rate limits (docs/op-behaviour.md §1, §2, §6).
//!
//! Every function here works on the locked state and the simulated clock in `Ctx`. Mode
//! choice, in op's order: Connect variables (rejected: not simulated), then
//! `OP_SERVICE_ACCOUNT_TOKEN`, then the selected account's mode (app integration unless
//! `OP_BIOMETRIC_UNLOCK_ENABLED=false`, else token).

use crate::clock::{HOUR_MS, MINUTE_MS, retry_in};
use crate::encoding::base64url_decode;
use crate::error::{self, AuthError};
use crate::invocation::Ctx;
use crate::state::{Account, Answer, Authorization, State, Window, strip_scheme};

/// Token sessions die this long after their last successful use.
pub const TOKEN_IDLE_MS: i64 = 30 * MINUTE_MS;
/// App authorizations die this long after their last use…
pub const APP_IDLE_MS: i64 = 10 * MINUTE_MS;
/// …and this long after they were granted, whatever happens.
pub const APP_MAX_MS: i64 = 12 * HOUR_MS;
/// A service account's hourly read limit unless the fixture sets one.
pub const DEFAULT_READ_LIMIT: u64 = 1000;
/// A service account's hourly write limit unless the fixture sets one.
pub const DEFAULT_WRITE_LIMIT: u64 = 100;
/// Requests per day per account (all service accounts) unless the fixture sets one.
pub const DEFAULT_DAILY_LIMIT: u64 = 1000;

/// How a person's account authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `op signin` hands out a token for `OP_SESSION_<uuid>`.
    Token,
    /// The desktop app authorizes each session credential.
    App,
}

/// An authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// A person, by account index.
    Person { account: usize, mode: Mode },
    /// A service account, by index, acting in the account at `account`.
    ServiceAccount { sa: usize, account: usize },
}

impl Principal {
    /// Index of the account whose vaults are in play.
    pub fn account(&self) -> usize {
        match *self {
            Principal::Person { account, .. } | Principal::ServiceAccount { account, .. } => {
                account
            }
        }
    }
}

/// True when `filter` names `account` the way `--account` accepts: shorthand, sign-in
/// address with or without `https://`, account UUID or user UUID (docs/op-behaviour.md §1.4).
pub fn account_matches(account: &Account, filter: &str) -> bool {
    let f = filter.trim();
    account
        .shorthand
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case(f))
        || strip_scheme(f).eq_ignore_ascii_case(account.host())
        || account.account_uuid.eq_ignore_ascii_case(f)
        || account.user_uuid.eq_ignore_ascii_case(f)
}

/// `--account`, else `OP_ACCOUNT`.
pub fn account_filter(ctx: &Ctx) -> Option<String> {
    ctx.args
        .value("account")
        .map(str::to_string)
        .or_else(|| ctx.env.get("OP_ACCOUNT").cloned())
        .filter(|s| !s.is_empty())
}

/// The account a command acts on (docs/op-behaviour.md §1.4): the filter; else the account of a live
/// `--session` token; else the latest sign-in; else the first account with an
/// `OP_SESSION_<uuid>` variable set; else the first account.
pub fn select_account(ctx: &Ctx, state: &State) -> Result<usize, AuthError> {
    let live = |i: &usize| !state.accounts[*i].forgotten;
    let all = || (0..state.accounts.len()).filter(live);
    if let Some(filter) = account_filter(ctx) {
        return all()
            .find(|&i| account_matches(&state.accounts[i], &filter))
            .ok_or_else(|| AuthError::Account(format!("no account found for filter {filter}")));
    }
    if let Some(token) = ctx.args.value("session")
        && let Some(s) = state.sessions.iter().find(|s| s.token == token)
        && let Some(i) = all().find(|&i| state.accounts[i].user_uuid == s.user_uuid)
    {
        return Ok(i);
    }
    if let Some(latest) = &state.latest_signin
        && let Some(i) = all().find(|&i| &state.accounts[i].user_uuid == latest)
    {
        return Ok(i);
    }
    all()
        .find(|&i| session_var(ctx, &state.accounts[i]).is_some())
        .or_else(|| all().next())
        .ok_or_else(|| AuthError::Account("no account found for filter ".to_string()))
}

/// The token offered for an account: `--session`, else `OP_SESSION_<user_uuid>`.
fn session_var(ctx: &Ctx, account: &Account) -> Option<String> {
    ctx.args.value("session").map(str::to_string).or_else(|| {
        ctx.env
            .get(&format!("OP_SESSION_{}", account.user_uuid))
            .cloned()
    })
}

/// The account's mode, honouring `OP_BIOMETRIC_UNLOCK_ENABLED=false`.
pub fn mode_of(ctx: &Ctx, account: &Account) -> Mode {
    let disabled = ctx
        .env
        .get("OP_BIOMETRIC_UNLOCK_ENABLED")
        .is_some_and(|v| crate::args::parse_bool(v) == Some(false));
    if account.app_integration && !disabled {
        Mode::App
    } else {
        Mode::Token
    }
}

/// Connect variables are rejected outright: fake-op does not simulate a Connect server, and
/// silently falling back to another mode would make tests pass that real op would fail.
fn reject_connect(ctx: &Ctx) -> Result<(), AuthError> {
    let set = |k: &str| ctx.env.get(k).is_some_and(|v| !v.is_empty());
    if set("OP_CONNECT_HOST") && set("OP_CONNECT_TOKEN") {
        return Err(AuthError::Account(
            "fake-op does not simulate 1Password Connect: unset OP_CONNECT_HOST and OP_CONNECT_TOKEN".to_string(),
        ));
    }
    Ok(())
}

/// The service-account token, when one is set.
pub fn sa_token(ctx: &Ctx) -> Option<&str> {
    ctx.env
        .get("OP_SERVICE_ACCOUNT_TOKEN")
        .map(String::as_str)
        .filter(|t| !t.is_empty())
}

/// Authenticate a command that needs the server (everything but whoami, signin, signout,
/// account list). May prompt (app mode), refreshes idle timers, and completes a service
/// account's authentication.
pub fn authenticate(ctx: &Ctx, state: &mut State) -> Result<Principal, AuthError> {
    let result = authenticate_inner(ctx, state);
    if matches!(result, Err(AuthError::Token(_) | AuthError::Client(_))) {
        state.counters.auth_failures += 1;
    }
    result
}

fn authenticate_inner(ctx: &Ctx, state: &mut State) -> Result<Principal, AuthError> {
    reject_connect(ctx)?;
    if let Some(token) = sa_token(ctx) {
        let sa = find_service_account(state, token)?;
        state.service_accounts[sa].authenticated = true;
        let account = sa_account(state, sa)?;
        return Ok(Principal::ServiceAccount { sa, account });
    }
    let account = select_account(ctx, state)?;
    match mode_of(ctx, &state.accounts[account]) {
        Mode::Token => {
            check_token(ctx, state, account, true)?;
            Ok(Principal::Person {
                account,
                mode: Mode::Token,
            })
        }
        Mode::App => {
            authorize_app(ctx, state, account)?;
            Ok(Principal::Person {
                account,
                mode: Mode::App,
            })
        }
    }
}

/// Check (and on success refresh) the token for `account`. `explicit_missing` picks the
/// wording when no token is offered: `could not find session token for account <filter>` if
/// the caller named the account, else the generic not-signed-in text.
pub fn check_token(
    ctx: &Ctx,
    state: &mut State,
    account: usize,
    refresh: bool,
) -> Result<(), AuthError> {
    let acct = &state.accounts[account];
    let Some(token) = session_var(ctx, acct) else {
        return Err(AuthError::Token(match account_filter(ctx) {
            Some(filter) => format!("could not find session token for account {filter}"),
            None => error::NOT_SIGNED_IN.to_string(),
        }));
    };
    let now = ctx.now;
    let uuid = acct.user_uuid.clone();
    state
        .sessions
        .retain(|s| now - s.last_used_ms < TOKEN_IDLE_MS);
    match state
        .sessions
        .iter_mut()
        .find(|s| s.token == token && s.user_uuid == uuid)
    {
        Some(s) => {
            if refresh {
                s.last_used_ms = now;
            }
            Ok(())
        }
        None => Err(AuthError::Token(error::NOT_SIGNED_IN.to_string())),
    }
}

/// A live authorization for this credential and account, refreshed; `None` if there is none.
pub fn live_authorization(ctx: &Ctx, state: &mut State, account: usize) -> bool {
    let now = ctx.now;
    state
        .authorizations
        .retain(|a| now - a.last_used_ms < APP_IDLE_MS && now - a.granted_ms < APP_MAX_MS);
    if state.app.locked {
        return false;
    }
    let uuid = &state.accounts[account].user_uuid;
    match state
        .authorizations
        .iter_mut()
        .find(|a| a.credential == ctx.credential && &a.user_uuid == uuid)
    {
        Some(a) => {
            a.last_used_ms = now;
            true
        }
        None => false,
    }
}

/// Make sure this session credential is authorized for `account`, prompting if it is not.
pub fn authorize_app(ctx: &Ctx, state: &mut State, account: usize) -> Result<(), AuthError> {
    if !state.app.running {
        return Err(AuthError::Client(error::APP_UNREACHABLE.to_string()));
    }
    if live_authorization(ctx, state, account) {
        return Ok(());
    }
    state.counters.biometric_prompts += 1;
    let answer = if state.prompt.next.is_empty() {
        state.prompt.default
    } else {
        state.prompt.next.remove(0)
    };
    if state.prompt.delay_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(state.prompt.delay_ms));
    }
    match answer {
        Answer::Approve => {
            state.app.locked = false;
            state.authorizations.push(Authorization {
                credential: ctx.credential.clone(),
                user_uuid: state.accounts[account].user_uuid.clone(),
                granted_ms: ctx.now,
                last_used_ms: ctx.now,
            });
            Ok(())
        }
        Answer::Deny => {
            state.counters.prompts_denied += 1;
            Err(AuthError::Client(error::PROMPT_DISMISSED.to_string()))
        }
        Answer::Timeout => {
            state.counters.prompts_timed_out += 1;
            Err(AuthError::Client(error::PROMPT_TIMEOUT.to_string()))
        }
    }
}

/// Decode an `ops_` token and find its service account (docs/op-behaviour.md §6 errors).
pub fn find_service_account(state: &State, token: &str) -> Result<usize, AuthError> {
    let Some(body) = token.strip_prefix("ops_") else {
        return Err(AuthError::Client(error::SA_UNRECOGNIZED.to_string()));
    };
    let decode_error = |detail: String| {
        AuthError::Client(format!(
            "Validation: (failed to session.DecodeSACredentials), Server: (failed to DecodeSACredentials), {detail}"
        ))
    };
    let bytes = base64url_decode(body).map_err(decode_error)?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| decode_error(e.to_string()))?;
    let email = json
        .get("email")
        .and_then(|e| e.as_str())
        .ok_or_else(|| decode_error("missing email".to_string()))?;
    let found = state
        .service_accounts
        .iter()
        .position(|s| s.token == token)
        .or_else(|| {
            state
                .service_accounts
                .iter()
                .position(|s| s.email.eq_ignore_ascii_case(email))
        });
    match found {
        Some(i) if !state.service_accounts[i].revoked => Ok(i),
        _ => Err(AuthError::Client(error::SA_DELETED.to_string())),
    }
}

fn sa_account(state: &State, sa: usize) -> Result<usize, AuthError> {
    let filter = state.service_accounts[sa]
        .account
        .clone()
        .unwrap_or_default();
    state
        .accounts
        .iter()
        .position(|a| account_matches(a, &filter))
        .ok_or_else(|| AuthError::Client(error::SA_DELETED.to_string()))
}

/// Which rate-limit window a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Hourly reads.
    Read,
    /// Hourly writes.
    Write,
}

fn roll(window: &mut Window, now: i64, length: i64) {
    if window.start_ms.is_none_or(|s| now - s >= length) {
        window.start_ms = None;
        window.used = 0;
    }
}

/// Count `n` requests of a service account against its hourly and its account's daily quota;
/// refuse with op's 429 texts when either would be exceeded. People are never limited here.
pub fn charge(
    ctx: &Ctx,
    state: &mut State,
    principal: Principal,
    quota: Quota,
    n: u64,
) -> Result<(), AuthError> {
    let Principal::ServiceAccount { sa, account } = principal else {
        return Ok(());
    };
    if n == 0 {
        return Ok(());
    }
    let now = ctx.now;
    let daily_limit = state.accounts[account]
        .daily_limit
        .unwrap_or(DEFAULT_DAILY_LIMIT);
    let daily = &mut state.accounts[account].daily_usage;
    roll(daily, now, 24 * HOUR_MS);
    if daily.used + n > daily_limit {
        let reset = daily.start_ms.unwrap_or(now) + 24 * HOUR_MS - now;
        state.counters.rate_limited += 1;
        return Err(AuthError::Plain(format!(
            "(429) Too Many Requests: You've reached the maximum number of this type of requests this 1Password account is allowed to make. Please retry in {} or try other requests.",
            retry_in(reset)
        )));
    }
    let account_entry = &mut state.service_accounts[sa];
    let (window, limit) = match quota {
        Quota::Read => (
            &mut account_entry.reads,
            account_entry.read_limit.unwrap_or(DEFAULT_READ_LIMIT),
        ),
        Quota::Write => (
            &mut account_entry.writes,
            account_entry.write_limit.unwrap_or(DEFAULT_WRITE_LIMIT),
        ),
    };
    roll(window, now, HOUR_MS);
    if window.used + n > limit {
        let reset = window.start_ms.unwrap_or(now) + HOUR_MS - now;
        state.counters.rate_limited += 1;
        return Err(AuthError::Plain(format!(
            "(429) Too Many Requests: You've reached the maximum number of this type of requests this service account is allowed to make. Please retry in {} or try other requests.",
            retry_in(reset)
        )));
    }
    window.start_ms.get_or_insert(now);
    window.used += n;
    let name = account_entry.name.clone();
    let daily = &mut state.accounts[account].daily_usage;
    daily.start_ms.get_or_insert(now);
    daily.used += n;
    let per = state.counters.per_service_account.entry(name).or_default();
    match quota {
        Quota::Read => {
            per.reads += n;
            state.counters.service_account_reads += n;
        }
        Quota::Write => {
            per.writes += n;
            state.counters.service_account_writes += n;
        }
    }
    Ok(())
}

/// Vaults the principal can see: all of a person's; a service account's granted ones, never
/// Personal/Private/Employee.
pub fn visible_vaults(state: &State, principal: Principal) -> Vec<usize> {
    let account = &state.accounts[principal.account()];
    (0..account.vaults.len())
        .filter(|&v| match principal {
            Principal::Person { .. } => true,
            Principal::ServiceAccount { sa, .. } => {
                let vault = &account.vaults[v];
                !vault.is_personal()
                    && state.service_accounts[sa]
                        .vaults
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(&vault.name) || n == &vault.id)
            }
        })
        .collect()
}

/// How `op whoami` decides (docs/op-behaviour.md §1.7): never prompts; a person needs a live session or
/// authorization; a service account must have run another command first.
pub fn whoami_principal(ctx: &Ctx, state: &mut State) -> Result<Principal, AuthError> {
    reject_connect(ctx)?;
    if let Some(token) = sa_token(ctx) {
        let sa = find_service_account(state, token)?;
        if !state.service_accounts[sa].authenticated {
            return Err(AuthError::Account(error::SA_NOT_AUTHENTICATED.to_string()));
        }
        let account = sa_account(state, sa)?;
        return Ok(Principal::ServiceAccount { sa, account });
    }
    let not_signed_in = || AuthError::Account(error::ACCOUNT_NOT_SIGNED_IN.to_string());
    let account = match select_account(ctx, state) {
        Ok(a) => a,
        Err(e) if account_filter(ctx).is_some() => return Err(e),
        Err(_) => return Err(not_signed_in()),
    };
    let mode = mode_of(ctx, &state.accounts[account]);
    let ok = match mode {
        Mode::Token => check_token(ctx, state, account, true).is_ok(),
        Mode::App => state.app.running && live_authorization(ctx, state, account),
    };
    if ok {
        Ok(Principal::Person { account, mode })
    } else {
        Err(not_signed_in())
    }
}

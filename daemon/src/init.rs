//! Signing a session in, in each mode: token (the token `op signin` printed in the person's
//! terminal, verified with `op whoami`), app (the daemon's own process signed in through the
//! desktop app, confirmed with a call that triggers authorization, coalesced so a fan-out of
//! agents raises one prompt), service account (a token piped in or handed over by systemd
//! credentials) and Connect (dispatched to [`crate::connect`]).
//!
//! A verified session is handed to [`crate::lifecycle::start`]; nothing here keeps a session
//! itself. Tokens stay in [`SecretToken`]; a failed sign-in's stderr is scrubbed of them.
//! Never logs a token.

use std::sync::Arc;

use op_grammar::OpCall;
use op_session_protocol::{InitRequest, Mode, SessionStatus};
use secrecy::ExposeSecret;
use tracing::{info, warn};

use crate::error::{Detail, Error};
use crate::lifecycle::{self, new_session};
use crate::oprun::{Auth, OpOutput};
use crate::scrub::{Failure, classify, scrub, to_error};
use crate::securemem::{SecretToken, secret_token};
use crate::session::{Account, Credential, Identity, Lease, NewSession, unnamed_session};
use crate::state::Daemon;

/// The systemd credential name for a service-account token.
pub(crate) const SA_CREDENTIAL: &str = "op-service-account-token";

/// Handle `init`.
pub(crate) async fn init(daemon: &Arc<Daemon>, req: InitRequest) -> Result<SessionStatus, Error> {
    match req.mode {
        Some(Mode::Token) => init_token(daemon, req).await,
        Some(Mode::ServiceAccount) => {
            let token = match &req.token {
                Some(t) => secret_token(t.expose_secret().trim().as_bytes())
                    .map_err(|e| Error::internal(e.to_string()))?,
                None => credential_token().ok_or_else(|| {
                    Error::bad_request("no service-account token was given")
                        .with_fix("pipe it in: op-session init --mode service-account < token-file")
                })?,
            };
            init_service_account(daemon, &req, token).await
        }
        Some(Mode::Connect) => Ok(crate::connect::init(daemon, req).await?),
        Some(Mode::App) | None => init_app(daemon, req).await,
    }
}

/// Why a sign-in failed. 1Password saying the session is gone means the sign-in was not
/// accepted (nothing was held yet to expire).
fn bad_init(op: &OpOutput, lease_like: &str, secrets: &[&str]) -> Error {
    let text = scrub(&op.stderr, secrets);
    match classify(&text) {
        Failure::SessionGone => not_accepted(lease_like, op.code),
        kind => to_error(kind, lease_like, &text, op.code),
    }
}

fn not_accepted(lease_like: &str, op_code: i32) -> Error {
    Error::NotSignedIn(Detail {
        message: format!("1Password did not accept the sign-in for account {lease_like}"),
        fix: Some(format!(
            "run `op-session init --account {lease_like}` in a terminal and sign in again"
        )),
        op_exit_code: Some(op_code),
        ..Detail::default()
    })
}

async fn init_token(daemon: &Arc<Daemon>, req: InitRequest) -> Result<SessionStatus, Error> {
    let (Some(var), Some(token)) = (req.session_var.clone(), req.token.as_ref()) else {
        return Err(Error::bad_request(
            "token mode needs the session variable and token that `op signin` printed",
        ));
    };
    let valid_var = var.strip_prefix("OP_SESSION_").is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    });
    if !valid_var {
        return Err(Error::bad_request(format!(
            "{var} is not an OP_SESSION_<ID> variable name"
        )));
    }
    let token = secret_token(token.expose_secret().trim().as_bytes())
        .map_err(|e| Error::internal(e.to_string()))?;
    let account = Account::from_request(req.account.as_deref());
    let args = OpCall::whoami().json().account(account.arg()).args();
    let out = daemon
        .op
        .run(
            &args,
            Auth::Token {
                var: &var,
                token: token.expose_secret().as_str(),
            },
            None,
        )
        .await?;
    if !out.success() {
        return Err(bad_init(
            &out,
            &account.to_string(),
            &[token.expose_secret().as_str()],
        ));
    }
    let identity = Identity::from_whoami(&out.stdout).unwrap_or_default();
    let name = account.session_name(Mode::Token, &identity);
    Ok(lifecycle::start(
        daemon,
        NewSession {
            identity,
            ..new_session(
                daemon,
                name,
                Credential::Token {
                    var,
                    token: Arc::new(token),
                },
            )
        },
    ))
}

async fn init_service_account(
    daemon: &Arc<Daemon>,
    req: &InitRequest,
    token: SecretToken,
) -> Result<SessionStatus, Error> {
    if !token.expose_secret().as_str().starts_with("ops_") {
        return Err(Error::bad_request(
            "that is not a service-account token (they start with ops_)",
        )
        .with_fix("pipe the token from 1Password's service-account page: op-session init --mode service-account < token-file"));
    }
    let auth = Auth::ServiceAccount {
        token: token.expose_secret().as_str(),
    };
    // op >= 2.20 answers whoami with "not authenticated yet" until another command ran
    // (docs/op-behaviour.md §1.7), so authenticate with a vault listing first.
    let list = OpCall::vault_list().json().args();
    let out = daemon.op.run(&list, auth, None).await?;
    if !out.success() {
        return Err(bad_init(
            &out,
            unnamed_session(Mode::ServiceAccount),
            &[token.expose_secret().as_str()],
        ));
    }
    let who = OpCall::whoami().json().args();
    let out = daemon.op.run(&who, auth, None).await?;
    let identity = if out.success() {
        Identity::from_whoami(&out.stdout).unwrap_or_default()
    } else {
        Identity::default()
    };
    let name =
        Account::from_request(req.account.as_deref()).session_name(Mode::ServiceAccount, &identity);
    Ok(lifecycle::start(
        daemon,
        NewSession {
            identity,
            ..new_session(
                daemon,
                name,
                Credential::ServiceAccount {
                    token: Arc::new(token),
                },
            )
        },
    ))
}

async fn init_app(daemon: &Arc<Daemon>, req: InitRequest) -> Result<SessionStatus, Error> {
    let key = req.account.clone().unwrap_or_default();
    // Coalesce: concurrent app inits for one account wait here; the first one signs in and
    // the rest find its session.
    let gate = daemon.auth_gate.gate(&key);
    let _held = gate.lock().await;
    let now = daemon.clock.now();
    if daemon.sessions.has_live(req.account.as_deref(), now)
        && let Ok(l) = daemon.sessions.lease(req.account.as_deref(), now)
        && l.mode() == Mode::App
    {
        return daemon
            .sessions
            .status(now, |a| daemon.cache.count(a, now))
            .into_iter()
            .find(|s| s.account == l.name)
            .ok_or_else(|| Error::internal("session vanished"));
    }
    let account = Account::from_request(req.account.as_deref());
    let label = account.to_string();
    let signin = OpCall::signin().account(account.arg()).args();
    let out = daemon.op.run(&signin, Auth::None, None).await?;
    if !out.success() {
        let text = scrub(&out.stderr, &[]);
        return Err(match classify(&text) {
            // op's own failure, or 1Password not accepting it: the app did not sign it in.
            Failure::Other | Failure::SessionGone => Error::NotSignedIn(Detail {
                message: format!(
                    "the 1Password app did not sign account {label} in (is app integration on?): {}",
                    crate::scrub::strip_error_prefix(&text).trim()
                ),
                fix: Some("run `op-session init` in a terminal to sign in with your password, or turn on Settings > Developer > Integrate with 1Password CLI".into()),
                op_exit_code: Some(out.code),
                ..Detail::default()
            }),
            kind => to_error(kind, &label, &text, out.code),
        });
    }
    if !out.stdout.iter().all(u8::is_ascii_whitespace) {
        // op printed a token: this account is not app-integrated. Do not keep what it printed.
        return Err(Error::NotSignedIn(Detail::new(format!(
            "account {label} is not using the 1Password app integration"
        )))
        .with_fix("run `op-session init --mode token` in a terminal"));
    }
    // Confirm with a call that triggers authorization (whoami may not, docs/op-behaviour.md §1.3).
    let confirm = OpCall::vault_list().json().account(account.arg()).args();
    let out = daemon.op.run(&confirm, Auth::None, None).await?;
    if !out.success() {
        return Err(bad_init(&out, &label, &[]));
    }
    let who = OpCall::whoami().json().account(account.arg()).args();
    let identity = match daemon.op.run(&who, Auth::None, None).await {
        Ok(o) if o.success() => Identity::from_whoami(&o.stdout).unwrap_or_default(),
        _ => Identity::default(),
    };
    let name = account.session_name(Mode::App, &identity);
    Ok(lifecycle::start(
        daemon,
        NewSession {
            identity,
            ..new_session(daemon, name, Credential::app())
        },
    ))
}

/// Borrow the session for `account` (see [`lifecycle::lease`]). When none is held and a
/// systemd credential holds a service-account token, start that session first, so a service
/// started with `LoadCredential=` needs no `init`.
pub(crate) async fn lease_or_start(
    daemon: &Arc<Daemon>,
    account: Option<&str>,
) -> Result<Lease, Error> {
    let err = match lifecycle::lease(daemon, account).await {
        Ok(l) => return Ok(l),
        Err(e) => e,
    };
    // NotSignedIn: nothing is held under that name (a session that just ran out is
    // SessionExpired, and must not be replaced behind the person's back).
    let wants_service_account = account.is_none_or(|a| a == unnamed_session(Mode::ServiceAccount));
    if !matches!(err, Error::NotSignedIn(_)) || !wants_service_account {
        return Err(err);
    }
    let Some(token) = credential_token() else {
        return Err(err);
    };
    init_service_account(daemon, &service_account_request(), token).await?;
    daemon
        .sessions
        .lease(account, daemon.clock.now())
        .map_err(|(e, _)| e)
}

fn service_account_request() -> InitRequest {
    InitRequest {
        account: None,
        mode: Some(Mode::ServiceAccount),
        session_var: None,
        token: None,
        host: None,
    }
}

/// At start: if systemd handed us a service-account token (`LoadCredential=`), start that
/// session now, so the first caller does not pay for it. Failures are logged; the lazy path
/// in [`lease_or_start`] retries on the next request.
pub(crate) async fn start_from_credentials(daemon: &Arc<Daemon>) {
    let Some(token) = credential_token() else {
        return;
    };
    match init_service_account(daemon, &service_account_request(), token).await {
        Ok(s) => {
            info!(account = %s.account, "service-account session started from systemd credentials")
        }
        Err(e) => {
            warn!(code = %e.code(), message = %e, "could not start the service-account session from systemd credentials")
        }
    }
}

/// A service-account token from `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
fn credential_token() -> Option<SecretToken> {
    crate::securemem::systemd_credential(SA_CREDENTIAL)
}

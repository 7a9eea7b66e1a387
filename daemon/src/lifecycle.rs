//! Using, refreshing and ending sessions: everything after a session is signed in.
//!
//! Owns: storing a newly signed-in session ([`start`]), leasing one to a request (ending it
//! on the spot if it ran out), the wrapper every request uses to call `op` with a session
//! (touching the idle timer on success, ending the session at once on an auth error), the app
//! confirmation before a cached value is served, keepalive, and ending and revocation (`op
//! signout` with the token, so an ended token session is revoked, not just forgotten).
//! Signing in, in each mode, is [`crate::init`]'s job; the timer that ends sessions when their
//! deadlines pass is [`crate::expiry`]'s.
//!
//! Never logs a token or a value: log fields are account names, modes, reasons, exit codes.

use std::sync::Arc;
use std::time::Duration;

use op_grammar::OpCall;
use op_session_protocol::{Mode, SessionStatus};

use crate::error::Error;
use secrecy::ExposeSecret;
use tracing::{info, warn};

use crate::config::{APP_IDLE_MAX, TOKEN_IDLE_MAX};
use crate::oprun::OpOutput;
use crate::scrub::{Failure, classify, scrub, to_error};
use crate::session::{Credential, EndReason, Lease, NewSession, Session};
use crate::state::Daemon;

/// Run `op` with a session, keeping the session's state true: the call is counted against
/// the session's request budget (and refused, without running, when the budget is spent or a
/// 429 is still in force: [`crate::quota`]), success touches the idle timer, an auth failure
/// ends the session (and revokes it), and stderr is scrubbed.
pub(crate) async fn call_op(
    daemon: &Arc<Daemon>,
    lease: &Lease,
    call: OpCall,
    stdin: Option<&[u8]>,
) -> Result<OpOutput, Error> {
    charge(daemon, lease, call.command().effect())?;
    let args = call.account(lease.account_arg.as_deref()).args();
    let out = daemon.op.run(&args, lease.auth(), stdin).await?;
    if out.success() {
        daemon
            .sessions
            .touch(&lease.name, lease.generation, daemon.clock.now());
        return Ok(out);
    }
    Err(failure(daemon, lease, &out))
}

/// Confirm that an app session's authorization is still live before a cached value is served:
/// free within `app_check_interval` of the last successful call, else one cheap `op vault
/// list` that concurrent requests share. A locked app fails it, which ends the session and
/// wipes its cache (see [`failure`]).
pub(crate) async fn confirm_app(daemon: &Arc<Daemon>, lease: &Lease) -> Result<(), Error> {
    let interval = daemon.config.app_check_interval;
    let fresh = || {
        daemon
            .sessions
            .app_confirmed(&lease.name, lease.generation)
            .is_some_and(|at| daemon.clock.now().saturating_sub(at) < interval)
    };
    if fresh() {
        return Ok(());
    }
    let gate = daemon.auth_gate.gate(&format!("confirm:{}", lease.name));
    let _held = gate.lock().await;
    if fresh() {
        return Ok(()); // another request just confirmed it
    }
    call_op(daemon, lease, OpCall::vault_list().json(), None)
        .await
        .map(|_| ())
}

/// Count one `op` call of `effect` against the lease's session budget, or refuse it (exit 75,
/// with the time to retry) before anything runs.
pub(crate) fn charge(
    daemon: &Daemon,
    lease: &Lease,
    effect: op_grammar::Effect,
) -> Result<(), Error> {
    daemon
        .quota
        .charge(&lease.name, lease.mode(), crate::quota::Kind::of(effect))
        .map_err(|r| {
            info!(account = %lease.name, retry_after_s = r.retry_after.as_secs(), "request refused: {}", r.message);
            r.to_error()
        })
}

/// Turn a failed call into the client's error, ending the session if op says it is gone and
/// holding further calls back until a 429's retry time.
pub(crate) fn failure(daemon: &Arc<Daemon>, lease: &Lease, out: &OpOutput) -> Error {
    let values = daemon.cache.values(&lease.name);
    let mut secrets: Vec<&str> = values.iter().map(|v| v.expose_secret()).collect();
    secrets.push(lease.secret_str());
    let text = scrub(&out.stderr, &secrets);
    let kind = classify(&text);
    if let Failure::RateLimited(secs) = kind {
        // op prints whole minutes, rounded down ("retry in 58 minutes" may mean 58m59s): hold
        // for the minute it left out too, so the first call after the wait is not another 429.
        daemon
            .quota
            .rate_limited(&lease.name, secs.map(|s| Duration::from_secs(s + 60)));
    }
    if matches!(
        kind,
        Failure::SessionGone | Failure::Denied | Failure::PromptTimeout | Failure::AppUnavailable
    ) && let Some(s) = daemon.sessions.end(&lease.name, lease.generation)
    {
        info!(account = %s.name, mode = %s.mode(), "op reports the session is gone; ending it");
        end_session(daemon, s, EndReason::Revoked);
    }
    to_error(kind, &lease.name, &text, out.code)
}

/// Whether ending a session for `why` must sign it out with `op`: a token session is revoked
/// (not just forgotten) unless 1Password already revoked it; an app session signs the
/// daemon's authorization out, so the next `init` asks the person again, unless it was
/// replaced by a new sign-in of the same app authorization.
pub(crate) fn needs_signout(s: &Session, why: EndReason) -> bool {
    match s.credential {
        Credential::Token { .. } => why != EndReason::Revoked,
        Credential::App { .. } => !matches!(why, EndReason::Revoked | EndReason::Replaced),
        Credential::ServiceAccount { .. } | Credential::Connect { .. } => false,
    }
}

/// Wipe a session's cache and sign it out (in the background; a token is wiped when that
/// call ends).
pub(crate) fn end_session(daemon: &Arc<Daemon>, s: Session, why: EndReason) {
    let dropped = daemon.cache.drop_account(&s.name);
    info!(account = %s.name, mode = %s.mode(), reason = why.as_str(), cached_dropped = dropped, "session ended");
    if needs_signout(&s, why) {
        let d = daemon.clone();
        tokio::spawn(async move { revoke(&d, s).await });
    }
}

/// `op signout` for the session (with its token in token mode; as the daemon's own process
/// in app mode), bounded by the op timeout.
pub(crate) async fn revoke(daemon: &Daemon, s: Session) {
    let args = OpCall::signout().account(s.account_arg().as_deref()).args();
    // Service-account and Connect tokens are not sessions `op` can sign out.
    let auth = match &s.credential {
        c @ (Credential::Token { .. } | Credential::App { .. }) => c.auth(),
        Credential::ServiceAccount { .. } | Credential::Connect { .. } => return,
    };
    match daemon.op.run(&args, auth, None).await {
        Ok(out) if out.success() => {
            info!(account = %s.name, mode = %s.mode(), "signed out with op signout")
        }
        Ok(out) => {
            warn!(account = %s.name, code = out.code, "op signout failed; the session is wiped anyway")
        }
        Err(e) => {
            warn!(account = %s.name, error = %e, "could not run op signout; the session is wiped anyway")
        }
    }
}

/// End and sign out every session (lock --all, stop, shutdown). Waits for the sign-outs.
pub(crate) async fn end_all(daemon: &Arc<Daemon>, why: EndReason) -> usize {
    let all = daemon.sessions.remove_all();
    let n = all.len();
    daemon.cache.clear();
    let mut revokes = Vec::new();
    for s in all {
        info!(account = %s.name, mode = %s.mode(), reason = why.as_str(), "session ended");
        if needs_signout(&s, why) {
            revokes.push(revoke(daemon, s));
        }
    }
    for r in revokes {
        r.await;
    }
    n
}

/// Lock one account (or the default), signing it out. Waits for the sign-out.
pub(crate) async fn lock_one(daemon: &Arc<Daemon>, account: Option<&str>) -> Result<String, Error> {
    let s = daemon.sessions.remove(account)?;
    let name = s.name.clone();
    daemon.cache.drop_account(&name);
    info!(account = %name, mode = %s.mode(), "session locked");
    if needs_signout(&s, EndReason::Locked) {
        revoke(daemon, s).await;
    }
    Ok(name)
}

/// Start a keepalive call in the background if one is due (see [`crate::session`]).
pub(crate) fn maybe_keepalive(daemon: &Arc<Daemon>, lease: &Lease) {
    let now = daemon.clock.now();
    if !daemon
        .sessions
        .keepalive_due(&lease.name, lease.generation, now)
    {
        return;
    }
    let d = daemon.clone();
    let lease = lease.clone();
    tokio::spawn(async move {
        // The cheapest call that the server counts as use. `whoami` can fail in app mode
        // (docs/op-behaviour.md §1.3), so app sessions list vaults instead.
        let args = match lease.mode() {
            Mode::App => OpCall::vault_list().json(),
            Mode::Token | Mode::ServiceAccount | Mode::Connect => OpCall::whoami().json(),
        };
        match call_op(&d, &lease, args, None).await {
            Ok(_) => tracing::debug!(account = %lease.name, "keepalive refreshed the session"),
            Err(e) => warn!(account = %lease.name, code = %e.code(), "keepalive failed"),
        }
        d.sessions.keepalive_done(&lease.name, lease.generation);
    });
}

/// Borrow the session for `account`, ending it (and revoking) if it has run out. Requests go
/// through [`crate::init::lease_or_start`], which also starts a service-account session from
/// systemd credentials when none is held.
pub(crate) async fn lease(daemon: &Arc<Daemon>, account: Option<&str>) -> Result<Lease, Error> {
    match daemon.sessions.lease(account, daemon.clock.now()) {
        Ok(l) => Ok(l),
        Err((err, Some(ended))) => {
            let (s, why) = *ended;
            end_session(daemon, s, why);
            Err(err)
        }
        Err((err, None)) => {
            Err(daemon
                .presence
                .explain(err, account, daemon.sessions.default_name().as_deref()))
        }
    }
}

/// A new session named `name` holding `credential`, with the limits this daemon's config
/// and the credential's mode give it (idle limit capped by the mode's maximum, hard limit,
/// keepalive). Callers add the identity with struct update syntax, then call [`start`].
pub(crate) fn new_session(daemon: &Daemon, name: String, credential: Credential) -> NewSession {
    let mode = credential.mode();
    NewSession {
        idle_limit: idle_for(daemon, mode),
        keepalive: daemon.config.keepalive && !matches!(mode, Mode::ServiceAccount | Mode::Connect),
        ..NewSession::new(name, credential, daemon.config.hard_timeout)
    }
}

fn idle_for(daemon: &Daemon, mode: Mode) -> Option<Duration> {
    match mode {
        Mode::Token => Some(daemon.config.idle_timeout.min(TOKEN_IDLE_MAX)),
        Mode::App => Some(daemon.config.idle_timeout.min(APP_IDLE_MAX)),
        Mode::ServiceAccount | Mode::Connect => None,
    }
}

/// Insert and report a new session (ending one of the same name, as replaced).
pub(crate) fn start(daemon: &Arc<Daemon>, new: NewSession) -> SessionStatus {
    let now = daemon.clock.now();
    let (name, mode) = (new.name.clone(), new.credential.mode());
    let s = daemon.sessions.build(new, now);
    if let Some(old) = daemon.sessions.insert(s) {
        end_session(daemon, old, EndReason::Replaced);
    }
    daemon.presence.session_started(&name);
    info!(account = %name, %mode, "session started");
    daemon
        .sessions
        .status(now, |a| daemon.cache.count(a, now))
        .into_iter()
        .find(|s| s.account == name)
        .unwrap_or_else(|| SessionStatus {
            account: name,
            mode,
            default: false,
            email: None,
            url: None,
            user_uuid: None,
            account_uuid: None,
            signed_in_at: crate::clock::unix_now(),
            last_use_s_ago: 0,
            idle_remaining_s: None,
            hard_remaining_s: daemon.config.hard_timeout.as_secs(),
            keepalive: false,
            cache_entries: 0,
            connect: None,
            quota: None,
        })
}

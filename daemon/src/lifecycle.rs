//! Starting, using, refreshing and ending sessions: every place a session meets `op`.
//!
//! Owns: `init` in each mode (token verification with `op whoami`; app mode signing the
//! daemon's own process in and confirming with a call that triggers authorization, coalesced
//! so a fan-out of agents raises one prompt; service-account verification), the wrapper every
//! request uses to call `op` with a session (touching the idle timer on success, ending the
//! session at once on an auth error), keepalive, the expiry timer, and revocation (`op
//! signout` with the token, so an ended token session is revoked, not just forgotten).
//!
//! Never logs a token or a value: log fields are account names, modes, reasons, exit codes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use op_grammar::OpCall;
use op_session_protocol::{ErrorBody, ErrorCode, InitRequest, Mode, SessionStatus};
use secrecy::ExposeSecret;
use tracing::{info, warn};

use crate::config::{APP_IDLE_MAX, TOKEN_IDLE_MAX};
use crate::oprun::{Auth, OpOutput};
use crate::scrub::{Failure, classify, scrub, to_error};
use crate::securemem::{SecretToken, secret_token};
use crate::session::{EndReason, Identity, Lease, Session};
use crate::state::Daemon;

/// The systemd credential name for a service-account token.
pub const SA_CREDENTIAL: &str = "op-service-account-token";

/// Per-account locks that coalesce app-mode authorizations.
#[derive(Debug, Default)]
pub struct AuthGate {
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl AuthGate {
    fn gate(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.gates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_ascii_lowercase())
            .or_default()
            .clone()
    }
}

/// Run `op` with a session, keeping the session's state true: success touches the idle timer,
/// an auth failure ends the session (and revokes it), and stderr is scrubbed.
pub async fn call_op(
    daemon: &Arc<Daemon>,
    lease: &Lease,
    call: OpCall,
    stdin: Option<&[u8]>,
) -> Result<OpOutput, ErrorBody> {
    let args = call.account(lease.account_arg.as_deref()).args();
    let out = daemon
        .op
        .run(&args, lease.auth(), stdin)
        .await
        .map_err(ErrorBody::from)?;
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
pub async fn confirm_app(daemon: &Arc<Daemon>, lease: &Lease) -> Result<(), ErrorBody> {
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

/// Turn a failed call into the client's error, ending the session if op says it is gone.
pub fn failure(daemon: &Arc<Daemon>, lease: &Lease, out: &OpOutput) -> ErrorBody {
    let values = daemon.cache.values(&lease.name);
    let mut secrets: Vec<&str> = values.iter().map(|v| v.expose_secret()).collect();
    secrets.push(lease.secret_str());
    let text = scrub(&out.stderr, &secrets);
    let kind = classify(&text);
    if matches!(
        kind,
        Failure::SessionGone | Failure::Denied | Failure::PromptTimeout | Failure::AppUnavailable
    ) && let Some(s) = daemon.sessions.end(&lease.name, lease.generation)
    {
        info!(account = %s.name, mode = %s.mode, "op reports the session is gone; ending it");
        end_session(daemon, s, EndReason::Revoked);
    }
    to_error(kind, &lease.name, &text, out.code)
}

/// Whether ending a session for `why` must sign it out with `op`: a token session is revoked
/// (not just forgotten) unless 1Password already revoked it; an app session signs the
/// daemon's authorization out, so the next `init` asks the person again, unless it was
/// replaced by a new sign-in of the same app authorization.
pub fn needs_signout(s: &Session, why: EndReason) -> bool {
    match s.mode {
        Mode::Token => s.credential.is_some() && why != EndReason::Revoked,
        Mode::App => !matches!(why, EndReason::Revoked | EndReason::Replaced),
        Mode::ServiceAccount | Mode::Connect => false,
    }
}

/// Wipe a session's cache and sign it out (in the background; a token is wiped when that
/// call ends).
pub fn end_session(daemon: &Arc<Daemon>, s: Session, why: EndReason) {
    let dropped = daemon.cache.drop_account(&s.name);
    info!(account = %s.name, mode = %s.mode, reason = why.as_str(), cached_dropped = dropped, "session ended");
    if needs_signout(&s, why) {
        let d = daemon.clone();
        tokio::spawn(async move { revoke(&d, s).await });
    }
}

/// `op signout` for the session (with its token in token mode; as the daemon's own process
/// in app mode), bounded by the op timeout.
pub async fn revoke(daemon: &Daemon, s: Session) {
    let args = OpCall::signout().account(s.account_arg().as_deref()).args();
    let auth = match (s.mode, &s.credential, &s.session_var) {
        (Mode::Token, Some(cred), Some(var)) => Auth::Token {
            var,
            token: cred.expose_secret().as_str(),
        },
        (Mode::App, _, _) => Auth::None,
        _ => return,
    };
    match daemon.op.run(&args, auth, None).await {
        Ok(out) if out.success() => {
            info!(account = %s.name, mode = %s.mode, "signed out with op signout")
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
pub async fn end_all(daemon: &Arc<Daemon>, why: EndReason) -> usize {
    let all = daemon.sessions.remove_all();
    let n = all.len();
    daemon.cache.clear();
    let mut revokes = Vec::new();
    for s in all {
        info!(account = %s.name, mode = %s.mode, reason = why.as_str(), "session ended");
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
pub async fn lock_one(daemon: &Arc<Daemon>, account: Option<&str>) -> Result<String, ErrorBody> {
    let s = daemon.sessions.remove(account)?;
    let name = s.name.clone();
    daemon.cache.drop_account(&name);
    info!(account = %name, mode = %s.mode, "session locked");
    if needs_signout(&s, EndReason::Locked) {
        revoke(daemon, s).await;
    }
    Ok(name)
}

/// Start a keepalive call in the background if one is due (see [`crate::session`]).
pub fn maybe_keepalive(daemon: &Arc<Daemon>, lease: &Lease) {
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
        let args = match lease.mode {
            Mode::App => OpCall::vault_list().json(),
            _ => OpCall::whoami().json(),
        };
        match call_op(&d, &lease, args, None).await {
            Ok(_) => tracing::debug!(account = %lease.name, "keepalive refreshed the session"),
            Err(e) => warn!(account = %lease.name, code = %e.code, "keepalive failed"),
        }
        d.sessions.keepalive_done(&lease.name, lease.generation);
    });
}

/// Borrow the session for `account`, ending it (and revoking) if it has run out. When no
/// session exists and a systemd credential holds a service-account token, start one from it.
pub async fn lease(daemon: &Arc<Daemon>, account: Option<&str>) -> Result<Lease, ErrorBody> {
    match daemon.sessions.lease(account, daemon.clock.now()) {
        Ok(l) => Ok(l),
        Err((err, Some(ended))) => {
            let (s, why) = *ended;
            end_session(daemon, s, why);
            Err(err)
        }
        Err((err, None)) => {
            if (account.is_none() || account == Some("service-account"))
                && let Some(token) = credential_token()
            {
                let req = InitRequest {
                    account: None,
                    mode: Some(Mode::ServiceAccount),
                    session_var: None,
                    token: None,
                    host: None,
                };
                init_service_account(daemon, &req, token).await?;
                return daemon
                    .sessions
                    .lease(account, daemon.clock.now())
                    .map_err(|(e, _)| e);
            }
            Err(daemon
                .presence
                .explain(err, account, daemon.sessions.default_name().as_deref()))
        }
    }
}

/// At start: if systemd handed us a service-account token (`LoadCredential=`), start that
/// session now, so the first caller does not pay for it. Failures are logged; the lazy path
/// in [`lease`] retries on the next request.
pub async fn start_from_credentials(daemon: &Arc<Daemon>) {
    let Some(token) = credential_token() else {
        return;
    };
    let req = InitRequest {
        account: None,
        mode: Some(Mode::ServiceAccount),
        session_var: None,
        token: None,
        host: None,
    };
    match init_service_account(daemon, &req, token).await {
        Ok(s) => {
            info!(account = %s.account, "service-account session started from systemd credentials")
        }
        Err(e) => {
            warn!(code = %e.code, message = %e.message, "could not start the service-account session from systemd credentials")
        }
    }
}

/// A service-account token from `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
fn credential_token() -> Option<SecretToken> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
    let path = std::path::Path::new(&dir).join(SA_CREDENTIAL);
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).ok()?);
    let trimmed = std::str::from_utf8(&bytes).ok()?.trim();
    if trimmed.is_empty() {
        return None;
    }
    secret_token(trimmed.as_bytes()).ok()
}

fn idle_for(daemon: &Daemon, mode: Mode) -> Option<Duration> {
    match mode {
        Mode::Token => Some(daemon.config.idle_timeout.min(TOKEN_IDLE_MAX)),
        Mode::App => Some(daemon.config.idle_timeout.min(APP_IDLE_MAX)),
        Mode::ServiceAccount | Mode::Connect => None,
    }
}

/// Build, insert and report a new session (replacing one of the same name). `connect` is the
/// server link of a connect session.
pub(crate) fn store(
    daemon: &Arc<Daemon>,
    name: String,
    mode: Mode,
    identity: Identity,
    credential: Option<SecretToken>,
    session_var: Option<String>,
    connect: Option<Arc<crate::connect::Link>>,
) -> SessionStatus {
    let now = daemon.clock.now();
    let mut s = daemon.sessions.build(
        name.clone(),
        mode,
        identity,
        credential,
        session_var,
        now,
        idle_for(daemon, mode),
        daemon.config.hard_timeout,
        daemon.config.keepalive && !matches!(mode, Mode::ServiceAccount | Mode::Connect),
    );
    s.connect = connect;
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
        })
}

/// Handle `init`.
pub async fn init(daemon: &Arc<Daemon>, req: InitRequest) -> Result<SessionStatus, ErrorBody> {
    match req.mode {
        Some(Mode::Token) => init_token(daemon, req).await,
        Some(Mode::ServiceAccount) => {
            let token = match &req.token {
                Some(t) => secret_token(t.expose_secret().trim().as_bytes())
                    .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?,
                None => credential_token().ok_or_else(|| {
                    ErrorBody::new(ErrorCode::BadRequest, "no service-account token was given")
                        .with_fix("pipe it in: op-session init --mode service-account < token-file")
                })?,
            };
            init_service_account(daemon, &req, token).await
        }
        Some(Mode::Connect) => crate::connect::init(daemon, req).await,
        Some(Mode::App) | None => init_app(daemon, req).await,
    }
}

fn bad_init(op: &OpOutput, lease_like: &str, secrets: &[&str]) -> ErrorBody {
    let text = scrub(&op.stderr, secrets);
    let kind = classify(&text);
    let mut e = to_error(kind, lease_like, &text, op.code);
    if kind == Failure::SessionGone {
        e.code = ErrorCode::NotSignedIn;
        e.message = format!("1Password did not accept the sign-in for account {lease_like}");
        e.fix =
            format!("run `op-session init --account {lease_like}` in a terminal and sign in again");
    }
    e
}

async fn init_token(daemon: &Arc<Daemon>, req: InitRequest) -> Result<SessionStatus, ErrorBody> {
    let (Some(var), Some(token)) = (req.session_var.clone(), req.token.as_ref()) else {
        return Err(ErrorBody::new(
            ErrorCode::BadRequest,
            "token mode needs the session variable and token that `op signin` printed",
        ));
    };
    let valid_var = var.strip_prefix("OP_SESSION_").is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    });
    if !valid_var {
        return Err(ErrorBody::new(
            ErrorCode::BadRequest,
            format!("{var} is not an OP_SESSION_<ID> variable name"),
        ));
    }
    let token = secret_token(token.expose_secret().trim().as_bytes())
        .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?;
    let label = req.account.clone().unwrap_or_else(|| "(default)".into());
    let args = OpCall::whoami()
        .json()
        .account(req.account.as_deref())
        .args();
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
        .await
        .map_err(ErrorBody::from)?;
    if !out.success() {
        return Err(bad_init(&out, &label, &[token.expose_secret().as_str()]));
    }
    let identity = Identity::from_whoami(&out.stdout).unwrap_or_default();
    let name = req
        .account
        .clone()
        .or_else(|| identity.short_name())
        .unwrap_or_else(|| "default".into());
    Ok(store(
        daemon,
        name,
        Mode::Token,
        identity,
        Some(token),
        Some(var),
        None,
    ))
}

async fn init_service_account(
    daemon: &Arc<Daemon>,
    req: &InitRequest,
    token: SecretToken,
) -> Result<SessionStatus, ErrorBody> {
    if !token.expose_secret().as_str().starts_with("ops_") {
        return Err(ErrorBody::new(
            ErrorCode::BadRequest,
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
    let out = daemon
        .op
        .run(&list, auth, None)
        .await
        .map_err(ErrorBody::from)?;
    if !out.success() {
        return Err(bad_init(
            &out,
            "service-account",
            &[token.expose_secret().as_str()],
        ));
    }
    let who = OpCall::whoami().json().args();
    let out = daemon
        .op
        .run(&who, auth, None)
        .await
        .map_err(ErrorBody::from)?;
    let identity = if out.success() {
        Identity::from_whoami(&out.stdout).unwrap_or_default()
    } else {
        Identity::default()
    };
    let name = req
        .account
        .clone()
        .unwrap_or_else(|| "service-account".into());
    Ok(store(
        daemon,
        name,
        Mode::ServiceAccount,
        identity,
        Some(token),
        None,
        None,
    ))
}

async fn init_app(daemon: &Arc<Daemon>, req: InitRequest) -> Result<SessionStatus, ErrorBody> {
    let key = req.account.clone().unwrap_or_default();
    // Coalesce: concurrent app inits for one account wait here; the first one signs in and
    // the rest find its session.
    let gate = daemon_gate(daemon).gate(&key);
    let _held = gate.lock().await;
    let now = daemon.clock.now();
    if daemon.sessions.has_live(req.account.as_deref(), now)
        && let Ok(l) = daemon.sessions.lease(req.account.as_deref(), now)
        && l.mode == Mode::App
    {
        return daemon
            .sessions
            .status(now, |a| daemon.cache.count(a, now))
            .into_iter()
            .find(|s| s.account == l.name)
            .ok_or_else(|| ErrorBody::new(ErrorCode::Internal, "session vanished"));
    }
    let label = req.account.clone().unwrap_or_else(|| "(default)".into());
    let signin = OpCall::signin().account(req.account.as_deref()).args();
    let out = daemon
        .op
        .run(&signin, Auth::None, None)
        .await
        .map_err(ErrorBody::from)?;
    if !out.success() {
        let mut e = bad_init(&out, &label, &[]);
        if e.code == ErrorCode::OpFailed || e.code == ErrorCode::NotSignedIn {
            e.code = ErrorCode::NotSignedIn;
            e.message = format!(
                "the 1Password app did not sign account {label} in (is app integration on?): {}",
                crate::scrub::strip_error_prefix(&scrub(&out.stderr, &[])).trim()
            );
            e.fix = "run `op-session init` in a terminal to sign in with your password, or turn on Settings > Developer > Integrate with 1Password CLI".into();
        }
        return Err(e);
    }
    if !out.stdout.iter().all(u8::is_ascii_whitespace) {
        // op printed a token: this account is not app-integrated. Do not keep what it printed.
        return Err(ErrorBody::new(
            ErrorCode::NotSignedIn,
            format!("account {label} is not using the 1Password app integration"),
        )
        .with_fix("run `op-session init --mode token` in a terminal"));
    }
    // Confirm with a call that triggers authorization (whoami may not, docs/op-behaviour.md §1.3).
    let confirm = OpCall::vault_list()
        .json()
        .account(req.account.as_deref())
        .args();
    let out = daemon
        .op
        .run(&confirm, Auth::None, None)
        .await
        .map_err(ErrorBody::from)?;
    if !out.success() {
        return Err(bad_init(&out, &label, &[]));
    }
    let who = OpCall::whoami()
        .json()
        .account(req.account.as_deref())
        .args();
    let identity = match daemon.op.run(&who, Auth::None, None).await {
        Ok(o) if o.success() => Identity::from_whoami(&o.stdout).unwrap_or_default(),
        _ => Identity::default(),
    };
    let name = req
        .account
        .clone()
        .or_else(|| identity.short_name())
        .unwrap_or_else(|| "app".into());
    Ok(store(daemon, name, Mode::App, identity, None, None, None))
}

fn daemon_gate(daemon: &Daemon) -> &AuthGate {
    &daemon.auth_gate
}

/// The expiry timer: sleeps until the earliest deadline (or a change), then wipes what ran
/// out. Requests re-check deadlines themselves; this only makes the wipe prompt. It also
/// wakes at least once a minute, because tokio's timers stop during suspend while the
/// deadline clock does not.
pub async fn expiry_task(daemon: Arc<Daemon>) {
    loop {
        let now = daemon.clock.now();
        for (s, why) in daemon.sessions.sweep(now) {
            end_session(&daemon, s, why);
        }
        // Grants end with their TTL and with the session they draw on.
        daemon.grants.sweep(&daemon, now);
        // No session, no timer: an idle daemon without sessions never wakes.
        let next = match (
            daemon.sessions.next_deadline(),
            daemon.grants.next_deadline(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wait = next.map(|d| {
            (d.saturating_sub(now) + Duration::from_millis(5)).min(Duration::from_secs(60))
        });
        let sleep = async {
            match wait {
                Some(w) => tokio::time::sleep(w).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = daemon.shutdown.cancelled() => return,
            _ = daemon.sessions.changed.notified() => {}
            _ = sleep => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::config::Config;
    use crate::state::DaemonInfo;

    fn daemon(clock: Arc<ManualClock>) -> Arc<Daemon> {
        let config = Config {
            audit: false,
            idle_timeout: Duration::from_secs(10),
            ..Config::default()
        };
        let info = DaemonInfo {
            socket: "/nonexistent/agent.sock".into(),
            started_by: op_session_protocol::StartedBy::Manual,
            protections: Default::default(),
            started: std::time::Instant::now(),
            uid: 0,
            exit_when_idle: None,
        };
        Arc::new(Daemon::new(config, info, clock))
    }

    #[tokio::test(start_paused = true)]
    async fn the_expiry_timer_wipes_a_session_promptly_without_any_request() {
        let clock = Arc::new(ManualClock::new());
        let d = daemon(clock.clone());
        let s = d.sessions.build(
            "team".into(),
            Mode::App,
            Identity::default(),
            None,
            None,
            clock.now(),
            Some(Duration::from_secs(10)),
            Duration::from_secs(3600),
            false,
        );
        d.sessions.insert(s);
        d.cache
            .put("team", 1, "op://v/i/f", Arc::new("x".into()), clock.now());
        let task = tokio::spawn(expiry_task(d.clone()));
        tokio::task::yield_now().await;

        clock.advance(Duration::from_secs(9));
        tokio::time::advance(Duration::from_secs(9)).await;
        tokio::task::yield_now().await;
        assert_eq!(d.sessions.len(), 1, "wiped early");

        clock.advance(Duration::from_secs(2));
        tokio::time::advance(Duration::from_secs(2)).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(d.sessions.len(), 0, "not wiped at the idle deadline");
        assert_eq!(d.cache.count("team", clock.now()), 0, "cache not dropped");
        d.shutdown.cancel();
        task.await.expect("task ends at shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_session_the_timer_never_wakes() {
        let clock = Arc::new(ManualClock::new());
        let d = daemon(clock);
        let task = tokio::spawn(expiry_task(d.clone()));
        // A day of idle time passes in an instant; the task must still be parked, not spinning.
        tokio::time::advance(Duration::from_secs(86_400)).await;
        tokio::task::yield_now().await;
        assert!(!task.is_finished());
        d.shutdown.cancel();
        task.await.expect("ends");
    }
}

//! Connect mode: sessions against a self-hosted 1Password Connect server, with no `op` binary.
//!
//! A connect session holds the server's base URL and its token (in a [`SecretToken`], like the
//! other modes' tokens) and resolves `op://` references over Connect's REST API instead of
//! running `op`. What this module relies on about Connect (endpoints, filters, error bodies,
//! which `op` commands work against it) is written down, with sources, in docs/connect.md.
//!
//! Owns: starting a session ([`init`]: `/health`, `/heartbeat`, then one authorized call that
//! proves the token), the [`Link`] a session keeps (HTTP client, server facts, the vault and
//! item ID cache), turning Connect's failures into the client's errors ([`api_error`]: 401
//! ends the session, 429 and 5xx say when to retry), and which passthrough commands may run
//! against Connect ([`check_passthrough`]). Resolution itself is [`resolve`]; HTTP is
//! [`client`].
//!
//! Never logs, returns or stores the token or a value anywhere but the session and the
//! value cache; server texts are scrubbed of the token and cached values before they are
//! shown.

pub(crate) mod client;
pub(crate) mod link;
pub(crate) mod resolve;

use std::sync::Arc;

use op_grammar::{Effect, OpCommand};
use op_session_protocol::human::duration as human;
use op_session_protocol::{ConnectServer, ErrorBody, ErrorCode, InitRequest, Mode, SessionStatus};
use secrecy::ExposeSecret;
use tracing::{info, warn};

use crate::error::{Detail, Error};
use crate::lifecycle;
use crate::scrub::scrub;
use crate::securemem::{SecretToken, secret_token};
use crate::session::{Credential, EndReason, Identity, Lease, NewSession};
use crate::state::Daemon;

pub(crate) use client::{ConnectClient, ConnectError};
pub(crate) use link::Link;
use link::{IdCache, item_key, vault_key};

/// The systemd credential name for a Connect token (`LoadCredential=op-connect-token:…`).
pub(crate) const CREDENTIAL: &str = "op-connect-token";

/// The `op` commands forwarded in connect mode: the read-only ones `op` serves from a Connect
/// server (docs/connect.md, "Passthrough"). Writes are left out on purpose: Connect tokens
/// are usually scoped for reading, and a write would bypass the value cache's generation.
pub(crate) const PASSTHROUGH_VERBS: &[&str] = &[
    "read",
    "item get",
    "item list",
    "vault get",
    "vault list",
    "document get",
];

/// The Connect token from systemd's `$CREDENTIALS_DIRECTORY/op-connect-token`.
fn credential_token() -> Option<SecretToken> {
    crate::securemem::systemd_credential(CREDENTIAL)
}

/// The error for a failure outside any one reference (init, or a batch-wide failure).
fn plain(e: &ConnectError, secrets: &[&str]) -> ErrorBody {
    let text = scrub(&e.to_string(), secrets);
    match e {
        ConnectError::BadHost(_) => ErrorBody::new(ErrorCode::BadRequest, text)
            .with_fix("pass the server's base URL: op-session init --mode connect --host https://connect.example.com"),
        ConnectError::CaFile { .. } => ErrorBody::new(ErrorCode::BadRequest, text)
            .with_fix("point connect_ca_file in the op-session config at the PEM file of the CA that signed the server's certificate"),
        ConnectError::Unreachable { reason, .. } => {
            let mut b = ErrorBody::new(ErrorCode::Unreachable, text.clone());
            if reason.contains("certificate") || reason.contains("Certificate") {
                b.fix = "if the server's certificate comes from an internal CA, set connect_ca_file in the op-session config to that CA's PEM file".into();
            }
            b
        }
        ConnectError::Timeout { .. } => ErrorBody::new(ErrorCode::OpTimeout, text)
            .with_fix("retry; raise op_timeout in the op-session config if the Connect server is slow"),
        ConnectError::OverBudget { retry_after, .. } => {
            let mut b = ErrorBody::new(ErrorCode::RateLimited, text);
            b.retry_after_s = Some(*retry_after);
            b.fix = format!("retry in {}; nothing was sent to the Connect server", human(*retry_after));
            b
        }
        ConnectError::Garbage { .. } => {
            let mut b = ErrorBody::new(ErrorCode::OpFailed, text)
                .with_fix("check that --host names a 1Password Connect server, not a proxy or another service");
            b.op_exit_code = Some(1);
            b
        }
        ConnectError::Status {
            status,
            retry_after,
            ..
        } => {
            let reason = reqwest::StatusCode::from_u16(*status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            let message = match e {
                ConnectError::Status { message, .. } => scrub(message, secrets),
                _ => String::new(),
            };
            let line = format!("({status}) {reason}: {message}");
            match status {
                401 => ErrorBody::new(ErrorCode::SessionExpired, format!("the Connect server refused the token {line}")),
                429 | 500..=599 => {
                    let mut b = ErrorBody::new(
                        ErrorCode::RateLimited,
                        match retry_after {
                            Some(s) => format!("{line} (Retry-After: {s}s)"),
                            None => line,
                        },
                    );
                    b.retry_after_s = *retry_after;
                    if let Some(s) = retry_after {
                        b.fix = format!("retry in {} (the Connect server's Retry-After)", human(*s));
                    } else {
                        b.fix = "retry later; the Connect server is busy or failing".into();
                    }
                    b
                }
                _ => {
                    let mut b = ErrorBody::new(ErrorCode::OpFailed, line);
                    b.op_exit_code = Some(1);
                    b
                }
            }
        }
    }
}

/// The client's error for a failed Connect request made under `lease`. A 401 ends the
/// session at once (the token is no good; a person must supply one), like an auth error
/// from `op` does in the other modes.
pub(crate) fn api_error(daemon: &Arc<Daemon>, lease: &Lease, e: &ConnectError) -> ErrorBody {
    let values = daemon.cache.values(&lease.name);
    let mut secrets: Vec<&str> = values.iter().map(|v| v.expose_secret()).collect();
    secrets.push(lease.secret_str());
    let mut body = plain(e, &secrets);
    if let ConnectError::Status { status: 401, .. } = e {
        if let Some(s) = daemon.sessions.end(&lease.name, lease.generation) {
            info!(account = %s.name, "the Connect server refused the token; ending the session");
            lifecycle::end_session(daemon, s, EndReason::Revoked);
        }
        let host = lease
            .credential
            .link()
            .map(|l| l.host().to_string())
            .unwrap_or_default();
        body.fix = format!(
            "start a new session with a valid token: op-session init --mode connect --host {host} < token-file"
        );
    }
    body
}

/// Handle `init --mode connect`: check the server, prove the token, hold both.
pub(crate) async fn init(
    daemon: &Arc<Daemon>,
    req: InitRequest,
) -> Result<SessionStatus, ErrorBody> {
    let Some(host) = req.host.as_deref().filter(|h| !h.trim().is_empty()) else {
        return Err(ErrorBody::new(
            ErrorCode::BadRequest,
            "connect mode needs the server's address",
        )
        .with_fix(
            "op-session init --mode connect --host https://connect.example.com < token-file",
        ));
    };
    let token = match &req.token {
        Some(t) => secret_token(t.expose_secret().trim().as_bytes())
            .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?,
        None => credential_token().ok_or_else(|| {
            ErrorBody::new(ErrorCode::BadRequest, "no Connect token was given")
                .with_fix("pipe it in (op-session init --mode connect --host URL < token-file), use --token-file, or give systemd's LoadCredential=op-connect-token")
        })?,
    };
    if token.expose_secret().as_str().is_empty() {
        return Err(ErrorBody::new(
            ErrorCode::BadRequest,
            "the Connect token is empty or not text",
        ));
    }
    let secret = token.expose_secret().as_str();
    let fail = |e: ConnectError| {
        let plain = Error::from(plain(&e, &[secret]));
        // A refused token at sign-in: nothing was held to expire, so not signed in.
        let err = match e {
            ConnectError::Status { status: 401, .. } => Error::NotSignedIn(Detail {
                message: format!(
                    "the Connect server at {host} did not accept the token ({})",
                    plain.detail().message
                ),
                fix: Some(
                    "check the token (1Password > Developer > Connect servers) and pipe it in again"
                        .into(),
                ),
                ..plain.detail().clone()
            }),
            _ => plain,
        };
        warn!(code = %err.code(), "connect init failed");
        ErrorBody::from(err)
    };
    let client = ConnectClient::new(
        host,
        daemon.config.connect_ca_file.as_deref(),
        daemon.config.op_timeout,
    )
    .map_err(fail)?;
    let health = client.health().await.map_err(fail)?;
    client.heartbeat().await.map_err(fail)?;
    // /health and /heartbeat need no token: one authorized call proves it before we keep it.
    client.vaults(secret, None).await.map_err(fail)?;
    let server = ConnectServer {
        host: client.host(),
        name: health.name,
        version: health.version,
    };
    info!(host = %server.host, server = server.name.as_deref().unwrap_or(""), version = server.version.as_deref().unwrap_or(""), "Connect server checked");
    let identity = Identity {
        url: Some(server.host.clone()),
        ..Identity::default()
    };
    let name = crate::session::Account::from_request(req.account.as_deref())
        .session_name(Mode::Connect, &identity);
    // From here on every request of this session counts against its budget (crate::quota).
    let client = client.metered(Arc::new(Metered {
        quotas: daemon.quota.clone(),
        name: name.clone(),
    }));
    let link = Arc::new(Link {
        client,
        server,
        ids: IdCache::new(daemon.config.cache_ttl),
    });
    Ok(lifecycle::start(
        daemon,
        NewSession {
            identity,
            ..lifecycle::new_session(
                daemon,
                name,
                Credential::Connect {
                    token: Arc::new(token),
                    link,
                },
            )
        },
    ))
}

/// A connect session's requests, counted against its budget (all reads: resolution only
/// reads), and its 429s, which hold the session's calls back until the retry time.
#[derive(Debug)]
struct Metered {
    quotas: Arc<crate::quota::Quotas>,
    name: String,
}

impl client::Meter for Metered {
    fn charge(&self) -> Result<(), (String, u64)> {
        self.quotas
            .charge(&self.name, Mode::Connect, crate::quota::Kind::Read)
            .map_err(|r| (r.message, r.retry_after.as_secs().max(1)))
    }

    fn rate_limited(&self, retry_after: Option<u64>) {
        self.quotas
            .rate_limited(&self.name, retry_after.map(std::time::Duration::from_secs));
    }
}

/// Whether a passthrough may run against Connect: only the read-only commands `op` serves
/// from Connect ([`PASSTHROUGH_VERBS`]), and never one that starts programs or prints a
/// credential, whatever the list says.
pub(crate) fn check_passthrough(cmd: &OpCommand) -> Result<(), ErrorBody> {
    let verb = cmd.verb();
    let allowed = matches!(cmd.effect(), Effect::Read) && PASSTHROUGH_VERBS.contains(&verb);
    if allowed {
        return Ok(());
    }
    Err(ErrorBody::new(
        ErrorCode::BadRequest,
        format!("`op {verb}` is not available in connect mode"),
    )
    .with_fix(format!(
        "connect mode offers op-session read, run and inject, and the op commands {}",
        PASSTHROUGH_VERBS.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> OpCommand {
        let args: Vec<&str> = line.split_whitespace().collect();
        op_grammar::parse(&args).expect("parses")
    }

    #[test]
    fn only_read_only_connect_commands_pass() {
        for ok in [
            "item get Stripe --vault Dev",
            "item list --vault Dev",
            "vault list",
            "vault get Dev",
            "read op://Dev/Stripe/key",
            "document get doc",
        ] {
            check_passthrough(&cmd(ok)).expect(ok);
        }
        for no in [
            "item create --category login",
            "item edit Stripe key=x",
            "item delete Stripe",
            "whoami",
            "run -- env",
            "plugin run -- aws",
            "connect token create t --server s",
            "user list",
            "document delete doc",
            "signout",
        ] {
            let e = check_passthrough(&cmd(no)).expect_err(no);
            assert_eq!(e.code, ErrorCode::BadRequest);
            assert!(e.fix.contains("read, run and inject"), "{}", e.fix);
        }
    }

    #[test]
    fn statuses_map_to_exit_codes() {
        let st = |status, retry_after| ConnectError::Status {
            status,
            message: "m".into(),
            retry_after,
        };
        assert_eq!(plain(&st(401, None), &[]).code.exit_code(), 77);
        assert_eq!(plain(&st(403, None), &[]).code.exit_code(), 1);
        assert_eq!(plain(&st(404, None), &[]).code.exit_code(), 1);
        let b = plain(&st(429, Some(30)), &[]);
        assert_eq!(b.code.exit_code(), 75);
        assert!(b.message.contains("Retry-After: 30s"), "{}", b.message);
        assert_eq!(b.retry_after_s, Some(30));
        assert_eq!(plain(&st(503, None), &[]).code.exit_code(), 75);
        let down = ConnectError::Unreachable {
            host: "https://h".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(plain(&down, &[]).code.exit_code(), 69);
    }

    #[test]
    fn server_messages_are_scrubbed() {
        let e = ConnectError::Status {
            status: 403,
            message: "token eyJhbGciOi.secret-token is not allowed".into(),
            retry_after: None,
        };
        let b = plain(&e, &["eyJhbGciOi.secret-token"]);
        assert!(!b.message.contains("secret-token"), "{}", b.message);
    }
}

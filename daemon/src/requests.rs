//! What the daemon does for each request, and the audit record of it.
//!
//! One function per request kind; [`handle`] dispatches and writes one audit line per
//! request. Policy is checked before any session is touched, so a denied request costs no
//! `op` call and does not count as use.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Instant;

use op_session_protocol::{
    ErrorBody, ErrorCode, LockRequest, PROTOCOL_VERSION, PassthroughRequest, Request,
    ResolveRequest, ResolvedValue, Response, StatusReport, Values,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::UnixStream;

use op_grammar::Effect;

use crate::audit::{Record, now_rfc3339};
use crate::lifecycle;
use crate::peer::Peer;
use crate::policy;
use crate::resolve::resolve;
use crate::state::Daemon;

/// What a request did, for its audit line.
#[derive(Debug, Default)]
pub struct Outcome {
    account: Option<String>,
    verb: String,
    references: Vec<String>,
    denied: bool,
    op_exit_code: Option<i32>,
    cache_hits: usize,
    started: Option<Instant>,
}

/// Handle one decoded request. Returns the response and what the audit line needs; the
/// caller sends the response first and then calls [`audit`], so the audit's `/proc` walk and
/// file write are off the caller's latency.
pub async fn handle(
    daemon: &Arc<Daemon>,
    req: Request,
    fds: Vec<OwnedFd>,
    stream: &mut UnixStream,
) -> (Response, Outcome) {
    let started = Instant::now();
    let mut o = Outcome {
        verb: req.name().to_string(),
        ..Outcome::default()
    };
    // Descriptors come only with a passthrough (which checks for exactly three); any sent
    // with another request are closed here.
    if !fds.is_empty() && !matches!(req, Request::Passthrough(_)) {
        let got = fds.len();
        drop(fds);
        o.started = Some(started);
        return (
            Response::Error(ErrorBody::new(
                ErrorCode::BadRequest,
                format!("a {} request takes no descriptors, not {got}", req.name()),
            )),
            o,
        );
    }
    let resp = match req {
        Request::Status => Response::Status(status(daemon)),
        Request::Stop => Response::Done {
            message: "op-sessiond is stopping; sessions are wiped and revoked".into(),
        },
        Request::OpPath => match daemon.op.op_path() {
            Ok(p) => Response::OpPath {
                path: p.display().to_string(),
                configured: daemon.op.is_configured(),
            },
            Err(e) => Response::Error(ErrorBody::from(e)),
        },
        Request::Init(init) => {
            o.account = init.account.clone();
            o.verb = format!("init {}", init.mode.map(|m| m.as_str()).unwrap_or("auto"));
            match lifecycle::init(daemon, init).await {
                Ok(s) => {
                    o.account = Some(s.account.clone());
                    Response::Session(s)
                }
                Err(e) => Response::Error(e),
            }
        }
        Request::Lock(l) => lock(daemon, l, &mut o).await,
        Request::Resolve(r) => resolve_request(daemon, r, &mut o).await,
        Request::Passthrough(p) => passthrough(daemon, p, fds, stream, &mut o).await,
    };
    o.started = Some(started);
    (resp, o)
}

/// Write the audit line of a handled request.
///
/// `chain` is the peer's executable and ancestors, read at accept (see
/// [`crate::peer::identify`]).
pub fn audit(
    daemon: &Daemon,
    peer: &Peer,
    chain: Vec<crate::peer::ProcessInfo>,
    resp: &Response,
    mut o: Outcome,
) {
    let Some(audit) = &daemon.audit else {
        return;
    };
    let outcome = match resp {
        Response::Error(e) => e.code.as_str().to_string(),
        Response::Exit { code } if *code != 0 => format!("exit {code}"),
        _ => "ok".to_string(),
    };
    if let Response::Error(e) = resp
        && o.op_exit_code.is_none()
    {
        o.op_exit_code = e.op_exit_code;
    }
    audit.write(&Record {
        time: now_rfc3339(),
        peer_pid: peer.pid,
        peer_uid: peer.uid,
        peer_exe: chain.first().map(|p| p.exe.clone()),
        parents: chain.into_iter().skip(1).collect(),
        account: o.account.as_deref(),
        verb: o.verb,
        references: o.references,
        decision: if o.denied { "deny" } else { "allow" },
        outcome,
        op_exit_code: o.op_exit_code,
        cache_hits: o.cache_hits,
        duration_ms: o
            .started
            .map(|s| s.elapsed().as_millis() as u64)
            .unwrap_or(0),
        reason: None,
    });
}

/// The status report. Reads state only; never counts as use.
pub fn status(daemon: &Daemon) -> StatusReport {
    let now = daemon.clock.now();
    let mut protections = daemon.info.protections.clone();
    protections.secret_memory_locked = crate::securemem::locking_works();
    StatusReport {
        version: env!("CARGO_PKG_VERSION").to_string(),
        protocol: PROTOCOL_VERSION,
        pid: std::process::id(),
        uptime_s: daemon.info.started.elapsed().as_secs(),
        socket: daemon.info.socket.display().to_string(),
        started_by: daemon.info.started_by.clone(),
        protections,
        op_path: daemon.op.op_path().ok().map(|p| p.display().to_string()),
        default_account: daemon.sessions.default_name(),
        sessions: daemon.sessions.status(now, |a| daemon.cache.count(a, now)),
        presence: Some(daemon.presence.report(&daemon.config.presence)),
    }
}

async fn lock(daemon: &Arc<Daemon>, l: LockRequest, o: &mut Outcome) -> Response {
    if l.all {
        o.verb = "lock --all".into();
        let n = lifecycle::end_all(daemon, crate::session::EndReason::Locked).await;
        return Response::Done {
            message: match n {
                0 => "no sessions were held".into(),
                1 => "locked 1 session; its token is wiped and revoked".into(),
                n => format!("locked {n} sessions; their tokens are wiped and revoked"),
            },
        };
    }
    o.account = l.account.clone();
    match lifecycle::lock_one(daemon, l.account.as_deref()).await {
        Ok(name) => {
            o.account = Some(name.clone());
            Response::Done {
                message: format!("locked account {name}; its session is wiped and revoked"),
            }
        }
        Err(e) => Response::Error(e),
    }
}

async fn resolve_request(daemon: &Arc<Daemon>, r: ResolveRequest, o: &mut Outcome) -> Response {
    o.verb = r.purpose.as_str().to_string();
    o.references = r.refs.clone();
    o.account = r.account.clone();
    if let Err(e) = policy::check_verb(&daemon.config.policy, r.purpose.as_str(), false) {
        o.denied = true;
        return Response::Error(e);
    }
    if r.refs.is_empty() {
        return Response::Error(ErrorBody::new(
            ErrorCode::BadRequest,
            "no references to resolve",
        ));
    }
    if let Err(e) = policy::check_references(&daemon.config.policy, &r.refs) {
        o.denied = e.code == ErrorCode::PolicyDenied;
        return Response::Error(e);
    }
    let lease = match lifecycle::lease(daemon, r.account.as_deref()).await {
        Ok(l) => l,
        Err(e) => return Response::Error(e),
    };
    o.account = Some(lease.name.clone());
    lifecycle::maybe_keepalive(daemon, &lease);
    match resolve(daemon, &lease, &r.refs, r.no_cache).await {
        Ok(values) => {
            o.cache_hits = values.iter().filter(|v| v.cached).count();
            Response::Values(Values {
                account: lease.name.clone(),
                values: values
                    .into_iter()
                    .map(|v| ResolvedValue {
                        reference: v.reference,
                        value: SecretString::from(v.value.expose_secret()),
                        cached: v.cached,
                    })
                    .collect(),
            })
        }
        Err(e) => Response::Error(e),
    }
}

async fn passthrough(
    daemon: &Arc<Daemon>,
    p: PassthroughRequest,
    fds: Vec<OwnedFd>,
    stream: &mut UnixStream,
    o: &mut Outcome,
) -> Response {
    // Parsed once, here; everything below reads this typed command.
    let cmd = match crate::passthrough::parse(&p.args) {
        Ok(c) => c,
        Err(e) => {
            o.verb = "op (unreadable)".into();
            o.denied = true;
            return Response::Error(e);
        }
    };
    o.verb = format!("op {}", cmd.verb()).trim_end().to_string();
    o.references = crate::passthrough::references(&cmd);
    if let Err(e) = crate::passthrough::check(&daemon.config.policy, &cmd) {
        o.denied = true;
        return Response::Error(e);
    }
    if cmd.effect() == Effect::Local {
        // Help, `--version`, completion: no account, no credential.
        return match crate::passthrough::run(daemon, None, cmd, &p, fds, stream).await {
            Ok(code) => {
                o.op_exit_code = Some(code);
                Response::Exit { code }
            }
            Err(e) => Response::Error(e),
        };
    }
    // op's own rule: the last --account on the line, else OP_ACCOUNT (sent by the client).
    let account = cmd.account().map(str::to_string).or(p.account.clone());
    o.account = account.clone();
    let lease = match lifecycle::lease(daemon, account.as_deref()).await {
        Ok(l) => l,
        Err(e) => return Response::Error(e),
    };
    o.account = Some(lease.name.clone());
    if lease.mode == op_session_protocol::Mode::Connect
        && let Err(e) = crate::connect::check_passthrough(&cmd)
    {
        o.denied = true;
        return Response::Error(e);
    }
    match crate::passthrough::run(daemon, Some(&lease), cmd, &p, fds, stream).await {
        Ok(code) => {
            o.op_exit_code = Some(code);
            Response::Exit { code }
        }
        Err(e) => Response::Error(e),
    }
}

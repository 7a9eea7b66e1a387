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

use crate::audit::{AuditRecord, Decision, now_rfc3339};
use crate::confirm::Caller;
use crate::grants::Grant;
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
    grant: Option<String>,
    /// Who relayed the request (`op-session mcp`), for the audit line.
    via: Option<op_session_protocol::Via>,
    /// A value was returned to a relaying client (MCP `read_secret`).
    reveal: bool,
    /// How a person confirmed it (`[confirm]`).
    confirm: Option<op_session_protocol::ConfirmRecord>,
}

/// Who sent a request, read once by the server from the peer's process chain.
#[derive(Clone, Copy)]
pub struct Callers<'a> {
    /// The peer as the per-caller brake counts it ([`crate::brake::caller_key`]); `None` when
    /// it could not be told (or the brake is off).
    pub brake: Option<&'a str>,
    /// The peer as a confirmation prompt names it ([`crate::confirm::Caller`]).
    pub confirm: &'a Caller,
}

/// Handle one decoded request. Returns the response and what the audit line needs; the
/// caller sends the response first and then calls [`audit`], so the audit's `/proc` walk and
/// file write are off the caller's latency.
pub async fn handle(
    daemon: &Arc<Daemon>,
    req: Request,
    fds: Vec<OwnedFd>,
    stream: &mut UnixStream,
    scope: Option<&Grant>,
    callers: Callers<'_>,
) -> (Response, Outcome) {
    let started = Instant::now();
    let mut o = Outcome {
        verb: req.name().to_string(),
        grant: scope.map(|g| g.name.clone()),
        ..Outcome::default()
    };
    if let Some(g) = scope
        && let Some(e) = grants_refuse(g, &req)
    {
        o.denied = true;
        o.started = Some(started);
        return (Response::Error(e), o);
    }
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
                config: Some(daemon.info.config_path.display().to_string()),
            },
            Err(e) => Response::Error(ErrorBody::from(e)),
        },
        Request::Init(init) => {
            o.account = init.account.clone();
            o.verb = format!("init {}", init.mode.map(|m| m.as_str()).unwrap_or("auto"));
            match crate::init::init(daemon, init).await {
                Ok(s) => {
                    o.account = Some(s.account.clone());
                    Response::Session(s)
                }
                Err(e) => Response::Error(e.into()),
            }
        }
        Request::Lock(_) if let Some(g) = scope => {
            // Through a grant, `lock` gives the grant up (and nothing else).
            daemon.grants.revoke(&g.name, "its holder locked it");
            Response::Done {
                message: format!("grant {} ended; its socket is removed", g.name),
            }
        }
        Request::Lock(l) => lock(daemon, l, &mut o).await,
        Request::Resolve(r) => resolve_request(daemon, r, &mut o, scope, callers, stream).await,
        Request::Passthrough(p) => {
            passthrough(daemon, p, fds, stream, &mut o, scope, callers.confirm).await
        }
        Request::Approvals(a) => {
            o.verb = if a.forget {
                "approvals --forget"
            } else {
                "approvals"
            }
            .into();
            if a.forget {
                let n = daemon.confirm.forget_all();
                tracing::info!(
                    approvals = n,
                    "remembered confirmations forgotten on request"
                );
            }
            Response::Approvals {
                approvals: daemon.confirm.approvals(&daemon.sessions),
            }
        }
        Request::Grant(g) => {
            o.verb = format!("grant {}", g.name);
            o.account = g.account.clone();
            match crate::grants::socket::open(daemon, g).await {
                Ok(info) => {
                    o.account = Some(info.account.clone());
                    Response::Grant(info)
                }
                Err(e) => Response::Error(e),
            }
        }
        Request::Grants => Response::GrantList {
            grants: daemon.grants.list(daemon.clock.now()),
        },
        Request::Revoke(r) => {
            o.verb = format!("revoke {}", r.name);
            match daemon.grants.revoke(&r.name, "revoked") {
                Some(_) => Response::Done {
                    message: format!("grant {} ended; its socket is removed", r.name),
                },
                None => Response::Error(
                    ErrorBody::new(ErrorCode::BadRequest, format!("no grant named {}", r.name))
                        .with_fix("op-session grants lists them"),
                ),
            }
        }
        // Requests relayed by `op-session mcp`: see mcp.rs.
        Request::McpInfo => Response::McpInfo(crate::mcp::info(daemon)),
        Request::Check(c) => {
            o.verb = "check".into();
            o.references = vec![c.reference.clone()];
            o.account = c.account.clone();
            o.via = c.via.clone();
            match crate::mcp::check(daemon, &c).await {
                Ok(report) => {
                    o.account = Some(report.account.clone());
                    o.cache_hits = usize::from(report.cached);
                    Response::Checked(report)
                }
                Err(e) => {
                    o.denied = e.code == ErrorCode::PolicyDenied;
                    Response::Error(e)
                }
            }
        }
        Request::Item(r) => {
            o.verb = crate::mcp::item_verb(&r.op).into();
            o.account = r.account.clone();
            o.via = r.via.clone();
            let mut ask = crate::confirm::Ask::new(callers.confirm, stream);
            let done = crate::mcp::item(daemon, &r, &mut ask).await;
            o.confirm = ask.record;
            match done {
                Ok((account, json)) => {
                    o.account = Some(account);
                    Response::Item { json }
                }
                Err(e) => {
                    o.denied = matches!(e.code, ErrorCode::PolicyDenied | ErrorCode::ConfirmDenied);
                    Response::Error(e)
                }
            }
        }
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
    audit.write(&AuditRecord {
        time: now_rfc3339(),
        peer_pid: peer.pid,
        peer_uid: peer.uid,
        peer_exe: chain.first().map(|p| p.exe.clone()),
        parents: chain.into_iter().skip(1).collect(),
        account: o.account,
        verb: o.verb,
        references: o.references,
        decision: if o.denied {
            Decision::Deny
        } else {
            Decision::Allow
        },
        outcome,
        op_exit_code: o.op_exit_code,
        cache_hits: o.cache_hits,
        negative_cache: matches!(resp, Response::Error(e) if e.remembered),
        via: o.via.as_ref().map(|v| v.channel.clone()),
        client_name: o.via.as_ref().and_then(|v| v.client_name.clone()),
        // A reveal is recorded only when a value actually went back.
        reveal: o.reveal && !matches!(resp, Response::Error(_)),
        duration_ms: o
            .started
            .map(|s| s.elapsed().as_millis() as u64)
            .unwrap_or(0),
        reason: None,
        grant: o.grant,
        confirm: o.confirm,
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
        started_by: daemon.info.started_by,
        protections,
        op_path: daemon.op.op_path().ok().map(|p| p.display().to_string()),
        default_account: daemon.sessions.default_name(),
        sessions: daemon
            .sessions
            .status(now, |a| daemon.cache.count(a, now))
            .into_iter()
            .map(|mut s| {
                s.quota = daemon.quota.status(&s.account, s.mode);
                s
            })
            .collect(),
        config_path: Some(daemon.info.config_path.display().to_string()),
        presence: Some(daemon.presence.report(&daemon.config.presence)),
        confirm: daemon.confirm.status(&daemon.sessions),
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
        Err(e) => Response::Error(e.into()),
    }
}

/// What a grant socket never does: start, stop or lock sessions, open, list or end other
/// grants, or tell which `op` binary runs. `lock` and `revoke` of the grant itself end it.
fn grants_refuse(g: &Grant, req: &Request) -> Option<ErrorBody> {
    let allowed = match req {
        Request::Status | Request::Resolve(_) | Request::Passthrough(_) | Request::Lock(_) => true,
        Request::Revoke(r) => r.name == g.name,
        // The MCP server talks to the main socket.
        Request::Stop
        | Request::OpPath
        | Request::Init(_)
        | Request::Grant(_)
        | Request::Grants
        | Request::McpInfo
        | Request::Check(_)
        | Request::Item(_)
        | Request::Approvals(_) => false,
    };
    (!allowed).then(|| {
        ErrorBody::new(
            ErrorCode::PolicyDenied,
            format!("`{}` is not allowed through grant {}", req.name(), g.name),
        )
        .with_fix("use the main op-session socket")
    })
}

/// Borrow the session a grant draws on; a re-initialized session ended the grant.
async fn grant_lease(
    daemon: &Arc<Daemon>,
    g: &Grant,
) -> Result<crate::session::Lease, crate::error::Error> {
    let lease = crate::init::lease_or_start(daemon, Some(g.account())).await?;
    if !daemon
        .sessions
        .is_current(&lease.name, g.generation(), daemon.clock.now())
    {
        daemon
            .grants
            .revoke(&g.name, "the session it draws on ended");
        return Err(
            crate::error::Error::Expired(crate::error::Detail::new(format!(
                "grant {} ended with the session it drew on",
                g.name
            )))
            .with_fix("ask for a new grant once the session is started again"),
        );
    }
    Ok(lease)
}

async fn resolve_request(
    daemon: &Arc<Daemon>,
    r: ResolveRequest,
    o: &mut Outcome,
    scope: Option<&Grant>,
    callers: Callers<'_>,
    stream: &UnixStream,
) -> Response {
    o.verb = r.purpose.as_str().to_string();
    o.references = r.refs.clone();
    o.account = r.account.clone();
    o.via = r.via.clone();
    if let Err(e) = policy::check_verb(&daemon.config.policy, r.purpose.as_str(), false) {
        o.denied = true;
        return Response::Error(e);
    }
    // `[mcp] reveal` and `[mcp] run_allow`, for requests relayed by `op-session mcp`.
    if let Some(resp) = crate::mcp::gate_resolve(daemon, &r) {
        o.denied = matches!(&resp, Response::Error(e) if e.code == ErrorCode::PolicyDenied);
        return resp;
    }
    o.reveal = r.reveal && r.via.as_ref().is_some_and(|v| v.is_mcp());
    if r.refs.is_empty() {
        return Response::Error(ErrorBody::new(
            ErrorCode::BadRequest,
            "no references to resolve",
        ));
    }
    // Parsed once, here; the grant's scope and the resolver read these parses.
    let refs = match policy::parse_references(&daemon.config.policy, &r.refs) {
        Ok(refs) => refs,
        Err(e) => {
            o.denied = e.code == ErrorCode::PolicyDenied;
            return Response::Error(e);
        }
    };
    // Through a grant: its verbs, vaults and references, its budget, its session.
    let reads = r.refs.len() as u64;
    if let Some(g) = scope
        && let Err(e) = g
            .check_verb(r.purpose.as_str())
            .and_then(|_| g.check_requested(&refs))
            .and_then(|_| g.reserve(reads))
    {
        o.denied = true;
        return Response::Error(e);
    }
    let lease = match scope {
        Some(g) => grant_lease(daemon, g).await,
        None => crate::init::lease_or_start(daemon, r.account.as_deref()).await,
    };
    let lease = match lease {
        Ok(l) => l,
        Err(e) => {
            scope.inspect(|g| g.refund(reads));
            return Response::Error(e.into());
        }
    };
    o.account = Some(lease.name.clone());
    // A person confirms matching references before any value is handed out, cached or not.
    let force = scope.is_some_and(|g| g.confirm);
    let subjects: Vec<_> = r
        .refs
        .iter()
        .filter(|x| force || daemon.confirm.matches_reference(x))
        .map(|x| crate::confirm::Subject::reference(x))
        .collect();
    if !subjects.is_empty() {
        let gate = daemon
            .confirm
            .gate(&daemon.sessions, callers.confirm, &lease, &subjects, stream)
            .await;
        o.confirm = gate.record;
        if let Err(e) = gate.result {
            o.denied = e.code == ErrorCode::ConfirmDenied;
            scope.inspect(|g| g.refund(reads));
            return Response::Error(e);
        }
    }
    lifecycle::maybe_keepalive(daemon, &lease);
    // A caller looping on errors is answered from memory only (brake.rs).
    let caller = callers.brake;
    let resolved = match caller.filter(|_| daemon.brake.braked(caller)) {
        Some(who) => {
            let name = crate::brake::caller_name(who);
            crate::resolve::from_memory(daemon, &lease, &refs, name).await
        }
        None => resolve(daemon, &lease, &refs, r.no_cache).await,
    };
    daemon.brake.record(caller, resolved.is_err());
    if resolved.is_err() {
        scope.inspect(|g| g.refund(reads));
    }
    match resolved {
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
        Err(e) => Response::Error(e.into()),
    }
}

async fn passthrough(
    daemon: &Arc<Daemon>,
    p: PassthroughRequest,
    fds: Vec<OwnedFd>,
    stream: &mut UnixStream,
    o: &mut Outcome,
    scope: Option<&Grant>,
    caller: &Caller,
) -> Response {
    // Parsed once, here; everything below reads this typed command.
    let cmd = match crate::passthrough::parse(&p.args) {
        Ok(c) => c,
        Err(e) => {
            o.verb = "op (unreadable)".into();
            o.denied = true;
            return Response::Error(e.into());
        }
    };
    o.verb = format!("op {}", cmd.verb()).trim_end().to_string();
    o.references = crate::passthrough::references(&cmd);
    if let Err(e) = crate::passthrough::check(&daemon.config.policy, &cmd)
        .and_then(|_| scope.map_or(Ok(()), |g| Ok(g.check_passthrough(&cmd)?)))
    {
        o.denied = true;
        return Response::Error(e.into());
    }
    // Through a grant with a read budget: every value a passthrough returns is charged, as
    // `op-session read` charges it (refunded if op fails).
    let charged = match scope.map(|g| g.passthrough_reads(&cmd).map(|n| (g, n))) {
        Some(Ok((g, Some(n)))) => match g.reserve(n) {
            Ok(()) => Some((g, n)),
            Err(e) => {
                o.denied = true;
                return Response::Error(e);
            }
        },
        Some(Err(e)) => {
            o.denied = true;
            return Response::Error(e);
        }
        Some(Ok((_, None))) | None => None,
    };
    let refund = |ok: bool| {
        if let Some((g, n)) = charged
            && !ok
        {
            g.refund(n);
        }
    };
    if cmd.effect() == Effect::Local {
        // Help, `--version`, completion: no account, no credential.
        return match crate::passthrough::run(daemon, None, cmd, &p, fds, stream).await {
            Ok(code) => {
                o.op_exit_code = Some(code);
                Response::Exit { code }
            }
            Err(e) => Response::Error(e.into()),
        };
    }
    // op's own rule: the last --account on the line, else OP_ACCOUNT (sent by the client).
    // Through a grant, always the grant's session.
    let account = cmd.account().map(str::to_string).or(p.account.clone());
    o.account = account.clone();
    let lease = match scope {
        Some(g) => grant_lease(daemon, g).await,
        None => crate::init::lease_or_start(daemon, account.as_deref()).await,
    };
    let lease = match lease {
        Ok(l) => l,
        Err(e) => {
            refund(false);
            return Response::Error(e.into());
        }
    };
    o.account = Some(lease.name.clone());
    if lease.mode == op_session_protocol::Mode::Connect
        && let Err(e) = crate::connect::check_passthrough(&cmd)
    {
        refund(false);
        o.denied = true;
        return Response::Error(e);
    }
    // Commands that print a matching item's fields wait for a person, as reads do.
    let mut ask = crate::confirm::Ask::new(caller, stream);
    let asked = ask
        .command(
            &daemon.confirm,
            &daemon.sessions,
            &lease,
            &cmd,
            scope.is_some_and(|g| g.confirm),
        )
        .await;
    o.confirm = ask.record;
    if let Err(e) = asked {
        refund(false);
        o.denied = e.code == ErrorCode::ConfirmDenied;
        return Response::Error(e);
    }
    match crate::passthrough::run(daemon, Some(&lease), cmd, &p, fds, stream).await {
        Ok(code) => {
            refund(code == 0);
            o.op_exit_code = Some(code);
            Response::Exit { code }
        }
        Err(e) => {
            refund(false);
            Response::Error(e.into())
        }
    }
}

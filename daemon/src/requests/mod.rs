//! What the daemon does for each request, and the audit record of it.
//!
//! One module per request kind, as mini-redis has one per command: each implements
//! [`Handle`] for its wire type, taking the request by value and the connection's [`Ctx`], and
//! answers with the reply and the [`AuditFacts`] of what it did, or a [`Failed`] that carries
//! the typed [`Error`] and the facts known when it failed. [`handle`] dispatches; the error
//! becomes the wire `ErrorBody` here, once. Policy is checked before any session is touched,
//! so a denied request costs no `op` call and does not count as use.

mod approvals;
mod check;
mod grant;
mod init;
mod item;
mod lock;
mod passthrough;
mod resolve;
mod revoke;
mod status;

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Instant;

use op_session_protocol::{ConfirmRecord, Request, Response, Via};
use tokio::net::UnixStream;

use crate::audit::{AuditRecord, Decision, now_rfc3339};
use crate::confirm::Caller;
use crate::error::{Detail, Error};
use crate::grants::Grant;
use crate::peer::Peer;
use crate::session::Lease;
use crate::state::Daemon;

/// Who sent a request, read once by the server from the peer's process chain.
#[derive(Clone, Copy)]
pub(crate) struct Callers<'a> {
    /// The peer as the per-caller brake counts it ([`crate::brake::caller_key`]); `None` when
    /// it could not be told (or the brake is off).
    pub brake: Option<&'a str>,
    /// The peer as a confirmation prompt names it ([`crate::confirm::Caller`]).
    pub confirm: &'a Caller,
}

/// What a request runs with: the daemon, the grant it came through, who sent it, and its
/// connection (for prompts that watch the caller, and a passthrough's descriptors).
pub(crate) struct Ctx<'a> {
    /// The daemon.
    pub daemon: &'a Arc<Daemon>,
    /// The grant the request came through; `None` on the main socket.
    pub scope: Option<&'a Grant>,
    /// Who sent it.
    pub callers: Callers<'a>,
    /// The caller's connection.
    pub stream: &'a mut UnixStream,
    /// Descriptors sent with a passthrough (stdin, stdout, stderr).
    pub fds: Vec<OwnedFd>,
}

impl Ctx<'_> {
    /// Borrow the session a request uses: the grant's, else `account`'s (or the default).
    async fn lease(&self, account: Option<&str>) -> Result<Lease, Error> {
        match self.scope {
            Some(g) => grant_lease(self.daemon, g).await,
            None => crate::init::lease_or_start(self.daemon, account).await,
        }
    }
}

/// What a request did, for its audit line. The decision and outcome come from the answer.
#[derive(Debug, Default, Clone)]
pub(crate) struct AuditFacts {
    /// The account (as asked, then as resolved).
    pub account: Option<String>,
    /// What was done (`read`, `op item get`, `grant NAME`, …).
    pub verb: String,
    /// The references asked for.
    pub references: Vec<String>,
    /// `op`'s exit code, when it ran.
    pub op_exit_code: Option<i32>,
    /// Values answered from the cache.
    pub cache_hits: usize,
    /// Who relayed the request (`op-session mcp`).
    pub via: Option<Via>,
    /// A value was returned to a relaying client (MCP `read_secret`).
    pub reveal: bool,
    /// How a person confirmed it (`[confirm]`).
    pub confirm: Option<ConfirmRecord>,
}

impl AuditFacts {
    /// Facts for `verb`.
    fn verb(verb: impl Into<String>) -> Self {
        AuditFacts {
            verb: verb.into(),
            ..AuditFacts::default()
        }
    }

    /// Failed with `error`, with the facts known so far.
    fn fail(&self, error: impl Into<Error>) -> Failed {
        Failed {
            error: error.into(),
            facts: Box::new(self.clone()),
        }
    }
}

/// A request that failed: why, and what its audit line says.
#[derive(Debug)]
pub(crate) struct Failed {
    /// Why.
    pub error: Error,
    /// What was known when it failed.
    pub facts: Box<AuditFacts>,
}

/// A handled request.
type Handled = Result<(Response, AuditFacts), Failed>;

/// One request kind.
trait Handle {
    /// Do it.
    async fn handle(self, ctx: &mut Ctx<'_>) -> Handled;
}

/// What the audit line needs beyond the facts: when it started, through which grant, and
/// whether a rule or person refused it.
pub(crate) struct Outcome {
    facts: AuditFacts,
    started: Instant,
    grant: Option<String>,
    denied: bool,
}

/// Handle one decoded request. Returns the response and what the audit line needs; the
/// caller sends the response first and then calls [`audit`], so the audit's `/proc` walk and
/// file write are off the caller's latency.
///
/// `reused` says the request came on a reused connection (the reuse preamble), which carries
/// no passthrough: that needs descriptors and a stream of its own.
pub(crate) async fn handle(
    daemon: &Arc<Daemon>,
    req: Request,
    fds: Vec<OwnedFd>,
    reused: bool,
    stream: &mut UnixStream,
    scope: Option<&Grant>,
    callers: Callers<'_>,
) -> (Response, Outcome) {
    let started = Instant::now();
    let grant = scope.map(|g| g.name.clone());
    let handled = dispatch(daemon, req, fds, reused, stream, scope, callers).await;
    let (resp, facts, denied) = match handled {
        Ok((resp, facts)) => (resp, facts, false),
        Err(Failed { error, facts }) => {
            let denied = error.is_denial();
            (Response::Error(error.into()), *facts, denied)
        }
    };
    (
        resp,
        Outcome {
            facts,
            started,
            grant,
            denied,
        },
    )
}

async fn dispatch(
    daemon: &Arc<Daemon>,
    req: Request,
    fds: Vec<OwnedFd>,
    reused: bool,
    stream: &mut UnixStream,
    scope: Option<&Grant>,
    callers: Callers<'_>,
) -> Handled {
    if let Some(g) = scope {
        refuse_through_grant(g, &req)?;
    }
    if reused && matches!(req, Request::Passthrough(_)) {
        return Err(AuditFacts::verb(req.name()).fail(Error::bad_request(
            "a passthrough needs a connection of its own, not a reused one",
        )));
    }
    // Descriptors come only with a passthrough (which checks for exactly three); any sent
    // with another request are closed here.
    if !fds.is_empty() && !matches!(req, Request::Passthrough(_)) {
        let got = fds.len();
        drop(fds);
        return Err(
            AuditFacts::verb(req.name()).fail(Error::bad_request(format!(
                "a {} request takes no descriptors, not {got}",
                req.name()
            ))),
        );
    }
    let mut ctx = Ctx {
        daemon,
        scope,
        callers,
        stream,
        fds,
    };
    let ctx = &mut ctx;
    match req {
        Request::Status => status::Status.handle(ctx).await,
        Request::Stop => status::Stop.handle(ctx).await,
        Request::OpPath => status::OpPath.handle(ctx).await,
        Request::Init(r) => r.handle(ctx).await,
        Request::Lock(r) => r.handle(ctx).await,
        Request::Resolve(r) => r.handle(ctx).await,
        Request::Passthrough(r) => r.handle(ctx).await,
        Request::Approvals(r) => r.handle(ctx).await,
        Request::Grant(r) => r.handle(ctx).await,
        Request::Grants => grant::List.handle(ctx).await,
        Request::Revoke(r) => r.handle(ctx).await,
        // Requests relayed by `op-session mcp`: see mcp.rs.
        Request::McpInfo => check::Info.handle(ctx).await,
        Request::Check(r) => r.handle(ctx).await,
        Request::Item(r) => r.handle(ctx).await,
    }
}

/// What a grant socket never does: start, stop or lock sessions, open, list or end other
/// grants, or tell which `op` binary runs. `lock` and `revoke` of the grant itself end it.
fn refuse_through_grant(g: &Grant, req: &Request) -> Result<(), Failed> {
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
    if allowed {
        return Ok(());
    }
    Err(AuditFacts::verb(req.name()).fail(
        Error::denied(format!(
            "`{}` is not allowed through grant {}",
            req.name(),
            g.name
        ))
        .with_fix("use the main op-session socket"),
    ))
}

/// Borrow the session a grant draws on; a re-initialized session ended the grant.
async fn grant_lease(daemon: &Arc<Daemon>, g: &Grant) -> Result<Lease, Error> {
    let lease = crate::init::lease_or_start(daemon, Some(g.account())).await?;
    if !daemon
        .sessions
        .is_current(&lease.name, g.generation(), daemon.clock.now())
    {
        daemon
            .grants
            .revoke(&g.name, "the session it draws on ended");
        return Err(Error::Expired(Detail::new(format!(
            "grant {} ended with the session it drew on",
            g.name
        )))
        .with_fix("ask for a new grant once the session is started again"));
    }
    Ok(lease)
}

/// Write the audit line of a handled request.
///
/// `chain` is the peer's executable and ancestors, read at accept (see
/// [`crate::peer::identify`]).
pub(crate) fn audit(
    daemon: &Daemon,
    peer: &Peer,
    chain: Vec<crate::peer::ProcessInfo>,
    resp: &Response,
    o: Outcome,
) {
    let Some(audit) = &daemon.audit else {
        return;
    };
    let Outcome {
        facts: f,
        started,
        grant,
        denied,
    } = o;
    let outcome = match resp {
        Response::Error(e) => e.code.as_str().to_string(),
        Response::Exit { code } if *code != 0 => format!("exit {code}"),
        _ => "ok".to_string(),
    };
    let op_exit_code = match resp {
        Response::Error(e) if f.op_exit_code.is_none() => e.op_exit_code,
        _ => f.op_exit_code,
    };
    audit.write(&AuditRecord {
        time: now_rfc3339(),
        peer_pid: peer.pid,
        peer_uid: peer.uid,
        peer_exe: chain.first().map(|p| p.exe.clone()),
        parents: chain.into_iter().skip(1).collect(),
        account: f.account,
        verb: f.verb,
        references: f.references,
        decision: if denied {
            Decision::Deny
        } else {
            Decision::Allow
        },
        outcome,
        op_exit_code,
        cache_hits: f.cache_hits,
        negative_cache: matches!(resp, Response::Error(e) if e.remembered),
        via: f.via.as_ref().map(|v| v.channel().to_string()),
        client_name: f
            .via
            .as_ref()
            .and_then(|v| v.client_name().map(str::to_string)),
        // A reveal is recorded only when a value actually went back.
        reveal: f.reveal && !matches!(resp, Response::Error(_)),
        duration_ms: started.elapsed().as_millis() as u64,
        reason: None,
        grant,
        confirm: f.confirm,
    });
}

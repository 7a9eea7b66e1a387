//! `status`, `stop` and `op-path`: what the daemon is, reading state only.

use op_session_protocol::{PROTOCOL_VERSION, Response, StatusReport};

use super::{AuditFacts, Ctx, Handle, Handled};
use crate::error::Error;
use crate::state::Daemon;

/// `status`.
pub(super) struct Status;

/// `stop`: answered here; the server stops the daemon once the answer is out.
pub(super) struct Stop;

/// `op-path`: which `op` binary runs.
pub(super) struct OpPath;

impl Handle for Status {
    async fn handle(self, ctx: &mut Ctx<'_>) -> Handled {
        Ok((
            Response::Status(status(ctx.daemon)),
            AuditFacts::verb("status"),
        ))
    }
}

impl Handle for Stop {
    async fn handle(self, _: &mut Ctx<'_>) -> Handled {
        Ok((
            Response::Done {
                message: "op-sessiond is stopping; sessions are wiped and revoked".into(),
            },
            AuditFacts::verb("stop"),
        ))
    }
}

impl Handle for OpPath {
    async fn handle(self, ctx: &mut Ctx<'_>) -> Handled {
        let facts = AuditFacts::verb("op_path");
        let daemon = ctx.daemon;
        let p = daemon
            .op
            .op_path()
            .map_err(|e| facts.fail(Error::from(e)))?;
        Ok((
            Response::OpPath {
                path: p.display().to_string(),
                configured: daemon.op.is_configured(),
                config: Some(daemon.info.config_path.display().to_string()),
            },
            facts,
        ))
    }
}

/// The status report. Reads state only; never counts as use.
pub(crate) fn status(daemon: &Daemon) -> StatusReport {
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

//! `passthrough`: run `op` for the caller with its own stdin, stdout and stderr.
//!
//! The command line is read once by the grammar ([`crate::passthrough::parse`]); every
//! refusal below is recorded as denied. Through a grant with a read budget, every value the
//! command returns is charged up front and refunded if `op` fails.

use op_grammar::Effect;
use op_session_protocol::{Mode, PassthroughRequest, Response};

use super::{AuditFacts, Ctx, Handle, Handled};
use crate::error::Error;
use crate::passthrough as pt;

impl Handle for PassthroughRequest {
    async fn handle(self, ctx: &mut Ctx<'_>) -> Handled {
        let daemon = ctx.daemon;
        let scope = ctx.scope;
        let p = self;
        // Parsed once, here; everything below reads this typed command.
        let cmd = pt::parse(&p.args)
            .map_err(|e| AuditFacts::verb("op (unreadable)").fail(e.refused()))?;
        let mut facts = AuditFacts {
            references: pt::references(&cmd),
            ..AuditFacts::verb(format!("op {}", cmd.verb()).trim_end())
        };
        pt::check(&daemon.config.policy, &cmd)
            .and_then(|_| scope.map_or(Ok(()), |g| g.check_passthrough(&cmd)))
            .map_err(|e| facts.fail(e.refused()))?;
        // Through a grant with a read budget: every value a passthrough returns is charged,
        // as `op-session read` charges it (refunded if op fails).
        let charged = match scope {
            Some(g) => match g.passthrough_reads(&cmd) {
                Ok(Some(n)) => {
                    g.reserve(n).map_err(|e| facts.fail(e.refused()))?;
                    Some((g, n))
                }
                Ok(None) => None,
                Err(e) => return Err(facts.fail(e.refused())),
            },
            None => None,
        };
        let refund = |ok: bool| {
            if let Some((g, n)) = charged
                && !ok
            {
                g.refund(n);
            }
        };
        let fds = std::mem::take(&mut ctx.fds);
        if cmd.effect() == Effect::Local {
            // Help, `--version`, completion: no account, no credential.
            let code = pt::run(daemon, None, cmd, &p, fds, ctx.stream)
                .await
                .map_err(|e| facts.fail(e))?;
            facts.op_exit_code = Some(code);
            return Ok((Response::Exit { code }, facts));
        }
        // op's own rule: the last --account on the line, else OP_ACCOUNT (sent by the
        // client). Through a grant, always the grant's session.
        let account = cmd.account().map(str::to_string).or(p.account.clone());
        facts.account = account.clone();
        let lease = ctx.lease(account.as_deref()).await.map_err(|e| {
            refund(false);
            facts.fail(e)
        })?;
        facts.account = Some(lease.name.clone());
        if lease.mode() == Mode::Connect {
            crate::connect::check_passthrough(&cmd).map_err(|e| {
                refund(false);
                facts.fail(Error::from(e).refused())
            })?;
        }
        // Commands that print a matching item's fields wait for a person, as reads do.
        let mut ask = crate::confirm::Ask::new(ctx.callers.confirm, ctx.stream);
        let asked = ask
            .command(
                &daemon.confirm,
                &daemon.sessions,
                &lease,
                &cmd,
                scope.is_some_and(|g| g.confirm),
            )
            .await;
        facts.confirm = ask.record;
        asked.map_err(|e| {
            refund(false);
            facts.fail(e)
        })?;
        let ran = pt::run(daemon, Some(&lease), cmd, &p, fds, ctx.stream).await;
        refund(matches!(ran, Ok(0)));
        let code = ran.map_err(|e| facts.fail(e))?;
        facts.op_exit_code = Some(code);
        Ok((Response::Exit { code }, facts))
    }
}

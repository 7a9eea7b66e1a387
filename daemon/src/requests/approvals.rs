//! `approvals`: the confirmations a person made that are remembered, and forgetting them.

use op_session_protocol::{ApprovalsRequest, Response};

use super::{AuditFacts, Ctx, Handle, Handled};

impl Handle for ApprovalsRequest {
    async fn handle(self, ctx: &mut Ctx<'_>) -> Handled {
        let daemon = ctx.daemon;
        let verb = if self.forget {
            let n = daemon.confirm.forget_all();
            tracing::info!(
                approvals = n,
                "remembered confirmations forgotten on request"
            );
            "approvals --forget"
        } else {
            "approvals"
        };
        Ok((
            Response::Approvals {
                approvals: daemon.confirm.approvals(&daemon.sessions),
            },
            AuditFacts::verb(verb),
        ))
    }
}

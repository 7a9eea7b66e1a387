//! `grant` and `grants`: open a scoped grant socket, and list the open ones.

use op_session_protocol::{GrantRequest, Response};

use super::{AuditFacts, Ctx, Handle, Handled};

/// `grants`: list them.
pub(super) struct List;

impl Handle for GrantRequest {
    async fn handle(self, ctx: &mut Ctx<'_>) -> Handled {
        let mut facts = AuditFacts {
            account: self.account.clone(),
            ..AuditFacts::verb(format!("grant {}", self.name))
        };
        let info = crate::grants::socket::open(ctx.daemon, self)
            .await
            .map_err(|e| facts.fail(e))?;
        facts.account = Some(info.account.clone());
        Ok((Response::Grant(info), facts))
    }
}

impl Handle for List {
    async fn handle(self, ctx: &mut Ctx<'_>) -> Handled {
        let daemon = ctx.daemon;
        Ok((
            Response::GrantList {
                grants: daemon.grants.list(daemon.clock.now()),
            },
            AuditFacts::verb("grants"),
        ))
    }
}

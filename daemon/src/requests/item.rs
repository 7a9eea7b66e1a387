//! `item`, for `op-session mcp`'s item tools: list, get, create, edit, delete through the
//! daemon's session, after policy and any confirmation ([`crate::mcp::item`]).

use op_session_protocol::{ItemRequest, Response};

use super::{AuditFacts, Ctx, Handle, Handled};

impl Handle for ItemRequest {
    async fn handle(self, ctx: &mut Ctx<'_>) -> Handled {
        let mut facts = AuditFacts {
            account: self.account.clone(),
            via: self.via.clone(),
            ..AuditFacts::verb(crate::mcp::item_verb(&self.op))
        };
        let mut ask = crate::confirm::Ask::new(ctx.callers.confirm, ctx.stream);
        let done = crate::mcp::item(ctx.daemon, &self, &mut ask).await;
        facts.confirm = ask.record;
        let (account, json) = done.map_err(|e| facts.fail(e))?;
        facts.account = Some(account);
        Ok((Response::Item { json }, facts))
    }
}

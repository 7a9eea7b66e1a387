//! `mcp_info` and `check`, for `op-session mcp`: what it may offer, and whether a reference
//! resolves (never its value). The decisions are in [`crate::mcp`].

use op_session_protocol::{CheckRequest, Response};

use super::{AuditFacts, Ctx, Handle, Handled};

/// `mcp_info`.
pub(super) struct Info;

impl Handle for Info {
    async fn handle(self, ctx: &mut Ctx<'_>) -> Handled {
        Ok((
            Response::McpInfo(crate::mcp::info(ctx.daemon)),
            AuditFacts::verb("mcp_info"),
        ))
    }
}

impl Handle for CheckRequest {
    async fn handle(self, ctx: &mut Ctx<'_>) -> Handled {
        let mut facts = AuditFacts {
            references: vec![self.reference.clone()],
            account: self.account.clone(),
            via: self.via.clone(),
            ..AuditFacts::verb("check")
        };
        let report = crate::mcp::check(ctx.daemon, &self)
            .await
            .map_err(|e| facts.fail(e))?;
        facts.account = Some(report.account.clone());
        facts.cache_hits = usize::from(report.cached);
        Ok((Response::Checked(report), facts))
    }
}

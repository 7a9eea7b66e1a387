//! `init`: sign a session in ([`crate::init`] does it per mode).

use op_session_protocol::{InitRequest, Response};

use super::{AuditFacts, Ctx, Handle, Handled};

impl Handle for InitRequest {
    async fn handle(self, ctx: &mut Ctx<'_>) -> Handled {
        let mut facts = AuditFacts {
            account: self.account.clone(),
            ..AuditFacts::verb(format!(
                "init {}",
                self.mode.map(|m| m.as_str()).unwrap_or("auto")
            ))
        };
        let s = crate::init::init(ctx.daemon, self)
            .await
            .map_err(|e| facts.fail(e))?;
        facts.account = Some(s.account.clone());
        Ok((Response::Session(s), facts))
    }
}

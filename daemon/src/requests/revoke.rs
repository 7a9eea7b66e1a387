//! `revoke`: end a grant by name.

use op_session_protocol::{Response, RevokeRequest};

use super::{AuditFacts, Ctx, Handle, Handled};
use crate::error::Error;

impl Handle for RevokeRequest {
    async fn handle(self, ctx: &mut Ctx<'_>) -> Handled {
        let facts = AuditFacts::verb(format!("revoke {}", self.name));
        match ctx.daemon.grants.revoke(&self.name, "revoked") {
            Some(_) => Ok((
                Response::Done {
                    message: format!("grant {} ended; its socket is removed", self.name),
                },
                facts,
            )),
            None => Err(facts.fail(
                Error::bad_request(format!("no grant named {}", self.name))
                    .with_fix("op-session grants lists them"),
            )),
        }
    }
}

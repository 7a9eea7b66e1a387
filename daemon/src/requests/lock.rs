//! `lock`: end one session or all of them; through a grant, end the grant.

use op_session_protocol::{LockRequest, Response};

use super::{AuditFacts, Ctx, Handle, Handled};
use crate::lifecycle;
use crate::session::EndReason;

impl Handle for LockRequest {
    async fn handle(self, ctx: &mut Ctx<'_>) -> Handled {
        let daemon = ctx.daemon;
        if let Some(g) = ctx.scope {
            // Through a grant, `lock` gives the grant up (and nothing else).
            daemon.grants.revoke(&g.name, "its holder locked it");
            return Ok((
                Response::Done {
                    message: format!("grant {} ended; its socket is removed", g.name),
                },
                AuditFacts::verb("lock"),
            ));
        }
        if self.all {
            let n = lifecycle::end_all(daemon, EndReason::Locked).await;
            let message = match n {
                0 => "no sessions were held".into(),
                1 => "locked 1 session; its token is wiped and revoked".into(),
                n => format!("locked {n} sessions; their tokens are wiped and revoked"),
            };
            return Ok((Response::Done { message }, AuditFacts::verb("lock --all")));
        }
        let facts = AuditFacts {
            account: self.account.clone(),
            ..AuditFacts::verb("lock")
        };
        let name = lifecycle::lock_one(daemon, self.account.as_deref())
            .await
            .map_err(|e| facts.fail(e))?;
        Ok((
            Response::Done {
                message: format!("locked account {name}; its session is wiped and revoked"),
            },
            AuditFacts {
                account: Some(name),
                ..facts
            },
        ))
    }
}

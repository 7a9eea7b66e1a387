//! `resolve` (`read`, `run`, `inject`): values for `op://` references.
//!
//! In order: policy on the purpose, the `[mcp]` gate for a relayed request, the references
//! parsed once, a grant's scope and budget, the session, any confirmation, then the values
//! ([`crate::resolve`]; a braked caller is answered from memory only). A grant's budget is
//! refunded when no value goes back.

use op_session_protocol::{ResolveRequest, ResolvedValue, Response, Values};
use secrecy::{ExposeSecret, SecretString};

use super::{AuditFacts, Ctx, Handle, Handled};
use crate::error::Error;
use crate::policy;

impl Handle for ResolveRequest {
    async fn handle(self, ctx: &mut Ctx<'_>) -> Handled {
        let daemon = ctx.daemon;
        let scope = ctx.scope;
        let r = self;
        let mut facts = AuditFacts {
            references: r.refs.clone(),
            account: r.account.clone(),
            via: r.relayed.as_ref().map(|m| m.via.clone()),
            ..AuditFacts::verb(r.purpose.as_str())
        };
        policy::check_verb(&daemon.config.policy, r.purpose.as_str(), false)
            .map_err(|e| facts.fail(e))?;
        // `[mcp] reveal` and `[mcp] run_allow`, for requests relayed by `op-session mcp`.
        match crate::mcp::gate_resolve(daemon, &r) {
            Some(Err(e)) => return Err(facts.fail(e)),
            Some(Ok(resp)) => return Ok((resp, facts)),
            None => {}
        }
        facts.reveal = r.relayed.as_ref().is_some_and(|m| m.reveal);
        if r.refs.is_empty() {
            return Err(facts.fail(Error::bad_request("no references to resolve")));
        }
        // Parsed once, here; the grant's scope and the resolver read these parses.
        let refs =
            policy::parse_references(&daemon.config.policy, &r.refs).map_err(|e| facts.fail(e))?;
        // Through a grant: its verbs, vaults and references, its budget, its session.
        let reads = r.refs.len() as u64;
        if let Some(g) = scope {
            g.check_verb(r.purpose.as_str())
                .and_then(|_| g.check_requested(&refs))
                .and_then(|_| g.reserve(reads))
                .map_err(|e| facts.fail(e.refused()))?;
        }
        let refund = || {
            scope.inspect(|g| g.refund(reads));
        };
        let lease = ctx.lease(r.account.as_deref()).await.map_err(|e| {
            refund();
            facts.fail(e)
        })?;
        facts.account = Some(lease.name.clone());
        // A person confirms matching references before any value is handed out, cached or not.
        let force = scope.is_some_and(|g| g.confirm);
        let subjects: Vec<_> = r
            .refs
            .iter()
            .filter(|x| force || daemon.confirm.matches_reference(x))
            .map(|x| crate::confirm::Subject::reference(x))
            .collect();
        if !subjects.is_empty() {
            let gate = daemon
                .confirm
                .gate(
                    &daemon.sessions,
                    ctx.callers.confirm,
                    &lease,
                    &subjects,
                    ctx.stream,
                )
                .await;
            facts.confirm = gate.record;
            gate.result.map_err(|e| {
                refund();
                facts.fail(e)
            })?;
        }
        crate::lifecycle::maybe_keepalive(daemon, &lease);
        // A caller looping on errors is answered from memory only (brake.rs).
        let caller = ctx.callers.brake;
        let resolved = match caller.filter(|_| daemon.brake.braked(caller)) {
            Some(who) => {
                let name = crate::brake::caller_name(who);
                crate::resolve::from_memory(daemon, &lease, &refs, name).await
            }
            None => crate::resolve::resolve(daemon, &lease, &refs, r.no_cache).await,
        };
        daemon.brake.record(caller, resolved.is_err());
        let values = resolved.map_err(|e| {
            refund();
            facts.fail(e)
        })?;
        facts.cache_hits = values.iter().filter(|v| v.cached).count();
        Ok((
            Response::Values(Values {
                account: lease.name.clone(),
                values: values
                    .into_iter()
                    .map(|v| ResolvedValue {
                        reference: v.reference,
                        value: SecretString::from(v.value.expose_secret()),
                        cached: v.cached,
                    })
                    .collect(),
            }),
            facts,
        ))
    }
}

//! Which `op` verbs and vaults a request may use.
//!
//! A guard rail against an agent's accidents, not a security boundary against code running as
//! the same user (that code can run `op` itself). Default: everything except destructive verbs
//! (delete, archive, move, permission, user, group and account changes), which need
//! `allow_destructive = true` or an explicit `allow` entry. `deny` always wins. `vaults` limits
//! which vaults references and `--vault` may name; a request whose vault cannot be determined
//! is refused while `vaults` is set (fail closed). Every refusal names its rule.
//!
//! Verbs are canonical command paths from the grammar (crates/op-grammar): `item rm`,
//! `items delete` and `item delete` are one verb, and rules are read the same way.

use op_grammar::{Effect, OpCommand, Vaults};
use op_session_protocol::{ErrorBody, ErrorCode};
use secret_ref::Requested;

use crate::config::PolicyConfig;

/// A rule's words in canonical form (`item rm` → `item delete`); a rule the grammar cannot
/// read is compared as written.
fn canonical_rule(rule: &str) -> String {
    let words: Vec<&str> = rule.split_whitespace().collect();
    match op_grammar::parse(&words) {
        Ok(c) if !c.path.is_empty() && c.positionals.is_empty() => c.path,
        _ => words.join(" ").to_ascii_lowercase(),
    }
}

fn matches_rule(verb: &str, rule: &str) -> bool {
    let rule = canonical_rule(rule);
    verb == rule || verb.starts_with(&format!("{rule} "))
}

fn denied(msg: String) -> ErrorBody {
    ErrorBody::new(ErrorCode::PolicyDenied, msg)
}

/// Check a verb (a canonical command path) against the policy.
pub fn check_verb(policy: &PolicyConfig, verb: &str, destructive: bool) -> Result<(), ErrorBody> {
    if verb.is_empty() {
        return Ok(()); // `op --version`, `op --help`
    }
    if let Some(rule) = policy.deny.iter().find(|r| matches_rule(verb, r)) {
        return Err(denied(format!(
            "policy denies `op {verb}` (rule: deny = [\"{rule}\"])"
        )));
    }
    let allowed_explicitly = policy.allow.iter().any(|r| matches_rule(verb, r));
    if !policy.allow.is_empty() && !allowed_explicitly && !always_allowed(verb) {
        return Err(denied(format!(
            "policy allows only {:?}; `op {verb}` is not among them (rule: allow)",
            policy.allow
        )));
    }
    if destructive && !policy.allow_destructive && !allowed_explicitly {
        return Err(denied(format!(
            "`op {verb}` is destructive and policy does not allow it (rule: allow_destructive = false)"
        ))
        .with_fix(format!(
            "if an agent really should, add allow = [\"{verb}\"] or allow_destructive = true under [policy] in the op-session config"
        )));
    }
    Ok(())
}

/// Check a parsed command's verb against the policy.
pub fn check_command(policy: &PolicyConfig, cmd: &OpCommand) -> Result<(), ErrorBody> {
    check_verb(policy, cmd.verb(), cmd.effect() == Effect::Destructive)
}

/// Verbs needed to use sessions at all.
fn always_allowed(verb: &str) -> bool {
    matches!(verb, "whoami" | "account list")
}

/// Check the vaults a request names against `vaults` (names or IDs, case-insensitive).
pub fn check_vaults<'a>(
    policy: &PolicyConfig,
    vaults: impl IntoIterator<Item = &'a str>,
) -> Result<(), ErrorBody> {
    if policy.vaults.is_empty() {
        return Ok(());
    }
    for v in vaults {
        if !policy.vaults.iter().any(|a| a.eq_ignore_ascii_case(v)) {
            return Err(denied(format!(
                "policy does not allow vault \"{v}\" (rule: vaults = {:?})",
                policy.vaults
            )));
        }
    }
    Ok(())
}

/// Parse every reference of a request and check its vault. A reference the parser cannot read
/// is refused, never left to `op`: with a vault rule that is a policy refusal (exit 78), else
/// the parser's own (op-worded) error.
pub fn check_references(policy: &PolicyConfig, refs: &[String]) -> Result<(), ErrorBody> {
    parse_references(policy, refs).map(drop)
}

/// [`check_references`], keeping the parses: the resolve path parses a request's references
/// here, once, and hands them on to the grant's scope and the resolver.
pub fn parse_references(
    policy: &PolicyConfig,
    refs: &[String],
) -> Result<Vec<Requested>, ErrorBody> {
    let mut parsed = Vec::with_capacity(refs.len());
    for r in refs {
        match Requested::parse(r) {
            Ok(p) => parsed.push(p),
            Err(e) if !policy.vaults.is_empty() => {
                return Err(denied(format!(
                    "cannot tell which vault '{r}' names ({e}), and policy limits vaults to {:?} (rule: vaults)",
                    policy.vaults
                ))
                .with_fix("write the reference as op://vault/item[/section]/field[?attribute=…]"));
            }
            Err(e) => {
                return Err(ErrorBody::new(
                    ErrorCode::OpFailed,
                    format!("invalid secret reference '{r}': {e}"),
                )
                .with_fix("write the reference as op://vault/item[/section]/field[?attribute=…]"));
            }
        }
    }
    check_vaults(policy, parsed.iter().map(|p| p.parsed.vault.as_str()))?;
    Ok(parsed)
}

/// The vaults a passthrough names. When vaults are restricted and the command works inside a
/// vault it does not name (or names one the daemon cannot read), it is refused, since the
/// daemon cannot tell which vault `op` would pick.
pub fn check_passthrough_vaults(policy: &PolicyConfig, cmd: &OpCommand) -> Result<(), ErrorBody> {
    if policy.vaults.is_empty() {
        return Ok(());
    }
    if cmd.spec.map(|s| s.vault) == Some(op_grammar::VaultArg::Reference) {
        if cmd.positionals.is_empty() {
            return Err(unknown_vault(policy, cmd, "it names no reference"));
        }
        return check_references(policy, &cmd.positionals[..1]);
    }
    match cmd.vaults() {
        Vaults::NoVault => Ok(()),
        Vaults::Named(v) => check_vaults(policy, v.iter().map(String::as_str)),
        Vaults::Unknown(why) => Err(unknown_vault(policy, cmd, why)),
    }
}

fn unknown_vault(policy: &PolicyConfig, cmd: &OpCommand, why: &str) -> ErrorBody {
    denied(format!(
        "policy limits vaults to {:?} and `op {}` cannot be checked: {why} (rule: vaults)",
        policy.vaults,
        cmd.verb()
    ))
    .with_fix("name the vault with --vault, or use op-session read/run/inject, which check each reference")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &str) -> OpCommand {
        op_grammar::parse(&s.split_whitespace().collect::<Vec<_>>()).expect("parses")
    }

    #[test]
    fn destructive_verbs_are_denied_by_default_and_named() {
        let p = PolicyConfig::default();
        let e = check_command(&p, &cmd("item delete foo")).expect_err("denied");
        assert_eq!(e.code, ErrorCode::PolicyDenied);
        assert!(e.message.contains("allow_destructive"), "{}", e.message);
        assert!(check_command(&p, &cmd("item rm foo")).is_err());
        assert!(check_command(&p, &cmd("item delete foo --archive")).is_err());
        assert!(check_command(&p, &cmd("vault user grant --vault x")).is_err());
        assert!(check_command(&p, &cmd("item get foo")).is_ok());
        let p = PolicyConfig {
            allow_destructive: true,
            ..PolicyConfig::default()
        };
        assert!(check_command(&p, &cmd("item delete foo")).is_ok());
        let p = PolicyConfig {
            allow: vec!["item delete".into()],
            ..PolicyConfig::default()
        };
        assert!(check_command(&p, &cmd("items remove foo")).is_ok());
        assert!(
            check_command(&p, &cmd("item get foo")).is_err(),
            "allow is a whitelist"
        );
    }

    #[test]
    fn deny_wins_in_every_spelling_and_vaults_are_limited() {
        let p = PolicyConfig {
            deny: vec!["item".into(), "vault rm".into()],
            allow_destructive: true,
            vaults: vec!["Dev".into()],
            ..PolicyConfig::default()
        };
        for line in [
            "item get foo",
            "--cache item --cache delete --cache Deploy",
            "items rm X",
            "vault delete Dev",
        ] {
            let e = check_command(&p, &cmd(line)).expect_err(line);
            assert!(e.message.contains("deny"), "{line}: {}", e.message);
        }
        assert!(check_vaults(&p, ["dev"]).is_ok());
        let e = check_vaults(&p, ["Prod"]).expect_err("vault");
        assert!(e.message.contains("Prod"));
        let vp = PolicyConfig {
            vaults: vec!["Dev".into()],
            ..PolicyConfig::default()
        };
        assert!(check_passthrough_vaults(&vp, &cmd("item get foo")).is_err());
        assert!(check_passthrough_vaults(&vp, &cmd("item get foo --vault Dev")).is_ok());
        assert!(check_passthrough_vaults(&vp, &cmd("item get foo --vault=Prod")).is_err());
        assert!(check_passthrough_vaults(&vp, &cmd("read op://Prod/x/y")).is_err());
        assert!(check_passthrough_vaults(&vp, &cmd("read op://Dev/x/y")).is_ok());
        assert!(check_passthrough_vaults(&vp, &cmd("read op://Prod/x/y?x=1")).is_err());
        assert!(check_passthrough_vaults(&vp, &cmd("inject -i t.tpl")).is_err());
        assert!(check_passthrough_vaults(&vp, &cmd("vault list")).is_ok());
        assert!(check_passthrough_vaults(&vp, &cmd("vault get Prod")).is_err());
        assert!(check_passthrough_vaults(&vp, &cmd("user list")).is_ok());
        assert!(check_passthrough_vaults(&vp, &cmd("user list --vault Prod")).is_err());
        assert!(check_passthrough_vaults(&vp, &cmd("users ls --vault=Dev")).is_ok());
        assert!(check_passthrough_vaults(&vp, &cmd("group list --vault Prod")).is_err());
        assert!(check_passthrough_vaults(&vp, &cmd("groups list --user u --vault=Prod")).is_err());
    }

    #[test]
    fn unreadable_references_are_refused() {
        let vp = PolicyConfig {
            vaults: vec!["Prod".into()],
            ..PolicyConfig::default()
        };
        let refs = vec!["op://Prod/Deploy/credential?x=1".to_string()];
        assert_eq!(
            check_references(&vp, &refs).expect_err("refused").code,
            ErrorCode::PolicyDenied
        );
        let e = check_references(&PolicyConfig::default(), &refs).expect_err("refused");
        assert_eq!(e.code, ErrorCode::OpFailed);
    }
}

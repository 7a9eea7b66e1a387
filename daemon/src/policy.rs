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
//! `item remove` and `item delete` are one verb. Rules are read by the same grammar once, when
//! the config is loaded ([`Policy::compile`]); a rule it cannot read stops the daemon.

use crate::error::{Detail, Error};
use op_grammar::{Effect, OpCommand, Vaults};
use secret_ref::Requested;

use crate::config::PolicyConfig;

/// One `allow` or `deny` entry, read by the grammar when the config is loaded: the command
/// path it names in canonical form (`item rm` → `item delete`; a group such as `item` covers
/// every command under it), and the entry as written, for refusals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    /// The canonical command path.
    verb: String,
    /// The entry as the person wrote it.
    written: String,
}

impl Rule {
    /// Read one entry. An entry the grammar cannot read, or one that is more than a command
    /// path (an operand, a flag), is an error saying why: compared as written it would match
    /// nothing, and a `deny` that denies nothing fails open.
    pub(crate) fn parse(written: &str) -> Result<Rule, String> {
        // Command words are lower case; a rule is read case-insensitively, as before.
        let lower = written.to_ascii_lowercase();
        let words: Vec<&str> = lower.split_whitespace().collect();
        if words.is_empty() {
            return Err(format!(
                "{written:?} is empty; write a command such as \"item edit\""
            ));
        }
        let c = op_grammar::parse(&words)
            .map_err(|e| format!("{written:?} is not an op command ({e})"))?;
        if c.path.is_empty() {
            return Err(format!(
                "{written:?} names no op command; write a command such as \"item edit\""
            ));
        }
        if !c.flags.is_empty() || !c.positionals.is_empty() || !c.rest.is_empty() {
            return Err(format!(
                "{written:?} is more than a command: a rule names a command (\"{}\"), without operands or flags",
                c.path
            ));
        }
        Ok(Rule {
            verb: c.path,
            written: written.to_string(),
        })
    }

    /// Whether this rule covers `verb` (a canonical command path): the same command, or one
    /// under the group it names.
    fn covers(&self, verb: &str) -> bool {
        verb.strip_prefix(self.verb.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    }
}

/// The `[policy]` table compiled at load: every rule read by the grammar once, so a request
/// is checked against typed verbs and a rule the grammar cannot read stops the daemon at start
/// (naming `policy.deny[0]`) instead of silently matching nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Verbs allowed even if destructive; empty means "the default".
    allow: Vec<Rule>,
    /// Verbs always refused.
    deny: Vec<Rule>,
    /// Vault names or IDs that may be read or changed; empty means all.
    pub vaults: Vec<String>,
    /// Allow destructive verbs.
    pub allow_destructive: bool,
}

impl Policy {
    /// Compile `[policy]` as written. The error is the full key of the first rule the grammar
    /// cannot read (`policy.deny[0]`) and what is wrong with it.
    pub fn compile(cfg: &PolicyConfig) -> Result<Policy, (String, String)> {
        let rules = |list: &[String], key: &str| -> Result<Vec<Rule>, (String, String)> {
            list.iter()
                .enumerate()
                .map(|(i, r)| Rule::parse(r).map_err(|m| (format!("policy.{key}[{i}]"), m)))
                .collect()
        };
        Ok(Policy {
            allow: rules(&cfg.allow, "allow")?,
            deny: rules(&cfg.deny, "deny")?,
            vaults: cfg.vaults.clone(),
            allow_destructive: cfg.allow_destructive,
        })
    }

    /// The `allow` entries as written.
    fn allow_written(&self) -> Vec<&str> {
        self.allow.iter().map(|r| r.written.as_str()).collect()
    }
}

fn denied(msg: String) -> Error {
    Error::denied(msg)
}

/// Check a verb (a canonical command path) against the policy.
pub(crate) fn check_verb(policy: &Policy, verb: &str, destructive: bool) -> Result<(), Error> {
    if verb.is_empty() {
        return Ok(()); // `op --version`, `op --help`
    }
    if let Some(rule) = policy.deny.iter().find(|r| r.covers(verb)) {
        return Err(denied(format!(
            "policy denies `op {verb}` (rule: deny = [\"{}\"])",
            rule.written
        )));
    }
    let allowed_explicitly = policy.allow.iter().any(|r| r.covers(verb));
    if !policy.allow.is_empty() && !allowed_explicitly && !always_allowed(verb) {
        return Err(denied(format!(
            "policy allows only {:?}; `op {verb}` is not among them (rule: allow)",
            policy.allow_written()
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
pub(crate) fn check_command(policy: &Policy, cmd: &OpCommand) -> Result<(), Error> {
    check_verb(policy, cmd.verb(), cmd.effect() == Effect::Destructive)
}

/// Verbs needed to use sessions at all.
fn always_allowed(verb: &str) -> bool {
    matches!(verb, "whoami" | "account list")
}

/// Check the vaults a request names against `vaults` (names or IDs, case-insensitive).
pub(crate) fn check_vaults<'a>(
    policy: &Policy,
    vaults: impl IntoIterator<Item = &'a str>,
) -> Result<(), Error> {
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
pub(crate) fn check_references(policy: &Policy, refs: &[String]) -> Result<(), Error> {
    parse_references(policy, refs).map(drop)
}

/// [`check_references`], keeping the parses: the resolve path parses a request's references
/// here, once, and hands them on to the grant's scope and the resolver.
pub(crate) fn parse_references(policy: &Policy, refs: &[String]) -> Result<Vec<Requested>, Error> {
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
                return Err(Error::OpFailed(Detail::new(format!(
                    "invalid secret reference '{r}': {e}"
                )))
                .with_fix("write the reference as op://vault/item[/section]/field[?attribute=…]"));
            }
        }
    }
    check_vaults(policy, parsed.iter().map(|p| p.parsed.vault.as_str()))?;
    Ok(parsed)
}

/// Check the vaults a passthrough names. When vaults are restricted and the command works inside a
/// vault it does not name (or names one the daemon cannot read), it is refused, since the
/// daemon cannot tell which vault `op` would pick.
pub(crate) fn check_passthrough_vaults(policy: &Policy, cmd: &OpCommand) -> Result<(), Error> {
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

fn unknown_vault(policy: &Policy, cmd: &OpCommand, why: &str) -> Error {
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
    use op_session_protocol::ErrorCode;

    fn compiled(c: PolicyConfig) -> Policy {
        Policy::compile(&c).expect("compiles")
    }

    fn cmd(s: &str) -> OpCommand {
        op_grammar::parse(&s.split_whitespace().collect::<Vec<_>>()).expect("parses")
    }

    #[test]
    fn destructive_verbs_are_denied_by_default_and_named() {
        let p = Policy::default();
        let e = check_command(&p, &cmd("item delete foo")).expect_err("denied");
        assert_eq!(e.code(), ErrorCode::PolicyDenied);
        assert!(
            e.detail().message.contains("allow_destructive"),
            "{}",
            e.detail().message
        );
        assert!(check_command(&p, &cmd("item rm foo")).is_err());
        assert!(check_command(&p, &cmd("item delete foo --archive")).is_err());
        assert!(check_command(&p, &cmd("vault user grant --vault x")).is_err());
        assert!(check_command(&p, &cmd("item get foo")).is_ok());
        let p = compiled(PolicyConfig {
            allow_destructive: true,
            ..PolicyConfig::default()
        });
        assert!(check_command(&p, &cmd("item delete foo")).is_ok());
        let p = compiled(PolicyConfig {
            allow: vec!["item delete".into()],
            ..PolicyConfig::default()
        });
        assert!(check_command(&p, &cmd("item remove foo")).is_ok());
        assert!(
            check_command(&p, &cmd("item get foo")).is_err(),
            "allow is a whitelist"
        );
    }

    #[test]
    fn deny_wins_in_every_spelling_and_vaults_are_limited() {
        let p = compiled(PolicyConfig {
            deny: vec!["item".into(), "vault rm".into()],
            allow_destructive: true,
            vaults: vec!["Dev".into()],
            ..PolicyConfig::default()
        });
        for line in [
            "item get foo",
            "--cache item --cache delete --cache Deploy",
            "item rm X",
            "vault delete Dev",
        ] {
            let e = check_command(&p, &cmd(line)).expect_err(line);
            assert!(
                e.detail().message.contains("deny"),
                "{line}: {}",
                e.detail().message
            );
        }
        assert!(check_vaults(&p, ["dev"]).is_ok());
        let e = check_vaults(&p, ["Prod"]).expect_err("vault");
        assert!(e.detail().message.contains("Prod"));
        let vp = compiled(PolicyConfig {
            vaults: vec!["Dev".into()],
            ..PolicyConfig::default()
        });
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
        assert!(check_passthrough_vaults(&vp, &cmd("user ls --vault=Dev")).is_ok());
        assert!(check_passthrough_vaults(&vp, &cmd("group list --vault Prod")).is_err());
        assert!(check_passthrough_vaults(&vp, &cmd("group list --user u --vault=Prod")).is_err());
    }

    #[test]
    fn unreadable_references_are_refused() {
        let vp = compiled(PolicyConfig {
            vaults: vec!["Prod".into()],
            ..PolicyConfig::default()
        });
        let refs = vec!["op://Prod/Deploy/credential?x=1".to_string()];
        assert_eq!(
            check_references(&vp, &refs).expect_err("refused").code(),
            ErrorCode::PolicyDenied
        );
        let e = check_references(&Policy::default(), &refs).expect_err("refused");
        assert_eq!(e.code(), ErrorCode::OpFailed);
    }

    #[test]
    fn rules_are_read_by_the_grammar_once_and_an_unreadable_one_is_named() {
        let p = compiled(PolicyConfig {
            deny: vec!["item rm".into(), "ITEM   edit".into()],
            ..PolicyConfig::default()
        });
        assert!(check_verb(&p, "item delete", false).is_err());
        let e = check_verb(&p, "item edit", false).expect_err("denied");
        assert!(
            e.detail().message.contains("ITEM   edit"),
            "the rule as written: {}",
            e.detail().message
        );
        assert!(
            check_verb(&p, "item editor", false).is_ok(),
            "a word, not a prefix"
        );
        for (deny, allow, key, why) in [
            (
                vec!["itme edit"],
                vec![],
                "policy.deny[0]",
                "not an op command",
            ),
            (
                vec!["item get", "item frob"],
                vec![],
                "policy.deny[1]",
                "not an op command",
            ),
            (
                vec![],
                vec!["item edit foo"],
                "policy.allow[0]",
                "without operands",
            ),
            (
                vec![],
                vec!["item get --vault x"],
                "policy.allow[0]",
                "without operands",
            ),
            (vec![""], vec![], "policy.deny[0]", "empty"),
            (
                vec!["--version"],
                vec![],
                "policy.deny[0]",
                "names no op command",
            ),
        ] {
            let cfg = PolicyConfig {
                deny: deny.iter().map(|s| s.to_string()).collect(),
                allow: allow.iter().map(|s| s.to_string()).collect(),
                ..PolicyConfig::default()
            };
            let (k, m) = Policy::compile(&cfg).expect_err(key);
            assert_eq!(k, key, "{m}");
            assert!(m.contains(why), "{key}: {m}");
        }
    }
}

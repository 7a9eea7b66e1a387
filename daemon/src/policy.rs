//! Which `op` verbs and vaults a request may use.
//!
//! A guard rail against an agent's accidents, not a security boundary: code running as the
//! same user can run `op` itself. Default: everything except destructive verbs (delete,
//! archive, permission and account changes, `signout --forget`), which need
//! `allow_destructive = true` or an explicit `allow` entry. `deny` always wins. `vaults`
//! limits which vaults references and `--vault` may name. Every refusal names its rule.

use op_session_protocol::{ErrorBody, ErrorCode};

use crate::config::PolicyConfig;

pub use op_session_protocol::opargs::verb_of;

/// Whether a verb (with its flags) is destructive.
pub fn is_destructive(words: &[String], flags: &[String]) -> bool {
    let last = words.last().map(String::as_str).unwrap_or("");
    let first = words.first().map(String::as_str).unwrap_or("");
    if flags.iter().any(|f| f == "--archive") {
        return true;
    }
    if first == "signout" {
        return flags.iter().any(|f| f == "--forget");
    }
    if matches!(first, "user" | "group") && !matches!(last, "get" | "list") {
        return true;
    }
    matches!(
        last,
        "delete"
            | "archive"
            | "forget"
            | "remove"
            | "revoke"
            | "grant"
            | "suspend"
            | "reactivate"
            | "confirm"
            | "provision"
    ) || (first == "account" && last == "add")
}

fn matches_rule(verb: &str, rule: &str) -> bool {
    let rule = rule.trim().to_ascii_lowercase();
    verb == rule || verb.starts_with(&format!("{rule} "))
}

fn denied(msg: String) -> ErrorBody {
    ErrorBody::new(ErrorCode::PolicyDenied, msg)
}

/// Check a verb against the policy.
pub fn check_verb(policy: &PolicyConfig, args: &[String]) -> Result<(), ErrorBody> {
    let (words, flags) = verb_of(args);
    if words.is_empty() {
        return Ok(()); // `op --version`, `op --help`
    }
    let verb = words.join(" ");
    if let Some(rule) = policy.deny.iter().find(|r| matches_rule(&verb, r)) {
        return Err(denied(format!(
            "policy denies `op {verb}` (rule: deny = [\"{rule}\"])"
        )));
    }
    let allowed_explicitly = policy.allow.iter().any(|r| matches_rule(&verb, r));
    if !policy.allow.is_empty() && !allowed_explicitly && !always_allowed(&verb) {
        return Err(denied(format!(
            "policy allows only {:?}; `op {verb}` is not among them (rule: allow)",
            policy.allow
        )));
    }
    if is_destructive(&words, &flags) && !policy.allow_destructive && !allowed_explicitly {
        return Err(denied(format!(
            "`op {verb}{}` is destructive and policy does not allow it (rule: allow_destructive = false)",
            if flags.iter().any(|f| f == "--forget") { " --forget" } else { "" }
        ))
        .with_fix(format!(
            "if an agent really should, add allow = [\"{verb}\"] or allow_destructive = true under [policy] in the op-session config"
        )));
    }
    Ok(())
}

/// Verbs needed to use sessions at all.
fn always_allowed(verb: &str) -> bool {
    matches!(verb, "whoami" | "signin" | "account list")
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

/// The vault of each reference (unparseable references are left to `op` to reject).
pub fn vaults_of_refs(refs: &[String]) -> Vec<String> {
    refs.iter()
        .filter_map(|r| secret_ref::reference::parse(r).ok().map(|p| p.vault))
        .collect()
}

/// The vaults a passthrough names: `--vault` values and references in its arguments. When
/// vaults are restricted and an item or document command names none, it is refused, since the
/// daemon cannot tell which vault `op` would pick.
pub fn check_passthrough_vaults(policy: &PolicyConfig, args: &[String]) -> Result<(), ErrorBody> {
    if policy.vaults.is_empty() {
        return Ok(());
    }
    let mut vaults = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--vault" {
            if let Some(v) = args.get(i + 1) {
                vaults.push(v.clone());
            }
            i += 1;
        } else if let Some(v) = a.strip_prefix("--vault=") {
            vaults.push(v.to_string());
        } else if a.starts_with("op://") {
            vaults.extend(vaults_of_refs(std::slice::from_ref(a)));
        }
        i += 1;
    }
    let (words, _) = verb_of(args);
    let first = words.first().map(String::as_str).unwrap_or("");
    if vaults.is_empty() && matches!(first, "item" | "document" | "inject" | "run") {
        return Err(denied(format!(
            "policy limits vaults to {:?} and `op {}` names none (rule: vaults)",
            policy.vaults,
            words.join(" ")
        ))
        .with_fix("name the vault with --vault, or use op-session read/run/inject, which check each reference"));
    }
    check_vaults(policy, vaults.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn verbs_skip_flags_and_their_values() {
        assert_eq!(
            verb_of(&args("--account my item delete foo")).0,
            vec!["item", "delete"]
        );
        assert_eq!(verb_of(&args("read op://a/b/c")).0, vec!["read"]);
        assert_eq!(
            verb_of(&args("item get x --vault Dev")).0,
            vec!["item", "get"]
        );
    }

    #[test]
    fn destructive_verbs_are_denied_by_default_and_named() {
        let p = PolicyConfig::default();
        let e = check_verb(&p, &args("item delete foo")).expect_err("denied");
        assert_eq!(e.code, ErrorCode::PolicyDenied);
        assert!(e.message.contains("allow_destructive"), "{}", e.message);
        assert!(check_verb(&p, &args("item delete foo --archive")).is_err());
        assert!(check_verb(&p, &args("signout --forget")).is_err());
        assert!(check_verb(&p, &args("signout")).is_ok());
        assert!(check_verb(&p, &args("vault user grant --vault x")).is_err());
        assert!(check_verb(&p, &args("item get foo")).is_ok());
        let p = PolicyConfig {
            allow_destructive: true,
            ..PolicyConfig::default()
        };
        assert!(check_verb(&p, &args("item delete foo")).is_ok());
        let p = PolicyConfig {
            allow: vec!["item delete".into()],
            ..PolicyConfig::default()
        };
        assert!(check_verb(&p, &args("item delete foo")).is_ok());
        assert!(
            check_verb(&p, &args("item get foo")).is_err(),
            "allow is a whitelist"
        );
    }

    #[test]
    fn deny_wins_and_vaults_are_limited() {
        let p = PolicyConfig {
            deny: vec!["item".into()],
            allow_destructive: true,
            vaults: vec!["Dev".into()],
            ..PolicyConfig::default()
        };
        let e = check_verb(&p, &args("item get foo")).expect_err("deny");
        assert!(e.message.contains("deny"), "{}", e.message);
        assert!(check_vaults(&p, ["dev"]).is_ok());
        let e = check_vaults(&p, ["Prod"]).expect_err("vault");
        assert!(e.message.contains("Prod"));
        assert!(check_passthrough_vaults(&p, &args("item get foo")).is_err());
        assert!(check_passthrough_vaults(&p, &args("item get foo --vault Dev")).is_ok());
        assert!(check_passthrough_vaults(&p, &args("read op://Prod/x/y")).is_err());
    }
}

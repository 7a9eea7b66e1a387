//! `[confirm]`: which references need a person's confirmation, read and checked.
//!
//! Owns the config table (`refs`, `vaults`, `timeout`, `remember`, `askpass`, these names
//! exactly), its validation (each error names its key), and matching a reference or an item
//! against the rules. Matching fails closed: references are case-insensitive, a three-part
//! rule also covers the same field inside a section, and where one side names a vault, item
//! or field by its unique ID and the other by name, the daemon cannot tell them apart without
//! asking 1Password, so it counts as a match and the person is asked (docs/confirm.md).
//!
//! Never holds a value.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// `[confirm]` as written in `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfirmConfig {
    /// Globs over `op://vault/item[/section]/field` references.
    pub refs: Vec<String>,
    /// Vaults (names or IDs) whose every reference asks.
    pub vaults: Vec<String>,
    /// How long a prompt waits; no answer in time is not an approval.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How long an approval covers the same caller and reference; zero: never remembered.
    #[serde(with = "humantime_serde")]
    pub remember: Duration,
    /// The askpass program; default: the daemon's `$SSH_ASKPASS`, then the desktop
    /// notification service, then none.
    pub askpass: Option<PathBuf>,
}

impl Default for ConfirmConfig {
    fn default() -> Self {
        ConfirmConfig {
            refs: Vec::new(),
            vaults: Vec::new(),
            timeout: Duration::from_secs(60),
            remember: Duration::ZERO,
            askpass: None,
        }
    }
}

impl ConfirmConfig {
    /// Whether any rule is set (without one, nothing ever asks except `grant --confirm`).
    pub fn is_active(&self) -> bool {
        !self.refs.is_empty() || !self.vaults.is_empty()
    }

    /// The checks serde cannot express: the full key and what is wrong. `hard_limit` is the
    /// sessions' hard limit, which no approval may outlive.
    pub fn check(&self, hard_limit: Duration) -> Result<(), (&'static str, String)> {
        for r in &self.refs {
            Pattern::new(r).map_err(|m| ("confirm.refs", m))?;
        }
        if let Some(v) = self.vaults.iter().find(|v| !valid_segment(v)) {
            return Err((
                "confirm.vaults",
                format!("entry {v:?} is not a vault name or ID"),
            ));
        }
        if self.timeout.is_zero() {
            return Err(("confirm.timeout", "must be more than zero".into()));
        }
        if self.remember > hard_limit {
            return Err((
                "confirm.remember",
                format!(
                    "is longer than the sessions' hard limit ({}): an approval never outlives its session",
                    humantime_serde::re::humantime::format_duration(hard_limit)
                ),
            ));
        }
        if let Some(p) = &self.askpass {
            if !p.is_absolute() {
                return Err((
                    "confirm.askpass",
                    format!("must be an absolute path, not {}", p.display()),
                ));
            }
            if !p.is_file() {
                return Err((
                    "confirm.askpass",
                    format!(
                        "names {}, which does not exist (install ssh-askpass, or remove the key)",
                        p.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Whether a vault entry can name a vault: non-empty, no `/`, no control characters.
fn valid_segment(s: &str) -> bool {
    !s.trim().is_empty() && !s.contains('/') && !s.chars().any(char::is_control)
}

/// One `refs` glob, split into its segments.
#[derive(Debug, Clone)]
struct Pattern {
    segments: Vec<glob::Pattern>,
    /// The segments as written (lower-cased), for the ID rule.
    raw: Vec<String>,
}

impl Pattern {
    fn new(text: &str) -> Result<Pattern, String> {
        let bad = |why: &str| {
            format!(
                "entry {text:?} is not an op:// glob ({why}); write e.g. \"op://Prod/*\" or \"op://Dev/Stripe/*\""
            )
        };
        let rest = text
            .strip_prefix("op://")
            .ok_or_else(|| bad("it must start with op://"))?;
        if rest.contains('?') && rest.contains('=') {
            return Err(bad("attributes are not part of a rule"));
        }
        let raw: Vec<String> = rest.split('/').map(str::to_ascii_lowercase).collect();
        let trailing_star = raw.last().is_some_and(|s| s == "*");
        if raw.iter().any(String::is_empty) {
            return Err(bad("a segment is empty"));
        }
        if raw.len() > 4 || (raw.len() < 3 && !trailing_star) {
            return Err(bad(
                "it needs vault/item[/section]/field, or a last segment of *",
            ));
        }
        let segments = raw
            .iter()
            .map(|s| glob::Pattern::new(s).map_err(|e| bad(&e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pattern { segments, raw })
    }

    /// Whether the pattern covers a reference with these (lower-cased) segments, where `None`
    /// is a segment the daemon does not know (an item's field, a vault not named).
    fn matches(&self, segs: &[Option<&str>]) -> bool {
        let n = self.segments.len();
        let last_star = self.raw[n - 1] == "*";
        let one = |i: usize, s: Option<&str>| match s {
            Some(s) => segment_matches(&self.segments[i], &self.raw[i], s),
            None => true,
        };
        if last_star && segs.len() >= n {
            return (0..n - 1).all(|i| one(i, segs[i]));
        }
        if segs.len() == n {
            return (0..n).all(|i| one(i, segs[i]));
        }
        // `op://v/i/field` also names that field inside any section of the item.
        if n == 3 && segs.len() == 4 {
            return one(0, segs[0]) && one(1, segs[1]) && one(2, segs[3]);
        }
        false
    }
}

/// Whether one segment of a rule covers one segment of a reference. Both lower-cased.
fn segment_matches(pattern: &glob::Pattern, raw: &str, seg: &str) -> bool {
    if pattern.matches(seg) {
        return true;
    }
    let id = |s: &str| secret_ref::reference::is_id(s);
    let literal = !raw.contains(['*', '?', '[']);
    // An ID on one side and a name on the other may be the same thing: ask.
    (id(seg) && !id(raw)) || (literal && id(raw) && !id(seg))
}

/// The compiled rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    patterns: Vec<Pattern>,
    /// Vault entries, lower-cased, each as a literal pattern.
    vaults: Vec<(glob::Pattern, String)>,
}

impl Rules {
    /// Compile checked config (entries that do not compile were refused at load).
    pub(crate) fn new(cfg: &ConfirmConfig) -> Rules {
        Rules {
            patterns: cfg
                .refs
                .iter()
                .filter_map(|r| Pattern::new(r).ok())
                .collect(),
            vaults: cfg
                .vaults
                .iter()
                .map(|v| v.to_ascii_lowercase())
                .filter_map(|v| Some((glob::Pattern::new(&glob::Pattern::escape(&v)).ok()?, v)))
                .collect(),
        }
    }

    fn vault_matches(&self, vault: Option<&str>) -> bool {
        match vault {
            None => !self.vaults.is_empty(),
            Some(v) => self
                .vaults
                .iter()
                .any(|(p, raw)| segment_matches(p, raw, v)),
        }
    }

    /// Whether a reference needs confirmation. A reference the parser cannot read matches
    /// whenever any rule is set (fail closed); `op` would refuse it anyway.
    pub(crate) fn matches_reference(&self, reference: &str) -> bool {
        if self.patterns.is_empty() && self.vaults.is_empty() {
            return false;
        }
        let Ok(r) = secret_ref::reference::parse(reference) else {
            return true;
        };
        let lower = |s: &str| s.to_ascii_lowercase();
        let mut segs = vec![lower(&r.vault), lower(&r.item)];
        if let Some(s) = &r.section {
            segs.push(lower(s));
        }
        segs.push(lower(&r.field));
        let segs: Vec<Option<&str>> = segs.iter().map(|s| Some(s.as_str())).collect();
        self.vault_matches(segs[0]) || self.patterns.iter().any(|p| p.matches(&segs))
    }

    /// Whether an item's fields may need confirmation: `vault` or `item` is `None` when the
    /// command does not name it (then any rule that could cover it asks).
    pub(crate) fn matches_item(&self, vault: Option<&str>, item: Option<&str>) -> bool {
        if self.patterns.is_empty() && self.vaults.is_empty() {
            return false;
        }
        let vault = vault.map(str::to_ascii_lowercase);
        let item = item.map(str::to_ascii_lowercase);
        if self.vault_matches(vault.as_deref()) {
            return true;
        }
        // Any field, in any section.
        let three = [vault.as_deref(), item.as_deref(), None];
        let four = [vault.as_deref(), item.as_deref(), None, None];
        self.patterns
            .iter()
            .any(|p| p.matches(&three) || p.matches(&four))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(refs: &[&str], vaults: &[&str]) -> Rules {
        let cfg = ConfirmConfig {
            refs: refs.iter().map(|s| s.to_string()).collect(),
            vaults: vaults.iter().map(|s| s.to_string()).collect(),
            ..ConfirmConfig::default()
        };
        cfg.check(Duration::from_secs(3600)).expect("valid");
        Rules::new(&cfg)
    }

    const ID: &str = "abcdefghijklmnopqrstuvwxyz";

    #[test]
    fn globs_cover_vaults_items_and_fields_in_every_case() {
        let r = rules(&["op://Prod/*", "op://Dev/Stripe/*"], &[]);
        assert!(r.matches_reference("op://Prod/Deploy/credential"));
        assert!(r.matches_reference("op://prod/deploy/Section/credential"));
        assert!(r.matches_reference("op://Dev/stripe/key"));
        assert!(r.matches_reference("op://Dev/Stripe/key?attribute=otp"));
        assert!(!r.matches_reference("op://Dev/GitHub/token"));
        assert!(!r.matches_reference("op://Production/x/y"));
        let r = rules(&["op://Dev/Stripe/key"], &[]);
        assert!(r.matches_reference("op://Dev/Stripe/key"));
        assert!(
            r.matches_reference("op://Dev/Stripe/any section/key"),
            "a three-part rule covers the field in a section"
        );
        assert!(!r.matches_reference("op://Dev/Stripe/other"));
    }

    #[test]
    fn vaults_match_by_name_and_ids_fail_closed() {
        let r = rules(&[], &["Prod"]);
        assert!(r.matches_reference("op://prod/x/y"));
        assert!(!r.matches_reference("op://Dev/x/y"));
        assert!(
            r.matches_reference(&format!("op://{ID}/x/y")),
            "a vault named by ID may be Prod"
        );
        let r = rules(&[], &[ID]);
        assert!(r.matches_reference(&format!("op://{ID}/x/y")));
        assert!(r.matches_reference("op://Prod/x/y"), "Prod may be that ID");
        assert!(!r.matches_reference("op://bcdefghijklmnopqrstuvwxyza/x/y"));
        let r = rules(&["op://Dev/Stripe/*"], &[]);
        assert!(r.matches_reference(&format!("op://Dev/{ID}/key")));
        assert!(!r.matches_reference("op://Dev/GitHub/key"));
        assert!(
            r.matches_reference("op://Dev/Str(pe/key"),
            "unreadable: ask"
        );
    }

    #[test]
    fn items_match_when_any_of_their_fields_could() {
        let r = rules(&["op://Dev/Stripe/key"], &["Prod"]);
        assert!(r.matches_item(Some("Prod"), Some("anything")));
        assert!(r.matches_item(Some("dev"), Some("stripe")));
        assert!(r.matches_item(None, Some("Stripe")), "no vault named: ask");
        assert!(!r.matches_item(Some("Dev"), Some("GitHub")));
        assert!(
            r.matches_item(None, Some("GitHub")),
            "no vault named, Prod rule: ask"
        );
        let r = rules(&["op://Dev/Stripe/key"], &[]);
        assert!(!r.matches_item(None, Some("GitHub")));
        assert!(r.matches_item(Some("Dev"), None), "no item named: ask");
        assert!(!rules(&[], &[]).matches_item(None, Some("x")));
    }

    #[test]
    fn bad_entries_are_named() {
        let bad = |refs: &[&str]| {
            ConfirmConfig {
                refs: refs.iter().map(|s| s.to_string()).collect(),
                ..ConfirmConfig::default()
            }
            .check(Duration::from_secs(3600))
            .expect_err("refused")
        };
        assert_eq!(bad(&["Prod/*"]).0, "confirm.refs");
        assert_eq!(bad(&["op://Prod"]).0, "confirm.refs");
        assert_eq!(bad(&["op://Prod//x"]).0, "confirm.refs");
        assert_eq!(bad(&["op://Prod/[x/y"]).0, "confirm.refs");
        let long = ConfirmConfig {
            remember: Duration::from_secs(7200),
            ..ConfirmConfig::default()
        };
        assert_eq!(
            long.check(Duration::from_secs(3600)).expect_err("long").0,
            "confirm.remember"
        );
        let missing = ConfirmConfig {
            askpass: Some("/nonexistent/ssh-askpass".into()),
            ..ConfirmConfig::default()
        };
        assert_eq!(
            missing.check(Duration::from_secs(3600)).expect_err("x").0,
            "confirm.askpass"
        );
    }
}

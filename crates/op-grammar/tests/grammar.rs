//! The grammar read the way an attacker writes command lines: every spelling of the same
//! command must classify the same, and random command lines built from the table must parse
//! to exactly what was built.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use op_grammar::table::{COMMANDS, GLOBAL_FLAGS};
use op_grammar::{Effect, FlagKind, OpCall, Vaults, parse};
use proptest::prelude::*;

fn p(s: &str) -> op_grammar::OpCommand {
    parse(&s.split_whitespace().collect::<Vec<_>>()).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn cache_is_a_boolean_and_never_swallows_the_verb() {
    for line in [
        "--cache run -- env",
        "--cache=true run -- env",
        "--cache=false run -- env",
        "--cache --account my run -- env",
        "run --no-masking -- env",
        "--format json run env",
    ] {
        let c = p(line);
        assert_eq!(c.path, "run", "{line}");
        assert_eq!(c.effect(), Effect::Executes, "{line}");
        assert_eq!(c.rest.first().map(String::as_str), Some("env"), "{line}");
    }
    let c = p("--cache signin --raw");
    assert_eq!(c.effect(), Effect::RevealsCredential);
    let c = p("--cache item --cache delete --cache Deploy");
    assert_eq!(c.path, "item delete");
    assert_eq!(c.positionals, ["Deploy"]);
    assert_eq!(c.effect(), Effect::Destructive);
    assert!(matches!(c.vaults(), Vaults::Unknown(_)));
}

#[test]
fn aliases_resolve_to_the_canonical_path() {
    for line in ["item rm X", "item remove X", "items delete X", "items rm X"] {
        assert_eq!(p(line).path, "item delete", "{line}");
    }
    assert_eq!(p("vault ls").path, "vault list");
    assert_eq!(
        p("item mv X --current-vault A --destination-vault B").path,
        "item move"
    );
    assert_eq!(p("plugin info aws").effect(), Effect::Executes);
}

#[test]
fn the_last_account_wins_as_in_pflag() {
    let c = p("--account A --account B whoami");
    assert_eq!(c.account(), Some("B"));
    assert_eq!(c.to_args(), ["whoami", "--account=A", "--account=B"]);
    let mut c = c;
    c.set_account(Some("B"));
    assert_eq!(c.to_args(), ["whoami", "--account=B"]);
}

#[test]
fn unknown_words_and_flags_are_errors_naming_the_word() {
    let e = parse(&["frobnicate"]).unwrap_err();
    assert_eq!(e.word(), "frobnicate");
    let e = parse(&["item", "get", "--nope"]).unwrap_err();
    assert_eq!(e.word(), "--nope");
    let e = parse(&["read", "-x"]).unwrap_err();
    assert_eq!(e.word(), "-x");
    let e = parse(&["--cache=maybe", "whoami"]).unwrap_err();
    assert_eq!(e.word(), "--cache");
    assert!(parse(&["read", "--version"]).is_err());
    assert!(parse(&["--version"]).unwrap().spec.is_none());
}

#[test]
fn vaults_come_from_flags_positionals_or_nowhere() {
    assert_eq!(
        p("item get X --vault=Dev").vaults(),
        Vaults::Named(vec!["Dev".into()])
    );
    assert_eq!(
        p("vault get Prod").vaults(),
        Vaults::Named(vec!["Prod".into()])
    );
    assert_eq!(p("vault list").vaults(), Vaults::NoVault);
    assert!(matches!(p("item list").vaults(), Vaults::Unknown(_)));
    assert!(matches!(p("inject -i t").vaults(), Vaults::Unknown(_)));
    assert_eq!(
        p("item move X --current-vault A --destination-vault B").vaults(),
        Vaults::Named(vec!["A".into(), "B".into()])
    );
}

#[test]
fn builders_produce_lines_the_parser_reads_back() {
    let calls = [
        OpCall::whoami().json().account(Some("my")),
        OpCall::vault_list().json(),
        OpCall::read("op://Dev/Stripe/key"),
        OpCall::inject(),
        OpCall::signin().account(Some("my")),
        OpCall::signout(),
    ];
    for c in calls {
        let again = parse(&c.args()).unwrap();
        assert_eq!(&again, c.command());
    }
    assert_eq!(
        OpCall::whoami().json().account(Some("my")).args(),
        ["whoami", "--format=json", "--account=my"]
    );
}

/// One flag as the generator spells it.
fn spell(long: &str, short: Option<char>, kind: FlagKind, value: &str, style: u8) -> Vec<String> {
    match kind {
        FlagKind::Bool => match (style % 3, short) {
            (0, _) if value == "true" => vec![format!("--{long}")],
            (2, Some(c)) if value == "true" => vec![format!("-{c}")],
            _ => vec![format!("--{long}={value}")],
        },
        FlagKind::OptionalValue => {
            if value.is_empty() {
                vec![format!("--{long}")]
            } else {
                vec![format!("--{long}={value}")]
            }
        }
        FlagKind::Value => match (style % 3, short) {
            (0, _) => vec![format!("--{long}"), value.to_string()],
            (2, Some(c)) => vec![format!("-{c}"), value.to_string()],
            _ => vec![format!("--{long}={value}")],
        },
    }
}

prop_compose! {
    fn value()(s in "[A-Za-z0-9 ._:/=-]{0,10}") -> String { s }
}

prop_compose! {
    fn positional()(s in "[A-Za-z0-9._:/][A-Za-z0-9 ._:/-]{0,10}") -> String { s }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_lines_from_the_table_parse_to_what_was_built(
        ci in 0..COMMANDS.len(),
        alias in any::<u8>(),
        picks in proptest::collection::vec((any::<u16>(), value(), any::<u8>(), any::<bool>(), any::<bool>()), 0..6),
        positionals in proptest::collection::vec(positional(), 0..3),
        dash in any::<bool>(),
    ) {
        let spec = &COMMANDS[ci];
        // Words, with an alias for the last one sometimes.
        let mut words: Vec<String> = spec.path.split(' ').map(str::to_string).collect();
        if !spec.aliases.is_empty() && alias % 2 == 1 {
            let last = words.len() - 1;
            words[last] = spec.aliases[alias as usize % spec.aliases.len()].to_string();
        }
        let mut before = Vec::new();
        let mut after = Vec::new();
        let mut expect_before: Vec<(String, String)> = Vec::new();
        let mut expect: Vec<(String, String)> = Vec::new();
        for (fi, raw, style, global, early) in picks {
            let pool: Vec<_> = if global || spec.flags.is_empty() {
                GLOBAL_FLAGS.iter().filter(|f| f.long != "help").collect()
            } else {
                spec.flags.iter().collect()
            };
            let f = pool[fi as usize % pool.len()];
            let value = match f.kind {
                FlagKind::Bool => if raw.len() % 2 == 0 { "true".to_string() } else { "false".to_string() },
                _ => raw,
            };
            let spelled = spell(f.long, f.short, f.kind, &value, style);
            // Globals may also stand before the command words.
            if early && global {
                before.extend(spelled);
                expect_before.push((f.long.to_string(), value));
            } else {
                after.extend(spelled);
                expect.push((f.long.to_string(), value));
            }
        }
        expect_before.extend(expect);
        let expect = expect_before;
        let mut argv = before;
        argv.extend(words);
        argv.extend(after);
        if spec.interspersed {
            if dash { argv.push("--".into()); }
            argv.extend(positionals.iter().cloned());
        } else if !positionals.is_empty() {
            argv.push("--".into());
            argv.extend(positionals.iter().cloned());
        }
        let got = parse(&argv).map_err(|e| TestCaseError::fail(format!("{argv:?}: {e}")))?;
        prop_assert_eq!(got.path.as_str(), spec.path, "{:?}", argv);
        let flags: Vec<(String, String)> = got.flags.iter().map(|(f, v)| (f.long.to_string(), v.clone())).collect();
        prop_assert_eq!(&flags, &expect, "{:?}", argv);
        if spec.interspersed {
            prop_assert_eq!(&got.positionals, &positionals);
        } else {
            prop_assert_eq!(&got.rest, &positionals);
        }
        let last_account = expect.iter().rev().find(|(k, _)| k == "account").map(|(_, v)| v.as_str());
        prop_assert_eq!(got.account(), last_account);
        // The canonical rendering reads back as the same command.
        let again = parse(&got.to_args()).map_err(|e| TestCaseError::fail(format!("{:?}: {e}", got.to_args())))?;
        prop_assert_eq!(again, got);
    }
}

/// The corrections from a line-by-line comparison with 1Password's CLI reference (op
/// 2.39-2.41; docs/op-behaviour.md §10.3), one check each.
#[test]
fn the_table_agrees_with_the_cli_reference() {
    // `--ssh-generate-key` takes a value: `ed25519` is its value, not an assignment.
    let c = p("item create --category SSHKey --ssh-generate-key ed25519 --vault Dev");
    assert!(c.positionals.is_empty(), "{:?}", c.positionals);
    assert!(
        c.flags
            .iter()
            .any(|(f, v)| f.long == "ssh-generate-key" && v == "ed25519")
    );
    // `document get` has no `-f`, only `--force`.
    assert!(parse(&["document", "get", "Doc", "-f", "--vault", "Dev"]).is_err());
    assert!(parse(&["document", "get", "Doc", "--force", "--vault", "Dev"]).is_ok());
    // `item share` makes a link that outlives the session: destructive, not write.
    assert_eq!(
        p("item share Stripe --vault Dev").effect(),
        Effect::Destructive
    );
    // `account forget` edits the op configuration the daemon signs in with.
    assert_eq!(p("account forget my").effect(), Effect::SessionControl);
    // Commands and flags that were missing.
    assert_eq!(
        p("user recovery begin wendy@example.com").effect(),
        Effect::Destructive
    );
    let run = p("run --environment env123 -- printenv");
    assert_eq!(run.effect(), Effect::Executes);
    let env = p("environment read env123");
    assert_eq!(env.effect(), Effect::Read);
    assert!(
        matches!(env.vaults(), Vaults::Unknown(_)),
        "no vaults rule can scope an Environment"
    );
    // Hidden aliases read as the flag they stand for, and render canonically.
    let c = p("item get Stripe --field label=key --vault Dev");
    assert!(
        c.to_args().iter().any(|a| a == "--fields=label=key"),
        "{:?}",
        c.to_args()
    );
    let c = p("item share Stripe --expiry 1h --vault Dev");
    assert!(
        c.to_args().iter().any(|a| a == "--expires-in=1h"),
        "{:?}",
        c.to_args()
    );
    assert!(
        parse(&["item", "list", "--field", "x"]).is_err(),
        "an alias of one command only"
    );
}

//! Unit tests of the gate: names cannot forge a prompt's lines; which passthrough commands ask.

use super::*;
use crate::peer::ProcessInfo;

#[test]
fn names_cannot_forge_the_prompts_lines() {
    let p = |pid, exe: &str| ProcessInfo {
        pid,
        exe: exe.into(),
    };
    let chain = [p(2, "/tmp/evil\nYes, this is safe"), p(1, "/usr/bin/agent")];
    let c = Caller::new(Some(2), &chain);
    assert!(!c.chain.contains('\n'), "{}", c.chain);
    assert!(
        Subject::reference("op://Prod/a\u{1b}[2J/b")
            .shown
            .contains('?')
    );
}

#[test]
fn passthrough_commands_that_print_a_matching_items_fields_ask() {
    let cfg = ConfirmConfig {
        refs: vec!["op://Prod/*".into()],
        ..ConfirmConfig::default()
    };
    let c = Confirm::new(&cfg, Arc::new(crate::clock::ManualClock::new()));
    let asks = |line: &str| {
        let words: Vec<&str> = line.split_whitespace().collect();
        let cmd = op_grammar::parse(&words).expect("parses");
        !c.command_subjects(&cmd, false).is_empty()
    };
    for line in [
        "item get Deploy --vault Prod",
        "item get Deploy --vault=prod --reveal",
        "item get Deploy",
        "item edit Deploy --vault Prod username=x",
        "item share Deploy --vault Prod",
        "document get Cert --vault Prod",
        "read op://Prod/Deploy/credential",
        "inject -i t.tpl",
    ] {
        assert!(asks(line), "{line}");
    }
    for line in [
        "item get Deploy --vault Dev",
        "item list --vault Prod",
        "vault list",
        "read op://Dev/Stripe/key",
        "whoami",
    ] {
        assert!(!asks(line), "{line}");
    }
    let cmd = op_grammar::parse(&["item", "get", "x", "--vault", "Dev"]).expect("parses");
    assert_eq!(
        c.command_subjects(&cmd, true).len(),
        1,
        "a --confirm grant asks"
    );
}

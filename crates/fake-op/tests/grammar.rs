//! fake-op classifies random command lines exactly as the shared grammar does: the simulator
//! that every end-to-end test trusts reads op's command line the way the daemon does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{OP, Sim};
use op_grammar::table::{COMMANDS, GLOBAL_FLAGS};
use op_grammar::{FlagKind, parse};
use proptest::prelude::*;

/// The command path fake-op logged for its last invocation.
fn logged_command(sim: &Sim) -> String {
    let log = std::fs::read_to_string(sim.home.path().join("calls.jsonl")).unwrap_or_default();
    let last: serde_json::Value =
        serde_json::from_str(log.lines().last().expect("logged")).unwrap();
    last["command"].as_str().unwrap_or("").to_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fake_op_runs_the_command_the_grammar_names(
        ci in 0..COMMANDS.len(),
        alias in any::<bool>(),
        globals in proptest::collection::vec((0..GLOBAL_FLAGS.len(), any::<bool>(), "[a-z]{1,6}"), 0..3),
        junk in proptest::option::of("--[a-z]{3,8}"),
    ) {
        let spec = &COMMANDS[ci];
        // Commands that would start programs or read a password are not run here.
        prop_assume!(!matches!(spec.path, "run" | "plugin run" | "signin" | "account add" | "update"));
        let mut argv: Vec<String> = Vec::new();
        for (gi, early, value) in &globals {
            let f = &GLOBAL_FLAGS[*gi];
            if matches!(f.long, "help" | "session" | "config") {
                continue;
            }
            let spelled = match f.kind {
                FlagKind::Bool => vec![if *early { format!("--{}", f.long) } else { format!("--{}=false", f.long) }],
                _ => vec![format!("--{}", f.long), value.clone()],
            };
            argv.extend(spelled);
        }
        let mut words: Vec<String> = spec.path.split(' ').map(str::to_string).collect();
        if alias && !spec.aliases.is_empty() {
            let last = words.len() - 1;
            words[last] = spec.aliases[0].to_string();
        }
        argv.extend(words);
        if let Some(j) = junk {
            argv.push(j);
        }
        let expected = match parse(&argv) {
            Ok(c) => c.path,
            Err(_) => "(invalid)".to_string(),
        };
        let sim = Sim::new();
        let out = sim.command(OP).args(&argv).output().unwrap();
        let logged = logged_command(&sim);
        prop_assert_eq!(&logged, &expected, "{:?} → exit {:?}", argv, out.status.code());
    }
}

//! Unit tests of `world`, in their own file so the module stays its logic alone.

use super::*;

#[test]
fn counters_since_keeps_only_what_changed() {
    let before = Counters {
        invocations: 3,
        prompts: 1,
        commands: [("signin".to_string(), 1), ("whoami".to_string(), 2)].into(),
    };
    let after = Counters {
        invocations: 8,
        prompts: 1,
        commands: [
            ("signin".to_string(), 1),
            ("whoami".to_string(), 2),
            ("read".to_string(), 5),
        ]
        .into(),
    };
    let d = after.since(&before);
    assert_eq!(d.invocations, 5);
    assert_eq!(d.prompts, 0);
    assert_eq!(d.describe(), "5 (read 5)");
}

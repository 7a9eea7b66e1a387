//! Reading an `op` command line: which words are the command, which flags take a value, and
//! which account it names.
//!
//! Both ends need the same answer: the client decides which commands it runs itself (`op run`,
//! and refusing `op signin`) and the daemon applies policy to the command words, so the rules
//! live here once.

/// Global flags of `op` that take a value (so the value is not mistaken for the verb).
pub const VALUE_FLAGS: &[&str] = &[
    "--account",
    "--config",
    "--encoding",
    "--format",
    "--session",
    "--vault",
    "--cache",
];

/// The command words of an `op` invocation, e.g. `["item", "delete"]`, and its flags.
pub fn verb_of(args: &[String]) -> (Vec<String>, Vec<String>) {
    let mut words = Vec::new();
    let mut flags = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            break;
        }
        if a.starts_with('-') {
            flags.push(a.clone());
            if VALUE_FLAGS.contains(&a.as_str()) && !a.contains('=') {
                i += 1;
            }
        } else if positional_is_verb(&words) {
            words.push(a.to_ascii_lowercase());
        }
        i += 1;
    }
    (words, flags)
}

/// After the first word, a second word is a subcommand only for command groups.
fn positional_is_verb(words: &[String]) -> bool {
    match words.first().map(String::as_str) {
        None => true,
        // `op vault user grant`, `op vault group revoke`: three words.
        Some("vault") if words.len() == 2 => matches!(words[1].as_str(), "user" | "group"),
        Some(
            "item" | "vault" | "document" | "account" | "user" | "group" | "connect" | "events-api"
            | "service-account" | "plugin" | "ssh",
        ) => words.len() < 2,
        Some(_) => false,
    }
}

/// Index of the first command word (the first positional before `--`), if any.
pub fn command_index(args: &[String]) -> Option<usize> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            return None;
        }
        if a.starts_with('-') {
            if VALUE_FLAGS.contains(&a) {
                i += 1;
            }
        } else {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The account named on the command line (`--account X` / `--account=X`), if any.
pub fn account_flag(args: &[String]) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--account" {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix("--account=") {
            return Some(v.to_string());
        }
    }
    None
}

/// Commands that are never passed through the daemon's session: `op run` would start a
/// caller-chosen command with the session variable in its environment, and `op signin` can
/// print the token.
pub const NOT_PASSED_THROUGH: &[&str] = &["run", "signin"];

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn command_words_skip_flags_and_their_values() {
        assert_eq!(
            verb_of(&a("--account my item delete foo")).0,
            vec!["item", "delete"]
        );
        assert_eq!(verb_of(&a("read op://a/b/c")).0, vec!["read"]);
        assert_eq!(
            verb_of(&a("vault user grant --vault x")).0,
            vec!["vault", "user", "grant"]
        );
        assert_eq!(command_index(&a("--format json run -- env")), Some(2));
        assert_eq!(command_index(&a("-- run")), None);
        assert_eq!(
            account_flag(&a("item get x --account=work")).as_deref(),
            Some("work")
        );
        assert_eq!(
            account_flag(&a("--account home read op://a/b/c")).as_deref(),
            Some("home")
        );
    }
}

//! Command-line parsing with op's (cobra/pflag) strictness, through the project's one grammar
//! of `op` (crates/op-grammar): the same table and parser the daemon and the shim use, so
//! fake-op accepts and rejects exactly what they classify.
//!
//! This module only adapts the typed result to the shape fake-op's commands read (a command
//! path string and flags by name) and renders errors as `op` prints them.

use std::collections::BTreeMap;

use crate::error::OpError;

pub use op_grammar::{parse_bool, usage};

/// A parsed command line.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The command path (`read`, `item get`), or `--version`, `help`, or a group name (help).
    pub command: String,
    /// Positional arguments, in order.
    pub positionals: Vec<String>,
    /// Flag values by long name, in the order given (bools as `true`/`false`).
    pub flags: BTreeMap<String, Vec<String>>,
    /// `run`'s program and its arguments.
    pub rest: Vec<String>,
}

impl Parsed {
    /// The last value given for a flag.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.flags.get(name)?.last().map(String::as_str)
    }

    /// Every value given for a repeatable flag.
    pub fn values(&self, name: &str) -> &[String] {
        self.flags.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// A boolean flag's value (false when absent).
    pub fn bool(&self, name: &str) -> bool {
        self.value(name) == Some("true")
    }

    /// Whether a flag appeared at all.
    pub fn has(&self, name: &str) -> bool {
        self.flags.contains_key(name)
    }
}

/// Look up a leaf command by path.
pub fn command(path: &str) -> Option<&'static op_grammar::CommandSpec> {
    op_grammar::lookup(path)
}

/// Parse `argv[1..]`.
pub fn parse(args: &[String]) -> Result<Parsed, OpError> {
    let cmd = op_grammar::parse(args).map_err(|e| OpError::new(e.op_message()))?;
    let mut flags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (f, v) in &cmd.flags {
        flags.entry(f.long.to_string()).or_default().push(v.clone());
    }
    let command = match (cmd.spec, cmd.path.is_empty()) {
        (Some(_), _) => cmd.path.clone(),
        (None, true) if cmd.bool("version") => "--version".to_string(),
        (None, true) => "help".to_string(),
        (None, false) => cmd.path.clone(),
    };
    Ok(Parsed {
        command,
        positionals: cmd.positionals,
        flags,
        rest: cmd.rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[&str]) -> Result<Parsed, OpError> {
        parse(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_go_anywhere_in_both_forms() {
        let a = p(&["read", "op://a/b/c", "--account=my", "-n"]).unwrap();
        assert_eq!(a.command, "read");
        assert_eq!(a.positionals, ["op://a/b/c"]);
        assert_eq!(a.value("account"), Some("my"));
        assert!(a.bool("no-newline"));
        let b = p(&["--account", "my", "item", "get", "x", "--vault", "Dev"]).unwrap();
        assert_eq!(b.command, "item get");
        assert_eq!(b.value("vault"), Some("Dev"));
        let c = p(&["read", "-nfo/tmp/x", "op://a/b/c"]).unwrap();
        assert_eq!(c.value("out-file"), Some("/tmp/x"));
        assert!(c.bool("force"));
    }

    #[test]
    fn strict_errors() {
        let e = p(&["read", "--nope"]).unwrap_err();
        assert!(
            e.message
                .starts_with("unknown flag: --nope\nUsage:  op read <reference> [flags]")
        );
        let e = p(&["frobnicate"]).unwrap_err();
        assert_eq!(
            e.message,
            "unknown command \"frobnicate\" for \"op\"\nRun 'op --help' for usage."
        );
        let e = p(&["read", "--account"]).unwrap_err();
        assert!(e.message.starts_with("flag needs an argument: --account"));
        assert!(p(&["read", "--version"]).is_err());
        assert_eq!(p(&["--version"]).unwrap().command, "--version");
    }

    #[test]
    fn run_stops_at_its_command() {
        let a = p(&[
            "run",
            "--env-file",
            "a",
            "--env-file=b",
            "--",
            "sh",
            "-c",
            "x",
        ])
        .unwrap();
        assert_eq!(a.values("env-file"), ["a", "b"]);
        assert_eq!(a.rest, ["sh", "-c", "x"]);
        let b = p(&["run", "printenv", "-x"]).unwrap();
        assert_eq!(b.rest, ["printenv", "-x"]);
    }

    #[test]
    fn aliases_run_the_canonical_command() {
        assert_eq!(p(&["item", "rm", "x"]).unwrap().command, "item delete");
        assert_eq!(p(&["--cache", "item", "ls"]).unwrap().command, "item list");
    }
}

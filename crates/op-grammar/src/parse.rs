//! Reading an `op` command line with pflag's rules, into a typed [`OpCommand`].
//!
//! The accepted forms are pflag's: `--flag value`, `--flag=value`, booleans as `--flag` or
//! `--flag=true|false` (never taking the next word), `-o value`, `-ovalue`, grouped `-nf`,
//! flags before, between or after positionals, and `--` ending flags. Global flags may stand
//! anywhere, including before the command words. `run` and `plugin run` stop reading flags at
//! their first positional (the program to start).
//!
//! A word or flag the table does not know is an error, never skipped: every reader of this
//! result (the daemon's policy, the shim, fake-op) then refuses the line instead of guessing.

use crate::table::{COMMANDS, CommandSpec, Flag, FlagKind, GLOBAL_FLAGS, GROUPS, ROOT_FLAGS};

/// Why a command line could not be read. Each variant names the offending word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A command word the table does not know.
    #[error("unknown command \"{word}\" for \"{parent}\"")]
    UnknownCommand {
        /// The word.
        word: String,
        /// `op` or `op item` …
        parent: String,
        /// The command path read so far (for usage text).
        path: String,
    },
    /// A long flag the command does not take.
    #[error("unknown flag: --{name}")]
    UnknownFlag {
        /// The flag's name, without dashes.
        name: String,
        /// The command path read so far.
        path: String,
    },
    /// A one-letter flag the command does not take.
    #[error("unknown shorthand flag: '{short}' in {arg}")]
    UnknownShorthand {
        /// The letter.
        short: char,
        /// The whole argument.
        arg: String,
        /// The command path read so far.
        path: String,
    },
    /// A value flag at the end of the line.
    #[error("flag needs an argument: {flag}")]
    MissingValue {
        /// `--name` or `'o' in -o`.
        flag: String,
        /// The command path read so far.
        path: String,
    },
    /// `--bool=notabool`.
    #[error(
        "invalid argument \"{value}\" for \"{flag}\" flag: strconv.ParseBool: parsing \"{value}\": invalid syntax"
    )]
    BadBool {
        /// `--name` or `-x, --name`.
        flag: String,
        /// The value given.
        value: String,
        /// The command path read so far.
        path: String,
    },
}

impl ParseError {
    /// The word or flag that could not be read, for a one-line refusal.
    pub fn word(&self) -> String {
        match self {
            ParseError::UnknownCommand { word, .. } => word.clone(),
            ParseError::UnknownFlag { name, .. } => format!("--{name}"),
            ParseError::UnknownShorthand { short, .. } => format!("-{short}"),
            ParseError::MissingValue { flag, .. } | ParseError::BadBool { flag, .. } => {
                flag.clone()
            }
        }
    }

    /// The text `op` prints for this error (message, then usage), as fake-op reproduces it.
    pub fn op_message(&self) -> String {
        match self {
            ParseError::UnknownCommand { path, .. } => {
                let help = if path.is_empty() {
                    "op --help".to_string()
                } else {
                    format!("op {path} --help")
                };
                format!("{self}\nRun '{help}' for usage.")
            }
            ParseError::UnknownFlag { path, .. }
            | ParseError::UnknownShorthand { path, .. }
            | ParseError::MissingValue { path, .. }
            | ParseError::BadBool { path, .. } => {
                format!("{self}\n{}", usage(command(path), path))
            }
        }
    }
}

/// A parsed `op` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpCommand {
    /// The leaf command, or `None` for `op` alone, `op --version` and group help (`op item`).
    pub spec: Option<&'static CommandSpec>,
    /// The canonical command path (`item delete` for `items rm`); a group's path for group
    /// help; empty for the root.
    pub path: String,
    /// Every flag given, in order, with its value (booleans as `true`/`false`, an optional
    /// value given alone as the empty string).
    pub flags: Vec<(&'static Flag, String)>,
    /// Positional arguments (including those after `--`, as cobra passes them).
    pub positionals: Vec<String>,
    /// For `run` and `plugin run`: the program and its arguments.
    pub rest: Vec<String>,
}

/// pflag's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Look up a leaf command by canonical path.
pub fn command(path: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.path == path)
}

/// The canonical path of `word` under `parent` (a leaf or a group), resolving aliases.
fn child(parent: &str, word: &str) -> Option<(String, Option<&'static CommandSpec>)> {
    let join = |last: &str| {
        if parent.is_empty() {
            last.to_string()
        } else {
            format!("{parent} {last}")
        }
    };
    let last_of = |p: &str| p.rsplit(' ').next().unwrap_or(p).to_string();
    let under = |p: &str| match p.rsplit_once(' ') {
        Some((head, _)) => head == parent,
        None => parent.is_empty(),
    };
    for c in COMMANDS.iter().filter(|c| under(c.path)) {
        if last_of(c.path) == word || c.aliases.contains(&word) {
            return Some((c.path.to_string(), Some(c)));
        }
    }
    for g in GROUPS.iter().filter(|g| under(g.path)) {
        if last_of(g.path) == word || g.aliases.contains(&word) {
            return Some((join(&last_of(g.path)), None));
        }
    }
    None
}

/// Parse `argv[1..]`.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<OpCommand, ParseError> {
    let mut out = OpCommand {
        spec: None,
        path: String::new(),
        flags: Vec::new(),
        positionals: Vec::new(),
        rest: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_ref();
        i += 1;
        if arg == "--" {
            let tail = args[i..].iter().map(|a| a.as_ref().to_string());
            match out.spec {
                Some(c) if !c.interspersed => out.rest.extend(tail),
                _ => out.positionals.extend(tail),
            }
            break;
        }
        if arg.starts_with('-') && arg.len() > 1 {
            let own: &'static [Flag] = match out.spec {
                Some(c) => c.flags,
                None if out.path.is_empty() => ROOT_FLAGS,
                None => &[],
            };
            i = parse_flag(arg, args, i, own, &mut out)?;
            continue;
        }
        match out.spec {
            Some(c) => {
                if !c.interspersed {
                    out.rest.push(arg.to_string());
                    out.rest
                        .extend(args[i..].iter().map(|a| a.as_ref().to_string()));
                    break;
                }
                out.positionals.push(arg.to_string());
            }
            None => match child(&out.path, arg) {
                Some((path, spec)) => {
                    out.path = path;
                    out.spec = spec;
                }
                None => {
                    let parent = if out.path.is_empty() {
                        "op".to_string()
                    } else {
                        format!("op {}", out.path)
                    };
                    return Err(ParseError::UnknownCommand {
                        word: arg.to_string(),
                        parent,
                        path: out.path,
                    });
                }
            },
        }
    }
    if !out.path.is_empty() && out.flags.iter().any(|(f, _)| f.long == "version") {
        // `--version` is local to the root command: cobra rejects it on subcommands.
        return Err(ParseError::UnknownFlag {
            name: "version".into(),
            path: out.path,
        });
    }
    Ok(out)
}

fn find(flags: &'static [Flag], f: impl Fn(&Flag) -> bool) -> Option<&'static Flag> {
    flags.iter().find(|x| f(x))
}

/// Parse one flag token (`arg`, already consumed); returns the index of the next unread word.
fn parse_flag<S: AsRef<str>>(
    arg: &str,
    args: &[S],
    mut i: usize,
    own: &'static [Flag],
    out: &mut OpCommand,
) -> Result<usize, ParseError> {
    let lookup =
        |pred: &dyn Fn(&Flag) -> bool| find(own, pred).or_else(|| find(GLOBAL_FLAGS, pred));
    let path = out.path.clone();
    if let Some(body) = arg.strip_prefix("--") {
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let name = crate::table::FLAG_ALIASES
            .iter()
            .find(|(cmd, alias, _)| *cmd == path && *alias == name)
            .map_or(name, |(_, _, flag)| *flag);
        let Some(spec) = lookup(&|f: &Flag| f.long == name) else {
            return Err(ParseError::UnknownFlag {
                name: name.to_string(),
                path,
            });
        };
        let value = match (spec.kind, inline) {
            (FlagKind::Bool, Some(v)) => match parse_bool(&v) {
                Some(b) => b.to_string(),
                None => {
                    return Err(ParseError::BadBool {
                        flag: format!("--{name}"),
                        value: v,
                        path,
                    });
                }
            },
            (FlagKind::Bool, None) => "true".to_string(),
            (_, Some(v)) => v,
            (FlagKind::OptionalValue, None) => String::new(),
            (FlagKind::Value, None) => match args.get(i) {
                Some(v) => {
                    i += 1;
                    v.as_ref().to_string()
                }
                None => {
                    return Err(ParseError::MissingValue {
                        flag: format!("--{name}"),
                        path,
                    });
                }
            },
        };
        out.flags.push((spec, value));
        return Ok(i);
    }
    let shorts = &arg[1..];
    for (pos, c) in shorts.char_indices() {
        let Some(spec) = lookup(&|f: &Flag| f.short == Some(c)) else {
            return Err(ParseError::UnknownShorthand {
                short: c,
                arg: arg.to_string(),
                path,
            });
        };
        let after = &shorts[pos + c.len_utf8()..];
        if spec.kind == FlagKind::Bool {
            let value = match after.strip_prefix('=') {
                Some(v) => match parse_bool(v) {
                    Some(b) => b.to_string(),
                    None => {
                        return Err(ParseError::BadBool {
                            flag: format!("-{c}, --{}", spec.long),
                            value: v.to_string(),
                            path,
                        });
                    }
                },
                None => "true".to_string(),
            };
            out.flags.push((spec, value));
            if after.starts_with('=') {
                break;
            }
            continue;
        }
        let value = if !after.is_empty() {
            after.strip_prefix('=').unwrap_or(after).to_string()
        } else if let Some(v) = args.get(i) {
            i += 1;
            v.as_ref().to_string()
        } else {
            return Err(ParseError::MissingValue {
                flag: format!("'{c}' in -{c}"),
                path,
            });
        };
        out.flags.push((spec, value));
        break;
    }
    Ok(i)
}

/// Usage text of a command (or of `op` / a group when `leaf` is `None`), as `op` prints it.
pub fn usage(leaf: Option<&CommandSpec>, path: &str) -> String {
    let mut out = String::new();
    match leaf {
        Some(c) => {
            out.push_str(&format!("Usage:  op {}\n", c.usage));
            if !c.flags.is_empty() {
                out.push_str("\nFlags:\n");
                out.push_str(&flag_lines(c.flags));
            }
            out.push_str(
                "\nTo list the global flags available on every command, run  'op --help'.",
            );
        }
        None => {
            let prefix = if path.is_empty() {
                String::new()
            } else {
                format!("{path} ")
            };
            out.push_str(&format!(
                "Usage:  op {prefix}[command]\n\nAvailable Commands:\n"
            ));
            for c in COMMANDS.iter().filter(|c| c.path.starts_with(&prefix)) {
                out.push_str(&format!("  {}\n", c.path));
            }
            if path.is_empty() {
                out.push_str("\nFlags:\n");
                out.push_str(&flag_lines(GLOBAL_FLAGS));
                out.push_str(&flag_lines(ROOT_FLAGS));
            }
            out.push_str(&format!(
                "\nUse \"op {prefix}[command] --help\" for more information about a command."
            ));
        }
    }
    out
}

fn flag_lines(flags: &[Flag]) -> String {
    let split = |f: &Flag| -> (String, &'static str) {
        let short = f
            .short
            .map(|c| format!("-{c}, "))
            .unwrap_or_else(|| "    ".to_string());
        match f.help.split_once("   ") {
            Some((kind, desc)) => (format!("  {short}--{} {kind}", f.long), desc),
            None => (format!("  {short}--{}", f.long), f.help),
        }
    };
    let rows: Vec<(String, &str)> = flags.iter().map(split).collect();
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(left, desc)| format!("{left:width$}   {desc}\n"))
        .collect()
}

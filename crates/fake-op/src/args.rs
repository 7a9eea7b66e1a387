//! Command-line parsing with op's (cobra/pflag) strictness.
//!
//! Hand-written rather than clap so the accepted forms and the error texts are pflag's:
//! `--flag value`, `--flag=value`, `-o value`, `-ovalue`, `-nf`, flags before or after
//! positionals, `--` ending flags, and `unknown flag: --x` / `unknown shorthand flag: 'x' in -x`
//! / `flag needs an argument: --x` followed by the command's usage. `op run` stops parsing
//! flags at its first positional, like a cobra command with interspersed flags off.

use std::collections::BTreeMap;

use crate::error::OpError;

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--x`, `--x=true|false`.
    Bool,
    /// `--x v`, `--x=v`.
    Value,
    /// `--x` alone means the default; a value only with `=` (pflag's NoOptDefVal).
    OptionalValue,
}

/// One flag of a command.
#[derive(Debug)]
pub struct Flag {
    /// Long name without dashes.
    pub long: &'static str,
    /// One-letter alias.
    pub short: Option<char>,
    /// Value handling.
    pub kind: Kind,
    /// The value's name and the help text, for usage output.
    pub help: &'static str,
}

const fn flag(long: &'static str, short: Option<char>, kind: Kind, help: &'static str) -> Flag {
    Flag {
        long,
        short,
        kind,
        help,
    }
}

use Kind::{Bool, OptionalValue, Value};

/// Flags every command accepts (op-cli.md §5.1).
pub static GLOBAL_FLAGS: &[Flag] = &[
    flag(
        "account",
        None,
        Value,
        "account   Select the account to execute the command by account shorthand, sign-in address, account ID, or user ID.",
    ),
    flag(
        "cache",
        None,
        Bool,
        "Store and use cached information. (default true)",
    ),
    flag(
        "config",
        None,
        Value,
        "directory   Use this configuration directory.",
    ),
    flag("debug", None, Bool, "Enable debug mode."),
    flag(
        "encoding",
        None,
        Value,
        "type   Use this character encoding type. Default: UTF-8. Supported: SHIFT_JIS, gbk.",
    ),
    flag(
        "format",
        None,
        Value,
        "string   Use this output format. Can be 'human-readable' or 'json'. (default \"human-readable\")",
    ),
    flag("help", Some('h'), Bool, "Get help for a command."),
    flag(
        "iso-timestamps",
        None,
        Bool,
        "Format timestamps according to ISO 8601 / RFC 3339.",
    ),
    flag("no-color", None, Bool, "Print output without color."),
    flag(
        "session",
        None,
        Value,
        "token   Authenticate with this session token.",
    ),
];

/// A leaf command.
#[derive(Debug)]
pub struct Command {
    /// Space-separated path, e.g. `item get`.
    pub path: &'static str,
    /// The `Usage:` line after `op `.
    pub usage: &'static str,
    /// Its own flags (globals come on top).
    pub flags: &'static [Flag],
    /// False for `run`: the first positional ends flag parsing.
    pub interspersed: bool,
}

const fn cmd(path: &'static str, usage: &'static str, flags: &'static [Flag]) -> Command {
    Command {
        path,
        usage,
        flags,
        interspersed: true,
    }
}

/// Every command fake-op knows.
pub static COMMANDS: &[Command] = &[
    cmd(
        "signin",
        "signin [flags]",
        &[
            flag(
                "force",
                Some('f'),
                Bool,
                "Ignore warnings and print raw output from this command.",
            ),
            flag("raw", None, Bool, "Only return the session token."),
        ],
    ),
    cmd(
        "signout",
        "signout [flags]",
        &[
            flag("all", None, Bool, "Sign out of all signed-in accounts."),
            flag(
                "forget",
                None,
                Bool,
                "Remove the details for a 1Password account from this device.",
            ),
        ],
    ),
    cmd("whoami", "whoami [flags]", &[]),
    cmd("account list", "account list [flags]", &[]),
    cmd(
        "account forget",
        "account forget [{ <shorthand> | <signinAddress> | <accountID> | <userID> }] [flags]",
        &[flag(
            "all",
            None,
            Bool,
            "Forget all authenticated accounts.",
        )],
    ),
    cmd(
        "read",
        "read <reference> [flags]",
        &[
            flag(
                "file-mode",
                None,
                Value,
                "filemode   Set filemode for the output file. It is ignored without the --out-file flag. (default 0600)",
            ),
            flag("force", Some('f'), Bool, "Do not prompt for confirmation."),
            flag(
                "no-newline",
                Some('n'),
                Bool,
                "Do not print a new line after the secret.",
            ),
            flag(
                "out-file",
                Some('o'),
                Value,
                "path   Write the secret to a file instead of stdout.",
            ),
        ],
    ),
    cmd(
        "inject",
        "inject [flags]",
        &[
            flag(
                "file-mode",
                None,
                Value,
                "filemode   Set filemode for the output file. It is ignored without the --out-file flag. (default 0600)",
            ),
            flag("force", Some('f'), Bool, "Do not prompt for confirmation."),
            flag(
                "in-file",
                Some('i'),
                Value,
                "string   The filename of a template file to inject.",
            ),
            flag(
                "out-file",
                Some('o'),
                Value,
                "string   Write the injected template to a file instead of stdout.",
            ),
        ],
    ),
    Command {
        path: "run",
        usage: "run -- <command>... [flags]",
        flags: &[
            flag(
                "env-file",
                None,
                Value,
                "stringArray   Enable Dotenv integration with specific Dotenv files to parse. For example: --env-file=.env",
            ),
            flag(
                "no-masking",
                None,
                Bool,
                "Disable masking of secrets on stdout and stderr.",
            ),
        ],
        interspersed: false,
    },
    cmd(
        "item get",
        "item get [{ <itemName> | <itemID> | <shareLink> | - }] [flags]",
        &[
            flag(
                "fields",
                None,
                Value,
                "strings   Return data from specific fields. Use `label=` to get the field by name or `type=` to filter fields by type.",
            ),
            flag(
                "include-archive",
                None,
                Bool,
                "Include items in the Archive.",
            ),
            flag(
                "otp",
                None,
                Bool,
                "Output the primary one-time password for this item.",
            ),
            flag("reveal", None, Bool, "Don't conceal sensitive fields."),
            flag(
                "vault",
                None,
                Value,
                "vault   Look for the item in this vault.",
            ),
        ],
    ),
    cmd(
        "item list",
        "item list [flags]",
        &[
            flag(
                "categories",
                None,
                Value,
                "categories   Only list items in these categories (comma-separated).",
            ),
            flag("favorite", None, Bool, "Only list favorite items"),
            flag(
                "include-archive",
                None,
                Bool,
                "Include items in the Archive.",
            ),
            flag("long", None, Bool, "Output a more detailed item list."),
            flag(
                "tags",
                None,
                Value,
                "tags   Only list items with these tags (comma-separated).",
            ),
            flag(
                "vault",
                None,
                Value,
                "vault   Only list items in this vault.",
            ),
        ],
    ),
    cmd(
        "item create",
        "item create [{ - | <assignment>... }] [flags]",
        &[
            flag(
                "category",
                None,
                Value,
                "category   Set the item's category.",
            ),
            flag(
                "dry-run",
                None,
                Bool,
                "Perform a dry run of the command and output a preview of the resulting item.",
            ),
            flag("favorite", None, Bool, "Add item to favorites."),
            flag(
                "generate-password",
                None,
                OptionalValue,
                "[=recipe]   Give the item a randomly generated password.",
            ),
            flag("reveal", None, Bool, "Don't conceal sensitive fields."),
            flag(
                "tags",
                None,
                Value,
                "tags   Set the tags to the specified (comma-separated) values.",
            ),
            flag("title", None, Value, "title   Set the item's title."),
            flag(
                "url",
                None,
                Value,
                "URL   Set the website where 1Password suggests and fills a Login, Password, or API Credential item.",
            ),
            flag(
                "vault",
                None,
                Value,
                "vault   Save the item in this vault. Default: Private.",
            ),
        ],
    ),
    cmd(
        "item edit",
        "item edit { <itemName> | <itemID> | <shareLink> } [{ <assignment>... }] [flags]",
        &[
            flag(
                "dry-run",
                None,
                Bool,
                "Perform a dry run of the command and output a preview of the resulting item.",
            ),
            flag(
                "favorite",
                None,
                Bool,
                "Whether this item is a favorite item. Options: true, false",
            ),
            flag(
                "generate-password",
                None,
                OptionalValue,
                "[=recipe]   Give the item a randomly generated password.",
            ),
            flag("reveal", None, Bool, "Don't conceal sensitive fields."),
            flag(
                "tags",
                None,
                Value,
                "tags   Set the tags to the specified (comma-separated) values. An empty value will remove all tags.",
            ),
            flag("title", None, Value, "title   Set the item's title."),
            flag(
                "url",
                None,
                Value,
                "URL   Set the URL associated with the item.",
            ),
            flag("vault", None, Value, "vault   Edit the item in this vault."),
        ],
    ),
    cmd(
        "item delete",
        "item delete [{ <itemName> | <itemID> | <shareLink> | - }] [flags]",
        &[
            flag("archive", None, Bool, "Move the item to the Archive."),
            flag(
                "vault",
                None,
                Value,
                "vault   Look for the item in this vault.",
            ),
        ],
    ),
    cmd(
        "vault list",
        "vault list [flags]",
        &[
            flag(
                "group",
                None,
                Value,
                "group   List vaults a group has access to.",
            ),
            flag(
                "permission",
                None,
                Value,
                "permissions   List only vaults that the specified user/group has this permission for.",
            ),
            flag(
                "user",
                None,
                Value,
                "user   List vaults that a given user has access to.",
            ),
        ],
    ),
    cmd(
        "vault get",
        "vault get { <vaultName> | <vaultID> | - } [flags]",
        &[],
    ),
    cmd(
        "service-account ratelimit",
        "service-account ratelimit [{ <serviceAccountName> | <serviceAccountID> }] [flags]",
        &[],
    ),
];

/// Groups of subcommands, for `unknown command "x" for "op item"` and group help.
const GROUPS: &[&str] = &["account", "item", "vault", "service-account"];

/// The `op --version` flag pair, accepted only before any command.
static ROOT_FLAGS: &[Flag] = &[flag("version", Some('v'), Bool, "Version for op.")];

/// A parsed command line.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The command path (`read`, `item get`), or `--version`, `help`, or a group name (help).
    pub command: String,
    /// Positional arguments, in order.
    pub positionals: Vec<String>,
    /// Flag values by long name, in the order given (bools as `true`/`false`).
    pub flags: BTreeMap<String, Vec<String>>,
    /// Arguments after `--` (or after `run`'s first positional).
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

/// pflag's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Look up a leaf command by path.
pub fn command(path: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.path == path)
}

/// Parse `argv[1..]`.
pub fn parse(args: &[String]) -> Result<Parsed, OpError> {
    let mut parsed = Parsed::default();
    let mut path = String::new();
    let mut leaf: Option<&'static Command> = None;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            parsed.rest.extend(args[i..].iter().cloned());
            break;
        }
        if arg.starts_with('-') && arg.len() > 1 {
            let own: &[Flag] = match leaf {
                Some(c) => c.flags,
                None if path.is_empty() => ROOT_FLAGS,
                None => &[],
            };
            i = parse_flag(arg, args, i, own, &mut parsed, leaf, &path)?;
            continue;
        }
        match leaf {
            Some(c) => {
                if !c.interspersed {
                    parsed.rest.push(arg.clone());
                    parsed.rest.extend(args[i..].iter().cloned());
                    break;
                }
                parsed.positionals.push(arg.clone());
            }
            None => {
                let candidate = if path.is_empty() {
                    arg.clone()
                } else {
                    format!("{path} {arg}")
                };
                if let Some(c) = command(&candidate) {
                    leaf = Some(c);
                    path = candidate;
                } else if path.is_empty() && GROUPS.contains(&arg.as_str()) {
                    path = candidate;
                } else {
                    let parent = if path.is_empty() {
                        "op".to_string()
                    } else {
                        format!("op {path}")
                    };
                    let help = if path.is_empty() {
                        "op --help".to_string()
                    } else {
                        format!("op {path} --help")
                    };
                    return Err(OpError::new(format!(
                        "unknown command \"{arg}\" for \"{parent}\"\nRun '{help}' for usage."
                    )));
                }
            }
        }
    }
    if parsed.has("version") && !path.is_empty() {
        // `--version` is local to the root command: cobra rejects it on subcommands.
        return Err(usage_error(
            "unknown flag: --version".to_string(),
            leaf,
            &path,
        ));
    }
    parsed.command = if parsed.bool("version") && path.is_empty() {
        "--version".to_string()
    } else if path.is_empty() {
        "help".to_string()
    } else {
        path
    };
    Ok(parsed)
}

fn find(flags: &[Flag], f: impl Fn(&Flag) -> bool) -> Option<&Flag> {
    flags.iter().find(|x| f(x))
}

/// Parse one flag token at `args[i - 1]`; returns the index of the next unread argument.
fn parse_flag(
    arg: &str,
    args: &[String],
    mut i: usize,
    own: &[Flag],
    parsed: &mut Parsed,
    leaf: Option<&Command>,
    path: &str,
) -> Result<usize, OpError> {
    let lookup =
        |pred: &dyn Fn(&Flag) -> bool| find(own, pred).or_else(|| find(GLOBAL_FLAGS, pred));
    if let Some(body) = arg.strip_prefix("--") {
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(spec) = lookup(&|f: &Flag| f.long == name) else {
            return Err(usage_error(format!("unknown flag: --{name}"), leaf, path));
        };
        let value = match (spec.kind, inline) {
            (Kind::Bool, Some(v)) => match parse_bool(&v) {
                Some(b) => b.to_string(),
                None => {
                    return Err(usage_error(
                        format!(
                            "invalid argument \"{v}\" for \"--{name}\" flag: strconv.ParseBool: parsing \"{v}\": invalid syntax"
                        ),
                        leaf,
                        path,
                    ));
                }
            },
            (Kind::Bool, None) => "true".to_string(),
            (_, Some(v)) => v,
            (Kind::OptionalValue, None) => String::new(),
            (Kind::Value, None) => match args.get(i) {
                Some(v) => {
                    i += 1;
                    v.clone()
                }
                None => {
                    return Err(usage_error(
                        format!("flag needs an argument: --{name}"),
                        leaf,
                        path,
                    ));
                }
            },
        };
        parsed
            .flags
            .entry(spec.long.to_string())
            .or_default()
            .push(value);
        return Ok(i);
    }
    let shorts = &arg[1..];
    for (pos, c) in shorts.char_indices() {
        let Some(spec) = lookup(&|f: &Flag| f.short == Some(c)) else {
            return Err(usage_error(
                format!("unknown shorthand flag: '{c}' in {arg}"),
                leaf,
                path,
            ));
        };
        let after = &shorts[pos + c.len_utf8()..];
        if spec.kind == Kind::Bool {
            let value = match after.strip_prefix('=') {
                Some(v) => match parse_bool(v) {
                    Some(b) => b.to_string(),
                    None => {
                        return Err(usage_error(
                            format!(
                                "invalid argument \"{v}\" for \"-{c}, --{}\" flag: strconv.ParseBool: parsing \"{v}\": invalid syntax",
                                spec.long
                            ),
                            leaf,
                            path,
                        ));
                    }
                },
                None => "true".to_string(),
            };
            parsed
                .flags
                .entry(spec.long.to_string())
                .or_default()
                .push(value);
            if after.starts_with('=') {
                break;
            }
            continue;
        }
        let value = if !after.is_empty() {
            after.strip_prefix('=').unwrap_or(after).to_string()
        } else if let Some(v) = args.get(i) {
            i += 1;
            v.clone()
        } else {
            return Err(usage_error(
                format!("flag needs an argument: '{c}' in -{c}"),
                leaf,
                path,
            ));
        };
        parsed
            .flags
            .entry(spec.long.to_string())
            .or_default()
            .push(value);
        break;
    }
    Ok(i)
}

/// A flag error: the message, then the command's usage (op-cli.md §8).
fn usage_error(message: String, leaf: Option<&Command>, path: &str) -> OpError {
    OpError::new(format!("{message}\n{}", usage(leaf, path)))
}

/// Usage text of a command (or of `op` / a group when `leaf` is `None`).
pub fn usage(leaf: Option<&Command>, path: &str) -> String {
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
}

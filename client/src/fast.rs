//! The command lines an agent runs per tool call, read without building clap's command tree.
//!
//! An agent's shell runs `op-session read …` or `status` once per tool call, so the client's
//! start-up is the product's latency (docs/BENCHMARKS.md, "Where the time goes").
//! Building clap's whole command tree (every subcommand, its help and value parsers) costs
//! more than the request itself; this module reads the plain shapes of `status`, `read`,
//! `inject`, `run` and `op` into the same [`Cli`] value clap would produce, and gives up
//! (returns `None`) on anything else: help, version, repeated or bundled flags, a value that
//! starts with `-`, an empty value, non-UTF-8 text, an unknown flag. Clap then reads the line
//! as before, so every usage error keeps clap's exact words and exit code. A test checks that
//! whatever this module accepts, clap reads the same way.

use std::ffi::OsString;
use std::path::PathBuf;

use op_grammar::FileMode;

use crate::cli::{Cli, Command, InjectArgs, MaskArg, OutFileArgs, ReadArgs, RunArgs};

/// Read `args` (without argv\[0\]) when it is a plain agent command line; `None` sends it to
/// clap.
pub fn parse(args: &[OsString]) -> Option<Cli> {
    let mut words = Vec::with_capacity(args.len());
    for a in args {
        words.push(a.to_str()?);
    }
    let mut w = Words {
        rest: &words,
        seen: Vec::new(),
    };
    let mut socket = None;
    let mut no_autostart = false;
    let sub = loop {
        let word = w.next()?;
        match word {
            "--no-autostart" => {
                w.once("--no-autostart")?;
                no_autostart = true;
            }
            _ => match w.value(word, "--socket", None)? {
                Some(v) => socket = Some(PathBuf::from(v)),
                None => break word,
            },
        }
    };
    let command = match sub {
        "status" => {
            let json = match w.next() {
                None => false,
                Some("--json") => true,
                Some(_) => return None,
            };
            w.end()?;
            Command::Status { json }
        }
        "read" => Command::Read(read(&mut w)?),
        "inject" => Command::Inject(inject(&mut w)?),
        "run" => Command::Run(run(&mut w)?),
        "op" => {
            let first = w.rest.first()?;
            if first.is_empty() || first.starts_with('-') {
                return None;
            }
            Command::Op {
                args: w.rest.iter().map(|s| s.to_string()).collect(),
            }
        }
        _ => return None,
    };
    Some(Cli {
        socket,
        no_autostart,
        command,
    })
}

/// The words left, and the flags already seen (each may come once).
struct Words<'a> {
    rest: &'a [&'a str],
    seen: Vec<&'static str>,
}

impl<'a> Words<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let (first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(first)
    }

    fn end(&self) -> Option<()> {
        self.rest.is_empty().then_some(())
    }

    /// Note that `flag` was given; `None` if it already was.
    fn once(&mut self, flag: &'static str) -> Option<()> {
        if self.seen.contains(&flag) {
            return None;
        }
        self.seen.push(flag);
        Some(())
    }

    /// If `word` is the option `long` (or `short`), its value: `--long V`, `--long=V` or
    /// `-s V`. `Some(None)`: not this option. `None`: this option, but not in a plain form
    /// (or given twice).
    fn value(
        &mut self,
        word: &'a str,
        long: &'static str,
        short: Option<&str>,
    ) -> Option<Option<&'a str>> {
        let value = if word == long || Some(word) == short {
            self.next()?
        } else if let Some(v) = word
            .strip_prefix(long)
            .and_then(|rest| rest.strip_prefix('='))
        {
            v
        } else {
            return Some(None);
        };
        if value.is_empty() || value.starts_with('-') {
            return None;
        }
        self.once(long)?;
        Some(Some(value))
    }

    /// If `word` is the flag `long` (or `short`): `Some(true)`; `None` if it was given before.
    fn flag(&mut self, word: &str, long: &'static str, short: Option<&str>) -> Option<bool> {
        if word == long || Some(word) == short {
            self.once(long)?;
            return Some(true);
        }
        Some(false)
    }
}

/// A positional word clap would read as a value (not a flag, not empty).
fn plain(word: &str) -> Option<&str> {
    (!word.is_empty() && !word.starts_with('-')).then_some(word)
}

fn file_mode(v: Option<&str>) -> Option<FileMode> {
    v.unwrap_or("0600").parse().ok()
}

fn read(w: &mut Words<'_>) -> Option<ReadArgs> {
    let mut refs = Vec::new();
    let (mut account, mut out_file, mut mode) = (None, None, None);
    let (mut no_newline, mut force, mut no_cache, mut json) = (false, false, false, false);
    while let Some(word) = w.next() {
        if let Some(v) = w.value(word, "--account", None)? {
            account = Some(v.to_string());
        } else if let Some(v) = w.value(word, "--out-file", Some("-o"))? {
            out_file = Some(PathBuf::from(v));
        } else if let Some(v) = w.value(word, "--file-mode", None)? {
            mode = Some(v);
        } else if w.flag(word, "--no-newline", Some("-n"))? {
            no_newline = true;
        } else if w.flag(word, "--force", Some("-f"))? {
            force = true;
        } else if w.flag(word, "--no-cache", None)? {
            no_cache = true;
        } else if w.flag(word, "--json", None)? {
            json = true;
        } else {
            refs.push(plain(word)?.to_string());
        }
    }
    if refs.is_empty() {
        return None;
    }
    Some(ReadArgs {
        refs,
        account,
        no_newline,
        out: OutFileArgs {
            out_file,
            file_mode: file_mode(mode)?,
            force,
        },
        no_cache,
        json,
    })
}

fn inject(w: &mut Words<'_>) -> Option<InjectArgs> {
    let (mut in_file, mut out_file, mut mode, mut account) = (None, None, None, None);
    let mut force = false;
    while let Some(word) = w.next() {
        if let Some(v) = w.value(word, "--in-file", Some("-i"))? {
            in_file = Some(PathBuf::from(v));
        } else if let Some(v) = w.value(word, "--out-file", Some("-o"))? {
            out_file = Some(PathBuf::from(v));
        } else if let Some(v) = w.value(word, "--file-mode", None)? {
            mode = Some(v);
        } else if let Some(v) = w.value(word, "--account", None)? {
            account = Some(v.to_string());
        } else if w.flag(word, "--force", Some("-f"))? {
            force = true;
        } else {
            return None;
        }
    }
    Some(InjectArgs {
        in_file,
        out: OutFileArgs {
            out_file,
            file_mode: file_mode(mode)?,
            force,
        },
        account,
    })
}

fn run(w: &mut Words<'_>) -> Option<RunArgs> {
    let (mut account, mut min) = (None, None);
    let mut env_files = Vec::new();
    let (mut no_masking, mut no_cache) = (false, false);
    loop {
        let word = w.next()?;
        if word == "--" {
            break;
        }
        if let Some(v) = w.value(word, "--account", None)? {
            account = Some(v.to_string());
        } else if let Some(v) = w.value(word, "--mask-min-encoded", None)? {
            if !v.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            min = Some(v.parse().ok()?);
        } else if word == "--env-file" {
            // Repeatable: each file in order.
            env_files.push(PathBuf::from(plain(w.next()?)?));
        } else if w.flag(word, "--no-masking", None)? {
            no_masking = true;
        } else if w.flag(word, "--no-cache", None)? {
            no_cache = true;
        } else {
            return None;
        }
    }
    if w.rest.is_empty() {
        return None;
    }
    Some(RunArgs {
        account,
        env_files,
        no_masking,
        mask: MaskArg::Encoded,
        mask_min_encoded: min,
        no_cache,
        environment: None,
        command: w.rest.iter().map(|s| s.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn os(line: &[&str]) -> Vec<OsString> {
        line.iter().map(OsString::from).collect()
    }

    /// Whatever the fast path reads, clap reads the same way.
    fn agrees(line: &[&str]) -> bool {
        let Some(fast) = parse(&os(line)) else {
            return false;
        };
        let mut argv = vec!["op-session"];
        argv.extend_from_slice(line);
        let slow = Cli::try_parse_from(&argv)
            .unwrap_or_else(|e| panic!("fast path took {line:?}, clap refused it: {e}"));
        assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{line:?}");
        true
    }

    #[test]
    fn the_agents_lines_take_the_fast_path_and_mean_what_clap_says() {
        for line in [
            &["status"][..],
            &["status", "--json"],
            &["--no-autostart", "status"],
            &["--socket", "/tmp/x.sock", "status"],
            &[
                "--socket=/tmp/x.sock",
                "--no-autostart",
                "read",
                "op://a/b/c",
            ],
            &["read", "op://Dev/Stripe/key"],
            &["read", "op://a/b/c", "op://a/b/d", "--json"],
            &["read", "-n", "op://a/b/c", "--account", "my", "--no-cache"],
            &["read", "--account=my", "-o", "out.txt", "-f", "op://a/b/c"],
            &["read", "--out-file=o", "--file-mode", "0640", "op://a/b/c"],
            &[
                "read",
                "--file-mode=600",
                "--no-newline",
                "--force",
                "op://a b/c/d",
            ],
            &["inject"],
            &[
                "inject",
                "-i",
                "t.tpl",
                "-o",
                "out",
                "--file-mode",
                "0644",
                "-f",
            ],
            &["inject", "--in-file=t", "--account", "my"],
            &["run", "--", "env"],
            &[
                "run",
                "--no-masking",
                "--account",
                "my",
                "--",
                "sh",
                "-c",
                "echo $X",
            ],
            &[
                "run",
                "--env-file",
                "a.env",
                "--env-file",
                "b.env",
                "--",
                "x",
                "--",
                "y",
            ],
            &[
                "run",
                "--mask-min-encoded",
                "4",
                "--no-cache",
                "--",
                "x",
                "--help",
            ],
            &["op", "item", "get", "x", "--vault", "v", "--socket", "s"],
            &["op", "read", "op://a/b/c", "--help", "--version", "-h"],
            &["op", "whoami"],
        ] {
            assert!(agrees(line), "{line:?} should take the fast path");
        }
    }

    #[test]
    fn everything_else_goes_to_clap() {
        for line in [
            &[][..],
            &["--version"],
            &["-V"],
            &["--help"],
            &["help"],
            &["status", "--help"],
            &["status", "--json", "--json"],
            &["status", "extra"],
            &["status", "--socket", "x"],
            &["--socket"],
            &["--socket", "", "status"],
            &["--socket=", "status"],
            &["--socket", "a", "--socket", "b", "status"],
            &["--no-autostart", "--no-autostart", "status"],
            &["read"],
            &["read", "--json"],
            &["read", "-nf", "op://a/b/c"],
            &["read", "-", "op://a/b/c"],
            &["read", "", "op://a/b/c"],
            &["read", "--", "op://a/b/c"],
            &["read", "--account", "-x", "op://a/b/c"],
            &["read", "--account", "a", "--account", "b", "op://a/b/c"],
            &["read", "--file-mode", "999", "op://a/b/c"],
            &["read", "--json", "--json", "op://a/b/c"],
            &["read", "op://a/b/c", "--bogus"],
            &["read", "op://a/b/c", "-h"],
            &["read", "-oout", "op://a/b/c"],
            &["inject", "x"],
            &["inject", "-i"],
            &["run"],
            &["run", "--"],
            &["run", "env"],
            &["run", "--mask", "exact", "--", "env"],
            &["run", "--mask-min-encoded", "+4", "--", "env"],
            &["run", "--no-masking", "--no-masking", "--", "env"],
            &["op"],
            &["op", "--version"],
            &["op", "--", "whoami"],
            &["grant", "x"],
            &["doctor"],
        ] {
            assert!(parse(&os(line)).is_none(), "{line:?} should go to clap");
        }
    }

    #[test]
    fn non_utf8_goes_to_clap() {
        use std::os::unix::ffi::OsStringExt;
        let args = vec![OsString::from("read"), OsString::from_vec(vec![0xff, b'x'])];
        assert!(parse(&args).is_none());
    }
}

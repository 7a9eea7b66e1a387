//! What a parsed command touches besides 1Password: files it reads or writes, a template or
//! items it reads from standard input, the environment it expands. The other half of a
//! command's [`crate::Effect`]: the effect says what it does to 1Password data, this says
//! what it does on the machine it runs on.
//!
//! Why: the daemon runs `op` with a credential on a caller's behalf. A caller that can choose a
//! file `op` writes (`read -o`, `--out-file`, `item template get -o`), a file it reads
//! (`inject -i`, `--template`, `document create FILE`, `--env-file`), a template it expands
//! (`inject` expands `$VAR` and `${VAR}` from `op`'s own environment, which holds the token) or
//! a directory it uses (`--config`, `update --directory`) acts with the daemon's hands, not its
//! own. docs/op-behaviour.md §4.1 and §10.5 record what `op` does with each of these.
//!
//! The rule lives here, next to the table, so every reader (the daemon's passthrough gate,
//! policy, the shim) sees the same answer for every spelling: a flag is recognised by its
//! canonical long name whatever form it was given in (`-o`, `--out-file=…`, before the verb).

use crate::parse::OpCommand;

/// One thing a command touches outside 1Password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touch {
    /// It writes (creates or overwrites) the file at this path.
    WritesFile {
        /// How the command line names it (`--out-file`).
        via: &'static str,
        /// The path as given.
        path: String,
    },
    /// It sets the mode or overwrite behaviour of a file it writes (`--file-mode`, `--force`).
    FileOption {
        /// The flag (`--file-mode`, `--force`).
        via: &'static str,
    },
    /// It reads the file at this path.
    ReadsFile {
        /// `--in-file`, `--template`, `--env-file`, or `FILE` for a positional.
        via: &'static str,
        /// The path as given.
        path: String,
    },
    /// It reads and writes a directory of files (`--config`, `update --directory`).
    UsesDirectory {
        /// The flag.
        via: &'static str,
        /// The directory as given.
        path: String,
    },
    /// It reads input from standard input: items or names (`-`), a template, a document.
    ReadsStdin {
        /// What it reads there.
        what: &'static str,
    },
    /// It expands a template's references and environment variables (`op inject`).
    ExpandsTemplate,
    /// It reads the environment for secret references and starts a program (`op run`).
    ExpandsEnvironment,
}

impl Touch {
    /// How the command line asked for it, for a refusal (`--out-file`, `-`, `inject`).
    pub fn via(&self) -> &'static str {
        match self {
            Touch::WritesFile { via, .. }
            | Touch::FileOption { via }
            | Touch::ReadsFile { via, .. }
            | Touch::UsesDirectory { via, .. } => via,
            Touch::ReadsStdin { .. } => "-",
            Touch::ExpandsTemplate => "a template",
            Touch::ExpandsEnvironment => "the environment",
        }
    }
}

/// Flags whose value is a file `op` writes.
const WRITES: &[(&str, &str)] = &[("out-file", "--out-file")];
/// Flags that only matter for a file `op` writes (on commands that write one).
const FILE_OPTIONS: &[(&str, &str)] = &[("file-mode", "--file-mode"), ("force", "--force")];
/// Flags whose value is a file `op` reads.
const READS: &[(&str, &str)] = &[
    ("in-file", "--in-file"),
    ("template", "--template"),
    ("env-file", "--env-file"),
];
/// Flags whose value is a directory `op` uses.
const DIRECTORIES: &[(&str, &str)] = &[("config", "--config"), ("directory", "--directory")];

/// Commands whose positional (after the item, for `document edit`) is a file read, `-` for
/// standard input: (path, index of the file positional).
const FILE_POSITIONALS: &[(&str, usize)] = &[("document create", 0), ("document edit", 1)];

impl OpCommand {
    /// Everything the command touches besides 1Password data, in command-line order of kind
    /// (files written, file options, files read, directories, standard input, expansion).
    /// Empty for a command whose every input is typed data on its line and whose every
    /// output is 1Password data on standard output.
    pub fn touches(&self) -> Vec<Touch> {
        let mut out = Vec::new();
        let Some(spec) = self.spec else {
            // `op`, `op --version`, group help: only the global flags can touch anything.
            self.directory_touches(&mut out);
            return out;
        };
        let writes_file = spec.flags.iter().any(|f| f.long == "out-file");
        for (f, v) in &self.flags {
            if let Some((_, via)) = WRITES.iter().find(|(n, _)| *n == f.long) {
                out.push(Touch::WritesFile {
                    via,
                    path: v.clone(),
                });
            }
        }
        if writes_file {
            // `--force` means "overwrite the output file": inert (and allowed) without one.
            let has_out = self.has("out-file");
            for (f, v) in &self.flags {
                let set = f.long == "file-mode" || (has_out && v != "false");
                if set && let Some((_, via)) = FILE_OPTIONS.iter().find(|(n, _)| *n == f.long) {
                    out.push(Touch::FileOption { via });
                }
            }
        }
        for (f, v) in &self.flags {
            if let Some((_, via)) = READS.iter().find(|(n, _)| *n == f.long) {
                if v == "-" {
                    out.push(Touch::ReadsStdin { what: "a template" });
                } else {
                    out.push(Touch::ReadsFile {
                        via,
                        path: v.clone(),
                    });
                }
            }
        }
        self.directory_touches(&mut out);
        let file_at = FILE_POSITIONALS
            .iter()
            .find(|(p, _)| *p == spec.path)
            .map(|(_, i)| *i);
        if let Some(i) = file_at {
            match self.positionals.get(i).map(String::as_str) {
                Some("-") => out.push(Touch::ReadsStdin { what: "a document" }),
                Some(p) => out.push(Touch::ReadsFile {
                    via: "FILE",
                    path: p.to_string(),
                }),
                // No file named: `op` reads the document from standard input.
                None if spec.path == "document create" => {
                    out.push(Touch::ReadsStdin { what: "a document" })
                }
                None => {}
            }
        }
        let stdin_items = self
            .positionals
            .iter()
            .enumerate()
            .any(|(i, p)| p == "-" && Some(i) != file_at);
        if stdin_items {
            out.push(Touch::ReadsStdin {
                what: "items or names",
            });
        }
        match spec.path {
            "inject" => {
                if !self.has("in-file") {
                    out.push(Touch::ReadsStdin { what: "a template" });
                }
                out.push(Touch::ExpandsTemplate);
            }
            "run" | "plugin run" => out.push(Touch::ExpandsEnvironment),
            _ => {}
        }
        out
    }

    fn directory_touches(&self, out: &mut Vec<Touch>) {
        for (f, v) in &self.flags {
            if let Some((_, via)) = DIRECTORIES.iter().find(|(n, _)| *n == f.long) {
                out.push(Touch::UsesDirectory {
                    via,
                    path: v.clone(),
                });
            }
        }
    }

    /// Whether every input is typed data on the command line and every output goes to
    /// standard output: nothing in [`OpCommand::touches`].
    pub fn is_self_contained(&self) -> bool {
        self.touches().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touches(line: &str) -> Vec<Touch> {
        let args: Vec<&str> = line.split_whitespace().collect();
        crate::parse(&args).expect(line).touches()
    }

    #[test]
    fn every_spelling_of_an_output_file_is_seen() {
        for line in [
            "read op://a/b/c -o /tmp/x",
            "read op://a/b/c -o/tmp/x",
            "read op://a/b/c --out-file /tmp/x",
            "read op://a/b/c --out-file=/tmp/x",
            "read -fo /tmp/x op://a/b/c",
            "--cache read --out-file=/tmp/x op://a/b/c",
            "inject -i t -o /tmp/x",
            "item template get login -o /tmp/x",
            "document get d --out-file /tmp/x",
        ] {
            assert!(
                touches(line)
                    .iter()
                    .any(|t| matches!(t, Touch::WritesFile { path, .. } if path == "/tmp/x")),
                "{line}: {:?}",
                touches(line)
            );
        }
    }

    #[test]
    fn file_options_inputs_and_stdin_are_seen() {
        assert!(
            touches("read op://a/b/c --file-mode 0700")
                .contains(&Touch::FileOption { via: "--file-mode" })
        );
        assert!(touches("read op://a/b/c -f -o x").contains(&Touch::FileOption { via: "--force" }));
        assert!(
            touches("read op://a/b/c -f").is_empty(),
            "no file to overwrite"
        );
        assert!(touches("read op://a/b/c --force=false").is_empty());
        assert!(
            touches("inject -i /proc/self/environ").contains(&Touch::ReadsFile {
                via: "--in-file",
                path: "/proc/self/environ".into()
            })
        );
        assert!(touches("inject").contains(&Touch::ExpandsTemplate));
        assert!(touches("inject").contains(&Touch::ReadsStdin { what: "a template" }));
        assert!(
            touches("item create --template=t.json").contains(&Touch::ReadsFile {
                via: "--template",
                path: "t.json".into()
            })
        );
        assert!(touches("item edit x --template t.json").len() == 1);
        assert!(
            touches("document create ~/.ssh/id_ed25519 --vault Dev").contains(&Touch::ReadsFile {
                via: "FILE",
                path: "~/.ssh/id_ed25519".into()
            })
        );
        assert!(
            touches("document create --vault Dev")
                .contains(&Touch::ReadsStdin { what: "a document" })
        );
        assert!(
            touches("document edit doc /etc/passwd").contains(&Touch::ReadsFile {
                via: "FILE",
                path: "/etc/passwd".into()
            })
        );
        assert!(
            touches("item get - --vault Dev").contains(&Touch::ReadsStdin {
                what: "items or names"
            })
        );
        assert!(touches("item create -").contains(&Touch::ReadsStdin {
            what: "items or names"
        }));
        assert!(!touches("--config /tmp/c whoami").is_empty());
        assert!(!touches("update --directory /tmp/u").is_empty());
        assert!(touches("run -- env").contains(&Touch::ExpandsEnvironment));
    }

    #[test]
    fn plain_commands_touch_nothing() {
        for line in [
            "read op://a/b/c",
            "read -n op://a/b/c",
            "item get x --vault Dev --fields password --reveal",
            "item list --vault Dev",
            "item create --category login --title t --vault Dev password=x",
            "document get d --vault Dev",
            "vault list",
            "whoami",
            "--version",
            "item template get login",
        ] {
            assert!(touches(line).is_empty(), "{line}: {:?}", touches(line));
        }
    }
}

//! What a parsed command means: its account, its vaults, its effect, and its canonical argv.
//!
//! Every decision the daemon makes about a passthrough reads these methods, and the argv it
//! spawns is [`OpCommand::to_args`] of the same value, so what was checked is what runs.

use crate::parse::OpCommand;
use crate::table::{Effect, FlagKind, VaultArg};

/// The vaults a command names, for the `vaults` policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vaults {
    /// It works on the account, not inside a vault.
    NoVault,
    /// These vaults (names or IDs, as given).
    Named(Vec<String>),
    /// It works inside a vault that the command line does not say; the reason is for people.
    Unknown(&'static str),
}

impl OpCommand {
    /// The last value given for a flag (pflag: the last one wins).
    pub fn value(&self, long: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(f, _)| f.long == long)
            .map(|(_, v)| v.as_str())
    }

    /// Every value given for a repeatable flag, in order.
    pub fn values(&self, long: &str) -> Vec<&str> {
        self.flags
            .iter()
            .filter(|(f, _)| f.long == long)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A boolean flag's value (false when absent).
    pub fn bool(&self, long: &str) -> bool {
        self.value(long) == Some("true")
    }

    /// Whether a flag appeared at all.
    pub fn has(&self, long: &str) -> bool {
        self.flags.iter().any(|(f, _)| f.long == long)
    }

    /// The account `op` would use from the command line: the last `--account`, as pflag keeps
    /// the last value of a repeated flag.
    pub fn account(&self) -> Option<&str> {
        self.value("account")
    }

    /// Replace every `--account` with one (or remove them all with `None`).
    pub fn set_account(&mut self, account: Option<&str>) {
        let spec = self
            .flags
            .iter()
            .find(|(f, _)| f.long == "account")
            .map(|(f, _)| *f)
            .or_else(|| {
                crate::table::GLOBAL_FLAGS
                    .iter()
                    .find(|f| f.long == "account")
            });
        self.flags.retain(|(f, _)| f.long != "account");
        if let (Some(a), Some(spec)) = (account, spec) {
            self.flags.push((spec, a.to_string()));
        }
    }

    /// The command words joined (`item delete`), empty for the root.
    pub fn verb(&self) -> &str {
        &self.path
    }

    /// What running it does. Flags can make a command destructive (`--archive`, `signout
    /// --forget`); `op`, `op --version` and help need no account.
    pub fn effect(&self) -> Effect {
        let Some(spec) = self.spec else {
            return Effect::Local;
        };
        if self.bool("archive") && spec.effect != Effect::Executes {
            return Effect::Destructive;
        }
        spec.effect
    }

    /// Whether it only prints help or the version (cobra answers these without running it).
    pub fn is_help_only(&self) -> bool {
        self.spec.is_none()
    }

    /// The vaults it names.
    pub fn vaults(&self) -> Vaults {
        let Some(spec) = self.spec else {
            return Vaults::NoVault;
        };
        let from_flags = |names: &[&str]| -> Vec<String> {
            self.flags
                .iter()
                .filter(|(f, _)| names.contains(&f.long))
                .map(|(_, v)| v.clone())
                .collect()
        };
        match spec.vault {
            VaultArg::NoVault => Vaults::NoVault,
            VaultArg::Flags(names) => {
                let v = from_flags(names);
                if v.is_empty() {
                    Vaults::Unknown("it does not name a vault with --vault")
                } else {
                    Vaults::Named(v)
                }
            }
            VaultArg::FlagsOrAccount(names) => {
                let v = from_flags(names);
                if v.is_empty() {
                    Vaults::NoVault
                } else {
                    Vaults::Named(v)
                }
            }
            VaultArg::Positionals => {
                if self.positionals.is_empty() || self.positionals.iter().any(|p| p == "-") {
                    Vaults::Unknown("the vault comes from standard input")
                } else {
                    Vaults::Named(self.positionals.clone())
                }
            }
            VaultArg::FlagOrPositionals => {
                let v = from_flags(&["vault"]);
                if !v.is_empty() {
                    Vaults::Named(v)
                } else if self.positionals.is_empty() || self.positionals.iter().any(|p| p == "-") {
                    Vaults::Unknown("it does not name a vault")
                } else {
                    Vaults::Named(self.positionals.clone())
                }
            }
            // The caller resolves references with the reference parser; the grammar only
            // says where they are.
            VaultArg::Reference => Vaults::Unknown("its vault is inside the secret reference"),
            VaultArg::Template => Vaults::Unknown("its vaults are inside a template or env file"),
        }
    }

    /// The canonical argv (without `argv[0]`): the command words, every flag as
    /// `--name=value`, then the positionals (after `--` when one looks like a flag), then
    /// `--` and the program for `run`. Parsing this again gives the same command.
    pub fn to_args(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .path
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        for (f, v) in &self.flags {
            match f.kind {
                FlagKind::OptionalValue if v.is_empty() => out.push(format!("--{}", f.long)),
                _ => out.push(format!("--{}={v}", f.long)),
            }
        }
        let needs_dash = self
            .positionals
            .iter()
            .any(|p| p.starts_with('-') && p != "-");
        if needs_dash {
            out.push("--".into());
        }
        out.extend(self.positionals.iter().cloned());
        if self.spec.is_some_and(|s| !s.interspersed) && !self.rest.is_empty() {
            out.push("--".into());
            out.extend(self.rest.iter().cloned());
        }
        out
    }
}

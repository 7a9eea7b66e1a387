//! One description of the 1Password CLI's command line, for every part of op-session that
//! reads or writes one: the client's `op` shim, the daemon's passthrough, policy and audit,
//! the daemon's own calls, and fake-op.
//!
//! - [`table`]: the commands of `op` v2 with their aliases and flags, what each does
//!   ([`Effect`]) and where it names a vault ([`VaultArg`]).
//! - [`parse`]: pflag's rules, producing a typed [`OpCommand`]; unknown words are errors.
//! - [`command`]: what a parsed command means (account, vaults, effect) and its canonical argv.
//! - [`build`]: typed builders for the calls op-session makes itself.
//! - [`touches`]: what a command touches besides 1Password (files, standard input, templates,
//!   the environment); the daemon runs with a credential only what touches nothing.
//! - [`template`]: field assignments as an item JSON template, for `op`'s stdin.
//!
//! Why one crate: two hand-kept copies of this grammar once disagreed about whether `--cache`
//! takes a value, and the daemon then forwarded `op --cache run -- env` with a session token.
//! What op does is recorded in docs/op-behaviour.md; this crate is its executable form.

pub mod build;
pub mod command;
pub mod env;
pub mod file_mode;
pub mod parse;
pub mod table;
pub mod template;
pub mod touches;

pub use build::OpCall;
pub use command::Vaults;
pub use file_mode::FileMode;
pub use parse::{OpCommand, ParseError, command as lookup, parse, parse_bool, usage};
pub use table::{CommandSpec, Effect, Flag, FlagKind, VaultArg};
pub use touches::Touch;

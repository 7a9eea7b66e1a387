//! fake-op: a strict simulator of the 1Password CLI (`op` v2), for tests and benchmarks.
//!
//! The contract is `docs/op-behaviour.md`; the README documents the state directory, the fixture
//! format, `fake-op-ctl`, and every wording fake-op had to invent. It is never installed as
//! `op`.
//!
//! Layout, by responsibility:
//! - [`args`]: command line parsing with pflag's forms and errors;
//! - [`invocation`]: one run from argv to exit code (latency, lock, output, call log);
//! - [`store`], [`state`], [`fixture`]: the locked JSON state and how fixtures fill it;
//! - [`clock`]: simulated time and op's time formats;
//! - [`credential`]: the terminal or parent process an app authorization belongs to;
//! - [`auth`]: account selection, token sessions, app prompts, service accounts, rate limits;
//! - [`items`], [`reference`], [`render`]: lookups, `op://` resolution, output shapes;
//! - [`commands`]: one module per command group;
//! - [`config`]: op's config directory checks;
//! - [`calllog`]: the per-invocation JSON lines;
//! - [`ctl`]: the `fake-op-ctl` commands;
//! - [`error`], [`encoding`]: op's error texts; base64url, TOTP, IDs.

pub mod args;
pub mod auth;
pub mod calllog;
pub mod clock;
pub mod commands;
pub mod config;
pub mod credential;
pub mod ctl;
pub mod encoding;
pub mod error;
pub mod fixture;
pub mod invocation;
pub mod items;
pub mod reference;
pub mod render;
pub mod state;
pub mod store;

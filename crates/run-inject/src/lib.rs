//! The one `run`/`inject` pipeline: `op-session run`, `op-session inject` and the MCP server's
//! `run` and `inject` tools all call it, so the two fronts cannot drift apart (they once
//! masked differently).
//!
//! The pipeline is plan, resolve, render, mask; the caller owns only the resolve step (a
//! request to the daemon, blocking in the client and async in the MCP server) and where the
//! output goes:
//!
//! - [`env`]: the child's environment (the shell's, then `--env-file`s in order, then the
//!   caller's own map, later wins) with its references picked out, then rendered;
//! - [`template`]: an `op inject` template with variables expanded, parsed, its references
//!   picked out, then rendered;
//! - [`values`]: the resolved values, looked up by reference and turned into maskers;
//! - [`mask`]: which forms are masked ([`mask::Masking`]) and the streaming copies through a
//!   masker (to a writer, or collected up to a cap);
//! - [`group`] (feature `tokio`): the child in its own process group, killed whole at a
//!   deadline or when the call is dropped.
//!
//! Errors are [`Error`], each with the fix the fronts show. Nothing here logs, and no error or
//! `Debug` output holds a resolved value.

pub mod env;
#[cfg(feature = "tokio")]
pub mod group;
pub mod mask;
pub mod template;
pub mod values;

use std::path::PathBuf;

pub use env::EnvPlan;
pub use mask::Masking;
pub use template::TemplatePlan;
pub use values::{Secrets, Values};

/// What can go wrong in the pipeline (never holding a value).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An env file could not be read.
    #[error("cannot read env file {}: {source}", path.display())]
    ReadEnvFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An env file has a malformed line.
    #[error("env file {}: {source}", path.display())]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// The line and what is wrong with it.
        source: secret_ref::envfile::EnvFileError,
    },
    /// A name in the caller's own variables is not a variable name.
    #[error("{0:?} is not a valid environment variable name")]
    BadName(String),
    /// A template does not parse.
    #[error(transparent)]
    Template(secret_ref::template::TemplateError),
    /// A reference had no value when rendering.
    #[error(transparent)]
    Render(secret_ref::template::TemplateError),
    /// `OPSESSION_MASK_MIN_ENCODED` is not a number.
    #[error(transparent)]
    MinEncoded(#[from] secret_ref::mask::MinEncodedError),
}

impl Error {
    /// What the person can do about it.
    #[must_use]
    pub fn fix(&self) -> &'static str {
        match self {
            Error::ReadEnvFile { .. } => "check the path",
            Error::EnvFile { .. } => "fix the file",
            Error::BadName(_) => "use letters, digits and underscores",
            Error::Template(_) => "fix the template",
            Error::Render(_) => "check the reference",
            Error::MinEncoded(_) => "set it to a whole number such as 8, or unset it",
        }
    }
}

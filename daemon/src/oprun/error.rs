//! Why `op` could not be run to completion (the client's error for it is in
//! [`crate::error`]).

use std::path::PathBuf;
use std::time::Duration;

/// Most `op` stdout the daemon keeps for one call.
pub(crate) const MAX_OP_OUTPUT: usize = 16 * 1024 * 1024;

/// Why `op` could not be run to completion.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// No binary.
    #[error("{0}")]
    NotFound(String),
    /// It ran past the deadline and was killed.
    #[error("op did not finish within {0:?} and was stopped")]
    Timeout(Duration),
    /// It printed more than we keep.
    #[error("op printed more than {MAX_OP_OUTPUT} bytes")]
    TooMuchOutput,
    /// It could not be started or waited for.
    #[error("could not run {path}: {source}")]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

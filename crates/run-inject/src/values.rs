//! Resolved values on their way into a child or a file, and the copies the maskers keep.
//!
//! [`Values`] is what the daemon answered (reference, value) in request order; [`Secrets`] is
//! the values alone, kept after the environment or text is rendered and the pairs dropped, to
//! build one [`Masker`] per output stream. Both wipe on drop and never print a value.

use std::fmt;

use secret_ref::{Forms, Masker};
use zeroize::Zeroizing;

/// The daemon's answer: each reference with its value.
pub struct Values(Vec<(String, Zeroizing<String>)>);

impl Values {
    /// Wrap the daemon's pairs.
    #[must_use]
    pub fn new(pairs: Vec<(String, Zeroizing<String>)>) -> Values {
        Values(pairs)
    }

    /// The value of `reference`, compared as written.
    #[must_use]
    pub fn get(&self, reference: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == reference)
            .map(|(_, v)| v.as_str())
    }

    /// How many values.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No values.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values alone, for masking once the pairs are gone.
    #[must_use]
    pub fn secrets(&self) -> Secrets {
        Secrets(
            self.0
                .iter()
                .map(|(_, v)| Zeroizing::new(v.as_bytes().to_vec()))
                .collect(),
        )
    }
}

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

/// The resolved values' bytes, to mask.
pub struct Secrets(Vec<Zeroizing<Vec<u8>>>);

impl Secrets {
    /// A masker for these values in `forms` (one per stream: a masker holds back the tail of
    /// its own stream).
    #[must_use]
    pub fn masker(&self, forms: Forms) -> Masker {
        Masker::with_forms(self.0.iter().map(|s| s.as_slice()), forms)
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} values)", self.0.len())
    }
}

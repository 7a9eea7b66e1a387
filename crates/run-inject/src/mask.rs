//! Which forms of the values a `run` masks, and the streaming copy of a child's output through
//! a [`Masker`] (the matching itself is `secret_ref::mask`'s).
//!
//! By default every encoded form is masked too (base64 and hex, wrapped at any width, percent
//! encoding, JSON `\u` escapes) for values of at least `OPSESSION_MASK_MIN_ENCODED` bytes
//! (default 8): `op-session run` unless told `--mask=exact` or `--no-masking`, and the MCP
//! `run` tool always, since what it protects is the model's transcript.

use std::io::{Read, Write};

use secret_ref::Masker;
use secret_ref::mask::{ENV_MIN_ENCODED, Forms, run_forms};
use zeroize::Zeroizing;

use crate::Error;

/// What to mask, as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Masking {
    /// Nothing (`--no-masking`, `OP_RUN_NO_MASKING`).
    Off,
    /// The exact bytes only, as `op run` does (`--mask=exact`).
    Exact,
    /// Every encoded form too, of values at least this many bytes long, or, with `None`, as
    /// `OPSESSION_MASK_MIN_ENCODED` says (default 8).
    Encoded(Option<usize>),
}

impl Masking {
    /// The forms to mask, or `None` for no masking.
    ///
    /// # Errors
    ///
    /// [`Error::MinEncoded`] when `OPSESSION_MASK_MIN_ENCODED` is needed and not a number.
    pub fn forms(self) -> Result<Option<Forms>, Error> {
        match self {
            Masking::Off => Ok(None),
            Masking::Exact => Ok(Some(Forms::Exact)),
            Masking::Encoded(Some(min_len)) => Ok(Some(Forms::Encoded { min_len })),
            Masking::Encoded(None) => {
                let env = std::env::var(ENV_MIN_ENCODED).ok();
                Ok(Some(run_forms(env.as_deref())?))
            }
        }
    }
}

/// Bytes read from a child at a time.
const CHUNK: usize = 16 * 1024;

/// Copy `from` to `to` through `masker`, flushing as soon as text is known to be safe; stops
/// at the end of `from` or when `to` goes away.
pub fn pump(mut from: impl Read, mut to: impl Write, mut masker: Masker) {
    let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
    loop {
        match from.read(&mut buf[..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let out = masker.push(&buf[..n]);
                if to.write_all(&out).and_then(|_| to.flush()).is_err() {
                    break;
                }
            }
        }
    }
    let rest = masker.finish();
    let _ = to.write_all(&rest).and_then(|_| to.flush());
}

/// Masked output kept up to a cap.
#[cfg(feature = "tokio")]
#[derive(Debug, Default)]
pub struct Capped {
    /// The masked bytes kept.
    pub bytes: Vec<u8>,
    /// Some were dropped at the cap.
    pub cut: bool,
}

#[cfg(feature = "tokio")]
impl Capped {
    fn keep(&mut self, masked: &[u8], cap: usize) {
        let room = cap.saturating_sub(self.bytes.len());
        if masked.len() > room {
            self.cut = true;
        }
        self.bytes
            .extend_from_slice(&masked[..masked.len().min(room)]);
    }
}

/// Read `from` to its end through `masker`, keeping at most `cap` masked bytes (the rest is
/// read and dropped, so the child never blocks on a full pipe).
#[cfg(feature = "tokio")]
pub async fn collect<R: tokio::io::AsyncRead + Unpin>(
    mut from: R,
    mut masker: Masker,
    cap: usize,
) -> Capped {
    use tokio::io::AsyncReadExt;
    let mut kept = Capped::default();
    let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
    loop {
        match from.read(&mut buf[..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => kept.keep(&masker.push(&buf[..n]), cap),
        }
    }
    kept.keep(&masker.finish(), cap);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Values;

    const SECRET: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

    fn secrets() -> crate::Secrets {
        Values::new(vec![("op://V/i/f".into(), Zeroizing::new(SECRET.into()))]).secrets()
    }

    #[test]
    fn the_default_masks_encoded_forms_and_exact_does_not() {
        let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
        let input = format!("plain {SECRET} hex {hex}\n");
        let forms = Masking::Encoded(Some(8))
            .forms()
            .expect("forms")
            .expect("on");
        let mut out = Vec::new();
        pump(input.as_bytes(), &mut out, secrets().masker(forms));
        assert_eq!(
            String::from_utf8_lossy(&out),
            "plain <concealed by 1Password> hex <concealed by 1Password>\n"
        );
        let mut out = Vec::new();
        let exact = Masking::Exact.forms().expect("forms").expect("on");
        pump(input.as_bytes(), &mut out, secrets().masker(exact));
        assert!(String::from_utf8_lossy(&out).contains(&hex));
        assert_eq!(Masking::Off.forms().expect("forms"), None);
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn collect_masks_across_chunks_and_caps() {
        let cap = 1024 * 1024;
        let mut data = b"key=".to_vec();
        data.extend_from_slice(SECRET.as_bytes());
        data.extend(std::iter::repeat_n(b'x', cap + 10));
        let kept = collect(&data[..], secrets().masker(Forms::Exact), cap).await;
        assert!(kept.cut);
        assert_eq!(kept.bytes.len(), cap);
        assert!(kept.bytes.starts_with(b"key=<concealed by 1Password>"));
    }
}

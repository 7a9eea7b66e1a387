//! Streaming masking of secret values on a child's output, as `op run` does (docs/op-behaviour.md §4.2),
//! and of the forms a program is likely to print a value in (base64, hex, percent-encoding,
//! JSON escaping: [`forms`]).
//!
//! Owns the replacement of every occurrence of a masked pattern with [`CONCEALED`] in a byte
//! stream that arrives in arbitrary chunks. The patterns are the values themselves and, with
//! [`Forms::Encoded`], the encoded forms of every value at least `min_len` bytes long (shorter
//! values would make their encodings match ordinary text). Matching scans left to right and
//! replaces the longest pattern that matches at each position (so short secrets also mangle
//! ordinary text, as in real `op`). Base64 and hex forms also match when wrapped: a line break
//! (`\n` or `\r\n`) may stand between any two of their characters, so `base64` (76 columns),
//! PEM and `openssl base64` (64), `xxd -p` (60) and any other fixed width are masked wherever
//! the value falls on the lines. A pattern split across any number of chunks is still masked:
//! [`Masker::push`] holds back a tail that could still become a pattern (never more than three
//! times the longest pattern: its characters and a line break between each), and chunking
//! never changes the output.
//!
//! The scan looks up the first four bytes at each position in a hashed table of pattern
//! prefixes, so its cost hardly grows with the number of patterns (20 values make 150 to 400
//! patterns). A general multi-pattern automaton (aho-corasick) would copy every pattern into
//! tables that are never wiped; this table holds pattern indices only.
//!
//! Never emits a byte of a complete pattern, never prints one in `Debug`, and keeps its copies
//! of the secrets, their encodings and the held-back tail in zeroizing buffers wiped on drop.

pub mod forms;

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

/// What `op run` prints in place of a secret value.
pub const CONCEALED: &str = "<concealed by 1Password>";

/// Values shorter than this are masked exactly but not in encoded forms, by default.
pub const DEFAULT_MIN_ENCODED: usize = 8;

/// The variable that sets the shortest value masked in encoded forms too, for `op-session
/// run` and the MCP `run` tool alike.
pub const ENV_MIN_ENCODED: &str = "OPSESSION_MASK_MIN_ENCODED";

/// A value of [`ENV_MIN_ENCODED`] that is not a number of bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ENV_MIN_ENCODED}={0:?} is not a number of bytes")]
pub struct MinEncodedError(pub String);

/// The forms `op-session run` masks by default, and the MCP `run` tool always: every encoded
/// form of values at least `min_len` bytes long, `min_len` from the value of
/// [`ENV_MIN_ENCODED`] (unset or empty: [`DEFAULT_MIN_ENCODED`]). One construction, so the
/// two runners can never mask differently.
pub fn run_forms(min_encoded: Option<&str>) -> Result<Forms, MinEncodedError> {
    let min_len = match min_encoded {
        Some(v) if !v.is_empty() => v
            .trim()
            .parse()
            .map_err(|_| MinEncodedError(v.to_string()))?,
        _ => DEFAULT_MIN_ENCODED,
    };
    Ok(Forms::Encoded { min_len })
}

/// Patterns at least this long are found through the prefix table; shorter ones (short exact
/// values) through a first-byte table.
const PREFIX: usize = 4;

/// Which forms of each value are masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forms {
    /// Only the value's own bytes, as `op run` does.
    Exact,
    /// The value's bytes, and for values of at least `min_len` bytes also every form in
    /// [`forms::encoded_forms`].
    Encoded {
        /// Values shorter than this are masked exactly only.
        min_len: usize,
    },
}

impl Default for Forms {
    fn default() -> Self {
        Forms::Encoded {
            min_len: DEFAULT_MIN_ENCODED,
        }
    }
}

/// A stateful masker for one output stream (use one per stream: each needs its own held-back
/// tail).
pub struct Masker {
    /// How many distinct values were given (for `Debug`).
    values: usize,
    /// The patterns, distinct and non-empty, longest first so the first full match is the
    /// longest.
    patterns: Vec<Zeroizing<Vec<u8>>>,
    /// For each pattern, whether it is a base64 or hex form that may be wrapped across lines.
    wraps: Vec<bool>,
    /// For patterns of at least [`PREFIX`] bytes: `bucket_items[bucket_start[h]..bucket_start[h
    /// + 1]]` are the indices (ascending, so longest first) of the patterns whose first four
    /// bytes hash to `h`.
    bucket_start: Vec<u32>,
    /// See `bucket_start`.
    bucket_items: Vec<u32>,
    /// How far to shift the 32-bit prefix hash to get a bucket number.
    bucket_shift: u32,
    /// Which bytes start a pattern shorter than [`PREFIX`].
    starts_short: [bool; 256],
    /// Indices of the patterns shorter than [`PREFIX`], longest first.
    short: Vec<u32>,
    /// Bytes received but not yet emitted because they may be the start of a pattern. Its
    /// capacity is reserved up front so it never reallocates (which would leave an unwiped
    /// copy behind).
    held: Zeroizing<Vec<u8>>,
}

/// The bucket of a 4-byte prefix (Fibonacci hashing: the top bits of a multiplicative hash).
fn prefix_hash(prefix: [u8; PREFIX], shift: u32) -> usize {
    (u32::from_le_bytes(prefix).wrapping_mul(0x9E37_79B1) >> shift) as usize
}

impl Masker {
    /// A masker for the exact bytes of these secret values, as `op run` masks. Empty values
    /// are ignored (they would match everywhere); duplicates are merged.
    #[must_use]
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        Self::with_forms(secrets, Forms::Exact)
    }

    /// A masker for these secret values in the given `forms`. Empty values are ignored;
    /// duplicates are merged.
    #[must_use]
    pub fn with_forms<I, S>(secrets: I, forms: Forms) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let mut values: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for secret in secrets {
            let secret = secret.as_ref();
            if !secret.is_empty() && !values.iter().any(|known| known.as_slice() == secret) {
                values.push(Zeroizing::new(secret.to_vec()));
            }
        }
        let mut encoded: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for value in &values {
            if let Forms::Encoded { min_len } = forms
                && value.len() >= min_len
            {
                encoded.extend(forms::encoded_forms(value));
            }
        }
        let count = values.len();
        let mut patterns: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        patterns.extend(values.iter().map(|v| Zeroizing::new(v.to_vec())));
        patterns.extend(encoded.iter().map(|v| Zeroizing::new(v.to_vec())));
        patterns.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.as_slice().cmp(b)));
        patterns.dedup_by(|a, b| a.as_slice() == b.as_slice());
        let wraps: Vec<bool> = patterns
            .iter()
            .map(|p| {
                p.len() >= PREFIX
                    && p.iter().all(|b| forms::is_wrappable_byte(*b))
                    && encoded.iter().any(|e| e.as_slice() == p.as_slice())
            })
            .collect();
        drop(values);
        drop(encoded);

        // About 32 buckets per long pattern keeps most positions of ordinary text on the fast
        // path; between 2^4 and 2^16 buckets.
        // A wrapped pattern is also found by the first four bytes it shows when a line break
        // falls among its first characters.
        let long = patterns.iter().filter(|p| p.len() >= PREFIX).count()
            + 6 * wraps.iter().filter(|w| **w).count();
        let bits = (long * 32)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(4, 16);
        let bucket_shift = 32 - bits;
        let mut counts = vec![0u32; (1 << bits) + 1];
        let mut starts_short = [false; 256];
        let mut short = Vec::new();
        let mut keyed = Vec::with_capacity(long);
        for (index, pattern) in patterns.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            match pattern.first_chunk::<PREFIX>() {
                Some(prefix) => {
                    let mut keys = Zeroizing::new(Vec::with_capacity(7));
                    keys.push(*prefix);
                    if wraps[index as usize] {
                        keys.extend(wrapped_prefixes(pattern).iter());
                    }
                    keys.sort_unstable();
                    keys.dedup();
                    for key in keys.iter() {
                        let bucket = prefix_hash(*key, bucket_shift);
                        counts[bucket + 1] += 1;
                        keyed.push((bucket, index));
                    }
                }
                None => {
                    starts_short[usize::from(pattern[0])] = true;
                    short.push(index);
                }
            }
        }
        for bucket in 1..counts.len() {
            counts[bucket] += counts[bucket - 1];
        }
        let bucket_start = counts;
        let mut fill = bucket_start.clone();
        let mut bucket_items = vec![0u32; keyed.len()];
        // `keyed` is in ascending index order, so each bucket lists the longest first.
        for (bucket, index) in keyed {
            bucket_items[fill[bucket] as usize] = index;
            fill[bucket] += 1;
        }
        let longest = held_capacity(&patterns);
        Masker {
            values: count,
            patterns,
            wraps,
            bucket_start,
            bucket_items,
            bucket_shift,
            starts_short,
            short,
            held: Zeroizing::new(Vec::with_capacity(longest)),
        }
    }

    /// How many distinct patterns (values and their encoded forms) are masked.
    #[must_use]
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// Whether there is nothing to mask (no non-empty secret), so output can pass through.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Feeds the next chunk of the stream; returns what can be emitted now. The rest (a tail
    /// that is a proper prefix of some pattern) is kept for the next call or
    /// [`Masker::finish`].
    pub fn push(&mut self, input: &[u8]) -> Vec<u8> {
        if self.held.is_empty() {
            return self.emit(input, false);
        }
        let mut data = Zeroizing::new(Vec::with_capacity(self.held.len() + input.len()));
        data.extend_from_slice(&self.held);
        data.extend_from_slice(input);
        self.emit(&data, false)
    }

    /// Ends the stream: returns the held-back tail, masked as far as it can be. The masker is
    /// then empty and may start a new stream.
    pub fn finish(&mut self) -> Vec<u8> {
        let tail = Zeroizing::new(std::mem::take(&mut *self.held));
        self.held = Zeroizing::new(Vec::with_capacity(held_capacity(&self.patterns)));
        self.emit(&tail, true)
    }

    /// Masks `data` and stores any tail that must wait into `held` (replacing what was there).
    fn emit(&mut self, data: &[u8], at_end: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        let keep_from = self.scan(data, at_end, &mut out);
        // `held` may alias nothing in `data` (callers copy it first), so it can be reset here.
        self.held.zeroize();
        self.held.extend_from_slice(&data[keep_from..]);
        out
    }

    /// The patterns that may start at the beginning of `rest`, longest first: those whose
    /// prefix hashes to the same bucket, then the short ones starting with its first byte.
    /// With fewer than [`PREFIX`] bytes left, every pattern is a candidate.
    fn candidates<'a>(&'a self, rest: &'a [u8]) -> impl Iterator<Item = (&'a [u8], bool)> + 'a {
        let (bucket, all): (&[u32], bool) = match rest.first_chunk::<PREFIX>() {
            Some(prefix) => {
                let h = prefix_hash(*prefix, self.bucket_shift);
                let range = self.bucket_start[h] as usize..self.bucket_start[h + 1] as usize;
                (&self.bucket_items[range], false)
            }
            None => (&[], true),
        };
        let first = rest.first().copied();
        let listed = bucket
            .iter()
            .chain(self.short.iter().filter(move |_| !all))
            .map(|&index| {
                (
                    self.patterns[index as usize].as_slice(),
                    self.wraps[index as usize],
                )
            })
            .filter(move |(pattern, _)| pattern.first().copied() == first);
        let everything = self
            .patterns
            .iter()
            .zip(self.wraps.iter())
            .filter(move |_| all)
            .map(|(pattern, wraps)| (pattern.as_slice(), *wraps));
        listed.chain(everything)
    }

    /// Appends the masked form of `data` to `out`, stopping at the first position where a
    /// pattern could still complete with more input (unless `at_end`). Returns that position
    /// (`data.len()` when nothing is held back).
    ///
    /// At each position: if the remaining bytes are a proper prefix of some pattern, more
    /// input could make a (longer) match here, so stop; otherwise replace the longest pattern
    /// that matches fully, or emit one byte. This makes the decision the same as with the
    /// whole stream at hand, so chunking never changes the output.
    fn scan(&self, data: &[u8], at_end: bool, out: &mut Vec<u8>) -> usize {
        let mut plain_from = 0;
        let mut i = 0;
        while i < data.len() {
            let rest = &data[i..];
            // The fast path: no pattern can start here.
            if let Some(prefix) = rest.first_chunk::<PREFIX>() {
                let h = prefix_hash(*prefix, self.bucket_shift);
                if self.bucket_start[h] == self.bucket_start[h + 1]
                    && !self.starts_short[usize::from(prefix[0])]
                {
                    i += 1;
                    continue;
                }
            }
            if !at_end
                && self
                    .candidates(rest)
                    .any(|(pattern, wraps)| match_at(pattern, wraps, rest) == Match::Partial)
            {
                out.extend_from_slice(&data[plain_from..i]);
                return i;
            }
            match self.candidates(rest).find_map(|(pattern, wraps)| {
                match match_at(pattern, wraps, rest) {
                    Match::Full(n) => Some(n),
                    _ => None,
                }
            }) {
                Some(n) => {
                    out.extend_from_slice(&data[plain_from..i]);
                    out.extend_from_slice(CONCEALED.as_bytes());
                    i += n;
                    plain_from = i;
                }
                None => i += 1,
            }
        }
        out.extend_from_slice(&data[plain_from..]);
        data.len()
    }
}

/// How a pattern meets the bytes at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    /// It matches, taking this many bytes (more than its length when wrapped).
    Full(usize),
    /// The bytes end while they still match: more input decides.
    Partial,
    /// It does not match here.
    No,
}

/// Whether `pattern` starts `data`; when `wraps`, one line break (`\n` or `\r\n`) may stand
/// between any two of its characters (never before the first).
fn match_at(pattern: &[u8], wraps: bool, data: &[u8]) -> Match {
    let (mut i, mut j) = (0, 0);
    while j < pattern.len() {
        let Some(&b) = data.get(i) else {
            return Match::Partial;
        };
        if b == pattern[j] {
            i += 1;
            j += 1;
            continue;
        }
        if !wraps || j == 0 {
            return Match::No;
        }
        let skip = match (b, data.get(i + 1)) {
            (b'\n', _) => 1,
            (b'\r', Some(b'\n')) => 2,
            (b'\r', None) => return Match::Partial,
            _ => return Match::No,
        };
        i += skip;
        match data.get(i) {
            None => return Match::Partial,
            Some(&c) if c == pattern[j] => {
                i += 1;
                j += 1;
            }
            Some(_) => return Match::No,
        }
    }
    Match::Full(i)
}

/// The first four bytes a wrapped `pattern` shows when a line break falls after its first,
/// second or third character.
fn wrapped_prefixes(pattern: &[u8]) -> Zeroizing<Vec<[u8; PREFIX]>> {
    let mut keys = Zeroizing::new(Vec::with_capacity(6));
    for brk in [&b"\n"[..], &b"\r\n"[..]] {
        for k in 1..PREFIX {
            let mut key = [0u8; PREFIX];
            let shown = pattern[..k]
                .iter()
                .chain(brk.iter())
                .chain(pattern[k..].iter())
                .take(PREFIX);
            for (slot, byte) in key.iter_mut().zip(shown) {
                *slot = *byte;
            }
            keys.push(key);
        }
    }
    keys
}

/// The most a masker may hold back: the longest pattern with a `\r\n` between each pair of
/// its characters.
fn held_capacity(patterns: &[Zeroizing<Vec<u8>>]) -> usize {
    patterns.first().map_or(0, |pattern| pattern.len() * 3)
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker")
            .field("secrets", &self.values)
            .field("patterns", &self.patterns.len())
            .field("held_back_bytes", &self.held.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;

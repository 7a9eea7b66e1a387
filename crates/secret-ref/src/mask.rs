//! Streaming masking of secret values on a child's output, as `op run` does (op-cli.md §4.2).
//!
//! Owns the replacement of every occurrence of a resolved secret with [`CONCEALED`] in a byte
//! stream that arrives in arbitrary chunks. Matching is plain substring replacement, scanning
//! left to right and taking the longest secret that matches at each position (so short secrets
//! also mangle ordinary text, as in real `op`). A secret split across any number of chunks is
//! still masked: [`Masker::push`] holds back a tail that could still become a secret, never
//! more than the longest secret minus one byte.
//!
//! Never emits a byte of a complete secret, never prints a secret in `Debug`, and keeps its
//! copies of the secrets and of the held-back tail in zeroizing buffers that are wiped on drop.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

/// What `op run` prints in place of a secret value.
pub const CONCEALED: &str = "<concealed by 1Password>";

/// A stateful masker for one output stream (use one per stream: stdout and stderr each need
/// their own held-back tail).
pub struct Masker {
    /// The secrets, distinct and non-empty, longest first so the first full match is the
    /// longest.
    secrets: Vec<Zeroizing<Vec<u8>>>,
    /// Which bytes start some secret: a fast path for the bytes that cannot.
    starts_secret: [bool; 256],
    /// Bytes received but not yet emitted because they may be the start of a secret. Its
    /// capacity is reserved up front so it never reallocates (which would leave an unwiped
    /// copy behind).
    held: Zeroizing<Vec<u8>>,
}

impl Masker {
    /// A masker for these secret values. Empty values are ignored (they would match
    /// everywhere); duplicates are merged.
    #[must_use]
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let mut list: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for secret in secrets {
            let secret = secret.as_ref();
            if !secret.is_empty() && !list.iter().any(|known| known.as_slice() == secret) {
                list.push(Zeroizing::new(secret.to_vec()));
            }
        }
        list.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        let mut starts_secret = [false; 256];
        for secret in &list {
            if let Some(&first) = secret.first() {
                starts_secret[usize::from(first)] = true;
            }
        }
        let longest = list.first().map_or(0, |secret| secret.len());
        Masker {
            secrets: list,
            starts_secret,
            held: Zeroizing::new(Vec::with_capacity(longest)),
        }
    }

    /// Whether there is nothing to mask (no non-empty secret), so output can pass through.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Feeds the next chunk of the stream; returns what can be emitted now. The rest (a tail
    /// that is a proper prefix of some secret) is kept for the next call or [`Masker::finish`].
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
        let longest = self.secrets.first().map_or(0, |secret| secret.len());
        self.held = Zeroizing::new(Vec::with_capacity(longest));
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

    /// Appends the masked form of `data` to `out`, stopping at the first position where a
    /// secret could still complete with more input (unless `at_end`). Returns that position
    /// (`data.len()` when nothing is held back).
    ///
    /// At each position: if the remaining bytes are a proper prefix of some secret, more input
    /// could make a (longer) match here, so stop; otherwise replace the longest secret that
    /// matches fully, or emit one byte. This makes the decision the same as with the whole
    /// stream at hand, so chunking never changes the output.
    fn scan(&self, data: &[u8], at_end: bool, out: &mut Vec<u8>) -> usize {
        let mut plain_from = 0;
        let mut i = 0;
        while i < data.len() {
            if !self.starts_secret[usize::from(data[i])] {
                i += 1;
                continue;
            }
            let rest = &data[i..];
            let may_grow =
                |secret: &Zeroizing<Vec<u8>>| secret.len() > rest.len() && secret.starts_with(rest);
            if !at_end && self.secrets.iter().any(may_grow) {
                out.extend_from_slice(&data[plain_from..i]);
                return i;
            }
            match self.secrets.iter().find(|secret| rest.starts_with(secret)) {
                Some(secret) => {
                    out.extend_from_slice(&data[plain_from..i]);
                    out.extend_from_slice(CONCEALED.as_bytes());
                    i += secret.len();
                    plain_from = i;
                }
                None => i += 1,
            }
        }
        out.extend_from_slice(&data[plain_from..]);
        data.len()
    }
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker")
            .field("secrets", &self.secrets.len())
            .field("held_back_bytes", &self.held.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The specification: greedy, leftmost, longest-first replacement over the whole input.
    fn one_shot(secrets: &[Vec<u8>], input: &[u8]) -> Vec<u8> {
        let mut sorted: Vec<&Vec<u8>> = secrets.iter().filter(|s| !s.is_empty()).collect();
        sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            match sorted.iter().find(|s| input[i..].starts_with(s)) {
                Some(s) => {
                    out.extend_from_slice(CONCEALED.as_bytes());
                    i += s.len();
                }
                None => {
                    out.push(input[i]);
                    i += 1;
                }
            }
        }
        out
    }

    /// Feeds `input` to a masker in pieces cut at `cuts` (sorted, deduplicated here).
    fn streamed(secrets: &[Vec<u8>], input: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut masker = Masker::new(secrets);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut out = Vec::new();
        let mut from = 0;
        for cut in cuts {
            out.extend(masker.push(&input[from..cut]));
            from = cut;
        }
        out.extend(masker.push(&input[from..]));
        out.extend(masker.finish());
        out
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn op_run_printenv_shows_the_concealed_marker() {
        let mut masker = Masker::new(["fX6nWkhANeyGE27SQGhYQ"]);
        let mut out = masker.push(b"fX6nWkhANeyGE27SQGhYQ\n");
        out.extend(masker.finish());
        assert_eq!(out, b"<concealed by 1Password>\n");
        assert_eq!(CONCEALED.len(), 24);
    }

    #[test]
    fn a_secret_split_byte_by_byte_is_still_masked() {
        let mut masker = Masker::new(["hunter2"]);
        let mut out = Vec::new();
        for byte in b"pw=hunter2!" {
            let chunk = masker.push(&[*byte]);
            assert!(!contains(&chunk, b"hunter2"));
            out.extend(chunk);
        }
        out.extend(masker.finish());
        assert_eq!(out, b"pw=<concealed by 1Password>!");
    }

    #[test]
    fn only_a_possible_secret_prefix_is_held_back() {
        let mut masker = Masker::new(["secret"]);
        assert_eq!(masker.push(b"abc sec"), b"abc ");
        assert_eq!(masker.push(b"ond"), b"second");
        assert_eq!(masker.push(b"no match"), b"no match");
        assert_eq!(masker.push(b"s"), b"");
        assert_eq!(masker.finish(), b"s");
        assert_eq!(masker.finish(), b"");
    }

    #[test]
    fn the_longest_overlapping_secret_wins() {
        let secrets = [b"ab".to_vec(), b"abcd".to_vec()];
        assert_eq!(
            streamed(&secrets, b"abcd ab abc", &[1, 3]),
            b"<concealed by 1Password> <concealed by 1Password> <concealed by 1Password>c"
        );
    }

    #[test]
    fn empty_and_duplicate_secrets_are_ignored() {
        let mut masker = Masker::new(["", "x", "x"]);
        assert_eq!(
            format!("{masker:?}"),
            "Masker { secrets: 1, held_back_bytes: 0, .. }"
        );
        assert_eq!(masker.push(b"axb"), b"a<concealed by 1Password>b");
        let mut none = Masker::new(Vec::<Vec<u8>>::new());
        assert!(none.is_empty());
        assert_eq!(none.push(b"anything"), b"anything");
        assert_eq!(none.finish(), b"");
    }

    #[test]
    fn debug_never_shows_a_secret_or_the_held_tail() {
        let mut masker = Masker::new(["topsecretvalue"]);
        let _ = masker.push(b"topsecret");
        let debug = format!("{masker:?}");
        assert!(!debug.contains("topsecret"), "{debug}");
        assert!(debug.contains("held_back_bytes: 9"), "{debug}");
    }

    /// Secrets drawn from bytes that `CONCEALED` does not contain, so the marker plus its
    /// neighbours can never spell a secret.
    fn secret_strategy() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::sample::select(b"xz0234".to_vec()), 1..8)
    }

    /// Input mixing whole secrets, pieces of secrets and noise.
    fn input_strategy(secrets: Vec<Vec<u8>>) -> impl Strategy<Value = (Vec<Vec<u8>>, Vec<u8>)> {
        let pieces = proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(secrets.clone()),
                proptest::collection::vec(proptest::sample::select(b"xz0<>a\n".to_vec()), 0..5),
                proptest::collection::vec(any::<u8>(), 0..4),
            ],
            0..12,
        );
        pieces.prop_map(move |p| (secrets.clone(), p.concat()))
    }

    proptest! {
        #[test]
        fn chunking_never_changes_the_output(
            (secrets, input) in proptest::collection::vec(secret_strategy(), 1..4)
                .prop_flat_map(input_strategy),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            prop_assert_eq!(streamed(&secrets, &input, &cuts), one_shot(&secrets, &input));
        }

        #[test]
        fn no_secret_ever_reaches_the_output(
            (secrets, input) in proptest::collection::vec(secret_strategy(), 1..4)
                .prop_flat_map(input_strategy),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            let output = streamed(&secrets, &input, &cuts);
            for secret in &secrets {
                prop_assert!(!contains(&output, secret), "{:?} leaked in {:?}", secret, output);
            }
        }

        #[test]
        fn held_back_tail_is_shorter_than_the_longest_secret(
            (secrets, input) in proptest::collection::vec(secret_strategy(), 1..4)
                .prop_flat_map(input_strategy),
        ) {
            let longest = secrets.iter().map(Vec::len).max().unwrap_or(0);
            let mut masker = Masker::new(&secrets);
            for byte in &input {
                let _ = masker.push(&[*byte]);
                prop_assert!(masker.held.len() < longest);
            }
        }

        #[test]
        fn one_secret_matches_std_replace(
            secret in "[a-z]{1,6}",
            input in "[a-z ]{0,40}",
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let expected = input.replace(&secret, CONCEALED);
            let got = streamed(&[secret.into_bytes()], input.as_bytes(), &cuts);
            prop_assert_eq!(got, expected.into_bytes());
        }
    }
}

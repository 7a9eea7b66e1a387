//! Unit tests of `mask`, in their own file so the module stays its logic alone.

use super::*;
use proptest::prelude::*;

/// The specification: greedy, leftmost, longest-first replacement of `secrets` (the
/// patterns) over the whole input.
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

/// The specification with wrapping: like `one_shot`, and a pattern marked `true` also matches
/// with one `\n` or `\r\n` between any two of its characters.
fn one_shot_wrapped(patterns: &[(Vec<u8>, bool)], input: &[u8]) -> Vec<u8> {
    fn len_at(p: &[u8], wraps: bool, d: &[u8]) -> Option<usize> {
        let mut i = 0;
        for (j, want) in p.iter().enumerate() {
            if wraps && j > 0 {
                if d[i..].starts_with(b"\r\n") {
                    i += 2;
                } else if d[i..].starts_with(b"\n") {
                    i += 1;
                }
            }
            if d.get(i) != Some(want) {
                return None;
            }
            i += 1;
        }
        Some(i)
    }
    let mut sorted: Vec<&(Vec<u8>, bool)> = patterns.iter().filter(|s| !s.0.is_empty()).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        match sorted.iter().find_map(|(p, w)| len_at(p, *w, &input[i..])) {
            Some(n) => {
                out.extend_from_slice(CONCEALED.as_bytes());
                i += n;
            }
            None => {
                out.push(input[i]);
                i += 1;
            }
        }
    }
    out
}

/// Patterns of `values` with the wrapping flag the masker gives them.
fn wrap_flagged(values: &[Vec<u8>], min_len: usize) -> Vec<(Vec<u8>, bool)> {
    let forms: Vec<Vec<u8>> = values
        .iter()
        .filter(|v| v.len() >= min_len)
        .flat_map(|v| {
            forms::encoded_forms(v)
                .iter()
                .map(|f| f.to_vec())
                .collect::<Vec<_>>()
        })
        .collect();
    all_patterns(values, min_len)
        .into_iter()
        .map(|p| {
            let wraps = p.len() >= 4
                && p.iter().all(|b| forms::is_wrappable_byte(*b))
                && forms.contains(&p);
            (p, wraps)
        })
        .collect()
}

#[test]
fn wrapped_base64_and_hex_are_concealed_at_any_width_and_offset() {
    let value = b"sk_test_4eC39HqLyjWDarjtT1zdp7dc-and-some-more-bytes";
    let b64 = forms::base64(value, forms::BASE64_STANDARD);
    let hex: Vec<u8> = value
        .iter()
        .flat_map(|b| format!("{b:02x}").into_bytes())
        .collect();
    for encoded in [b64.to_vec(), hex] {
        for width in [60, 64, 76, 5, 17] {
            for eol in [&b"\n"[..], &b"\r\n"[..]] {
                for lead in 0..width.min(12) {
                    // `lead` characters of other data first, so the value falls anywhere.
                    let mut stream = vec![b'Q'; lead];
                    stream.extend_from_slice(&encoded);
                    let mut wrapped = Vec::new();
                    for line in stream.chunks(width) {
                        wrapped.extend_from_slice(line);
                        wrapped.extend_from_slice(eol);
                    }
                    let got = streamed_with(
                        &[value.to_vec()],
                        Forms::default(),
                        &wrapped,
                        &[3, 40, 41, 90],
                    );
                    assert!(
                        contains(&got, CONCEALED.as_bytes()),
                        "width {width}, lead {lead}: {}",
                        String::from_utf8_lossy(&got)
                    );
                    for line in encoded.chunks(8) {
                        assert!(
                            !contains(&got, line) || line.len() < 8,
                            "width {width}, lead {lead}: {}",
                            String::from_utf8_lossy(&got)
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_byte_percent_and_json_unicode_escapes_are_concealed() {
    let value = b"hunter2-hunter2";
    let pct: String = value.iter().map(|b| format!("%{b:02X}")).collect();
    let pct_lower: String = value.iter().map(|b| format!("%{b:02x}")).collect();
    let json: String = value.iter().map(|b| format!("\\u{:04x}", b)).collect();
    let json_upper: String = value.iter().map(|b| format!("\\u{:04X}", b)).collect();
    for text in [pct, pct_lower, json, json_upper] {
        let input = format!("x={text};");
        let got = streamed_with(&[value.to_vec()], Forms::default(), input.as_bytes(), &[5]);
        assert_eq!(
            String::from_utf8_lossy(&got),
            format!("x={CONCEALED};"),
            "{text}"
        );
    }
}

/// Feeds `input` to a masker in pieces cut at `cuts` (sorted, deduplicated here).
fn streamed(secrets: &[Vec<u8>], input: &[u8], cuts: &[usize]) -> Vec<u8> {
    streamed_with(secrets, Forms::Exact, input, cuts)
}

/// Bytes that no value in the encoded-form tests contains, so no encoding of a value
/// contains them either: the text between encodings.
const NOISE: &[u8] = b" \n,;|";

/// A value and its encoded forms (when it is long enough), as the masker sees them.
fn forms_of(value: &[u8], min_len: usize) -> Vec<Vec<u8>> {
    let mut all = vec![value.to_vec()];
    if value.len() >= min_len {
        all.extend(forms::encoded_forms(value).iter().map(|f| f.to_vec()));
    }
    all
}

fn all_patterns(values: &[Vec<u8>], min_len: usize) -> Vec<Vec<u8>> {
    values.iter().flat_map(|v| forms_of(v, min_len)).collect()
}

/// Like `streamed`, with a chosen set of forms.
fn streamed_with(secrets: &[Vec<u8>], which: Forms, input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut masker = Masker::with_forms(secrets, which);
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

#[test]
fn a_base64_hex_or_json_printed_value_is_concealed() {
    let value = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
    let mut masker = Masker::with_forms([value], Forms::default());
    let hexed: String = value.bytes().map(|b| format!("{b:02X}")).collect();
    let text = format!(
        "b64=c2tfdGVzdF80ZUMzOUhxTHlqV0Rhcmp0VDF6ZHA3ZGM= hex={hexed} \
             url=sk_test_4eC39HqLyjWDarjtT1zdp7dc json={{\"k\":\"{value}\"}}"
    );
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(5) {
        out.extend(masker.push(chunk));
    }
    out.extend(masker.finish());
    let out = String::from_utf8(out).expect("utf-8");
    assert_eq!(
        out,
        "b64=<concealed by 1Password> hex=<concealed by 1Password> \
             url=<concealed by 1Password> json={\"k\":\"<concealed by 1Password>\"}"
    );
    let mut exact = Masker::with_forms([value], Forms::Exact);
    let plain = exact.push(b"c2tfdGVzdF80ZUMzOUhxTHlqV0Rhcmp0VDF6ZHA3ZGM=");
    assert_eq!(plain, b"c2tfdGVzdF80ZUMzOUhxTHlqV0Rhcmp0VDF6ZHA3ZGM=");
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
        "Masker { secrets: 1, patterns: 1, held_back_bytes: 0, .. }"
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
    fn encoded_chunking_never_changes_the_output(
        values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..24), 1..4),
        pieces in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 0..6)), 0..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let patterns = all_patterns(&values, 8);
        let mut input = Vec::new();
        for (which, form, noise) in &pieces {
            let forms = forms_of(&values[which.index(values.len())], 8);
            input.extend_from_slice(&forms[form.index(forms.len())]);
            input.extend_from_slice(noise);
        }
        let got = streamed_with(&values, Forms::Encoded { min_len: 8 }, &input, &cuts);
        drop(patterns);
        prop_assert_eq!(got, one_shot_wrapped(&wrap_flagged(&values, 8), &input));
    }

    #[test]
    fn no_encoding_of_a_value_survives_and_every_other_byte_does(
        values in proptest::collection::vec(
            proptest::collection::vec(any::<u8>().prop_filter("noise byte", |b| !NOISE.contains(b)), 8..40),
            1..4,
        ),
        pieces in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), proptest::collection::vec(proptest::sample::select(NOISE.to_vec()), 1..6)), 1..8),
        lead in proptest::collection::vec(proptest::sample::select(NOISE.to_vec()), 0..4),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut input = lead.clone();
        let mut expected = lead.clone();
        for (which, form, noise) in &pieces {
            let forms = forms_of(&values[which.index(values.len())], 8);
            input.extend_from_slice(&forms[form.index(forms.len())]);
            input.extend_from_slice(noise);
            expected.extend_from_slice(CONCEALED.as_bytes());
            expected.extend_from_slice(noise);
        }
        let got = streamed_with(&values, Forms::Encoded { min_len: 8 }, &input, &cuts);
        for value in &values {
            for form in forms_of(value, 8) {
                prop_assert!(!contains(&got, &form), "a form leaked");
            }
        }
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn a_value_inside_a_longer_base64_stream_is_masked_at_every_alignment(
        value in proptest::collection::vec(any::<u8>(), 8..40),
        before in proptest::collection::vec(any::<u8>(), 0..7),
        after in proptest::collection::vec(any::<u8>(), 0..7),
        url_safe in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let alphabet = if url_safe { forms::BASE64_URL } else { forms::BASE64_STANDARD };
        let mut plain = before.clone();
        plain.extend_from_slice(&value);
        plain.extend_from_slice(&after);
        let stream = forms::base64(&plain, alphabet);
        let inner = forms::base64_embedded(&value, before.len() % 3, alphabet);
        prop_assert!(contains(&stream, &inner));
        let got = streamed_with(&[value], Forms::Encoded { min_len: 8 }, &stream, &cuts);
        prop_assert!(!contains(&got, &inner), "the value's characters survived");
        prop_assert!(contains(&got, CONCEALED.as_bytes()));
    }

    #[test]
    fn short_values_are_masked_exactly_but_not_encoded(
        value in proptest::collection::vec(proptest::sample::select(b"abcdefgh".to_vec()), 1..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let hexed: Vec<u8> = value.iter().flat_map(|b| format!("{b:02x}").into_bytes()).collect();
        let mut input = value.clone();
        input.push(b' ');
        input.extend_from_slice(&hexed);
        let got = streamed_with(&[value], Forms::Encoded { min_len: 8 }, &input, &cuts);
        let mut expected = CONCEALED.as_bytes().to_vec();
        expected.push(b' ');
        expected.extend_from_slice(&hexed);
        prop_assert_eq!(got, expected);
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

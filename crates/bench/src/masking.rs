//! Scenario 5 (issue 14): how fast `op-session run` masks a command's output with 20 held
//! values, in each masking mode.
//!
//! In-process: the bench builds the same `Masker` the client builds and feeds it a synthetic
//! log in 8 KiB chunks, as the client's pump reads a pipe. No daemon, no `op`, no I/O; the
//! values are made up here and never printed.

use std::time::{Duration, Instant};

use secret_ref::mask::{Forms, Masker};

use crate::report::{Outcome, Section, Table, Target};
use crate::stats::{Summary, fmt_duration};

/// Values held, as in a `run` with 20 references.
const VALUES: usize = 20;
/// Bytes of output per measured pass.
const OUTPUT: usize = 64 << 20;
/// The client's read size.
const CHUNK: usize = 8192;
/// Measured passes per mode (after one warm-up pass).
const PASSES: usize = 7;
/// The name of this scenario's block in the report.
pub const MARKER: &str = "masking";
/// The goal, in MB/s (10^6 bytes).
const GOAL_MB_S: f64 = 200.0;

/// A deterministic generator (xorshift64*), so every run masks the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// 20 values shaped like real ones: API keys, passwords with punctuation, hex tokens, 8 to 64
/// bytes.
fn values(rng: &mut Rng) -> Vec<Vec<u8>> {
    const KEYISH: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    const PUNCT: &[u8] = b"!@#$%^&*()[]{}<>/?\"' ";
    (0..VALUES)
        .map(|i| {
            let len = 8 + rng.below(57);
            (0..len)
                .map(|_| {
                    if i % 4 == 3 && rng.below(5) == 0 {
                        PUNCT[rng.below(PUNCT.len())]
                    } else {
                        KEYISH[rng.below(KEYISH.len())]
                    }
                })
                .collect()
        })
        .collect()
}

/// A log-like text: words, numbers, JSON-ish lines and base64 blobs, with no value in it (the
/// common case, and the one whose speed matters: every byte takes the full scan).
fn output(rng: &mut Rng) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "INFO",
        "request",
        "GET",
        "/api/v1/items",
        "200",
        "in",
        "12ms",
        "user=42",
        "{\"id\":",
        "\"status\":\"ok\"}",
        "token",
        "refreshed",
        "cache",
        "miss",
        "retrying",
        "npm",
        "test",
        "passed",
        "PASS",
        "src/lib.rs",
        "warning:",
        "unused",
        "variable",
        "=>",
        "0x7ffd3c",
    ];
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(OUTPUT + 256);
    while out.len() < OUTPUT {
        match rng.below(10) {
            0 => {
                for _ in 0..(16 + rng.below(64)) {
                    out.push(B64[rng.below(B64.len())]);
                }
            }
            1 => out.push(b'\n'),
            _ => out.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes()),
        }
        out.push(b' ');
    }
    out.truncate(OUTPUT);
    out
}

/// One pass: the time to mask all of `text` in client-sized chunks.
fn pass(values: &[Vec<u8>], forms: Forms, text: &[u8]) -> (Duration, usize) {
    let started = Instant::now();
    let mut masker = Masker::with_forms(values, forms);
    let mut emitted = 0;
    for chunk in text.chunks(CHUNK) {
        emitted += masker.push(chunk).len();
    }
    emitted += masker.finish().len();
    (started.elapsed(), emitted)
}

fn mb_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

/// Run the scenario.
pub fn run() -> Outcome {
    let mut rng = Rng(0x6f70_2d73_6573_7369);
    let values = values(&mut rng);
    let text = output(&mut rng);
    let mut table = Table::new(&[
        "mode",
        "patterns",
        "build",
        "median throughput",
        "slowest pass",
    ]);
    let mut encoded_median = 0.0;
    for (name, forms) in [
        ("encoded (default)", Forms::default()),
        ("exact", Forms::Exact),
    ] {
        let built = Instant::now();
        let masker = Masker::with_forms(&values, forms);
        let build = built.elapsed();
        let patterns = masker.pattern_count().to_string();
        let _ = pass(&values, forms, &text);
        let mut times = Vec::with_capacity(PASSES);
        for _ in 0..PASSES {
            let (took, emitted) = pass(&values, forms, &text);
            // Nothing in the text is a value: every byte must come out.
            assert_eq!(emitted, text.len(), "the benchmark text matched a value");
            times.push(took);
        }
        let Some(summary) = Summary::of(&times) else {
            continue;
        };
        let median = mb_s(text.len(), summary.p50);
        if forms != Forms::Exact {
            encoded_median = median;
        }
        table.row(vec![
            name.into(),
            patterns,
            fmt_duration(build),
            format!("{median:.0} MB/s"),
            format!("{:.0} MB/s", mb_s(text.len(), summary.max)),
        ]);
    }
    Outcome {
        sections: vec![Section {
            title: "5. Masking throughput".into(),
            intro: format!(
                "How fast `op-session run` masks a command's output with {VALUES} values held: \
                 the client's `Masker`, in process, fed {} MiB of log-like text (words, JSON, \
                 base64 blobs, no value in it) in {} KiB chunks as the client reads a pipe; \
                 {PASSES} measured passes per mode after one warm-up; MB = 10^6 bytes.",
                OUTPUT >> 20,
                CHUNK >> 10
            ),
            table,
            notes: vec![
                "The values are 8 to 64 bytes, key-like, a quarter with punctuation (so their \
                 percent-encoded and JSON-escaped forms differ from the value). The encoded \
                 mode masks each value, its base64 (two alphabets, padded or not, three \
                 alignments inside a longer stream), hex (two cases), percent-encoded (five \
                 encoder styles) and JSON-escaped (four serializer styles) forms."
                    .into(),
            ],
        }],
        targets: vec![Target {
            what: format!("masking throughput, {VALUES} values, encoded forms (median)"),
            goal: format!("≥ {GOAL_MB_S:.0} MB/s"),
            measured: format!("{encoded_median:.0} MB/s"),
            pass: encoded_median >= GOAL_MB_S,
        }],
    }
}

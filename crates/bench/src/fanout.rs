//! Scenario 3, fan-out: 8, 64 and 256 `op-session read` processes started at once.
//!
//! Uncached rounds all read one reference nobody has read yet (a different one per round, so
//! each round starts cold without touching the session); the daemon should run `op` once and
//! hand the value to everyone. Cached rounds read the agent scenario's five references,
//! warmed beforehand, round-robin; `op` should not run at all. Each client's latency runs
//! from just before its spawn (all threads released by one barrier) to its exit.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::fixture::AGENT_REFS;
use crate::report::{Outcome, Section, Table, Target};
use crate::stats::{Summary, fmt_duration};
use crate::world::{Counters, World};

/// How many clients at once.
pub const SIZES: [usize; 3] = [8, 64, 256];

/// One never-read reference per uncached round, with its value.
const COLD: [(&str, &str); 3] = [
    ("op://Dev/Stripe/username", "stripe-dev@example.com"),
    ("op://Dev/Database/host", "db.dev.example.com"),
    ("op://Dev/GitHub/username", "wendy-appleseed"),
];

/// One round's figures.
#[derive(Debug)]
struct Round {
    clients: usize,
    cached: bool,
    op: Counters,
    latency: Summary,
    wall: Duration,
    errors: usize,
    first_error: Option<String>,
}

/// `clients` concurrent `op-session read`s of `refs` round-robin.
fn round(w: &World, clients: usize, refs: &[(&str, &str)], cached: bool) -> Result<Round> {
    let before = w.counters()?;
    let barrier = Arc::new(Barrier::new(clients));
    let results = std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(clients);
        for i in 0..clients {
            let (reference, value) = refs[i % refs.len()];
            let mut cmd = w.client(&["read", reference]);
            let barrier = barrier.clone();
            let h = std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn_scoped(s, move || {
                    barrier.wait();
                    let start = Instant::now();
                    let out = cmd.output();
                    let end = Instant::now();
                    let ok = match out {
                        Ok(o)
                            if o.status.success()
                                && o.stdout == format!("{value}\n").as_bytes() =>
                        {
                            Ok(())
                        }
                        Ok(o) => Err(format!(
                            "{} {}",
                            o.status,
                            String::from_utf8_lossy(&o.stderr).trim()
                        )),
                        Err(e) => Err(format!("spawn: {e}")),
                    };
                    (start, end, ok)
                })
                .context("starting a client thread")?;
            handles.push(h);
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a client thread panicked"))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let first = results.iter().map(|r| r.0).min().context("no clients")?;
    let last = results.iter().map(|r| r.1).max().context("no clients")?;
    let latencies: Vec<Duration> = results.iter().map(|r| r.1 - r.0).collect();
    let errors: Vec<&String> = results.iter().filter_map(|r| r.2.as_ref().err()).collect();
    Ok(Round {
        clients,
        cached,
        op: w.counters()?.since(&before),
        latency: Summary::of(&latencies).context("no samples")?,
        wall: last - first,
        errors: errors.len(),
        first_error: errors.first().map(|e| e.to_string()),
    })
}

/// Run scenario 3 in `w`, whose daemon holds a token session for `my`.
pub fn run(w: &World, latency_ms: u64) -> Result<Outcome> {
    // Warm the cache for the cached rounds.
    for (reference, _) in AGENT_REFS {
        let out = w.run(&["read", reference])?;
        if out.code != 0 {
            bail!("warming {reference} failed: {}", out.stderr.trim());
        }
    }
    let mut rounds = Vec::new();
    for (&n, cold) in SIZES.iter().zip(COLD) {
        eprintln!("  {n} clients, one uncached reference…");
        rounds.push(round(w, n, &[cold], false)?);
        eprintln!("  {n} clients, cached references…");
        rounds.push(round(w, n, &AGENT_REFS, true)?);
    }

    let mut table = Table::new(&[
        "clients",
        "reference",
        "`op` invocations",
        "p50",
        "p99",
        "slowest",
        "wall",
        "errors",
    ]);
    let mut notes = vec![format!(
        "Every `op` invocation sleeps {latency_ms} ms. Latency is per client, spawn to exit; \
         \"wall\" is from the first spawn to the last exit. Percentiles are nearest-rank (with \
         8 clients, p99 is the slowest). An error is a non-zero exit or a wrong value."
    )];
    for r in &rounds {
        table.row(vec![
            r.clients.to_string(),
            if r.cached {
                "cached (5 refs round-robin)".into()
            } else {
                "one uncached".into()
            },
            r.op.describe(),
            fmt_duration(r.latency.p50),
            fmt_duration(r.latency.p99),
            fmt_duration(r.latency.max),
            fmt_duration(r.wall),
            r.errors.to_string(),
        ]);
        if let Some(e) = &r.first_error {
            notes.push(format!(
                "{} clients ({}): {} errors, the first: {e}",
                r.clients,
                if r.cached { "cached" } else { "uncached" },
                r.errors
            ));
        }
    }
    let big = rounds
        .iter()
        .find(|r| r.clients == 256 && !r.cached)
        .context("no 256-client round")?;
    let targets = vec![Target {
        what: "256 concurrent clients on one uncached reference".into(),
        goal: "1 `op` call, 0 errors".into(),
        measured: format!(
            "{} `op` call(s), {} errors, p99 {}",
            big.op.invocations,
            big.errors,
            fmt_duration(big.latency.p99)
        ),
        pass: big.op.invocations == 1 && big.errors == 0,
    }];
    Ok(Outcome {
        sections: vec![Section {
            title: "3. Fan-out".into(),
            intro: "Concurrent `op-session read` processes released together, against one \
                    daemon holding a token session."
                .into(),
            table,
            notes,
        }],
        targets,
    })
}

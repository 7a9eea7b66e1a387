//! Scenario 7, the crash loop (issue 22): how many `op` calls a caller that reads a missing
//! item every second for 60 s costs a service account, before and after op-session's negative
//! cache and per-caller brake.
//!
//! Each variant gets its own world: fake-op with the basic fixture and no latency (only
//! calls are counted, and pacing must hold), a service-account session of fake-op's `ci`
//! account, and a caller that starts `op-session read op://Dev/NoSuchItem/password` (or `op
//! read` itself for the baseline) 60 times, once per tick. Time is scaled so the bench does
//! not take minutes: with `--time-scale 10` (the default) a tick is 100 ms and `negative_ttl`
//! 3 s, which is the 60 s loop against the 30 s default at a tenth of the time. The brake's
//! one-minute window is not scaled; the 60 tries fall inside one minute either way, so it
//! engages after the same number of errors. `--time-scale 1` runs the real 60 s per variant.
//! The counts are fake-op's own (`fake-op-ctl counters`: `read` invocations and the
//! service-account reads it charged, three per `op read`, docs/op-behaviour.md §6).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::report::{Outcome, Section, Table, Target};
use crate::world::{Bins, World};

/// The block of docs/BENCHMARKS.md this scenario rewrites when run alone.
pub const MARKER: &str = "crash-loop";
/// Tries in the loop (one a second for 60 s).
const TRIES: u32 = 60;
/// What the caller reads.
const MISSING: &str = "op://Dev/NoSuchItem/password";
/// The negative cache's default, in seconds (daemon config `negative_ttl`).
const NEGATIVE_TTL_S: u64 = 30;

/// One way of running the loop.
struct Variant {
    name: &'static str,
    /// Run `op` itself with the token in the environment instead of op-session.
    direct: bool,
    /// Extra daemon config.
    config: String,
}

/// What one variant cost.
struct Cost {
    tries: u32,
    op_reads: u64,
    sa_reads: u64,
    exits: std::collections::BTreeMap<i32, u32>,
    took: Duration,
}

fn counter(w: &World, path: &[&str]) -> Result<u64> {
    let v: serde_json::Value = serde_json::from_str(&w.ctl(&["counters"])?)?;
    let mut cur = &v;
    for p in path {
        cur = &cur[*p];
    }
    Ok(cur.as_u64().unwrap_or(0))
}

fn run_variant(
    bins: &Bins,
    fixture: &std::path::Path,
    v: &Variant,
    tick: Duration,
) -> Result<Cost> {
    let w = World::new(bins, fixture)?;
    w.set_latency(0)?;
    let config = w.config_home.join("op-session/config.toml");
    let mut text = std::fs::read_to_string(&config)?;
    text += &v.config;
    std::fs::write(&config, text)?;
    let token = w.ctl(&["token", "ci"])?.trim().to_string();
    if !v.direct {
        w.start_daemon()?;
        let out = w.run_with_stdin(
            w.client(&["init", "--mode", "service-account"]),
            token.as_bytes(),
        )?;
        if out.code != 0 {
            bail!("service-account init failed: {}", out.stderr.trim());
        }
    }
    let reads_before = counter(&w, &["commands", "read"])?;
    let sa_before = counter(&w, &["service_account_reads"])?;
    let mut exits = std::collections::BTreeMap::new();
    let started = Instant::now();
    for i in 0..TRIES {
        let due = started + tick * i;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let out: crate::world::Out = if v.direct {
            w.command(&w.bins.fake_op)
                .args(["read", MISSING])
                .env("OP_SERVICE_ACCOUNT_TOKEN", &token)
                .output()?
                .into()
        } else {
            w.client(&["read", MISSING]).output()?.into()
        };
        *exits.entry(out.code).or_insert(0) += 1;
    }
    let took = started.elapsed();
    let cost = Cost {
        tries: TRIES,
        op_reads: counter(&w, &["commands", "read"])? - reads_before,
        sa_reads: counter(&w, &["service_account_reads"])? - sa_before,
        exits,
        took,
    };
    w.stop()?;
    Ok(cost)
}

/// Run the scenario at `scale` (1: real time).
pub fn run(bins: &Bins, fixture: &std::path::Path, scale: u64) -> Result<Outcome> {
    let scale = scale.max(1);
    let tick = Duration::from_millis(1000 / scale);
    let ttl_ms = NEGATIVE_TTL_S * 1000 / scale;
    let variants = [
        Variant {
            name: "`op read` itself, no op-session",
            direct: true,
            config: String::new(),
        },
        Variant {
            name: "op-session before (no negative cache, no brake)",
            direct: false,
            config: "negative_ttl = \"0s\"\n[quota]\ncaller_errors_per_minute = 0\n".into(),
        },
        Variant {
            name: "op-session, negative cache only",
            direct: false,
            config: format!(
                "negative_ttl = \"{ttl_ms}ms\"\n[quota]\ncaller_errors_per_minute = 0\n"
            ),
        },
        Variant {
            name: "op-session after (negative cache and brake, defaults)",
            direct: false,
            config: format!("negative_ttl = \"{ttl_ms}ms\"\n"),
        },
    ];
    let mut table = Table::new(&[
        "caller",
        "tries",
        "`op read` calls",
        "service-account reads charged",
        "exit codes seen",
        "wall time",
    ]);
    let mut before = 0;
    let mut after = 0;
    for v in &variants {
        eprintln!("   {}", v.name.replace('`', ""));
        let c = run_variant(bins, fixture, v, tick)?;
        if v.config.contains("negative_ttl = \"0s\"") {
            before = c.op_reads;
        }
        after = c.op_reads;
        table.row(vec![
            v.name.into(),
            c.tries.to_string(),
            c.op_reads.to_string(),
            c.sa_reads.to_string(),
            c.exits
                .iter()
                .map(|(code, n)| format!("{code}×{n}"))
                .collect::<Vec<_>>()
                .join(", "),
            crate::stats::fmt_duration(c.took),
        ]);
    }
    // One call per negative_ttl over the 60 s, plus the first.
    let goal = 60 / NEGATIVE_TTL_S + 1;
    Ok(Outcome {
        sections: vec![Section {
            title: "7. Crash loop: a caller reading a missing item every second for 60 s".into(),
            intro: format!(
                "A job that crash-loops asks for an item that does not exist once a second for \
                 60 s ({TRIES} tries), as a service account. Counted by fake-op: `op read` \
                 invocations and the service-account reads it charged (3 per `op read`). Time \
                 scaled 1/{scale}: a try every {} ms and `negative_ttl` {} ms stand for one \
                 a second and the 30 s default; no `op` latency. Each row is a fresh daemon \
                 and a fresh fake-op.",
                tick.as_millis(),
                ttl_ms
            ),
            table,
            notes: vec![
                "Before: every try is an `op` call, 3 reads of the hourly 1,000 (Teams) and the \
                 account's daily 5,000. With the negative cache, a try within `negative_ttl` of \
                 the last answer gets the same error from memory. With the brake (default 30 \
                 errors in a row within a minute), the caller is answered from memory only \
                 once it passes 30, so even an expired memory costs no call until it stops \
                 for a minute: it sees op's words (exit 1) while the memory lasts, then exit \
                 75 saying it is looping. The brake's minute is not scaled; all 60 tries fall \
                 in one minute at any scale. The counts do not depend on the build profile \
                 (`--debug-bins` uses target/debug)."
                    .into(),
            ],
        }],
        targets: vec![Target {
            what: "crash loop: `op` calls of a 60 s loop on a missing item".into(),
            goal: format!("≤ {goal} (one per negative_ttl), from {TRIES}"),
            measured: format!("{after} (before: {before})"),
            pass: after <= goal && before >= u64::from(TRIES),
        }],
    })
}

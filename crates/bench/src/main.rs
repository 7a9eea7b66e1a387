//! `op-session-bench`: measure op-session against today's ways of running `op` from agents
//! (issue 7), print a table and write `docs/BENCHMARKS.md`.
//!
//! ```text
//! cargo run --release -p op-session-bench -- all
//! op-session-bench [all|overhead|agent|fanout|footprint|masking] [--latency-ms 800] [--runs 200]
//! op-session-bench [all|overhead|agent|fanout|footprint|mcp|hotpath] [--latency-ms 800] [--runs 200]
//!                  [--out docs/BENCHMARKS.md] [--idle-secs 60]
//! ```
//!
//! Drives the real release binaries (it builds them first unless `--no-build`) against
//! fake-op, each scenario in its own temporary world (HOME, XDG dirs, socket), over Unix
//! sockets only. Every loop is bounded in count, and a watchdog ends the run, killing the
//! daemons it started, if the whole run overstays a generous budget. Daemons are stopped
//! with `op-session stop` at the end of each scenario.
//!
//! `masking` alone runs in process in a few seconds and rewrites only its own block of the
//! report (between `<!-- masking -->` markers), so the other figures stay from their run.
//! `crash-loop` alone (about half a minute at the default `--time-scale 10`) does the same
//! with its `<!-- crash-loop -->` block, and `hotpath` alone between `<!-- hotpath -->`.

mod agent;
mod crashloop;
mod fanout;
mod fixture;
mod footprint;
mod hotpath;
mod machine;
mod masking;
mod mcp;
mod overhead;
mod report;
mod stats;
mod wire;
mod world;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

use crate::report::{Outcome, Report};
use crate::world::{Bins, World};

/// Which scenarios to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// All of them.
    All,
    /// 1: client start-up against /bin/true.
    Overhead,
    /// 2: 100 tool calls, three ways.
    Agent,
    /// 3: 8/64/256 concurrent clients.
    Fanout,
    /// 4: throughput, memory, idle wakeups (runs the fan-out first: it reports RSS after it).
    Footprint,
    /// 5: masking throughput of `run`'s output with 20 values (in process).
    Masking,
    /// 6: `op-session mcp` over stdio: per-call latency and idle RSS (issue 12). Alone, it
    /// writes `docs/BENCHMARKS-MCP.md` unless `--out` says otherwise.
    Mcp,
    /// 7: `op` calls of a caller reading a missing item every second for 60 s, before and
    /// after the negative cache and the brake (issue 22). Alone, it rewrites only its block.
    CrashLoop,
    /// 8: the hot path (issue 23): client runs against /bin/true with page faults, and the
    /// daemon's CPU per cached read. Alone, it rewrites only its own block of the report.
    Hotpath,
}

/// Benchmarks of op-session against fake-op: client overhead, the agent scenario, fan-out,
/// throughput and footprint.
#[derive(Debug, Parser)]
#[command(name = "op-session-bench", version, about)]
struct Args {
    /// Which scenarios to run.
    #[arg(value_enum, default_value = "all")]
    scenario: Scenario,
    /// Latency of every `op` invocation in ms (stands in for the round trip to 1Password).
    #[arg(long, default_value_t = 800)]
    latency_ms: u64,
    /// Measured runs of each command in the overhead scenario (issue 7 asks for ≥ 200).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    runs: u64,
    /// Where to write the Markdown report [default: docs/BENCHMARKS.md; docs/BENCHMARKS-MCP.md
    /// for the mcp scenario alone].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Length of the idle window in the footprint scenario, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    idle_secs: u64,
    /// Cached reads in the throughput run.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    requests: u64,
    /// Reader threads in the throughput run.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    threads: u64,
    /// The crash loop runs this many times faster than real time (1: the real 60 s per
    /// variant); `negative_ttl` is scaled the same way.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100))]
    time_scale: u64,
    /// crash-loop alone: use the debug binaries (target/debug) instead of release ones; the
    /// scenario counts `op` calls, which the build profile does not change.
    #[arg(long)]
    debug_bins: bool,
    /// Use the release binaries already in target/release instead of building them.
    #[arg(long)]
    no_build: bool,
}

impl Args {
    fn wants(&self, s: Scenario) -> bool {
        self.scenario == Scenario::All || self.scenario == s
    }

    /// An upper bound on the whole run, far above what it needs.
    fn budget(&self) -> Duration {
        Duration::from_secs(
            900 + self.latency_ms * 600 / 1000
                + self.runs / 5
                + self.idle_secs
                + self.requests / 500,
        )
    }
}

/// The command line that reproduces this run.
fn reproduce() -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect();
    let mut cmd = "cargo run --release -p op-session-bench --".to_string();
    if args.is_empty() {
        cmd += " all";
    }
    for a in args {
        cmd += " ";
        cmd += &a;
    }
    cmd
}

/// End the run if it overstays `budget`, killing the daemons it started.
fn watchdog(budget: Duration) {
    let _ = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            std::thread::sleep(budget);
            eprintln!(
                "op-session-bench: still running after {} s; stopping the daemons and giving up",
                budget.as_secs()
            );
            world::kill_all_daemons();
            std::process::exit(3);
        });
}

/// Scenarios 3 and 4 share one daemon, so the footprint can report RSS after the fan-out.
fn daemon_scenarios(args: &Args, bins: &Bins, fx: &fixture::Fixtures) -> Result<Vec<Outcome>> {
    let w = World::new(bins, fx.basic())?;
    w.set_latency(args.latency_ms)?;
    let pid = w.start_daemon()?;
    std::thread::sleep(Duration::from_secs(1));
    let after_start = footprint::rss_kib(pid)?;
    w.init_token("my")?;
    std::thread::sleep(Duration::from_secs(1));
    let with_session = footprint::rss_kib(pid)?;
    let mut outcomes = Vec::new();
    eprintln!("3. fan-out");
    outcomes.push(fanout::run(&w, args.latency_ms)?);
    std::thread::sleep(Duration::from_secs(1));
    let after_fanout = footprint::rss_kib(pid)?;
    if args.wants(Scenario::Footprint) {
        eprintln!("4. throughput and footprint");
        outcomes.push(footprint::run(
            &w,
            pid,
            footprint::EarlierRss {
                after_start,
                with_session,
                after_fanout,
            },
            footprint::Settings {
                threads: args.threads as usize,
                requests: args.requests as usize,
                idle: Duration::from_secs(args.idle_secs),
            },
        )?);
    }
    w.stop()?;
    Ok(outcomes)
}

/// `masking` alone: measure, then rewrite only the masking block of the report.
fn masking_only(args: &Args) -> Result<()> {
    eprintln!("5. masking throughput");
    let outcome = masking::run();
    write_block(args, outcome, masking::MARKER, "masking", None)
}

/// `crash-loop` alone: measure, then rewrite only the crash-loop block of the report.
fn crash_loop_only(args: &Args) -> Result<()> {
    watchdog(args.budget());
    let bins = if args.debug_bins {
        Bins::debug(!args.no_build)?
    } else {
        Bins::prepare(!args.no_build)?
    };
    let fx = fixture::Fixtures::prepare()?;
    eprintln!("7. crash loop");
    let outcome = crashloop::run(&bins, fx.basic(), args.time_scale)?;
    write_block(args, outcome, crashloop::MARKER, "crash-loop", None)
}

/// `hotpath` alone: measure, then rewrite only the hot-path block of the report.
fn hotpath_only(args: &Args) -> Result<()> {
    watchdog(args.budget());
    let bins = Bins::prepare(!args.no_build)?;
    let fx = fixture::Fixtures::prepare()?;
    eprintln!("8. the hot path ({} runs each)", args.runs);
    let outcome = hotpath::run(&bins, fx.basic(), hotpath_settings(args))?;
    let load = format!(
        "\nLoad average 1/5/15 min at the end of this run: {}.\n",
        machine::load_average()
    );
    write_block(args, outcome, hotpath::MARKER, "hot-path", Some(&load))
}

/// A single scenario's run: print it, then rewrite only its marked block of the report, so
/// the other figures stay from their own run.
fn write_block(
    args: &Args,
    outcome: report::Outcome,
    marker: &str,
    what: &str,
    trailer: Option<&str>,
) -> Result<()> {
    let report = Report {
        command: reproduce(),
        machine: machine::describe(),
        targets: outcome.targets,
        sections: outcome.sections,
        ..Report::default()
    };
    print!("{}", report.to_text());
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("docs/BENCHMARKS.md"));
    let existing = std::fs::read_to_string(&out).unwrap_or_default();
    let mut block = report.to_block();
    block.push_str(trailer.unwrap_or_default());
    let updated = report::splice(&existing, marker, &block);
    std::fs::write(&out, updated).with_context(|| format!("writing {}", out.display()))?;
    println!("\nupdated the {what} block of {}", out.display());
    Ok(())
}

fn hotpath_settings(args: &Args) -> hotpath::Settings {
    hotpath::Settings {
        runs: args.runs as usize,
        requests: args.requests as usize,
        threads: args.threads as usize,
    }
}

fn real_main(args: Args) -> Result<()> {
    if args.scenario == Scenario::Masking {
        return masking_only(&args);
    }
    if args.scenario == Scenario::CrashLoop {
        return crash_loop_only(&args);
    }
    if args.scenario == Scenario::Hotpath {
        return hotpath_only(&args);
    }
    watchdog(args.budget());
    let started = Instant::now();
    let load_at_start = machine::load_average();
    let bins = Bins::prepare(!args.no_build)?;
    let fx = fixture::Fixtures::prepare()?;
    let mut outcomes = Vec::new();
    if args.wants(Scenario::Overhead) {
        eprintln!("1. client overhead ({} runs each)", args.runs);
        outcomes.push(overhead::run(&bins, fx.basic(), args.runs as usize)?);
    }
    if args.wants(Scenario::Agent) {
        eprintln!(
            "2. the agent scenario ({} ms per op call; a few minutes)",
            args.latency_ms
        );
        outcomes.push(agent::run(&bins, &fx, args.latency_ms)?);
    }
    if args.wants(Scenario::Fanout) || args.wants(Scenario::Footprint) {
        outcomes.extend(daemon_scenarios(&args, &bins, &fx)?);
    }
    if args.wants(Scenario::Masking) {
        eprintln!("5. masking throughput");
        outcomes.push(masking::run());
    }
    if args.wants(Scenario::Mcp) {
        eprintln!(
            "6. op-session mcp over stdio ({} calls per tool)",
            args.runs
        );
        let w = World::new(&bins, fx.basic())?;
        w.set_latency(args.latency_ms)?;
        let outcome = mcp::run(&w, args.runs as usize);
        w.stop()?;
        outcomes.push(outcome?);
    }

    if args.wants(Scenario::CrashLoop) {
        eprintln!("7. crash loop (time scaled 1/{})", args.time_scale);
        outcomes.push(crashloop::run(&bins, fx.basic(), args.time_scale)?);
    }
    if args.wants(Scenario::Hotpath) {
        eprintln!("8. the hot path ({} runs each)", args.runs);
        outcomes.push(hotpath::run(&bins, fx.basic(), hotpath_settings(&args))?);
    }

    let mut machine = machine::describe();
    machine.push(("load average 1/5/15 min, at start".into(), load_at_start));
    machine.push((
        "load average 1/5/15 min, at end".into(),
        machine::load_average(),
    ));
    let mut report = Report {
        machine,
        command: reproduce(),
        settings: format!(
            "Settings in effect: scenario `{}`, {} ms per `op` invocation, {} overhead runs per \
             command, {} cached reads from {} threads for throughput, {} idle seconds.",
            args.scenario
                .to_possible_value()
                .map(|v| v.get_name().to_string())
                .unwrap_or_default(),
            args.latency_ms,
            args.runs,
            args.requests,
            args.threads,
            args.idle_secs
        ),
        duration: stats::fmt_duration(started.elapsed()),
        ..Report::default()
    };
    for o in outcomes {
        report.sections.extend(o.sections);
        report.targets.extend(o.targets);
    }
    print!("{}", report.to_text());
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(if args.scenario == Scenario::Mcp {
            "docs/BENCHMARKS-MCP.md"
        } else {
            "docs/BENCHMARKS.md"
        })
    });
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Blocks added by hand or by a single-scenario run stay, unless this run measured them.
    let existing = std::fs::read_to_string(&out).unwrap_or_default();
    let mut measured = Vec::new();
    if args.wants(Scenario::Masking) {
        measured.push(masking::MARKER);
    }
    if args.wants(Scenario::CrashLoop) {
        measured.push(crashloop::MARKER);
    }
    if args.wants(Scenario::Hotpath) {
        measured.push(hotpath::MARKER);
    }
    let markdown = report::carry_blocks(&existing, &report.to_markdown(), &measured);
    std::fs::write(&out, markdown).with_context(|| format!("writing {}", out.display()))?;
    println!("\nwrote {}", out.display());
    Ok(())
}

fn main() -> ExitCode {
    match real_main(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("op-session-bench: {e:#}");
            world::kill_all_daemons();
            ExitCode::FAILURE
        }
    }
}

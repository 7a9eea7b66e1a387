//! Scenario 7, the hot path (issue 23): what one agent tool call costs at the floor.
//!
//! Two halves. The client: a whole `op-session status` and a cached `op-session read`, paired
//! with `/bin/true` in one interleaved loop (the same method as scenario 1), reported as the
//! median ratio and the page faults per run. The daemon: its CPU time per cached read, from
//! one thread (sequential requests, so nothing but the requests runs in the daemon) and from
//! several threads (the throughput figure). Alone, it rewrites only its own block of the
//! report (between `<!-- hotpath -->` markers).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::footprint::{self, Throughput};
use crate::overhead::{Cost, time_one};
use crate::report::{Outcome, Section, Table, Target};
use crate::stats::{Summary, fmt_duration, fmt_ratio, ratio};
use crate::wire;
use crate::world::{Bins, World};

/// The report block this scenario owns when run alone.
pub const MARKER: &str = "hotpath";

/// The cached reference.
const REF: &str = "op://Dev/Stripe/key";
/// Untimed runs of each command before measuring.
const WARMUP: usize = 10;
/// The targets of issue 23.
const RATIO_GOAL: f64 = 1.15;
const FAULTS_GOAL: f64 = 80.0;
const DAEMON_CPU_GOAL_US: f64 = 25.0;
const THROUGHPUT_GOAL: f64 = 40_000.0;

/// Settings of this scenario.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Measured runs of each command.
    pub runs: usize,
    /// Cached reads for each daemon figure.
    pub requests: usize,
    /// Reader threads for the throughput figure.
    pub threads: usize,
}

/// The daemon's CPU while `work` runs, in µs (schedstat of its threads; falls back to the
/// clock-tick figure when a thread exited in between).
fn daemon_cpu_us(pid: i32, work: impl FnOnce() -> Result<()>) -> Result<u64> {
    let before = footprint::sample(pid)?;
    work()?;
    let after = footprint::sample(pid)?;
    let d = footprint::delta(&before, &after, footprint::ticks_per_second());
    Ok(if d.exited == 0 {
        d.run_us
    } else {
        d.cpu_ms * 1000
    })
}

/// Drop `path`'s pages from the page cache, so the next run reads them back from disk.
fn drop_cached_pages(path: &std::path::Path) -> Result<()> {
    use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    f.sync_all().ok();
    posix_fadvise(&f, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED)
        .with_context(|| format!("dropping the cached pages of {}", path.display()))?;
    Ok(())
}

/// Run scenario 7.
pub fn run(bins: &Bins, fixture: &std::path::Path, set: Settings) -> Result<Outcome> {
    let w = World::new(bins, fixture)?;
    w.set_latency(0)?;
    w.init_token("my")?;
    let first = w.run(&["read", REF])?;
    if first.code != 0 || first.stdout.trim().is_empty() {
        bail!("the first read failed: {}", first.stderr.trim());
    }
    let pid = w.daemon_pid().context("the daemon did not say its pid")?;
    let before = w.counters()?;

    // The client: three commands, round-robin with a rotating start.
    let quiet = |mut c: std::process::Command| {
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    let names = ["/bin/true", "op-session status", "op-session read (cached)"];
    let mut commands = [
        quiet(w.command("/bin/true")),
        quiet(w.client(&["status"])),
        quiet(w.client(&["read", REF])),
    ];
    // Both programs start from pages read back from disk, as after a reboot. A file just
    // written (the client, by the linker) is cached in other page sizes than one read back
    // (`/bin/true`), and that alone moved a run by up to 100 µs (docs/BENCHMARKS.md, "Fourth
    // round").
    for program in [std::path::Path::new("/bin/true"), bins.client.as_path()] {
        drop_cached_pages(program)?;
    }
    for c in &mut commands {
        for _ in 0..WARMUP {
            time_one(c)?;
        }
    }
    let k = commands.len();
    let mut walls: Vec<Vec<Duration>> = (0..k).map(|_| Vec::with_capacity(set.runs)).collect();
    let mut costs = vec![Cost::default(); k];
    for i in 0..set.runs {
        for j in 0..k {
            let c = (i + j) % k;
            let cost = time_one(&mut commands[c]).with_context(|| names[c])?;
            walls[c].push(cost.wall);
            costs[c].cpu += cost.cpu;
            costs[c].faults += cost.faults;
        }
    }
    let sums: Vec<Summary> = walls
        .iter()
        .map(|s| Summary::of(s).context("no samples"))
        .collect::<Result<_>>()?;
    let base = sums[0].p50.as_secs_f64();
    let faults = |c: usize| costs[c].faults as f64 / set.runs as f64;

    // The daemon: sequential cached reads, then the threaded throughput run; each first with a
    // connection per read (a client process per call), then on reused connections (the MCP
    // server).
    let request = wire::framed(&wire::read_request(REF))?;
    wire::cached_read(&w.socket, &request)?;
    let fresh = daemon_runs(&w.socket, pid, &request, set, false)?;
    let reused = daemon_runs(&w.socket, pid, &request, set, true)?;
    let op_calls = w.counters()?.since(&before);
    w.stop()?;

    let mut clients = Table::new(&[
        "command",
        "runs",
        "median",
        "p90",
        "median ÷ /bin/true",
        "CPU per run (mean)",
        "page faults per run (mean)",
    ]);
    for (c, s) in sums.iter().enumerate() {
        clients.row(vec![
            names[c].to_string(),
            s.n.to_string(),
            fmt_duration(s.p50),
            fmt_duration(s.p90),
            fmt_ratio(ratio(s.p50.as_secs_f64(), base)),
            fmt_duration(costs[c].cpu / set.runs as u32),
            format!("{:.0}", faults(c)),
        ]);
    }
    let mut daemon = Table::new(&[
        "run",
        "requests",
        "wall",
        "requests/s",
        "latency p50 / p99",
        "daemon CPU per request",
    ]);
    for (how, r) in [
        ("a connection per read", &fresh),
        ("reused connections", &reused),
    ] {
        daemon.row(vec![
            format!("1 thread, one request at a time, {how}"),
            set.requests.to_string(),
            fmt_duration(r.seq_elapsed),
            format!("{:.0}/s", set.requests as f64 / r.seq_elapsed.as_secs_f64()),
            format!("{} / {}", fmt_duration(r.seq.p50), fmt_duration(r.seq.p99)),
            format!("{:.1} µs", r.seq_cpu),
        ]);
        daemon.row(vec![
            format!("{} threads, as fast as they can, {how}", set.threads),
            format!("{} ({} errors)", r.tp.done, r.tp.errors),
            fmt_duration(r.tp.elapsed),
            format!("{:.0}/s", r.rate),
            format!(
                "{} / {}",
                fmt_duration(r.tp.latency.p50),
                fmt_duration(r.tp.latency.p99)
            ),
            format!("{:.1} µs", r.tp_cpu),
        ]);
    }
    let status_ratio = ratio(sums[1].p50.as_secs_f64(), base);
    let read_ratio = ratio(sums[2].p50.as_secs_f64(), base);
    let client_target = |what: &str, c: usize, r: f64| Target {
        what: format!("{what}: median vs `/bin/true`, page faults per run"),
        goal: format!("≤ {RATIO_GOAL}×, ≤ {FAULTS_GOAL:.0}"),
        measured: format!(
            "{} ({} vs {}), {:.0} faults",
            fmt_ratio(r),
            fmt_duration(sums[c].p50),
            fmt_duration(sums[0].p50),
            faults(c)
        ),
        pass: r <= RATIO_GOAL && faults(c) <= FAULTS_GOAL,
    };
    Ok(Outcome {
        sections: vec![Section {
            title: "8. The hot path (issue 23)".into(),
            intro: format!(
                "A whole client run against `/bin/true`, {} measured runs of each (after \
                 {WARMUP} warm-up runs), interleaved round-robin with a rotating start; then the \
                 daemon's CPU per cached read, {} requests from one thread and {} from {} \
                 threads, with the frame `op-session read {REF}` sends: first each on a \
                 connection of its own, as every `op-session` process makes one, then on reused \
                 connections (one per thread), as the MCP server keeps them. `op` ran {} times \
                 during the timed runs.",
                set.runs, set.requests, set.requests, set.threads, op_calls.invocations
            ),
            table: clients,
            notes: vec![
                daemon.to_markdown(),
                "Daemon CPU is the on-CPU time of its threads over the run (schedstat), \
                 divided by the requests; the bench's own client threads used {OWN} ms in the \
                 threaded runs. The machine has 2 CPUs and is shared: with the clients on the \
                 same CPUs, the threaded rate is bound by daemon + client CPU per request, not \
                 by the daemon alone."
                    .replace("{OWN}", &format!("{} and {}", fresh.own_ms, reused.own_ms)),
            ],
        }],
        targets: vec![
            client_target("`op-session status`", 1, status_ratio),
            client_target("cached `op-session read`", 2, read_ratio),
            daemon_cpu_target(&fresh, "a connection per read", op_calls.invocations),
            throughput_target(&fresh, "a connection per read", set.threads),
            daemon_cpu_target(&reused, "reused connections", op_calls.invocations),
            throughput_target(&reused, "reused connections", set.threads),
        ],
    })
}

/// The daemon's figures for one way of connecting.
struct DaemonRuns {
    seq_elapsed: Duration,
    seq: Summary,
    seq_cpu: f64,
    tp: Throughput,
    tp_cpu: f64,
    rate: f64,
    /// The bench's own CPU over the threaded run, in ms.
    own_ms: u64,
}

/// Sequential cached reads, then the threaded run, each on fresh or reused connections.
fn daemon_runs(
    socket: &std::path::Path,
    pid: i32,
    request: &[u8],
    set: Settings,
    reuse: bool,
) -> Result<DaemonRuns> {
    let mut seq_times = Vec::with_capacity(set.requests);
    let mut conn = if reuse {
        Some(wire::Reused::connect(socket)?)
    } else {
        None
    };
    let seq_started = Instant::now();
    let seq_us = daemon_cpu_us(pid, || {
        for _ in 0..set.requests {
            let t = Instant::now();
            match conn.as_mut() {
                Some(c) => c.cached_read(request)?,
                None => wire::cached_read(socket, request)?,
            }
            seq_times.push(t.elapsed());
        }
        Ok(())
    })?;
    let seq_elapsed = seq_started.elapsed();
    drop(conn);
    let seq = Summary::of(&seq_times).context("no sequential request")?;
    let mut tp: Option<Throughput> = None;
    let own_before = footprint::own_cpu_ms();
    let tp_us = daemon_cpu_us(pid, || {
        tp = Some(footprint::throughput(
            socket,
            set.threads,
            set.requests,
            reuse,
        )?);
        Ok(())
    })?;
    let own_ms = footprint::own_cpu_ms().saturating_sub(own_before);
    let tp = tp.context("no throughput run")?;
    let per_req = |us: u64, n: usize| us as f64 / n.max(1) as f64;
    Ok(DaemonRuns {
        seq_elapsed,
        seq_cpu: per_req(seq_us, set.requests),
        tp_cpu: per_req(tp_us, tp.done),
        rate: tp.done as f64 / tp.elapsed.as_secs_f64().max(1e-9),
        seq,
        tp,
        own_ms,
    })
}

fn daemon_cpu_target(r: &DaemonRuns, how: &str, op_calls: u64) -> Target {
    Target {
        what: format!("daemon CPU per cached read (one thread, {how})"),
        goal: format!("≤ {DAEMON_CPU_GOAL_US:.0} µs"),
        measured: format!("{:.1} µs (threaded run: {:.1} µs)", r.seq_cpu, r.tp_cpu),
        pass: r.seq_cpu <= DAEMON_CPU_GOAL_US && op_calls == 0,
    }
}

fn throughput_target(r: &DaemonRuns, how: &str, threads: usize) -> Target {
    Target {
        what: format!("cached reads per second, {threads} threads, {how}"),
        goal: format!("≥ {THROUGHPUT_GOAL:.0}/s"),
        measured: format!("{:.0}/s ({} errors)", r.rate, r.tp.errors),
        pass: r.rate >= THROUGHPUT_GOAL && r.tp.errors == 0,
    }
}

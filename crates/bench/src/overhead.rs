//! Scenario 1, client overhead: how much slower than `/bin/true` is a whole `op-session status`
//! or a cached `op-session read`, from spawn to exit?
//!
//! The commands are run round-robin in the same loop, each iteration starting at a different
//! one, so drift (frequency scaling, other load on the machine) hits all of them alike. Two
//! more rows explain the figures: `op-session --version` (our process start-up, no socket) and
//! the same status/read requests sent from inside the bench process (the daemon's share, no
//! process start at all).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::report::{Outcome, Section, Table, Target};
use crate::stats::{Summary, fmt_duration, fmt_ratio, ratio};
use crate::wire;
use crate::world::{Bins, World};

/// The cached reference.
const REF: &str = "op://Dev/Stripe/key";
/// Untimed runs of each command before measuring.
const WARMUP: usize = 10;

/// A command to time.
struct Contender {
    name: &'static str,
    command: Command,
}

/// What one run cost: wall time, CPU (user+system) and minor page faults of the child.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    /// Spawn to exit.
    pub wall: Duration,
    /// The child's user+system time.
    pub cpu: Duration,
    /// The child's minor page faults.
    pub faults: u64,
}

fn children_usage() -> Result<(Duration, u64)> {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage")?;
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    Ok((
        tv(u.user_time()) + tv(u.system_time()),
        u.minor_page_faults().max(0) as u64,
    ))
}

/// Spawn, wait, and take the child's share of RUSAGE_CHILDREN (children are waited one at a
/// time, so the difference is this child's).
pub fn time_one(cmd: &mut Command) -> Result<Cost> {
    let (cpu0, faults0) = children_usage()?;
    let started = Instant::now();
    let status = cmd.status().context("spawning")?;
    let wall = started.elapsed();
    let (cpu1, faults1) = children_usage()?;
    if !status.success() {
        bail!("exited with {status}");
    }
    Ok(Cost {
        wall,
        cpu: cpu1.saturating_sub(cpu0),
        faults: faults1.saturating_sub(faults0),
    })
}

/// Run scenario 1 with `runs` measured runs of each command.
pub fn run(bins: &Bins, fixture: &std::path::Path, runs: usize) -> Result<Outcome> {
    let w = World::new(bins, fixture)?;
    w.set_latency(0)?;
    w.init_token("my")?;
    let first = w.run(&["read", REF])?;
    if first.code != 0 || first.stdout.trim().is_empty() {
        bail!("the first read failed: {}", first.stderr.trim());
    }

    let quiet = |mut c: Command| {
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    let mut contenders = vec![
        Contender {
            name: "/bin/true",
            command: quiet(w.command("/bin/true")),
        },
        Contender {
            name: "op-session --version (no socket)",
            command: quiet(w.client(&["--version"])),
        },
        Contender {
            name: "op-session status",
            command: quiet(w.client(&["status"])),
        },
        Contender {
            name: "op-session read (cached)",
            command: quiet(w.client(&["read", REF])),
        },
    ];
    let before = w.counters()?;
    for c in &mut contenders {
        for _ in 0..WARMUP {
            time_one(&mut c.command).with_context(|| c.name)?;
        }
    }
    let k = contenders.len();
    let mut samples: Vec<Vec<Duration>> = (0..k).map(|_| Vec::with_capacity(runs)).collect();
    let mut costs = vec![Cost::default(); k];
    for i in 0..runs {
        for j in 0..k {
            let c = &mut contenders[(i + j) % k];
            let cost = time_one(&mut c.command).with_context(|| c.name)?;
            samples[(i + j) % k].push(cost.wall);
            let total = &mut costs[(i + j) % k];
            total.cpu += cost.cpu;
            total.faults += cost.faults;
        }
    }

    // The daemon's share: the same requests without starting a process.
    let status_req = wire::framed(&op_session_protocol::Request::Status)?;
    let read_req = wire::framed(&wire::read_request(REF))?;
    let mut in_process: Vec<Vec<Duration>> = (0..2).map(|_| Vec::with_capacity(runs)).collect();
    for _ in 0..runs {
        let t = Instant::now();
        wire::status(&w.socket, &status_req)?;
        in_process[0].push(t.elapsed());
        let t = Instant::now();
        wire::cached_read(&w.socket, &read_req)?;
        in_process[1].push(t.elapsed());
    }
    let op_calls = w.counters()?.since(&before);
    w.stop()?;

    let sums: Vec<Summary> = samples
        .iter()
        .map(|s| Summary::of(s).context("no samples"))
        .collect::<Result<_>>()?;
    let base = sums[0].p50.as_secs_f64();
    let status_ratio = ratio(sums[2].p50.as_secs_f64(), base);
    let read_ratio = ratio(sums[3].p50.as_secs_f64(), base);

    let mut table = Table::new(&[
        "command",
        "runs",
        "median",
        "p90",
        "median ÷ /bin/true",
        "target",
        "CPU per run (mean)",
        "page faults per run (mean)",
    ]);
    let targets = ["", "", "≤ 2×", "≤ 2.5×"];
    for (((c, s), goal), cost) in contenders.iter().zip(&sums).zip(targets).zip(&costs) {
        table.row(vec![
            c.name.to_string(),
            s.n.to_string(),
            fmt_duration(s.p50),
            fmt_duration(s.p90),
            fmt_ratio(ratio(s.p50.as_secs_f64(), base)),
            goal.to_string(),
            fmt_duration(cost.cpu / runs as u32),
            format!("{:.0}", cost.faults as f64 / runs as f64),
        ]);
    }
    for (name, s) in [
        "status request, in-process (no exec)",
        "cached read request, in-process (no exec)",
    ]
    .iter()
    .zip(&in_process)
    {
        let s = Summary::of(s).context("no samples")?;
        table.row(vec![
            name.to_string(),
            s.n.to_string(),
            fmt_duration(s.p50),
            fmt_duration(s.p90),
            fmt_ratio(ratio(s.p50.as_secs_f64(), base)),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    let section = Section {
        title: "1. Client overhead".into(),
        intro: format!(
            "Spawn-to-exit time of each command, {runs} measured runs each (after {WARMUP} \
             warm-up runs), interleaved round-robin in one loop with a rotating start so drift \
             affects every command alike. `op` latency is irrelevant here (the read is a cache \
             hit; `op` ran {} times during the timed runs). Every process gets the same \
             environment and `/dev/null` for stdio.",
            op_calls.invocations
        ),
        table,
        notes: vec![
            "The in-process rows send the same request frames over the socket from the bench \
             itself (connect, preamble, frame, response): the daemon's share of a client run. \
             The rest of a client run is process start-up, which `op-session --version` \
             isolates."
                .into(),
            "CPU and page faults are the child's own (user+system time and minor faults from \
             `getrusage(RUSAGE_CHILDREN)` around each wait), averaged over the measured runs."
                .into(),
            "Percentiles are nearest-rank: every figure is a time one real run took.".into(),
        ],
    };
    Ok(Outcome {
        sections: vec![section],
        targets: vec![
            Target {
                what: "`op-session status` vs `/bin/true` (median)".into(),
                goal: "≤ 2×".into(),
                measured: format!(
                    "{} ({} vs {})",
                    fmt_ratio(status_ratio),
                    fmt_duration(sums[2].p50),
                    fmt_duration(sums[0].p50)
                ),
                pass: status_ratio <= 2.0,
            },
            Target {
                what: "cached `op-session read` vs `/bin/true` (median)".into(),
                goal: "≤ 2.5×".into(),
                measured: format!(
                    "{} ({} vs {})",
                    fmt_ratio(read_ratio),
                    fmt_duration(sums[3].p50),
                    fmt_duration(sums[0].p50)
                ),
                pass: read_ratio <= 2.5 && op_calls.invocations == 0,
            },
        ],
    })
}

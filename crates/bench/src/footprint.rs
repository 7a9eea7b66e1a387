//! Scenario 4, throughput and footprint: cached reads per second over the socket, the
//! daemon's resident memory at rest and after load, and what it does while nobody calls.
//!
//! Reads /proc only: `VmRSS` from `status`; CPU time from the process's `stat` (utime+stime,
//! which keeps the time of threads that have exited) and the per-thread `schedstat` (run time
//! in ns, finer than clock ticks); context switches from every thread's `status`. A context
//! switch of a sleeping daemon is a wakeup: a thread went back to sleep.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::report::{Outcome, Section, Table, Target};
use crate::stats::{Summary, fmt_duration, fmt_kib};
use crate::wire;
use crate::world::World;

/// The reference every throughput request reads (warm in the cache).
const REF: &str = "op://Dev/Stripe/key";
/// The throughput run stops here even if requests remain.
const THROUGHPUT_LIMIT: Duration = Duration::from_secs(60);
/// How long the daemon rests before the idle window, so threads of earlier work (tokio's
/// blocking pool keeps idle threads 10 s) have gone.
pub const SETTLE: Duration = Duration::from_secs(12);
/// The session timer wakes the daemon at least this often (lifecycle::expiry_task).
const SESSION_TIMER: Duration = Duration::from_secs(60);
/// Context switches one firing of a 60 s tokio sleep costs an idle daemon: tokio's timer
/// wheel wakes the driver once per wheel level the timer cascades through (an strace of an
/// idle daemon shows `epoll_wait` timing out after 45.2 s, then 2.6 s, then 53 ms), plus the
/// self-wake through its eventfd that hands the task to a worker.
const SWITCHES_PER_TIMER: u64 = 5;

/// `VmRSS` of `pid`, in KiB.
pub fn rss_kib(pid: i32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    crate::machine::proc_field(&status, "VmRSS")
        .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

/// One look at the daemon's threads.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// utime+stime of the whole process (exited threads included), in clock ticks.
    pub cpu_ticks: u64,
    /// Per thread: name, on-CPU ns (schedstat), voluntary and involuntary switches.
    pub threads: BTreeMap<i32, (String, u64, u64, u64)>,
}

fn stat_fields(text: &str) -> Vec<&str> {
    text.rfind(')')
        .map(|i| text[i + 1..].split_whitespace().collect())
        .unwrap_or_default()
}

/// utime+stime in clock ticks from a `/proc/<pid>/stat` line.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let f = stat_fields(stat);
    // Fields 14 and 15 of stat(5); index 0 here is field 3.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Look at `pid` now.
pub fn sample(pid: i32) -> Result<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let mut s = Sample {
        cpu_ticks: cpu_ticks(&stat).context("unreadable stat")?,
        threads: BTreeMap::new(),
    };
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))?.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let dir = entry.path();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let status = read("status");
        let num = |k: &str| {
            crate::machine::proc_field(&status, k)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let run_ns = read("schedstat")
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        s.threads.insert(
            tid,
            (
                read("comm").trim().to_string(),
                run_ns,
                num("voluntary_ctxt_switches"),
                num("nonvoluntary_ctxt_switches"),
            ),
        );
    }
    Ok(s)
}

/// What changed between two samples.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// CPU time from stat, in ms (clock-tick resolution).
    pub cpu_ms: u64,
    /// On-CPU time of the threads alive at the end, in µs (schedstat).
    pub run_us: u64,
    /// Context switches of the threads alive at the end.
    pub switches: u64,
    /// Switches per thread name, busiest first.
    pub by_thread: Vec<(String, u64)>,
    /// Threads that existed at the start but not at the end.
    pub exited: usize,
    /// Threads at the end.
    pub threads: usize,
}

/// `after - before`.
pub fn delta(before: &Sample, after: &Sample, ticks_per_s: u64) -> Delta {
    let mut d = Delta {
        cpu_ms: after.cpu_ticks.saturating_sub(before.cpu_ticks) * 1000 / ticks_per_s.max(1),
        exited: before
            .threads
            .keys()
            .filter(|t| !after.threads.contains_key(t))
            .count(),
        threads: after.threads.len(),
        ..Delta::default()
    };
    let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
    for (tid, (name, run, vol, invol)) in &after.threads {
        let (b_run, b_vol, b_invol) = before
            .threads
            .get(tid)
            .map(|x| (x.1, x.2, x.3))
            .unwrap_or((0, 0, 0));
        let sw = vol.saturating_sub(b_vol) + invol.saturating_sub(b_invol);
        d.run_us += run.saturating_sub(b_run) / 1000;
        d.switches += sw;
        if sw > 0 {
            *by_name.entry(name.clone()).or_default() += sw;
        }
    }
    d.by_thread = by_name.into_iter().collect();
    d.by_thread
        .sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    d
}

/// CPU time (user+system) of the bench process itself so far, in ms.
pub fn own_cpu_ms() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| cpu_ticks(&s))
        .map(|t| t * 1000 / ticks_per_second())
        .unwrap_or(0)
}

pub fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(100)
}

/// Cached reads from `threads` threads until `total` are done (or the time limit).
pub struct Throughput {
    /// Requests answered.
    pub done: usize,
    /// Requests that failed.
    pub errors: usize,
    /// The first failure's text.
    pub first_error: Option<String>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Per-request latency.
    pub latency: Summary,
}

/// Run the cached reads (see [`Throughput`]): each a fresh connection, or with `reuse`, one
/// reused connection per thread.
pub fn throughput(socket: &Path, threads: usize, total: usize, reuse: bool) -> Result<Throughput> {
    let request = wire::framed(&wire::read_request(REF))?;
    wire::cached_read(socket, &request).context("the warm-up read")?;
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let deadline = started + THROUGHPUT_LIMIT;
    let per_thread = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut times = Vec::with_capacity(total / threads + 1);
                    let mut errors = Vec::new();
                    let mut conn = None;
                    while next.fetch_add(1, Ordering::Relaxed) < total && Instant::now() < deadline
                    {
                        let t = Instant::now();
                        let done = if reuse {
                            if conn.is_none() {
                                conn = wire::Reused::connect(socket)
                                    .map_err(|e| errors.push(format!("{e:#}")))
                                    .ok();
                            }
                            match conn.as_mut() {
                                Some(c) => c.cached_read(&request),
                                None => continue,
                            }
                        } else {
                            wire::cached_read(socket, &request)
                        };
                        match done {
                            Ok(()) => times.push(t.elapsed()),
                            Err(e) => {
                                errors.push(format!("{e:#}"));
                                // A connection that failed once is not used again.
                                conn = None;
                            }
                        }
                    }
                    (times, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a reader thread panicked"))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let elapsed = started.elapsed();
    let mut times = Vec::new();
    let mut errors = Vec::new();
    for (t, e) in per_thread {
        times.extend(t);
        errors.extend(e);
    }
    Ok(Throughput {
        done: times.len(),
        errors: errors.len(),
        first_error: errors.into_iter().next(),
        elapsed,
        latency: Summary::of(&times).context("no request succeeded")?,
    })
}

/// Memory figures gathered before this scenario runs.
#[derive(Debug, Clone, Copy)]
pub struct EarlierRss {
    /// Right after the daemon started (no session, no request yet).
    pub after_start: u64,
    /// With one session, before the fan-out.
    pub with_session: u64,
    /// After the fan-out rounds.
    pub after_fanout: u64,
}

/// Settings of this scenario.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Reader threads for the throughput run.
    pub threads: usize,
    /// Requests in the throughput run.
    pub requests: usize,
    /// Length of the idle window.
    pub idle: Duration,
}

/// Run scenario 4 against the daemon `pid` of `w` (one token session held, cache warm).
pub fn run(w: &World, pid: i32, rss: EarlierRss, set: Settings) -> Result<Outcome> {
    eprintln!(
        "  {} cached reads from {} threads…",
        set.requests, set.threads
    );
    let before = w.counters()?;
    let cpu_before = sample(pid)?;
    let own_before = own_cpu_ms();
    let tp = throughput(&w.socket, set.threads, set.requests, false)?;
    let cpu_load = delta(&cpu_before, &sample(pid)?, ticks_per_second());
    let own_cpu = own_cpu_ms().saturating_sub(own_before);
    let op_during_load = w.counters()?.since(&before);
    std::thread::sleep(Duration::from_secs(1));
    let rss_after_load = rss_kib(pid)?;

    eprintln!(
        "  resting {} s, then {} idle seconds…",
        SETTLE.as_secs(),
        set.idle.as_secs()
    );
    std::thread::sleep(SETTLE);
    let before = w.counters()?;
    let s0 = sample(pid)?;
    std::thread::sleep(set.idle);
    let s1 = sample(pid)?;
    let idle = delta(&s0, &s1, ticks_per_second());
    let op_while_idle = w.counters()?.since(&before);
    let rss_idle_end = rss_kib(pid)?;
    let sessions = w.run(&["status", "--json"])?;
    let held = serde_json::from_str::<serde_json::Value>(&sessions.stdout)
        .ok()
        .and_then(|v| v["sessions"].as_array().map(Vec::len))
        .unwrap_or(0);

    let rate = tp.done as f64 / tp.elapsed.as_secs_f64();
    let timer_wakeups = set.idle.as_secs().div_ceil(SESSION_TIMER.as_secs());
    let allowed_switches = SWITCHES_PER_TIMER * timer_wakeups;
    let by_thread = if idle.by_thread.is_empty() {
        "none".to_string()
    } else {
        idle.by_thread
            .iter()
            .map(|(n, c)| format!("{n} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };

    let mut table = Table::new(&["measure", "value", "target"]);
    let mut row = |a: &str, b: String, c: &str| table.row(vec![a.into(), b, c.into()]);
    row(
        "cached reads per second over the socket",
        format!(
            "{rate:.0}/s ({} requests in {}, {} threads, {} errors)",
            tp.done,
            fmt_duration(tp.elapsed),
            set.threads,
            tp.errors
        ),
        "≥ 20,000/s",
    );
    row(
        "per-request latency during it (p50 / p99)",
        format!(
            "{} / {}",
            fmt_duration(tp.latency.p50),
            fmt_duration(tp.latency.p99)
        ),
        "",
    );
    let per_request = |ms: u64| ms as f64 * 1000.0 / tp.done.max(1) as f64;
    row(
        "daemon CPU during it",
        format!(
            "{} ms ({:.0} µs per request); `op` ran {} times",
            cpu_load.cpu_ms,
            per_request(cpu_load.cpu_ms),
            op_during_load.invocations
        ),
        "",
    );
    row(
        "the bench's own CPU during it (the clients)",
        format!("{own_cpu} ms ({:.0} µs per request)", per_request(own_cpu)),
        "",
    );
    row("RSS idle after start", fmt_kib(rss.after_start), "≤ 10 MiB");
    row("RSS with one session", fmt_kib(rss.with_session), "");
    row("RSS after the fan-out", fmt_kib(rss.after_fanout), "");
    row("RSS after the throughput run", fmt_kib(rss_after_load), "");
    row(
        &format!("RSS at the end of {} idle s", set.idle.as_secs()),
        fmt_kib(rss_idle_end),
        "",
    );
    row(
        &format!("CPU time over {} idle s (utime+stime)", set.idle.as_secs()),
        format!(
            "{} ms (on-CPU by schedstat: {} µs)",
            idle.cpu_ms, idle.run_us
        ),
        "",
    );
    row(
        &format!("context switches over {} idle s", set.idle.as_secs()),
        format!(
            "{} ({by_thread}); {} threads, {} exited; `op` ran {} times; {held} session(s) held",
            idle.switches, idle.threads, idle.exited, op_while_idle.invocations
        ),
        &format!("≤ {allowed_switches} (session timer fires ≤ {timer_wakeups}×)"),
    );

    let mut notes = vec![format!(
        "Throughput: {} threads in the bench process each open a connection per request and \
         send the frame `op-session read {REF}` sends (preamble, Resolve, response), as fast \
         as they can, until {} requests are done (stopping at {} s in any case). Every request \
         is a cache hit and writes its audit line, as in normal use.",
        set.threads,
        set.requests,
        THROUGHPUT_LIMIT.as_secs()
    )];
    notes.push(format!(
        "Idle: after the load, the daemon rests {} s (tokio's blocking pool keeps idle \
         threads 10 s), then is watched for {} s with one session held and no client. Its only \
         timer is the session-expiry task, which sleeps until the next deadline but at most \
         {} s (tokio's clock stops during suspend, the deadline clock does not): at most \
         {timer_wakeups} firing(s) in this window. One firing of a 60 s tokio sleep is several \
         wakeups of the driver thread, one per level of tokio's timer wheel the timer cascades \
         through (an strace of an idle daemon shows `epoll_wait` timing out after 45.2 s, then \
         2.6 s, then 53 ms) plus the eventfd self-wake that hands the task to a worker, so the \
         target allows {SWITCHES_PER_TIMER} context switches per firing. Switches are summed \
         over the threads alive at the end, per thread name in parentheses.",
        SETTLE.as_secs(),
        set.idle.as_secs(),
        SESSION_TIMER.as_secs()
    ));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cost_us = per_request(cpu_load.cpu_ms) + per_request(own_cpu);
    if cost_us > 0.0 {
        notes.push(format!(
            "CPU bound: each request cost {:.0} µs of daemon CPU and {:.0} µs of client CPU, so \
             {cpus} CPU(s) can serve at most about {:.0} requests/s with the clients on the same \
             machine, or {:.0}/s if the daemon had every CPU to itself.",
            per_request(cpu_load.cpu_ms),
            per_request(own_cpu),
            cpus as f64 * 1e6 / cost_us,
            cpus as f64 * 1e6 / per_request(cpu_load.cpu_ms).max(1.0)
        ));
    }
    if let Some(e) = &tp.first_error {
        notes.push(format!("Throughput errors: {}, the first: {e}", tp.errors));
    }
    let targets = vec![
        Target {
            what: "cached reads per second over the socket".into(),
            goal: "≥ 20,000/s".into(),
            measured: format!(
                "{rate:.0}/s ({} threads, {} errors)",
                set.threads, tp.errors
            ),
            pass: rate >= 20_000.0 && tp.errors == 0,
        },
        Target {
            what: "daemon RSS idle".into(),
            goal: "≤ 10 MiB".into(),
            measured: format!(
                "{} after start; {} idle after all scenarios",
                fmt_kib(rss.after_start),
                fmt_kib(rss_idle_end)
            ),
            pass: rss.after_start <= 10 * 1024,
        },
        Target {
            what: format!(
                "wakeups over {} idle s with one session",
                set.idle.as_secs()
            ),
            goal: "none beyond the session timer".into(),
            measured: format!(
                "{} context switches, {} ms CPU, `op` ran {} times",
                idle.switches, idle.cpu_ms, op_while_idle.invocations
            ),
            pass: idle.switches <= allowed_switches && op_while_idle.invocations == 0,
        },
    ];
    Ok(Outcome {
        sections: vec![Section {
            title: "4. Throughput and footprint".into(),
            intro: "The daemon of the fan-out scenario, holding one token session.".into(),
            table,
            notes,
        }],
        targets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_survive_a_process_name_with_spaces_and_parens() {
        let stat = "42 (tokio (rt) w) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 4 0 1";
        assert_eq!(cpu_ticks(stat), Some(10));
    }

    #[test]
    fn idle_deltas_count_only_threads_alive_at_the_end() {
        let mut before = Sample::default();
        before.threads.insert(1, ("main".into(), 1_000, 5, 1));
        before.threads.insert(2, ("blocking".into(), 0, 9, 0));
        let mut after = Sample {
            cpu_ticks: 3,
            ..Sample::default()
        };
        after.threads.insert(1, ("main".into(), 51_000, 7, 1));
        after.threads.insert(3, ("worker".into(), 2_000, 1, 0));
        let d = delta(&before, &after, 100);
        assert_eq!(d.cpu_ms, 30);
        assert_eq!(d.run_us, 52);
        assert_eq!(d.switches, 3);
        assert_eq!(d.exited, 1);
        assert_eq!(d.by_thread, vec![("main".into(), 2), ("worker".into(), 1)]);
    }
}

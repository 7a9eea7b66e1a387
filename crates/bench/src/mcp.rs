//! Scenario 5 (issue 12): `op-session mcp` over stdio: per-call latency of `status` and of a
//! cached `check_reference`, and the server process's RSS while idle.
//!
//! Speaks newline-delimited JSON-RPC to the real release binary from this process (no MCP
//! library in the loop, so the figures are the server's plus the daemon's time, not a
//! client's), one request at a time, each timed from the first byte written to the last
//! byte of the response line read.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::footprint::rss_kib;
use crate::report::{Outcome, Section, Table, Target};
use crate::stats::{Summary, fmt_duration, fmt_kib};
use crate::world::World;

/// A running `op-session mcp` on pipes.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(w: &World) -> Result<Server> {
        let mut child = w
            .client(&["mcp"])
            .env("OPSESSION_MCP", &w.bins.mcp)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting op-session mcp")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut s = Server {
            child,
            stdin,
            stdout,
            next_id: 1,
        };
        let init = s.request(
            "initialize",
            serde_json::json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "op-session-bench", "version": "1"},
            }),
        )?;
        if !init.contains("serverInfo") {
            bail!("op-session mcp did not initialize: {init}");
        }
        s.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)?;
        Ok(s)
    }

    fn send(&mut self, line: &str) -> Result<()> {
        self.stdin.write_all(line.as_bytes())?;
        self.stdin.write_all(b"\n")?;
        self.stdin.flush()?;
        Ok(())
    }

    /// One request; returns its response line.
    fn request(&mut self, method: &str, params: serde_json::Value) -> Result<String> {
        let id = self.next_id;
        self.next_id += 1;
        let req =
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send(&req.to_string())?;
        let want = format!("\"id\":{id}");
        loop {
            let mut line = String::new();
            if self.stdout.read_line(&mut line)? == 0 {
                bail!("op-session mcp closed its stdout");
            }
            if line.contains(&want) {
                return Ok(line);
            }
        }
    }

    /// Time `runs` calls of one tool (after `warmup` untimed ones).
    fn time_tool(
        &mut self,
        tool: &str,
        args: serde_json::Value,
        warmup: usize,
        runs: usize,
    ) -> Result<Summary> {
        let params = serde_json::json!({"name": tool, "arguments": args});
        for _ in 0..warmup {
            self.request("tools/call", params.clone())?;
        }
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let line = self.request("tools/call", params.clone())?;
            samples.push(t.elapsed());
            if line.contains("\"isError\":true") {
                bail!("{tool} failed: {line}");
            }
        }
        Summary::of(&samples).context("no samples")
    }
}

/// Run the scenario: a daemon with a token session, one `op-session mcp` on pipes.
pub fn run(w: &World, runs: usize) -> Result<Outcome> {
    w.start_daemon()?;
    w.init_token("my")?;
    let mut s = Server::start(w)?;
    let pid = s.child.id() as i32;
    std::thread::sleep(Duration::from_secs(1));
    let rss_started = rss_kib(pid)?;
    let status = s.time_tool("status", serde_json::json!({}), 10, runs)?;
    let check = s.time_tool(
        "check_reference",
        serde_json::json!({"reference": "op://Dev/Stripe/key"}),
        10,
        runs,
    )?;
    let calls_before_idle = w.calls().len();
    std::thread::sleep(Duration::from_secs(5));
    let rss_idle = rss_kib(pid)?;
    let mut table = Table::new(&["what", "runs", "median", "p90", "p99", "max"]);
    for (name, sum) in [
        ("`status` over stdio", status),
        ("cached `check_reference` over stdio", check),
    ] {
        table.row(vec![
            name.into(),
            sum.n.to_string(),
            fmt_duration(sum.p50),
            fmt_duration(sum.p90),
            fmt_duration(sum.p99),
            fmt_duration(sum.max),
        ]);
    }
    let section = Section {
        title: "5. MCP over stdio".into(),
        intro: format!(
            "One `op-session mcp` process on pipes, driven with newline-delimited JSON-RPC from \
             the bench (no MCP library in the loop), one request at a time; each call is timed \
             from the first byte written to the end of its response line. {runs} measured calls \
             per tool after 10 warm-up calls; `check_reference` resolves from the daemon's cache \
             (`op` ran {} times in the whole scenario: the sign-in, and the first check's \
             resolution and field-type lookup).",
            calls_before_idle
        ),
        table,
        notes: vec![
            format!(
                "RSS (`VmRSS`) of the `op-session mcp` process: {} one second after start, {} \
                 after idling 5 s following the {} calls.",
                fmt_kib(rss_started),
                fmt_kib(rss_idle),
                2 * (runs + 10)
            ),
            "`op-session mcp` execs `op-session-mcp`, a separate binary with a single-threaded \
             tokio runtime; the synchronous `op-session` client links none of it, so its \
             start-up (section 1) moves only by the `mcp` subcommand in its command line (a \
             few percent; see docs/MCP.md)."
                .into(),
        ],
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    Ok(Outcome {
        sections: vec![section],
        targets: vec![
            Target {
                what: "MCP `status` over stdio (median)".into(),
                goal: "≤ 2 ms".into(),
                measured: fmt_duration(status.p50),
                pass: status.p50 <= Duration::from_millis(2),
            },
            Target {
                what: "MCP cached `check_reference` over stdio (median)".into(),
                goal: "≤ 2 ms".into(),
                measured: fmt_duration(check.p50),
                pass: check.p50 <= Duration::from_millis(2),
            },
            Target {
                what: "`op-session mcp` RSS while idle".into(),
                goal: "≤ 15 MiB".into(),
                measured: format!("{:.2} MiB", mib(rss_idle)),
                pass: mib(rss_idle) <= 15.0,
            },
        ],
    })
}

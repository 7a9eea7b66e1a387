//! `op-session audit`: read the daemon's audit log (the user's own file; no daemon needed).
//! Each line is an [`AuditRecord`], the type the daemon writes.

use std::io::{BufRead, Seek, SeekFrom};
use std::time::Duration;

use op_session_protocol::{AuditRecord, exit};

use crate::error::{Failure, Result};

fn line_of(r: &AuditRecord) -> String {
    let exe = r
        .peer_exe
        .as_deref()
        .and_then(|e| e.rsplit('/').next())
        .unwrap_or("-");
    // Requests relayed by `op-session mcp` say so, with the MCP client's name and any reveal.
    let mut via = match (&r.via, &r.client_name) {
        (Some(channel), Some(name)) => format!("  [via {channel}: {name}]"),
        (Some(channel), None) => format!("  [via {channel}]"),
        (None, _) => String::new(),
    };
    if r.reveal {
        via.push_str(" [value revealed]");
    }
    // How a person answered a [confirm] prompt.
    if let Some(c) = &r.confirm {
        via.push_str(&format!("  [confirm {} via {}]", c.decision, c.channel));
    }
    format!(
        "{}  pid {:<7} {:<12} {:<10} {:<18} {:<5} {:<16} {}ms {}{}{via}",
        r.time,
        r.peer_pid
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into()),
        exe,
        r.account.as_deref().unwrap_or("-"),
        r.verb,
        r.decision.as_str(),
        r.outcome,
        r.duration_ms,
        if r.negative_cache {
            "remembered-miss "
        } else if r.cache_hits > 0 {
            "cache "
        } else {
            ""
        },
        r.references.join(" ")
    )
}

fn print(line: &str, json: bool) {
    if json {
        outln!("{line}");
    } else if let Ok(r) = serde_json::from_str::<AuditRecord>(line) {
        outln!("{}", line_of(&r));
    }
}

/// `audit [-n N] [--json] [--follow]`.
pub fn audit(lines: usize, json: bool, follow: bool) -> Result<i32> {
    let path = op_session_paths::audit_path()
        .map_err(|e| Failure::new(exit::FAILED, e.to_string(), "set HOME or XDG_STATE_HOME"))?;
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !follow => {
            outln!("no audit records yet ({})", path.display());
            return Ok(exit::OK);
        }
        Err(e) => {
            return Err(Failure::new(
                exit::FAILED,
                format!("cannot read {}: {e}", path.display()),
                "check the file",
            ));
        }
    };
    let mut reader = std::io::BufReader::new(file);
    let all: Vec<String> = (&mut reader).lines().map_while(|l| l.ok()).collect();
    for l in &all[all.len().saturating_sub(lines)..] {
        print(l, json);
    }
    if !follow {
        return Ok(exit::OK);
    }
    let mut pos = reader.stream_position().unwrap_or(0);
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let Ok(mut f) = std::fs::File::open(&path) else {
            continue;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < pos {
            pos = 0; // rotated or truncated
        }
        if len == pos || f.seek(SeekFrom::Start(pos)).is_err() {
            continue;
        }
        let mut r = std::io::BufReader::new(f);
        let mut line = String::new();
        while let Ok(n) = r.read_line(&mut line) {
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            pos += n as u64;
            print(line.trim_end(), json);
            line.clear();
        }
    }
}

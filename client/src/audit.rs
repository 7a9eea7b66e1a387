//! `op-session audit`: read the daemon's audit log (the user's own file; no daemon needed).

use std::io::{BufRead, Seek, SeekFrom};
use std::time::Duration;

use op_session_protocol::exit;

use crate::error::{Failure, Result};

fn line_of(v: &serde_json::Value) -> String {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("-").to_string();
    let n = |k: &str| v.get(k).and_then(|x| x.as_i64());
    let refs = v
        .get("references")
        .and_then(|r| r.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let exe = s("peer_exe");
    let exe = exe.rsplit('/').next().unwrap_or("-").to_string();
    // Requests relayed by `op-session mcp` say so, with the MCP client's name and any reveal.
    let mut via = match v.get("via").and_then(|x| x.as_str()) {
        Some(channel) => match v.get("client_name").and_then(|x| x.as_str()) {
            Some(name) => format!("  [via {channel}: {name}]"),
            None => format!("  [via {channel}]"),
        },
        None => String::new(),
    };
    if v.get("reveal").and_then(|x| x.as_bool()) == Some(true) {
        via.push_str(" [value revealed]");
    }
    format!(
        "{}  pid {:<7} {:<12} {:<10} {:<18} {:<5} {:<16} {}ms {}{}{via}",
        s("time"),
        n("peer_pid")
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into()),
        exe,
        s("account"),
        s("verb"),
        s("decision"),
        s("outcome"),
        n("duration_ms").unwrap_or(0),
        if n("cache_hits").unwrap_or(0) > 0 {
            "cache "
        } else {
            ""
        },
        refs
    )
}

fn print(line: &str, json: bool) {
    if json {
        println!("{line}");
    } else if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        println!("{}", line_of(&v));
    }
}

/// `audit [-n N] [--json] [--follow]`.
pub fn audit(lines: usize, json: bool, follow: bool) -> Result<i32> {
    let path = op_session_paths::audit_path()
        .map_err(|e| Failure::new(exit::FAILED, e.to_string(), "set HOME or XDG_STATE_HOME"))?;
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !follow => {
            println!("no audit records yet ({})", path.display());
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

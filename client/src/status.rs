//! `op-session status` and `op-session stop`.

use op_session_protocol::human::duration as dur;
use op_session_protocol::{Request, Response, SessionStatus, StatusReport, exit};

use crate::conn::{Target, request};
use crate::error::{Failure, Reach, Result};

fn unexpected(r: &Response) -> Failure {
    Failure::new(
        exit::PROTOCOL,
        format!("unexpected answer from op-sessiond: {r:?}"),
        "restart the daemon: op-session stop",
    )
}

/// `status [--json]`.
pub fn status(t: &Target, json: bool) -> Result<i32> {
    match request(t, &Request::Status)? {
        Response::Status(s) => {
            if json {
                let text = serde_json::to_string_pretty(&s)
                    .map_err(|e| Failure::new(exit::FAILED, e.to_string(), "report this bug"))?;
                outln!("{text}");
            } else {
                crate::batched(|| print_status(&s));
            }
            Ok(exit::OK)
        }
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected(&other)),
    }
}

fn mark(b: bool) -> &'static str {
    if b { "yes" } else { "NO" }
}

fn print_status(s: &StatusReport) {
    outln!(
        "op-sessiond {} (protocol {}), pid {}, up {}, started by {}",
        s.version,
        s.protocol,
        s.pid,
        dur(s.uptime_s),
        s.started_by
    );
    outln!("socket:  {}", s.socket);
    outln!(
        "op:      {}",
        s.op_path
            .as_deref()
            .unwrap_or("not found (set op_path in the config)")
    );
    let p = &s.protections;
    outln!(
        "protections: ptrace/core dumps disabled: {}, core limit 0: {}, secret memory locked: {}, stray fds closed: {}, signals reset: {}, socket dir verified: {}, peer uid checked: {}",
        mark(p.ptrace_disabled),
        mark(p.core_dumps_disabled),
        mark(p.secret_memory_locked),
        mark(p.stray_fds_closed),
        mark(p.signals_reset),
        mark(p.socket_dir_verified),
        mark(p.peer_uid_checked)
    );
    if let Some(p) = &s.presence {
        print_presence(p);
    }
    if let Some(c) = &s.confirm {
        print_confirm(c);
    }
    if s.sessions.is_empty() {
        outln!("sessions: none (run `op-session init` in a terminal to start one)");
        return;
    }
    outln!("sessions:");
    for sess in &s.sessions {
        print_session(sess);
    }
}

/// Which references a person confirms, and how they would be asked.
fn print_confirm(c: &op_session_protocol::ConfirmStatus) {
    let mut rules: Vec<String> = c.refs.clone();
    rules.extend(c.vaults.iter().map(|v| format!("vault {v}")));
    let channel = match (c.channel.as_str(), &c.askpass) {
        ("askpass", Some(p)) => format!("askpass {p}"),
        ("none", _) => "none (matching requests fail; set askpass under [confirm])".into(),
        (other, _) => other.to_string(),
    };
    outln!(
        "confirm: {}; asked with {channel}; timeout {}; remembered {}; {} prompt(s) open, {} approval(s) remembered",
        rules.join(", "),
        dur(c.timeout_s),
        if c.remember_s == 0 {
            "never".to_string()
        } else {
            dur(c.remember_s)
        },
        c.prompts_open,
        c.approvals
    );
}

/// What ends sessions when the person walks away, and what is watched.
fn print_presence(p: &op_session_protocol::PresenceStatus) {
    let names = |v: &[op_session_protocol::PresenceEvent]| {
        v.iter()
            .map(|e| e.as_str().replace('_', " "))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let modes = |v: &[op_session_protocol::Mode]| match v {
        [] => "nothing".to_string(),
        v => v.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", "),
    };
    if p.watching.is_empty() {
        outln!("presence: nothing watched");
    } else {
        outln!(
            "presence: watching {}{}; sleep ends {}; screen lock ends {}",
            names(&p.watching),
            if p.sleep_inhibitor {
                " (holding a sleep-delay inhibitor)"
            } else {
                ""
            },
            modes(&p.ends_on_sleep),
            modes(&p.ends_on_screen_lock)
        );
    }
    for note in &p.notes {
        outln!("  {note}");
    }
}

/// One line (or two) per session.
pub fn print_session(s: &SessionStatus) {
    let who = s.email.as_deref().unwrap_or("-");
    let url = s.url.as_deref().unwrap_or("-");
    outln!(
        "  {}{}  mode {}  {}  {}",
        s.account,
        if s.default { " (default)" } else { "" },
        s.mode,
        who,
        url
    );
    let idle = s
        .idle_remaining_s
        .map(|i| format!("idle {} left", dur(i)))
        .unwrap_or_else(|| "no idle limit".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    outln!(
        "    signed in {} ago, {idle}, hard limit {} left, last use {} ago, keepalive {}, {} cached",
        dur(now.saturating_sub(s.signed_in_at)),
        dur(s.hard_remaining_s),
        dur(s.last_use_s_ago),
        if s.keepalive { "on" } else { "off" },
        s.cache_entries
    );
    if let Some(c) = &s.connect {
        outln!(
            "    Connect server {}: {} {}",
            c.host,
            c.name.as_deref().unwrap_or("(unnamed)"),
            c.version.as_deref().unwrap_or("(version unknown)")
        );
    }
    if let Some(q) = &s.quota {
        outln!("    {}", quota_line(q));
    }
}

/// The request budget in one line: `quota: reads 12/1000 this hour, writes 0/100 this
/// hour, 40/5000 today; 429: retry in 58m; 90% of a limit is used`.
pub fn quota_line(q: &op_session_protocol::QuotaStatus) -> String {
    let window = |w: &op_session_protocol::QuotaWindow| match w.limit {
        0 => format!("{} (no limit)", w.used),
        l => format!("{}/{l}", w.used),
    };
    let mut parts = Vec::new();
    if let Some(w) = &q.reads_per_hour {
        parts.push(format!("reads {} this hour", window(w)));
    }
    if let Some(w) = &q.writes_per_hour {
        parts.push(format!("writes {} this hour", window(w)));
    }
    if let Some(w) = &q.per_day {
        parts.push(format!("{} today", window(w)));
    }
    let mut line = format!("quota: {}", parts.join(", "));
    if parts.is_empty() {
        line = "quota:".into();
    }
    if let Some(s) = q.retry_after_s {
        line.push_str(&format!("; rate-limited (429): retry in {}", dur(s)));
    }
    if let Some(w) = &q.warning {
        line.push_str(&format!("; {w}"));
    }
    line
}

/// Send a request that answers `Done`, without auto-starting a daemon just for it; when no
/// daemon runs, print `when_not_running` and succeed (there is nothing to stop or lock).
fn done_request(t: &Target, req: &Request, when_not_running: &str) -> Result<i32> {
    answered(t, req, when_not_running).map(|_| exit::OK)
}

/// Send a request answered by `Done` without starting a daemon, and say how far it got. When
/// no daemon answered, or one dropped the connection unanswered (it is stopping), print
/// `when_not_running`. A socket we refuse to use (its directory is not private) is an error,
/// not "not running": a daemon may well be serving there.
fn answered(t: &Target, req: &Request, when_not_running: &str) -> Result<Reach> {
    let t = Target {
        autostart_allowed: false,
        ..t.clone()
    };
    match request(&t, req) {
        Ok(Response::Done { message }) => {
            outln!("{message}");
            Ok(Reach::Other)
        }
        Ok(Response::Error(e)) => Err(e.into()),
        Ok(other) => Err(unexpected(&other)),
        Err(f) if f.reach != Reach::Other => {
            outln!("{when_not_running}");
            Ok(f.reach)
        }
        Err(f) => Err(f),
    }
}

/// How long `stop` waits for the daemon to exit: its shutdown signs sessions out within the
/// op timeout (60 s by default) plus a second; `systemctl stop` waits 90 s.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(90);

/// Whether `pid` is still running (a zombie has exited).
fn alive(pid: i32) -> bool {
    let running = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| s[i + 1..].trim_start().starts_with('Z'))
        })
        .unwrap_or(false);
    running && !zombie
}

/// `stop`: ask the daemon to stop, then wait (bounded) until it has exited and released its
/// lock, so an `op-sessiond` started right after does not find it "already running".
pub fn stop(t: &Target) -> Result<i32> {
    let pid: Option<i32> = std::fs::read_to_string(op_session_paths::lock_path(&t.socket))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|p| *p > 1);
    // Wait for a daemon that was asked to stop, or was stopping already; never for one this
    // client could not ask.
    let reach = answered(t, &Request::Stop, "op-sessiond is not running")?;
    if let Some(pid) = pid.filter(|_| reach != Reach::Absent) {
        let end = std::time::Instant::now() + STOP_WAIT;
        while alive(pid) {
            if std::time::Instant::now() >= end {
                return Err(Failure::new(
                    exit::UNAVAILABLE,
                    format!(
                        "op-sessiond (pid {pid}) did not exit within {}s",
                        STOP_WAIT.as_secs()
                    ),
                    format!("check what it is waiting for, or kill {pid}"),
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    Ok(exit::OK)
}

/// `lock`.
pub fn lock(t: &Target, account: Option<String>, all: bool) -> Result<i32> {
    let account = crate::cli::account_or_env(account);
    let req = Request::Lock(op_session_protocol::LockRequest { account, all });
    done_request(t, &req, "op-sessiond is not running; no sessions are held")
}

/// For other modules.
pub fn unexpected_response(r: &Response) -> Failure {
    unexpected(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use op_session_protocol::{QuotaStatus, QuotaWindow};

    #[test]
    fn the_quota_is_one_line() {
        let w = |used, limit| QuotaWindow {
            used,
            limit,
            left: (limit > 0).then(|| limit - used),
        };
        let q = QuotaStatus {
            reads_per_hour: Some(w(950, 1000)),
            writes_per_hour: Some(w(0, 100)),
            per_day: Some(w(12, 0)),
            retry_after_s: Some(58 * 60),
            warning: Some("90% of a limit is used".into()),
        };
        let line = quota_line(&q);
        assert!(!line.contains('\n'));
        assert!(
            line.starts_with(
                "quota: reads 950/1000 this hour, writes 0/100 this hour, 12 (no limit) today"
            ),
            "{line}"
        );
        assert!(line.contains("retry in"), "{line}");
        assert!(line.ends_with("90% of a limit is used"), "{line}");
    }
}

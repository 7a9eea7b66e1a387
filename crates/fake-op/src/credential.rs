//! The "session credential" an app-integration authorization belongs to.
//!
//! 1Password authorizes a terminal session: every `op` in one terminal (sub-shells included)
//! shares one approval. Without a terminal we use the parent process instead, identified by
//! pid and start time (so a recycled pid is a new credential). Consequences the tests rely on:
//! an agent that runs each `op` from a fresh `sh -c` gets a new parent each time and prompts
//! each time; one long-lived process (the daemon) prompts once.
//!
//! Derivation, first match wins:
//! 1. `FAKE_OP_SESSION_CREDENTIAL` if set (an explicit override for tests that need one);
//! 2. `tty:<tty_nr>` from `/proc/self/stat` when the process has a controlling terminal;
//! 3. `tty:<path>` of stdin when it is a terminal (systems without `/proc`);
//! 4. `ppid:<ppid>:<start time>` from `/proc/<ppid>/stat` (field 22), or `ppid:<ppid>`.

use std::io::IsTerminal;

/// Overrides the derivation (documented in the README).
pub const ENV_OVERRIDE: &str = "FAKE_OP_SESSION_CREDENTIAL";

/// The fields after the `(comm)` of a `/proc/<pid>/stat` line; index 0 is field 3 (state).
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// This invocation's session credential.
pub fn current() -> String {
    if let Some(v) = std::env::var_os(ENV_OVERRIDE).filter(|v| !v.is_empty()) {
        return format!("override:{}", v.to_string_lossy());
    }
    if let Some(tty_nr) = stat_fields("self").and_then(|f| f.get(4).cloned())
        && tty_nr != "0"
    {
        return format!("tty:{tty_nr}");
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal()
        && let Ok(path) = nix::unistd::ttyname(&stdin)
    {
        return format!("tty:{}", path.display());
    }
    let ppid = std::os::unix::process::parent_id();
    match stat_fields(&ppid.to_string()).and_then(|f| f.get(19).cloned()) {
        Some(start) => format!("ppid:{ppid}:{start}"),
        None => format!("ppid:{ppid}"),
    }
}

//! The exit codes of `op-session`, chosen from sysexits(3) so agents and scripts can branch on
//! them without parsing text.

/// Success.
pub const OK: i32 = 0;
/// `op` (or the command run under `op-session run`) failed; its own message was shown.
pub const FAILED: i32 = 1;
/// The command line was wrong (EX_USAGE).
pub const USAGE: i32 = 64;
/// The daemon could not be reached or started (EX_UNAVAILABLE).
pub const UNAVAILABLE: i32 = 69;
/// Rate limited or busy: retry later (EX_TEMPFAIL).
pub const RETRY_LATER: i32 = 75;
/// The daemon speaks another protocol version (EX_PROTOCOL).
pub const PROTOCOL: i32 = 76;
/// A person must act: sign in, unlock the app, approve a prompt (EX_NOPERM).
pub const PERSON_MUST_ACT: i32 = 77;
/// Denied by policy, or the configuration is wrong (EX_CONFIG).
pub const CONFIG: i32 = 78;

/// The status a shell would report for a finished child: its exit code, or 128+N when signal
/// N killed it (`op run`, `op-session run` and MCP's `run` all pass this on). `None` only for a
/// status with neither (a stopped child), where each caller picks its own answer.
pub fn child_status(status: std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => Some(c),
        (None, Some(s)) => Some(128 + s),
        (None, None) => None,
    }
}

//! The call log: one JSON line per invocation in `$FAKE_OP_HOME/calls.jsonl`.
//!
//! Records what a test needs to prove how `op` was used: argv, the names (never the values) of
//! the environment variables it saw, pid, ppid, session credential, command, exit code,
//! duration, and `secret_in_argv`, true when argv contained a live session token, a
//! service-account token, an account password or a stored secret value. Lines are appended
//! with one `O_APPEND` write each, so concurrent invocations never interleave.

use std::collections::BTreeMap;
use std::path::Path;

use crate::state::State;
use crate::{clock, store};

/// Secret values shorter than this are ignored by `secret_in_argv` (a one-character secret
/// would "appear" in every argv).
const MIN_SECRET_LEN: usize = 4;

/// True when any argument contains a token or stored secret.
pub fn secret_in_argv(argv: &[String], state: &State, env: &BTreeMap<String, String>) -> bool {
    let mut secrets: Vec<&str> = Vec::new();
    secrets.extend(state.sessions.iter().map(|s| s.token.as_str()));
    secrets.extend(state.service_accounts.iter().map(|s| s.token.as_str()));
    if let Some(t) = env.get("OP_SERVICE_ACCOUNT_TOKEN") {
        secrets.push(t);
    }
    for account in &state.accounts {
        secrets.push(&account.password);
        for vault in &account.vaults {
            for item in &vault.items {
                secrets.extend(
                    item.fields
                        .iter()
                        .filter(|f| f.kind == "CONCEALED" || f.kind == "OTP")
                        .filter_map(|f| f.value.as_deref()),
                );
            }
        }
    }
    argv.iter().skip(1).any(|arg| {
        secrets
            .iter()
            .any(|s| s.len() >= MIN_SECRET_LEN && arg.contains(s))
    })
}

/// One call-log line's contents.
pub struct Entry<'a> {
    /// Home directory (where the log lives).
    pub home: &'a Path,
    /// Simulated time of the call.
    pub now: i64,
    /// Full argv, argv[0] included.
    pub argv: &'a [String],
    /// The environment; only names are logged.
    pub env: &'a BTreeMap<String, String>,
    /// Session credential.
    pub credential: &'a str,
    /// Command path.
    pub command: &'a str,
    /// Exit code.
    pub exit_code: i32,
    /// Wall-clock duration.
    pub duration_ms: u64,
    /// See `secret_in_argv`.
    pub secret_in_argv: bool,
}

/// Append the entry; a failure to log never changes the exit code.
pub fn record(e: &Entry<'_>) {
    let line = serde_json::json!({
        "time": clock::rfc3339(e.now),
        "argv": e.argv,
        "env": e.env.keys().collect::<Vec<_>>(),
        "pid": std::process::id(),
        "cwd": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
        "ppid": std::os::unix::process::parent_id(),
        "credential": e.credential,
        "command": e.command,
        "exit_code": e.exit_code,
        "duration_ms": e.duration_ms,
        "secret_in_argv": e.secret_in_argv,
    });
    let _ = store::append_line(&store::calls_path(e.home), &line.to_string());
}

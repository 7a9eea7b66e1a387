//! What `status` reports: the daemon, its protections and each held session, and who started
//! the daemon ([`StartedBy`], also named in a version mismatch). The JSON form is stable: keys
//! are only ever added, so `op-session status --json` can be scripted against.

use serde::{Deserialize, Serialize};

use crate::message::Mode;

/// Who started the daemon. Serialized as `manual`, `autostart`, `systemd`, `launchd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartedBy {
    /// A person ran `op-sessiond` (the flag's default).
    Manual,
    /// `op-session` started it because nothing answered; such a daemon may be restarted by a
    /// client of another version.
    Autostart,
    /// systemd socket activation.
    Systemd,
    /// launchd socket activation.
    Launchd,
}

impl StartedBy {
    /// The name in status, logs and the `--started-by` flag.
    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }
}

impl std::fmt::Display for StartedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for StartedBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            StartedBy::Manual,
            StartedBy::Autostart,
            StartedBy::Systemd,
            StartedBy::Launchd,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
        .ok_or_else(|| format!("{s:?} is not one of manual, autostart, systemd, launchd"))
    }
}

/// The daemon's report. The JSON form is stable: keys are only ever added.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    /// Daemon package version.
    pub version: String,
    /// Protocol version.
    pub protocol: u32,
    /// Daemon pid.
    pub pid: u32,
    /// Seconds since the daemon started.
    pub uptime_s: u64,
    /// The socket it serves.
    pub socket: String,
    /// How it was started.
    pub started_by: StartedBy,
    /// Which protections took hold.
    pub protections: Protections,
    /// The `op` binary in use, if one was found.
    #[serde(default)]
    pub op_path: Option<String>,
    /// The default account, if any.
    #[serde(default)]
    pub default_account: Option<String>,
    /// Held sessions.
    pub sessions: Vec<SessionStatus>,
    /// The config file this daemon read at start (absent from daemons that predate it): doctor
    /// compares it with the file the next start would read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_path: Option<String>,
    /// What the presence watcher sees (absent from daemons that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<crate::presence::PresenceStatus>,
    /// `[confirm]`: the rules, the channel a prompt would use, prompts open (absent when no
    /// rule is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<crate::confirm::ConfirmStatus>,
}

/// Process protections and whether each took hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protections {
    /// PR_SET_DUMPABLE 0 (no ptrace by same-uid processes, no core dumps) took hold.
    pub ptrace_disabled: bool,
    /// RLIMIT_CORE is 0.
    pub core_dumps_disabled: bool,
    /// Secret pages are locked in memory (mlock); false when the memlock limit refused.
    pub secret_memory_locked: bool,
    /// Inherited file descriptors beyond stdio (and activation sockets) were closed.
    pub stray_fds_closed: bool,
    /// Signal dispositions and mask were reset to defaults.
    pub signals_reset: bool,
    /// Every connection's peer uid is checked (always true; reported for completeness).
    pub peer_uid_checked: bool,
    /// The socket directory was verified as ours and 0700.
    pub socket_dir_verified: bool,
}

/// One held session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionStatus {
    /// The account name as given at init (or the shorthand `op` reported).
    pub account: String,
    /// How it authenticates.
    pub mode: Mode,
    /// Whether this is the default account.
    #[serde(default)]
    pub default: bool,
    /// Email of the signed-in user (absent for service accounts).
    #[serde(default)]
    pub email: Option<String>,
    /// Sign-in address.
    #[serde(default)]
    pub url: Option<String>,
    /// User UUID.
    #[serde(default)]
    pub user_uuid: Option<String>,
    /// Account UUID.
    #[serde(default)]
    pub account_uuid: Option<String>,
    /// Unix time of sign-in.
    pub signed_in_at: u64,
    /// Seconds since the last successful `op` call.
    pub last_use_s_ago: u64,
    /// Seconds until the idle limit (`None` when no idle limit applies).
    pub idle_remaining_s: Option<u64>,
    /// Seconds until the hard limit.
    pub hard_remaining_s: u64,
    /// Whether keepalive refreshes the server session while clients are active.
    pub keepalive: bool,
    /// Number of cached values.
    pub cache_entries: usize,
    /// Connect mode: the server and what its `/health` reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<ConnectServer>,
    /// The request budget (service-account and connect sessions), or the wait a 429 imposed
    /// (any mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaStatus>,
}

/// A session's request budget: each sliding window, and the retry time of a 429.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaStatus {
    /// Reads in the last hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads_per_hour: Option<QuotaWindow>,
    /// Writes in the last hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes_per_hour: Option<QuotaWindow>,
    /// Reads and writes in the last day (`[quota] reads_per_day`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_day: Option<QuotaWindow>,
    /// Seconds until a 429 from 1Password or Connect lets calls through again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// Set when a window has used 90% of its limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// One window of a budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaWindow {
    /// Requests counted in the window.
    pub used: u64,
    /// The limit (`0`: none).
    pub limit: u64,
    /// What is left (absent when there is no limit).
    #[serde(default)]
    pub left: Option<u64>,
}

/// A Connect server a session talks to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectServer {
    /// The base URL given at init.
    pub host: String,
    /// The server's name, from `/health`.
    #[serde(default)]
    pub name: Option<String>,
    /// The server's version, from `/health`.
    #[serde(default)]
    pub version: Option<String>,
}

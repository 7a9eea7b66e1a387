//! Scoped grants on the wire: a second socket with a narrower scope and a shorter life, for a
//! sub-agent, a container or a remote machine (the lesson of ssh-agent's destination
//! constraints: forwarding the whole agent hands over everything).

use serde::{Deserialize, Serialize};

/// Create a grant.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct GrantRequest {
    /// Its name: letters, digits, `-`, `_`, `.`; at most 64.
    pub name: String,
    /// The account whose session it draws on; `None` means the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Vaults (names or IDs) it may read from; empty means every vault the policy allows.
    #[serde(default)]
    pub vaults: Vec<String>,
    /// The only references it may resolve; empty means any in its vaults.
    #[serde(default)]
    pub refs: Vec<String>,
    /// `op` verbs it may use (`read`, `run`, `inject`, `item get` …); empty means `read`,
    /// `run` and `inject`. A passthrough needs its verb named here.
    #[serde(default)]
    pub allow: Vec<String>,
    /// How long it lives (`"1h"`); `None` means one hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// How many values it may hand out before it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_reads: Option<u64>,
    /// Refuse every passthrough, whatever `allow` says.
    #[serde(default)]
    pub no_passthrough: bool,
    /// Every value handed out through it waits for a person's confirmation (`[confirm]`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirm: bool,
    /// Where to put its socket; `None` means `<socket dir>/grants/NAME/agent.sock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
}

/// End a grant.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RevokeRequest {
    /// The grant's name.
    pub name: String,
}

/// A live grant, as `op-session grants` shows it. The JSON form is stable: keys are only ever
/// added.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GrantInfo {
    /// Its name.
    pub name: String,
    /// Its socket.
    pub socket: String,
    /// The account whose session it draws on.
    pub account: String,
    /// Vaults it may read from (empty: any the policy allows).
    pub vaults: Vec<String>,
    /// References it may resolve (empty: any in its vaults).
    pub refs: Vec<String>,
    /// Verbs it may use.
    pub allow: Vec<String>,
    /// Whether a passthrough may be allowed at all.
    pub passthrough: bool,
    /// Seconds until it ends by time.
    pub expires_in_s: u64,
    /// Its read budget, if any.
    #[serde(default)]
    pub max_reads: Option<u64>,
    /// Values handed out so far.
    pub reads_used: u64,
    /// Every value handed out through it asks a person first.
    #[serde(default)]
    pub confirm: bool,
}

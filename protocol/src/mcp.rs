//! Wire types for requests that `op-session mcp` sends on behalf of an MCP client.
//!
//! The MCP process is just another client of the daemon: it holds no credential, and every
//! decision (policy, vault rules, `[mcp] reveal`, `[mcp] run_allow`) is the daemon's. These
//! types only carry what the daemon needs to decide and to audit (`via`, the MCP client's
//! name, whether a value is to be revealed, which program a `run` would start).
//!
//! Everything here is additive to protocol 1: old clients never send these fields or
//! requests; an old daemon answers the new requests with `bad_request`.
//!
//! Never put a secret value in any of these types except [`crate::ResolvedValue`], which the
//! daemon already guards.

use serde::{Deserialize, Serialize};

/// Who relayed a request, for policy and audit. On the wire: `{"channel": "mcp",
/// "client_name": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum Via {
    /// `op-session mcp`, for an MCP client.
    Mcp {
        /// The MCP client's self-reported name (`clientInfo.name`), if it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_name: Option<String>,
    },
}

impl Via {
    /// The MCP channel with the client's name.
    pub fn mcp(client_name: Option<String>) -> Self {
        Via::Mcp { client_name }
    }

    /// The channel's wire name, as the audit line records it.
    pub fn channel(&self) -> &'static str {
        match self {
            Via::Mcp { .. } => "mcp",
        }
    }

    /// The relaying client's self-reported name.
    pub fn client_name(&self) -> Option<&str> {
        match self {
            Via::Mcp { client_name } => client_name.as_deref(),
        }
    }
}

/// What `op-session mcp` adds to a resolution it relays; flattened into
/// [`crate::ResolveRequest`], so the wire form is the same fields beside the generic ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayedResolve {
    /// Who relayed it.
    pub via: Via,
    /// The values will be shown to the relaying client (MCP `read_secret`). The daemon
    /// refuses this unless its config allows it, and audits it as a reveal.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reveal: bool,
    /// For `run`: the absolute path of the program that will receive the values, checked
    /// against `[mcp] run_allow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
}

/// Check that a reference resolves, without returning its value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CheckRequest {
    /// The account; `None` means the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The reference as the caller wrote it.
    pub reference: String,
    /// Who relayed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
}

/// Where a checked reference points. Never a value, a length or a prefix.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckReport {
    /// The reference as requested.
    pub reference: String,
    /// The account that resolved it.
    pub account: String,
    /// The vault named in the reference.
    pub vault: String,
    /// The item named in the reference.
    pub item: String,
    /// The section, when the reference names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// The field named in the reference.
    pub field: String,
    /// The field's type as `op` reports it (`CONCEALED`, `STRING`, `OTP`…), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_type: Option<String>,
    /// Whether the daemon's cache already held it.
    pub cached: bool,
}

/// A fixed, typed `op` command the daemon builds and runs itself (never caller argv).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ItemOp {
    /// `op vault list`.
    ListVaults,
    /// `op item list`.
    ListItems {
        /// Only this vault.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vault: Option<String>,
        /// Only these categories.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        categories: Vec<String>,
        /// Only items with these tags.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tags: Vec<String>,
    },
    /// `op item get`: fields, types, sections and references; concealed values masked.
    GetItem {
        /// Item name or ID.
        item: String,
        /// Its vault.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vault: Option<String>,
    },
    /// `op item create` with a generated password whose value is never returned.
    CreateItem {
        /// The vault to create it in.
        vault: String,
        /// Item title.
        title: String,
        /// Category (`Login`, `Password`, `API Credential`…).
        category: String,
        /// Extra fields as `op` assignments (`label=value`, `label[type]=value`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fields: Vec<String>,
        /// A password recipe for `--generate-password` (e.g. `letters,digits,32`); `None`
        /// uses `op`'s default recipe.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_recipe: Option<String>,
        /// Tags.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tags: Vec<String>,
        /// A website URL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
    /// `op item edit`.
    EditItem {
        /// Item name or ID.
        item: String,
        /// Its vault.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vault: Option<String>,
        /// New title.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// Field assignments.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fields: Vec<String>,
        /// Generate a new password (value never returned).
        #[serde(default)]
        generate_password: bool,
    },
    /// `op item delete` (destructive: needs `allow_destructive`).
    DeleteItem {
        /// Item name or ID.
        item: String,
        /// Its vault.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vault: Option<String>,
        /// Archive instead of deleting.
        #[serde(default)]
        archive: bool,
    },
}

/// Run an [`ItemOp`] for the caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemRequest {
    /// The account; `None` means the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// What to run.
    #[serde(flatten)]
    pub op: ItemOp,
    /// Who relayed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
}

/// What `op-session mcp` may offer, as the daemon's config and policy decide.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct McpInfo {
    /// `[mcp] reveal`: `read_secret` may return values (with the acknowledgement).
    pub reveal: bool,
    /// `[mcp] run_allow`, as configured (absolute paths or globs; `*` is any command).
    pub run_allow: Vec<String>,
    /// Policy allows `item create`.
    pub can_create: bool,
    /// Policy allows `item edit`.
    pub can_edit: bool,
    /// Policy allows `item delete` (destructive).
    pub can_delete: bool,
    /// `[mcp] roots`: the directories `inject` and `run` may use (empty: the directory
    /// `op-session mcp` was started in).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roots: Vec<String>,
}

/// The acknowledgement `read_secret` must carry before a value is returned.
pub const REVEAL_ACKNOWLEDGEMENT: &str = "I_UNDERSTAND_THIS_RETURNS_SECRET_PLAINTEXT";

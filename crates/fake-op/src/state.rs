//! The simulator's whole world: the "server" (accounts, vaults, items, sessions, service
//! accounts), the "desktop app" (lock, authorizations, the next prompt's answer), the device
//! (latest sign-in) and the test knobs (clock offset, latency, counters).
//!
//! One JSON document, `state.json` in the home directory. A fixture is the same document with
//! most fields left out (see the README); `crate::fixture` fills the gaps. Every field has a
//! serde default so fixtures stay short, and unknown fields are rejected so a typo in a fixture
//! fails loudly instead of silently simulating something else.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The default `op --version` answer (the newest version the recordings cover).
pub const DEFAULT_VERSION: &str = "2.30.3";

/// Everything fake-op knows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct State {
    /// What `op --version` prints.
    pub version: String,
    /// Accounts known to this "device", each with its own vaults.
    pub accounts: Vec<Account>,
    /// Service accounts and their tokens.
    pub service_accounts: Vec<ServiceAccount>,
    /// The desktop app.
    pub app: App,
    /// How the app's next authorization prompts are answered.
    pub prompt: Prompt,
    /// Sleep added to every invocation, unless `FAKE_OP_LATENCY_MS` is set.
    pub latency_ms: u64,
    /// Simulated time minus real time.
    pub clock_offset_ms: i64,
    /// User UUID of the account most recently signed in to (op's `latest_signin`).
    pub latest_signin: Option<String>,
    /// Live token-mode sessions (the server side of `OP_SESSION_*`).
    pub sessions: Vec<Session>,
    /// Live app-integration authorizations, one per (session credential, account).
    pub authorizations: Vec<Authorization>,
    /// What happened so far, for tests and benchmarks.
    pub counters: Counters,
    /// Behaviour docs/op-behaviour.md lists as unknown (item 15), kept configurable.
    pub quirks: Quirks,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: DEFAULT_VERSION.to_string(),
            accounts: Vec::new(),
            service_accounts: Vec::new(),
            app: App::default(),
            prompt: Prompt::default(),
            latency_ms: 0,
            clock_offset_ms: 0,
            latest_signin: None,
            sessions: Vec::new(),
            authorizations: Vec::new(),
            counters: Counters::default(),
            quirks: Quirks::default(),
        }
    }
}

/// A person's 1Password account as this device knows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Account {
    /// Display name (the account picker's `ACME Corp`).
    pub name: String,
    /// Shorthand for `--account`; op has none for app-integrated accounts.
    pub shorthand: Option<String>,
    /// Sign-in address without scheme, e.g. `my.1password.com`.
    pub url: String,
    /// The person's email.
    pub email: String,
    /// 26 upper-case letters and digits; names `OP_SESSION_<user_uuid>`.
    pub user_uuid: String,
    /// 26 upper-case letters and digits.
    pub account_uuid: String,
    /// The account password `op signin` expects on stdin.
    pub password: String,
    /// True: the desktop app authorizes this account (no tokens, biometric prompts).
    pub app_integration: bool,
    /// Removed from this device by `op signout --forget`.
    pub forgotten: bool,
    /// Requests per day across all of this account's service accounts (docs/op-behaviour.md §6).
    pub daily_limit: Option<u64>,
    /// Today's service-account requests against `daily_limit`.
    pub daily_usage: Window,
    /// The account's vaults.
    pub vaults: Vec<Vault>,
}

impl Account {
    /// Host of the sign-in address, without scheme or trailing slash.
    pub fn host(&self) -> &str {
        strip_scheme(&self.url)
    }

    /// `https://<host>`, as whoami prints it.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.host())
    }

    /// How op names this account in messages: its shorthand, else its sign-in address.
    pub fn label(&self) -> String {
        self.shorthand
            .clone()
            .unwrap_or_else(|| self.host().to_string())
    }
}

/// `https://x.1password.com/` → `x.1password.com`.
pub fn strip_scheme(url: &str) -> &str {
    let s = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    s.trim_end_matches('/')
}

/// A vault and its items.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Vault {
    /// 26 lower-case letters and digits (derived from the name when left out).
    pub id: String,
    /// Display name, e.g. `Dev`.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `USER_CREATED`, or `PERSONAL` for Private/Personal vaults (derived from the name).
    #[serde(rename = "type")]
    pub kind: String,
    /// Bumped on every item change.
    pub content_version: u64,
    /// Bumped on vault changes (never, here).
    pub attribute_version: u64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Items, archived ones included.
    pub items: Vec<Item>,
}

impl Vault {
    /// Personal, Private and Employee vaults are never visible to service accounts.
    pub fn is_personal(&self) -> bool {
        self.kind == "PERSONAL"
            || ["private", "personal", "employee"].contains(&self.name.to_lowercase().as_str())
    }
}

/// An item (docs/op-behaviour.md §7.1).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Item {
    /// 26 lower-case letters and digits.
    pub id: String,
    /// Title; not unique.
    pub title: String,
    /// Upper snake case: `LOGIN`, `API_CREDENTIAL`, `PASSWORD`, `SECURE_NOTE`, `SSH_KEY` …
    pub category: String,
    /// Starred.
    pub favorite: bool,
    /// Tags.
    pub tags: Vec<String>,
    /// Bumped on every edit.
    pub version: u64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// User UUID of the last editor.
    pub last_edited_by: String,
    /// In the Archive: hidden unless asked for by ID or with `--include-archive`.
    pub archived: bool,
    /// The list view's subtitle; derived (a login's username) when left out.
    pub additional_information: Option<String>,
    /// Websites.
    pub urls: Vec<ItemUrl>,
    /// Sections, in order.
    pub sections: Vec<Section>,
    /// Fields, in order.
    pub fields: Vec<Field>,
    /// File attachments.
    pub files: Vec<ItemFile>,
}

/// One website of an item.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ItemUrl {
    /// e.g. `website`.
    pub label: String,
    /// The item's main URL.
    pub primary: bool,
    /// The address.
    pub href: String,
}

/// A section of an item.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Section {
    /// e.g. `Section_967F…` or `add more`.
    pub id: String,
    /// Display label; may repeat.
    pub label: String,
}

/// A field of an item.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Field {
    /// `username`, `password`, `notesPlain` for built-ins, else 26 characters.
    pub id: String,
    /// `STRING`, `CONCEALED`, `OTP`, `URL`, `EMAIL` …
    #[serde(rename = "type")]
    pub kind: String,
    /// `USERNAME`, `PASSWORD` or `NOTES` for built-ins.
    pub purpose: Option<String>,
    /// Display label; may repeat.
    pub label: String,
    /// Absent for empty fields. OTP fields hold a base32 secret or an `otpauth://` URI.
    pub value: Option<String>,
    /// Section ID (a fixture may give the section's label; normalisation turns it into the ID).
    pub section: Option<String>,
}

/// A file attachment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ItemFile {
    /// 26 characters.
    pub id: String,
    /// File name, usable in place of a field name in references.
    pub name: String,
    /// The content (text only, here).
    pub content: String,
    /// Section ID, if any.
    pub section: Option<String>,
}

/// A service account (docs/op-behaviour.md §6).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceAccount {
    /// Name, for `op service-account ratelimit` and the counters.
    pub name: String,
    /// The owning account (shorthand, address or UUID); default: the first account.
    pub account: Option<String>,
    /// `…@1passwordserviceaccounts.com`; the key that ties a token to this record.
    pub email: String,
    /// 26 upper-case letters and digits.
    pub user_uuid: String,
    /// The `ops_…` token; built from the other fields when left out.
    pub token: String,
    /// Names of the vaults it may use (never Personal/Private).
    pub vaults: Vec<String>,
    /// Deleted on the server: every use fails with the 403 text.
    pub revoked: bool,
    /// Reads per hour (default 1000, the Teams/individual limit).
    pub read_limit: Option<u64>,
    /// Writes per hour (default 100).
    pub write_limit: Option<u64>,
    /// Set once a command other than whoami has succeeded (docs/op-behaviour.md §1.7).
    pub authenticated: bool,
    /// This hour's reads.
    pub reads: Window,
    /// This hour's writes.
    pub writes: Window,
}

/// A rate-limit window: starts at the first request, lasts an hour (or a day).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Window {
    /// When the window opened (simulated ms), if it has.
    pub start_ms: Option<i64>,
    /// Requests counted in it.
    pub used: u64,
}

/// The desktop app.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct App {
    /// False: every app-integration command fails with `connecting to desktop app: …`.
    pub running: bool,
    /// Locked: all authorizations are gone; the next command prompts (and unlocks if approved).
    pub locked: bool,
}

impl Default for App {
    fn default() -> Self {
        App {
            running: true,
            locked: false,
        }
    }
}

/// How a biometric prompt is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    /// Touch ID / polkit succeeds.
    #[default]
    Approve,
    /// The user dismisses the dialog.
    Deny,
    /// Nobody answers.
    Timeout,
}

/// Prompt answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Prompt {
    /// Answers for the next prompts, used once each, first first.
    pub next: Vec<Answer>,
    /// The answer once `next` is used up.
    pub default: Answer,
    /// How long a prompt takes before it is answered.
    pub delay_ms: u64,
}

/// A token-mode session on the "server".
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// The 43-character token (the value of `OP_SESSION_<user_uuid>`).
    pub token: String,
    /// Whose session.
    pub user_uuid: String,
    /// Created at (simulated ms).
    pub created_ms: i64,
    /// Last successful use (simulated ms); the session dies 30 min after it.
    pub last_used_ms: i64,
}

/// An app-integration authorization.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// The terminal or parent process it belongs to (see `crate::credential`).
    pub credential: String,
    /// Which account.
    pub user_uuid: String,
    /// Approved at (simulated ms); dies 12 h later whatever happens.
    pub granted_ms: i64,
    /// Last use (simulated ms); dies 10 min after it.
    pub last_used_ms: i64,
}

/// Counts for tests and benchmarks (`fake-op-ctl counters`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Counters {
    /// Every invocation of fake-op, failures included.
    pub invocations: u64,
    /// Per command path (`read`, `item get`, `signin`, `--version` …).
    pub commands: BTreeMap<String, u64>,
    /// Invocations that exited non-zero.
    pub failures: u64,
    /// Biometric prompts shown by the app.
    pub biometric_prompts: u64,
    /// Prompts denied.
    pub prompts_denied: u64,
    /// Prompts that timed out.
    pub prompts_timed_out: u64,
    /// Successful token-mode sign-ins (new sessions).
    pub signins: u64,
    /// Sign-ins refused (wrong password, no terminal).
    pub signin_failures: u64,
    /// Sessions or authorizations ended by `op signout`.
    pub signouts: u64,
    /// Commands refused for want of a valid session, authorization or token.
    pub auth_failures: u64,
    /// Secret values handed out by read, inject and run (one per reference).
    pub secrets_resolved: u64,
    /// Service-account read requests, all tokens.
    pub service_account_reads: u64,
    /// Service-account write requests, all tokens.
    pub service_account_writes: u64,
    /// Per service account (by name): reads and writes.
    pub per_service_account: BTreeMap<String, SaCount>,
    /// Requests refused with 429.
    pub rate_limited: u64,
}

/// Reads and writes of one service account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SaCount {
    /// Read requests.
    pub reads: u64,
    /// Write requests.
    pub writes: u64,
}

/// Knobs for behaviour docs/op-behaviour.md could not pin down (item 15).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quirks {
    /// `user_type` in a person's whoami JSON (unrecorded; omitted by default).
    pub whoami_user_type: Option<String>,
    /// Append `/` to whoami's `url` (both forms were recorded).
    pub whoami_url_trailing_slash: bool,
    /// The third comment line of `op signin`; `{account}` is replaced.
    pub signin_hint: String,
    /// Conceal CONCEALED values in `--fields … --format json` output (unknown; off).
    pub conceal_json_fields: bool,
}

impl Default for Quirks {
    fn default() -> Self {
        Quirks {
            whoami_user_type: None,
            whoami_url_trailing_slash: false,
            signin_hint: "# Run 'eval $(op signin --account {account})' to sign in to your 1Password account.".to_string(),
            conceal_json_fields: false,
        }
    }
}

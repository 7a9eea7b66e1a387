//! The daemon's configuration file (`config.toml`): parsing, defaults and validation.
//!
//! Owns the rule that every key is known (a typo is an error naming it), that durations are
//! strings like `"2s"`, `"30m"`, `"12h"`, and that no timeout may exceed what 1Password itself
//! allows (30 min idle for token sessions, 12 h hard). Never holds a secret.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// 1Password's idle limit for token sessions.
pub const TOKEN_IDLE_MAX: Duration = Duration::from_secs(30 * 60);
/// 1Password's idle limit for the desktop app integration.
pub const APP_IDLE_MAX: Duration = Duration::from_secs(10 * 60);
/// 1Password's hard limit on any session.
pub const HARD_MAX: Duration = Duration::from_secs(12 * 60 * 60);

/// Why the config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (unknown key, wrong type).
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key.
        message: String,
    },
    /// A value is out of range.
    #[error("config {path}: `{key}` {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The `[policy]` table.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Verbs allowed even if destructive (e.g. `"item delete"`). Empty means "the default".
    #[serde(default)]
    pub allow: Vec<String>,
    /// Verbs always refused (e.g. `"item edit"`).
    #[serde(default)]
    pub deny: Vec<String>,
    /// Vault names or IDs that may be read or changed; empty means all.
    #[serde(default)]
    pub vaults: Vec<String>,
    /// Allow destructive verbs (delete, archive, permission and account changes).
    #[serde(default)]
    pub allow_destructive: bool,
}

/// The `[mcp]` table: what `op-session mcp` may do. The daemon enforces it; the MCP process
/// only reads it to decide which tools to offer. See docs/MCP.md.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// `read_secret` may return values (the call must also acknowledge it).
    #[serde(default)]
    pub reveal: bool,
    /// Programs the `run` tool may start: absolute paths or globs (`/usr/bin/*`); `["*"]` is
    /// the person's explicit opt-in to any command. Empty (the default) refuses every `run`.
    #[serde(default)]
    pub run_allow: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    op_path: Option<PathBuf>,
    default_account: Option<String>,
    idle_timeout: Option<String>,
    hard_timeout: Option<String>,
    keepalive: Option<bool>,
    op_timeout: Option<String>,
    cache_ttl: Option<String>,
    max_connections: Option<usize>,
    read_timeout: Option<String>,
    pass_env: Option<Vec<String>>,
    op_env: Option<std::collections::BTreeMap<String, String>>,
    app_check_interval: Option<String>,
    audit: Option<bool>,
    policy: Option<PolicyConfig>,
    presence: Option<crate::presence::rules::RawPresence>,
    mcp: Option<McpConfig>,
    connect_ca_file: Option<PathBuf>,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The `op` binary; `None` means search PATH (skipping our own shim).
    pub op_path: Option<PathBuf>,
    /// The account used when a request names none.
    pub default_account: Option<String>,
    /// Idle limit; each mode also applies its own maximum (token 30 min, app 10 min).
    pub idle_timeout: Duration,
    /// Hard limit for every session.
    pub hard_timeout: Duration,
    /// Refresh the server session while clients are active (cache hits included).
    pub keepalive: bool,
    /// How long one `op` call may run before it is killed.
    pub op_timeout: Duration,
    /// How long a resolved value stays cached; zero turns the cache off.
    pub cache_ttl: Duration,
    /// How many connections are served at once.
    pub max_connections: usize,
    /// How long a client may take to send its request.
    pub read_timeout: Duration,
    /// Extra environment variable names passed to `op` children from the daemon's own
    /// environment (never a caller's).
    pub pass_env: Vec<String>,
    /// Variables `op` children get with these fixed values (a proxy, a CA bundle).
    pub op_env: Vec<(String, String)>,
    /// How long an app-mode authorization counts as confirmed; after that a cached value is
    /// served only after one cheap check that the app is still unlocked.
    pub app_check_interval: Duration,
    /// Write the audit log.
    pub audit: bool,
    /// Policy.
    pub policy: PolicyConfig,
    /// What sleep and a screen lock do to each mode's sessions (`[presence]`).
    pub presence: crate::presence::rules::PresenceConfig,
    /// What `op-session mcp` may do.
    pub mcp: McpConfig,
    /// Connect mode: a PEM file of CA certificates trusted besides the system's (an internal
    /// CA). There is no setting that turns certificate verification off.
    pub connect_ca_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            op_path: None,
            default_account: None,
            idle_timeout: TOKEN_IDLE_MAX,
            hard_timeout: HARD_MAX,
            keepalive: true,
            op_timeout: Duration::from_secs(60),
            cache_ttl: Duration::from_secs(300),
            max_connections: 256,
            read_timeout: Duration::from_secs(5),
            pass_env: Vec::new(),
            op_env: Vec::new(),
            app_check_interval: Duration::from_secs(10),
            audit: true,
            policy: PolicyConfig::default(),
            presence: Default::default(),
            mcp: McpConfig::default(),
            connect_ca_file: None,
        }
    }
}

/// Parse `"250ms"`, `"2s"`, `"30m"`, `"12h"`, `"1d"`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "\"{s}\" is not a duration (use e.g. \"2s\", \"30m\", \"12h\")"
        ));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("\"{s}\" is not a duration (number too large)"))?;
    let secs = |mult: u64| {
        n.checked_mul(mult)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("\"{s}\" is too long"))
    };
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86400),
        other => Err(format!(
            "\"{s}\" has an unknown unit \"{other}\" (use ms, s, m, h or d)"
        )),
    }
}

impl Config {
    /// Load from `path`. A missing file gives the defaults only when `required` is false.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Config::default());
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Config::parse(&text, path)
    }

    /// Parse config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })?;
        let mut c = Config::default();
        let dur = |key: &'static str, v: &Option<String>, into: &mut Duration| {
            if let Some(v) = v {
                *into = parse_duration(v).map_err(|message| ConfigError::Invalid {
                    path: path.to_path_buf(),
                    key,
                    message,
                })?;
            }
            Ok::<(), ConfigError>(())
        };
        dur("idle_timeout", &raw.idle_timeout, &mut c.idle_timeout)?;
        dur("hard_timeout", &raw.hard_timeout, &mut c.hard_timeout)?;
        dur("op_timeout", &raw.op_timeout, &mut c.op_timeout)?;
        dur("cache_ttl", &raw.cache_ttl, &mut c.cache_ttl)?;
        dur("read_timeout", &raw.read_timeout, &mut c.read_timeout)?;
        dur(
            "app_check_interval",
            &raw.app_check_interval,
            &mut c.app_check_interval,
        )?;
        let invalid = |key: &'static str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        if c.idle_timeout > TOKEN_IDLE_MAX {
            return Err(invalid(
                "idle_timeout",
                "is above 30m, 1Password's own idle limit for sessions: the daemon would \
                 promise a session the server has already ended"
                    .into(),
            ));
        }
        if c.hard_timeout > HARD_MAX {
            return Err(invalid(
                "hard_timeout",
                "is above 12h, 1Password's own hard limit for sessions".into(),
            ));
        }
        for (key, d) in [
            ("idle_timeout", c.idle_timeout),
            ("hard_timeout", c.hard_timeout),
            ("op_timeout", c.op_timeout),
            ("read_timeout", c.read_timeout),
        ] {
            if d.is_zero() {
                return Err(invalid(key, "must be more than zero".into()));
            }
        }
        if let Some(n) = raw.max_connections {
            if n == 0 {
                return Err(invalid("max_connections", "must be at least 1".into()));
            }
            c.max_connections = n;
        }
        let bad_name = |n: &str| {
            op_grammar::env::is_credential_var(n) || n.is_empty() || n.contains(['=', '\0'])
        };
        if let Some(names) = raw.pass_env {
            if let Some(n) = names.iter().find(|n| bad_name(n)) {
                return Err(invalid(
                    "pass_env",
                    format!("may not name {n:?}: credential variables are the daemon's to set"),
                ));
            }
            c.pass_env = names;
        }
        if let Some(vars) = raw.op_env {
            if let Some(n) = vars.keys().find(|n| bad_name(n)) {
                return Err(invalid(
                    "op_env",
                    format!("may not name {n:?}: credential variables are the daemon's to set"),
                ));
            }
            if vars.values().any(|v| v.contains('\0')) {
                return Err(invalid("op_env", "values may not contain NUL".into()));
            }
            c.op_env = vars.into_iter().collect();
        }
        c.op_path = raw.op_path;
        if let Some(ca) = raw.connect_ca_file {
            if !ca.is_absolute() {
                return Err(invalid(
                    "connect_ca_file",
                    "must be an absolute path to a PEM file".into(),
                ));
            }
            c.connect_ca_file = Some(ca);
        }
        c.default_account = raw.default_account.filter(|s| !s.is_empty());
        if let Some(k) = raw.keepalive {
            c.keepalive = k;
        }
        if let Some(a) = raw.audit {
            c.audit = a;
        }
        if let Some(p) = raw.policy {
            c.policy = p;
        }
        if let Some(p) = raw.presence {
            c.presence = p.validate().map_err(|b| invalid(b.key, b.message))?;
        }
        if let Some(m) = raw.mcp {
            for rule in &m.run_allow {
                if let Err(message) = crate::mcp::check_run_rule(rule) {
                    return Err(invalid("mcp.run_allow", message));
                }
            }
            c.mcp = m;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("/c.toml"))
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43200)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5q").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = parse("idle_timout = \"2s\"").expect_err("typo").to_string();
        assert!(e.contains("idle_timout"), "{e}");
        let e = parse("idle_timeout = \"45m\"")
            .expect_err("too long")
            .to_string();
        assert!(e.contains("idle_timeout") && e.contains("30m"), "{e}");
        let e = parse("hard_timeout = \"13h\"")
            .expect_err("too long")
            .to_string();
        assert!(e.contains("hard_timeout") && e.contains("12h"), "{e}");
        let e = parse("op_timeout = \"fast\"").expect_err("bad").to_string();
        assert!(e.contains("op_timeout"), "{e}");
        let e = parse("[policy]\nallow_destructiv = true")
            .expect_err("typo")
            .to_string();
        assert!(e.contains("allow_destructiv"), "{e}");
        let e = parse("[presence.service_account]\non_slep = \"lock\"")
            .expect_err("typo")
            .to_string();
        assert!(e.contains("on_slep"), "{e}");
        let e = parse("[presence]\non_sleep = \"wipe\"")
            .expect_err("bad")
            .to_string();
        assert!(e.contains("presence.on_sleep") && e.contains("wipe"), "{e}");
        let e = parse("[mcp]\nreveal = true\nrun_alow = []")
            .expect_err("typo")
            .to_string();
        assert!(e.contains("run_alow"), "{e}");
        let e = parse("[mcp]\nrun_allow = [\"npm\"]")
            .expect_err("relative")
            .to_string();
        assert!(e.contains("run_allow") && e.contains("absolute"), "{e}");
        let c = parse("[mcp]\nreveal = true\nrun_allow = [\"/usr/bin/*\", \"*\"]").expect("ok");
        assert!(c.mcp.reveal);
        assert_eq!(c.mcp.run_allow.len(), 2);
    }

    #[test]
    fn connect_ca_file_must_be_absolute() {
        let c = parse("connect_ca_file = \"/etc/ssl/internal-ca.pem\"").expect("parses");
        assert_eq!(
            c.connect_ca_file.as_deref(),
            Some(Path::new("/etc/ssl/internal-ca.pem"))
        );
        let e = parse("connect_ca_file = \"ca.pem\"")
            .expect_err("relative")
            .to_string();
        assert!(e.contains("connect_ca_file"), "{e}");
        let e = parse("connect_insecure = true")
            .expect_err("no such switch")
            .to_string();
        assert!(e.contains("connect_insecure"), "{e}");
    }

    #[test]
    fn full_config_parses() {
        let c = parse(
            r#"
op_path = "/usr/local/bin/op"
default_account = "my"
idle_timeout = "2s"
hard_timeout = "3s"
keepalive = false
op_timeout = "10s"
cache_ttl = "0s"
[policy]
deny = ["item edit"]
vaults = ["Dev"]
allow_destructive = true
"#,
        )
        .expect("parses");
        assert_eq!(c.idle_timeout, Duration::from_secs(2));
        assert_eq!(c.cache_ttl, Duration::ZERO);
        assert!(!c.keepalive);
        assert_eq!(c.policy.vaults, vec!["Dev".to_string()]);
    }
}

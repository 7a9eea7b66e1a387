//! The daemon's configuration file (`config.toml`): parsing, defaults and validation.
//!
//! Owns the rule that every key is known (a typo is an error naming it), that durations are
//! strings like `"2s"`, `"30m"`, `"12h"` (read with `humantime-serde`, so the grammar is
//! humantime's and serde names the key of a bad value), and that no timeout may exceed what 1Password itself
//! allows (30 min idle for token sessions, 12 h hard). Never holds a secret.

use std::collections::BTreeMap;
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
    /// The file is not valid TOML for this schema (unknown key, wrong type), or a value the
    /// schema reads is invalid (a `[policy]` rule that is not an op command, a `run_allow`
    /// glob, a `[presence]` action); the message names the key.
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key.
        message: String,
    },
    /// A value is out of range, or breaks a rule across keys (checked after parsing).
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

/// The `[policy]` table as written; the daemon holds it compiled ([`crate::policy::Policy`]).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// If non-empty, the only verbs allowed (besides `whoami` and `account list`), destructive
    /// ones included (e.g. `"item delete"`). Empty means "the default".
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

/// The `[mcp]` table: what `op-session mcp` may do. The daemon enforces it and tells the MCP
/// process (`McpInfo`, from [`crate::mcp::info`]) which tools to offer; that process never reads
/// the file. See docs/MCP.md.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// `read_secret` may return values (the call must also acknowledge it).
    #[serde(default)]
    pub reveal: bool,
    /// Programs the `run` tool may start: absolute paths or globs (`/usr/bin/*`); `["*"]` is
    /// the person's explicit opt-in to any command. Empty (the default) refuses every `run`.
    #[serde(default)]
    pub run_allow: RunAllow,
    /// Directories the `inject` and `run` tools may read templates and env files from, write
    /// outputs to and run in (absolute). Empty (the default): the directory `op-session mcp`
    /// was started in.
    #[serde(default)]
    pub roots: Vec<String>,
}

/// `[mcp] run_allow`, compiled at load: each rule's glob built once, as written and with its
/// directory resolved (`/bin/*` → `/usr/bin/*` on merged /usr), so a `run` compares the
/// program against ready patterns. The directory is resolved when the config is read: a link
/// made or moved later takes effect at the next start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunAllow {
    rules: Vec<RunRule>,
}

/// One compiled `run_allow` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RunRule {
    /// As written (`*`, a path or a glob).
    written: String,
    /// `None` for `*`, which allows any command.
    globs: Option<RunGlobs>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RunGlobs {
    as_written: glob::Pattern,
    /// The resolved form as text (compared literally too) and as a glob, when it is one.
    resolved: (String, Option<glob::Pattern>),
}

impl RunAllow {
    /// Compile the rules: each `*`, an absolute path, or an absolute glob. The error names
    /// the entry and what is wrong.
    pub fn new<S: AsRef<str>>(rules: &[S]) -> Result<RunAllow, String> {
        let rules = rules
            .iter()
            .map(|r| compile_run_rule(r.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(RunAllow { rules })
    }

    /// The rules as written (what `op-session mcp` is told, and what a refusal quotes).
    pub fn written(&self) -> Vec<String> {
        self.rules.iter().map(|r| r.written.clone()).collect()
    }
}

impl<'de> Deserialize<'de> for RunAllow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RunAllow, D::Error> {
        let rules = Vec::<String>::deserialize(d)?;
        RunAllow::new(&rules).map_err(serde::de::Error::custom)
    }
}

/// Compile one `run_allow` rule: `*`, an absolute path, or an absolute glob.
fn compile_run_rule(rule: &str) -> Result<RunRule, String> {
    if rule == "*" {
        return Ok(RunRule {
            written: rule.to_string(),
            globs: None,
        });
    }
    if !rule.starts_with('/') {
        return Err(format!(
            "entry \"{rule}\" must be an absolute path or glob (e.g. \"/usr/bin/npm\", \"/usr/bin/*\"), or \"*\" for any command"
        ));
    }
    let pattern = |r: &str| {
        glob::Pattern::new(r).map_err(|e| format!("entry \"{rule}\" is not a valid glob: {e}"))
    };
    Ok(RunRule {
        written: rule.to_string(),
        globs: Some(RunGlobs {
            as_written: pattern(rule)?,
            resolved: {
                let r = resolved_rule(rule);
                let glob = glob::Pattern::new(&r).ok();
                (r, glob)
            },
        }),
    })
}

/// A `run_allow` rule in the form programs are compared in
/// ([`op_session_paths::with_resolved_dir`]): the directory part before the first glob
/// character resolved, the rest kept as written (`/bin/*` → `/usr/bin/*` on merged /usr).
fn resolved_rule(rule: &str) -> String {
    let meta = |c: &str| c.contains(['*', '?', '[']);
    let parts: Vec<&str> = rule.split('/').collect();
    match parts.iter().position(|c| meta(c)) {
        // A literal path: resolve its directory, keep its name.
        None => op_session_paths::with_resolved_dir(Path::new(rule))
            .display()
            .to_string(),
        // `/a/b/*.sh`: resolve `/a/b`, keep `*.sh` (and anything after it).
        Some(at) if at >= 2 => {
            let dir = parts[..at].join("/");
            match Path::new(&dir).canonicalize() {
                Ok(d) => format!("{}/{}", d.display(), parts[at..].join("/")),
                Err(_) => rule.to_string(),
            }
        }
        Some(_) => rule.to_string(),
    }
}

/// The rule that lets `program` run, if any. The program (an absolute path, as asked) and each
/// rule are compared both as written and with their directories resolved, so a person writing
/// the path they know (`/bin/sh`) gets what they meant wherever `/bin` is a link.
pub fn run_rule_for<'a>(cfg: &'a McpConfig, program: &str) -> Option<&'a str> {
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let matches = |literal: &str, p: Option<&glob::Pattern>, program: &str| {
        literal == program || p.is_some_and(|p| p.matches_with(program, opts))
    };
    let resolved = resolved_program(program);
    // As written only without `.` or `..`: `/usr/**` must not allow `/usr/../tmp/x`.
    let plain = !program.split('/').any(|c| c == "." || c == "..");
    cfg.run_allow
        .rules
        .iter()
        .find(|rule| match &rule.globs {
            None => true,
            Some(g) => {
                (plain && matches(g.as_written.as_str(), Some(&g.as_written), program))
                    || matches(&g.resolved.0, g.resolved.1.as_ref(), &resolved)
            }
        })
        .map(|r| r.written.as_str())
}

/// `program` with its directory resolved: what a refusal shows beside the path asked for.
pub fn resolved_program(program: &str) -> String {
    op_session_paths::with_resolved_dir(Path::new(program))
        .display()
        .to_string()
}

/// The validated configuration. Every key is optional in the file; a missing key takes its
/// default from [`Config::default`]. Durations are read with `humantime-serde` (see
/// [`parse_duration`]); [`Config::parse`] then checks the ranges serde cannot express.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The `op` binary; `None` means search PATH (skipping our own shim).
    pub op_path: Option<PathBuf>,
    /// The account used when a request names none. An empty string means none.
    #[serde(deserialize_with = "non_empty")]
    pub default_account: Option<String>,
    /// Idle limit; each mode also applies its own maximum (token 30 min, app 10 min).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Hard limit for every session.
    #[serde(with = "humantime_serde")]
    pub hard_timeout: Duration,
    /// Refresh the server session while clients are active (cache hits included).
    pub keepalive: bool,
    /// How long one `op` call may run before it is killed.
    #[serde(with = "humantime_serde")]
    pub op_timeout: Duration,
    /// How long a resolved value stays cached; zero turns the cache off.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// How long a "not found" answer (no such vault, item or field) is remembered per session;
    /// zero turns the negative cache off. Every mode, not only metered ones.
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
    /// The request budget of service-account and connect sessions, and the per-caller brake.
    pub quota: crate::quota::QuotaConfig,
    /// How many connections are served at once.
    pub max_connections: usize,
    /// How long a client may take to send its request.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Extra environment variable names passed to `op` children from the daemon's own
    /// environment (never a caller's).
    pub pass_env: Vec<String>,
    /// Variables `op` children get with these fixed values (a proxy, a CA bundle).
    pub op_env: BTreeMap<String, String>,
    /// How long an app-mode authorization counts as confirmed; after that a cached value is
    /// served only after one cheap check that the app is still unlocked.
    #[serde(with = "humantime_serde")]
    pub app_check_interval: Duration,
    /// Write the audit log.
    pub audit: bool,
    /// `[policy]`, its rules read by the grammar at load.
    #[serde(deserialize_with = "policy_rules")]
    pub policy: crate::policy::Policy,
    /// What sleep and a screen lock do to each mode's sessions (`[presence]`).
    #[serde(deserialize_with = "presence_rules")]
    pub presence: crate::presence::rules::PresenceConfig,
    /// What `op-session mcp` may do.
    pub mcp: McpConfig,
    /// Connect mode: a PEM file of CA certificates trusted besides the system's (an internal
    /// CA). There is no setting that turns certificate verification off.
    pub connect_ca_file: Option<PathBuf>,
    /// Which references a person confirms at each use (`[confirm]`, see docs/confirm.md).
    pub confirm: crate::confirm::rules::ConfirmConfig,
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
            negative_ttl: Duration::from_secs(30),
            quota: crate::quota::QuotaConfig::default(),
            max_connections: 256,
            read_timeout: Duration::from_secs(5),
            pass_env: Vec::new(),
            op_env: BTreeMap::new(),
            app_check_interval: Duration::from_secs(10),
            audit: true,
            policy: crate::policy::Policy::default(),
            presence: Default::default(),
            mcp: McpConfig::default(),
            connect_ca_file: None,
            confirm: Default::default(),
        }
    }
}

/// `default_account = ""` means no default account.
fn non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// `[policy]` as written, compiled into rules; an error names the rule's key
/// (`policy.deny[0]`).
fn policy_rules<'de, D: serde::Deserializer<'de>>(d: D) -> Result<crate::policy::Policy, D::Error> {
    crate::policy::Policy::compile(&PolicyConfig::deserialize(d)?)
        .map_err(|(key, message)| serde::de::Error::custom(format!("`{key}` {message}")))
}

/// `[presence]` as written, validated into rules; an error names the full dotted key.
fn presence_rules<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<crate::presence::rules::PresenceConfig, D::Error> {
    crate::presence::rules::RawPresence::deserialize(d)?
        .validate()
        .map_err(|b| serde::de::Error::custom(format!("`{}` {}", b.key, b.message)))
}

/// Parse a duration as `config.toml` writes one: `"250ms"`, `"2s"`, `"30m"`, `"12h"`,
/// `"1d"`, `"1h 30m"` (humantime's grammar, the same one the config file's keys use). For
/// flags and grant TTLs, which are not read through serde.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime_serde::re::humantime::parse_duration(s.trim())
        .map_err(|e| format!("\"{s}\" is not a duration ({e}); use e.g. \"2s\", \"30m\", \"12h\""))
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
        // Without the source text, the error's text is its message followed by "in
        // `the.key`": one line, the key named, and no excerpt of the file (which may hold an
        // `op_env` value).
        let parse_error = |mut e: toml::de::Error| {
            e.set_input(None);
            ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string().trim_end().replace('\n', " "),
            }
        };
        let c = toml::de::Deserializer::parse(text)
            .and_then(Config::deserialize)
            .map_err(parse_error)?;
        c.check().map_err(|(key, message)| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        })?;
        Ok(c)
    }

    /// The ranges and rules serde cannot express: the key and what is wrong.
    fn check(&self) -> Result<(), (&'static str, String)> {
        if self.idle_timeout > TOKEN_IDLE_MAX {
            return Err((
                "idle_timeout",
                "is above 30m, 1Password's own idle limit for sessions: the daemon would \
                 promise a session the server has already ended"
                    .into(),
            ));
        }
        if self.hard_timeout > HARD_MAX {
            return Err((
                "hard_timeout",
                "is above 12h, 1Password's own hard limit for sessions".into(),
            ));
        }
        for (key, d) in [
            ("idle_timeout", self.idle_timeout),
            ("hard_timeout", self.hard_timeout),
            ("op_timeout", self.op_timeout),
            ("read_timeout", self.read_timeout),
        ] {
            if d.is_zero() {
                return Err((key, "must be more than zero".into()));
            }
        }
        if self.max_connections == 0 {
            return Err(("max_connections", "must be at least 1".into()));
        }
        let bad_name = |n: &str| {
            op_grammar::env::is_credential_var(n) || n.is_empty() || n.contains(['=', '\0'])
        };
        let credential =
            |n: &str| format!("may not name {n:?}: credential variables are the daemon's to set");
        if let Some(n) = self.pass_env.iter().find(|n| bad_name(n)) {
            return Err(("pass_env", credential(n)));
        }
        if let Some(n) = self.op_env.keys().find(|n| bad_name(n)) {
            return Err(("op_env", credential(n)));
        }
        if self.op_env.values().any(|v| v.contains('\0')) {
            return Err(("op_env", "values may not contain NUL".into()));
        }
        if let Some(ca) = &self.connect_ca_file
            && !ca.is_absolute()
        {
            return Err((
                "connect_ca_file",
                "must be an absolute path to a PEM file".into(),
            ));
        }
        if let Some(r) = self.mcp.roots.iter().find(|r| !r.starts_with('/')) {
            return Err((
                "mcp.roots",
                format!("entry \"{r}\" must be an absolute directory"),
            ));
        }
        self.confirm.check(self.hard_timeout)?;
        Ok(())
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
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
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
        let e = parse("[presence.app]\non_sleep = \"wipe\"")
            .expect_err("bad")
            .to_string();
        assert!(e.contains("presence.app.on_sleep"), "{e}");
        let e = parse("[mcp]\nrun_allow = \"/usr/bin/*\"")
            .expect_err("not a list")
            .to_string();
        assert!(e.contains("mcp.run_allow"), "{e}");
        let e = parse("max_connections = 0").expect_err("zero").to_string();
        assert!(e.contains("max_connections"), "{e}");
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
        assert_eq!(c.mcp.run_allow.written(), ["/usr/bin/*", "*"]);
    }

    #[test]
    fn quota_keys_and_negative_ttl() {
        let c = parse(
            "negative_ttl = \"10s\"\n[quota]\nreads_per_hour = 500\nwrites_per_hour = 0\nreads_per_day = 2000\ncaller_errors_per_minute = 5",
        )
        .expect("parses");
        assert_eq!(c.negative_ttl, Duration::from_secs(10));
        let l = c
            .quota
            .limits(op_session_protocol::Mode::ServiceAccount)
            .expect("metered");
        assert_eq!(
            (l.reads_per_hour, l.writes_per_hour, l.per_day),
            (500, 0, 2000)
        );
        assert_eq!(c.quota.caller_errors_per_minute(), 5);
        assert_eq!(Config::default().negative_ttl, Duration::from_secs(30));
        let e = parse("[quota]\nreads_per_hou = 1")
            .expect_err("typo")
            .to_string();
        assert!(e.contains("reads_per_hou"), "{e}");
        let e = parse("[quota]\nreads_per_hour = -1")
            .expect_err("negative")
            .to_string();
        assert!(e.contains("reads_per_hour"), "{e}");
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

    #[test]
    fn run_rules_are_absolute_globs_or_star() {
        assert!(RunAllow::new(&["*"]).is_ok());
        assert!(RunAllow::new(&["/usr/bin/*"]).is_ok());
        assert!(RunAllow::new(&["npm"]).is_err());
        assert!(RunAllow::new(&["/usr/bin/[x"]).is_err());
        let cfg = McpConfig {
            reveal: false,
            run_allow: RunAllow::new(&["/usr/bin/*", "/opt/tool"]).expect("rules"),
            ..McpConfig::default()
        };
        assert_eq!(run_rule_for(&cfg, "/usr/bin/env"), Some("/usr/bin/*"));
        assert_eq!(run_rule_for(&cfg, "/opt/tool"), Some("/opt/tool"));
        assert_eq!(
            run_rule_for(&cfg, "/usr/bin/x/y"),
            None,
            "* stays in one dir"
        );
        assert_eq!(run_rule_for(&cfg, "/opt/other"), None);
    }

    #[test]
    fn run_rules_and_programs_compare_with_their_directories_resolved() {
        // A directory link, as /bin → /usr/bin on merged /usr, made here so the test holds on
        // any system.
        let tmp = tempfile::tempdir().expect("tempdir");
        let real = tmp.path().join("usr-bin");
        std::fs::create_dir(&real).expect("mkdir");
        std::fs::write(real.join("sh"), "").expect("file");
        std::os::unix::fs::symlink(real.join("sh"), real.join("link-to-sh")).expect("symlink");
        let bin = tmp.path().join("bin");
        std::os::unix::fs::symlink(&real, &bin).expect("symlink");
        let (real, bin) = (real.display().to_string(), bin.display().to_string());
        let rule = |r: String| McpConfig {
            run_allow: RunAllow::new(&[r]).expect("rule"),
            ..McpConfig::default()
        };
        // The path a person knows and the canonical one allow each other.
        let by_link = rule(format!("{bin}/sh"));
        assert!(run_rule_for(&by_link, &format!("{real}/sh")).is_some());
        assert!(run_rule_for(&by_link, &format!("{bin}/sh")).is_some());
        let by_real = rule(format!("{real}/sh"));
        assert!(run_rule_for(&by_real, &format!("{bin}/sh")).is_some());
        let glob = rule(format!("{bin}/*"));
        assert!(run_rule_for(&glob, &format!("{real}/sh")).is_some());
        // A symlink's own name is its own program: a rule for `sh` does not allow `link-to-sh`
        // (a multi-call binary behaves by the name it is run as), nor the other way round.
        assert!(run_rule_for(&by_real, &format!("{real}/link-to-sh")).is_none());
        let by_symlink = rule(format!("{bin}/link-to-sh"));
        assert!(run_rule_for(&by_symlink, &format!("{real}/link-to-sh")).is_some());
        assert!(run_rule_for(&by_symlink, &format!("{real}/sh")).is_none());
        // `..` is resolved before a glob sees it.
        let deep = rule(format!("{real}/**"));
        assert!(run_rule_for(&deep, &format!("{real}/../usr-bin/sh")).is_some());
        std::fs::create_dir(tmp.path().join("elsewhere")).expect("mkdir");
        assert!(run_rule_for(&deep, &format!("{real}/../elsewhere/x")).is_none());
    }
}

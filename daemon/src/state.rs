//! The daemon's shared state: configuration, identity, sessions, the `op` runner, shutdown.
//!
//! One [`Daemon`] is shared by every connection task behind an `Arc`. Mutable parts carry their
//! own locks (see [`crate::session`]); nothing here is held across an `.await`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use op_session_protocol::Protections;
use tokio_util::sync::CancellationToken;

use crate::audit::Audit;
use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Config;
use crate::gate::AuthGate;
use crate::oprun::OpRunner;
use crate::session::Sessions;

/// Facts about this daemon process, fixed at start.
#[derive(Debug, Clone)]
pub struct DaemonInfo {
    /// The socket it serves.
    pub socket: PathBuf,
    /// `manual`, `autostart`, `systemd` or `launchd`.
    pub started_by: op_session_protocol::StartedBy,
    /// Which protections took hold.
    pub protections: Protections,
    /// When it started (for uptime).
    pub started: Instant,
    /// Our effective uid: the only uid allowed to connect.
    pub uid: u32,
    /// Exit after this long without sessions or connections (socket activation only).
    pub exit_when_idle: Option<std::time::Duration>,
    /// The config file it read (or would have read: a missing default file means defaults).
    pub config_path: PathBuf,
}

impl DaemonInfo {
    /// For unit tests: a daemon serving nothing real, as the current user.
    #[cfg(test)]
    pub(crate) fn for_tests() -> DaemonInfo {
        DaemonInfo {
            socket: "/nonexistent/agent.sock".into(),
            started_by: op_session_protocol::StartedBy::Manual,
            protections: Default::default(),
            started: Instant::now(),
            uid: nix::unistd::getuid().as_raw(),
            exit_when_idle: None,
            config_path: "/nonexistent/config.toml".into(),
        }
    }
}

/// Everything a request handler needs.
#[derive(Debug)]
pub struct Daemon {
    /// The validated configuration.
    pub config: Config,
    /// Fixed facts.
    pub info: DaemonInfo,
    /// The deadline clock (suspend-aware in production, manual in tests).
    pub clock: Arc<dyn Clock>,
    /// Held sessions.
    pub sessions: Sessions,
    /// Resolved-value cache.
    pub cache: Cache,
    /// Runs `op`.
    pub op: OpRunner,
    /// Audit log writer (None when disabled).
    pub audit: Option<Audit>,
    /// Cancelled to begin a graceful shutdown.
    pub shutdown: CancellationToken,
    /// Coalesces concurrent app-mode authorizations.
    pub auth_gate: AuthGate,
    /// Remembered parent chains for audit records.
    pub ancestry: crate::peer::AncestryCache,
    /// Live scoped grants.
    pub grants: crate::grants::Grants,
    /// What the presence watcher sees, and why sessions were locked.
    pub presence: crate::presence::seen::Presence,
    /// `[confirm]`: prompts open and approvals remembered.
    pub confirm: crate::confirm::Confirm,
    /// Request budgets and 429 retry times (kept across restarts).
    pub quota: Arc<crate::quota::Quotas>,
    /// The per-caller brake.
    pub brake: crate::brake::Brake,
}

impl Daemon {
    /// Build the state.
    pub fn new(config: Config, info: DaemonInfo, clock: Arc<dyn Clock>) -> Daemon {
        let op = OpRunner::new(
            config.op_path.clone(),
            config.op_timeout,
            config.pass_env.clone(),
            config.op_env.clone().into_iter().collect(),
        );
        let audit = if config.audit {
            op_session_paths::audit_path().ok().map(Audit::new)
        } else {
            None
        };
        let confirm = crate::confirm::Confirm::new(&config.confirm, clock.clone());
        let quota = Arc::new(crate::quota::Quotas::new(
            config.quota.clone(),
            clock.clone(),
            op_session_paths::state_dir()
                .ok()
                .map(|d| d.join(crate::quota::FILE_NAME)),
        ));
        let brake =
            crate::brake::Brake::new(config.quota.caller_errors_per_minute(), clock.clone());
        Daemon {
            confirm,
            sessions: Sessions::new(config.default_account.clone()),
            cache: Cache::new(config.cache_ttl).with_negative_ttl(config.negative_ttl),
            quota,
            brake,
            op,
            audit,
            config,
            info,
            clock,
            shutdown: CancellationToken::new(),
            auth_gate: AuthGate::default(),
            ancestry: crate::peer::AncestryCache::default(),
            grants: crate::grants::Grants::default(),
            presence: crate::presence::seen::Presence::from_env(),
        }
    }
}

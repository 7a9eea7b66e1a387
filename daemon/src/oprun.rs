//! Running `op` children: which binary, with what environment, for how long.
//!
//! Owns: finding `op` lazily (config `op_path`, else the fixed system PATH, never a caller's,
//! skipping our own shim), building the child's environment from the daemon's own allowlist
//! plus the one session variable (never `--session` on argv), putting each child in its own process group, killing the group at the deadline
//! (SIGTERM, then SIGKILL) or when the caller goes away, and capping what it may print.
//!
//! Never logs a token, an environment value, or `op`'s stdout. stderr is returned raw; callers
//! scrub it (see [`crate::scrub`]) before it leaves the daemon.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use secrecy::ExposeSecret;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use zeroize::Zeroizing;

use crate::securemem::SecretToken;

mod child;

mod error;

pub(crate) use child::EventSource;
use child::{read_capped, relay_masked, relay_scrubbed, wait_child};
pub(crate) use error::OpError;

/// Variables an `op` child inherits from the daemon's own environment (set at login by the
/// service manager, or by the client's clean auto-start; never a caller's): the person's
/// session ([`op_session_paths::SESSION_ENV`]) plus what `op` itself reads. Nothing that loads
/// code or redirects traffic: a proxy or CA bundle is set with `op_env` (or named in
/// `pass_env`) in the config.
const OP_ONLY_ENV: &[&str] = &["OP_BIOMETRIC_UNLOCK_ENABLED"];

/// How a child authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    /// No credential (app integration, or a call that needs none).
    None,
    /// A token session: `var` is `OP_SESSION_<USERUUID>`.
    Token {
        /// The variable name.
        var: &'a str,
        /// The token.
        token: &'a str,
    },
    /// A service account.
    ServiceAccount {
        /// The `ops_…` token.
        token: &'a str,
    },
    /// A Connect server: `OP_CONNECT_HOST` and `OP_CONNECT_TOKEN`.
    Connect {
        /// The server's base URL.
        host: &'a str,
        /// The Connect token.
        token: &'a str,
    },
}

impl std::fmt::Debug for Auth<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("Auth::None"),
            Auth::Token { var, .. } => write!(f, "Auth::Token({var}, [REDACTED])"),
            Auth::ServiceAccount { .. } => f.write_str("Auth::ServiceAccount([REDACTED])"),
            Auth::Connect { host, .. } => write!(f, "Auth::Connect({host}, [REDACTED])"),
        }
    }
}

/// What a finished `op` call left.
pub struct OpOutput {
    /// Exit code (128+N when killed by signal N).
    pub code: i32,
    /// stdout, wiped on drop (it may hold secret values).
    pub stdout: Zeroizing<Vec<u8>>,
    /// stderr as printed (NOT yet scrubbed), except for a passthrough, whose stderr was
    /// scrubbed as it was relayed.
    pub stderr: String,
}

impl std::fmt::Debug for OpOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpOutput")
            .field("code", &self.code)
            .field("stdout_len", &self.stdout.len())
            .finish_non_exhaustive()
    }
}

impl OpOutput {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

/// Where the child's stdio goes.
#[derive(Debug, Default)]
pub enum ChildIo {
    /// Capture stdout and stderr; feed `stdin` (or /dev/null).
    #[default]
    Capture,
    /// Use the caller's passed descriptors (passthrough). stdin goes to `op` directly; stdout
    /// and stderr go through pipes and are relayed with every one of `secrets` replaced
    /// (stdout as a byte stream, masking each credential and its encoded forms; stderr line by
    /// line), so a token `op` might print never reaches the caller, and the daemon can read an
    /// auth failure on this path too.
    Passed {
        /// stdin, stdout, stderr.
        fds: [OwnedFd; 3],
        /// What to scrub from stdout and stderr (every credential the daemon holds).
        secrets: Vec<Arc<SecretToken>>,
    },
}

/// Runs `op`.
#[derive(Debug)]
pub struct OpRunner {
    configured: Option<PathBuf>,
    /// The binary once found. A failure is not remembered, so installing `op` later works
    /// without restarting the daemon.
    resolved: Mutex<Option<PathBuf>>,
    /// How long one call may take.
    pub timeout: Duration,
    pass_env: Vec<String>,
    op_env: Vec<(String, String)>,
}

/// A running child whose process group is killed if this is dropped before it is reaped
/// (the caller went away, or the task was cancelled).
struct GroupGuard {
    pgid: Option<Pid>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl OpRunner {
    /// A runner; `configured` is config `op_path`, `pass_env` and `op_env` the config's.
    pub fn new(
        configured: Option<PathBuf>,
        timeout: Duration,
        pass_env: Vec<String>,
        op_env: Vec<(String, String)>,
    ) -> Self {
        OpRunner {
            configured,
            resolved: Mutex::new(None),
            timeout,
            pass_env,
            op_env,
        }
    }

    /// Whether `op` is the configured `op_path` (a person named it) rather than found.
    pub fn is_configured(&self) -> bool {
        self.configured.is_some()
    }

    /// The `op` binary, found on first success and remembered.
    pub fn op_path(&self) -> Result<PathBuf, OpError> {
        let mut found = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = found.as_ref() {
            return Ok(p.clone());
        }
        let p = find_op(self.configured.as_deref()).map_err(OpError::NotFound)?;
        *found = Some(p.clone());
        Ok(p)
    }

    /// The environment of every `op` child: the allowlist from the daemon's own environment,
    /// the config's `pass_env` and `op_env`, and the fixed system `PATH`. Callers add only
    /// presentation variables (see [`op_grammar::env::CALLER_PRESENTATION_VARS`]).
    pub fn base_env(&self) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| {
                let Some(k) = k.to_str() else { return false };
                !op_grammar::env::is_credential_var(k)
                    && (op_session_paths::is_session_var(k)
                        || OP_ONLY_ENV.contains(&k)
                        || self.pass_env.iter().any(|p| p == k))
            })
            .collect();
        env.retain(|(k, _)| !self.op_env.iter().any(|(n, _)| k == n.as_str()));
        env.extend(
            self.op_env
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        );
        env.push(("PATH".into(), op_session_paths::SYSTEM_PATH.into()));
        env
    }

    /// Run `op args` for the daemon itself, capturing output.
    pub async fn run(
        &self,
        args: &[String],
        auth: Auth<'_>,
        stdin: Option<&[u8]>,
    ) -> Result<OpOutput, OpError> {
        let env = self.base_env();
        self.run_with(args, auth, env, None, stdin, ChildIo::Capture, None)
            .await
    }

    /// Run `op args` with an explicit environment, working directory and stdio.
    ///
    /// `events` lets a passthrough forward signals and notice a vanished client: when it
    /// resolves with `None` the child's group is killed.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_with(
        &self,
        args: &[String],
        auth: Auth<'_>,
        env: Vec<(OsString, OsString)>,
        cwd: Option<&Path>,
        stdin: Option<&[u8]>,
        io: ChildIo,
        events: Option<&mut (dyn EventSource + Send)>,
    ) -> Result<OpOutput, OpError> {
        let path = self.op_path()?;
        let mut cmd = Command::new(&path);
        cmd.args(args).env_clear().envs(env);
        match auth {
            Auth::None => {}
            Auth::Token { var, token } => {
                cmd.env(var, token);
            }
            Auth::ServiceAccount { token } => {
                cmd.env("OP_SERVICE_ACCOUNT_TOKEN", token);
            }
            Auth::Connect { host, token } => {
                cmd.env("OP_CONNECT_HOST", host)
                    .env("OP_CONNECT_TOKEN", token);
            }
        }
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        cmd.process_group(0);
        let mut relay: Option<(OwnedFd, Vec<Arc<SecretToken>>)> = None;
        let mut out_sink: Option<(OwnedFd, secret_ref::Masker)> = None;
        match io {
            ChildIo::Capture => {
                cmd.stdin(if stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            }
            ChildIo::Passed { fds, secrets } => {
                let [i, o, e] = fds;
                cmd.stdin(Stdio::from(i))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                let masker = secret_ref::Masker::with_forms(
                    secrets.iter().map(|s| s.expose_secret().as_bytes()),
                    secret_ref::Forms::default(),
                );
                out_sink = Some((o, masker));
                relay = Some((e, secrets));
            }
        }
        let mut child = cmd.spawn().map_err(|source| OpError::Spawn {
            path: path.clone(),
            source,
        })?;
        // The Command held a copy of the environment (with the token); drop it now.
        drop(cmd);
        let mut guard = GroupGuard {
            pgid: child.id().map(|p| Pid::from_raw(p as i32)),
        };

        let stdin_task = match (child.stdin.take(), stdin) {
            (Some(mut w), Some(data)) => {
                let data = Zeroizing::new(data.to_vec());
                Some(tokio::spawn(async move {
                    let _ = w.write_all(&data).await;
                    let _ = w.shutdown().await;
                }))
            }
            _ => None,
        };
        let out_task = child.stdout.take().map(|r| match out_sink {
            Some((sink, masker)) => tokio::spawn(relay_masked(r, sink, masker)),
            None => tokio::spawn(read_capped(r)),
        });
        let err_task = child.stderr.take().map(|r| match relay {
            Some((sink, secrets)) => tokio::spawn(relay_scrubbed(r, sink, secrets)),
            None => tokio::spawn(read_capped(r)),
        });

        let status = wait_child(&mut child, guard.pgid, self.timeout, events).await;
        // Reaped (or we are about to report failure): the group may still hold grandchildren
        // that keep pipes open; end them before collecting output.
        if let Some(pgid) = guard.pgid.take() {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
        if let Some(t) = stdin_task {
            t.abort();
        }
        let code = status?;
        let stdout = match out_task {
            Some(t) => t.await.unwrap_or(Ok(Zeroizing::new(Vec::new())))?,
            None => Zeroizing::new(Vec::new()),
        };
        let stderr = match err_task {
            Some(t) => t.await.unwrap_or(Ok(Zeroizing::new(Vec::new())))?,
            None => Zeroizing::new(Vec::new()),
        };
        Ok(OpOutput {
            code,
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }
}

/// Our own executable's canonical path, to skip the shim (a symlink to op-session).
fn own_client_paths() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(me) = std::env::current_exe()
        && let Some(dir) = me.parent()
        && let Ok(c) = dir.join("op-session").canonicalize()
    {
        v.push(c);
    }
    v
}

/// Whether `p` is (a link to) op-session rather than the real `op`.
fn is_shim(p: &Path, ours: &[PathBuf]) -> bool {
    let Ok(real) = p.canonicalize() else {
        return false;
    };
    if ours.contains(&real) {
        return true;
    }
    real.file_name().and_then(|n| n.to_str()) == Some("op-session")
}

fn find_op(configured: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = configured {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(format!(
                "op_path {} from the op-session config does not exist",
                p.display()
            ))
        };
    }
    let ours = own_client_paths();
    for dir in std::env::split_paths(op_session_paths::SYSTEM_PATH) {
        let cand = dir.join("op");
        if cand.is_file() && !is_shim(&cand, &ours) {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = cand.metadata()
                && m.permissions().mode() & 0o111 != 0
            {
                return Ok(cand);
            }
        }
    }
    Err(format!(
        "the 1Password CLI (op) was not found in {} (op-session's own `op` shim is skipped; \
         a caller's PATH is never searched)",
        op_session_paths::SYSTEM_PATH
    ))
}

#[cfg(test)]
mod tests;

//! `op ARGS` on the caller's behalf, with the caller's own stdin, stdout and stderr.
//!
//! Owns: the caller's environment minus credentials plus the session's one variable, the
//! caller's working directory, forwarding the caller's signals to `op`'s process group, and
//! killing that group when the caller vanishes. Output never passes through the daemon: `op`
//! writes straight to the descriptors the client passed. Writes (create, edit, delete, move)
//! drop the account's cache so later reads cannot return stale values.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use op_session_protocol::{ClientEvent, ErrorBody, ErrorCode, PassthroughRequest};
use tokio::net::UnixStream;

use crate::connection::read_event;
use crate::lifecycle::op_error;
use crate::oprun::{ChildIo, EventSource};
use crate::policy;
use crate::session::Lease;
use crate::state::Daemon;

/// Reads [`ClientEvent`]s from the connection while `op` runs.
struct ConnEvents<'a> {
    stream: &'a mut UnixStream,
}

impl EventSource for ConnEvents<'_> {
    fn next_event(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<i32>> + Send + '_>> {
        Box::pin(async move {
            match read_event(self.stream).await {
                Ok(Some(ClientEvent::Signal { signal })) => Some(signal),
                Ok(None) | Err(_) => None,
            }
        })
    }
}

/// Whether a verb changes items or vaults (so cached values may be stale).
pub fn is_write(args: &[String]) -> bool {
    let (words, _) = policy::verb_of(args);
    let first = words.first().map(String::as_str).unwrap_or("");
    let last = words.last().map(String::as_str).unwrap_or("");
    matches!(first, "item" | "document" | "vault")
        && matches!(
            last,
            "create" | "edit" | "delete" | "move" | "archive" | "restore"
        )
}

pub use op_session_protocol::opargs::account_flag as account_in_args;

/// Run the passthrough. Returns `op`'s exit code.
pub async fn run(
    daemon: &Arc<Daemon>,
    lease: &Lease,
    req: &PassthroughRequest,
    fds: Vec<OwnedFd>,
    stream: &mut UnixStream,
) -> Result<i32, ErrorBody> {
    let fds: [OwnedFd; 3] = fds.try_into().map_err(|_| {
        ErrorBody::new(
            ErrorCode::BadRequest,
            "a passthrough must pass exactly stdin, stdout and stderr",
        )
    })?;
    let mut env: Vec<(OsString, OsString)> = req
        .env
        .iter()
        .filter(|(k, _)| {
            !k.starts_with("OP_SESSION_")
                && k != "OP_SERVICE_ACCOUNT_TOKEN"
                && !k.starts_with("LISTEN_")
                && !k.is_empty()
                && !k.contains('=')
        })
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect();
    let has_account =
        account_in_args(&req.args).is_some() || env.iter().any(|(k, _)| k == "OP_ACCOUNT");
    if !has_account && let Some(a) = &lease.account_arg {
        env.push(("OP_ACCOUNT".into(), a.into()));
    }
    let cwd = Path::new(&req.cwd);
    let cwd = cwd.is_dir().then_some(cwd);
    let mut events = ConnEvents { stream };
    let out = daemon
        .op
        .run_with(
            &req.args,
            lease.auth(),
            env,
            cwd,
            None,
            ChildIo::Passed { fds },
            Some(&mut events),
        )
        .await
        .map_err(op_error)?;
    if out.success() {
        daemon
            .sessions
            .touch(&lease.name, lease.generation, daemon.clock.now());
    }
    if is_write(&req.args) {
        let n = daemon.cache.drop_account(&lease.name);
        tracing::debug!(account = %lease.name, dropped = n, "write through passthrough dropped the cache");
    }
    Ok(out.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn writes_and_accounts_are_recognized() {
        assert!(is_write(&a("item edit foo password=x")));
        assert!(is_write(&a("--account my item create --category login")));
        assert!(!is_write(&a("item get foo")));
        assert_eq!(
            account_in_args(&a("item get x --account=work")).as_deref(),
            Some("work")
        );
        assert_eq!(
            account_in_args(&a("--account home read op://a/b/c")).as_deref(),
            Some("home")
        );
    }
}

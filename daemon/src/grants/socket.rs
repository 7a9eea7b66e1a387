//! Opening a grant: checking the request, binding its socket (in a 0700 directory of ours,
//! the socket 0600, a stale socket of ours replaced, a live one refused) and serving it with
//! the same connection handling as the main socket, the grant as each request's scope.
//!
//! The table and the scope rules are in [`super`], which the shared state holds; this module
//! is the part that needs the daemon.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use op_session_protocol::{GrantInfo, GrantRequest};

use crate::error::Error;
use tokio::net::UnixListener;
use tracing::info;

use super::{DEFAULT_TTL, DEFAULT_VERBS, Grant, bad, valid_name};
use crate::state::Daemon;

/// Bind a grant socket: its directory must be ours and private (created 0700 if missing);
/// a stale socket of ours is replaced, anything that answers is refused.
fn bind(path: &Path) -> Result<(UnixListener, (u64, u64)), Error> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    op_session_paths::check_socket_len(path).map_err(|e| bad(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    op_session_paths::ensure_private_dir(dir).map_err(|e| bad(e.to_string()))?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(bad(format!("{} is in use", path.display())));
            }
            let _ = std::fs::remove_file(path);
        }
        Ok(_) => {
            return Err(bad(format!(
                "{} exists and is not a socket",
                path.display()
            )));
        }
        Err(_) => {}
    }
    // The directory is 0700 and ours, so nobody else can reach the socket even before chmod.
    let std_listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| bad(format!("cannot bind {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| bad(format!("cannot chmod {}: {e}", path.display())))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| bad(e.to_string()))?;
    let meta = std::fs::symlink_metadata(path).map_err(|e| bad(e.to_string()))?;
    let listener = UnixListener::from_std(std_listener).map_err(|e| bad(e.to_string()))?;
    Ok((listener, (meta.dev(), meta.ino())))
}

/// Open a grant: check the request, bind its socket, start serving it.
pub(crate) async fn open(daemon: &Arc<Daemon>, req: GrantRequest) -> Result<GrantInfo, Error> {
    if !valid_name(&req.name) {
        return Err(bad(format!(
            "\"{}\" is not a grant name (letters, digits, '-', '_', '.'; at most 64)",
            req.name
        )));
    }
    if daemon.grants.lock().contains_key(&req.name) {
        return Err(bad(format!("a grant named {} exists", req.name))
            .with_fix(format!("op-session revoke {} first", req.name)));
    }
    let ttl = match &req.ttl {
        Some(t) => crate::config::parse_duration(t).map_err(bad)?,
        None => DEFAULT_TTL,
    };
    if ttl.is_zero() {
        return Err(bad("a grant's --ttl must be more than zero".into()));
    }
    let mut keys = Vec::new();
    for r in &req.refs {
        let p = secret_ref::reference::parse(r)
            .map_err(|e| bad(format!("cannot read the reference '{r}': {e}")))?;
        keys.push(p.normalized());
    }
    let mut allow = Vec::new();
    for a in &req.allow {
        let words: Vec<&str> = a.split_whitespace().collect();
        let verb = match words.as_slice() {
            [one] if DEFAULT_VERBS.contains(one) => one.to_string(),
            _ => op_grammar::parse(&words)
                .ok()
                .filter(|c| c.spec.is_some() && c.positionals.is_empty())
                .map(|c| c.path)
                .ok_or_else(|| bad(format!("\"{a}\" is not an op verb")))?,
        };
        allow.push(verb);
    }
    // The grant draws on a live session, named now.
    let lease = crate::init::lease_or_start(daemon, req.account.as_deref()).await?;
    let (socket, own_dir) = match &req.socket {
        Some(s) => (PathBuf::from(s), None),
        None => {
            let base = op_session_paths::grants_dir(&daemon.info.socket);
            op_session_paths::ensure_private_dir(&base).map_err(|e| bad(e.to_string()))?;
            let socket = op_session_paths::grant_socket(&daemon.info.socket, &req.name);
            let dir = socket.parent().unwrap_or(&base).to_path_buf();
            (socket, Some(dir))
        }
    };
    if !socket.is_absolute() {
        return Err(bad(format!(
            "--socket {} must be absolute",
            socket.display()
        )));
    }
    let (listener, inode) = bind(&socket)?;
    if own_dir.is_none() {
        // Outside the layout, a marker tells clients this path is a grant's, now and after it
        // ends, so none auto-starts a daemon on it (crates/paths, `is_grant_socket`).
        // The path is the caller's choice: only an earlier grant's empty marker may be
        // replaced, never a file (or link) that happens to carry the name.
        let marker = op_session_paths::grant_marker(&socket);
        if let Ok(m) = marker.symlink_metadata()
            && !(m.is_file() && m.len() == 0)
        {
            crate::socket::remove_if_ours(&socket, Some(inode));
            return Err(bad(format!(
                "{} exists and is not a grant's marker; choose another --grant-socket path",
                marker.display()
            )));
        }
        if let Err(e) = op_session_paths::write_atomic(&marker, b"", Some(0o600)) {
            crate::socket::remove_if_ours(&socket, Some(inode));
            return Err(bad(format!("cannot write {}: {e}", marker.display())));
        }
    }
    let now = daemon.clock.now();
    let grant = Arc::new(Grant {
        name: req.name.clone(),
        socket,
        own_dir,
        inode: Some(inode),
        account: lease.name.clone(),
        generation: lease.generation,
        vaults: req.vaults.clone(),
        refs: keys,
        refs_given: req.refs.clone(),
        allow,
        passthrough: !req.no_passthrough,
        confirm: req.confirm,
        deadline: now + ttl,
        max_reads: req.max_reads,
        reads: AtomicU64::new(0),
        ended: daemon.shutdown.child_token(),
    });
    {
        let mut live = daemon.grants.lock();
        if live.contains_key(&grant.name) {
            crate::socket::remove_if_ours(&grant.socket, grant.inode);
            return Err(bad(format!("a grant named {} exists", grant.name)));
        }
        live.insert(grant.name.clone(), grant.clone());
    }
    daemon.sessions.changed.notify_one(); // the expiry timer now also watches this grant
    info!(grant = %grant.name, account = %grant.account, socket = %grant.socket.display(), "grant opened");
    daemon.grants.serve(listener, grant.clone());
    Ok(grant.info(now))
}

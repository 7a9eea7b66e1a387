//! Scoped grants: second sockets with a narrower scope and a shorter life.
//!
//! Owns the table of live grants, the scope rules a request through a grant must pass on top
//! of the daemon's policy (the narrower wins), its read budget, and ending it: `revoke`, its
//! TTL, its budget, or the end of the session it draws on. An ended grant's socket is closed
//! and removed, so a caller holding its path gets "unavailable". Opening one (binding its
//! socket) is [`socket`]'s job; serving it, with the same connection handling as the main
//! socket, is [`crate::server`]'s, which receives each new socket from [`Grants::serve`].
//!
//! Never holds a credential: a grant names the session it draws on by account and generation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use op_grammar::{OpCommand, Vaults};
use op_session_protocol::GrantInfo;

use crate::error::Error;
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::session::Sessions;

pub(crate) mod socket;

/// A grant's life when the request names none.
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// Verbs a grant allows when `--allow` names none: secret access, no passthrough.
const DEFAULT_VERBS: &[&str] = &["read", "run", "inject"];

/// One live grant.
#[derive(Debug)]
pub struct Grant {
    /// Its name.
    pub name: String,
    /// Its socket.
    pub socket: PathBuf,
    /// The directory made for it (removed with it), when the socket is in the default place.
    own_dir: Option<PathBuf>,
    /// The socket file we created (device, inode), removed only if still ours.
    inode: Option<(u64, u64)>,
    /// The session it draws on: its account name and generation.
    pub account: String,
    generation: u64,
    /// Vaults it may read from; empty: any the policy allows.
    pub vaults: Vec<String>,
    /// Cache keys (normalized references) it may resolve; empty: any in its vaults.
    refs: Vec<String>,
    /// The references as given, for display.
    refs_given: Vec<String>,
    /// Canonical verbs it may use.
    pub allow: Vec<String>,
    /// Whether a passthrough may be allowed at all.
    pub passthrough: bool,
    /// Every value handed out through it asks a person first (`grant --confirm`).
    pub confirm: bool,
    /// When it ends, on the deadline clock.
    deadline: Duration,
    /// Its read budget.
    pub max_reads: Option<u64>,
    /// Values handed out (or reserved for a request in flight).
    reads: AtomicU64,
    /// Cancelled when it ends: stops its accept loop and its connections.
    pub ended: CancellationToken,
}

impl Grant {
    fn info(&self, now: Duration) -> GrantInfo {
        GrantInfo {
            name: self.name.clone(),
            socket: self.socket.display().to_string(),
            account: self.account.clone(),
            vaults: self.vaults.clone(),
            refs: self.refs_given.clone(),
            allow: self.allow.clone(),
            passthrough: self.passthrough,
            expires_in_s: self.deadline.saturating_sub(now).as_secs(),
            max_reads: self.max_reads,
            reads_used: self
                .reads
                .load(Ordering::SeqCst)
                .min(self.max_reads.unwrap_or(u64::MAX)),
            confirm: self.confirm,
        }
    }

    fn denied(&self, what: String) -> Error {
        Error::denied(format!("{what} (grant {})", self.name)).with_fix(format!(
            "ask for a grant that covers it: op-session grant {} … on the main socket",
            self.name
        ))
    }

    /// The account every request through this grant uses.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The generation of the session it draws on.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether `verb` (canonical) is within the grant.
    pub fn check_verb(&self, verb: &str) -> Result<(), Error> {
        let allowed = if self.allow.is_empty() {
            DEFAULT_VERBS.contains(&verb)
        } else {
            self.allow.iter().any(|a| a == verb)
        };
        if allowed {
            Ok(())
        } else {
            Err(self.denied(format!("`{verb}` is not allowed")))
        }
    }

    /// Whether every reference is within the grant's vaults and references.
    pub fn check_refs(&self, refs: &[String]) -> Result<(), Error> {
        for r in refs {
            let parsed = secret_ref::Requested::parse(r)
                .map_err(|e| self.denied(format!("cannot read the reference '{r}' ({e})")))?;
            self.check_requested(std::slice::from_ref(&parsed))?;
        }
        Ok(())
    }

    /// [`Grant::check_refs`] for references already parsed (the resolve path's).
    pub fn check_requested(&self, refs: &[secret_ref::Requested]) -> Result<(), Error> {
        for r in refs {
            self.check_vaults([r.parsed.vault.as_str()])?;
            if !self.refs.is_empty() && !self.refs.contains(&r.key) {
                return Err(self.denied(format!("'{}' is not among its references", r.text)));
            }
        }
        Ok(())
    }

    fn check_vaults<'a>(&self, vaults: impl IntoIterator<Item = &'a str>) -> Result<(), Error> {
        if self.vaults.is_empty() {
            return Ok(());
        }
        for v in vaults {
            if !self.vaults.iter().any(|a| a.eq_ignore_ascii_case(v)) {
                return Err(self.denied(format!("vault \"{v}\" is outside it")));
            }
        }
        Ok(())
    }

    /// Whether a passthrough is within the grant: passthrough on, its verb allowed by name,
    /// and its vaults (which must be known) within the grant's.
    pub fn check_passthrough(&self, cmd: &OpCommand) -> Result<(), Error> {
        let verb = cmd.verb();
        if !self.passthrough || !self.allow.iter().any(|a| a == verb) {
            return Err(self.denied(format!("`op {verb}` is not allowed")));
        }
        if cmd.spec.map(|s| s.vault) == Some(op_grammar::VaultArg::Reference) {
            return self.check_refs(&cmd.positionals[..cmd.positionals.len().min(1)]);
        }
        if !self.refs.is_empty() {
            return Err(self.denied(format!("`op {verb}` cannot be limited to its references")));
        }
        match cmd.vaults() {
            Vaults::NoVault if self.vaults.is_empty() => Ok(()),
            Vaults::NoVault => Err(self.denied(format!("`op {verb}` works outside its vaults"))),
            Vaults::Named(v) => self.check_vaults(v.iter().map(String::as_str)),
            Vaults::Unknown(_) if self.vaults.is_empty() => Ok(()),
            Vaults::Unknown(why) => {
                Err(self.denied(format!("`op {verb}` cannot be checked: {why}")))
            }
        }
    }

    /// What a passthrough through this grant costs its read budget: `None` without a budget;
    /// with one, only `op read` (one value per call) may pass, since what other verbs print
    /// (whole items, lists, documents) cannot be counted value by value.
    pub fn passthrough_reads(&self, cmd: &OpCommand) -> Result<Option<u64>, Error> {
        let Some(max) = self.max_reads else {
            return Ok(None);
        };
        match cmd.verb() {
            "read" => Ok(Some(1)),
            verb => Err(self
                .denied(format!(
                    "`op {verb}` cannot be counted against its read budget ({max} values)"
                ))
                .with_fix(
                    "through a grant with --max-reads, use `op-session read` (or `op read \
                     REFERENCE`): each value is counted",
                )),
        }
    }

    /// Reserve `n` reads of the budget; the error names the grant when it is spent.
    pub fn reserve(&self, n: u64) -> Result<(), Error> {
        let before = self.reads.fetch_add(n, Ordering::SeqCst);
        let Some(max) = self.max_reads else {
            return Ok(());
        };
        if before + n > max {
            self.reads.fetch_sub(n, Ordering::SeqCst);
            return Err(self.denied(format!("its read budget ({max}) is spent ({before} used)")));
        }
        Ok(())
    }

    /// Give back reads reserved for a request that failed.
    pub fn refund(&self, n: u64) {
        self.reads.fetch_sub(n, Ordering::SeqCst);
    }

    /// Whether the budget is used up.
    pub fn spent(&self) -> bool {
        self.max_reads
            .is_some_and(|max| self.reads.load(Ordering::SeqCst) >= max)
    }
}

/// The table of live grants.
#[derive(Debug)]
pub struct Grants {
    live: Mutex<HashMap<String, Arc<Grant>>>,
    /// New grant sockets, on their way to the server (see [`Grants::serve`]).
    to_serve: mpsc::UnboundedSender<Opened>,
    /// Their receiving end, which [`crate::server::serve`] takes once.
    opened: Mutex<Option<mpsc::UnboundedReceiver<Opened>>>,
}

impl Default for Grants {
    fn default() -> Self {
        let (to_serve, opened) = mpsc::unbounded_channel();
        Grants {
            live: Mutex::default(),
            to_serve,
            opened: Mutex::new(Some(opened)),
        }
    }
}

/// A newly opened grant's socket, for the server to serve.
#[derive(Debug)]
pub struct Opened {
    /// The bound socket.
    pub listener: UnixListener,
    /// The grant it serves.
    pub grant: Arc<Grant>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn bad(msg: String) -> Error {
    Error::bad_request(msg)
}

impl Grants {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Grant>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every live grant, for `op-session grants`.
    pub fn list(&self, now: Duration) -> Vec<GrantInfo> {
        let mut v: Vec<GrantInfo> = self.lock().values().map(|g| g.info(now)).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The earliest time a grant ends by its TTL.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.lock().values().map(|g| g.deadline).min()
    }

    /// End a grant: close its socket (and connections), remove the file. `None` if there is
    /// no such grant.
    pub fn revoke(&self, name: &str, why: &str) -> Option<Arc<Grant>> {
        let g = self.lock().remove(name)?;
        g.ended.cancel();
        crate::socket::remove_if_ours(&g.socket, g.inode);
        if let Some(dir) = &g.own_dir {
            let _ = std::fs::remove_dir(dir);
        }
        info!(grant = %g.name, reason = why, "grant ended");
        Some(g)
    }

    /// End every grant whose TTL passed or whose session ended.
    pub fn sweep(&self, sessions: &Sessions, now: Duration) {
        let gone: Vec<(String, &'static str)> = self
            .lock()
            .values()
            .filter_map(|g| {
                if now >= g.deadline {
                    Some((g.name.clone(), "its time ran out"))
                } else if !sessions.is_current(&g.account, g.generation, now) {
                    Some((g.name.clone(), "the session it draws on ended"))
                } else {
                    None
                }
            })
            .collect();
        for (name, why) in gone {
            self.revoke(&name, why);
        }
    }

    /// Hand a new grant's socket to the server, which serves it like the main socket. (A
    /// channel rather than a call: the server handles the request that opens a grant, so
    /// calling back into it would make the modules depend on each other.)
    pub fn serve(&self, listener: UnixListener, grant: Arc<Grant>) {
        if let Err(e) = self.to_serve.send(Opened { listener, grant }) {
            // Only when the server has stopped: the daemon is shutting down.
            self.revoke(&e.0.grant.name, "the daemon stopped");
        }
    }

    /// The stream of new grant sockets; `None` after the first call.
    pub fn take_opened(&self) -> Option<mpsc::UnboundedReceiver<Opened>> {
        self.opened.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// End every grant (daemon shutdown).
    pub fn revoke_all(&self) {
        let names: Vec<String> = self.lock().keys().cloned().collect();
        for n in names {
            self.revoke(&n, "the daemon stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(vaults: &[&str], refs: &[&str], allow: &[&str], passthrough: bool) -> Grant {
        Grant {
            name: "g".into(),
            socket: "/nonexistent".into(),
            own_dir: None,
            inode: None,
            account: "my".into(),
            generation: 1,
            vaults: vaults.iter().map(|s| s.to_string()).collect(),
            refs: refs
                .iter()
                .map(|r| secret_ref::reference::parse(r).expect("ref").normalized())
                .collect(),
            refs_given: Vec::new(),
            allow: allow.iter().map(|s| s.to_string()).collect(),
            passthrough,
            confirm: false,
            deadline: Duration::from_secs(10),
            max_reads: Some(2),
            reads: AtomicU64::new(0),
            ended: CancellationToken::new(),
        }
    }

    fn cmd(s: &str) -> OpCommand {
        op_grammar::parse(&s.split_whitespace().collect::<Vec<_>>()).expect("parses")
    }

    #[test]
    fn the_narrower_scope_wins() {
        let g = grant(&["Dev"], &[], &[], true);
        assert!(g.check_verb("read").is_ok());
        assert!(
            g.check_verb("item get").is_err(),
            "passthrough verbs need --allow"
        );
        assert!(g.check_refs(&["op://dev/Stripe/key".into()]).is_ok());
        let e = g
            .check_refs(&["op://Prod/Stripe/key".into()])
            .expect_err("outside");
        assert!(matches!(e, Error::Denied(_)), "{e}");
        assert!(e.to_string().contains("grant g"), "{e}");
        assert!(
            g.check_passthrough(&cmd("item get Stripe --vault Dev"))
                .is_err()
        );
        let g = grant(&["Dev"], &["op://Dev/Stripe/key"], &["item get"], true);
        assert!(
            g.check_refs(&["op://Dev/Database/password".into()])
                .is_err()
        );
        assert!(
            g.check_passthrough(&cmd("item get Stripe --vault Dev"))
                .is_err(),
            "refs limit"
        );
        let g = grant(&["Dev"], &[], &["item get"], true);
        assert!(
            g.check_passthrough(&cmd("item get Stripe --vault Dev"))
                .is_ok()
        );
        assert!(
            g.check_passthrough(&cmd("item get Stripe")).is_err(),
            "vault unknown"
        );
        assert!(
            g.check_passthrough(&cmd("item get Stripe --vault Prod"))
                .is_err()
        );
        let g = grant(&[], &[], &["item get"], false);
        assert!(
            g.check_passthrough(&cmd("item get Stripe")).is_err(),
            "--no-passthrough"
        );
    }

    #[test]
    fn passthrough_through_a_budget_is_read_only_and_counted() {
        let mut g = grant(&[], &[], &["read", "item get"], true);
        g.max_reads = None;
        assert_eq!(
            g.passthrough_reads(&cmd("read op://Dev/a/b")).ok(),
            Some(None)
        );
        g.max_reads = Some(3);
        assert_eq!(
            g.passthrough_reads(&cmd("--cache read op://Dev/a/b")).ok(),
            Some(Some(1))
        );
        assert!(g.passthrough_reads(&cmd("item get a --vault Dev")).is_err());
    }

    #[test]
    fn the_read_budget_is_counted_and_refunded() {
        let g = grant(&[], &[], &[], false);
        assert!(g.reserve(1).is_ok());
        assert!(g.reserve(2).is_err(), "over budget");
        g.refund(1);
        assert!(g.reserve(2).is_ok());
        assert!(g.spent());
    }

    #[test]
    fn names_are_plain() {
        assert!(valid_name("sub-agent_1.ci"));
        for bad in ["", "../x", "a/b", ".hidden", "x y"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}

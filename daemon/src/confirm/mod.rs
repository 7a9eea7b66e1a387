//! A person confirms each use of a sensitive secret, out of the agent's reach (`[confirm]`).
//!
//! Owns the gate every path that hands out a matching value passes after its session is
//! leased and before any value leaves ([`Confirm::gate`]): `read`, `run` and `inject` (cached
//! values too: the cache saves `op` calls, not approvals), the MCP tools that resolve, a grant
//! opened with `--confirm`, and passthrough commands that print an item's fields. Also owns
//! sharing one prompt among concurrent requests of the same caller ([`Caller`], `caller.rs`:
//! its executable and agent process) for the same reference (a prompt ends when its last
//! waiting client goes away), and the approvals remembered for `remember`.
//!
//! The person's answer comes only from a channel the socket cannot reach: an askpass program
//! ([`askpass`]), the desktop notification service ([`notify`]) or, on macOS, a dialog
//! ([`osascript`]). No request answers, widens or extends an approval; `approvals --forget`
//! only removes. Remembered approvals belong to one session generation, so a lock, an expiry
//! or a re-init ends them, and sleep or a screen lock drops them all ([`Confirm::forget_all`]).
//!
//! Never holds or logs a value: it sees references, account names and process names only.

pub(crate) mod askpass;
mod caller;
pub(crate) mod notify;
pub(crate) mod osascript;
pub(crate) mod rules;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use op_session_protocol::{ApprovalInfo, ConfirmRecord, ConfirmStatus};

use crate::error::{Detail, Error};
use tokio::net::UnixStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::session::{Lease, Sessions};

pub(crate) use caller::Caller;
use caller::{CallerKey, clean};
pub(crate) use rules::{ConfirmConfig, Rules};

/// What a channel heard from the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Yes; `remember` when the person chose (or the channel only offers) the remembered form.
    Allow {
        /// Remember it for `remember`, if that is more than zero.
        remember: bool,
    },
    /// No.
    Deny,
}

/// How a prompt ended.
#[derive(Debug, Clone)]
enum Ended {
    /// The answer, its channel, and until when it is remembered.
    Answered(Answer, &'static str, Option<String>),
    Timeout(&'static str),
    /// No channel could show it: why, per channel tried.
    Unavailable(String),
}

/// Something a request would hand out: a reference, or an item whose fields a passthrough
/// prints.
#[derive(Debug, Clone)]
pub struct Subject {
    /// Its normalized form (approvals and shared prompts are keyed on it).
    key: String,
    /// As the person reads it.
    shown: String,
}

impl Subject {
    /// A reference as the caller wrote it.
    pub fn reference(r: &str) -> Subject {
        Subject {
            // The cache's key (`resolve::cache_key`, which this module may not import):
            // the normalized reference, or the text as given when it does not parse.
            key: secret_ref::reference::parse(r)
                .map(|p| p.normalized())
                .unwrap_or_else(|_| r.to_string()),
            shown: clean(r),
        }
    }

    /// Every field of an item (`op item get`); `vault` is `None` when the command names none.
    pub fn item(vault: Option<&str>, item: &str, verb: &str) -> Subject {
        let v = vault.unwrap_or("?");
        Subject {
            key: format!("op://{v}/{item}/*").to_ascii_lowercase(),
            shown: clean(&format!("every field of op://{v}/{item} (op {verb})")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PromptKey {
    caller: CallerKey,
    account: String,
    generation: u64,
    subject: String,
}

/// A prompt on screen, shared by the requests waiting for it. Dropped with its last waiter,
/// which ends the prompt.
#[derive(Debug)]
struct Prompt {
    answer: watch::Receiver<Option<Ended>>,
    cancel: CancellationToken,
}

impl Drop for Prompt {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[derive(Debug, Clone)]
struct Approval {
    key: PromptKey,
    /// On the deadline clock.
    until: Duration,
    /// RFC 3339, for the audit.
    until_text: String,
    exe: String,
    agent: Option<String>,
}

#[derive(Debug)]
struct Inner {
    clock: Arc<dyn Clock>,
    remember: Duration,
    prompts: Mutex<HashMap<PromptKey, Weak<Prompt>>>,
    approvals: Mutex<Vec<Approval>>,
}

impl Inner {
    fn remember(&self, key: &PromptKey, caller: &Caller) -> Option<String> {
        if self.remember.is_zero() {
            return None;
        }
        let until_text = jiff::Timestamp::now()
            .checked_add(self.remember)
            .map(|t| format!("{t:.3}"))
            .unwrap_or_default();
        let mut a = self.approvals.lock().unwrap_or_else(|e| e.into_inner());
        a.retain(|x| x.key != *key);
        a.push(Approval {
            key: key.clone(),
            until: self.clock.now() + self.remember,
            until_text: until_text.clone(),
            exe: caller.exe.clone(),
            agent: caller.agent.clone(),
        });
        Some(until_text)
    }
}

/// The confirmation state of the daemon.
#[derive(Debug)]
pub struct Confirm {
    cfg: ConfirmConfig,
    rules: Rules,
    inner: Arc<Inner>,
}

/// What the gate decided, and the audit's account of it.
#[derive(Debug)]
pub struct Gate {
    /// `Ok` when every matching subject was approved (or none matched).
    pub result: Result<(), Error>,
    /// For the audit record; `None` when nothing needed confirmation.
    pub record: Option<ConfirmRecord>,
}

/// Asking on a caller's behalf from a path that leases its own session (a passthrough, the
/// MCP item tools): the gate for what a command would print, and the audit's record of it.
#[derive(Debug)]
pub(crate) struct Ask<'a> {
    /// Who asks.
    pub caller: &'a Caller,
    /// Its connection, watched for a hang-up while the person is asked.
    pub stream: &'a UnixStream,
    /// How it went, for the audit.
    pub record: Option<ConfirmRecord>,
}

impl<'a> Ask<'a> {
    /// For `caller` on `stream`.
    pub(crate) fn new(caller: &'a Caller, stream: &'a UnixStream) -> Ask<'a> {
        Ask {
            caller,
            stream,
            record: None,
        }
    }

    /// Wait for the person when `cmd` would print something a rule (or `force`) covers.
    pub(crate) async fn command(
        &mut self,
        confirm: &Confirm,
        sessions: &Sessions,
        lease: &Lease,
        cmd: &op_grammar::OpCommand,
        force: bool,
    ) -> Result<(), Error> {
        let subjects = confirm.command_subjects(cmd, force);
        if subjects.is_empty() {
            return Ok(());
        }
        let gate = confirm
            .gate(sessions, self.caller, lease, &subjects, self.stream)
            .await;
        self.record = gate.record;
        gate.result
    }
}

/// A channel a prompt may use, in the order they are tried.
#[derive(Debug, Clone)]
enum Channel {
    Askpass(PathBuf),
    Notification(String),
    Osascript,
}

impl Channel {
    fn name(&self) -> &'static str {
        match self {
            Channel::Askpass(_) => "askpass",
            Channel::Notification(_) => "notification",
            Channel::Osascript => "osascript",
        }
    }
}

/// How to set a channel up, for the error when there is none.
const SET_UP: &str = "set askpass = \"/usr/bin/ssh-askpass\" under [confirm] in the op-session config (Debian: apt install ssh-askpass), or run op-sessiond in a desktop session with a notification service";

/// A timeout as the error says it: `60s`, `90s`, `1500ms`.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A span as a person reads it: `5m`, `1h 30m`.
fn human(d: Duration) -> String {
    humantime_serde::re::humantime::format_duration(d).to_string()
}

impl Confirm {
    /// From the checked config.
    pub fn new(cfg: &ConfirmConfig, clock: Arc<dyn Clock>) -> Confirm {
        Confirm {
            rules: Rules::new(cfg),
            cfg: cfg.clone(),
            inner: Arc::new(Inner {
                clock,
                remember: cfg.remember,
                prompts: Mutex::new(HashMap::new()),
                approvals: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Whether any rule is set.
    pub fn is_active(&self) -> bool {
        self.cfg.is_active()
    }

    /// Whether a reference needs confirmation.
    pub fn matches_reference(&self, r: &str) -> bool {
        self.rules.matches_reference(r)
    }

    /// What a passthrough command would print that needs confirmation: the reference of
    /// `op read`, every field of the item of `op item get`, `op item edit` (which prints the
    /// item it changed), `op item share` (a link that opens it) and `op document get`, and any template `op inject` reads (its
    /// references are out of the daemon's sight, so it asks whenever a rule is set). With
    /// `force` (a grant opened with `--confirm`) each of these asks.
    pub fn command_subjects(&self, cmd: &op_grammar::OpCommand, force: bool) -> Vec<Subject> {
        let verb = cmd.verb();
        let spec = cmd.spec.map(|s| s.vault);
        if spec == Some(op_grammar::VaultArg::Reference) {
            return cmd
                .positionals
                .first()
                .filter(|r| force || self.rules.matches_reference(r))
                .map(|r| vec![Subject::reference(r)])
                .unwrap_or_default();
        }
        if spec == Some(op_grammar::VaultArg::Template) {
            return if force || self.is_active() {
                vec![Subject {
                    key: format!("op-{verb}:template"),
                    shown: format!("the references of a template (op {verb})"),
                }]
            } else {
                Vec::new()
            };
        }
        if !matches!(
            verb,
            "item get" | "item edit" | "item share" | "document get"
        ) {
            return Vec::new();
        }
        let vault = match cmd.vaults() {
            op_grammar::Vaults::Named(v) => v.into_iter().next(),
            _ => None,
        };
        let item = cmd.positionals.first().filter(|p| p.as_str() != "-");
        if force
            || self
                .rules
                .matches_item(vault.as_deref(), item.map(String::as_str))
        {
            vec![Subject::item(
                vault.as_deref(),
                item.map_or("?", String::as_str),
                verb,
            )]
        } else {
            Vec::new()
        }
    }

    /// The channels to try, in order: the configured askpass, else the daemon's own
    /// `$SSH_ASKPASS`; the session bus's notification service; `osascript` on macOS.
    fn channels(&self) -> Vec<Channel> {
        let mut v = Vec::new();
        if let Some(p) = &self.cfg.askpass {
            v.push(Channel::Askpass(p.clone()));
        } else if let Some(p) = std::env::var_os("SSH_ASKPASS")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute() && p.is_file())
        {
            v.push(Channel::Askpass(p));
        }
        if let Some(a) = notify::address() {
            v.push(Channel::Notification(a));
        }
        if osascript::available() {
            v.push(Channel::Osascript);
        }
        v
    }

    /// `[confirm]` for `status`; `None` when no rule is set.
    pub fn status(&self, sessions: &Sessions) -> Option<ConfirmStatus> {
        if !self.is_active() {
            return None;
        }
        let channels = self.channels();
        let prompts_open = {
            let p = self.inner.prompts.lock().unwrap_or_else(|e| e.into_inner());
            p.values().filter(|w| w.strong_count() > 0).count()
        };
        Some(ConfirmStatus {
            refs: self.cfg.refs.clone(),
            vaults: self.cfg.vaults.clone(),
            channel: channels.first().map_or("none", Channel::name).to_string(),
            askpass: channels.iter().find_map(|c| match c {
                Channel::Askpass(p) => Some(p.display().to_string()),
                _ => None,
            }),
            timeout_s: self.cfg.timeout.as_secs(),
            remember_s: self.cfg.remember.as_secs(),
            prompts_open,
            approvals: self.approvals(sessions).len(),
        })
    }

    /// The approvals remembered now (expired ones and those of ended sessions are dropped).
    pub fn approvals(&self, sessions: &Sessions) -> Vec<ApprovalInfo> {
        let now = self.inner.clock.now();
        let mut a = self
            .inner
            .approvals
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        a.retain(|x| x.until > now && sessions.is_current(&x.key.account, x.key.generation, now));
        a.iter()
            .map(|x| ApprovalInfo {
                reference: x.key.subject.clone(),
                account: x.key.account.clone(),
                exe: x.exe.clone(),
                agent: x.agent.clone(),
                expires_in_s: x.until.saturating_sub(now).as_secs(),
            })
            .collect()
    }

    /// Drop every remembered approval (`approvals --forget`, sleep, screen lock). Returns how
    /// many there were.
    pub fn forget_all(&self) -> usize {
        let mut a = self
            .inner
            .approvals
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = a.len();
        a.clear();
        n
    }

    fn remembered(&self, sessions: &Sessions, key: &PromptKey) -> Option<String> {
        let now = self.inner.clock.now();
        let a = self
            .inner
            .approvals
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        a.iter()
            .find(|x| {
                x.key == *key
                    && x.until > now
                    && sessions.is_current(&key.account, key.generation, now)
            })
            .map(|x| x.until_text.clone())
    }

    /// Wait until the person approves every subject for `caller`, in order; the first no,
    /// timeout or missing channel fails the request. A client that hangs up (or sends
    /// anything) while it waits ends its wait, and a prompt nobody waits for any more closes.
    pub async fn gate(
        &self,
        sessions: &Sessions,
        caller: &Caller,
        lease: &Lease,
        subjects: &[Subject],
        stream: &UnixStream,
    ) -> Gate {
        let mut record: Option<ConfirmRecord> = None;
        let mut seen: Vec<&str> = Vec::new();
        for s in subjects {
            if seen.contains(&s.key.as_str()) {
                continue;
            }
            seen.push(&s.key);
            let key = PromptKey {
                caller: caller.key.clone(),
                account: lease.name.clone(),
                generation: lease.generation,
                subject: s.key.clone(),
            };
            if let Some(until) = self.remembered(sessions, &key) {
                record = Some(ConfirmRecord {
                    channel: "remembered".into(),
                    decision: "allow".into(),
                    remembered_until: Some(until),
                });
                continue;
            }
            let prompt = self.prompt(key, caller, s, &lease.name);
            let mut answer = prompt.answer.clone();
            let ended = tokio::select! {
                r = answer.wait_for(Option::is_some) => r.ok().and_then(|v| v.clone()),
                _ = client_gone(stream) => {
                    return Gate {
                        result: Err(Error::NotConfirmed(Detail::new(
                            "the client went away while the person was being asked",
                        ))),
                        record: Some(ConfirmRecord {
                            channel: String::new(),
                            decision: "gone".into(),
                            remembered_until: None,
                        }),
                    };
                }
            };
            drop(prompt);
            let (result, rec) = self.outcome(ended, s);
            record = Some(rec);
            if let Err(e) = result {
                return Gate {
                    result: Err(e),
                    record,
                };
            }
        }
        Gate {
            result: Ok(()),
            record,
        }
    }

    fn outcome(&self, ended: Option<Ended>, s: &Subject) -> (Result<(), Error>, ConfirmRecord) {
        let rec = |channel: &str, decision: &str, until: Option<String>| ConfirmRecord {
            channel: channel.into(),
            decision: decision.into(),
            remembered_until: until,
        };
        let ended = ended
            .unwrap_or_else(|| Ended::Unavailable("the prompt ended without an answer".into()));
        match ended {
            Ended::Answered(Answer::Allow { .. }, ch, until) => (Ok(()), rec(ch, "allow", until)),
            Ended::Answered(Answer::Deny, ch, _) => (
                Err(Error::ConfirmDenied(Detail::new(format!(
                    "denied by the person: {}",
                    s.shown
                )))),
                rec(ch, "deny", None),
            ),
            Ended::Timeout(ch) => (
                Err(Error::NotConfirmed(Detail::new(format!(
                    "not confirmed within {}: {}",
                    seconds(self.cfg.timeout),
                    s.shown
                )))),
                rec(ch, "timeout", None),
            ),
            Ended::Unavailable(why) => (
                Err(Error::NotConfirmed(Detail::new(format!(
                    "{} needs a person's confirmation and there is no way to ask ({why})",
                    s.shown
                )))
                .with_fix(SET_UP)),
                rec("none", "unavailable", None),
            ),
        }
    }

    /// The prompt for `key`: the one already on screen, or a new one.
    fn prompt(&self, key: PromptKey, caller: &Caller, s: &Subject, account: &str) -> Arc<Prompt> {
        let mut map = self.inner.prompts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = map.get(&key).and_then(Weak::upgrade) {
            return p;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let (tx, rx) = watch::channel(None);
        let cancel = CancellationToken::new();
        let prompt = Arc::new(Prompt {
            answer: rx,
            cancel: cancel.clone(),
        });
        let weak = Arc::downgrade(&prompt);
        map.insert(key.clone(), weak.clone());
        drop(map);
        let remember = (!self.cfg.remember.is_zero()).then(|| human(self.cfg.remember));
        let text = format!(
            "{} wants {} (account {}). {}",
            if caller.chain.is_empty() {
                "a process"
            } else {
                &caller.chain
            },
            s.shown,
            clean(account),
            match &remember {
                Some(r) => format!("Allow? Yes allows it for {r}."),
                None => "Allow once?".to_string(),
            }
        );
        let channels = self.channels();
        let timeout = self.cfg.timeout;
        let inner = self.inner.clone();
        let caller = caller.clone();
        info!(caller = %caller.chain, subject = %s.shown, account = %account, "asking the person to confirm");
        tokio::spawn(async move {
            let ended = tokio::select! {
                _ = cancel.cancelled() => None,
                e = ask(&channels, &text, remember.as_deref(), timeout) => Some(e),
            };
            let ended = ended.map(|e| match e {
                Ended::Answered(a @ Answer::Allow { remember: true }, ch, _) => {
                    Ended::Answered(a, ch, inner.remember(&key, &caller))
                }
                other => other,
            });
            // Late requests start afresh (or find the approval); then the waiters hear.
            {
                let mut map = inner.prompts.lock().unwrap_or_else(|e| e.into_inner());
                if map.get(&key).is_some_and(|w| w.ptr_eq(&weak)) {
                    map.remove(&key);
                }
            }
            match &ended {
                None => info!("the prompt closed: no client waits for it any more"),
                Some(e) => info!(outcome = ?e, "the prompt ended"),
            }
            let _ = tx.send(ended);
        });
        prompt
    }
}

/// Try each channel in order until one shows the prompt; the whole wait is bounded by
/// `timeout`.
async fn ask(channels: &[Channel], text: &str, remember: Option<&str>, timeout: Duration) -> Ended {
    let mut why = Vec::new();
    let mut channel = "none";
    let attempt = async {
        for c in channels {
            channel = c.name();
            let r = match c {
                Channel::Askpass(p) => askpass::ask(p, text).await.map_err(|e| e.0),
                Channel::Notification(addr) => {
                    notify::ask(addr, "op-session: confirm a secret", text, remember)
                        .await
                        .map_err(|e| e.0)
                }
                Channel::Osascript => osascript::ask(text, timeout + Duration::from_secs(5)).await,
            };
            match r {
                Ok(a) => return Some((a, c.name())),
                Err(e) => {
                    warn!(channel = c.name(), error = %e, "cannot ask with this channel; trying the next");
                    why.push(format!("{}: {e}", c.name()));
                }
            }
        }
        None
    };
    let r = tokio::time::timeout(timeout, attempt).await;
    match r {
        Ok(Some((a, ch))) => Ended::Answered(a, ch, None),
        Ok(None) if why.is_empty() => {
            Ended::Unavailable("no askpass program, no session bus".into())
        }
        Ok(None) => Ended::Unavailable(why.join("; ")),
        Err(_) => Ended::Timeout(channel),
    }
}

/// Resolves when the client hangs up or sends anything: a waiting client has nothing to say.
/// A client that only shut its writing side (end of file, no hang-up) still waits for its
/// answer, so after end of file only a hang-up counts. What it sent is looked at, not taken:
/// on a reused connection it is the start of the next request, which must stay whole.
async fn client_gone(stream: &UnixStream) {
    let mut buf = [0u8; 1];
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        let peeked = stream.try_io(tokio::io::Interest::READABLE, || {
            crate::connection::recv_with(stream, &mut buf, libc::MSG_PEEK)
        });
        match peeked {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Ok(0) => break,
            _ => return,
        }
    }
    loop {
        if hung_up(stream) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether both directions of the connection are closed (the client is gone).
fn hung_up(stream: &UnixStream) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::empty())];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests;

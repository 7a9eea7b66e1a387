//! The system bus watcher: logind's sleep signal, its sleep-delay inhibitor, and the lock
//! signals of the person's own sessions.
//!
//! Owns one connection to the system bus at a time and the inhibitor fd taken on it. While a
//! session that sleep would end is held, it holds a *delay* inhibitor
//! (`Manager.Inhibit("sleep", "op-sessiond", "wipe sessions", "delay")`); on
//! `PrepareForSleep(true)` it ends those sessions and then closes the fd so the sleep goes on;
//! after `PrepareForSleep(false)` it takes a new one if sessions are held again. A
//! `Session.Lock` signal, or `LockedHint` turning true, on one of our uid's sessions (from
//! `Manager.GetUser(uid)` → `User.Sessions`, plus `XDG_SESSION_ID`'s) ends the sessions a
//! screen lock ends. The API facts are in `docs/presence.md`.
//!
//! Anything unexpected (a malformed signal, logind missing or restarting, the bus closing)
//! drops the connection and tries again with backoff; status says so. It never panics on bus
//! input and never takes the daemon down.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use op_session_protocol::PresenceEvent;
use tracing::{debug, info, warn};
use zbus::message::Type as MessageType;
use zbus::{Connection, MatchRule, Message, MessageStream};
use zbus::{OwnedObjectPath, OwnedVariant};

use super::bus::{Backoff, Outage, connect};
use super::{Source, end_sessions};
use crate::state::Daemon;

const LOGIN1: &str = "org.freedesktop.login1";
const LOGIN1_PATH: &str = "/org/freedesktop/login1";
const MANAGER: &str = "org.freedesktop.login1.Manager";
const SESSION: &str = "org.freedesktop.login1.Session";
const USER: &str = "org.freedesktop.login1.User";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
const DBUS: &str = "org.freedesktop.DBus";

/// While the inhibitor is held, how often to check whether sessions are still held (none
/// left: let it go). Session starts wake the watcher at once instead. An inhibitor held a
/// little after the last session ended costs nothing: on `PrepareForSleep(true)` it is
/// closed at once.
const RECHECK: Duration = Duration::from_secs(15);

/// Why a connection was given up.
#[derive(Debug, thiserror::Error)]
enum Lost {
    #[error("{}", super::bus::reason(.0))]
    Bus(#[from] zbus::Error),
    #[error("logind (org.freedesktop.login1) is not on it")]
    NoLogind,
    #[error("logind restarted")]
    LogindRestarted,
    #[error("the bus closed the connection")]
    Closed,
}

/// Watch the system bus until the daemon shuts down, reconnecting with backoff.
pub(super) async fn watch(daemon: Arc<Daemon>) {
    let address = daemon.presence.buses.system.clone();
    let mut backoff = Backoff::default();
    let mut outage = Outage::new("system", "sleep and session locks");
    loop {
        let started = Instant::now();
        let mut connected = false;
        let result = tokio::select! {
            _ = daemon.shutdown.cancelled() => return,
            r = run(&daemon, &address, &mut connected) => r,
        };
        // `run` owned the inhibitor fd; it is closed now.
        daemon.presence.set_inhibitor(false);
        let Err(lost) = result;
        let wait = backoff.after(started.elapsed(), connected);
        let precise = matches!(lost, Lost::NoLogind).then(|| {
            format!(
                "no logind on the system bus at {address}; retrying in {}s",
                wait.as_secs()
            )
        });
        let note = outage.report(&address, &lost, connected, wait, precise);
        daemon.presence.set_system(Source::Down(note));
        tokio::select! {
            _ = daemon.shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn subscribe(conn: &Connection, rule: MatchRule<'_>) -> zbus::Result<MessageStream> {
    MessageStream::for_match_rule(rule, conn, NonZeroUsize::new(64)).await
}

fn signal<'a>(
    sender: &'a str,
    interface: &'a str,
    member: &'a str,
) -> zbus::match_rule::Builder<'a> {
    MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender(sender)
        .interface(interface)
        .member(member)
}

/// One connection's life. Returns only when it is lost.
async fn run(
    daemon: &Arc<Daemon>,
    address: &str,
    connected: &mut bool,
) -> Result<Infallible, Lost> {
    let conn = connect(address).await?;
    // Subscribe before asking anything, so no signal between the two is missed.
    let mut sleep = subscribe(
        &conn,
        signal(LOGIN1, MANAGER, "PrepareForSleep")
            .path(LOGIN1_PATH)
            .build()?,
    )
    .await?;
    let mut lock = subscribe(&conn, signal(LOGIN1, SESSION, "Lock").build()?).await?;
    let mut hints = subscribe(
        &conn,
        signal(LOGIN1, PROPERTIES, "PropertiesChanged")
            .arg(0, SESSION)
            .build()?,
    )
    .await?;
    let mut owner = subscribe(
        &conn,
        signal(DBUS, DBUS, "NameOwnerChanged")
            .arg(0, LOGIN1)
            .build()?,
    )
    .await?;
    let has_logind: bool = conn
        .call_method(
            Some(DBUS),
            "/org/freedesktop/DBus",
            Some(DBUS),
            "NameHasOwner",
            &(LOGIN1,),
        )
        .await?
        .body()
        .deserialize()?;
    if !has_logind {
        return Err(Lost::NoLogind);
    }
    *connected = true;

    let uid = daemon.info.uid;
    let xdg = daemon.presence.buses.xdg_session_id.clone();
    let mut ours = match our_sessions(&conn, uid, xdg.as_deref()).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot list this user's logind sessions; only screensavers report screen locks");
            HashSet::new()
        }
    };
    info!(address = %address, sessions = ours.len(), "watching sleep and session locks on the system bus");

    let rules = daemon.config.presence;
    let wants_inhibitor = || {
        daemon
            .sessions
            .any_mode(|m| rules.ends(PresenceEvent::Sleep, m))
    };
    let mut inhibitor: Option<OwnedFd> = None;
    // Set between PrepareForSleep(true) and (false): no new inhibitor while going to sleep.
    let mut sleeping = false;
    // Set when logind refused an inhibitor; cleared by the next session start or resume.
    let mut refused: Option<String> = None;

    loop {
        let want = !sleeping && wants_inhibitor();
        if want && inhibitor.is_none() && refused.is_none() {
            match inhibit(&conn).await {
                Ok(fd) => {
                    debug!("took a sleep-delay inhibitor");
                    inhibitor = Some(fd);
                }
                Err(e) => {
                    warn!(error = %e, "logind refused a sleep-delay inhibitor; sessions are still ended on sleep, but maybe only after the machine wakes");
                    refused = Some(format!(
                        "logind refused a sleep-delay inhibitor ({e}): sessions may be ended only after the machine wakes"
                    ));
                }
            }
        } else if !want && inhibitor.take().is_some() {
            debug!("no session needs the sleep-delay inhibitor; released it");
        }
        daemon.presence.set_inhibitor(inhibitor.is_some());
        daemon.presence.set_system(match &refused {
            Some(note) => Source::Degraded(note.clone()),
            None => Source::Watching,
        });

        tokio::select! {
            _ = daemon.presence.session_started.notified() => {
                // A session starting means the machine is awake, whatever we missed.
                sleeping = false;
                refused = None;
            }
            _ = tokio::time::sleep(RECHECK), if inhibitor.is_some() => {}
            m = sleep.next() => match body::<bool>(m)? {
                Some(true) => {
                    sleeping = true;
                    info!("the machine is going to sleep; locking sessions");
                    let n = end_sessions(daemon, PresenceEvent::Sleep).await;
                    // Only now let the sleep go on.
                    if inhibitor.take().is_some() {
                        debug!(sessions_ended = n, "released the sleep-delay inhibitor");
                    }
                    daemon.presence.set_inhibitor(false);
                }
                Some(false) => {
                    debug!("resumed from sleep");
                    sleeping = false;
                    refused = None;
                }
                None => {}
            },
            m = lock.next() => {
                let m = next(m)?;
                if let Some(m) = m {
                    if is_ours(&conn, &m, &mut ours, uid, xdg.as_deref()).await {
                        info!("logind asked our session to lock; locking sessions");
                        end_sessions(daemon, PresenceEvent::ScreenLock).await;
                    } else {
                        let path = m.header().path().map(|p| p.to_string());
                        debug!(path = ?path, "a session that is not ours was locked; ignored");
                    }
                }
            }
            m = hints.next() => {
                let m = next(m)?;
                if let Some(m) = m
                    && locked_hint(&conn, &m).await
                    && is_ours(&conn, &m, &mut ours, uid, xdg.as_deref()).await
                {
                    info!("our session's LockedHint turned true; locking sessions");
                    end_sessions(daemon, PresenceEvent::ScreenLock).await;
                }
            }
            m = owner.next() => {
                // (name, old owner, new owner): a new owner means logind restarted and our
                // inhibitor died with the old one; no owner means it is gone.
                if let Some((_, _, new)) = body::<(String, String, String)>(m)? {
                    return Err(if new.is_empty() { Lost::NoLogind } else { Lost::LogindRestarted });
                }
            }
        }
        // A storm of signals must not starve the rest of the runtime on a busy machine.
        tokio::task::yield_now().await;
    }
}

/// The next message of a stream: `Err` when the stream ended (the connection is gone),
/// `Ok(None)` for a message that could not be read (logged, ignored).
fn next(m: Option<zbus::Result<Message>>) -> Result<Option<Message>, Lost> {
    match m {
        None => Err(Lost::Closed),
        Some(Ok(m)) => Ok(Some(m)),
        Some(Err(e)) => {
            debug!(error = %e, "unreadable message on the system bus; ignored");
            Ok(None)
        }
    }
}

/// The body of the next message as `T`; `Ok(None)` when it is not a `T` (ignored).
fn body<T>(m: Option<zbus::Result<Message>>) -> Result<Option<T>, Lost>
where
    T: for<'d> serde::Deserialize<'d> + zbus::wire::Type,
{
    let Some(m) = next(m)? else {
        return Ok(None);
    };
    match m.body().deserialize::<T>() {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            let member = m.header().member().map(|m| m.to_string());
            debug!(error = %e, member = ?member, "signal with an unexpected body; ignored");
            Ok(None)
        }
    }
}

/// `Manager.Inhibit("sleep", "op-sessiond", "wipe sessions", "delay")`: the fd that holds
/// the lock until it is closed.
async fn inhibit(conn: &Connection) -> zbus::Result<OwnedFd> {
    let reply = conn
        .call_method(
            Some(LOGIN1),
            LOGIN1_PATH,
            Some(MANAGER),
            "Inhibit",
            &("sleep", "op-sessiond", "wipe sessions", "delay"),
        )
        .await?;
    let fd: zbus::OwnedFd = reply.body().deserialize()?;
    Ok(fd.into())
}

async fn get_property(
    conn: &Connection,
    path: &str,
    interface: &str,
    name: &str,
) -> zbus::Result<OwnedVariant> {
    conn.call_method(
        Some(LOGIN1),
        path,
        Some(PROPERTIES),
        "Get",
        &(interface, name),
    )
    .await?
    .body()
    .deserialize()
}

/// Our uid's logind sessions (`GetUser(uid)` → `Sessions`), plus `XDG_SESSION_ID`'s.
async fn our_sessions(
    conn: &Connection,
    uid: u32,
    xdg_session_id: Option<&str>,
) -> zbus::Result<HashSet<String>> {
    let mut ours = HashSet::new();
    if let Some(id) = xdg_session_id {
        match conn
            .call_method(
                Some(LOGIN1),
                LOGIN1_PATH,
                Some(MANAGER),
                "GetSession",
                &(id,),
            )
            .await
            .and_then(|r| r.body().deserialize::<OwnedObjectPath>())
        {
            Ok(p) => {
                ours.insert(p.to_string());
            }
            // No answer at all: asking more would only wait again (see `CALL_TIMEOUT`).
            Err(e @ zbus::Error::InputOutput(_)) => return Err(e),
            Err(e) => debug!(session = id, error = %e, "XDG_SESSION_ID is not a logind session"),
        }
    }
    let user: OwnedObjectPath = conn
        .call_method(Some(LOGIN1), LOGIN1_PATH, Some(MANAGER), "GetUser", &(uid,))
        .await?
        .body()
        .deserialize()?;
    let sessions = get_property(conn, user.as_str(), USER, "Sessions").await?;
    let sessions: Vec<(String, OwnedObjectPath)> = sessions.try_into()?;
    ours.extend(sessions.into_iter().map(|(_, p)| p.to_string()));
    Ok(ours)
}

/// Whether `m` came from one of our sessions. A path we do not know may be a session that
/// started since we looked: ask again once.
async fn is_ours(
    conn: &Connection,
    m: &Message,
    ours: &mut HashSet<String>,
    uid: u32,
    xdg_session_id: Option<&str>,
) -> bool {
    let Some(path) = m.header().path().map(|p| p.to_string()) else {
        return false;
    };
    if ours.contains(&path) {
        return true;
    }
    match our_sessions(conn, uid, xdg_session_id).await {
        Ok(fresh) => *ours = fresh,
        Err(e) => debug!(error = %e, "cannot list this user's logind sessions"),
    }
    ours.contains(&path)
}

/// Whether a `PropertiesChanged` on a session says `LockedHint` is now true.
async fn locked_hint(conn: &Connection, m: &Message) -> bool {
    let Ok((_, changed, invalidated)) =
        m.body()
            .deserialize::<(String, HashMap<String, OwnedVariant>, Vec<String>)>()
    else {
        debug!("PropertiesChanged with an unexpected body; ignored");
        return false;
    };
    if let Some(v) = changed.get("LockedHint") {
        return bool::try_from(v).unwrap_or(false);
    }
    if invalidated.iter().any(|p| p == "LockedHint")
        && let Some(path) = m.header().path().map(|p| p.to_string())
    {
        return get_property(conn, &path, SESSION, "LockedHint")
            .await
            .ok()
            .and_then(|v| bool::try_from(&v).ok())
            .unwrap_or(false);
    }
    false
}

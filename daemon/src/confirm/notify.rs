//! The desktop notification channel: `org.freedesktop.Notifications` on the session bus.
//!
//! One notification per prompt with the actions "Allow once", "Allow for <remember>" (only
//! when `remember` is more than zero) and "Deny". An answer counts only when it comes as an
//! `ActionInvoked` signal from the unique name that owned `org.freedesktop.Notifications` when
//! we asked, for the notification id it gave us: any other connection on the bus can emit a
//! signal with that name and those arguments, and the bus stamps each message with its real
//! sender, so the sender is what we check. Closing the notification (by the person) is a no;
//! it expiring is no answer. The notification is closed when the prompt ends without it.
//!
//! Facts relied on are in docs/confirm.md ("Desktop notifications").

use std::collections::HashMap;
use std::num::NonZeroUsize;

use futures_util::StreamExt;
use zbus::Variant;
use zbus::message::Type as MessageType;
use zbus::{Connection, MatchRule, MessageStream};

use super::Answer;

const NAME: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";

const ALLOW_ONCE: &str = "op-session-allow-once";
const ALLOW_REMEMBER: &str = "op-session-allow-remember";
const DENY: &str = "op-session-deny";

/// Why no notification could be shown.
#[derive(Debug)]
pub(crate) struct Unavailable(pub String);

fn unavailable(what: &str, e: impl std::fmt::Display) -> Unavailable {
    Unavailable(format!("{what}: {e}"))
}

/// The session bus's address from the daemon's own environment, as the presence watcher
/// reads it.
pub(crate) fn address() -> Option<String> {
    crate::presence::bus::Addresses::from_env().session
}

/// Show the prompt and wait for the person's answer. `remember` is the "Allow for …" label,
/// when there is one. Dropping the future closes the notification (best effort).
pub(crate) async fn ask(
    address: &str,
    summary: &str,
    body: &str,
    remember: Option<&str>,
) -> Result<Answer, Unavailable> {
    let conn = crate::presence::bus::connect(address)
        .await
        .map_err(|e| unavailable("no session bus", crate::presence::bus::reason(&e)))?;
    // Who shows notifications now: only that connection may answer.
    let owner: String = conn
        .call_method(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            Some("org.freedesktop.DBus"),
            "GetNameOwner",
            &(NAME,),
        )
        .await
        .and_then(|m| m.body().deserialize::<String>())
        .map_err(|e| unavailable("no notification service on the session bus", e))?;
    // Subscribe before showing it, so no answer is missed.
    let rule = |member: &'static str| {
        MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(owner.as_str())
            .path(PATH)
            .interface(NAME)
            .member(member)
            .build()
    };
    let mut streams = Vec::new();
    for member in ["ActionInvoked", "NotificationClosed"] {
        let r = rule(member).map_err(|e| unavailable("bad match rule", e))?;
        streams.push(
            MessageStream::for_match_rule(r, &conn, NonZeroUsize::new(16))
                .await
                .map_err(|e| unavailable("cannot subscribe", e))?,
        );
    }
    let mut signals = futures_util::stream::select_all(streams);
    let mut actions = vec![ALLOW_ONCE, "Allow once"];
    let remember_label = remember.map(|r| format!("Allow for {r}"));
    if let Some(l) = &remember_label {
        actions.extend([ALLOW_REMEMBER, l.as_str()]);
    }
    actions.extend([DENY, "Deny"]);
    let mut hints: HashMap<&str, Variant<'_>> = HashMap::new();
    hints.insert("urgency", Variant::U8(2));
    hints.insert("resident", Variant::Bool(true));
    let id: u32 = conn
        .call_method(
            Some(owner.as_str()),
            PATH,
            Some(NAME),
            "Notify",
            &("op-session", 0u32, "", summary, body, actions, hints, 0i32),
        )
        .await
        .and_then(|m| m.body().deserialize::<u32>())
        .map_err(|e| unavailable("the notification service refused the prompt", e))?;
    let _close = Close {
        conn: conn.clone(),
        owner: owner.clone(),
        id,
    };
    while let Some(m) = signals.next().await {
        let Ok(m) = m else { continue };
        let header = m.header();
        // The bus stamps the real sender; a forged signal from anyone else is ignored.
        if header.sender().map(|s| s.as_str()) != Some(owner.as_str()) {
            tracing::warn!(
                sender = ?header.sender().map(|s| s.to_string()),
                "ignored a notification answer from a connection that does not own {NAME}"
            );
            continue;
        }
        match header.member().map(|m| m.as_str()) {
            Some("ActionInvoked") => {
                let Ok((nid, key)) = m.body().deserialize::<(u32, String)>() else {
                    continue;
                };
                if nid != id {
                    continue;
                }
                match key.as_str() {
                    ALLOW_ONCE => return Ok(Answer::Allow { remember: false }),
                    ALLOW_REMEMBER if remember.is_some() => {
                        return Ok(Answer::Allow { remember: true });
                    }
                    DENY => return Ok(Answer::Deny),
                    // "default" (a click on the body) and anything else: not an answer.
                    _ => continue,
                }
            }
            Some("NotificationClosed") => {
                let Ok((nid, reason)) = m.body().deserialize::<(u32, u32)>() else {
                    continue;
                };
                // 2: dismissed by the person. Expiry and other reasons are no answer.
                if nid == id && reason == 2 {
                    return Ok(Answer::Deny);
                }
            }
            _ => {}
        }
    }
    Err(Unavailable("the session bus went away".into()))
}

/// Closes the notification when the prompt ends, however it ends.
struct Close {
    conn: Connection,
    owner: String,
    id: u32,
}

impl Drop for Close {
    fn drop(&mut self) {
        let (conn, owner, id) = (self.conn.clone(), self.owner.clone(), self.id);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = tokio::time::timeout(
                    crate::presence::bus::CALL_TIMEOUT,
                    conn.call_method(
                        Some(owner.as_str()),
                        PATH,
                        Some(NAME),
                        "CloseNotification",
                        &(id,),
                    ),
                )
                .await;
            });
        }
    }
}

//! Unit tests of [`super`].

use super::*;
use op_session_protocol::{ErrorBody, ErrorCode};

fn session(t: &Sessions, name: &str, now: Duration, idle: Option<u64>, hard: u64) -> Session {
    t.build(
        NewSession {
            identity: Identity {
                url: Some(format!("https://{name}.1password.com/")),
                user_uuid: Some(format!("{}UUID", name.to_uppercase())),
                ..Identity::default()
            },
            idle_limit: idle.map(Duration::from_secs),
            keepalive: true,
            ..NewSession::new(
                name,
                Credential::Token {
                    var: "OP_SESSION_X".into(),
                    token: Arc::new(crate::securemem::secret_token(b"tok").expect("token")),
                },
                Duration::from_secs(hard),
            )
        },
        now,
    )
}

#[test]
fn idle_is_measured_from_the_last_op_call_and_capped_by_hard() {
    let t = Sessions::new(None);
    let s0 = Duration::from_secs(100);
    t.insert(session(&t, "my", s0, Some(30), 50));
    let l = t.lease(None, s0 + Duration::from_secs(20)).expect("live");
    t.touch(&l.name, l.generation, s0 + Duration::from_secs(20));
    assert!(
        t.lease(None, s0 + Duration::from_secs(45)).is_ok(),
        "idle reset by use"
    );
    let (err, ended) = t
        .lease(None, s0 + Duration::from_secs(50))
        .expect_err("hard limit even while in use");
    assert_eq!(err.code(), ErrorCode::SessionExpired);
    assert_eq!(ended.map(|b| b.1), Some(EndReason::Hard));
    assert!(t.is_empty());
}

#[test]
fn idle_expiry_without_use() {
    let t = Sessions::new(None);
    let s0 = Duration::from_secs(10);
    t.insert(session(&t, "my", s0, Some(2), 3600));
    let (err, ended) = t
        .lease(Some("my"), s0 + Duration::from_secs(2))
        .expect_err("idle");
    assert_eq!(err.code(), ErrorCode::SessionExpired);
    assert_eq!(ended.map(|b| b.1), Some(EndReason::Idle));
}

#[test]
fn accounts_match_by_name_address_and_uuid_and_default_is_first() {
    let t = Sessions::new(None);
    let now = Duration::from_secs(1);
    t.insert(session(&t, "work", now, None, 100));
    t.insert(session(&t, "home", now, None, 100));
    assert_eq!(t.lease(None, now).expect("default").name, "work");
    assert_eq!(t.lease(Some("HOME"), now).expect("by name").name, "home");
    assert_eq!(
        t.lease(Some("https://home.1password.com"), now)
            .expect("by url")
            .name,
        "home"
    );
    assert_eq!(
        t.lease(Some("HOMEUUID"), now).expect("by uuid").name,
        "home"
    );
    let (err, _) = t.lease(Some("nope"), now).expect_err("unknown");
    assert_eq!(err.code(), ErrorCode::NotSignedIn);
    assert!(ErrorBody::from(err).fix.contains("--account nope"));
}

#[test]
fn keepalive_is_due_after_half_the_idle_window_once() {
    let t = Sessions::new(None);
    let s0 = Duration::from_secs(0);
    t.insert(session(&t, "my", s0, Some(10), 100));
    let l = t.lease(None, s0).expect("live");
    assert!(!t.keepalive_due(&l.name, l.generation, s0 + Duration::from_secs(4)));
    assert!(t.keepalive_due(&l.name, l.generation, s0 + Duration::from_secs(5)));
    assert!(
        !t.keepalive_due(&l.name, l.generation, s0 + Duration::from_secs(6)),
        "in flight"
    );
    t.keepalive_done(&l.name, l.generation);
    t.touch(&l.name, l.generation, s0 + Duration::from_secs(6));
    assert!(!t.keepalive_due(&l.name, l.generation, s0 + Duration::from_secs(7)));
}

#[test]
fn stale_generations_cannot_end_a_new_session() {
    let t = Sessions::new(None);
    let now = Duration::from_secs(1);
    t.insert(session(&t, "my", now, None, 100));
    let old = t.lease(None, now).expect("live");
    t.insert(session(&t, "my", now, None, 100));
    assert!(t.end(&old.name, old.generation).is_none());
    assert_eq!(t.len(), 1);
}

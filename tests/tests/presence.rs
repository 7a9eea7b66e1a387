//! Issue 11: sessions follow the person. The machine going to sleep or the screen locking ends
//! the sessions a person signed in, as `op-session lock` would, and a later read says why.
//!
//! Real D-Bus, not a mock: each test starts its own system-like and session `dbus-daemon` in
//! its temporary directory, and a stand-in logind on the system one (see `op_session_e2e::dbus`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use op_session_e2e::dbus::{
    Bus, Emitter, FakeLogind, OTHER_SESSION_PATH, SESSION_ID, SESSION_PATH,
};
use op_session_e2e::{Out, World, wait_until};

const MY_PASSWORD: &[u8] = b"correct horse battery staple\n";
const TEAM: &str = "team.1password.com";
/// Generous bounds for a loaded 2-core machine; the happy path takes milliseconds.
const START: Duration = Duration::from_secs(15);
const SETTLE: Duration = Duration::from_secs(5);

/// A foreground daemon, killed when the test ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A person's desk: buses, logind, a daemon pointed at them, fake-op with the basic fixture.
struct Desk {
    // Field order is drop order: the daemon goes first, then logind, then the buses.
    daemon: Option<Daemon>,
    logind: Option<FakeLogind>,
    session_bus: Bus,
    system_bus: Bus,
    w: World,
}

impl Desk {
    fn new(config: &str) -> Desk {
        let mut w = World::new(config);
        w.load_basic();
        let system_bus = Bus::start(w.dir.path(), "system");
        let session_bus = Bus::start(w.dir.path(), "session");
        let logind = FakeLogind::start(&system_bus.address, nix::unistd::getuid().as_raw());
        w.extra_env.extend([
            ("DBUS_SYSTEM_BUS_ADDRESS".into(), system_bus.address.clone()),
            (
                "DBUS_SESSION_BUS_ADDRESS".into(),
                session_bus.address.clone(),
            ),
            ("XDG_SESSION_ID".into(), SESSION_ID.into()),
        ]);
        let mut desk = Desk {
            daemon: None,
            logind: Some(logind),
            session_bus,
            system_bus,
            w,
        };
        desk.start_daemon();
        assert!(
            wait_until(START, || {
                let log = desk.log();
                log.contains("watching sleep and session locks")
                    && log.contains("watching screensavers")
            }),
            "the daemon never watched both buses; its log:\n{}",
            desk.log()
        );
        desk
    }

    fn start_daemon(&mut self) {
        let log = File::create(self.w.dir.path().join("daemon.log")).unwrap();
        let child = self
            .w
            .daemon(&["--foreground", "--log-level", "debug"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemon = Some(Daemon(child));
        let w = &self.w;
        assert!(
            wait_until(START, || w.run(&["--no-autostart", "status"]).code == 0),
            "the daemon did not answer"
        );
    }

    fn logind(&self) -> &FakeLogind {
        self.logind.as_ref().unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.w.dir.path().join("daemon.log")).unwrap_or_default()
    }

    fn run(&self, args: &[&str]) -> Out {
        let mut v = vec!["--no-autostart"];
        v.extend_from_slice(args);
        self.w.run(&v)
    }

    fn init_token(&self) {
        let out = self.w.run_with_stdin(
            &[
                "--no-autostart",
                "init",
                "--account",
                "my",
                "--password-stdin",
            ],
            MY_PASSWORD,
        );
        assert_eq!(out.code, 0, "init failed: {}{}", out.stdout, out.stderr);
    }

    fn init_app(&self) {
        let out = self.run(&["init", "--account", TEAM]);
        assert_eq!(out.code, 0, "app init failed: {}", out.stderr);
    }

    fn init_service_account(&self) {
        let state: serde_json::Value = serde_json::from_str(&self.w.ctl(&["state"])).unwrap();
        let token = state["service_accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "ci")
            .unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string();
        let out = self.w.run_with_stdin(
            &["--no-autostart", "init", "--mode", "service-account"],
            token.as_bytes(),
        );
        assert_eq!(out.code, 0, "service-account init failed: {}", out.stderr);
    }

    fn status(&self) -> serde_json::Value {
        let out = self.run(&["status", "--json"]);
        assert_eq!(out.code, 0, "status failed: {}", out.stderr);
        serde_json::from_str(&out.stdout).unwrap()
    }

    fn modes(&self) -> Vec<String> {
        let mut v: Vec<String> = self.status()["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["mode"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    fn signouts(&self) -> usize {
        self.w
            .calls()
            .iter()
            .filter(|c| c["command"] == "signout")
            .count()
    }

    fn audit_reasons(&self) -> Vec<String> {
        std::fs::read_to_string(self.w.state.join("op-session/audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["reason"].as_str().map(str::to_string))
            .collect()
    }
}

#[test]
fn sleep_ends_token_and_app_sessions_within_a_second_revokes_then_lets_the_machine_sleep() {
    let d = Desk::new("");
    d.init_token();
    d.init_app();
    d.init_service_account();
    assert!(
        wait_until(SETTLE, || d.logind().inhibitors_held() == 1),
        "no inhibitor while sessions are held"
    );
    assert_eq!(
        d.logind().last_inhibit().unwrap(),
        ["sleep", "op-sessiond", "wipe sessions", "delay"].map(String::from)
    );
    let p = &d.status()["presence"];
    assert_eq!(p["watching"], serde_json::json!(["sleep", "screen_lock"]));
    assert_eq!(p["sleep_inhibitor"], true);
    assert_eq!(p["ends_on_sleep"], serde_json::json!(["token", "app"]));
    assert_eq!(d.signouts(), 0);

    let t0 = Instant::now();
    d.logind().prepare_for_sleep(true);
    // The inhibitor closes only after the wipe and `op signout`: it is the last step.
    assert!(
        wait_until(SETTLE, || d.logind().inhibitors_held() == 0),
        "the inhibitor was never released, so the machine would wait; log:\n{}",
        d.log()
    );
    let released = t0.elapsed();
    assert!(
        released < Duration::from_secs(1),
        "sessions ended and inhibitor released after {released:?}"
    );
    assert_eq!(
        d.modes(),
        vec!["service-account"],
        "service accounts keep by default"
    );
    assert_eq!(
        d.signouts(),
        2,
        "the token session was revoked and the app authorization signed out with op signout"
    );
    let gone = d.run(&["read", "--account", "my", "op://Dev/Stripe/key"]);
    assert_eq!(gone.code, 77, "{}", gone.stderr);
    assert!(
        gone.stderr
            .contains("locked when the machine went to sleep"),
        "{}",
        gone.stderr
    );
    assert!(gone.stdout.is_empty());
    assert_eq!(d.audit_reasons(), vec!["sleep", "sleep"]);

    // Resume: only a service account is held and it keeps, so no inhibitor is needed; a new
    // sign-in takes one again.
    d.logind().prepare_for_sleep(false);
    d.init_token();
    assert!(
        wait_until(SETTLE, || d.logind().inhibitors_held() == 1),
        "no inhibitor after resume and a new sign-in"
    );
    assert_eq!(d.logind().inhibit_calls(), 2);
    let read = d.run(&["read", "--account", "my", "op://Dev/Stripe/key"]);
    assert_eq!(
        read.code, 0,
        "a new sign-in works after sleep: {}",
        read.stderr
    );
    eprintln!("presence: sleep → sessions ended, signed out, inhibitor released in {released:?}");
}

#[test]
fn a_logind_lock_of_our_session_ends_sessions_and_a_read_says_why() {
    let d = Desk::new("");
    d.init_token();
    // Another user's session locking is not our person walking away.
    d.logind().lock(OTHER_SESSION_PATH);
    assert!(
        wait_until(SETTLE, || d
            .log()
            .contains("a session that is not ours was locked; ignored")),
        "log:\n{}",
        d.log()
    );
    assert_eq!(
        d.modes(),
        vec!["token"],
        "another session's lock ended ours"
    );
    d.logind().lock(SESSION_PATH);
    assert!(
        wait_until(SETTLE, || d.modes().is_empty()),
        "Session.Lock did not end the session; log:\n{}",
        d.log()
    );
    let gone = d.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(gone.code, 77, "{}", gone.stderr);
    assert!(
        gone.stderr.contains("locked when the screen locked"),
        "{}",
        gone.stderr
    );
    assert!(wait_until(SETTLE, || d.signouts() == 1), "not revoked");
    assert_eq!(d.audit_reasons(), vec!["screen_lock"]);
}

#[test]
fn locked_hint_turning_true_ends_sessions() {
    let d = Desk::new("");
    d.init_app();
    d.logind().set_locked_hint(true);
    assert!(
        wait_until(SETTLE, || d.modes().is_empty()),
        "LockedHint did not end the session; log:\n{}",
        d.log()
    );
}

#[test]
fn a_screensaver_going_active_ends_sessions_on_either_interface() {
    let d = Desk::new("");
    let saver = Emitter::connect(&d.session_bus.address);
    for (path, interface) in [
        ("/org/gnome/ScreenSaver", "org.gnome.ScreenSaver"),
        ("/ScreenSaver", "org.freedesktop.ScreenSaver"),
    ] {
        d.init_token();
        saver.emit(path, interface, "ActiveChanged", &(false,));
        saver.emit(path, interface, "ActiveChanged", &(true,));
        assert!(
            wait_until(SETTLE, || d.modes().is_empty()),
            "{interface}.ActiveChanged(true) did not end the session; log:\n{}",
            d.log()
        );
    }
    let gone = d.run(&["read", "op://Dev/Stripe/key"]);
    assert!(
        gone.stderr.contains("locked when the screen locked"),
        "{}",
        gone.stderr
    );
}

#[test]
fn keep_keeps_sessions_and_a_mode_table_overrides_the_default() {
    // People's sessions keep; service accounts lock (the reverse of the defaults), so the
    // service account ending shows each event was handled.
    let d = Desk::new(
        "[presence]\non_sleep = \"keep\"\non_screen_lock = \"keep\"\n\
         [presence.service_account]\non_sleep = \"lock\"\non_screen_lock = \"lock\"\n",
    );
    d.init_token();
    d.init_app();
    let p = &d.status()["presence"];
    assert_eq!(p["ends_on_sleep"], serde_json::json!(["service-account"]));
    assert_eq!(p["sleep_inhibitor"], false, "nothing to wipe, no inhibitor");
    assert_eq!(d.logind().inhibit_calls(), 0);

    let saver = Emitter::connect(&d.session_bus.address);
    let events: [(&str, &dyn Fn()); 3] = [
        ("PrepareForSleep", &|| d.logind().prepare_for_sleep(true)),
        ("Session.Lock", &|| d.logind().lock(SESSION_PATH)),
        ("ActiveChanged", &|| {
            saver.emit(
                "/ScreenSaver",
                "org.freedesktop.ScreenSaver",
                "ActiveChanged",
                &(true,),
            )
        }),
    ];
    for (name, event) in events {
        d.init_service_account();
        assert_eq!(d.modes(), vec!["app", "service-account", "token"]);
        event();
        assert!(
            wait_until(SETTLE, || d.modes() == vec!["app", "token"]),
            "{name}: the service account was not locked or a person's session was; log:\n{}",
            d.log()
        );
        d.logind().prepare_for_sleep(false);
    }
    assert_eq!(d.signouts(), 0, "kept sessions are not revoked");
    let read = d.run(&["read", "--account", "my", "op://Dev/Stripe/key"]);
    assert_eq!(read.code, 0, "{}", read.stderr);
}

#[test]
fn with_no_bus_the_daemon_serves_and_status_says_why() {
    let mut w = World::new("");
    w.load_basic();
    let nowhere = w.dir.path().join("no-such-bus");
    let address = format!("unix:path={}", nowhere.display());
    w.extra_env.extend([
        ("DBUS_SYSTEM_BUS_ADDRESS".into(), address.clone()),
        ("DBUS_SESSION_BUS_ADDRESS".into(), address.clone()),
    ]);
    let log = File::create(w.dir.path().join("daemon.log")).unwrap();
    let _daemon = Daemon(w.daemon(&["--foreground"]).stderr(log).spawn().unwrap());
    assert!(wait_until(START, || w
        .run(&["--no-autostart", "status"])
        .code
        == 0));
    let expected = format!("no system bus at {address}");
    assert!(
        wait_until(SETTLE, || {
            w.status()["presence"]["notes"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n.as_str().unwrap().contains(&expected)))
        }),
        "{}",
        w.status()["presence"]
    );
    assert_eq!(w.status()["presence"]["watching"], serde_json::json!([]));
    let text = w.run(&["--no-autostart", "status"]).stdout;
    assert!(text.contains(&expected), "{text}");
    // Everything else works.
    let out = w.run_with_stdin(
        &[
            "--no-autostart",
            "init",
            "--account",
            "my",
            "--password-stdin",
        ],
        MY_PASSWORD,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        w.run(&["--no-autostart", "read", "op://Dev/Stripe/key"])
            .code,
        0
    );
    let log = std::fs::read_to_string(w.dir.path().join("daemon.log")).unwrap();
    assert_eq!(
        log.matches("sleep and session locks are not watched")
            .count(),
        1,
        "logged once: {log}"
    );
}

#[test]
fn garbage_a_signal_storm_and_a_bus_that_goes_away_never_take_the_daemon_down() {
    let mut d = Desk::new("");
    d.init_token();
    assert!(wait_until(SETTLE, || d.logind().inhibitors_held() == 1));
    let l = d.logind();
    // Unknown signals and wrong bodies on the very interfaces we watch.
    l.emit_raw(
        "/org/freedesktop/login1",
        "org.freedesktop.login1.Manager",
        "Bogus",
        &("x",),
    );
    l.emit_raw(
        "/org/freedesktop/login1",
        "org.freedesktop.login1.Manager",
        "PrepareForSleep",
        &("yes", 7u32),
    );
    l.emit_raw(
        SESSION_PATH,
        "org.freedesktop.DBus.Properties",
        "PropertiesChanged",
        &(42u8,),
    );
    let saver = Emitter::connect(&d.session_bus.address);
    saver.emit(
        "/ScreenSaver",
        "org.freedesktop.ScreenSaver",
        "ActiveChanged",
        &("true",),
    );
    assert_eq!(d.modes(), vec!["token"], "garbage ended a session");

    // A storm: 100 sleep/resume pairs.
    for _ in 0..100 {
        l.prepare_for_sleep(true);
        l.prepare_for_sleep(false);
    }
    assert!(wait_until(SETTLE, || d.modes().is_empty()));
    assert!(wait_until(SETTLE, || d.signouts() == 1), "revoked once");
    // Let the watcher work through the whole storm first: a sleep signal still queued would
    // (rightly) end the session started next.
    assert!(
        wait_until(Duration::from_secs(20), || d
            .log()
            .matches("resumed from sleep")
            .count()
            >= 100),
        "the storm was not worked through; log:\n{}",
        d.log()
    );
    d.init_token();
    assert!(
        wait_until(SETTLE, || d.logind().inhibitors_held() == 1),
        "watching stopped after the storm"
    );

    // The system bus goes away: the daemon serves on, says so, and comes back with the bus.
    let address = d.system_bus.address.clone();
    d.logind = None;
    d.system_bus.kill();
    assert!(
        wait_until(SETTLE, || {
            d.status()["presence"]["notes"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n.as_str().unwrap().contains("system bus")))
        }),
        "{}",
        d.status()["presence"]
    );
    assert_eq!(
        d.status()["presence"]["watching"],
        serde_json::json!(["screen_lock"])
    );
    let out = d.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(
        out.code,
        0,
        "still serving: {}\nlog:\n{}",
        out.stderr,
        d.log()
    );

    d.system_bus = Bus::start(d.w.dir.path(), "system");
    assert_eq!(
        d.system_bus.address.split(',').next(),
        address.split(',').next(),
        "same socket"
    );
    d.logind = Some(FakeLogind::start(
        &d.system_bus.address,
        nix::unistd::getuid().as_raw(),
    ));
    // Backoff is 1 s, 2 s, 4 s…: well inside the bound.
    assert!(
        wait_until(Duration::from_secs(20), || d.logind().inhibitors_held()
            == 1),
        "never reconnected; log:\n{}",
        d.log()
    );
    d.logind().prepare_for_sleep(true);
    assert!(
        wait_until(SETTLE, || d.modes().is_empty()),
        "sleep not watched after reconnecting"
    );
    assert!(
        d.daemon.as_mut().unwrap().0.try_wait().unwrap().is_none(),
        "the daemon is alive"
    );
}

#[test]
fn a_reply_stuck_behind_a_signal_storm_does_not_wedge_the_watcher() {
    let d = Desk::new("");
    d.init_token();
    assert!(wait_until(SETTLE, || d.logind().inhibitors_held() == 1));
    // A lock from a session we do not know makes the watcher ask logind for our sessions;
    // logind is slow to answer, and meanwhile a storm fills the sleep signal queue. zbus stops
    // reading the socket while a queue is full, so without a deadline on calls the answer
    // would never be read and the watcher would wait forever.
    d.logind().set_get_user_delay(Duration::from_millis(300));
    d.logind().lock(OTHER_SESSION_PATH);
    for _ in 0..200 {
        d.logind().prepare_for_sleep(false);
    }
    d.logind().set_get_user_delay(Duration::ZERO);
    let t0 = Instant::now();
    d.logind().prepare_for_sleep(true);
    assert!(
        wait_until(Duration::from_secs(20), || d.modes().is_empty()),
        "the watcher is wedged; log:\n{}",
        d.log()
    );
    eprintln!(
        "presence: recovered from a stuck reply in {:?}",
        t0.elapsed()
    );
}

#[test]
fn a_daemon_the_client_auto_starts_watches_the_callers_buses() {
    // The client starts the daemon on first use; the daemon must still find the buses, which
    // it learns only from the environment it was started with.
    let mut w = World::new("");
    w.load_basic();
    let system_bus = Bus::start(w.dir.path(), "system");
    let session_bus = Bus::start(w.dir.path(), "session");
    let logind = FakeLogind::start(&system_bus.address, nix::unistd::getuid().as_raw());
    w.extra_env.extend([
        ("DBUS_SYSTEM_BUS_ADDRESS".into(), system_bus.address.clone()),
        (
            "DBUS_SESSION_BUS_ADDRESS".into(),
            session_bus.address.clone(),
        ),
    ]);
    let out = w.run_with_stdin(
        &["init", "--account", "my", "--password-stdin"],
        MY_PASSWORD,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        wait_until(SETTLE, || logind.inhibitors_held() == 1),
        "the auto-started daemon did not reach logind: {}\nlog:\n{}",
        w.status()["presence"],
        w.daemon_log()
    );
    logind.prepare_for_sleep(true);
    assert!(wait_until(SETTLE, || w.status()["sessions"]
        .as_array()
        .unwrap()
        .is_empty()));
    w.run(&["stop"]);
}

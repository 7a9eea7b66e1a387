//! Real D-Bus for the presence tests: a private `dbus-daemon` per bus, and a small stand-in
//! for logind (`org.freedesktop.login1`) written with zbus's server side.
//!
//! The stand-in answers `Inhibit` with the write end of a real pipe and keeps the read end,
//! so a test can see when the daemon closes its inhibitor (the read end reports hang-up);
//! it answers `GetUser`, `GetSession` and the `User.Sessions` and `Session.LockedHint`
//! properties, and emits `PrepareForSleep`, `Session.Lock` and `LockedHint` changes on
//! demand. Nothing listens beyond Unix sockets in the test's own temporary directory.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use zbus::{Connection, OwnedObjectPath, Variant, interface};

/// One private `dbus-daemon`.
#[derive(Debug)]
pub struct Bus {
    child: Child,
    /// Its address (`unix:path=…,guid=…`).
    pub address: String,
    /// Its socket.
    pub socket: PathBuf,
}

const POLICY: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>@KIND@</type>
  <listen>unix:path=@SOCKET@</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#;

impl Bus {
    /// Start a bus of `kind` (`system` or `session`) with its socket in `dir`.
    pub fn start(dir: &Path, kind: &str) -> Bus {
        let socket = dir.join(format!("{kind}_bus_socket"));
        let config = dir.join(format!("{kind}-bus.conf"));
        std::fs::write(
            &config,
            POLICY
                .replace("@KIND@", kind)
                .replace("@SOCKET@", &socket.display().to_string()),
        )
        .unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // It complains about fd limits it cannot raise when not root; not our concern.
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon runs (Debian package `dbus`; scripts/test installs it)");
        // It prints its address once it listens.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon said {line:?}");
        Bus {
            child,
            address,
            socket,
        }
    }

    /// Stop the bus now (every connection to it is dropped).
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `Inhibit` call the stand-in answered.
#[derive(Debug)]
pub struct Inhibitor {
    /// `what`, `who`, `why`, `mode` as asked.
    pub args: [String; 4],
    /// The read end of the pipe whose write end was handed out.
    read_end: OwnedFd,
}

impl Inhibitor {
    /// Whether the caller still holds the write end.
    pub fn held(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut fds = [PollFd::new(self.read_end.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) => true,
            Ok(_) => !fds[0]
                .revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
            Err(_) => false,
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    inhibitors: Vec<Inhibitor>,
    locked_hint: bool,
    /// How long `GetUser` takes to answer.
    get_user_delay: std::time::Duration,
}

struct Manager {
    shared: Arc<Mutex<Shared>>,
    uid: u32,
}

/// The one session of the test's user.
pub const SESSION_PATH: &str = "/org/freedesktop/login1/session/_31";
/// Its id (for `XDG_SESSION_ID`).
pub const SESSION_ID: &str = "31";
/// Another user's session, whose locks must not end our sessions.
pub const OTHER_SESSION_PATH: &str = "/org/freedesktop/login1/session/_99";

#[interface(name = "org.freedesktop.login1.Manager")]
impl Manager {
    fn inhibit(
        &self,
        what: String,
        who: String,
        why: String,
        mode: String,
    ) -> zbus::fdo::Result<zbus::OwnedFd> {
        let (r, w) = nix::unistd::pipe().map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        self.shared.lock().unwrap().inhibitors.push(Inhibitor {
            args: [what, who, why, mode],
            read_end: r,
        });
        Ok(w.into())
    }

    async fn get_user(&self, uid: u32) -> zbus::fdo::Result<OwnedObjectPath> {
        let delay = self.shared.lock().unwrap().get_user_delay;
        tokio::time::sleep(delay).await;
        if uid != self.uid {
            return Err(zbus::fdo::Error::Failed(format!("no user {uid}")));
        }
        OwnedObjectPath::try_from(format!("/org/freedesktop/login1/user/_{uid}"))
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))
    }

    fn get_session(&self, id: String) -> zbus::fdo::Result<OwnedObjectPath> {
        if id != SESSION_ID {
            return Err(zbus::fdo::Error::Failed(format!("no session {id}")));
        }
        OwnedObjectPath::try_from(SESSION_PATH).map_err(|e| zbus::fdo::Error::Failed(e.to_string()))
    }
}

struct User;

#[interface(name = "org.freedesktop.login1.User")]
impl User {
    #[zbus(property)]
    fn sessions(&self) -> Vec<(String, OwnedObjectPath)> {
        vec![(
            SESSION_ID.to_string(),
            OwnedObjectPath::try_from(SESSION_PATH).unwrap(),
        )]
    }
}

struct Session {
    shared: Arc<Mutex<Shared>>,
}

#[interface(name = "org.freedesktop.login1.Session")]
impl Session {
    #[zbus(property)]
    fn locked_hint(&self) -> bool {
        self.shared.lock().unwrap().locked_hint
    }
}

/// The stand-in logind, on its own small runtime.
pub struct FakeLogind {
    rt: tokio::runtime::Runtime,
    conn: Connection,
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for FakeLogind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeLogind")
    }
}

impl FakeLogind {
    /// Own `org.freedesktop.login1` on the bus at `address`, for a user with `uid`.
    pub fn start(address: &str, uid: u32) -> FakeLogind {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let conn = rt.block_on(async {
            zbus::connection::Builder::address(address)
                .serve_at(
                    "/org/freedesktop/login1",
                    Manager {
                        shared: shared.clone(),
                        uid,
                    },
                )
                .serve_at(format!("/org/freedesktop/login1/user/_{uid}"), User)
                .serve_at(
                    SESSION_PATH,
                    Session {
                        shared: shared.clone(),
                    },
                )
                .serve_at(
                    OTHER_SESSION_PATH,
                    Session {
                        shared: shared.clone(),
                    },
                )
                .name("org.freedesktop.login1")
                .build()
                .await
                .expect("the stand-in logind connects to the system bus")
        });
        FakeLogind { rt, conn, shared }
    }

    /// Make `GetUser` answer only after `delay`.
    pub fn set_get_user_delay(&self, delay: std::time::Duration) {
        self.shared.lock().unwrap().get_user_delay = delay;
    }

    /// How many inhibitors the daemon took so far.
    pub fn inhibit_calls(&self) -> usize {
        self.shared.lock().unwrap().inhibitors.len()
    }

    /// The arguments of the last `Inhibit` call.
    pub fn last_inhibit(&self) -> Option<[String; 4]> {
        self.shared
            .lock()
            .unwrap()
            .inhibitors
            .last()
            .map(|i| i.args.clone())
    }

    /// How many inhibitors are still held (write end open somewhere).
    pub fn inhibitors_held(&self) -> usize {
        self.shared
            .lock()
            .unwrap()
            .inhibitors
            .iter()
            .filter(|i| i.held())
            .count()
    }

    fn emit<B>(&self, path: &str, interface: &str, member: &str, body: &B)
    where
        B: serde::Serialize + zbus::wire::DynamicType,
    {
        self.rt
            .block_on(
                self.conn
                    .emit_signal(None::<&str>, path, interface, member, body),
            )
            .unwrap();
    }

    /// `Manager.PrepareForSleep(start)`.
    pub fn prepare_for_sleep(&self, start: bool) {
        self.emit(
            "/org/freedesktop/login1",
            "org.freedesktop.login1.Manager",
            "PrepareForSleep",
            &(start,),
        );
    }

    /// `Session.Lock` on the session at `path`.
    pub fn lock(&self, path: &str) {
        self.emit(path, "org.freedesktop.login1.Session", "Lock", &());
    }

    /// Set our session's `LockedHint` and announce it with `PropertiesChanged`.
    pub fn set_locked_hint(&self, locked: bool) {
        self.shared.lock().unwrap().locked_hint = locked;
        let mut changed: HashMap<&str, Variant<'_>> = HashMap::new();
        changed.insert("LockedHint", Variant::from(locked));
        self.emit(
            SESSION_PATH,
            "org.freedesktop.DBus.Properties",
            "PropertiesChanged",
            &(
                "org.freedesktop.login1.Session",
                changed,
                Vec::<String>::new(),
            ),
        );
    }

    /// Any signal at all (for bad-input tests).
    pub fn emit_raw<B>(&self, path: &str, interface: &str, member: &str, body: &B)
    where
        B: serde::Serialize + zbus::wire::DynamicType,
    {
        self.emit(path, interface, member, body);
    }
}

/// A plain client on some bus, for emitting screensaver signals.
pub struct Emitter {
    rt: tokio::runtime::Runtime,
    conn: Connection,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Emitter")
    }
}

impl Emitter {
    /// Connect to the bus at `address`.
    pub fn connect(address: &str) -> Emitter {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let conn = rt
            .block_on(zbus::connection::Builder::address(address).build())
            .unwrap();
        Emitter { rt, conn }
    }

    /// Emit `interface.member(body)` from `path`.
    pub fn emit<B>(&self, path: &str, interface: &str, member: &str, body: &B)
    where
        B: serde::Serialize + zbus::wire::DynamicType,
    {
        self.rt
            .block_on(
                self.conn
                    .emit_signal(None::<&str>, path, interface, member, body),
            )
            .unwrap();
    }
}

/// One `Notify` call the stand-in notification service answered.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The id it gave back.
    pub id: u32,
    /// Summary.
    pub summary: String,
    /// Body.
    pub body: String,
    /// Actions: key, label, key, label …
    pub actions: Vec<String>,
}

#[derive(Debug, Default)]
struct NotifyShared {
    shown: Vec<Shown>,
    closed: Vec<u32>,
}

struct Notifications {
    shared: Arc<Mutex<NotifyShared>>,
}

#[allow(clippy::too_many_arguments)]
#[interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    fn notify(
        &self,
        _app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        _hints: HashMap<String, zbus::OwnedVariant>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut s = self.shared.lock().unwrap();
        let id = 100 + s.shown.len() as u32;
        s.shown.push(Shown {
            id,
            summary,
            body,
            actions,
        });
        id
    }

    fn close_notification(&self, id: u32) {
        self.shared.lock().unwrap().closed.push(id);
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "stand-in".into(),
            "op-session tests".into(),
            "1".into(),
            "1.2".into(),
        )
    }
}

/// A stand-in `org.freedesktop.Notifications` (the desktop's notification service) that
/// records what it is asked to show and answers when a test says so.
pub struct FakeNotifications {
    rt: tokio::runtime::Runtime,
    conn: Connection,
    shared: Arc<Mutex<NotifyShared>>,
}

impl std::fmt::Debug for FakeNotifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeNotifications")
    }
}

/// The notifications' object path.
pub const NOTIFICATIONS_PATH: &str = "/org/freedesktop/Notifications";

impl FakeNotifications {
    /// Own `org.freedesktop.Notifications` on the session bus at `address`.
    pub fn start(address: &str) -> FakeNotifications {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(Mutex::new(NotifyShared::default()));
        let conn = rt.block_on(async {
            zbus::connection::Builder::address(address)
                .serve_at(
                    NOTIFICATIONS_PATH,
                    Notifications {
                        shared: shared.clone(),
                    },
                )
                .name("org.freedesktop.Notifications")
                .build()
                .await
                .expect("the stand-in notification service connects to the session bus")
        });
        FakeNotifications { rt, conn, shared }
    }

    /// Every notification shown so far.
    pub fn shown(&self) -> Vec<Shown> {
        self.shared.lock().unwrap().shown.clone()
    }

    /// Ids closed with `CloseNotification`.
    pub fn closed(&self) -> Vec<u32> {
        self.shared.lock().unwrap().closed.clone()
    }

    /// The person clicks the action `key` of notification `id`.
    pub fn invoke(&self, id: u32, key: &str) {
        self.rt
            .block_on(self.conn.emit_signal(
                None::<&str>,
                NOTIFICATIONS_PATH,
                "org.freedesktop.Notifications",
                "ActionInvoked",
                &(id, key),
            ))
            .unwrap();
    }
}

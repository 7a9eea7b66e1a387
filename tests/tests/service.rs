//! The user service, end to end: the shipped systemd units pass `systemd-analyze verify`,
//! op-sessiond serves a socket systemd hands it (and says so), the launchd plist is what
//! launchd needs, and `op-session service install` is exact, private and idempotent.
//!
//! Every test works in its own temporary directories and never touches the real service
//! manager (`OPSESSION_SERVICE_MANAGER=none|launchd` on a machine with no user manager). A
//! test whose tool is missing (systemd-analyze, systemd-socket-activate, python3) says so and
//! passes; CI installs them.

use op_session_e2e::Finish as _;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The built `op-session` and `op-sessiond`, built once per test run.
struct Bins {
    client: PathBuf,
    daemon: PathBuf,
}

fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let status = op_session_e2e::build_command()
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build failed");
        // This test runs from <target>/debug/deps/; the binaries sit in <target>/debug/.
        let dir = std::env::current_exe()
            .expect("test binary path")
            .parent()
            .and_then(Path::parent)
            .expect("target dir")
            .to_path_buf();
        let b = Bins {
            client: dir.join("op-session"),
            daemon: dir.join("op-sessiond"),
        };
        assert!(
            b.client.is_file() && b.daemon.is_file(),
            "binaries in {dir:?}"
        );
        b
    })
}

/// `tool` on PATH. A missing tool fails the test (scripts/test installs it), never skips it.
fn need(tool: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    });
    assert!(
        found.is_some(),
        "{tool} is not installed: scripts/test installs what the tests need"
    );
    found
}

/// A fresh temporary directory (short path: socket paths must fit in sun_path).
fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("svc")
        .tempdir_in("/tmp")
        .expect("temp dir")
}

fn private_dir(path: &Path) -> PathBuf {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .expect("create private dir");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).expect("chmod 0700");
    path.to_path_buf()
}

/// `op-session ARGS` with a home, config, state and runtime dir of its own.
fn client(home: &Path) -> Command {
    let mut c = Command::new(&bins().client);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_RUNTIME_DIR", private_dir(&home.join("run")))
        .env("TMPDIR", home.join("tmp"))
        .stdin(Stdio::null());
    c
}

fn run(mut c: Command) -> Output {
    let out = c.finish().expect("command runs");
    assert!(
        out.status.success(),
        "{c:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `op-sessiond` under `systemd-socket-activate`, which listens on `socket` and execs the
/// daemon on the first connection, with `NOTIFY_SOCKET` pointing at `notify`.
struct Activated {
    child: Child,
}

impl Activated {
    fn start(ssa: &Path, home: &Path, socket: &Path, notify: &Path) -> Activated {
        let mut c = Command::new(ssa);
        c.arg("-l").arg(socket);
        // systemd-socket-activate passes only -E variables (plus a few of its own) on.
        for (k, v) in [
            ("NOTIFY_SOCKET", notify.to_path_buf()),
            ("HOME", home.to_path_buf()),
            ("XDG_CONFIG_HOME", home.join(".config")),
            ("XDG_STATE_HOME", home.join(".local/state")),
            ("XDG_RUNTIME_DIR", home.join("run")),
        ] {
            c.arg("-E").arg(format!("{k}={}", v.display()));
        }
        c.arg(&bins().daemon)
            .arg("--foreground")
            .arg("--socket")
            .arg(socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = c.spawn().expect("systemd-socket-activate starts");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "no socket from systemd-socket-activate"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        Activated { child }
    }

    /// SIGTERM, then the exit status and everything the daemon logged.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(Instant::now() < deadline, "daemon ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut log = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut log);
        }
        (status, log)
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_json(home: &Path, socket: &Path, autostart: bool) -> serde_json::Value {
    let mut c = client(home);
    c.arg("--socket").arg(socket);
    if !autostart {
        c.arg("--no-autostart");
    }
    c.args(["status", "--json"]);
    serde_json::from_slice(&run(c).stdout).expect("status --json is JSON")
}

#[test]
fn the_shipped_units_pass_systemd_analyze_verify() {
    let Some(analyze) = need("systemd-analyze") else {
        return;
    };
    let tmp = tempdir();
    let home = tmp.path().join("home");
    // `--root` cannot be combined with `--user` (systemd 252: "Failed to initialize unit search
    // paths"), so the units are checked where install writes them: rendered with the absolute
    // path of the op-sessiond just built, exactly as for a user.
    let mut install = client(&home);
    install
        .env("OPSESSION_SERVICE_MANAGER", "none")
        .args(["service", "install"]);
    run(install);
    let units = home.join(".config/systemd/user");
    // And the shipped files themselves, with only the binary's location changed.
    let shipped = private_dir(&tmp.path().join("shipped"));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd");
    for name in ["op-sessiond.socket", "op-sessiond.service"] {
        let text = std::fs::read_to_string(repo.join(name)).expect("shipped unit");
        let text = text.replace(
            "ExecStart=/usr/local/bin/op-sessiond",
            &format!("ExecStart={}", bins().daemon.display()),
        );
        std::fs::write(shipped.join(name), text).expect("copy unit");
    }
    for dir in [&units, &shipped] {
        let out = Command::new(&analyze)
            // No man pages are installed here; a user manager needs a runtime dir.
            .args(["verify", "--user", "--man=no"])
            .arg(dir.join("op-sessiond.socket"))
            .arg(dir.join("op-sessiond.service"))
            .env("XDG_RUNTIME_DIR", private_dir(&tmp.path().join("rt")))
            .finish()
            .expect("systemd-analyze runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "verify failed: {stderr}");
        // Unknown keys only warn (exit 0), so read what it said about our units.
        let complaints: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("op-sessiond"))
            .collect();
        assert!(complaints.is_empty(), "systemd complains: {complaints:#?}");
    }
    let service = std::fs::read_to_string(units.join("op-sessiond.service")).expect("unit");
    for line in [
        "Type=notify",
        "UMask=0077",
        "LimitCORE=0",
        "NoNewPrivileges=yes",
        "LockPersonality=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "KeyringMode=private",
    ] {
        assert!(service.lines().any(|l| l == line), "service lacks {line}");
    }
    let socket = std::fs::read_to_string(units.join("op-sessiond.socket")).expect("unit");
    for line in [
        "ListenStream=%t/op-session/agent.sock",
        "SocketMode=0600",
        "DirectoryMode=0700",
    ] {
        assert!(socket.lines().any(|l| l == line), "socket lacks {line}");
    }
}

#[test]
fn a_socket_activated_daemon_answers_the_first_call_says_so_and_leaves_the_socket() {
    let Some(ssa) = need("systemd-socket-activate") else {
        return;
    };
    let tmp = tempdir();
    let home = tmp.path().join("home");
    let socket = private_dir(&tmp.path().join("s")).join("agent.sock");
    let notify_path = tmp.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).expect("bind NOTIFY_SOCKET");
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");

    let daemon = Activated::start(&ssa, &home, &socket, &notify_path);
    // Nothing runs yet: systemd-socket-activate starts the daemon on the first connection.
    let status = status_json(&home, &socket, false);
    assert_eq!(status["started_by"], "systemd", "{status}");
    assert_eq!(
        status["pid"],
        daemon.child.id(),
        "the activated process answers"
    );

    let mut buf = [0u8; 512];
    let n = notify.recv(&mut buf).expect("a notification arrives");
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(msg.lines().any(|l| l == "READY=1"), "got {msg:?}");

    // The activated listener (fd 3) must be close-on-exec, or every op child inherits it.
    let fdinfo = std::fs::read_to_string(format!("/proc/{}/fdinfo/3", daemon.child.id()))
        .expect("fd 3 is the activated socket");
    let flags = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .expect("flags");
    assert_ne!(
        flags & 0o2000000,
        0,
        "activated socket is not O_CLOEXEC: {flags:o}"
    );

    let (exit, log) = daemon.terminate();
    assert!(exit.success(), "daemon exit {exit:?}; log:\n{log}");
    let meta = std::fs::symlink_metadata(&socket).expect("the socket file is still there");
    assert!(
        meta.file_type().is_socket(),
        "it belongs to the service manager"
    );
}

#[test]
fn eight_clients_auto_starting_beside_an_activated_daemon_find_one_daemon() {
    let Some(ssa) = need("systemd-socket-activate") else {
        return;
    };
    let tmp = tempdir();
    let home = tmp.path().join("home");
    let socket = private_dir(&tmp.path().join("s")).join("agent.sock");
    let notify_path = tmp.path().join("notify");
    let _notify = UnixDatagram::bind(&notify_path).expect("bind NOTIFY_SOCKET");
    let daemon = Activated::start(&ssa, &home, &socket, &notify_path);

    let clients: Vec<_> = (0..8)
        .map(|_| {
            let home = home.clone();
            let socket = socket.clone();
            // Auto-start allowed: a client must not start a second daemon when the socket
            // answers, even while the activated one is still starting up.
            std::thread::spawn(move || status_json(&home, &socket, true))
        })
        .collect();
    for c in clients {
        let status = c.join().expect("client thread");
        assert_eq!(status["pid"], daemon.child.id(), "{status}");
        assert_eq!(status["started_by"], "systemd");
    }
    assert_eq!(
        daemons_serving(&socket),
        vec![daemon.child.id()],
        "one op-sessiond serves the socket"
    );
    drop(daemon);
}

/// Pids of op-sessiond processes whose command line names `socket`.
fn daemons_serving(socket: &Path) -> Vec<u32> {
    let needle = socket.as_os_str().as_encoded_bytes();
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid: &u32| {
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let mut args = cmd.split(|b| *b == 0);
            args.next().is_some_and(|a| a.ends_with(b"op-sessiond"))
                && cmd.windows(needle.len()).any(|w| w == needle)
        })
        .collect();
    pids.sort_unstable();
    pids
}

#[test]
fn the_launchd_plist_names_absolute_paths_and_the_clients_socket() {
    let tmp = tempdir();
    let home = tmp.path().join("home");
    let mut install = client(&home);
    // launchd files on Linux: nothing can be bootstrapped, so the commands are printed.
    install
        .env("OPSESSION_SERVICE_MANAGER", "launchd")
        .env_remove("XDG_RUNTIME_DIR")
        .args(["service", "install"]);
    let out = stdout(&run(install));
    let uid = nix::unistd::getuid().as_raw();
    let plist = home.join("Library/LaunchAgents/com.op-session.op-sessiond.plist");
    assert!(
        out.contains(&format!(
            "launchctl bootstrap gui/{uid} {}",
            plist.display()
        )),
        "{out}"
    );
    assert_eq!(
        std::fs::metadata(&plist).expect("plist").mode() & 0o777,
        0o644
    );
    // Clients with this environment look at $TMPDIR/op-session-<uid>/agent.sock; launchd
    // cannot create that directory, so install did, private.
    let socket = home.join(format!("tmp/op-session-{uid}/agent.sock"));
    let dir = std::fs::symlink_metadata(socket.parent().expect("dir")).expect("socket dir");
    assert!(dir.is_dir() && dir.mode() & 0o777 == 0o700, "{dir:?}");

    let Some(python) = need("python3") else {
        return;
    };
    let parsed = plist_as_json(&python, &plist);
    assert_eq!(parsed["Label"], "com.op-session.op-sessiond");
    let args = parsed["ProgramArguments"].as_array().expect("array");
    assert_eq!(args[0].as_str(), bins().daemon.to_str());
    assert!(args.iter().any(|a| a == "--foreground"), "{args:?}");
    let listener = &parsed["Sockets"]["Listener"];
    assert_eq!(listener["SockPathName"].as_str(), socket.to_str());
    assert_eq!(listener["SockPathMode"], 384);
    let log = home.join("Library/Logs/op-sessiond.log");
    assert_eq!(parsed["StandardErrorPath"].as_str(), log.to_str());
    for p in [
        &args[0],
        &listener["SockPathName"],
        &parsed["StandardErrorPath"],
    ] {
        assert!(
            p.as_str().is_some_and(|p| p.starts_with('/')),
            "{p} is absolute"
        );
    }
    // The shipped template is a plist too, with the same keys.
    let template =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../launchd/com.op-session.op-sessiond.plist");
    let shipped = plist_as_json(&python, &template);
    assert_eq!(shipped["Sockets"]["Listener"]["SockPathMode"], 384);
}

fn plist_as_json(python: &Path, plist: &Path) -> serde_json::Value {
    let out = Command::new(python)
        .args([
            "-c",
            "import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))",
        ])
        .arg(plist)
        .finish()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "plistlib: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

#[test]
fn install_prints_with_dry_run_writes_once_and_then_changes_nothing() {
    let tmp = tempdir();
    let home = tmp.path().join("home");
    let units = home.join(".config/systemd/user");
    let service = units.join("op-sessiond.service");
    let socket = units.join("op-sessiond.socket");
    let svc = |args: &[&str]| {
        let mut c = client(&home);
        c.env("OPSESSION_SERVICE_MANAGER", "none")
            .arg("service")
            .args(args);
        stdout(&run(c))
    };

    let dry = svc(&["install", "--dry-run"]);
    let exec = format!("ExecStart={} --foreground", bins().daemon.display());
    for want in [
        "ListenStream=%t/op-session/agent.sock",
        exec.as_str(),
        "systemctl --user daemon-reload",
        "systemctl --user enable --now op-sessiond.socket",
    ] {
        assert!(dry.contains(want), "dry run lacks {want:?}:\n{dry}");
    }
    assert!(!units.exists(), "--dry-run wrote something");

    let first = svc(&["install"]);
    assert!(
        first.contains("systemctl --user enable --now op-sessiond.socket"),
        "{first}"
    );
    let mut before = Vec::new();
    for f in [&socket, &service] {
        let meta = std::fs::metadata(f).expect("unit written");
        assert_eq!(meta.mode() & 0o777, 0o644, "{f:?}");
        before.push((
            std::fs::read(f).expect("read"),
            meta.modified().expect("mtime"),
        ));
    }
    assert!(
        String::from_utf8_lossy(&before[1].0)
            .lines()
            .any(|l| l.starts_with(&exec)),
        "the unit runs the op-sessiond beside op-session"
    );

    std::thread::sleep(Duration::from_millis(20));
    let second = svc(&["install"]);
    assert!(
        second.contains(&format!("unchanged {}", service.display())),
        "{second}"
    );
    assert!(second.contains("no files changed"), "{second}");
    for (f, (content, mtime)) in [&socket, &service].into_iter().zip(&before) {
        assert_eq!(&std::fs::read(f).expect("read"), content);
        assert_eq!(
            &std::fs::metadata(f)
                .expect("meta")
                .modified()
                .expect("mtime"),
            mtime,
            "{f:?} was rewritten"
        );
    }

    let status = svc(&["status"]);
    assert!(
        status.contains(&format!("{}: installed", service.display())),
        "{status}"
    );

    let gone = svc(&["uninstall"]);
    assert!(gone.contains("systemctl --user disable --now"), "{gone}");
    assert!(!socket.exists() && !service.exists(), "{gone}");
    let mut c = client(&home);
    c.env("OPSESSION_SERVICE_MANAGER", "none")
        .args(["service", "status"]);
    let out = c.finish().expect("status runs");
    assert_eq!(out.status.code(), Some(1), "not installed is exit 1");
    assert!(stdout(&out).contains("not installed"));
}

/// A service manager in miniature: holds one listening socket for its whole life and, each
/// time a connection waits on it, starts the daemon with that socket as fd 3 (`LISTEN_FDS=1`,
/// `LISTEN_PID`), waits for it to exit, and listens on. That is what systemd does with
/// `op-sessiond.socket` and what `systemd-socket-activate` (which starts its command once)
/// cannot show.
const MINI_MANAGER: &str = r#"
import os, select, socket, sys
path, argv = sys.argv[1], sys.argv[2:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(16)
print("listening", flush=True)
for _ in range(3):  # like systemd's start limit: a daemon that keeps failing is not rerun
    select.select([s], [], [])
    pid = os.fork()
    if pid == 0:
        os.dup2(s.fileno(), 3)
        os.set_inheritable(3, True)  # dup2 onto itself would keep close-on-exec
        os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
        os.execv(argv[0], argv)
    os.waitpid(pid, 0)
    print("exited", pid, flush=True)
"#;

#[test]
fn an_idle_activated_daemon_exits_and_the_next_call_starts_it_again() {
    let Some(python) = need("python3") else {
        return;
    };
    let tmp = tempdir();
    let home = tmp.path().join("home");
    let socket = private_dir(&tmp.path().join("s")).join("agent.sock");
    let mut manager = Command::new(python)
        .args(["-c", MINI_MANAGER])
        .arg(&socket)
        .arg(&bins().daemon)
        .args(["--foreground", "--exit-when-idle", "300ms", "--socket"])
        .arg(&socket)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 starts");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        manager.stdout.take().expect("stdout"),
    ));
    let mut next_line = move || lines.next().expect("a line").expect("utf-8");
    assert_eq!(next_line(), "listening");

    let first = status_json(&home, &socket, false);
    assert_eq!(first["started_by"], "systemd", "{first}");
    // No session and no client: the daemon exits on its own; the socket stays with the manager.
    assert_eq!(next_line(), format!("exited {}", first["pid"]));
    assert!(socket.exists(), "the socket outlives the daemon");

    let second = status_json(&home, &socket, false);
    assert_eq!(second["started_by"], "systemd", "{second}");
    assert_ne!(second["pid"], first["pid"], "a fresh daemon answered");

    let _ = manager.kill();
    let _ = manager.wait();
}

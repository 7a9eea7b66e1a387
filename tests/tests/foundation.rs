//! Issue 2: a daemon only its owner can reach, a protocol bad input cannot crash, a client
//! that answers from any shell.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use op_session_e2e::Finish as _;
use op_session_e2e::{Out, World, hex, raw_request, wait_until};

fn raw_frame_bin() -> &'static str {
    env!("CARGO_BIN_EXE_raw-frame")
}

#[test]
fn status_answers_without_a_tty_in_text_and_json() {
    let w = World::new("");
    let out = w.run(&["status"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("op-sessiond 0.1.0"), "{}", out.stdout);
    assert!(out.stdout.contains("sessions: none"), "{}", out.stdout);
    let v = w.status();
    for key in [
        "version",
        "pid",
        "uptime_s",
        "socket",
        "protections",
        "sessions",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["started_by"], "autostart");
    assert_eq!(v["socket"], w.socket.display().to_string());
    assert_eq!(v["protections"]["ptrace_disabled"], true);
    assert_eq!(v["protections"]["core_dumps_disabled"], true);
    assert_eq!(v["protections"]["stray_fds_closed"], true);
    // What the kernel says, not just what the daemon reports.
    let pid = v["pid"].as_i64().unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert!(
        core.split_whitespace().filter(|w| *w == "0").count() >= 2,
        "{core}"
    );
    assert_eq!(w.run(&["stop"]).code, 0);
}

#[test]
fn socket_dir_is_0700_and_socket_0600() {
    let w = World::new("");
    assert_eq!(w.run(&["status"]).code, 0);
    let dir = w.socket.parent().unwrap();
    assert_eq!(std::fs::metadata(dir).unwrap().mode() & 0o777, 0o700);
    assert_eq!(
        std::fs::symlink_metadata(&w.socket).unwrap().mode() & 0o777,
        0o600
    );
    w.run(&["stop"]);
}

#[test]
fn a_wide_or_foreign_socket_directory_is_refused_with_the_fix() {
    let w = World::new("");
    let dir = w.socket.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out: op_session_e2e::Out = w.daemon(&["--foreground"]).finish().unwrap().into();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&dir.display().to_string()),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("chmod 700"), "{}", out.stderr);
    // The client refuses too, rather than talk to (or auto-start into) an unsafe directory.
    let c = w.run(&["status"]);
    assert_eq!(c.code, 69, "{}", c.stderr);
    assert!(c.stderr.contains("0755"), "{}", c.stderr);

    if nix::unistd::geteuid().is_root() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        nix::unistd::chown(dir, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let out: op_session_e2e::Out = w.daemon(&["--foreground"]).finish().unwrap().into();
        assert_eq!(out.code, 1);
        assert!(out.stderr.contains("owned by uid 65534"), "{}", out.stderr);
    } else {
        op_session_e2e::skipped("the foreign-owner half needs root to chown");
    }
}

/// A daemon serving in a directory that has since been opened up is not "not running":
/// `stop` and `lock` refuse the socket with the fix, at once, and the daemon goes on (it was
/// never asked). `stop` used to say "not running" and then wait 90 s for the daemon to exit.
#[test]
fn stop_and_lock_refuse_a_socket_whose_directory_was_opened_up() {
    let w = World::new("");
    assert_eq!(w.run(&["status"]).code, 0);
    let pid = w.daemon_pid().expect("pid");
    let dir = w.socket.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for args in [&["stop"][..], &["lock"][..]] {
        let started = std::time::Instant::now();
        let out = w.run(args);
        assert_eq!(out.code, 69, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("chmod 700"), "{}", out.stderr);
        assert!(!out.stdout.contains("not running"), "{}", out.stdout);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{args:?} waited {:?}",
            started.elapsed()
        );
    }
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(w.run(&["stop"]).code, 0);
}

#[test]
fn a_client_running_as_another_uid_is_refused_and_logged() {
    if !nix::unistd::geteuid().is_root() {
        op_session_e2e::skipped("a client as another uid needs root");
        return;
    }
    let w = World::new("");
    assert_eq!(w.run(&["status"]).code, 0);
    // Open the path for this test only, so the other user can reach the socket at all.
    for p in [
        w.dir.path(),
        w.runtime.as_path(),
        w.socket.parent().unwrap(),
    ] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&w.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let req = raw_request(r#"{"version":2,"type":"status"}"#);
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            raw_frame_bin(),
        ])
        .arg(&w.socket)
        .arg(hex(&req))
        .finish()
        .expect("setpriv runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("permission_denied"),
        "stdout: {stdout} stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains("\"sessions\""),
        "answered a foreign uid: {stdout}"
    );
    assert!(
        wait_until(Duration::from_secs(2), || w
            .daemon_log()
            .contains("peer_uid=65534")),
        "refusal not logged: {}",
        w.daemon_log()
    );
    std::fs::set_permissions(
        w.socket.parent().unwrap(),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    assert_eq!(w.run(&["stop"]).code, 0);
}

#[test]
fn garbage_oversized_and_truncated_frames_leave_the_daemon_serving() {
    let w = World::new("");
    assert_eq!(w.run(&["status"]).code, 0);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..1000 {
        let mut s = UnixStream::connect(&w.socket).unwrap();
        let bytes: Vec<u8> = match i % 4 {
            // Random bytes after a valid preamble.
            0 => {
                let n = (next() % 64) as usize;
                let mut v = vec![0u8];
                v.extend((0..n).map(|_| next() as u8));
                v
            }
            // Oversized length header.
            1 => {
                let mut v = vec![0u8];
                v.extend_from_slice(&(1u32 << 20).to_be_bytes());
                v.extend_from_slice(b"{\"version\":1");
                v
            }
            // Truncated frame: says 100 bytes, sends 10.
            2 => {
                let mut v = vec![0u8, 0, 0, 0, 100];
                v.extend_from_slice(b"{\"version\"");
                v
            }
            // Well-framed but malformed JSON / wrong types / unknown preamble.
            _ => {
                if next() % 2 == 0 {
                    raw_request(r#"{"version":2,"type":"resolve","refs":7}"#)
                } else {
                    let mut v = raw_request(r#"{"version":2,"type":"status"}"#);
                    v[0] = 0x7f;
                    v
                }
            }
        };
        let _ = s.write_all(&bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.read_to_end(&mut sink);
    }
    let v = w.status();
    assert!(v["pid"].as_i64().is_some());
    // Oversized frames get a clear error, not silence.
    let big = {
        let mut v = vec![0u8];
        v.extend_from_slice(&(10u32 << 20).to_be_bytes());
        v
    };
    let out = Command::new(raw_frame_bin())
        .arg(&w.socket)
        .arg(hex(&big))
        .finish()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("bad_request") && text.contains("limit"),
        "{text}"
    );
    w.run(&["stop"]);
}

#[test]
fn other_protocol_versions_get_a_clear_error_naming_the_daemon() {
    let w = World::new("");
    assert_eq!(w.run(&["status"]).code, 0);
    let req = raw_request(r#"{"version":99,"type":"from_the_future"}"#);
    let out = Command::new(raw_frame_bin())
        .arg(&w.socket)
        .arg(hex(&req))
        .finish()
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(v["code"], "version_mismatch");
    assert_eq!(
        v["daemon"]["protocol"],
        op_session_protocol::PROTOCOL_VERSION
    );
    assert_eq!(v["daemon"]["started_by"], "autostart");
    w.run(&["stop"]);
}

#[test]
fn a_silent_client_is_closed_at_the_deadline_while_others_are_served() {
    let w = World::new("read_timeout = \"1s\"");
    assert_eq!(w.run(&["status"]).code, 0);
    let mut silent = UnixStream::connect(&w.socket).unwrap();
    let started = Instant::now();
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(w.run(&["status"]).code, 0);
        assert!(
            t.elapsed() < Duration::from_millis(900),
            "a silent client delayed others"
        );
    }
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = silent.read_to_end(&mut buf);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert!(
        String::from_utf8_lossy(&buf).contains("no request within"),
        "{buf:?}"
    );
    w.run(&["stop"]);
}

/// One connection with the reuse preamble carries request after request; each is answered and
/// audited on its own, and a connection left open does not hold up `op-session stop`.
#[test]
fn a_reused_connection_carries_many_requests_and_never_holds_up_a_stop() {
    let w = World::new("");
    w.start_daemon();
    let mut c = op_session_e2e::Reused::connect(&w.socket);
    for _ in 0..20 {
        let a = c
            .ask(r#"{"version":2,"type":"status"}"#)
            .expect("an answer");
        assert_eq!(a["type"], "status", "{a}");
    }
    // Each request audited once, under this process (the one that connected).
    let audit = w.state.join("op-session/audit.jsonl");
    let ours = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["verb"] == "status" && r["peer_pid"] == std::process::id())
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(5), || ours().len() >= 20),
        "not every request on the connection was audited: {}",
        ours().len()
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(ours().len(), 20, "a request audited more than once");
    let pid = w.daemon_pid().expect("pid");
    let out = w.run(&["stop"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        wait_until(Duration::from_secs(10), || !std::path::Path::new(&format!(
            "/proc/{pid}"
        ))
        .exists()),
        "the daemon waited for the idle connection"
    );
    assert!(c.ended());
}

#[test]
fn sigterm_exits_zero_and_removes_the_socket() {
    let w = World::new("");
    let mut d = w
        .daemon(&["--foreground"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(3), || w.socket.exists()));
    assert_eq!(w.run(&["--no-autostart", "status"]).code, 0);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = op_session_e2e::wait_status(&mut d, op_session_e2e::DEADLINE);
    assert_eq!(st.code(), Some(0));
    assert!(!w.socket.exists(), "socket left behind");
    let out = w.run(&["--no-autostart", "status"]);
    assert_eq!(out.code, 69, "{}", out.stderr);
    assert!(out.stderr.contains("not running"), "{}", out.stderr);
}

#[test]
fn two_daemons_started_at_once_one_serves_the_other_explains() {
    let w = World::new("");
    let a = w
        .daemon(&["--foreground"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = w
        .daemon(&["--foreground"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut a, mut b) = (a, b);
    // One of them exits with the message; the other keeps serving.
    let mut loser = None;
    assert!(wait_until(Duration::from_secs(5), || {
        if let Ok(Some(st)) = a.try_wait() {
            loser = Some((st, a.stderr.take()));
            return true;
        }
        if let Ok(Some(st)) = b.try_wait() {
            loser = Some((st, b.stderr.take()));
            return true;
        }
        false
    }));
    let (st, err) = loser.unwrap();
    let mut msg = String::new();
    err.unwrap().read_to_string(&mut msg).unwrap();
    assert_eq!(st.code(), Some(1));
    assert!(msg.contains("already serving"), "{msg}");
    assert_eq!(w.run(&["--no-autostart", "status"]).code, 0);
    assert_eq!(w.run(&["stop"]).code, 0);
    let _ = a.wait();
    let _ = b.wait();
}

#[test]
fn eight_clients_auto_starting_at_once_end_with_one_daemon() {
    let w = World::new("");
    // The clients start the daemon themselves (it reads the standard config, not this world's).
    w.without_daemon();
    let mut pids = std::collections::BTreeSet::new();
    for out in w.run_parallel(8, &["status", "--json"]) {
        assert_eq!(out.code, 0, "{}", out.stderr);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        pids.insert(v["pid"].as_i64().unwrap());
    }
    assert_eq!(pids.len(), 1, "more than one daemon answered: {pids:?}");
    // And exactly one daemon process for this socket is alive.
    let sock = w.socket.display().to_string();
    let alive = op_session_e2e::processes(
        &format!("op-sessiond\0--started-by\0autostart\0--socket\0{sock}"),
        None,
    );
    assert_eq!(alive, 1);
    w.run(&["stop"]);
}

#[test]
fn usage_errors_exit_64_with_one_line() {
    let w = World::new("");
    let out = w.run(&["read"]);
    assert_eq!(out.code, 64);
    let out = w.run(&["no-such-command"]);
    assert_eq!(out.code, 64);
}

#[test]
fn a_client_restarts_an_auto_started_daemon_of_another_protocol_version() {
    // Play an older daemon that this client auto-started: it answers every request with
    // version_mismatch naming a pid (a sleeping stand-in) and "autostart".
    let w = World::new("");
    w.without_daemon();
    let mut old = Command::new("sleep").arg("30").spawn().unwrap();
    let old_pid = old.id();
    let listener = bind_in_private_dir(&w);
    let sock = w.socket.clone();
    let fake_old = std::thread::spawn(move || {
        answer_once(
            &listener,
            &format!(
                r#"{{"type":"error","code":"version_mismatch","message":"client speaks protocol 2, daemon speaks 0","fix":"x","daemon":{{"protocol":0,"version":"0.0.1","pid":{old_pid},"started_by":"autostart"}}}}"#
            ),
        );
        // An old daemon removes its socket when it is stopped.
        drop(listener);
        let _ = std::fs::remove_file(&sock);
    });
    // Reap the stand-in when the client SIGTERMs it, as init would for a real daemon.
    let reaper = std::thread::spawn(move || old.wait());
    let out = w.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["protocol"], op_session_protocol::PROTOCOL_VERSION);
    assert_ne!(v["pid"].as_i64(), Some(i64::from(old_pid)));
    fake_old.join().unwrap();
    let status = reaper.join().unwrap().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(15),
        "the old daemon was not sent SIGTERM"
    );
    w.run(&["stop"]);
}

#[test]
fn a_daemon_started_by_hand_of_another_version_is_left_alone_with_advice() {
    let w = World::new("");
    w.without_daemon();
    let listener = bind_in_private_dir(&w);
    let t = std::thread::spawn(move || {
        answer_once(
            &listener,
            r#"{"type":"error","code":"version_mismatch","message":"m","fix":"x","daemon":{"protocol":0,"version":"0.0.1","pid":1,"started_by":"systemd"}}"#,
        );
    });
    let out = w.run(&["status"]);
    assert_eq!(out.code, 76, "{}", out.stderr);
    assert!(
        out.stderr.contains("started by systemd") && out.stderr.contains("fix:"),
        "{}",
        out.stderr
    );
    t.join().unwrap();
}

/// Bind the world's socket ourselves (playing another daemon) in its private directory.
fn bind_in_private_dir(w: &World) -> std::os::unix::net::UnixListener {
    let dir = w.socket.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::net::UnixListener::bind(&w.socket).unwrap()
}

/// Accept one connection, read its request, answer with one frame holding `body`.
fn answer_once(listener: &std::os::unix::net::UnixListener, body: &str) {
    let (mut s, _) = listener.accept().unwrap();
    read_whole_request(&mut s);
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body.as_bytes());
    s.write_all(&frame).unwrap();
}

/// Read a preamble byte and one whole frame, as a daemon would before answering.
fn read_whole_request(s: &mut UnixStream) {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).unwrap();
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
}

#[test]
fn the_lock_file_names_the_detached_daemon_so_a_second_start_points_at_it() {
    let w = World::new("");
    let pid = w.status()["pid"].as_i64().unwrap() as i32;
    assert_eq!(
        w.daemon_pid(),
        Some(pid),
        "the lock names a process that is gone"
    );
    let out: op_session_e2e::Out = w.daemon(&["--foreground"]).finish().unwrap().into();
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains(&format!("pid {pid}")), "{}", out.stderr);
    w.run(&["stop"]);
}

#[test]
fn completions_and_a_man_page_are_generated() {
    let w = World::new("");
    w.without_daemon();
    for shell in ["bash", "zsh", "fish"] {
        let out = w.run(&["completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert!(
            out.stdout.contains("op-session") && out.stdout.contains("inject"),
            "{shell}"
        );
    }
    let man = w.run(&["man"]);
    assert_eq!(man.code, 0);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH op-session"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    assert!(w.daemon_pid().is_none(), "generating help started a daemon");
}

#[test]
fn stop_returns_once_the_daemon_has_exited_so_a_new_one_can_start_at_once() {
    let w = World::new("");
    for _ in 0..3 {
        assert_eq!(w.run(&["status"]).code, 0);
        let pid = w.daemon_pid().expect("a daemon runs");
        let out = w.run(&["stop"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        // Gone, or a zombie nobody reaped yet (it has exited either way).
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let running = state
            .rfind(')')
            .is_some_and(|i| !state[i + 1..].trim_start().starts_with('Z'));
        assert!(!running, "stop returned while the daemon still ran");
        // An immediate manual start is not told "already running".
        let out: Out = w.daemon(&[]).finish().unwrap().into();
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(w.run(&["stop"]).code, 0);
    }
}

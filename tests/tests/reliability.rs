//! Issue 7 (reliability): a hanging, crashing or babbling `op`, a daemon killed outright, a
//! thousand connections with a hundred stalled, and a leak scan over a whole session's life.
//! Every loop here is bounded in count and time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use op_session_e2e::Finish as _;
use op_session_e2e::{Out, World, raw_request, wait_until};

/// A world whose `op` is a shell script: `vault list` and `whoami` succeed (so a
/// service-account session can start), everything else runs `body`.
fn scripted_op(body: &str, config: &str) -> World {
    let w = World::new("");
    let script = w.dir.path().join("op");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ncase \"$1\" in\n  vault|whoami) echo '[]'; exit 0;;\nesac\n{body}\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        &w.config,
        format!("op_path = \"{}\"\n{config}\n", script.display()),
    )
    .unwrap();
    let out = w.run_with_stdin(
        &["init", "--mode", "service-account"],
        b"ops_bm90LWEtcmVhbC10b2tlbi1mb3ItdGVzdHM\n",
    );
    assert_eq!(out.code, 0, "init: {}", out.stderr);
    w
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

#[test]
fn a_hanging_op_is_killed_at_the_timeout_with_a_clear_error() {
    let marker = tempfile::NamedTempFile::new().unwrap();
    let body = format!("sleep 30 & echo $! > {}; wait", marker.path().display());
    let w = scripted_op(&body, "op_timeout = \"1s\"");
    let started = Instant::now();
    let out = w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("did not finish within 1"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let grandchild: i32 = std::fs::read_to_string(marker.path())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(3), || !alive(grandchild)),
        "op's child survived"
    );
    assert_eq!(w.run(&["status"]).code, 0);
    w.run(&["stop"]);
}

#[test]
fn an_op_that_crashes_mid_output_is_a_clear_error() {
    let w = scripted_op("printf 'partial-val'; kill -SEGV $$", "");
    let out = w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("SIGSEGV"), "{}", out.stderr);
    assert!(
        !out.stdout.contains("partial"),
        "half a value was printed: {}",
        out.stdout
    );
    assert_eq!(w.run(&["status"]).code, 0);
    w.run(&["stop"]);
}

#[test]
fn an_op_that_prints_garbage_is_a_clear_error() {
    let w = scripted_op("printf '\\377\\376 not a value \\001'; exit 0", "");
    let out = w.run(&["read", "op://Dev/Stripe/key", "op://Dev/Stripe/username"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("not UTF-8"), "{}", out.stderr);
    assert_eq!(w.run(&["status"]).code, 0);
    w.run(&["stop"]);
}

#[test]
fn a_missing_op_is_one_clear_error() {
    let w = World::new("");
    std::fs::write(&w.config, "op_path = \"/nonexistent/op\"\n").unwrap();
    let out = w.run(&["read", "op://Dev/Stripe/key"]);
    // No session yet: the person must act first; init then names the missing binary.
    assert_eq!(out.code, 77);
    let out = w.run_with_stdin(&["init", "--mode", "service-account"], b"ops_dGVzdA\n");
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("/nonexistent/op"), "{}", out.stderr);
    w.run(&["stop"]);
}

#[test]
fn a_sigkilled_daemon_is_replaced_cleanly_by_the_next_client() {
    let w = World::new("");
    w.load_basic();
    let out = w.run_with_stdin(
        &["init", "--account", "my", "--password-stdin"],
        b"correct horse battery staple\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let old = w.status()["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(3), || !alive(old)));
    assert!(
        w.socket.exists(),
        "the stale socket is still there (as after a real crash)"
    );
    // The next call starts a fresh daemon; the session died with the old one, which it says.
    let out = w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(out.stderr.contains("op-session init"), "{}", out.stderr);
    let new = w.status()["pid"].as_i64().unwrap() as i32;
    assert_ne!(new, old);
    w.run(&["stop"]);
}

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_thousand_connections_with_a_hundred_stalled() {
    let w = World::new("read_timeout = \"2s\"\nmax_connections = 1100");
    let pid = w.status()["pid"].as_i64().unwrap() as i32;
    let (fds0, rss0) = (fd_count(pid), rss_kib(pid));
    // Our own soft limit must allow a thousand sockets.
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let _ = nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_NOFILE,
        hard.min(8192),
        hard,
    );

    let stalled: Vec<UnixStream> = (0..100)
        .map(|_| UnixStream::connect(&w.socket).unwrap())
        .collect();
    let started = Instant::now();
    let req = raw_request(r#"{"version":2,"type":"status"}"#);
    let workers: Vec<_> = (0..10)
        .map(|_| {
            let sock = w.socket.clone();
            let req = req.clone();
            std::thread::spawn(move || {
                // Open all 90 first, so they are concurrent with each other and the stalled.
                let mut conns: Vec<UnixStream> = (0..90)
                    .map(|_| UnixStream::connect(&sock).unwrap())
                    .collect();
                let mut ok = 0;
                for c in &mut conns {
                    c.write_all(&req).unwrap();
                }
                for c in &mut conns {
                    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    let mut buf = Vec::new();
                    let _ = c.read_to_end(&mut buf);
                    if String::from_utf8_lossy(&buf).contains("\"sessions\"") {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let served: usize = workers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(served, 900, "some well-behaved clients were not served");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stalled clients delayed the others: {:?}",
        started.elapsed()
    );
    // The stalled ones are closed at the deadline.
    for mut s in stalled {
        s.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        assert!(String::from_utf8_lossy(&buf).contains("no request within"));
    }
    assert!(
        wait_until(Duration::from_secs(3), || fd_count(pid) <= fds0 + 2),
        "fds {} -> {}",
        fds0,
        fd_count(pid)
    );
    let rss1 = rss_kib(pid);
    assert!(
        rss1 < rss0 + 8 * 1024,
        "RSS grew from {rss0} KiB to {rss1} KiB"
    );
    w.run(&["stop"]);
}

#[test]
fn no_token_or_value_leaks_over_a_whole_session_life() {
    let w = World::new("idle_timeout = \"2s\"");
    w.load_basic();
    let init = |w: &World| {
        let out = w.run_with_stdin(
            &["init", "--account", "my", "--password-stdin"],
            b"correct horse battery staple\n",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
    };
    init(&w);
    let tokens = || -> Vec<String> {
        let state: serde_json::Value = serde_json::from_str(&w.ctl(&["state"])).unwrap();
        state["sessions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s["token"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut seen = tokens();
    assert!(!seen.is_empty());
    w.run(&["read", "op://Dev/Stripe/key"]);
    let _: Out = w
        .client(&["run", "--", "printenv", "K"])
        .env("K", "op://Dev/GitHub/password")
        .finish()
        .unwrap()
        .into();
    w.run_with_stdin(&["inject"], b"{{ op://Prod/Stripe/key }}");
    w.run(&[
        "op", "item", "get", "Database", "--vault", "Dev", "--reveal", "--format", "json",
    ]);
    std::thread::sleep(Duration::from_millis(2300));
    assert_eq!(w.run(&["read", "op://Dev/Stripe/key"]).code, 77, "expiry");
    init(&w);
    seen.extend(tokens());
    w.run(&["read", "--no-cache", "op://Dev/Database/password"]);
    w.run(&["lock"]);
    let _ = w.client(&["stop"]).stdout(Stdio::null()).status();

    let secrets: Vec<String> = seen
        .into_iter()
        .chain(
            [
                "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
                "gh-Pa55word-7Hq2",
                "sk_live_51ProdOnlyKeyDoNotLeak9",
                "p@ss w0rd $HOME",
                "correct horse battery staple",
            ]
            .map(String::from),
        )
        .collect();
    let log = w.daemon_log();
    assert!(
        log.contains("session ended"),
        "the log has the life story: {log}"
    );
    for f in w.all_files() {
        if f.starts_with(&w.fake_home) {
            continue; // fake-op's state plays 1Password's servers
        }
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{} holds a secret", f.display());
        }
    }
    for c in w.calls() {
        for s in &secrets {
            assert!(
                !c["argv"].to_string().contains(s.as_str()),
                "the argv of a {} call holds a secret (not printed)",
                c["command"]
            );
        }
    }
}

#[test]
fn an_app_sign_in_failure_is_shown_scrubbed() {
    let w = World::new("");
    let script = w.dir.path().join("op");
    let token = "ops_eyJzaWduSW5BZGRyZXNzIjoiaHR0cHM6Ly9teS4xcGFzc3dvcmQuY29tIn0";
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"[ERROR] 2026/01/01 00:00:00 bad credential {token}\" >&2\nexit 1\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(&w.config, format!("op_path = \"{}\"\n", script.display())).unwrap();
    let out = w.run(&["init", "--mode", "app"]);
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(
        out.stderr.contains("bad credential ops_<redacted>"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("eyJzaWdu"),
        "an ops_ token reached the caller"
    );
    w.run(&["stop"]);
}

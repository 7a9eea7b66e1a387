//! Issue 13: connect mode. A team with a 1Password Connect server and no `op` binary starts a
//! session with the server's token, and read, run and inject give the same values and exit
//! codes as in token mode; the token never shows anywhere; a broken, slow or refusing server
//! is one clear error with the right exit code and never takes the daemon down.
//!
//! The server is fake-connect, in this test process, on 127.0.0.1 over TLS with a CA made
//! per test. The MCP tools in connect mode are checked in tests/tests/mcp.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use op_session_e2e::Finish as _;
use op_session_e2e::connect::{Connect, connect_world};
use op_session_e2e::{Out, World, fixture, processes, wait_until};

const MY_PASSWORD: &[u8] = b"correct horse battery staple\n";
const STRIPE: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

fn token_world() -> World {
    let w = World::new("");
    w.load_basic();
    let out = w.run_with_stdin(
        &["init", "--account", "my", "--password-stdin"],
        MY_PASSWORD,
    );
    assert_eq!(out.code, 0, "init: {}", out.stderr);
    w
}

/// `[ERROR] YYYY/MM/DD HH:MM:SS` with the time blanked.
fn untime(s: &str) -> String {
    s.lines()
        .map(|l| match l.strip_prefix("[ERROR] ") {
            Some(r) if r.len() >= 20 => format!("[ERROR] <ts> {}", &r[20..]),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn run_case(w: &World, args: &[&str], stdin: Option<&str>, env: &[(String, String)]) -> Out {
    let mut c = w.client(args);
    c.envs(env.iter().cloned())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = c.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    op_session_e2e::wait_output(child, op_session_e2e::DEADLINE).into()
}

#[test]
fn differential_read_run_and_inject_give_the_same_values_and_exit_codes_as_token_mode() {
    let token_mode = token_world();
    let c = Connect::started("");
    let envfile = c.w.dir.path().join("app.env");
    std::fs::write(
        &envfile,
        "STRIPE=op://Dev/Stripe/key\n# comment\nPLAIN=hello\nDB=\"op://Dev/Database/password\"\n",
    )
    .unwrap();
    let envfile = envfile.display().to_string();
    // Every read, run and inject case of the token-mode differential.
    let shared = op_session_e2e::differential_cases(&envfile);
    let mut cases: Vec<(Vec<&str>, Option<&str>)> = shared
        .iter()
        .map(|(a, s)| (a.iter().map(String::as_str).collect(), *s))
        .collect();
    // And reads token mode's differential does not run.
    cases.extend::<Vec<(Vec<&str>, Option<&str>)>>(vec![
        (
            vec!["read", "op://Dev/Stripe/key", "op://Dev/Database/username"],
            None,
        ),
        (vec!["read", "--json", "op://Dev/Stripe/key"], None),
        (vec!["read", "op://Private/Diary/notesPlain"], None),
        (
            vec!["read", "op://Dev/GitHub/password?attribute=purpose"],
            None,
        ),
        (vec!["read", "op://Dev/TLS Cert/key.pem"], None),
    ]);
    for (args, stdin) in &cases {
        let theirs = run_case(&token_mode, args, *stdin, &[]);
        let ours = run_case(&c.w, args, *stdin, &[]);
        assert_eq!(
            ours.code, theirs.code,
            "exit code differs for {args:?}: connect said {}",
            ours.stderr
        );
        assert_eq!(ours.stdout, theirs.stdout, "stdout differs for {args:?}");
        assert_eq!(
            untime(&ours.stderr),
            untime(&theirs.stderr),
            "stderr differs for {args:?}"
        );
    }

    // A twenty-reference run: the same output, and each distinct item fetched once.
    let refs = [
        "op://Dev/Stripe/username",
        "op://Dev/Stripe/key",
        "op://Dev/Stripe/environment",
        "op://Dev/Database/username",
        "op://Dev/Database/password",
        "op://Dev/Database/host",
        "op://Dev/Database/port",
        "op://Dev/GitHub/username",
        "op://Dev/GitHub/password",
        "op://Dev/GitHub/Security/recovery code",
        "op://Prod/Stripe/key",
        "op://Prod/Database/username",
        "op://Prod/Database/password",
        "op://Private/Bank/username",
        "op://Private/Bank/password",
        "op://Dev/Stripe/key?attribute=type",
        "op://Dev/Database/password?attribute=type",
        "op://Dev/GitHub/password?attribute=type",
        "op://Prod/Stripe/key?attribute=type",
        "op://Private/Bank/password?attribute=type",
    ];
    let env: Vec<(String, String)> = refs
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("V{i}"), r.to_string()))
        .collect();
    let script = [
        "run",
        "--no-masking",
        "--no-cache",
        "--",
        "sh",
        "-c",
        "printf '%s|%s|%s|%s|%s\\n' \"$V0\" \"$V4\" \"$V9\" \"$V12\" \"$V19\"",
    ];
    let theirs = run_case(&token_mode, &script, None, &env);
    let before_items = c.server.count("GET /v1/vaults/");
    let before = c.server.requests().len();
    let ours = run_case(&c.w, &script, None, &env);
    assert_eq!(ours.code, 0, "{}", ours.stderr);
    assert_eq!(ours.stdout, theirs.stdout);
    let new: Vec<String> = c.server.requests()[before..].to_vec();
    let item_gets = new
        .iter()
        .filter(|r| r.contains("/items/") && !r.contains('?'))
        .count();
    assert_eq!(
        item_gets, 6,
        "six distinct items, each fetched once: {new:#?}"
    );
    assert!(
        !new.iter()
            .any(|r| r == "GET /v1/vaults?filter=name+eq+%22Dev%22"),
        "vault IDs come from the ID cache within the TTL: {new:#?}"
    );
    assert!(c.server.count("GET /v1/vaults/") > before_items);

    // Within the TTL, the same run costs the server nothing.
    let before = c.server.requests().len();
    let again = run_case(
        &c.w,
        &script
            .iter()
            .filter(|a| **a != "--no-cache")
            .copied()
            .collect::<Vec<_>>(),
        None,
        &env,
    );
    assert_eq!(again.stdout, theirs.stdout);
    assert_eq!(
        c.server.requests().len(),
        before,
        "a cached run reached the server"
    );
    token_mode.run(&["stop"]);
    c.w.run(&["stop"]);
}

#[test]
fn sixty_four_concurrent_reads_of_one_uncached_reference_are_one_item_fetch() {
    let c = Connect::started("");
    c.server
        .knobs()
        .delay_ms
        .store(300, std::sync::atomic::Ordering::SeqCst);
    let before = c.server.requests().len();
    for out in c.w.run_parallel(64, &["read", "op://Dev/Stripe/key"]) {
        assert_eq!(out.stdout, format!("{STRIPE}\n"), "{}", out.stderr);
    }
    let new = c.server.requests()[before..].to_vec();
    assert_eq!(
        new.iter().filter(|r| r.contains("/items/")).count(),
        1,
        "concurrent misses were not coalesced: {new:#?}"
    );
    c.w.run(&["stop"]);
}

#[test]
fn status_shows_the_server_no_idle_limit_and_lock_wipes_the_session() {
    let c = Connect::started("idle_timeout = \"1s\"");
    let s = c.w.status();
    let session = &s["sessions"][0];
    assert_eq!(session["mode"], "connect");
    assert_eq!(session["connect"]["host"], c.server.url());
    assert_eq!(session["connect"]["name"], "1Password Connect API");
    assert_eq!(session["connect"]["version"], "1.7.3-fake");
    assert!(session["idle_remaining_s"].is_null(), "{session}");
    assert!(session["hard_remaining_s"].as_u64().unwrap() > 3600);
    assert_eq!(session["keepalive"], false);
    let human = c.w.run(&["status"]);
    assert!(human.stdout.contains("mode connect"), "{}", human.stdout);
    assert!(human.stdout.contains("1.7.3-fake"), "{}", human.stdout);
    // No idle limit: a pause longer than idle_timeout changes nothing.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(c.w.run(&["read", "op://Dev/Stripe/key"]).code, 0);
    let out = c.w.run(&["lock"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = c.w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(c.w.status()["sessions"].as_array().unwrap().is_empty());
    c.w.run(&["stop"]);
}

#[test]
fn the_token_comes_from_stdin_a_token_file_or_systemd_credentials_never_argv() {
    let c = connect_world("", true);
    // A token file.
    let file = c.w.dir.path().join("connect.token");
    std::fs::write(&file, format!("{}\n", c.token)).unwrap();
    let out = c.w.run(&[
        "init",
        "--mode",
        "connect",
        "--host",
        &c.server.url(),
        "--token-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        c.w.run(&["read", "op://Dev/Stripe/key"]).stdout,
        format!("{STRIPE}\n")
    );
    c.w.run(&["stop"]);
    // Nothing at all (stdin is /dev/null, not a terminal): a clear usage error.
    let out =
        c.w.run(&["init", "--mode", "connect", "--host", &c.server.url()]);
    assert_eq!(out.code, 64, "{}", out.stderr);
    // No host: a clear usage error naming --host.
    let out =
        c.w.run_with_stdin(&["init", "--mode", "connect"], c.token.as_bytes());
    assert_eq!(out.code, 64, "{}", out.stderr);
    assert!(out.stderr.contains("--host"), "{}", out.stderr);
    // Plain http is refused: the token only travels over verified TLS.
    let http = c.server.url().replace("https://", "http://");
    let out = c.w.run_with_stdin(
        &["init", "--mode", "connect", "--host", &http],
        c.token.as_bytes(),
    );
    assert_eq!(out.code, 64, "{}", out.stderr);
    assert!(out.stderr.contains("https"), "{}", out.stderr);
    c.w.run(&["stop"]);

    // systemd's LoadCredential: the daemon reads $CREDENTIALS_DIRECTORY/op-connect-token.
    let creds = c.w.dir.path().join("creds");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(creds.join("op-connect-token"), format!("{}\n", c.token)).unwrap();
    let mut d =
        c.w.daemon(&["--foreground"])
            .env("CREDENTIALS_DIRECTORY", &creds)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    assert!(wait_until(Duration::from_secs(5), || c.w.socket.exists()));
    // With a terminal on stdin and no --token-file the client sends no token; the tests
    // have no terminal, so send that init request over the protocol directly.
    let req = op_session_e2e::raw_request(&format!(
        r#"{{"version":2,"type":"init","mode":"connect","host":"{}"}}"#,
        c.server.url()
    ));
    let raw = std::process::Command::new(env!("CARGO_BIN_EXE_raw-frame"))
        .arg(&c.w.socket)
        .arg(op_session_e2e::hex(&req))
        .finish()
        .unwrap();
    let text = String::from_utf8_lossy(&raw.stdout);
    assert!(text.contains("\"mode\":\"connect\""), "{text}");
    assert!(
        !text.contains(&c.token),
        "the init response holds the token"
    );
    assert_eq!(
        c.w.run(&["read", "op://Dev/Stripe/key"]).stdout,
        format!("{STRIPE}\n")
    );
    c.w.run(&["stop"]);
    let _ = d.wait();
}

#[test]
fn tls_is_always_verified_and_connect_ca_file_adds_the_internal_ca() {
    // Without the CA: refused, exit 69, and the fix names connect_ca_file.
    let c = connect_world("", false);
    let out = c.init();
    assert_eq!(out.code, 69, "{}", out.stderr);
    assert!(out.stderr.contains("certificate"), "{}", out.stderr);
    assert!(out.stderr.contains("connect_ca_file"), "{}", out.stderr);
    assert_eq!(
        c.server.count("GET /v1/"),
        0,
        "the token was sent to a server whose certificate failed"
    );
    assert!(c.w.status()["sessions"].as_array().unwrap().is_empty());
    c.w.run(&["stop"]);

    // With it: accepted, by address and by name.
    let c = connect_world("", true);
    assert_eq!(c.init().code, 0);
    let out = c.w.run_with_stdin(
        &[
            "init",
            "--mode",
            "connect",
            "--host",
            &c.server.url_by_name(),
        ],
        c.token.as_bytes(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A CA file that is not PEM is a clear error, not a silent fallback.
    std::fs::write(c.w.dir.path().join("connect-ca.pem"), "not a certificate\n").unwrap();
    c.w.run(&["stop"]);
    let out = c.init();
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("connect_ca_file"), "{}", out.stderr);
    c.w.run(&["stop"]);
}

#[test]
fn faults_have_clear_errors_and_exit_codes_and_never_take_the_daemon_down() {
    use std::sync::atomic::Ordering::SeqCst;
    let mut c = Connect::started("op_timeout = \"1s\"\ncache_ttl = \"0s\"");
    let k = c.server.knobs();
    let daemon = c.w.daemon_pid().unwrap();

    // 429 with Retry-After: 75, and the wait is named.
    k.status.store(429, SeqCst);
    k.retry_after.store(1, SeqCst);
    let out = c.w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.stderr.contains("Retry-After: 1s"), "{}", out.stderr);
    // Until Retry-After has passed, nothing is sent (issue 22; tests/tests/quota.rs).
    let served = c.server.requests().len();
    let out = c.w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.stderr.contains("sends nothing"), "{}", out.stderr);
    assert_eq!(c.server.requests().len(), served);
    assert!(wait_until(Duration::from_secs(5), || {
        c.w.status()["sessions"][0]["quota"]
            .get("retry_after_s")
            .is_none()
    }));
    // 5xx: also retry later.
    k.status.store(503, SeqCst);
    k.retry_after.store(0, SeqCst);
    assert_eq!(c.w.run(&["read", "op://Dev/Stripe/key"]).code, 75);
    // 403: 1, with the server's message.
    k.status.store(403, SeqCst);
    let out = c.w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "could not read secret 'op://Dev/Stripe/key': (403) Forbidden: Unauthorized access"
        ),
        "{}",
        out.stderr
    );
    k.status.store(0, SeqCst);

    // Garbage JSON: 1, and it says so.
    k.garbage.store(true, SeqCst);
    let out = c.w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("not valid JSON"), "{}", out.stderr);
    k.garbage.store(false, SeqCst);

    // Slow: stopped at op_timeout.
    k.delay_ms.store(5000, SeqCst);
    let t = Instant::now();
    let out = c.w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("did not answer within 1s"),
        "{}",
        out.stderr
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    k.delay_ms.store(0, SeqCst);
    assert_eq!(
        c.w.run(&["read", "op://Dev/Stripe/key"]).code,
        0,
        "recovers"
    );

    // 401: 77, and the session is over.
    k.status.store(401, SeqCst);
    let out = c.w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(out.stderr.contains("--mode connect"), "{}", out.stderr);
    k.status.store(0, SeqCst);
    let out = c.w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 77, "the session survived a 401: {}", out.stderr);
    assert!(c.w.status()["sessions"].as_array().unwrap().is_empty());

    // Down: 69 at init and for a held session.
    assert_eq!(c.init().code, 0);
    k.down.store(true, SeqCst);
    let out = c.w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 69, "{}", out.stderr);
    let out = c.init();
    assert_eq!(out.code, 69, "{}", out.stderr);
    k.down.store(false, SeqCst);
    let url = c.server.url();
    c.server.stop();
    let out = c.w.run_with_stdin(
        &["init", "--mode", "connect", "--host", &url],
        c.token.as_bytes(),
    );
    assert_eq!(out.code, 69, "refused: {}", out.stderr);
    assert!(out.stderr.contains("cannot reach"), "{}", out.stderr);

    // Through all of it, one daemon kept serving.
    assert_eq!(c.w.daemon_pid(), Some(daemon));
    assert_eq!(c.w.run(&["status"]).code, 0);
    c.w.run(&["stop"]);
}

#[test]
fn passthrough_offers_only_what_op_does_with_connect_and_never_execs_or_reveals() {
    let c = Connect::started("[policy]\nallow_destructive = true");
    for args in [
        vec!["op", "item", "create", "--category", "login"],
        vec!["op", "item", "edit", "Stripe", "key=x"],
        vec!["op", "item", "delete", "Stripe"],
        vec!["op", "whoami"],
        vec!["op", "user", "list"],
    ] {
        let out = c.w.run(&args);
        assert_eq!(out.code, 64, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("not available in connect mode"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("read, run and inject"),
            "{}",
            out.stderr
        );
    }
    let out = c.w.run(&["op", "signin", "--raw"]);
    assert_eq!(out.code, 64, "{}", out.stderr);
    // `op run` is op-session's own run (the daemon never runs `op run` with a token).
    let out: Out =
        c.w.client(&["op", "run", "--", "printenv", "K"])
            .env("K", "op://Dev/Stripe/key")
            .finish()
            .unwrap()
            .into();
    assert_eq!(out.stdout, "<concealed by 1Password>\n", "{}", out.stderr);
    let req = op_session_e2e::raw_request(
        r#"{"version":2,"type":"passthrough","args":["run","--","env"],"cwd":"/","env":[]}"#,
    );
    let raw = std::process::Command::new(env!("CARGO_BIN_EXE_raw-frame"))
        .arg(&c.w.socket)
        .arg(op_session_e2e::hex(&req))
        .finish()
        .unwrap();
    let text = String::from_utf8_lossy(&raw.stdout);
    assert!(text.contains("bad_request"), "{text}");
    // A read-only command goes to `op` with OP_CONNECT_HOST and OP_CONNECT_TOKEN in its
    // environment, never its argv (fake-op does not speak Connect, so only that is checked).
    let out = c.w.run(&["op", "vault", "list"]);
    assert!(
        out.stderr.contains("does not simulate 1Password Connect"),
        "{}",
        out.stderr
    );
    let calls = c.w.calls();
    let vault_list = calls
        .iter()
        .find(|c| c["argv"].to_string().contains("vault"))
        .unwrap_or_else(|| panic!("op never ran: {calls:?}"));
    let env = vault_list["env"].to_string();
    assert!(
        env.contains("\"OP_CONNECT_HOST\"") && env.contains("\"OP_CONNECT_TOKEN\""),
        "{env}"
    );
    assert!(!vault_list["argv"].to_string().contains(&c.token));
    assert_eq!(vault_list["secret_in_argv"], false);
    c.w.run(&["stop"]);
}

/// The inodes of TCP sockets listening on an address other than loopback.
fn non_loopback_listeners() -> Vec<String> {
    let mut out = Vec::new();
    for (file, loopback) in [
        ("/proc/net/tcp", &["0100007F"][..]),
        ("/proc/net/tcp6", &["00000000000000000000000001000000"][..]),
    ] {
        for line in std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" {
                let addr = f[1].split(':').next().unwrap_or("");
                if !loopback.contains(&addr) {
                    out.push(f[9].to_string());
                }
            }
        }
    }
    out
}

fn socket_inodes(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    l.to_string_lossy()
                        .strip_prefix("socket:[")
                        .and_then(|s| s.strip_suffix(']'))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_connect_token_never_reaches_argv_files_logs_audit_errors_or_responses() {
    use std::sync::atomic::Ordering::SeqCst;
    let c = Connect::started("");
    let mut outputs: Vec<Out> = Vec::new();
    // Watch every process's argv while a slow request is in flight.
    c.server.knobs().delay_ms.store(700, SeqCst);
    let slow =
        c.w.client(&["read", "--no-cache", "op://Dev/GitHub/password"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        processes(&c.token, None),
        0,
        "the token is in some process's argv"
    );
    // Nor in any environment: the daemon resolves over HTTP, no child holds it.
    let in_environ = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
            String::from_utf8_lossy(&env).contains(&c.token)
        })
        .count();
    assert_eq!(in_environ, 0, "the token is in some process's environment");
    outputs.push(op_session_e2e::wait_output(slow, op_session_e2e::DEADLINE).into());
    c.server.knobs().delay_ms.store(0, SeqCst);

    outputs.push(c.w.run(&["read", "op://Dev/Stripe/key", "op://Dev/Database/password"]));
    outputs.push(
        c.w.client(&["run", "--", "printenv", "K"])
            .env("K", "op://Prod/Stripe/key")
            .finish()
            .unwrap()
            .into(),
    );
    outputs.push(c.w.run_with_stdin(&["inject"], b"x={{ op://Dev/GitHub/password }}\n"));
    outputs.push(c.w.run(&["read", "op://Dev/Nope/key"]));
    outputs.push(c.w.run(&["status", "--json"]));
    outputs.push(c.w.run(&["op", "item", "get", "Stripe", "--vault", "Dev"]));
    outputs.push(c.w.run(&["op", "item", "create", "--category", "login"]));
    for status in [403u16, 429, 401] {
        c.server.knobs().status.store(status, SeqCst);
        outputs.push(c.w.run(&["read", "--no-cache", "op://Dev/Stripe/key"]));
    }
    c.server.knobs().status.store(0, SeqCst);
    outputs.push(c.init());
    outputs.push(c.w.run(&["lock"]));

    // Nothing listens beyond loopback: not the server, not the daemon.
    assert!(c.server.addr().ip().is_loopback());
    let exposed = non_loopback_listeners();
    let daemon = c.w.daemon_pid().unwrap();
    for pid in [daemon, std::process::id() as i32] {
        for inode in socket_inodes(pid) {
            assert!(
                !exposed.contains(&inode),
                "pid {pid} listens beyond loopback"
            );
        }
    }

    let audit = std::fs::read_to_string(c.w.state.join("op-session/audit.jsonl")).unwrap();
    assert!(audit.contains("\"verb\":\"init connect\""), "{audit}");
    c.w.run(&["stop"]);

    for o in &outputs {
        assert!(
            !o.stdout.contains(&c.token) && !o.stderr.contains(&c.token),
            "a response holds the token"
        );
    }
    for f in c.w.all_files() {
        if f.starts_with(&c.w.fake_home) {
            continue; // fake-op plays 1Password; it never sees the Connect token anyway
        }
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        assert!(
            !text.contains(&c.token),
            "{} holds the Connect token",
            f.display()
        );
    }
    for call in c.w.calls() {
        assert!(!call["argv"].to_string().contains(&c.token));
    }
    assert!(!c.w.daemon_log().contains(&c.token));
}

#[test]
fn ids_one_time_passwords_and_files_resolve_as_in_token_mode() {
    let token_mode = token_world();
    let c = Connect::started("");
    let state =
        fake_op::fixture::load(&std::fs::read_to_string(fixture("basic.json")).unwrap()).unwrap();
    let dev = &state.accounts[0].vaults[0];
    let by_id = format!("op://{}/{}/key", dev.id, dev.items[0].id);
    let mixed = format!("op://Dev/{}/password", dev.items[3].id); // one of the two Deploy Keys
    let refs = [
        by_id.as_str(),
        mixed.as_str(),
        "op://Dev/GitHub/Security/one-time password?attribute=type",
        "op://Dev/TLS Cert/key.pem?attribute=size",
        "op://Dev/TLS Cert/key.pem?attribute=name",
        "op://Dev/Stripe/key?attribute=otp",
        "op://Dev/Stripe/key?ssh-format=openssh",
        "op://Dev/Old API Key/credential",
    ];
    for r in refs {
        let theirs = token_mode.run(&["read", r]);
        let ours = c.w.run(&["read", r]);
        assert_eq!(
            ours.code, theirs.code,
            "{r}: {} / {}",
            ours.stderr, theirs.stderr
        );
        if theirs.code == 0 {
            assert_eq!(ours.stdout, theirs.stdout, "{r}");
        }
    }
    // The current code of a one-time password: the same in both modes (retried once in case
    // the 30-second window turned between the two reads).
    let otp = "op://Dev/GitHub/Security/one-time password?attribute=otp";
    let same = (0..2).any(|_| {
        let (a, b) = (token_mode.run(&["read", otp]), c.w.run(&["read", otp]));
        assert_eq!(b.code, 0, "{}", b.stderr);
        a.stdout == b.stdout
    });
    assert!(same, "the one-time passwords differ");
    token_mode.run(&["stop"]);
    c.w.run(&["stop"]);
}

#[test]
fn with_no_op_binary_at_all_read_run_and_inject_still_work() {
    let c = connect_world("", true);
    // The world's config names fake-op as `op`; point it at nothing.
    let config = std::fs::read_to_string(&c.w.config).unwrap();
    let config: String = config
        .lines()
        .map(|l| {
            if l.starts_with("op_path") {
                "op_path = \"/nonexistent/bin/op\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&c.w.config, config).unwrap();
    assert_eq!(c.init().code, 0);
    assert_eq!(
        c.w.run(&["read", "op://Dev/Stripe/key"]).stdout,
        format!("{STRIPE}\n")
    );
    let out: Out =
        c.w.client(&["run", "--no-masking", "--", "printenv", "K"])
            .env("K", "op://Dev/Database/username")
            .finish()
            .unwrap()
            .into();
    assert_eq!(out.stdout, "dbadmin\n", "{}", out.stderr);
    let out =
        c.w.run_with_stdin(&["inject"], b"port={{ op://Dev/Database/port }}\n");
    assert_eq!(out.stdout, "port=5432\n", "{}", out.stderr);
    // Passthrough needs `op`: one clear error.
    let out = c.w.run(&["op", "vault", "list"]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(c.w.calls().is_empty(), "some op ran");
    c.w.run(&["stop"]);
}

#[test]
fn unknown_ids_name_the_vault_or_the_item_like_op() {
    let token_mode = token_world();
    let c = Connect::started("");
    let state =
        fake_op::fixture::load(&std::fs::read_to_string(fixture("basic.json")).unwrap()).unwrap();
    let dev = &state.accounts[0].vaults[0];
    let missing = "zzzzzzzzzzzzzzzzzzzzzzzzzz";
    for r in [
        format!("op://{missing}/Stripe/key"),
        format!("op://{}/{missing}/key", dev.id),
        format!("op://Dev/{missing}/key"),
    ] {
        let theirs = token_mode.run(&["read", &r]);
        let ours = c.w.run(&["read", &r]);
        assert_eq!(ours.code, theirs.code, "{r}");
        assert_eq!(untime(&ours.stderr), untime(&theirs.stderr), "{r}");
    }
    token_mode.run(&["stop"]);
    c.w.run(&["stop"]);
}

//! The socket is the trust boundary: a process of the same user with only the socket at hand
//! tries, in several spellings each, to get the session token, to slip past policy, to run code
//! beside the token, to keep a value past its authorization, and to exhaust the daemon.
//!
//! Every test checks three things: fake-op's call log shows that nothing forbidden was
//! forwarded and no child got a token it should not have; the exit code and message are right;
//! and the daemon still serves afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use op_session_e2e::Finish as _;
use op_session_e2e::{Out, World, bins, wait_until};

const MY_PASSWORD: &[u8] = b"correct horse battery staple\n";
const STRIPE: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
const TEAM: &str = "team.1password.com";

fn world(config: &str) -> World {
    let w = World::new(config);
    w.load_basic();
    let out = w.run_with_stdin(
        &["init", "--account", "my", "--password-stdin"],
        MY_PASSWORD,
    );
    assert_eq!(out.code, 0, "init: {}", out.stderr);
    w
}

/// Every token fake-op has handed out (sessions and service accounts).
fn tokens(w: &World) -> Vec<String> {
    let state: serde_json::Value = serde_json::from_str(&w.ctl(&["state"])).unwrap();
    let mut v: Vec<String> = state["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["token"].as_str().map(str::to_string))
        .collect();
    v.extend(
        state["service_accounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["token"].as_str().map(str::to_string)),
    );
    assert!(!v.is_empty());
    v
}

/// Commands that must never be forwarded to `op` by the daemon.
const FORBIDDEN: &[&str] = &[
    "run",
    "signin",
    "plugin run",
    "update",
    "account add",
    "service-account create",
    "connect token create",
    "item delete",
];

/// The call log shows nothing forbidden forwarded, no secret on any argv, and no token in the
/// environment of anything but a plain `op` call the daemon made.
fn nothing_forbidden_reached_op(w: &World) {
    for c in w.calls() {
        let command = c["command"].as_str().unwrap_or("");
        let had_token = c["env"].as_array().is_some_and(|e| {
            e.iter().any(|n| {
                n.as_str().is_some_and(|n| {
                    n.starts_with("OP_SESSION_") || n == "OP_SERVICE_ACCOUNT_TOKEN"
                })
            })
        });
        // The daemon's own calls run `op` directly; a client's `signin` runs in the client and
        // never has a token in its environment.
        if command == "signin" {
            assert!(!had_token, "signin ran with a token");
            continue;
        }
        assert!(
            !FORBIDDEN.contains(&command),
            "`op {command}` was forwarded"
        );
        assert_eq!(
            c["secret_in_argv"], false,
            "a secret reached argv ({command})"
        );
        assert!(
            !c["argv"].to_string().contains("--session"),
            "--session on argv"
        );
    }
}

/// The daemon still answers and still serves values.
fn still_serves(w: &World) {
    let out = w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 0, "the daemon stopped serving: {}", out.stderr);
    assert_eq!(out.stdout, format!("{STRIPE}\n"));
}

fn no_token_in(w: &World, out: &Out) {
    for t in tokens(w) {
        assert!(
            !out.stdout.contains(&t) && !out.stderr.contains(&t),
            "a token was printed"
        );
    }
    assert!(!out.stdout.contains("OP_SESSION_"), "{}", out.stdout);
}

#[test]
fn commands_that_run_programs_or_print_credentials_never_get_the_token() {
    let w = world("");
    // (`run` in every spelling is taken over by the client: see the shim test below.)
    let lines: &[&[&str]] = &[
        &["--cache", "signin", "--raw"],
        &["signin", "--account=my", "-f"],
        &["plugin", "run", "--", "env"],
        &["plugin", "ls"],
        &["update", "--directory", "/tmp"],
        &["account", "add", "--signin", "--raw"],
        &["service-account", "create", "x", "--raw"],
        &["connect", "token", "create", "t", "--server", "s"],
        &["--cache", "signout", "--all"],
        &["--session", "abc", "whoami"],
        &["--session=abc", "whoami"],
        &["--config", "/tmp/evil", "whoami"],
    ];
    for line in lines {
        let mut args = vec!["op"];
        args.extend_from_slice(line);
        let out = w.run(&args);
        assert_eq!(out.code, 64, "{line:?}: {}", out.stderr);
        assert!(out.stderr.contains("fix:"), "{line:?}: {}", out.stderr);
        no_token_in(&w, &out);
    }
    // A raw client skips the client's own checks; the daemon refuses by itself.
    for args in [
        r#"["--cache","run","--","env"]"#,
        r#"["--cache=false","run","--","env"]"#,
        r#"["--format","json","run","env"]"#,
        r#"["--account","my","--cache","run","--no-masking","--","env"]"#,
        r#"["plugin","run","--","env"]"#,
        r#"["--cache","signin","--raw"]"#,
        r#"["items","--cache","rm","X"]"#,
    ] {
        let json =
            format!(r#"{{"version":2,"type":"passthrough","args":{args},"cwd":"/","env":[]}}"#);
        let reply = raw_with_fds(&w, &json, 3);
        assert!(
            reply.contains("bad_request") || reply.contains("policy_denied"),
            "{args}: {reply}"
        );
    }
    nothing_forbidden_reached_op(&w);
    still_serves(&w);
    w.run(&["stop"]);
}

#[test]
fn op_run_through_the_shim_in_every_spelling_runs_without_the_session() {
    let w = world("");
    let shim = w.dir.path().join("shim");
    assert_eq!(w.run(&["shim", "install", shim.to_str().unwrap()]).code, 0);
    let path = format!("{}:{}", shim.display(), std::env::var("PATH").unwrap());
    for line in [
        &["--cache", "run", "--", "env"][..],
        &["--cache=false", "run", "--", "env"],
        &[
            "--account",
            "my",
            "--cache",
            "run",
            "--no-masking",
            "--",
            "env",
        ],
        &["run", "env"],
    ] {
        let out: Out = Command::new("op")
            .env_clear()
            .envs(w.env())
            .env("PATH", &path)
            .env("K", "op://Dev/Stripe/key")
            .args(line)
            .finish()
            .unwrap()
            .into();
        assert_eq!(out.code, 0, "{line:?}: {}", out.stderr);
        assert!(
            out.stdout.contains("K="),
            "{line:?}: the command did not run"
        );
        no_token_in(&w, &out);
    }
    nothing_forbidden_reached_op(&w);
    still_serves(&w);
    w.run(&["stop"]);
}

#[test]
fn policy_holds_in_every_spelling_and_the_audit_names_the_real_verb() {
    let w = world("[policy]\ndeny = [\"item\"]\nvaults = [\"Dev\"]\nallow_destructive = false");
    for line in [
        &[
            "--cache", "item", "--cache", "delete", "--cache", "Stripe", "--vault", "Prod",
        ][..],
        &["item", "rm", "Stripe", "--vault", "Prod"],
        &["item", "delete", "Stripe", "--vault=Prod"],
        &["--cache=false", "item", "remove", "Stripe"],
        &["item", "get", "Stripe", "--vault", "Dev"],
    ] {
        let mut args = vec!["op"];
        args.extend_from_slice(line);
        let out = w.run(&args);
        assert_eq!(out.code, 78, "{line:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("rule: deny"),
            "{line:?}: {}",
            out.stderr
        );
    }
    let audit = std::fs::read_to_string(w.state.join("op-session/audit.jsonl")).unwrap();
    assert!(audit.contains("\"verb\":\"op item delete\""), "{audit}");
    assert!(!audit.contains("\"verb\":\"op \""), "{audit}");
    // Aliases in the deny list mean the same command too.
    let w2 = world("[policy]\ndeny = [\"item delete\"]\nallow_destructive = true");
    for line in [
        &["item", "rm", "Stripe", "--vault", "Dev"][..],
        &["item", "remove", "Stripe", "--vault", "Dev"],
    ] {
        let mut args = vec!["op"];
        args.extend_from_slice(line);
        assert_eq!(w2.run(&args).code, 78, "{line:?}");
    }
    for w in [&w, &w2] {
        nothing_forbidden_reached_op(w);
        still_serves(w);
        w.run(&["stop"]);
    }
}

#[test]
fn what_the_grammar_cannot_read_is_refused_naming_the_word() {
    let w = world("");
    let before = w.calls().len();
    for (line, word) in [
        (&["frobnicate"][..], "frobnicate"),
        (&["item", "get", "Stripe", "--nope"], "--nope"),
        (&["item", "--frob", "get", "Stripe"], "--frob"),
        (&["--cache=maybe", "whoami"], "--cache"),
        (&["read", "-x", "op://Dev/Stripe/key"], "-x"),
    ] {
        let mut args = vec!["op"];
        args.extend_from_slice(line);
        let out = w.run(&args);
        assert_eq!(out.code, 64, "{line:?}: {}", out.stderr);
        assert!(out.stderr.contains(word), "{line:?}: {}", out.stderr);
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "one line: {}",
            out.stderr
        );
    }
    assert_eq!(w.calls().len(), before, "something was forwarded");
    still_serves(&w);
    w.run(&["stop"]);
}

#[test]
fn the_callers_environment_never_reaches_an_op_child_that_holds_the_token() {
    let w = world("");
    let hostile = [
        ("LD_PRELOAD", "/tmp/evil.so"),
        ("LD_LIBRARY_PATH", "/tmp"),
        ("PYTHONPATH", "/tmp"),
        ("HTTPS_PROXY", "http://127.0.0.1:1"),
        ("SSL_CERT_FILE", "/tmp/ca.pem"),
        ("OP_CONFIG_DIR", "/tmp/opcfg"),
        ("OP_SERVICE_ACCOUNT_TOKEN", "ops_notreallyatoken0000000000"),
        ("OP_CONNECT_TOKEN", "x"),
        ("OP_SESSION_EVIL", "x"),
    ];
    let before = w.calls().len();
    let mut c = w.client(&["op", "whoami", "--format", "json"]);
    c.env(
        "PATH",
        format!("/tmp/evil-bin:{}", std::env::var("PATH").unwrap()),
    )
    .env("OP_FORMAT", "json");
    for (k, v) in hostile {
        c.env(k, v);
    }
    let out: Out = c.finish().unwrap().into();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let calls = w.calls();
    let call = calls[before..]
        .iter()
        .find(|c| c["command"] == "whoami")
        .expect("whoami ran");
    let env: Vec<&str> = call["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    for (k, _) in hostile {
        assert!(!env.contains(&k), "{k} reached op");
    }
    assert!(env.contains(&"OP_FORMAT"), "presentation variables pass");
    nothing_forbidden_reached_op(&w);
    still_serves(&w);
    w.run(&["stop"]);
}

#[test]
fn an_auto_started_daemon_gets_a_clean_environment() {
    let w = World::new("");
    w.load_basic();
    w.without_daemon();
    // An agent's repository with its own config (an `op` of its own) and its own "daemon".
    let evil_dir = w.dir.path().join("agent-repo");
    std::fs::create_dir_all(evil_dir.join("op-session")).unwrap();
    let marker = evil_dir.join("ran");
    let evil_op = evil_dir.join("op");
    std::fs::write(
        &evil_op,
        format!("#!/bin/sh\ntouch {}\nexit 0\n", marker.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&evil_op, std::fs::Permissions::from_mode(0o755)).unwrap();
    let evil_config = evil_dir.join("op-session/config.toml");
    std::fs::write(
        &evil_config,
        format!("op_path = \"{}\"\n", evil_op.display()),
    )
    .unwrap();
    let out: Out = w
        .client(&["status"])
        .env("OPSESSION_CONFIG", &evil_config)
        .env("XDG_CONFIG_HOME", &evil_dir)
        .env("OPSESSION_DAEMON", &evil_op)
        .env("LD_PRELOAD", "")
        .env("LD_LIBRARY_PATH", "/tmp")
        .env("HTTPS_PROXY", "http://127.0.0.1:1")
        .env(
            "PATH",
            format!("/tmp/evil-bin:{}", std::env::var("PATH").unwrap()),
        )
        .finish()
        .unwrap()
        .into();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pid = w.daemon_pid().expect("daemon started");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let vars: Vec<String> = environ
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert!(!vars.iter().any(|v| v.starts_with("LD_")), "{vars:?}");
    assert!(
        !vars.iter().any(|v| v.starts_with("HTTPS_PROXY")),
        "{vars:?}"
    );
    let path = vars.iter().find(|v| v.starts_with("PATH=")).unwrap();
    assert!(!path.contains("evil"), "{path}");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        std::path::Path::new("/")
    );
    // The daemon beside the client, never the caller's; no config location of the caller's.
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        bins().daemon.canonicalize().unwrap()
    );
    assert!(!marker.exists(), "the caller's `op` ran");
    for v in &vars {
        assert!(
            !v.starts_with("OPSESSION_CONFIG=") && !v.starts_with("XDG_CONFIG_HOME="),
            "{v}"
        );
        assert!(!v.contains("agent-repo"), "{v}");
    }
    let home = vars.iter().find(|v| v.starts_with("HOME=")).unwrap();
    assert!(!home.contains(&w.home.display().to_string()), "{home}");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("--config"));
    // And the `op` this daemon would hand a password to is not the caller's.
    let out: Out = w
        .client(&["op", "whoami"])
        .env("OPSESSION_CONFIG", &evil_config)
        .env("XDG_CONFIG_HOME", &evil_dir)
        .output()
        .unwrap()
        .into();
    assert!(!marker.exists(), "the caller's `op` ran: {}", out.stderr);
    w.run(&["stop"]);
}

#[test]
fn init_names_the_op_that_gets_the_password() {
    let w = World::new("");
    w.load_basic();
    let out = w.run_with_stdin(
        &["init", "--account", "my", "--password-stdin"],
        MY_PASSWORD,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let op = bins().fake_op.display().to_string();
    assert!(
        out.stderr
            .contains(&format!("signing in with {op} (owner ")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "the daemon's config file is {}",
            w.config.display()
        )),
        "{}",
        out.stderr
    );
    still_serves(&w);
    w.run(&["stop"]);
}

#[test]
fn references_the_daemon_cannot_read_are_refused_under_a_vault_rule() {
    let w = world("[policy]\nvaults = [\"Dev\"]");
    let bad = "op://Prod/Stripe/key?x=1";
    let out = w.run(&["read", bad]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("rule: vaults"), "{}", out.stderr);
    let out: Out = w
        .client(&["run", "--", "printenv", "K"])
        .env("K", bad)
        .finish()
        .unwrap()
        .into();
    assert_eq!(out.code, 78, "{}", out.stderr);
    let tpl = w.home.join("t.tpl");
    std::fs::write(&tpl, format!("k={{{{ {bad} }}}}\n")).unwrap();
    let out = w.run(&["inject", "-i", tpl.to_str().unwrap()]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    // Through passthrough: op reads these itself, so the daemon refuses what it cannot check.
    for line in [
        &["op", "read", bad][..],
        &["op", "read", "op://Prod/Stripe/key"],
        &["op", "inject", "-i", tpl.to_str().unwrap()],
        &["op", "item", "get", "Stripe"],
        &["op", "item", "list"],
    ] {
        let out = w.run(line);
        assert_eq!(out.code, 78, "{line:?}: {}", out.stderr);
        assert!(!out.stdout.contains("sk_"), "{line:?}");
    }
    for c in w.calls() {
        let argv = c["argv"].to_string();
        assert!(
            !argv.contains("Prod"),
            "a Prod reference reached op: {argv}"
        );
        assert_ne!(c["command"], "inject", "inject reached op");
    }
    nothing_forbidden_reached_op(&w);
    still_serves(&w);
    w.run(&["stop"]);
}

#[test]
fn an_app_lock_ends_cached_access_and_lock_signs_the_app_out() {
    let w = World::new("app_check_interval = \"50ms\"");
    w.load_basic();
    assert_eq!(w.run(&["init", "--account", TEAM]).code, 0);
    let read = || w.run(&["read", "--account", TEAM, "op://Dev/Stripe/key"]);
    assert_eq!(read().code, 0);
    assert_eq!(read().code, 0, "cached");
    // The person locks the desktop app and would not approve a prompt now.
    w.ctl(&["app", "lock"]);
    w.ctl(&["prompt", "deny", "--always"]);
    std::thread::sleep(Duration::from_millis(120));
    let out = read();
    assert_eq!(
        out.code, 77,
        "a cached value outlived the app lock: {}",
        out.stdout
    );
    assert!(out.stdout.is_empty());
    assert!(w.status()["sessions"].as_array().unwrap().is_empty());
    // And `lock` signs the daemon's authorization out, so the next init asks again.
    w.ctl(&["prompt", "approve", "--always"]);
    assert_eq!(w.run(&["init", "--account", TEAM]).code, 0);
    let prompts = w.counters()["biometric_prompts"].as_u64().unwrap();
    assert_eq!(w.run(&["lock", "--account", TEAM]).code, 0);
    assert!(w.calls().iter().any(|c| c["command"] == "signout"));
    assert_eq!(w.run(&["init", "--account", TEAM]).code, 0);
    assert_eq!(
        w.counters()["biometric_prompts"].as_u64().unwrap(),
        prompts + 1,
        "init after lock did not ask the person again"
    );
    nothing_forbidden_reached_op(&w);
    w.run(&["stop"]);
}

#[test]
fn a_value_in_flight_during_lock_never_reaches_the_next_session() {
    let w = World::new("");
    w.load_basic();
    let token = {
        let state: serde_json::Value = serde_json::from_str(&w.ctl(&["state"])).unwrap();
        state["service_accounts"][0]["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let init = |w: &World| {
        let out = w.run_with_stdin(&["init", "--mode", "service-account"], token.as_bytes());
        assert_eq!(out.code, 0, "{}", out.stderr);
    };
    init(&w);
    w.ctl(&["latency", "800"]);
    let slow = w
        .client(&["read", "op://Dev/Stripe/key"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(w.run(&["lock", "--all"]).code, 0);
    init(&w);
    let out: Out = op_session_e2e::wait_output(slow, op_session_e2e::DEADLINE).into();
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "the value outlived the lock");
    let s = w.status();
    assert_eq!(s["sessions"][0]["cache_entries"], 0, "{s}");
    w.ctl(&["latency", "0"]);
    let reads = w.calls().iter().filter(|c| c["command"] == "read").count();
    still_serves(&w);
    assert_eq!(
        w.calls().iter().filter(|c| c["command"] == "read").count(),
        reads + 1,
        "the new session served a value resolved under the old one"
    );
    w.run(&["stop"]);
}

/// Send one request with `n` descriptors (copies of stderr) attached to the preamble; return
/// the daemon's reply.
fn raw_with_fds(w: &World, json: &str, n: usize) -> String {
    raw_with_preamble(w, if n > 0 { 1 } else { 0 }, json, n)
}

/// [`raw_with_fds`] with the preamble byte `preamble`.
fn raw_with_preamble(w: &World, preamble: u8, json: &str, n: usize) -> String {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let mut s = UnixStream::connect(&w.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let fds = vec![std::io::stderr().as_raw_fd(); n];
    let byte = [preamble];
    let iov = [std::io::IoSlice::new(&byte)];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        s.as_raw_fd(),
        &iov,
        if n > 0 { &cmsg[..] } else { &[] },
        MsgFlags::empty(),
        None,
    )
    .unwrap();
    let mut frame = (json.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(json.as_bytes());
    s.write_all(&frame).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(out.get(4..).unwrap_or(&[])).into_owned()
}

const READ_STRIPE: &str =
    r#"{"version":2,"type":"resolve","refs":["op://Dev/Stripe/key"],"purpose":"read"}"#;

/// A connection kept open is no way around a lock: the value read on it before is not
/// answered after the lock (not from the cache, not from a result in flight), the same
/// connection's next request is refused like anyone's, and a new session serves it afresh.
#[test]
fn a_reused_connection_gets_nothing_past_a_lock() {
    let w = world("");
    let mut c = op_session_e2e::Reused::connect(&w.socket);
    let first = c.ask(READ_STRIPE).expect("an answer");
    assert!(first.to_string().contains(STRIPE), "{first}");
    assert_eq!(w.run(&["lock"]).code, 0);
    let reads = w.calls().iter().filter(|x| x["command"] == "read").count();
    for _ in 0..3 {
        let after = c.ask(READ_STRIPE).expect("the connection still answers");
        assert_eq!(after["type"], "error", "{after}");
        assert!(
            !after.to_string().contains(STRIPE),
            "a value after the lock"
        );
    }
    let out = w.run_with_stdin(
        &["init", "--account", "my", "--password-stdin"],
        MY_PASSWORD,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let again = c.ask(READ_STRIPE).expect("an answer");
    assert!(again.to_string().contains(STRIPE), "{again}");
    assert_eq!(
        w.calls().iter().filter(|x| x["command"] == "read").count(),
        reads + 1,
        "the new session served a value resolved under the old one"
    );
    w.run(&["stop"]);
}

/// What needs a connection of its own cannot ride a reused one: descriptors with the reuse
/// preamble are closed and refused, and a passthrough on it is refused and ends it; neither
/// runs `op`, leaks a descriptor, or stops the daemon.
#[test]
fn a_reused_connection_takes_no_descriptors_and_no_passthrough() {
    let w = world("");
    let pid = w.daemon_pid().unwrap();
    still_serves(&w);
    let baseline = fd_count(pid);
    let before = w.calls().len();
    let passthrough = r#"{"version":2,"type":"passthrough","args":["whoami"],"cwd":"/","env":[]}"#;
    let reply = raw_with_preamble(&w, 2, passthrough, 3);
    assert!(reply.contains("takes no descriptors"), "{reply}");
    let mut c = op_session_e2e::Reused::connect(&w.socket);
    assert_eq!(
        c.ask(r#"{"version":2,"type":"status"}"#).unwrap()["type"],
        "status"
    );
    let reply = c.ask(passthrough).expect("an answer");
    assert!(
        reply.to_string().contains("connection of its own"),
        "{reply}"
    );
    assert!(
        c.ended(),
        "the connection goes on after a refused passthrough"
    );
    assert_eq!(w.calls().len(), before, "op ran");
    // The refusal is audited like any other.
    let audit = w.state.join("op-session/audit.jsonl");
    let refused = || {
        std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|r| r["verb"] == "passthrough" && r["outcome"] == "bad_request")
    };
    assert!(
        wait_until(Duration::from_secs(5), refused),
        "the refused passthrough was not audited"
    );
    still_serves(&w);
    assert!(
        wait_until(Duration::from_secs(5), || fd_count(pid) <= baseline),
        "the daemon holds {} descriptors, {baseline} before",
        fd_count(pid)
    );
    w.run(&["stop"]);
}

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn a_flood_of_descriptors_leaves_the_daemons_fd_count_where_it_was() {
    let w = world("");
    let pid = w.daemon_pid().unwrap();
    still_serves(&w);
    let baseline = fd_count(pid);
    // Descriptors with a request that takes none, and too many with a passthrough: refused.
    let reply = raw_with_fds(&w, r#"{"version":2,"type":"status"}"#, 16);
    assert!(reply.contains("no descriptors"), "{reply}");
    let reply = raw_with_fds(
        &w,
        r#"{"version":2,"type":"passthrough","args":["whoami"],"cwd":"/","env":[]}"#,
        16,
    );
    assert!(
        reply.contains("exactly stdin, stdout and stderr"),
        "{reply}"
    );
    // 5,000 connections that each send 16 descriptors and leave.
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let fds = [std::io::stderr().as_raw_fd(); 16];
    for _ in 0..5000 {
        let Ok(s) = UnixStream::connect(&w.socket) else {
            continue;
        };
        let byte = [1u8];
        let iov = [std::io::IoSlice::new(&byte)];
        let _ = sendmsg::<()>(
            s.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        );
    }
    assert!(
        wait_until(Duration::from_secs(20), || fd_count(pid) <= baseline),
        "the daemon holds {} descriptors, {baseline} before the flood",
        fd_count(pid)
    );
    nothing_forbidden_reached_op(&w);
    still_serves(&w);
    w.run(&["stop"]);
}

#[test]
fn a_repeated_account_flag_picks_the_session_op_would_use() {
    let w = world("");
    let out = w.run_with_stdin(
        &["init", "--account", "acme", "--password-stdin"],
        b"acme password 2\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let before = w.calls().len();
    let out = w.run(&[
        "op",
        "--account",
        "my",
        "--account",
        "acme",
        "whoami",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let who: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        who["url"].as_str().unwrap().contains("acme"),
        "op's rule is the last --account: {who}"
    );
    let calls = w.calls();
    let call = calls[before..]
        .iter()
        .find(|c| c["command"] == "whoami")
        .unwrap();
    let accounts = call["argv"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a.as_str().is_some_and(|a| a.starts_with("--account")))
        .count();
    assert_eq!(
        accounts, 1,
        "exactly one --account reaches op: {}",
        call["argv"]
    );
    nothing_forbidden_reached_op(&w);
    still_serves(&w);
    w.run(&["stop"]);
}

#[test]
fn every_audit_record_names_the_reader_even_when_it_exits_at_once() {
    let w = world("");
    for _ in 0..50 {
        for out in w.run_parallel(8, &["read", "op://Dev/Stripe/key"]) {
            assert_eq!(out.code, 0, "{}", out.stderr);
        }
    }
    let audit = std::fs::read_to_string(w.state.join("op-session/audit.jsonl")).unwrap();
    let reads: Vec<serde_json::Value> = audit
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|r: &serde_json::Value| r["verb"] == "read")
        .collect();
    assert_eq!(reads.len(), 400);
    let client = bins().client.canonicalize().unwrap();
    for r in &reads {
        assert_eq!(
            r["peer_exe"].as_str().map(std::path::PathBuf::from),
            Some(client.clone()),
            "a record lost its reader: {r}"
        );
        assert!(
            !r["parents"].as_array().unwrap().is_empty(),
            "no parent chain: {r}"
        );
    }
    still_serves(&w);
    w.run(&["stop"]);
}

// ---------------------------------------------------------------------------------------------
// The boundary, round two: `op` never touches files, templates or environment a caller chose.
// ---------------------------------------------------------------------------------------------

/// What a raw passthrough left: the daemon's reply, and what `op` wrote to the caller's
/// stdout and stderr (pipes handed over as the three descriptors).
struct Raw {
    reply: String,
    stdout: String,
    stderr: String,
}

/// Send a passthrough of `args` straight to `socket` with `stdin` on the passed stdin, as a
/// process that can reach only the socket would (no client checks at all).
fn raw_passthrough(socket: &std::path::Path, args: &[&str], stdin: &[u8]) -> Raw {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let (in_r, mut in_w) = std::io::pipe().unwrap();
    let (mut out_r, out_w) = std::io::pipe().unwrap();
    let (mut err_r, err_w) = std::io::pipe().unwrap();
    in_w.write_all(stdin).unwrap();
    drop(in_w);
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let fds = [in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()];
    let byte = [1u8];
    let iov = [std::io::IoSlice::new(&byte)];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(s.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).unwrap();
    drop((in_r, out_w, err_w));
    let json = serde_json::json!({
        "version": 2, "type": "passthrough", "args": args, "cwd": "/tmp", "env": [],
    })
    .to_string();
    let mut frame = (json.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(json.as_bytes());
    s.write_all(&frame).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    drop(s);
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let _ = out_r.read_to_string(&mut stdout);
    let _ = err_r.read_to_string(&mut stderr);
    Raw {
        reply: String::from_utf8_lossy(reply.get(4..).unwrap_or(&[])).into_owned(),
        stdout,
        stderr,
    }
}

fn no_token_in_raw(w: &World, r: &Raw) {
    for t in tokens(w) {
        assert!(
            !r.stdout.contains(&t) && !r.stderr.contains(&t) && !r.reply.contains(&t),
            "a token was printed"
        );
    }
}

/// The session's `OP_SESSION_<uuid>` variable name, from `status --json`.
fn session_var(w: &World) -> String {
    let st = w.status();
    let uuid = st["sessions"][0]["user_uuid"].as_str().unwrap().to_string();
    format!("OP_SESSION_{uuid}")
}

fn no_op_call(w: &World, before: usize, command: &str) {
    let calls = w.calls();
    assert!(
        !calls[before..].iter().any(|c| c["command"] == command),
        "`op {command}` reached op: {:?}",
        &calls[before..]
    );
}

#[test]
fn op_inject_never_runs_with_the_session_in_any_spelling() {
    let w = world("[policy]\nvaults = [\"Dev\"]");
    let var = session_var(&w);
    let before = w.calls().len();
    // Through the client (`op-session op` and the shim): done by the client itself, in the
    // caller's own environment, which holds no token.
    for template in [
        format!("${{{var}}}"),
        format!("${var}"),
        "${OP_SERVICE_ACCOUNT_TOKEN}".to_string(),
        "${OP_CONNECT_TOKEN}".to_string(),
    ] {
        let out = w.run_with_stdin(&["op", "inject"], template.as_bytes());
        no_token_in(&w, &out);
    }
    let out = w.run(&["op", "inject", "-i", "/proc/self/environ"]);
    no_token_in(&w, &out);
    // Straight to the socket: refused (64) with the fix named, whatever the spelling.
    for args in [
        &["inject"][..],
        &["--cache", "inject"],
        &["inject", "-i", "/proc/self/environ"],
        &["inject", "--in-file=/proc/self/environ"],
        &["--account", "my", "inject", "-f"],
    ] {
        let r = raw_passthrough(&w.socket, args, format!("${{{var}}}").as_bytes());
        assert!(r.reply.contains("bad_request"), "{args:?}: {}", r.reply);
        assert!(
            r.reply.contains("op-session inject"),
            "{args:?}: {}",
            r.reply
        );
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
        no_token_in_raw(&w, &r);
    }
    // Through a grant that allows inject: `op-session inject` only.
    let g = w.run(&["grant", "inj", "--allow", "inject", "--allow", "read"]);
    assert_eq!(g.code, 0, "{}", g.stderr);
    let gsock = std::path::PathBuf::from(g.stdout.lines().next().unwrap());
    let r = raw_passthrough(&gsock, &["inject"], format!("${{{var}}}").as_bytes());
    assert!(
        r.reply.contains("bad_request") || r.reply.contains("policy_denied"),
        "{}",
        r.reply
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    no_token_in_raw(&w, &r);
    no_op_call(&w, before, "inject");
    nothing_forbidden_reached_op(&w);
    still_serves(&w);
    w.run(&["stop"]);
}

#[test]
fn file_flags_never_act_on_the_daemons_side() {
    let w = world("[policy]\nvaults = [\"Dev\"]\nallow_destructive = true");
    let target = w.dir.path().join("planted");
    let t = target.to_str().unwrap();
    let out_eq = format!("--out-file={t}");
    let secret_file = w.home.join("id_ed25519");
    std::fs::write(&secret_file, "PRIVATE KEY").unwrap();
    let sf = secret_file.to_str().unwrap();
    let template = w.home.join("item.json");
    std::fs::write(&template, "{}").unwrap();
    let tf = template.to_str().unwrap();
    let tpl_eq = format!("--template={tf}");
    let before = w.calls().len();
    let lines: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["read", "op://Dev/Stripe/key", "-o", t, "--force"],
            "op-session read",
        ),
        (
            vec!["read", &out_eq, "op://Dev/Stripe/key"],
            "op-session read",
        ),
        (
            vec!["--cache", "read", "-fo", t, "op://Dev/Stripe/key"],
            "op-session read",
        ),
        (
            vec!["read", "op://Dev/Stripe/key", "--file-mode", "0700"],
            "op-session read",
        ),
        (
            vec!["item", "template", "get", "login", "-o", t],
            "redirect",
        ),
        (
            vec!["document", "get", "Doc", "--vault", "Dev", "--out-file", t],
            "redirect",
        ),
        (vec!["inject", "-o", t], "op-session inject"),
        (vec!["document", "create", sf, "--vault", "Dev"], "terminal"),
        (
            vec!["document", "create", "-", "--vault", "Dev"],
            "terminal",
        ),
        (
            vec!["item", "create", "--template", tf, "--vault", "Dev"],
            "assignments",
        ),
        (
            vec!["item", "edit", "Stripe", &tpl_eq, "--vault", "Dev"],
            "assignments",
        ),
        (vec!["item", "get", "-", "--vault", "Dev"], "instead of `-`"),
        (vec!["vault", "get", "-"], "instead of `-`"),
    ];
    for (args, fix) in &lines {
        let r = raw_passthrough(&w.socket, args, b"Stripe\n");
        assert!(r.reply.contains("bad_request"), "{args:?}: {}", r.reply);
        assert!(
            r.reply.contains(fix),
            "{args:?} should name {fix}: {}",
            r.reply
        );
        assert!(!target.exists(), "{args:?} wrote {t}");
        no_token_in_raw(&w, &r);
    }
    // The same through the client: the ones the client can do itself it does, with the
    // caller's own permissions; the rest are refused with the fix.
    for args in [
        &["op", "item", "template", "get", "login", "-o", t][..],
        &[
            "op",
            "--cache",
            "document",
            "get",
            "Doc",
            "--vault=Dev",
            "-o",
            t,
        ],
        &["op", "item", "get", "-", "--vault", "Dev"],
        &["op", "document", "create", sf, "--vault", "Dev"],
    ] {
        let out = w.run(args);
        assert_eq!(out.code, 64, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("fix:"), "{args:?}: {}", out.stderr);
        assert!(!target.exists(), "{args:?} wrote {t}");
    }
    let out = w.run(&["op", "read", "op://Dev/Stripe/key", "-o", t]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&target).unwrap().trim_end(), STRIPE);
    std::fs::remove_file(&target).unwrap();
    // Nothing that reads or writes a file reached op.
    for c in &w.calls()[before..] {
        let argv = c["argv"].to_string();
        assert!(
            !argv.contains(t) && !argv.contains(sf) && !argv.contains(tf),
            "{argv}"
        );
    }
    nothing_forbidden_reached_op(&w);
    still_serves(&w);
    w.run(&["stop"]);
}

#[test]
fn op_runs_in_the_daemons_directory_and_its_stdout_never_carries_a_token() {
    let w = world("[policy]\nallow_destructive = true");
    let token = tokens(&w).remove(0);
    // An item whose value is the session token itself: op prints it on stdout.
    let field = format!("password={token}");
    let out = w.run(&[
        "op",
        "item",
        "create",
        "--category",
        "login",
        "--title",
        "Mirror",
        "--vault",
        "Dev",
        &field,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    no_token_in(&w, &out);
    let before = w.calls().len();
    for args in [
        &["op", "read", "op://Dev/Mirror/password"][..],
        &[
            "op", "--cache", "item", "get", "Mirror", "--vault", "Dev", "--fields", "password",
            "--reveal",
        ],
        &[
            "op",
            "item",
            "get",
            "Mirror",
            "--vault=Dev",
            "--format",
            "json",
            "--reveal",
        ],
    ] {
        let out = w.run(args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        no_token_in(&w, &out);
        assert!(
            out.stdout.contains("<concealed by 1Password>"),
            "{args:?}: {}",
            out.stdout
        );
    }
    let r = raw_passthrough(&w.socket, &["read", "op://Dev/Mirror/password"], b"");
    assert!(r.reply.contains("exit"), "{}", r.reply);
    no_token_in_raw(&w, &r);
    // Every op child ran in the daemon's own directory, never the caller's.
    let calls = w.calls();
    let dir = w.socket.parent().unwrap().display().to_string();
    for c in &calls[before..] {
        assert_eq!(c["cwd"].as_str(), Some(dir.as_str()), "{c}");
    }
    still_serves(&w);
    w.run(&["stop"]);
}

#[test]
fn a_grants_read_budget_is_charged_for_passthrough_too() {
    let w = world("");
    let g = w.run(&[
        "grant",
        "deploy",
        "--ref",
        "op://Dev/Stripe/key",
        "--allow",
        "read",
        "--allow",
        "item get",
        "--max-reads",
        "2",
    ]);
    assert_eq!(g.code, 0, "{}", g.stderr);
    let gsock = std::path::PathBuf::from(g.stdout.lines().next().unwrap());
    let via = |args: &[&str]| -> Out {
        w.client(args)
            .env("OPSESSION_SOCKET", &gsock)
            .output()
            .unwrap()
            .into()
    };
    // What cannot be counted value by value does not pass a grant with a budget.
    let out = via(&["op", "item", "get", "Stripe", "--vault", "Dev", "--reveal"]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(!out.stdout.contains(STRIPE), "{}", out.stdout);
    let r = raw_passthrough(&gsock, &["--cache", "read", "op://Dev/Stripe/key"], b"");
    assert!(r.stdout.contains(STRIPE), "{} {}", r.reply, r.stderr);
    let listed = w.run(&["grants", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(listed[0]["reads_used"], 1, "{listed}");
    let out = via(&["op", "read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(STRIPE));
    // The budget is spent: the grant is gone, and the value is not handed out again.
    for args in [
        &["op", "read", "op://Dev/Stripe/key"][..],
        &["op", "read", "-n", "op://Dev/Stripe/key"],
    ] {
        let out = via(args);
        assert_ne!(out.code, 0, "{args:?}: {}", out.stdout);
        assert!(!out.stdout.contains(STRIPE), "{args:?}");
    }
    still_serves(&w);
    w.run(&["stop"]);
}

/// Talk to `op-session mcp` over stdio, started in `cwd`, one JSON-RPC call at a time; returns
/// each `tools/call` result.
fn mcp_calls(
    w: &World,
    cwd: &std::path::Path,
    calls: &[(&str, serde_json::Value)],
) -> Vec<serde_json::Value> {
    use std::io::BufRead;
    w.start_daemon();
    let mut c = Command::new(&bins().client);
    c.arg("mcp")
        .env_clear()
        .envs(w.env())
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    op_session_e2e::detach_from_terminal(&mut c);
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = |msg: serde_json::Value| {
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
    };
    let mut wait = |id: u64| -> serde_json::Value {
        loop {
            let line = lines.next().expect("an answer").unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if v["id"] == id {
                return v;
            }
        }
    };
    send(
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "attacker", "version": "1"}}}),
    );
    wait(1);
    send(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let mut out = Vec::new();
    for (i, (name, args)) in calls.iter().enumerate() {
        let id = 10 + i as u64;
        send(
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": args}}),
        );
        out.push(wait(id)["result"].clone());
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    out
}

fn tool_text(v: &serde_json::Value) -> String {
    v["content"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[test]
fn mcp_inject_and_run_stay_under_the_roots() {
    let w = world("[mcp]\nrun_allow = [\"*\"]");
    let project = w.dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let tpl = project.join("t.tpl");
    std::fs::write(&tpl, "key={{ op://Dev/Stripe/key }}\nreveal = true\n").unwrap();
    let outside_tpl = w.dir.path().join("outside.tpl");
    std::fs::write(&outside_tpl, "key={{ op://Dev/Stripe/key }}\n").unwrap();
    std::os::unix::fs::symlink(&w.config, project.join("cfg-link")).unwrap();
    std::os::unix::fs::symlink(w.dir.path(), project.join("dir-link")).unwrap();
    let config_before = std::fs::read(&w.config).unwrap();
    let s = |p: &std::path::Path| p.display().to_string();
    let bashrc = w.home.join(".bashrc");
    let attempts: Vec<(&str, serde_json::Value)> = vec![
        // The op-session config itself, directly and through symlinks.
        (
            "inject",
            serde_json::json!({"template_path": s(&tpl), "output_path": s(&w.config), "overwrite": true}),
        ),
        (
            "inject",
            serde_json::json!({"template_path": s(&tpl), "output_path": s(&project.join("cfg-link")), "overwrite": true}),
        ),
        (
            "inject",
            serde_json::json!({"template_path": s(&tpl), "output_path": s(&project.join("dir-link/config/op-session/config.toml")), "overwrite": true}),
        ),
        (
            "inject",
            serde_json::json!({"template_path": s(&tpl), "output_path": s(&project.join("../config/op-session/config.toml")), "overwrite": true}),
        ),
        // Anywhere else outside the project.
        (
            "inject",
            serde_json::json!({"template_path": s(&tpl), "output_path": s(&bashrc), "overwrite": true}),
        ),
        (
            "inject",
            serde_json::json!({"template_path": s(&outside_tpl), "output_path": s(&project.join("o")), "overwrite": true}),
        ),
        (
            "run",
            serde_json::json!({"command": ["true"], "cwd": s(w.dir.path())}),
        ),
        (
            "run",
            serde_json::json!({"command": ["true"], "env_files": [s(&outside_tpl)]}),
        ),
    ];
    let results = mcp_calls(&w, &project, &attempts);
    for ((name, args), r) in attempts.iter().zip(&results) {
        assert_eq!(r["isError"], true, "{name} {args}: {r}");
        let text = tool_text(r);
        assert!(
            text.contains("[mcp] roots") || text.contains("symlink"),
            "{name} {args}: {text}"
        );
    }
    assert_eq!(
        std::fs::read(&w.config).unwrap(),
        config_before,
        "the config changed"
    );
    assert!(!bashrc.exists());
    assert!(!project.join("o").exists());
    // Inside the project it works, and `run` masks the encoded forms `op-session run` masks.
    let out = project.join("out.conf");
    let ok: Vec<(&str, serde_json::Value)> = vec![
        (
            "inject",
            serde_json::json!({"template_path": s(&tpl), "output_path": s(&out)}),
        ),
        (
            "run",
            serde_json::json!({"command": ["sh", "-c", "printf %s \"$X\" | base64"], "env": {"X": "op://Dev/Stripe/key"}}),
        ),
        (
            "run",
            serde_json::json!({"command": ["sh", "-c", "printf %s \"$X\" | od -An -tx1 | tr -d ' \\n'"], "env": {"X": "op://Dev/Stripe/key"}}),
        ),
    ];
    let results = mcp_calls(&w, &project, &ok);
    assert_ne!(results[0]["isError"], true, "{}", results[0]);
    assert!(std::fs::read_to_string(&out).unwrap().contains(STRIPE));
    use base64_check::encode;
    for r in &results[1..] {
        let text = tool_text(r);
        let stdout = r["structuredContent"]["stdout"]
            .as_str()
            .unwrap_or(&text)
            .to_string();
        assert!(!stdout.contains(&encode(STRIPE)), "{stdout}");
        assert!(!stdout.contains(&hex_of(STRIPE)), "{stdout}");
        assert!(stdout.contains("<concealed by 1Password>"), "{r}");
    }
    still_serves(&w);
    w.run(&["stop"]);
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Base64 (standard alphabet, padded) for the checks above.
mod base64_check {
    pub fn encode(s: &str) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let b = s.as_bytes();
        let mut out = String::new();
        for g in b.chunks(3) {
            let n = (u32::from(g[0]) << 16)
                | (u32::from(*g.get(1).unwrap_or(&0)) << 8)
                | u32::from(*g.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= g.len() {
                    out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

#[test]
fn user_and_group_lists_and_stdin_items_follow_the_vaults_rule() {
    let w = world("[policy]\nvaults = [\"Dev\"]");
    let before = w.calls().len();
    for line in [
        &["op", "user", "list", "--vault", "Prod"][..],
        &["op", "user", "ls", "--vault=Prod"],
        &["op", "--cache", "group", "list", "--vault", "Prod"],
        &["op", "group", "list", "--user", "u", "--vault=Prod"],
    ] {
        let out = w.run(line);
        assert_eq!(out.code, 78, "{line:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("rule: vaults"),
            "{line:?}: {}",
            out.stderr
        );
    }
    // Items named on standard input are never forwarded, whatever --vault says.
    for line in [
        &["op", "item", "get", "-", "--vault", "Dev"][..],
        &["op", "item", "delete", "-", "--vault=Dev"],
        &["op", "vault", "get", "-"],
    ] {
        let out = w.run_with_stdin(line, b"Stripe\n");
        assert_eq!(out.code, 64, "{line:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("instead of `-`"),
            "{line:?}: {}",
            out.stderr
        );
    }
    let calls = w.calls();
    assert!(
        !calls[before..].iter().any(|c| c["command"] == "user list"
            || c["command"] == "group list"
            || c["command"] == "item get"),
        "{:?}",
        &calls[before..]
    );
    still_serves(&w);
    w.run(&["stop"]);
}

/// Every file under `dir` (but `skip`) with its contents, for "nothing changed" checks.
fn snapshot(
    dir: &std::path::Path,
    skip: &[&std::path::Path],
) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    fn walk(
        p: &std::path::Path,
        skip: &[&std::path::Path],
        out: &mut std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
    ) {
        if skip.iter().any(|s| p.starts_with(s)) {
            return;
        }
        let Ok(m) = std::fs::symlink_metadata(p) else {
            return;
        };
        if m.is_dir() {
            for e in std::fs::read_dir(p).unwrap().flatten() {
                walk(&e.path(), skip, out);
            }
        } else {
            out.insert(p.to_path_buf(), std::fs::read(p).unwrap_or_default());
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, skip, &mut out);
    out
}

#[test]
fn random_grammar_valid_passthrough_lines_never_print_a_credential_or_touch_a_file() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let w = world("");
    let var = session_var(&w);
    let toks = tokens(&w);
    let planted = w.home.join("planted");
    std::fs::write(w.home.join("template.tpl"), format!("x=${{{var}}}\n")).unwrap();
    let pool: Vec<String> = vec![
        "op://Dev/Stripe/key".into(),
        "Stripe".into(),
        "Dev".into(),
        "-".into(),
        "json".into(),
        "0700".into(),
        "login".into(),
        "planted".into(),
        planted.display().to_string(),
        w.config.display().to_string(),
        w.home.join("template.tpl").display().to_string(),
        "/proc/self/environ".into(),
        format!("${{{var}}}"),
    ];
    // fake-op's own state and the daemon's audit log and log change; nothing else may.
    let skip_state = [w.fake_home.as_path(), w.state.as_path()];
    let before = snapshot(w.dir.path(), &skip_state);
    let commands = op_grammar::table::COMMANDS;
    let globals = op_grammar::table::GLOBAL_FLAGS;
    // Half the lines use a command that takes files, stdin or templates, so the dangerous
    // spellings come up in every run.
    let touchy: Vec<usize> = commands
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.flags
                .iter()
                .any(|f| matches!(f.long, "out-file" | "in-file" | "template"))
                || c.path.starts_with("document")
        })
        .map(|(i, _)| i)
        .collect();
    let line = (
        prop_oneof![0..commands.len(), proptest::sample::select(touchy)],
        proptest::collection::vec(
            (any::<prop::sample::Index>(), 0..pool.len(), any::<bool>()),
            0..4,
        ),
        proptest::collection::vec(0..pool.len(), 0..3),
        // Sometimes the positionals a real use of the command gives (so `op` gets far enough
        // to act on the flags), by the command's first word.
        any::<bool>(),
    );
    let usual = |path: &str| -> Vec<String> {
        match path {
            "read" => vec!["op://Dev/Stripe/key".into()],
            "document get" | "document edit" => vec!["Doc".into(), "--vault=Dev".into()],
            "item template get" => vec!["login".into()],
            "item get" | "item edit" => vec!["Stripe".into(), "--vault=Dev".into()],
            _ => Vec::new(),
        }
    };
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let stdin = format!("${{{var}}}\nStripe\n");
    runner
        .run(&line, |(ci, flags, positionals, real)| {
            let spec = &commands[ci];
            let mut args: Vec<String> = Vec::new();
            let mut tail: Vec<String> = spec.path.split(' ').map(str::to_string).collect();
            for (which, value, before_verb) in &flags {
                let own = spec.flags.len();
                // Mostly the command's own flags (where the files are), sometimes a global.
                let f = if own > 0 && which.index(4 * own + globals.len()) < 4 * own {
                    &spec.flags[which.index(4 * own + globals.len()) % own]
                } else {
                    &globals[which.index(globals.len())]
                };
                if f.long == "help" {
                    continue;
                }
                let word = match f.kind {
                    op_grammar::FlagKind::Bool => format!("--{}", f.long),
                    op_grammar::FlagKind::OptionalValue => format!("--{}", f.long),
                    // A file flag gets a path: absolute, relative, or the config itself.
                    op_grammar::FlagKind::Value
                        if matches!(f.long, "out-file" | "in-file" | "template") =>
                    {
                        format!("--{}={}", f.long, pool[7 + value % 4])
                    }
                    op_grammar::FlagKind::Value => format!("--{}={}", f.long, pool[*value]),
                };
                let global = !spec.flags.iter().any(|g| g.long == f.long);
                if *before_verb && global {
                    args.push(word);
                } else {
                    tail.push(word);
                }
            }
            args.extend(tail);
            if spec.interspersed && real {
                args.extend(usual(spec.path));
            } else if spec.interspersed {
                args.extend(positionals.iter().map(|i| pool[*i].clone()));
            } else {
                args.extend(["--".to_string(), "env".to_string()]);
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = raw_passthrough(&w.socket, &refs, stdin.as_bytes());
            for t in &toks {
                if r.stdout.contains(t) || r.stderr.contains(t) || r.reply.contains(t) {
                    return Err(TestCaseError::fail(format!("{args:?} printed a token")));
                }
            }
            if planted.exists() {
                return Err(TestCaseError::fail(format!("{args:?} wrote a file")));
            }
            Ok(())
        })
        .unwrap();
    let after = snapshot(w.dir.path(), &skip_state);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "files appeared or vanished outside fake-op's state"
    );
    assert!(before == after, "a file outside fake-op's state changed");
    // The daemon still serves. Not a read of Stripe: a random `item edit --title` or `item
    // move` of it is a legitimate write that makes that read fail.
    let out = w.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "the daemon stopped serving: {}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["sessions"].as_array().map(Vec::len), Some(1), "{v:#}");
    w.run(&["stop"]);
}

#[test]
fn connect_mode_refuses_inject_and_file_flags_too() {
    let c = op_session_e2e::connect::Connect::started("");
    let planted = c.w.dir.path().join("planted");
    let p = planted.to_str().unwrap();
    for (args, fix) in [
        (&["inject"][..], "op-session inject"),
        (
            &["--cache", "inject", "-i", "/proc/self/environ"],
            "op-session inject",
        ),
        (&["read", "op://Dev/Stripe/key", "-o", p], "op-session read"),
        (
            &["read", "--out-file", p, "op://Dev/Stripe/key"],
            "op-session read",
        ),
    ] {
        let r = raw_passthrough(&c.w.socket, args, b"${OP_CONNECT_TOKEN}\n");
        assert!(r.reply.contains("bad_request"), "{args:?}: {}", r.reply);
        assert!(r.reply.contains(fix), "{args:?}: {}", r.reply);
        for text in [&r.reply, &r.stdout, &r.stderr] {
            assert!(
                !text.contains(&c.token),
                "{args:?} printed the Connect token"
            );
        }
        assert!(!planted.exists(), "{args:?} wrote {p}");
    }
    // Through the client the template is filled in the caller's own environment.
    let out =
        c.w.run_with_stdin(&["op", "inject"], b"${OP_CONNECT_TOKEN}\n");
    assert!(!out.stdout.contains(&c.token) && !out.stderr.contains(&c.token));
    c.w.run(&["stop"]);
}

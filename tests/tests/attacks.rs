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
        &["items", "delete", "Stripe", "--vault=Prod"],
        &["--cache=false", "items", "remove", "Stripe"],
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
        &["items", "delete", "Stripe", "--vault", "Dev"],
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
    let out: Out = w
        .client(&["status"])
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
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let mut s = UnixStream::connect(&w.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let fds = vec![std::io::stderr().as_raw_fd(); n];
    let byte = [if n > 0 { 1u8 } else { 0u8 }];
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

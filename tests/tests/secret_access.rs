//! Issue 5: read, run, inject and `op` passthrough through the daemon, with cache, policy and
//! audit; the same output and exit codes as `op` itself, and no token anywhere it should not be.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use op_session_e2e::Finish as _;
use op_session_e2e::{Out, World, bins, wait_until};

const MY_PASSWORD: &[u8] = b"correct horse battery staple\n";
const STRIPE: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
const DB_PASSWORD: &str = "p@ss w0rd $HOME \"dq\" 'sq' #hash `tick` \\back";

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

fn count(w: &World, command: &str) -> usize {
    w.calls().iter().filter(|c| c["command"] == command).count()
}

fn op_calls(w: &World) -> usize {
    w.calls().len()
}

/// A directory holding `op` → op-session (what `op-session shim install` makes).
fn shim_dir(w: &World) -> PathBuf {
    let dir = w.dir.path().join("shim");
    if !dir.exists() {
        let out = w.run(&["shim", "install", dir.to_str().unwrap()]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("not on PATH"), "{}", out.stdout);
    }
    dir
}

/// The same values as `[ERROR] YYYY/MM/DD HH:MM:SS`, with the time blanked.
fn untime(s: &str) -> String {
    s.lines()
        .map(|l| match l.strip_prefix("[ERROR] ") {
            Some(r) if r.len() >= 20 => format!("[ERROR] <ts> {}", &r[20..]),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn differential_the_shim_matches_op_itself() {
    let w = world("[policy]\nallow_destructive = true");
    let shim = shim_dir(&w);
    // A session for calling fake-op directly, as a person with `eval $(op signin)` would.
    let direct_login: Out = w
        .fake_op(&["signin", "--account", "my"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(MY_PASSWORD).unwrap();
            op_session_e2e::wait_output(c, op_session_e2e::DEADLINE)
        })
        .unwrap()
        .into();
    let export = direct_login.stdout.lines().next().unwrap().to_string();
    let (var, token) = export
        .trim_start_matches("export ")
        .split_once('=')
        .unwrap();
    let token = token.trim_matches('"').to_string();

    let envfile = w.dir.path().join("app.env");
    std::fs::write(
        &envfile,
        "STRIPE=op://Dev/Stripe/key\n# comment\nPLAIN=hello\nDB=\"op://Dev/Database/password\"\n",
    )
    .unwrap();
    let envfile = envfile.display().to_string();
    // The read, run and inject cases connect mode runs too (tests/src/lib.rs), then
    // passthrough's own.
    let shared = op_session_e2e::differential_cases(&envfile);
    let mut cases: Vec<(Vec<&str>, Option<&str>)> = shared
        .iter()
        .map(|(a, s)| (a.iter().map(String::as_str).collect(), *s))
        .collect();
    cases.extend::<Vec<(Vec<&str>, Option<&str>)>>(vec![
        (
            vec![
                "item", "get", "Stripe", "--vault", "Dev", "--format", "json",
            ],
            None,
        ),
        (vec!["item", "get", "Stripe", "--vault", "Dev"], None),
        (
            vec![
                "item",
                "get",
                "Stripe",
                "--vault",
                "Dev",
                "--fields",
                "label=key",
                "--reveal",
            ],
            None,
        ),
        (
            vec!["item", "list", "--vault", "Dev", "--format", "json"],
            None,
        ),
        (vec!["item", "get", "Nope", "--vault", "Dev"], None),
        (vec!["vault", "list", "--format", "json"], None),
        (vec!["vault", "get", "Dev", "--format", "json"], None),
        (vec!["account", "list", "--format", "json"], None),
        (vec!["whoami", "--format", "json"], None),
        (vec!["--version"], None),
    ]);
    let path = format!("{}:{}", shim.display(), std::env::var("PATH").unwrap());
    for (args, stdin) in cases {
        let run = |through_shim: bool| -> Out {
            let mut c = if through_shim {
                let mut c = Command::new("op");
                c.env_clear().envs(w.env()).env("PATH", &path);
                c
            } else {
                let mut c = Command::new(&bins().fake_op);
                c.env_clear().envs(w.env()).env(var, &token);
                c
            };
            c.args(&args)
                .current_dir(&w.home)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c.stdin(if stdin.is_some() {
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
        };
        let direct = run(false);
        let shimmed = run(true);
        assert_eq!(
            shimmed.code, direct.code,
            "exit code differs for {args:?}: {}",
            shimmed.stderr
        );
        assert_eq!(shimmed.stdout, direct.stdout, "stdout differs for {args:?}");
        assert_eq!(
            untime(&shimmed.stderr),
            untime(&direct.stderr),
            "stderr differs for {args:?}"
        );
    }
    // op-session read agrees with op read, error text included.
    for r in [
        "op://Dev/Stripe/key",
        "op://Dev/Nope/key",
        "op://Dev/Stri(pe/key",
    ] {
        let ours = w.run(&["read", r]);
        let theirs: Out = w
            .fake_op(&["read", r])
            .env(var, &token)
            .finish()
            .unwrap()
            .into();
        assert_eq!(ours.code, theirs.code, "{r}: {}", ours.stderr);
        assert_eq!(ours.stdout, theirs.stdout, "{r}");
        assert_eq!(untime(&ours.stderr), untime(&theirs.stderr), "{r}");
    }
    w.run(&["stop"]);
}

#[test]
fn sixty_four_concurrent_reads_of_one_uncached_reference_are_one_op_call() {
    let w = world("");
    w.ctl(&["latency", "300"]);
    let before = op_calls(&w);
    for out in w.run_parallel(64, &["read", "op://Dev/Stripe/key"]) {
        assert_eq!(out.stdout, format!("{STRIPE}\n"), "{}", out.stderr);
    }
    assert_eq!(
        op_calls(&w) - before,
        1,
        "concurrent misses were not coalesced"
    );
    // Within the TTL: none.
    w.ctl(&["latency", "0"]);
    for _ in 0..10 {
        assert_eq!(
            w.run(&["read", "op://DEV/Stripe/KEY"]).stdout,
            format!("{STRIPE}\n")
        );
    }
    assert_eq!(op_calls(&w) - before, 1, "a cached read ran op");
    w.run(&["stop"]);
}

#[test]
fn a_twenty_reference_run_is_one_op_call_and_a_failed_reference_stops_it() {
    let w = world("");
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
    let mut c = w.client(&[
        "run",
        "--no-masking",
        "--",
        "sh",
        "-c",
        "printf '%s|%s|%s|%s\\n' \"$V0\" \"$V4\" \"$V9\" \"$V19\"",
    ]);
    for (i, r) in refs.iter().enumerate() {
        c.env(format!("V{i}"), r);
    }
    let before = op_calls(&w);
    let out: Out = c.finish().unwrap().into();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("stripe-dev@example.com|{DB_PASSWORD}|rc-1111-2222-3333|concealed\n")
    );
    assert_eq!(
        op_calls(&w) - before,
        1,
        "twenty references took more than one op call"
    );
    assert_eq!(count(&w, "inject"), 1);

    // A failing reference: named, and the command never starts.
    let marker = w.dir.path().join("started");
    let out: Out = w
        .client(&["run", "--", "touch", marker.to_str().unwrap()])
        .env("GOOD", "op://Dev/Stripe/key")
        .env("BAD", "op://Dev/Nope/key")
        .finish()
        .unwrap()
        .into();
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("op://Dev/Nope/key"), "{}", out.stderr);
    assert!(
        !marker.exists(),
        "the command ran despite a failed reference"
    );
    w.run(&["stop"]);
}

#[test]
fn run_masks_values_split_across_writes_and_keeps_exit_status() {
    let w = world("");
    let script = "printf 'key=sk_test_4eC3'; sleep 0.2; printf '9HqLyjWDarjtT1zdp7dc!\\n'; printf 'err:%s\\n' \"$K\" >&2";
    let out: Out = w
        .client(&["run", "--", "sh", "-c", script])
        .env("K", "op://Dev/Stripe/key")
        .finish()
        .unwrap()
        .into();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "key=<concealed by 1Password>!\n");
    assert_eq!(out.stderr, "err:<concealed by 1Password>\n");
    assert!(!out.stdout.contains(STRIPE) && !out.stderr.contains(STRIPE));

    let out = w.run(&["run", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7);
    let out = w.run(&["run", "--", "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.code, 137, "128+SIGKILL");
    // OP_RUN_NO_MASKING turns masking off, like op.
    let out: Out = w
        .client(&["run", "--", "printenv", "K"])
        .env("K", "op://Dev/Stripe/key")
        .env("OP_RUN_NO_MASKING", "true")
        .finish()
        .unwrap()
        .into();
    assert_eq!(out.stdout, format!("{STRIPE}\n"));
    w.run(&["stop"]);
}

#[test]
fn run_environment_is_refused_with_the_reason_and_runs_nothing() {
    let w = world("");
    let marker = w.home.join("ran");
    let touch = format!("touch {}", marker.display());
    let out = w.run(&["run", "--environment", "ENV123", "--", "sh", "-c", &touch]);
    assert_eq!(out.code, 64, "{}", out.stderr);
    assert!(
        out.stderr.contains("--environment is not supported"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("in no vault"), "{}", out.stderr);
    assert!(out.stderr.contains("fix: "), "{}", out.stderr);
    assert!(!marker.exists(), "the command ran");
    w.run(&["stop"]);
}

/// `op-session run -- sh -c SCRIPT` with the given signals ignored at start; returns once the
/// script has set its traps.
fn run_trapping(w: &World, ignored: &'static [Signal], tag: &str) -> std::process::Child {
    let ready = w.dir.path().join(format!("ready-{tag}"));
    let script = format!(
        "trap 'exit 42' TERM; trap 'exit 43' INT; trap 'exit 44' HUP; touch {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let mut c = w.client(&["run", "--", "sh", "-c", &script]);
    c.env("K", "op://Dev/Stripe/key")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    op_session_e2e::signal_dispositions(&mut c, ignored);
    let child = c.spawn().unwrap();
    assert!(wait_until(Duration::from_secs(10), || ready.exists()));
    child
}

#[test]
fn run_forwards_sigterm_sigint_and_sighup_to_the_command() {
    let w = world("");
    for (sig, code) in [
        (Signal::SIGTERM, 42),
        (Signal::SIGINT, 43),
        (Signal::SIGHUP, 44),
    ] {
        let child = run_trapping(&w, &[], &code.to_string());
        nix::sys::signal::kill(Pid::from_raw(child.id() as i32), sig).unwrap();
        let out = op_session_e2e::wait_output(child, Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(code), "{sig:?}");
    }
    w.run(&["stop"]);
}

/// `nohup op-session run …`: a signal the parent ignored stays ignored (POSIX): op-session does
/// not forward it, even to a command that installs its own handler for it; the others are still
/// forwarded.
#[test]
fn run_keeps_ignoring_a_signal_its_parent_ignored() {
    let w = world("");
    let ready = w.dir.path().join("ready-nohup");
    // Python installs handlers even for a signal ignored at entry (a shell's trap would not).
    let script = format!(
        "import signal, sys, time, pathlib\n\
         signal.signal(signal.SIGHUP, lambda *a: sys.exit(44))\n\
         signal.signal(signal.SIGTERM, lambda *a: sys.exit(42))\n\
         pathlib.Path({:?}).touch()\n\
         while True: time.sleep(0.05)\n",
        ready.display().to_string()
    );
    let mut c = w.client(&["run", "--", "python3", "-c", &script]);
    c.env("K", "op://Dev/Stripe/key")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    op_session_e2e::signal_dispositions(&mut c, &[Signal::SIGHUP]);
    let child = c.spawn().unwrap();
    assert!(wait_until(Duration::from_secs(10), || ready.exists()));
    let pid = Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, Signal::SIGHUP).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        nix::sys::signal::kill(pid, None).is_ok(),
        "SIGHUP, ignored by op-session's parent, reached the command"
    );
    nix::sys::signal::kill(pid, Signal::SIGTERM).unwrap();
    let out = op_session_e2e::wait_output(child, Duration::from_secs(20));
    assert_eq!(
        out.status.code(),
        Some(42),
        "SIGTERM is still forwarded: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    w.run(&["stop"]);
}

#[test]
fn inject_writes_0600_and_leaves_nothing_on_error() {
    let w = world("");
    let tpl = w.dir.path().join("t.tpl");
    std::fs::write(
        &tpl,
        "url=postgres://{{ op://Dev/Database/username }}:{{ op://Dev/Database/port }}@$DBHOST\n",
    )
    .unwrap();
    let out_path = w.dir.path().join("out.conf");
    let out: Out = w
        .client(&[
            "inject",
            "-i",
            tpl.to_str().unwrap(),
            "-o",
            out_path.to_str().unwrap(),
        ])
        .env("DBHOST", "db.local")
        .finish()
        .unwrap()
        .into();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap(),
        "url=postgres://dbadmin:5432@db.local\n"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&out_path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    std::fs::write(
        &tpl,
        "a={{ op://Dev/Stripe/key }}\nb={{ op://Dev/Nope/key }}\n",
    )
    .unwrap();
    let bad = w.dir.path().join("bad.conf");
    let out = w.run(&[
        "inject",
        "-i",
        tpl.to_str().unwrap(),
        "-o",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1);
    assert!(!bad.exists(), "partial output written");
    let names: Vec<_> = std::fs::read_dir(w.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.to_string_lossy().contains("op-session-")),
        "temp file left: {names:?}"
    );
    w.run(&["stop"]);
}

#[test]
fn read_forms_json_several_values_and_out_file() {
    let w = world("");
    let out = w.run(&["read", "op://Dev/Stripe/key", "op://Dev/Database/username"]);
    assert_eq!(out.stdout, format!("{STRIPE}\ndbadmin\n"));
    let out = w.run(&["read", "--json", "op://Dev/Stripe/key"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["op://Dev/Stripe/key"], STRIPE);
    let f = w.dir.path().join("k.txt");
    let out = w.run(&["read", "-o", f.to_str().unwrap(), "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), f.display().to_string());
    assert_eq!(std::fs::read_to_string(&f).unwrap(), format!("{STRIPE}\n"));
    let out = w.run(&["read", "-o", f.to_str().unwrap(), "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 1, "overwrote without -f");
    w.run(&["stop"]);
}

#[test]
fn a_client_killed_mid_passthrough_leaves_no_op_behind() {
    let w = world("");
    w.ctl(&["latency", "8000"]);
    let mut child = w
        .client(&["op", "vault", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let our_ops = || w.fake_ops_running("vault");
    assert!(
        wait_until(Duration::from_secs(5), || our_ops() == 1),
        "op never started"
    );
    child.kill().unwrap();
    let _ = child.wait();
    let killed = Instant::now();
    assert!(
        wait_until(Duration::from_secs(1), || our_ops() == 0),
        "op outlived its client"
    );
    assert!(killed.elapsed() <= Duration::from_millis(1100));
    w.ctl(&["latency", "0"]);
    assert_eq!(w.run(&["status"]).code, 0, "daemon still serving");
    w.run(&["stop"]);
}

#[test]
fn policy_denials_exit_78_and_name_the_rule() {
    let w = world("[policy]\nvaults = [\"Dev\"]\ndeny = [\"item edit\"]");
    let out = w.run(&["op", "item", "delete", "Stripe", "--vault", "Dev"]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("allow_destructive"), "{}", out.stderr);
    let out = w.run(&["op", "item", "edit", "Stripe", "--vault", "Dev", "key=x"]);
    assert_eq!(out.code, 78);
    assert!(out.stderr.contains("deny"), "{}", out.stderr);
    let out = w.run(&["read", "op://Prod/Stripe/key"]);
    assert_eq!(out.code, 78);
    assert!(out.stderr.contains("vault \"Prod\""), "{}", out.stderr);
    // Signing out behind the daemon's back is not a passthrough at all.
    let out = w.run(&["op", "signout", "--forget"]);
    assert_eq!(out.code, 64, "{}", out.stderr);
    assert!(out.stderr.contains("op-session lock"), "{}", out.stderr);
    assert_eq!(w.run(&["read", "op://Dev/Stripe/key"]).code, 0);
    assert_eq!(count(&w, "delete"), 0);
    let audit = std::fs::read_to_string(w.state.join("op-session/audit.jsonl")).unwrap();
    assert!(audit.contains("\"decision\":\"deny\""), "{audit}");
    w.run(&["stop"]);
}

#[test]
fn a_write_through_passthrough_drops_the_cache() {
    let w = world("");
    assert_eq!(
        w.run(&["read", "op://Dev/Stripe/key"]).stdout,
        format!("{STRIPE}\n")
    );
    let out = w.run(&[
        "op",
        "item",
        "edit",
        "Stripe",
        "--vault",
        "Dev",
        "key=sk_test_rotated",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        w.run(&["read", "op://Dev/Stripe/key"]).stdout,
        "sk_test_rotated\n"
    );
    w.run(&["stop"]);
}

#[test]
fn keepalive_keeps_a_cached_reader_alive_past_the_idle_limit_then_lapses() {
    let w = world("idle_timeout = \"2s\"");
    assert_eq!(w.run(&["read", "op://Dev/Stripe/key"]).code, 0);
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(4500) {
        let out = w.run(&["read", "op://Dev/Stripe/key"]);
        assert_eq!(
            out.code,
            0,
            "lapsed while in use at {:?}: {}",
            started.elapsed(),
            out.stderr
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        count(&w, "whoami") >= 2,
        "no keepalive calls: {}",
        count(&w, "whoami")
    );
    assert_eq!(count(&w, "read"), 1, "cache misses");
    std::thread::sleep(Duration::from_millis(2300));
    assert_eq!(
        w.run(&["read", "op://Dev/Stripe/key"]).code,
        77,
        "did not lapse after reads stopped"
    );
    w.run(&["stop"]);
}

#[test]
fn audit_records_every_request_and_no_file_log_or_argv_holds_a_token_or_value() {
    let w = world("");
    let state: serde_json::Value = serde_json::from_str(&w.ctl(&["state"])).unwrap();
    let tokens: Vec<String> = state["sessions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["token"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !tokens.is_empty(),
        "could not learn the session token from fake-op: {}",
        state["sessions"]
    );
    // A full scenario: reads, run, inject, passthrough, then lock.
    w.run(&["read", "op://Dev/Stripe/key", "op://Dev/Database/password"]);
    let _: Out = w
        .client(&["run", "--", "printenv", "K"])
        .env("K", "op://Prod/Stripe/key")
        .finish()
        .unwrap()
        .into();
    w.run_with_stdin(&["inject"], b"x={{ op://Dev/GitHub/password }}\n");
    w.run(&[
        "op",
        "item",
        "get",
        "Stripe",
        "--vault",
        "Dev",
        "--reveal",
        "--fields",
        "label=key",
    ]);
    w.run(&["read", "op://Dev/Nope/key"]);
    w.run(&["lock"]);
    // The daemon writes each audit line right after it answers; wait for the last one.
    let mut out = w.run(&["audit", "-n", "50", "--json"]);
    assert!(wait_until(Duration::from_secs(3), || {
        out = w.run(&["audit", "-n", "50", "--json"]);
        out.stdout.contains("\"verb\":\"lock\"")
    }));
    assert_eq!(out.code, 0);
    let records: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(records.len() >= 7, "{}", out.stdout);
    assert!(records.iter().any(|r| r["verb"] == "run"));
    assert!(records.iter().any(|r| r["verb"] == "inject"));
    assert!(records.iter().any(|r| r["verb"] == "op item get"));
    assert!(records.iter().any(|r| r["outcome"] == "op_failed"));
    for r in &records {
        assert!(
            r["peer_pid"].as_i64().is_some() && r["peer_exe"].as_str().is_some(),
            "{r}"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let audit = w.state.join("op-session/audit.jsonl");
    assert_eq!(
        std::fs::metadata(&audit).unwrap().permissions().mode() & 0o777,
        0o600
    );
    w.run(&["stop"]);

    let secrets: Vec<String> = tokens
        .into_iter()
        .chain(
            [
                STRIPE,
                DB_PASSWORD,
                "sk_live_51ProdOnlyKeyDoNotLeak9",
                "gh-Pa55word-7Hq2",
            ]
            .map(String::from),
        )
        .collect();
    // fake-op's own directory plays 1Password's servers (it must know sessions and items).
    let fake_root = w.fake_home.clone();
    for f in w.all_files() {
        if f.starts_with(&fake_root) {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{} holds a secret", f.display());
        }
    }
    for c in w.calls() {
        assert_eq!(
            c["secret_in_argv"], false,
            "a secret reached the argv of a {} call",
            c["command"]
        );
        let argv = c["argv"].to_string();
        for s in &secrets {
            assert!(
                !argv.contains(s.as_str()),
                "the argv of a {} call holds a secret (not printed)",
                c["command"]
            );
        }
    }
}

#[test]
fn passthrough_forwards_sigint_to_op_and_relays_the_exit_code() {
    let w = world("");
    // op will sit in its (simulated) network wait for 8 s unless the signal reaches it.
    w.ctl(&["latency", "8000"]);
    let op_running = || w.fake_ops_running("vault") > 0;
    let child = w
        .client(&["op", "vault", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), op_running),
        "op never started"
    );
    let sent = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = op_session_e2e::wait_output(child, op_session_e2e::DEADLINE);
    assert_eq!(
        out.status.code(),
        Some(130),
        "op's 128+SIGINT, relayed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        sent.elapsed() < Duration::from_secs(4),
        "the signal did not reach op"
    );
    w.ctl(&["latency", "0"]);
    w.run(&["stop"]);
}

#[test]
fn a_callers_path_never_chooses_the_op_that_gets_the_password() {
    // No op_path: an agent puts its own `op` first on PATH and auto-starts the daemon, hoping
    // the person's next `init` hands the password to it. The daemon searches only the fixed
    // system path, so that `op` is never run.
    let w = World::new("");
    w.load_basic();
    let evil = w.dir.path().join("evil-bin");
    std::fs::create_dir_all(&evil).unwrap();
    std::os::unix::fs::symlink(&bins().fake_op, evil.join("op")).unwrap();
    std::fs::write(
        &w.config,
        format!(
            "op_env = {{ FAKE_OP_HOME = \"{}\" }}\n",
            w.fake_home.display()
        ),
    )
    .unwrap();
    let path = format!("{}:{}", evil.display(), std::env::var("PATH").unwrap());
    let out: Out = w
        .client(&["status", "--json"])
        .env("PATH", &path)
        .finish()
        .unwrap()
        .into();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_ne!(v["op_path"], evil.join("op").display().to_string());
    let out: Out = w
        .client(&["init", "--account", "my", "--password-stdin"])
        .env("PATH", &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(|mut c| {
            use std::io::Write;
            // With no op on the system path the client refuses (exit 78) without reading
            // stdin, and may be gone before the password is written: a broken pipe then.
            let _ = c.stdin.take().unwrap().write_all(MY_PASSWORD);
            op_session_e2e::wait_output(c, op_session_e2e::DEADLINE)
        })
        .unwrap()
        .into();
    if v["op_path"].is_null() {
        assert_eq!(out.code, 78, "no op on the system path: {}", out.stderr);
        assert!(out.stderr.contains("not found"), "{}", out.stderr);
    }
    assert!(w.calls().is_empty(), "the caller's op ran: {:?}", w.calls());
    w.run(&["stop"]);
}

#[test]
fn op_run_and_op_signin_through_the_shim_never_hand_out_the_session() {
    let w = world("");
    let shim = shim_dir(&w);
    let path = format!("{}:{}", shim.display(), std::env::var("PATH").unwrap());
    let state: serde_json::Value = serde_json::from_str(&w.ctl(&["state"])).unwrap();
    let tokens: Vec<String> = state["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["token"].as_str().map(str::to_string))
        .collect();
    assert!(!tokens.is_empty());
    let out: Out = Command::new("op")
        .env_clear()
        .envs(w.env())
        .env("PATH", &path)
        .env("K", "op://Dev/Stripe/key")
        .args(["run", "--", "env"])
        .finish()
        .unwrap()
        .into();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("K=<concealed by 1Password>"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("OP_SESSION_"), "{}", out.stdout);
    for t in &tokens {
        assert!(!out.stdout.contains(t.as_str()) && !out.stderr.contains(t.as_str()));
    }
    let out: Out = Command::new("op")
        .env_clear()
        .envs(w.env())
        .env("PATH", &path)
        .args(["signin", "--raw"])
        .finish()
        .unwrap()
        .into();
    assert_eq!(out.code, 64, "{}", out.stderr);
    for t in &tokens {
        assert!(!out.stdout.contains(t.as_str()));
    }
    // And the daemon refuses such a passthrough even from a client that asks directly.
    let req = op_session_e2e::raw_request(
        r#"{"version":2,"type":"passthrough","args":["run","--","env"],"cwd":"/","env":[]}"#,
    );
    let raw = Command::new(env!("CARGO_BIN_EXE_raw-frame"))
        .arg(&w.socket)
        .arg(op_session_e2e::hex(&req))
        .finish()
        .unwrap();
    let text = String::from_utf8_lossy(&raw.stdout);
    assert!(
        text.contains("bad_request") && text.contains("op-session run"),
        "{text}"
    );
    w.run(&["stop"]);
}

/// `op-session read … | head -c0`, `status | head -1`: a reader that goes away ends the client
/// as it ends `op` or `cat` (by SIGPIPE, without a word), not with a panic and its backtrace
/// hint on the caller's terminal. Any other failure to write stdout is one line and exit 1.
#[test]
fn output_to_a_reader_that_went_away_ends_quietly_by_sigpipe() {
    use std::os::unix::process::ExitStatusExt;
    let w = world("");
    // `op-session ARGS` with stdout on `to`: its exit status and its stderr.
    let run_to = |args: &[&str], to: Stdio| {
        let child = w
            .client(args)
            .stdout(to)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = op_session_e2e::wait_output(child, Duration::from_secs(60));
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Cached first, so the closed pipe is the only thing that can fail.
    assert_eq!(w.run(&["read", "op://Dev/Stripe/key"]).code, 0);
    for args in [
        &["read", "op://Dev/Stripe/key"][..],
        &["status"],
        &["status", "--json"],
        &["completions", "bash"],
        &["man"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let (status, stderr) = run_to(args, writer.into());
        assert_eq!(
            status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {status:?}, stderr: {stderr}"
        );
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let (status, stderr) = run_to(&["status"], full.into());
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("op-session: cannot write to stdout: ") && !stderr.contains("panic"),
        "{stderr}"
    );
}

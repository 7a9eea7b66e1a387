//! Issue 4: one sign-in serves every TTY-less call until the user's own limits say stop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use op_session_e2e::Finish as _;
use op_session_e2e::{World, wait_until};

const MY_PASSWORD: &[u8] = b"correct horse battery staple\n";
const STRIPE: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
const TEAM_STRIPE: &str = "sk_test_team_0000000000000002";
const TEAM: &str = "team.1password.com";

fn world(config: &str) -> World {
    let w = World::new(config);
    w.load_basic();
    w
}

fn init_token(w: &World, account: &str) {
    let out = w.run_with_stdin(
        &["init", "--account", account, "--password-stdin"],
        MY_PASSWORD,
    );
    assert_eq!(out.code, 0, "init failed: {}{}", out.stdout, out.stderr);
}

fn sa_token(w: &World, name: &str) -> String {
    let state: serde_json::Value = serde_json::from_str(&w.ctl(&["state"])).unwrap();
    state["service_accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn count(w: &World, command: &str) -> usize {
    w.calls().iter().filter(|c| c["command"] == command).count()
}

fn no_secret_in_any_argv(w: &World) {
    let calls = w.calls();
    assert!(!calls.is_empty());
    for c in &calls {
        assert_eq!(
            c["secret_in_argv"], false,
            "a secret reached the argv of a {} call (not printed)",
            c["command"]
        );
        let argv = c["argv"].to_string();
        assert!(!argv.contains("--session"), "--session on argv: {argv}");
    }
}

#[test]
fn token_mode_init_with_password_stdin_then_50_ttyless_reads_need_no_whoami() {
    let w = world("");
    let out = w.run_with_stdin(
        &["init", "--account", "my", "--password-stdin"],
        MY_PASSWORD,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("token mode"), "{}", out.stdout);
    let text = w.run(&["status"]).stdout;
    assert!(
        text.contains("my (default)  mode token  wendy.appleseed@example.com"),
        "{text}"
    );
    assert!(
        text.contains("signed in ") && text.contains("keepalive on"),
        "{text}"
    );
    let s = &w.status()["sessions"][0];
    assert_eq!(s["account"], "my");
    assert_eq!(s["mode"], "token");
    assert_eq!(s["email"], "wendy.appleseed@example.com");
    assert!(s["idle_remaining_s"].as_u64().unwrap() > 1700);
    assert!(s["hard_remaining_s"].as_u64().unwrap() > 43000);
    let whoami_after_init = count(&w, "whoami");
    for _ in 0..50 {
        let out = w.run(&["read", "--no-cache", "op://Dev/Stripe/key"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout, format!("{STRIPE}\n"));
    }
    assert_eq!(count(&w, "whoami"), whoami_after_init, "a whoami per call");
    assert_eq!(count(&w, "read"), 50);
    no_secret_in_any_argv(&w);
    // The session variable reached op through its environment.
    let read = w
        .calls()
        .into_iter()
        .find(|c| c["command"] == "read")
        .unwrap();
    assert!(read["env"].to_string().contains("OP_SESSION_"), "{read}");
    w.run(&["stop"]);
}

#[test]
fn token_mode_is_detected_without_mode_or_account() {
    let w = world("");
    let out = w.run_with_stdin(&["init", "--password-stdin"], MY_PASSWORD);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = &w.status()["sessions"][0];
    assert_eq!(s["mode"], "token");
    assert_eq!(
        s["account"], "my",
        "named after the shorthand/sign-in address"
    );
    assert_eq!(
        w.run(&["read", "op://Dev/Stripe/key"]).stdout,
        format!("{STRIPE}\n")
    );
    w.run(&["stop"]);
}

#[test]
fn a_wrong_password_is_one_clear_line_and_no_session() {
    let w = world("");
    let out = w.run_with_stdin(&["init", "--account", "my", "--password-stdin"], b"wrong\n");
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(
        out.stderr.contains("Unauthorized"),
        "op's own message is shown: {}",
        out.stderr
    );
    assert!(out.stderr.contains("fix:"), "{}", out.stderr);
    assert!(w.status()["sessions"].as_array().unwrap().is_empty());
}

#[test]
fn app_mode_50_calls_through_op_session_prompt_once_but_50_direct_calls_prompt_50_times() {
    let w = world("");
    // No terminal and no password: the client asks the daemon for app mode directly.
    let out = w.run(&["init", "--account", TEAM]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(w.status()["sessions"][0]["mode"], "app");
    for _ in 0..50 {
        let out = w.run(&[
            "read",
            "--no-cache",
            "--account",
            TEAM,
            "op://Dev/Stripe/key",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout, format!("{TEAM_STRIPE}\n"));
    }
    assert_eq!(w.counters()["biometric_prompts"], 1, "through op-session");

    // What agents do today: every tool call is a fresh shell running op.
    let w2 = world("");
    let fake = op_session_e2e::bins().fake_op.display().to_string();
    for _ in 0..50 {
        let mut sh = std::process::Command::new("sh");
        sh.env_clear().envs(w2.env()).args([
            "-c",
            &format!("{fake} read --account {TEAM} op://Dev/Stripe/key >/dev/null"),
        ]);
        op_session_e2e::detach_from_terminal(&mut sh);
        let st = sh.status().unwrap();
        assert!(st.success());
    }
    assert_eq!(
        w2.counters()["biometric_prompts"],
        50,
        "fresh processes, direct op"
    );
    w.run(&["stop"]);
}

#[test]
fn service_account_from_stdin_or_token_file_never_argv() {
    let w = world("");
    let token = sa_token(&w, "ci");
    let out = w.run_with_stdin(&["init", "--mode", "service-account"], token.as_bytes());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = &w.status()["sessions"][0];
    assert_eq!(s["mode"], "service-account");
    assert!(
        s["idle_remaining_s"].is_null(),
        "no idle limit for service accounts"
    );
    assert_eq!(
        w.run(&["read", "op://Dev/Stripe/key"]).stdout,
        format!("{STRIPE}\n")
    );
    assert_eq!(w.run(&["lock"]).code, 0);

    let file = w.dir.path().join("sa-token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let out = w.run(&["init", "--token-file", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        w.run(&["read", "op://Dev/Stripe/key"]).stdout,
        format!("{STRIPE}\n")
    );
    no_secret_in_any_argv(&w);
    for c in w.calls() {
        assert!(!c["argv"].to_string().contains("ops_"), "{c}");
    }
    // Not from argv: there is no flag that takes it.
    let out = w.run(&["init", "--mode", "service-account", &token]);
    assert_eq!(out.code, 64);
    w.run(&["stop"]);
}

#[test]
fn several_accounts_with_a_default_and_per_call_choice() {
    let w = world("");
    init_token(&w, "my");
    let out = w.run_with_stdin(
        &["init", "--account", "acme", "--password-stdin"],
        b"acme password 2\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        w.run(&["read", "op://Dev/Stripe/key"]).stdout,
        format!("{STRIPE}\n"),
        "default = first"
    );
    assert_eq!(
        w.run(&["read", "--account", "acme", "op://Dev/Stripe/key"])
            .stdout,
        "sk_test_acme_0000000000000001\n"
    );
    let out = w
        .client(&["read", "op://Dev/Stripe/key"])
        .env("OP_ACCOUNT", "acme.1password.com")
        .finish()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "sk_test_acme_0000000000000001\n"
    );
    let st = w.status();
    assert_eq!(st["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(st["default_account"], "my");
    w.run(&["stop"]);
}

#[test]
fn idle_expiry_ends_the_session_with_77_and_the_fix_and_revokes_it() {
    let w = world("idle_timeout = \"2s\"");
    init_token(&w, "my");
    assert_eq!(w.run(&["read", "op://Dev/Stripe/key"]).code, 0);
    std::thread::sleep(Duration::from_millis(2300));
    let out = w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(out.stderr.contains("op-session init"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        wait_until(Duration::from_secs(3), || count(&w, "signout") == 1),
        "not revoked"
    );
    assert!(w.status()["sessions"].as_array().unwrap().is_empty());
    w.run(&["stop"]);
}

#[test]
fn hard_expiry_ends_the_session_even_while_in_use() {
    let w = world("hard_timeout = \"3s\"");
    init_token(&w, "my");
    let started = Instant::now();
    let mut last = 0;
    while started.elapsed() < Duration::from_secs(8) {
        last = w.run(&["read", "--no-cache", "op://Dev/Stripe/key"]).code;
        if last != 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let at = started.elapsed();
    assert_eq!(last, 77);
    assert!(
        at >= Duration::from_millis(2500) && at < Duration::from_secs(5),
        "{at:?}"
    );
    w.run(&["stop"]);
}

#[test]
fn a_session_revoked_behind_the_daemons_back_is_reported_expired() {
    let w = world("");
    init_token(&w, "my");
    assert_eq!(w.run(&["read", "op://Dev/Stripe/key"]).code, 0);
    w.ctl(&["revoke"]);
    let out = w.run(&["read", "--no-cache", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(out.stderr.contains("has ended"), "{}", out.stderr);
    assert!(w.status()["sessions"].as_array().unwrap().is_empty());
    // The next call gets the plain "no session" answer, fast.
    assert_eq!(w.run(&["read", "op://Dev/Stripe/key"]).code, 77);
    w.run(&["stop"]);
}

#[test]
fn lock_and_sigterm_run_op_signout() {
    let w = world("");
    init_token(&w, "my");
    assert_eq!(w.run(&["lock", "--account", "my"]).code, 0);
    assert_eq!(count(&w, "signout"), 1);
    let state: serde_json::Value = serde_json::from_str(&w.ctl(&["state"])).unwrap();
    assert!(
        state["sessions"].as_array().is_none_or(|s| s.is_empty())
            || state["sessions"].as_object().is_some_and(|s| s.is_empty()),
        "the server still holds {} session(s) after lock (tokens not printed)",
        state["sessions"].as_array().map_or(0, Vec::len)
    );

    init_token(&w, "my");
    let pid = w.status()["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()
    }));
    assert_eq!(count(&w, "signout"), 2, "SIGTERM did not revoke");
    no_secret_in_any_argv(&w);
}

#[test]
fn thirty_two_parallel_calls_without_a_session_fail_fast_with_77() {
    let w = world("");
    assert_eq!(w.run(&["status"]).code, 0);
    let started = Instant::now();
    for out in w.run_parallel(32, &["read", "op://Dev/Stripe/key"]) {
        assert_eq!(out.code, 77);
        assert!(out.stderr.contains("op-session init"));
    }
    assert!(started.elapsed() < Duration::from_secs(20), "a caller hung");
    assert_eq!(
        w.counters()["invocations"],
        0,
        "op ran for a call with no session"
    );
    w.run(&["stop"]);
}

#[test]
fn thirty_two_parallel_app_authorizations_raise_one_prompt() {
    let w = world("");
    w.ctl(&["prompt", "approve", "--always", "--delay", "300"]);
    assert_eq!(w.run(&["status"]).code, 0);
    for out in w.run_parallel(32, &["init", "--account", TEAM]) {
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    assert_eq!(w.counters()["biometric_prompts"], 1);
    assert_eq!(count(&w, "signin"), 1, "authorizations were not coalesced");
    w.run(&["stop"]);
}

#[test]
fn a_dismissed_app_prompt_is_77_and_says_what_to_do() {
    let w = world("");
    w.ctl(&["prompt", "deny"]);
    let out = w.run(&["init", "--account", TEAM]);
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(out.stderr.contains("dismissed"), "{}", out.stderr);
    w.run(&["stop"]);
}

#[test]
fn rate_limits_exit_75_with_the_retry_time() {
    let w = world("cache_ttl = \"0s\"");
    let token = sa_token(&w, "limited");
    assert_eq!(
        w.run_with_stdin(&["init", "--mode", "service-account"], token.as_bytes())
            .code,
        0
    );
    let mut last = None;
    for _ in 0..12 {
        let out = w.run(&["read", "op://Dev/Stripe/key"]);
        if out.code != 0 {
            last = Some(out);
            break;
        }
    }
    let out = last.expect("the limit was never hit");
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.stderr.contains("retry"), "{}", out.stderr);
    w.run(&["stop"]);
}

#[test]
fn a_bad_config_key_or_value_is_named_and_limits_above_1password_are_refused() {
    for (line, expect) in [
        ("idle_timout = \"2s\"", "idle_timout"),
        ("idle_timeout = \"45m\"", "30m"),
        ("hard_timeout = \"13h\"", "12h"),
        ("op_timeout = \"soon\"", "op_timeout"),
    ] {
        let w = World::new(line);
        let out: op_session_e2e::Out = w.daemon(&["--foreground"]).finish().unwrap().into();
        assert_eq!(out.code, 1, "{line}");
        assert!(out.stderr.contains(expect), "{line}: {}", out.stderr);
    }
}

#[test]
fn a_service_account_token_from_systemd_credentials_starts_a_session_at_daemon_start() {
    let w = world("");
    let creds = w.dir.path().join("creds");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(
        creds.join("op-service-account-token"),
        format!("{}\n", sa_token(&w, "ci")),
    )
    .unwrap();
    let mut d = w
        .daemon(&["--foreground"])
        .env("CREDENTIALS_DIRECTORY", &creds)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        w.socket.exists()
            && w.run(&["--no-autostart", "status", "--json"])
                .stdout
                .contains("service-account")
    }));
    assert_eq!(
        w.run(&["read", "op://Dev/Stripe/key"]).stdout,
        format!("{STRIPE}\n")
    );
    w.run(&["stop"]);
    let _ = d.wait();
}

//! Issue 15: `op-session init --import-skill-session` moves the session the "op-session"
//! Claude Code skill left in `~/.op-claude-session` into the daemon: the session works
//! afterwards, the file is gone, one `whoami` verified it, and the token never reached an argv.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::Stdio;

use op_session_e2e::{Out, World};

const MY_PASSWORD: &[u8] = b"correct horse battery staple\n";
const STRIPE: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

/// Sign in with fake-op directly, as the skill did; returns (variable, token).
fn skill_sign_in(w: &World) -> (String, String) {
    let mut c = w
        .fake_op(&["signin", "--account", "my"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(MY_PASSWORD).unwrap();
    let out: Out = op_session_e2e::wait_output(c, op_session_e2e::DEADLINE).into();
    let export = out.stdout.lines().next().unwrap().to_string();
    let (var, token) = export
        .trim_start_matches("export ")
        .split_once('=')
        .unwrap();
    (var.to_string(), token.trim_matches('"').to_string())
}

#[test]
fn a_skill_token_file_becomes_a_daemon_session_and_disappears() {
    let w = World::new("");
    w.load_basic();
    let (_, token) = skill_sign_in(&w);
    let file = w.home.join(".op-claude-session");
    std::fs::write(
        &file,
        format!("export OP_AUTH_MODE=token\nexport OP_SESSION=\"{token}\"\nexport OP_ACCOUNT=my\n"),
    )
    .unwrap();
    let whoami_before = w
        .calls()
        .iter()
        .filter(|c| c["command"] == "whoami")
        .count();

    let out = w.run(&["init", "--import-skill-session"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!file.exists(), "the token file is still there");
    assert!(!out.stdout.contains(&token) && !out.stderr.contains(&token));
    let whoami = w
        .calls()
        .iter()
        .filter(|c| c["command"] == "whoami")
        .count();
    assert_eq!(whoami - whoami_before, 1, "one whoami verified the token");
    assert_eq!(w.status()["sessions"][0]["mode"], "token");

    let read = w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(read.code, 0, "{}", read.stderr);
    assert_eq!(read.stdout, format!("{STRIPE}\n"));
    for c in w.calls() {
        assert_eq!(
            c["secret_in_argv"], false,
            "a secret in the argv of {}",
            c["command"]
        );
        assert!(
            !c["argv"].to_string().contains(&token),
            "the token reached the argv of {}",
            c["command"]
        );
    }
    // Running it again: there is nothing to import.
    let again = w.run(&["init", "--import-skill-session"]);
    assert_eq!(again.code, 64, "{}", again.stderr);
    w.run(&["stop"]);
}

#[test]
fn the_signin_export_line_is_accepted_as_is() {
    let w = World::new("");
    w.load_basic();
    let (var, token) = skill_sign_in(&w);
    let file = w.home.join(".op-claude-session");
    std::fs::write(&file, format!("export {var}=\"{token}\"\n")).unwrap();
    let out = w.run(&["init", "--import-skill-session", "--account", "my"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!file.exists());
    assert_eq!(
        w.run(&["read", "op://Dev/Stripe/key"]).stdout,
        format!("{STRIPE}\n")
    );
    w.run(&["stop"]);
}

#[test]
fn an_expired_skill_token_is_refused_and_the_file_is_kept_with_a_fix() {
    let w = World::new("");
    w.load_basic();
    let file = w.home.join(".op-claude-session");
    std::fs::write(
        &file,
        "export OP_AUTH_MODE=token\nexport OP_SESSION=\"AVpOk3jBbp-EcTxoEyYdwFVMPIrSZII4MZdngyq9MFv\"\nexport OP_ACCOUNT=my\n",
    )
    .unwrap();
    let out = w.run(&["init", "--import-skill-session"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("op-session init"), "{}", out.stderr);
    assert!(file.exists(), "a failed import must not lose the file");
    assert!(w.status()["sessions"].as_array().unwrap().is_empty());
    w.run(&["stop"]);
}

#[test]
fn an_app_mode_skill_file_is_removed_and_an_app_session_started() {
    let w = World::new("");
    w.load_basic();
    let file = w.home.join(".op-claude-session");
    std::fs::write(
        &file,
        "export OP_AUTH_MODE=app\nexport OP_ACCOUNT=team.1password.com\n",
    )
    .unwrap();
    let out = w.run(&["init", "--import-skill-session"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!file.exists());
    assert_eq!(w.status()["sessions"][0]["mode"], "app");
    w.run(&["stop"]);
}

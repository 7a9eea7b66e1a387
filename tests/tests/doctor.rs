//! Issue 15: `op-session doctor` names each broken thing with its fix and exits 1; optional
//! things that are missing (service, shim, agent integrations, op's setgid group) are warnings
//! that do not fail it. Each test breaks one thing and expects that check, by name, to fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use op_session_e2e::Finish as _;
use op_session_e2e::{Out, World, bins};

/// `doctor --json` with extra environment: (exit code, check → status, the whole report).
fn doctor(w: &World, env: &[(&str, &str)]) -> (i32, BTreeMap<String, String>, serde_json::Value) {
    if env.iter().any(|(k, _)| *k == "OPSESSION_NO_AUTOSTART") {
        w.without_daemon();
    }
    let mut c = w.client(&["doctor", "--json"]);
    for (k, v) in env {
        c.env(k, v);
    }
    report(c)
}

/// `doctor --json` run by the `op-session` at `client` (with this world's environment).
fn doctor_from(w: &World, client: &Path) -> (i32, BTreeMap<String, String>, serde_json::Value) {
    w.start_daemon();
    let mut c = std::process::Command::new(client);
    c.args(["doctor", "--json"]).env_clear().envs(w.env());
    report(c)
}

fn report(mut c: std::process::Command) -> (i32, BTreeMap<String, String>, serde_json::Value) {
    let out: Out = c.finish().unwrap().into();
    let report: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --json printed no JSON ({e}): {}", out.stdout));
    let checks = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (out.code, checks, report)
}

fn fails(w: &World, env: &[(&str, &str)], check: &str) -> serde_json::Value {
    let (code, checks, report) = doctor(w, env);
    assert_eq!(
        checks.get(check).map(String::as_str),
        Some("fail"),
        "{report:#}"
    );
    assert_eq!(code, 1, "{report:#}");
    let finding = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap()
        .clone();
    assert!(
        finding["fix"].as_str().is_some_and(|f| !f.is_empty()),
        "{finding}"
    );
    finding
}

fn world() -> World {
    let w = World::new("");
    w.load_basic();
    w
}

#[test]
fn a_working_setup_passes_with_warnings_for_what_is_optional() {
    let w = world();
    let (code, checks, report) = doctor(&w, &[]);
    assert_eq!(code, 0, "{report:#}");
    for check in [
        "daemon",
        "op",
        "config",
        "socket-dir",
        "token-files",
        "token-env",
    ] {
        assert_eq!(checks[check], "ok", "{report:#}");
    }
    for check in [
        "service",
        "shim",
        "agent:claude-code",
        "agent:codex",
        "agent:cursor",
    ] {
        assert_eq!(checks[check], "warn", "{report:#}");
    }
    // The text form: one line per check, with a mark.
    let text = w.run(&["doctor"]);
    assert_eq!(text.code, 0);
    assert_eq!(text.stdout.lines().count(), checks.len(), "{}", text.stdout);
    assert!(text.stdout.lines().all(|l| l.starts_with(['✓', '✗', '!'])));
    assert!(
        text.stdout.contains("! shim: not installed"),
        "{}",
        text.stdout
    );
    w.run(&["stop"]);
}

#[test]
fn a_daemon_that_is_not_running_and_may_not_start_fails_the_daemon_check() {
    let w = world();
    let f = fails(&w, &[("OPSESSION_NO_AUTOSTART", "1")], "daemon");
    assert!(
        f["detail"].as_str().unwrap().contains("not reachable"),
        "{f}"
    );
}

#[test]
fn a_missing_or_broken_op_fails_the_op_check() {
    let w = World::new("");
    std::fs::write(&w.config, "op_path = \"/nonexistent/op\"\n").unwrap();
    fails(&w, &[], "op");
    w.run(&["stop"]);

    let w = World::new("");
    let broken = w.dir.path().join("op");
    std::fs::write(&broken, "#!/bin/sh\nexit 3\n").unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(&w.config, format!("op_path = \"{}\"\n", broken.display())).unwrap();
    let f = fails(&w, &[], "op");
    assert!(f["detail"].as_str().unwrap().contains("--version"), "{f}");
    w.run(&["stop"]);

    // Writable by others: anyone could swap it.
    let w = World::new("pass_env = [\"FAKE_OP_HOME\"]");
    let copy = w.dir.path().join("op");
    std::fs::copy(&bins().fake_op, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(
        &w.config,
        format!(
            "op_path = \"{}\"\npass_env = [\"FAKE_OP_HOME\"]\n",
            copy.display()
        ),
    )
    .unwrap();
    let f = fails(&w, &[], "op");
    assert!(f["fix"].as_str().unwrap().starts_with("chmod go-w"), "{f}");
    w.run(&["stop"]);
}

#[test]
fn op_without_the_setgid_group_is_named_as_a_warning() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let w = world();
    let (_, checks, report) = doctor(&w, &[]);
    assert_eq!(checks["op-group"], "warn", "{report:#}");
    w.run(&["stop"]);
}

#[test]
fn an_invalid_config_fails_the_config_check() {
    // The running daemon's file is the one its next start reads (no variable moves it).
    let w = world();
    w.start_daemon();
    let text = std::fs::read_to_string(&w.config).unwrap();
    std::fs::write(&w.config, format!("{text}no_such_key = 1\n")).unwrap();
    let f = fails(&w, &[], "config");
    assert!(f["detail"].as_str().unwrap().contains("no_such_key"), "{f}");
    w.run(&["stop"]);
}

/// A policy rule the grammar cannot read once denied nothing (fail-open); now the daemon
/// refuses to start, naming the rule's key, and doctor's config check (the same loader,
/// through `op-sessiond --check-config`) reports it.
#[test]
fn a_policy_rule_that_is_not_an_op_command_stops_the_daemon_and_fails_the_config_check() {
    let w = world();
    w.start_daemon();
    let text = std::fs::read_to_string(&w.config).unwrap();
    std::fs::write(
        &w.config,
        format!("{text}[policy]\ndeny = [\"itme edit\"]\n"),
    )
    .unwrap();
    let f = fails(&w, &[], "config");
    let detail = f["detail"].as_str().unwrap();
    assert!(
        detail.contains("policy.deny[0]") && detail.contains("itme edit"),
        "{f}"
    );
    w.run(&["stop"]);
    let out: Out = w.daemon(&["--foreground"]).finish().unwrap().into();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("policy.deny[0]") && out.stderr.contains("not an op command"),
        "{}",
        out.stderr
    );
    assert!(
        !w.socket.exists(),
        "no daemon serves with a rule it cannot read"
    );
}

#[test]
fn a_socket_directory_others_can_enter_fails_the_socket_dir_check() {
    let w = world();
    assert_eq!(w.run(&["status"]).code, 0);
    let dir = w.socket.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let f = fails(&w, &[], "socket-dir");
    assert!(f["fix"].as_str().unwrap().contains("chmod 700"), "{f}");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    w.run(&["stop"]);
}

#[test]
fn installed_but_not_enabled_units_fail_the_service_check() {
    if cfg!(target_os = "macos") {
        return;
    }
    let w = world();
    let units = w.config_home.join("systemd/user");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(units.join("op-sessiond.socket"), "[Socket]\n").unwrap();
    std::fs::write(
        units.join("op-sessiond.service"),
        format!(
            "[Service]\nExecStart={} --foreground\n",
            bins().daemon.display()
        ),
    )
    .unwrap();
    let f = fails(&w, &[], "service");
    assert!(f["fix"].as_str().unwrap().contains("enable"), "{f}");
    let wants = units.join("sockets.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(
        units.join("op-sessiond.socket"),
        wants.join("op-sessiond.socket"),
    )
    .unwrap();
    assert_eq!(doctor(&w, &[]).1["service"], "ok");
    // A unit that starts a binary that is gone.
    std::fs::write(
        units.join("op-sessiond.service"),
        "[Service]\nExecStart=/nonexistent/op-sessiond\n",
    )
    .unwrap();
    fails(&w, &[], "service");
    w.run(&["stop"]);
}

#[test]
fn a_real_op_ahead_of_the_shim_on_path_fails_the_shim_check() {
    let w = world();
    let real = w.dir.path().join("real");
    let shim = w.dir.path().join("shim");
    std::fs::create_dir_all(&real).unwrap();
    std::os::unix::fs::symlink(&bins().fake_op, real.join("op")).unwrap();
    assert_eq!(w.run(&["shim", "install", shim.to_str().unwrap()]).code, 0);
    let path = std::env::var("PATH").unwrap();
    let wrong = format!("{}:{}:{path}", real.display(), shim.display());
    let f = fails(&w, &[("PATH", &wrong)], "shim");
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .contains(&shim.display().to_string()),
        "{f}"
    );
    let right = format!("{}:{}:{path}", shim.display(), real.display());
    assert_eq!(doctor(&w, &[("PATH", &right)]).1["shim"], "ok");
    w.run(&["stop"]);
}

#[test]
fn agent_integrations_are_reported_per_agent() {
    let w = world();
    assert_eq!(w.run(&["agent", "install", "codex"]).code, 0);
    let (_, checks, _) = doctor(&w, &[]);
    assert_eq!(checks["agent:codex"], "ok");
    assert_eq!(checks["agent:claude-code"], "warn");
    assert_eq!(checks["agent:cursor"], "warn");
    // Half of it removed by hand: named as broken, with the fix.
    std::fs::remove_file(w.home.join(".codex/AGENTS.md")).unwrap();
    let f = fails(&w, &[], "agent:codex");
    assert_eq!(f["fix"], "op-session agent install codex");
    w.run(&["stop"]);
}

#[test]
fn a_leftover_skill_token_file_or_token_variable_fails_and_points_at_the_fix() {
    let w = world();
    std::fs::write(
        w.home.join(".op-claude-session"),
        "export OP_AUTH_MODE=token\nexport OP_SESSION=\"not-a-real-token\"\n",
    )
    .unwrap();
    let f = fails(&w, &[], "token-files");
    assert_eq!(f["fix"], "op-session init --import-skill-session");
    let out = w.run(&["doctor"]);
    assert!(
        !out.stdout.contains("not-a-real-token"),
        "doctor printed the token"
    );
    std::fs::remove_file(w.home.join(".op-claude-session")).unwrap();

    let f = fails(&w, &[("OP_SESSION_ABCDEF", "tok")], "token-env");
    assert!(
        f["detail"].as_str().unwrap().contains("OP_SESSION_ABCDEF"),
        "{f}"
    );
    assert!(!f.to_string().contains("\"tok\""));
    assert!(Path::new(&w.home).exists());
    w.run(&["stop"]);
}

#[test]
fn a_daemon_of_another_version_fails_the_daemon_check() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    let w = world();
    // A real status report, with another version: what an older op-sessiond would answer.
    let mut report = w.status();
    let op = report["op_path"].as_str().unwrap_or_default().to_string();
    assert_eq!(w.run(&["stop"]).code, 0);
    assert!(op_session_e2e::wait_until(Duration::from_secs(5), || !w
        .socket
        .exists()));
    report["version"] = "0.0.1".into();
    report["type"] = "status".into();
    let answers = [
        report.to_string(),
        serde_json::json!({"type": "op_path", "path": op}).to_string(),
    ];
    let listener = std::os::unix::net::UnixListener::bind(&w.socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    let stand_in = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(10);
        let mut served = 0;
        while served < answers.len() && Instant::now() < end {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            s.set_nonblocking(false).unwrap();
            let mut head = [0u8; 5];
            s.read_exact(&mut head).unwrap();
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut body = vec![0u8; len];
            s.read_exact(&mut body).unwrap();
            let answer = &answers[served];
            let mut frame = (answer.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(answer.as_bytes());
            s.write_all(&frame).unwrap();
            served += 1;
        }
    });
    let f = fails(&w, &[("OPSESSION_NO_AUTOSTART", "1")], "daemon");
    stand_in.join().unwrap();
    let detail = f["detail"].as_str().unwrap();
    assert!(
        detail.contains("0.0.1") && detail.contains(env!("CARGO_PKG_VERSION")),
        "{f}"
    );
    assert!(
        f["fix"].as_str().unwrap().contains("op-session stop"),
        "{f}"
    );
}

/// Set `path`'s modification time a minute ahead, as if edited after whatever runs now started.
fn touch_later(path: &Path) {
    // Read-only: a running binary cannot be opened for writing; futimens needs only ownership.
    let f = std::fs::File::open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .unwrap();
}

#[test]
fn doctor_checks_the_config_the_next_start_reads_not_the_running_daemon() {
    // The daemon runs with a good op; then the file names an op that does not exist.
    let w = world();
    assert_eq!(w.run(&["status"]).code, 0);
    let text = std::fs::read_to_string(&w.config).unwrap();
    let good_op = bins().fake_op.display().to_string();
    std::fs::write(&w.config, text.replace(&good_op, "/nonexistent/op")).unwrap();
    let f = fails(&w, &[], "config");
    assert!(
        f["detail"].as_str().unwrap().contains("/nonexistent/op"),
        "{f}"
    );
    assert!(f["fix"].as_str().unwrap().contains("op_path"), "{f}");
    // Not executable is as bad as missing.
    let plain = w.dir.path().join("not-executable");
    std::fs::write(&plain, "").unwrap();
    std::fs::write(
        &w.config,
        text.replace(&good_op, &plain.display().to_string()),
    )
    .unwrap();
    let f = fails(&w, &[], "config");
    assert!(
        f["detail"].as_str().unwrap().contains("not an executable"),
        "{f}"
    );
    // A config that no longer parses.
    std::fs::write(&w.config, format!("{text}no_such_key = 1\n")).unwrap();
    let f = fails(&w, &[], "config");
    assert!(f["detail"].as_str().unwrap().contains("no_such_key"), "{f}");
    // Valid again, but edited after the daemon started: restart to apply.
    std::fs::write(&w.config, &text).unwrap();
    touch_later(&w.config);
    let f = fails(&w, &[], "config");
    assert!(
        f["fix"].as_str().unwrap().contains("op-session stop"),
        "{f}"
    );
    w.run(&["stop"]);
}

#[test]
fn a_daemon_started_from_another_config_or_an_older_binary_fails_with_restart_to_apply() {
    // A caller's variable no longer moves the config (issue 19): doctor names the file the
    // running daemon read, which is the one its next start is given.
    let w = world();
    let out: Out = w
        .client(&["status"])
        .env("OPSESSION_CONFIG", "/nonexistent/other.toml")
        .finish()
        .unwrap()
        .into();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (_, checks, report) = doctor(&w, &[("OPSESSION_CONFIG", "/nonexistent/other.toml")]);
    assert_eq!(checks["config"], "ok", "{report:#}");
    let config = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "config")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(config.contains(&w.config.display().to_string()), "{config}");
    w.run(&["stop"]);

    // Started from a binary replaced since.
    // doctor looks at the op-sessiond installed beside it: a copy of both, in their own
    // directory, so the shared build's binaries are left alone.
    let w = world();
    let dir = w.dir.path().join("installed");
    std::fs::create_dir(&dir).unwrap();
    let (client, daemon) = (dir.join("op-session"), dir.join("op-sessiond"));
    std::fs::copy(&bins().client, &client).unwrap();
    std::fs::copy(&bins().daemon, &daemon).unwrap();
    let (code, checks, report) = doctor_from(&w, &client);
    assert_eq!(checks["daemon"], "ok", "{report:#}");
    assert_eq!(code, 0, "{report:#}");
    touch_later(&daemon);
    let (code, _, report) = doctor_from(&w, &client);
    assert_eq!(code, 1, "{report:#}");
    let f = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "daemon")
        .unwrap()
        .clone();
    assert_eq!(f["status"], "fail", "{f}");
    assert!(
        f["detail"].as_str().unwrap().contains("older binary"),
        "{f}"
    );
    assert!(
        f["fix"].as_str().unwrap().contains("op-session stop"),
        "{f}"
    );
    w.run(&["stop"]);
}

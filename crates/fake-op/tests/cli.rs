//! Output discipline, flags, global options, the config directory, the call log and
//! concurrency (docs/op-behaviour.md "What the simulator must reproduce" items 1, 11 and 12, plus the harness promises).

mod common;

use common::*;

#[test]
fn version_is_a_bare_line() {
    let sim = Sim::new();
    assert_eq!(sim.op(&["--version"]).ok(), "2.30.3\n");
    assert_eq!(sim.op(&["-v"]).ok(), "2.30.3\n");
}

#[test]
fn unknown_commands_and_flags_fail_like_op() {
    let sim = Sim::new();
    let r = sim.op(&["frobnicate"]);
    assert_eq!(
        r.error(),
        "unknown command \"frobnicate\" for \"op\"\nRun 'op --help' for usage."
    );
    let r = sim.op(&["item", "frob"]);
    assert_eq!(
        r.error(),
        "unknown command \"frob\" for \"op item\"\nRun 'op item --help' for usage."
    );
    let r = sim.op(&["read", "op://Dev/Stripe/key", "--bogus"]);
    let msg = r.error();
    assert!(
        msg.starts_with("unknown flag: --bogus\nUsage:  op read <reference> [flags]\n"),
        "{msg}"
    );
    assert!(
        msg.ends_with("To list the global flags available on every command, run  'op --help'.")
    );
    assert!(
        sim.op(&["read", "-x", "op://a/b/c"])
            .error()
            .starts_with("unknown shorthand flag: 'x' in -x\n")
    );
    assert!(
        sim.op(&["read", "op://a/b/c", "--account"])
            .error()
            .starts_with("flag needs an argument: --account\n")
    );
    assert!(sim.op(&["whoami", "--debug=maybe"]).error().starts_with(
        "invalid argument \"maybe\" for \"--debug\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax"
    ));
    assert_eq!(sim.op(&["read"]).error(), "accepts 1 arg(s), received 0");
    assert!(
        sim.op(&["--version", "read"])
            .error()
            .starts_with("unknown flag: --version\n")
    );
    let c = sim.counters();
    assert_eq!(c["failures"], 8);
}

#[test]
fn flags_in_every_position_and_form() {
    let sim = Sim::new();
    let (var, token) = sim.signin("my", MY_PASSWORD);
    let env = [(var.as_str(), token.as_str())];
    let forms: [&[&str]; 4] = [
        &[
            "read",
            "op://Dev/Stripe/key",
            "--account=my",
            "--no-newline",
        ],
        &["--account", "my", "read", "-n", "op://Dev/Stripe/key"],
        &[
            "read",
            "--account",
            "my",
            "op://Dev/Stripe/key",
            "-n",
            "--cache=false",
            "--no-color",
            "--debug",
            "--encoding",
            "UTF-8",
            "--iso-timestamps",
        ],
        &[
            "read",
            "op://Dev/Stripe/key",
            "--format=json",
            "-n",
            "--config",
            "/nonexistent-op-config",
        ],
    ];
    for args in forms {
        assert_eq!(
            sim.op_with(args, &env, None).ok(),
            "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
            "{args:?}"
        );
    }
    // OP_FORMAT, and integration variables are accepted and ignored.
    let env2 = [
        (var.as_str(), token.as_str()),
        ("OP_FORMAT", "json"),
        ("OP_INTEGRATION_NAME", "1Password for JavaScript"),
        ("OP_INTEGRATION_ID", "JS"),
    ];
    let r = sim.op_with(&["vault", "list"], &env2, None);
    assert!(r.ok().starts_with("[\n"));
    let r = sim.op_with(&["vault", "list", "--format", "yaml"], &env, None);
    r.error();
}

#[test]
fn config_dir_wider_than_700_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let sim = Sim::new();
    let dir = sim.home.path().join("opconfig");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let expected = format!(
        "Can't continue. We can't safely access \"{}\" because its permissions are too broad. Change its permissions to 700 and try again.",
        dir.display()
    );
    assert_eq!(
        sim.op(&["whoami", "--config", dir.to_str().unwrap()])
            .error(),
        expected
    );
    assert_eq!(
        sim.op_with(
            &["whoami"],
            &[("OP_CONFIG_DIR", dir.to_str().unwrap())],
            None
        )
        .error(),
        expected
    );
    // ~/.config/op is found by the lookup order too (HOME is the sim's home).
    let home_cfg = sim.home.path().join(".config/op");
    std::fs::create_dir_all(&home_cfg).unwrap();
    std::fs::set_permissions(&home_cfg, std::fs::Permissions::from_mode(0o750)).unwrap();
    assert!(sim.op(&["account", "list"]).error().contains(".config/op"));
    std::fs::set_permissions(&home_cfg, std::fs::Permissions::from_mode(0o700)).unwrap();
    sim.op(&["account", "list"]).ok();
    // An explicit config dir gets a config file after sign-in.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let r = sim.op_with(
        &[
            "signin",
            "--account",
            "my",
            "--config",
            dir.to_str().unwrap(),
        ],
        &[],
        Some(MY_PASSWORD),
    );
    r.ok();
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config")).unwrap()).unwrap();
    assert_eq!(cfg["latest_signin"], "my");
    assert_eq!(cfg["accounts"][0]["userUUID"], "HARM4F9J5LCUWKTUGHC6PROAID");
}

#[test]
fn account_list_and_whoami_shapes() {
    let sim = Sim::new();
    let r = sim.op(&["account", "list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert_eq!(list[0]["shorthand"], "my");
    assert_eq!(list[0]["url"], "my.1password.com");
    assert!(
        list[2].get("shorthand").is_none(),
        "app-integrated accounts have none"
    );
    let human = sim.op(&["account", "list"]);
    assert!(
        human
            .ok()
            .starts_with("SHORTHAND    URL                   EMAIL")
    );
    let (var, token) = sim.signin("my", MY_PASSWORD);
    let r = sim.op_with(&["whoami", "--format", "json"], &[(&var, &token)], None);
    assert_eq!(
        r.ok(),
        "{\n  \"url\": \"https://my.1password.com\",\n  \"email\": \"wendy.appleseed@example.com\",\n  \"user_uuid\": \"HARM4F9J5LCUWKTUGHC6PROAID\",\n  \"account_uuid\": \"3S3MH05PXMX7GA9MTZL3ATKT4C\"\n}\n"
    );
}

#[test]
fn call_log_records_names_not_values_and_flags_secrets_in_argv() {
    let sim = Sim::new();
    let (var, token) = sim.signin("my", MY_PASSWORD);
    sim.op_with(&["read", "op://Dev/Stripe/key"], &[(&var, &token)], None)
        .ok();
    sim.op(&["read", "op://Dev/Stripe/key", "--session", &token])
        .ok();
    sim.op(&["item", "list", "--session", "not-a-token"])
        .error();
    let calls = sim.calls();
    assert_eq!(calls.len(), 4);
    let log = sim.ctl(&["calls"]);
    assert_eq!(
        log.matches(&token).count(),
        1,
        "the token appears only in the argv that carried it"
    );
    assert_eq!(calls[0]["command"], "signin");
    assert_eq!(calls[0]["exit_code"], 0);
    assert_eq!(calls[1]["secret_in_argv"], false);
    assert!(
        calls[1]["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == var.as_str())
    );
    assert_eq!(calls[2]["secret_in_argv"], true);
    assert_eq!(calls[3]["secret_in_argv"], false);
    assert_eq!(calls[3]["exit_code"], 1);
    for key in ["time", "argv", "pid", "ppid", "credential", "duration_ms"] {
        assert!(calls[1].get(key).is_some(), "{key}");
    }
    assert!(
        calls[1]["credential"]
            .as_str()
            .unwrap()
            .starts_with("ppid:")
    );
    // A stored secret value on argv is flagged too.
    sim.op(&[
        "item",
        "list",
        "--account",
        "sk_live_51ProdOnlyKeyDoNotLeak9",
    ])
    .error();
    assert_eq!(sim.calls()[4]["secret_in_argv"], true);
}

#[test]
fn sixty_four_concurrent_invocations_leave_consistent_state() {
    let sim = Sim::new();
    let (var, token) = sim.signin("my", MY_PASSWORD);
    let children: Vec<_> = (0..64)
        .map(|i| {
            let mut cmd = sim.command(OP);
            if i % 2 == 0 {
                cmd.args(["read", "op://Dev/Stripe/key"]);
            } else {
                cmd.args([
                    "item",
                    "create",
                    "--category",
                    "password",
                    "--vault",
                    "Dev",
                    "--title",
                    &format!("c{i}"),
                    "password=x",
                ]);
            }
            cmd.env(&var, &token)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let c = sim.counters();
    assert_eq!(c["invocations"], 65);
    assert_eq!(c["commands"]["read"], 32);
    assert_eq!(c["commands"]["item create"], 32);
    assert_eq!(c["secrets_resolved"], 32);
    let state = sim.state();
    let dev = &state["accounts"][0]["vaults"][0];
    assert_eq!(
        dev["items"].as_array().unwrap().len(),
        7 + 32,
        "no create was lost"
    );
    assert_eq!(sim.calls().len(), 65);
}

#[test]
fn latency_is_added_per_invocation() {
    let sim = Sim::new();
    let start = std::time::Instant::now();
    sim.op_with(&["--version"], &[("FAKE_OP_LATENCY_MS", "150")], None)
        .ok();
    assert!(start.elapsed() >= std::time::Duration::from_millis(150));
    sim.ctl(&["latency", "120"]);
    let start = std::time::Instant::now();
    sim.op(&["--version"]).ok();
    assert!(start.elapsed() >= std::time::Duration::from_millis(120));
    sim.ctl(&["latency", "0"]);
    let start = std::time::Instant::now();
    sim.op(&["--version"]).ok();
    assert!(start.elapsed() < std::time::Duration::from_millis(100));
}

#[test]
fn ctl_rejects_nonsense() {
    let sim = Sim::new();
    let mut cmd = sim.command(CTL);
    cmd.args(["advance", "5q"]);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid duration"));
}

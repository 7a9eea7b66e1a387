//! Sign-in, sessions, the app-integration prompt model and service accounts
//! (docs/op-behaviour.md "What the simulator must reproduce" items 2, 3, 4 and 13).

mod common;

use common::*;

const MY_UUID_VAR: &str = "OP_SESSION_HARM4F9J5LCUWKTUGHC6PROAID";

#[test]
fn signin_prints_the_export_line_and_three_comments() {
    let sim = Sim::new();
    let r = sim.op_with(&["signin", "--account", "my"], &[], Some(MY_PASSWORD));
    let out = r.ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with(&format!("export {MY_UUID_VAR}=\"")));
    let token = lines[0].split('"').nth(1).unwrap();
    assert_eq!(token.len(), 43);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(
        lines[1],
        "# This command is meant to be used with your shell's eval function."
    );
    assert_eq!(
        lines[2],
        "# Run 'eval $(op signin --account my)' to sign in to your 1Password account."
    );
    assert_eq!(
        lines[3],
        "# Use the --raw flag to only output the session token."
    );
    assert_eq!(sim.counters()["signins"], 1);
}

#[test]
fn signin_raw_prints_only_the_token_and_it_authenticates() {
    let sim = Sim::new();
    let r = sim.op_with(
        &["signin", "--raw", "--account=my.1password.com"],
        &[],
        Some(MY_PASSWORD),
    );
    let token = r.ok().trim_end().to_string();
    assert_eq!(r.stdout, format!("{token}\n"));
    let read = sim.op_with(
        &["read", "op://Dev/Stripe/key"],
        &[(MY_UUID_VAR, &token)],
        None,
    );
    assert_eq!(read.ok(), "sk_test_4eC39HqLyjWDarjtT1zdp7dc\n");
    // --session works as well, and so does every --account form.
    for account in [
        "my",
        "https://my.1password.com",
        "HARM4F9J5LCUWKTUGHC6PROAID",
        "3S3MH05PXMX7GA9MTZL3ATKT4C",
    ] {
        let r = sim.op(&[
            "read",
            "op://Dev/Stripe/key",
            "--account",
            account,
            "--session",
            &token,
        ]);
        assert_eq!(r.ok(), "sk_test_4eC39HqLyjWDarjtT1zdp7dc\n", "{account}");
    }
}

#[test]
fn signin_is_idempotent_with_a_live_token() {
    let sim = Sim::new();
    let (var, token) = sim.signin("my", MY_PASSWORD);
    // No password on stdin this time: a live session is handed back.
    let r = sim.op_with(
        &["signin", "--raw", "--account", "my"],
        &[(&var, &token)],
        None,
    );
    assert_eq!(r.ok(), format!("{token}\n"));
    assert_eq!(sim.counters()["signins"], 1);
}

#[test]
fn wrong_password_and_no_password() {
    let sim = Sim::new();
    let r = sim.op_with(&["signin", "--account", "my"], &[], Some("wrong\n"));
    assert_eq!(r.error(), "Authentication: DB: 401: Unauthorized");
    let r = sim.op(&["signin", "--account", "my"]);
    assert_eq!(r.error(), "inappropriate ioctl for device");
    assert_eq!(sim.counters()["signin_failures"], 2);
}

#[test]
fn account_selection_errors() {
    let sim = Sim::new();
    let r = sim.op(&["read", "op://Dev/Stripe/key", "--account", "nope"]);
    assert_eq!(r.error(), "no account found for filter nope");
    let r = sim.op_with(&["whoami"], &[("OP_ACCOUNT", "nope")], None);
    assert_eq!(r.error(), "no account found for filter nope");
    let empty = Sim::empty();
    let r = empty.op(&["vault", "list"]);
    assert_eq!(r.error(), "no account found for filter ");
    assert!(r.stderr.ends_with("filter \n"), "trailing space kept");
    assert_eq!(
        empty.op(&["account", "list", "--format", "json"]).ok(),
        "[]\n"
    );
}

#[test]
fn missing_and_bogus_tokens_give_ops_texts() {
    let sim = Sim::new();
    let r = sim.op(&["read", "op://Dev/Stripe/key", "--account", "my"]);
    assert_eq!(
        r.error(),
        "could not read secret 'op://Dev/Stripe/key': error initializing client: could not find session token for account my"
    );
    let r = sim.op_with(&["vault", "list"], &[("OP_ACCOUNT", "my")], None);
    assert_eq!(r.error(), "could not find session token for account my");
    let r = sim.op(&["vault", "list"]);
    assert_eq!(r.error(), NOT_SIGNED_IN);
    let r = sim.op_with(
        &["vault", "list"],
        &[(MY_UUID_VAR, "AVpOk3jBbp-EcTxoEyYdwFVMPIrSZII4MZdngyq9MFv")],
        None,
    );
    assert_eq!(r.error(), NOT_SIGNED_IN);
    let r = sim.op_with(
        &["read", "op://Dev/Stripe/key"],
        &[(MY_UUID_VAR, "bogus")],
        None,
    );
    assert_eq!(
        r.error(),
        format!(
            "could not read secret 'op://Dev/Stripe/key': error initializing client: {NOT_SIGNED_IN}"
        )
    );
    assert_eq!(sim.op(&["whoami"]).error(), "account is not signed in");
}

#[test]
fn token_expires_after_thirty_idle_minutes_and_use_refreshes_it() {
    let sim = Sim::new();
    let (var, token) = sim.signin("my", MY_PASSWORD);
    let env = [(var.as_str(), token.as_str())];
    sim.ctl(&["advance", "29m"]);
    assert!(
        sim.op_with(&["vault", "list"], &env, None)
            .ok()
            .contains("Dev")
    );
    sim.ctl(&["advance", "29m"]);
    assert!(
        sim.op_with(&["vault", "list"], &env, None)
            .ok()
            .contains("Dev"),
        "use refreshed it"
    );
    sim.ctl(&["advance", "31m"]);
    assert_eq!(
        sim.op_with(&["vault", "list"], &env, None).error(),
        NOT_SIGNED_IN
    );
    assert_eq!(
        sim.op_with(&["whoami"], &env, None).error(),
        "account is not signed in"
    );
}

#[test]
fn signout_and_ctl_revoke_end_the_session() {
    let sim = Sim::new();
    let (var, token) = sim.signin("my", MY_PASSWORD);
    let env = [(var.as_str(), token.as_str())];
    sim.op_with(&["signout"], &env, None).ok();
    assert_eq!(
        sim.op_with(&["item", "list"], &env, None).error(),
        NOT_SIGNED_IN
    );
    let (var, token) = sim.signin("my", MY_PASSWORD);
    let env = [(var.as_str(), token.as_str())];
    sim.ctl(&["revoke", "--account", "my"]);
    assert_eq!(
        sim.op_with(&["item", "list"], &env, None).error(),
        NOT_SIGNED_IN
    );
}

#[test]
fn two_token_accounts_are_independent() {
    let sim = Sim::new();
    let (my_var, my_token) = sim.signin("my", MY_PASSWORD);
    let (acme_var, acme_token) = sim.signin("acme", "acme password 2");
    assert_ne!(my_var, acme_var);
    let env = [
        (my_var.as_str(), my_token.as_str()),
        (acme_var.as_str(), acme_token.as_str()),
    ];
    let r = sim.op_with(
        &["read", "--account", "acme", "op://Dev/Stripe/key"],
        &env,
        None,
    );
    assert_eq!(r.ok(), "sk_test_acme_0000000000000001\n");
    let r = sim.op_with(
        &["read", "--account", "my", "op://Dev/Stripe/key"],
        &env,
        None,
    );
    assert_eq!(r.ok(), "sk_test_4eC39HqLyjWDarjtT1zdp7dc\n");
    // Without --account: the latest sign-in (acme).
    let r = sim.op_with(&["whoami", "--format", "json"], &env, None);
    let who: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    assert_eq!(who["email"], "wendy@acme.example");
}

#[test]
fn signin_refuses_a_terminal_stdout_without_raw() {
    let sim = Sim::new();
    // util-linux `script` gives the command a pty as stdout (skip where it is missing).
    let mut cmd = sim.command("script");
    cmd.args(["-qec", &format!("'{OP}' signin --account my"), "/dev/null"]);
    let Ok(out) = cmd.output() else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Output of 'op signin' is meant to be executed by your terminal. Please run 'eval $(op signin)'. You can use the '-f' flag to override this warning."),
        "{text:?}"
    );
}

// ---- app integration ------------------------------------------------------------------------

const TEAM: &str = "team.1password.com";

#[test]
fn app_signin_prints_nothing_and_whoami_needs_a_prior_command() {
    let sim = Sim::new();
    // whoami never triggers the prompt.
    assert_eq!(
        sim.op(&["whoami", "--account", TEAM]).error(),
        "account is not signed in"
    );
    assert_eq!(sim.counters()["biometric_prompts"], 0);
    // From this test process (one parent): signin authorizes, then whoami works.
    assert_eq!(sim.op(&["signin", "--account", TEAM]).ok(), "");
    let r = sim.op(&["whoami", "--account", TEAM, "--format", "json"]);
    assert!(r.ok().contains("wendy@team.example"));
    // OP_SESSION_* is ignored in app mode.
    let r = sim.op_with(
        &["read", "--account", TEAM, "op://Dev/Stripe/key"],
        &[("OP_SESSION_BQIO3C5A5VSAL8ZFYZ1V0FWFIY", "bogus")],
        None,
    );
    assert_eq!(r.ok(), "sk_test_team_0000000000000002\n");
    assert_eq!(sim.counters()["biometric_prompts"], 1);
}

#[test]
fn fresh_shells_prompt_every_time_one_parent_prompts_once() {
    let sim = Sim::new();
    for _ in 0..3 {
        let r = sim.op_via_sh(&["read", "--account", TEAM, "op://Dev/Stripe/key"], &[]);
        assert_eq!(r.ok(), "sk_test_team_0000000000000002\n");
    }
    assert_eq!(
        sim.counters()["biometric_prompts"],
        3,
        "three shells, three prompts"
    );
    for _ in 0..3 {
        let r = sim.op(&["read", "--account", TEAM, "op://Dev/Stripe/key"]);
        assert_eq!(r.ok(), "sk_test_team_0000000000000002\n");
    }
    assert_eq!(
        sim.counters()["biometric_prompts"],
        4,
        "one long-lived parent, one prompt"
    );
    let creds: std::collections::BTreeSet<String> = sim
        .calls()
        .iter()
        .map(|c| c["credential"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(creds.len(), 4);
}

#[test]
fn lock_revokes_and_the_next_command_prompts_again() {
    let sim = Sim::new();
    let read = || sim.op(&["read", "--account", TEAM, "op://Dev/Stripe/key"]);
    read().ok();
    read().ok();
    assert_eq!(sim.counters()["biometric_prompts"], 1);
    sim.ctl(&["app", "lock"]);
    assert_eq!(
        sim.op(&["whoami", "--account", TEAM]).error(),
        "account is not signed in"
    );
    read().ok();
    assert_eq!(sim.counters()["biometric_prompts"], 2);
    assert_eq!(
        sim.state()["app"]["locked"],
        false,
        "approving unlocked the app"
    );
}

#[test]
fn denied_and_timed_out_prompts() {
    let sim = Sim::new();
    sim.ctl(&["prompt", "deny"]);
    sim.ctl(&["prompt", "timeout"]);
    let r = sim.op(&["read", "--account", TEAM, "op://Dev/Stripe/key"]);
    assert_eq!(
        r.error(),
        "could not read secret 'op://Dev/Stripe/key': error initializing client: authorization prompt dismissed, please try again"
    );
    let r = sim.op(&["item", "list", "--account", TEAM]);
    assert_eq!(
        r.error(),
        "error initializing client: authorization timeout"
    );
    // The queue is used up: the default (approve) applies again.
    sim.op(&["item", "list", "--account", TEAM]).ok();
    sim.ctl(&["app", "lock"]);
    sim.ctl(&["prompt", "deny", "--always"]);
    for _ in 0..2 {
        sim.op(&["vault", "list", "--account", TEAM]).error();
    }
    let c = sim.counters();
    assert_eq!(c["biometric_prompts"], 5);
    assert_eq!(c["prompts_denied"], 3);
    assert_eq!(c["prompts_timed_out"], 1);
}

#[test]
fn app_authorization_lasts_ten_idle_minutes_and_twelve_hours() {
    let sim = Sim::new();
    let read = || {
        sim.op(&["read", "--account", TEAM, "op://Dev/Stripe/key"])
            .ok()
            .to_string()
    };
    read();
    for _ in 0..5 {
        sim.ctl(&["advance", "9m"]);
        read();
    }
    assert_eq!(sim.counters()["biometric_prompts"], 1, "refreshed on use");
    sim.ctl(&["advance", "11m"]);
    read();
    assert_eq!(sim.counters()["biometric_prompts"], 2, "idle limit");
    sim.ctl(&["advance", "720m"]);
    read();
    assert_eq!(sim.counters()["biometric_prompts"], 3);
    let mut prompts = 3;
    for _ in 0..(12 * 60 / 9 + 1) {
        sim.ctl(&["advance", "9m"]);
        read();
    }
    prompts += 1;
    assert_eq!(
        sim.counters()["biometric_prompts"],
        prompts,
        "12 h hard limit"
    );
}

#[test]
fn app_not_running() {
    let sim = Sim::new();
    sim.ctl(&["app", "quit"]);
    let r = sim.op(&["vault", "list", "--account", TEAM]);
    assert!(r.error().starts_with("error initializing client: connecting to desktop app: read: connection reset, make sure 1Password CLI is installed correctly"));
}

#[test]
fn biometric_unlock_disabled_falls_back_to_token_mode() {
    let sim = Sim::new();
    let r = sim.op_with(
        &["vault", "list", "--account", TEAM],
        &[("OP_BIOMETRIC_UNLOCK_ENABLED", "false")],
        None,
    );
    assert_eq!(
        r.error(),
        "could not find session token for account team.1password.com"
    );
    assert_eq!(sim.counters()["biometric_prompts"], 0);
}

// ---- service accounts -----------------------------------------------------------------------

#[test]
fn service_account_whoami_quirk_then_reads() {
    let sim = Sim::new();
    let token = sim.sa_token("ci");
    assert!(token.starts_with("ops_"));
    let env = [("OP_SERVICE_ACCOUNT_TOKEN", token.as_str())];
    let r = sim.op_with(&["whoami"], &env, None);
    assert_eq!(
        r.error(),
        "service account token set, but not authenticated yet"
    );
    let r = sim.op_with(&["read", "op://Prod/Stripe/key"], &env, None);
    assert_eq!(r.ok(), "sk_live_51ProdOnlyKeyDoNotLeak9\n");
    let r = sim.op_with(&["whoami", "--format=json"], &env, None);
    let who: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    assert_eq!(who["user_type"], "SERVICE_ACCOUNT");
    assert_eq!(who["url"], "https://my.1password.com");
    // Signing in is ignored with a token set.
    assert_eq!(sim.op_with(&["signin"], &env, None).ok(), "");
}

#[test]
fn service_account_restrictions() {
    let sim = Sim::new();
    let token = sim.sa_token("ci");
    let env = [("OP_SERVICE_ACCOUNT_TOKEN", token.as_str())];
    let r = sim.op_with(&["read", "op://Private/Bank/password"], &env, None);
    assert_eq!(
        r.error(),
        "could not read secret 'op://Private/Bank/password': \"Private\" isn't a vault in this account"
    );
    let r = sim.op_with(&["item", "get", "Stripe"], &env, None);
    assert_eq!(
        r.error(),
        "a vault query must be provided when this command is called by a service account. Please specify one either through the --vault flag or through piped input"
    );
    let r = sim.op_with(
        &[
            "item", "get", "Stripe", "--vault", "Prod", "--fields", "key", "--reveal",
        ],
        &env,
        None,
    );
    assert_eq!(r.ok(), "sk_live_51ProdOnlyKeyDoNotLeak9\n");
    let r = sim.op_with(&["vault", "list", "--format", "json"], &env, None);
    let names: Vec<String> = serde_json::from_str::<serde_json::Value>(r.ok())
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["Dev", "Prod"]);
}

#[test]
fn malformed_and_revoked_tokens() {
    let sim = Sim::new();
    let r = sim.op_with(
        &["read", "op://Dev/Stripe/key"],
        &[("OP_SERVICE_ACCOUNT_TOKEN", "ops_abcdefghijkl!")],
        None,
    );
    assert_eq!(
        r.error(),
        "could not read secret 'op://Dev/Stripe/key': error initializing client: Validation: (failed to session.DecodeSACredentials), Server: (failed to DecodeSACredentials), illegal base64 data at input byte 12"
    );
    let r = sim.op_with(
        &["vault", "list"],
        &[("OP_SERVICE_ACCOUNT_TOKEN", "\"ops_abc\"")],
        None,
    );
    assert_eq!(
        r.error(),
        "error initializing client: failed to DeserializeServiceAccountAuthToken, unrecognized auth type"
    );
    let deleted = sim.sa_token("deleted");
    let r = sim.op_with(
        &["vault", "list"],
        &[("OP_SERVICE_ACCOUNT_TOKEN", &deleted)],
        None,
    );
    assert_eq!(
        r.error(),
        "error initializing client: Authentication: (failed to auth.LookupAuth), Network: (failed to request.DoUnencrypted), Server: (403) (Forbidden (Service Account Deleted)), The Service Account used in this integration has been deleted."
    );
    let ci = sim.sa_token("ci");
    sim.ctl(&["revoke", "--service-account", "ci"]);
    let r = sim.op_with(
        &["vault", "list"],
        &[("OP_SERVICE_ACCOUNT_TOKEN", &ci)],
        None,
    );
    assert!(r.error().contains("Service Account Deleted"));
}

#[test]
fn hourly_rate_limit_and_ratelimit_table() {
    let sim = Sim::new();
    let token = sim.sa_token("limited"); // 6 reads, 1 write per hour; a read costs 3
    let env = [("OP_SERVICE_ACCOUNT_TOKEN", token.as_str())];
    for _ in 0..2 {
        sim.op_with(&["read", "op://Dev/Stripe/key"], &env, None)
            .ok();
    }
    let r = sim.op_with(&["read", "op://Dev/Stripe/key"], &env, None);
    assert_eq!(
        r.error(),
        "could not read secret 'op://Dev/Stripe/key': (429) Too Many Requests: You've reached the maximum number of this type of requests this service account is allowed to make. Please retry in 59 minutes or try other requests."
    );
    let table = sim.op_with(&["service-account", "ratelimit"], &env, None);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["TYPE", "ACTION", "LIMIT", "USED", "REMAINING", "RESET"]
    );
    assert!(
        lines[1].starts_with("token      write         1 "),
        "{lines:?}"
    );
    assert!(
        lines[2].contains("6 ") && lines[2].ends_with("59 minutes from now"),
        "{lines:?}"
    );
    sim.op_with(
        &[
            "item",
            "create",
            "--category",
            "password",
            "--vault",
            "Dev",
            "password=x",
        ],
        &env,
        None,
    )
    .ok();
    let r = sim.op_with(&["item", "delete", "Stripe", "--vault", "Dev"], &env, None);
    assert!(r.error().starts_with("(429) Too Many Requests: "));
    sim.ctl(&["advance", "61m"]);
    sim.op_with(&["read", "op://Dev/Stripe/key"], &env, None)
        .ok();
    let c = sim.counters();
    assert_eq!(c["per_service_account"]["limited"]["reads"], 9);
    assert_eq!(c["per_service_account"]["limited"]["writes"], 1);
    assert_eq!(c["rate_limited"], 2);
}

#[test]
fn connect_variables_take_precedence_and_are_refused() {
    let sim = Sim::new();
    let token = sim.sa_token("ci");
    let env = [
        ("OP_SERVICE_ACCOUNT_TOKEN", token.as_str()),
        ("OP_CONNECT_HOST", "http://localhost:8080"),
        ("OP_CONNECT_TOKEN", "x"),
    ];
    let r = sim.op_with(&["vault", "list"], &env, None);
    assert!(r.error().contains("does not simulate 1Password Connect"));
}

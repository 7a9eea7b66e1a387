//! References, `op read`, item lookups, `op inject` and `op run` (docs/op-behaviour.md "What the simulator must reproduce"
//! items 5–10).

mod common;

use common::*;

/// A simulator with `my` signed in; returns it and the session env pair.
fn signed_in() -> (Sim, (String, String)) {
    let sim = Sim::new();
    let session = sim.signin("my", MY_PASSWORD);
    (sim, session)
}

fn op(sim: &Sim, s: &(String, String), args: &[&str]) -> Run {
    sim.op_with(args, &[(&s.0, &s.1)], None)
}

#[test]
fn read_prints_value_and_newline_or_not() {
    let (sim, s) = signed_in();
    assert_eq!(
        op(&sim, &s, &["read", "op://Dev/Stripe/key"]).ok(),
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc\n"
    );
    assert_eq!(
        op(&sim, &s, &["read", "-n", "op://dev/STRIPE/Key"]).ok(),
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
    );
    assert_eq!(
        op(&sim, &s, &["read", "op://Dev/Database/password"]).ok(),
        "p@ss w0rd $HOME \"dq\" 'sq' #hash `tick` \\back\n"
    );
    // By ID, and attributes.
    let items: serde_json::Value = serde_json::from_str(
        op(
            &sim,
            &s,
            &["item", "list", "--vault", "Dev", "--format", "json"],
        )
        .ok(),
    )
    .unwrap();
    let stripe = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == "Stripe")
        .unwrap();
    let (vid, iid) = (
        stripe["vault"]["id"].as_str().unwrap(),
        stripe["id"].as_str().unwrap(),
    );
    assert_eq!(
        op(&sim, &s, &["read", &format!("op://{vid}/{iid}/key")]).ok(),
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc\n"
    );
    assert_eq!(
        op(&sim, &s, &["read", "op://Dev/Stripe/key?attribute=type"]).ok(),
        "concealed\n"
    );
    assert_eq!(
        op(&sim, &s, &["read", "op://Dev/Stripe/username?attr=purpose"]).ok(),
        "username\n"
    );
    assert_eq!(
        op(
            &sim,
            &s,
            &["read", "op://Dev/TLS Cert/key.pem?attribute=name"]
        )
        .ok(),
        "key.pem\n"
    );
    let otp = op(
        &sim,
        &s,
        &[
            "read",
            "op://Dev/GitHub/Security/one-time password?attribute=otp",
        ],
    );
    let code = otp.ok().trim_end();
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
}

#[test]
fn read_out_file_mode_and_force() {
    let (sim, s) = signed_in();
    let path = sim.home.path().join("secret.txt");
    let p = path.to_str().unwrap();
    assert_eq!(
        op(&sim, &s, &["read", "op://Dev/Stripe/key", "--out-file", p]).ok(),
        format!("{p}\n")
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
    );
    op(&sim, &s, &["read", "-o", p, "op://Dev/Stripe/key"]).error();
    op(
        &sim,
        &s,
        &[
            "read",
            "-f",
            "-o",
            p,
            "--file-mode=0640",
            "op://Prod/Stripe/key",
        ],
    )
    .ok();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "sk_live_51ProdOnlyKeyDoNotLeak9"
    );
}

#[test]
fn read_errors_are_worded_like_op() {
    let (sim, s) = signed_in();
    let cases = [
        (
            "op://Nope/Stripe/key",
            "could not read secret 'op://Nope/Stripe/key': \"Nope\" isn't a vault in this account",
        ),
        (
            "op://Dev/nope/password",
            "could not read secret 'op://Dev/nope/password': could not get item Dev/nope: \"nope\" isn't an item in the \"Dev\" vault. Specify the item with its UUID, name, or domain.",
        ),
        (
            "op://Dev/Stripe/nope",
            "could not read secret 'op://Dev/Stripe/nope': item 'Dev/Stripe' does not have a field 'nope'",
        ),
        (
            "op://For Chang's Claude/item/credential",
            "invalid secret reference 'op://For Chang's Claude/item/credential': invalid character in secret reference: '''",
        ),
        (
            "op://a/b/c/d/e",
            "invalid secret reference 'op://a/b/c/d/e': too many '/': secret references should match op://<vault>/<item>[/<section>]/<field>",
        ),
    ];
    for (reference, message) in cases {
        assert_eq!(op(&sim, &s, &["read", reference]).error(), message);
    }
    let r = op(&sim, &s, &["read", "op://Dev/Deploy Key/password"]);
    let msg = r.error();
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(
        lines[0],
        "could not read secret 'op://Dev/Deploy Key/password': More than one item matches \"Deploy Key\". Try again and specify the item by its ID: "
    );
    assert_eq!(lines.len(), 3);
    assert!(lines[1].starts_with("\t* for the item \"Deploy Key\" in vault Dev: "));
}

#[test]
fn archived_items_need_an_id_or_include_archive() {
    let (sim, s) = signed_in();
    let r = op(&sim, &s, &["item", "get", "Old API Key", "--vault", "Dev"]);
    assert_eq!(
        r.error(),
        "\"Old API Key\" isn't an item in the \"Dev\" vault. Specify the item with its UUID, name, or domain."
    );
    let r = op(
        &sim,
        &s,
        &[
            "item",
            "get",
            "Old API Key",
            "--include-archive",
            "--format",
            "json",
        ],
    );
    let item: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    let id = item["id"].as_str().unwrap().to_string();
    op(&sim, &s, &["item", "get", &id]).ok();
    assert!(!op(&sim, &s, &["item", "list"]).ok().contains("Old API Key"));
    assert!(
        op(&sim, &s, &["item", "list", "--include-archive"])
            .ok()
            .contains("Old API Key")
    );
    let r = op(&sim, &s, &["item", "get", "nothing"]);
    assert_eq!(
        r.error(),
        "\"nothing\" isn't an item. Specify the item with its UUID, name, or domain."
    );
    let r = op(&sim, &s, &["item", "get", "x", "--vault", "Nope"]);
    assert_eq!(
        r.error(),
        "\"Nope\" isn't a vault in this account. Specify the vault with its ID or name."
    );
}

#[test]
fn item_json_shape_and_fields() {
    let (sim, s) = signed_in();
    let r = op(&sim, &s, &["item", "get", "GitHub", "--format", "json"]);
    let item: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    for key in [
        "id",
        "title",
        "version",
        "vault",
        "category",
        "last_edited_by",
        "created_at",
        "updated_at",
        "fields",
        "sections",
    ] {
        assert!(item.get(key).is_some(), "{key}");
    }
    let fields = item["fields"].as_array().unwrap();
    assert!(fields.iter().all(|f| {
        f["reference"]
            .as_str()
            .unwrap()
            .starts_with("op://Dev/GitHub/")
    }));
    let otp = fields.iter().find(|f| f["type"] == "OTP").unwrap();
    assert_eq!(
        otp["reference"],
        "op://Dev/GitHub/Security/one-time password"
    );
    assert_eq!(otp["section"]["label"], "Security");
    assert_eq!(otp["totp"].as_str().unwrap().len(), 6);
    let r = op(
        &sim,
        &s,
        &[
            "item", "get", "GitHub", "--fields", "type=otp", "--format", "json",
        ],
    );
    let one: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    assert!(one.is_object() && one["totp"].is_string());
    let r = op(
        &sim,
        &s,
        &[
            "item",
            "get",
            "GitHub",
            "--fields",
            "label=username,label=password",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(r.ok())
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Empty fields omit "value".
    let r = op(
        &sim,
        &s,
        &[
            "item",
            "create",
            "--category",
            "login",
            "--title",
            "Blank",
            "--vault",
            "Dev",
            "username=",
            "--format",
            "json",
        ],
    );
    let created: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    assert!(created["fields"][0].get("value").is_none());
}

#[test]
fn human_item_get_conceals_unless_revealed() {
    let (sim, s) = signed_in();
    let r = op(&sim, &s, &["item", "get", "Stripe", "--vault", "Dev"]);
    let out = r.ok();
    let id = out
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(out.starts_with("ID:          "));
    assert!(
        out.contains(&format!(
            "  key:            [use 'op item get {id} --reveal' to reveal]\n"
        )),
        "{out}"
    );
    assert!(!out.contains("sk_test"));
    let r = op(
        &sim,
        &s,
        &["item", "get", "Stripe", "--vault", "Dev", "--reveal"],
    );
    assert!(r.ok().contains("sk_test_4eC39HqLyjWDarjtT1zdp7dc"));
    let r = op(
        &sim,
        &s,
        &[
            "item",
            "get",
            "Stripe",
            "--vault",
            "Dev",
            "--fields",
            "username,key",
        ],
    );
    assert_eq!(
        r.ok(),
        format!("stripe-dev@example.com,[use 'op item get {id} --reveal' to reveal]\n")
    );
    let otp = op(&sim, &s, &["item", "get", "GitHub", "--otp"]);
    assert_eq!(otp.ok().trim_end().len(), 6);
}

#[test]
fn item_create_edit_delete_round_trip() {
    let (sim, s) = signed_in();
    op(
        &sim,
        &s,
        &[
            "item",
            "create",
            "--category=login",
            "--title",
            "New",
            "--vault",
            "Dev",
            "username=bob",
            "password=pw1",
            "Extra.api key[password]=xyz",
        ],
    )
    .ok();
    assert_eq!(
        op(&sim, &s, &["read", "op://Dev/New/Extra/api key"]).ok(),
        "xyz\n"
    );
    op(
        &sim,
        &s,
        &[
            "item",
            "edit",
            "New",
            "--vault",
            "Dev",
            "password=pw2",
            "--title",
            "Newer",
        ],
    )
    .ok();
    assert_eq!(
        op(&sim, &s, &["read", "op://Dev/Newer/password"]).ok(),
        "pw2\n"
    );
    op(
        &sim,
        &s,
        &["item", "delete", "Newer", "--vault", "Dev", "--archive"],
    )
    .ok();
    op(&sim, &s, &["read", "op://Dev/Newer/password"]).error();
    let r = op(
        &sim,
        &s,
        &[
            "item",
            "create",
            "--category",
            "password",
            "--generate-password=20,letters",
            "--format",
            "json",
        ],
    );
    let created: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    assert_eq!(created["vault"]["name"], "Private");
    assert_eq!(created["fields"][0]["value"].as_str().unwrap().len(), 20);
}

#[test]
fn vault_list_and_get() {
    let (sim, s) = signed_in();
    let r = op(&sim, &s, &["vault", "list", "--format", "json"]);
    let vaults: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    assert_eq!(vaults.as_array().unwrap().len(), 3);
    assert!(vaults[0]["content_version"].is_u64());
    let human = op(&sim, &s, &["vault", "list"]);
    assert!(
        human
            .ok()
            .starts_with("ID                            NAME\n")
    );
    let r = op(&sim, &s, &["vault", "get", "prod", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(r.ok()).unwrap();
    assert_eq!(v["name"], "Prod");
    assert_eq!(v["items"], 2);
    assert_eq!(v["type"], "USER_CREATED");
}

#[test]
fn inject_templates_and_no_partial_output() {
    let (sim, s) = signed_in();
    let env = [(s.0.as_str(), s.1.as_str()), ("APP_ENV", "Prod")];
    let template = "a: {{ op://Dev/Stripe/key }}\nb: op://Dev/Database/host end\nc: {{op://$APP_ENV/Stripe/key}}\nd: {{ \"{{ op://literal/x/y }}\" }}\n";
    let r = sim.op_with(&["inject"], &env, Some(template));
    assert_eq!(
        r.ok(),
        "a: sk_test_4eC39HqLyjWDarjtT1zdp7dc\nb: db.dev.example.com end\nc: sk_live_51ProdOnlyKeyDoNotLeak9\nd: {{ op://literal/x/y }}\n"
    );
    let tpl = sim.home.path().join("t.tpl");
    std::fs::write(
        &tpl,
        "x={{ op://Dev/Stripe/key }}\ny={{ op://Dev/Nope/key }}\n",
    )
    .unwrap();
    let out = sim.home.path().join("out.env");
    let r = sim.op_with(
        &[
            "inject",
            "-i",
            tpl.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &env,
        None,
    );
    assert!(
        r.error()
            .starts_with("could not read secret 'op://Dev/Nope/key': ")
    );
    assert!(!out.exists(), "no partial output");
    std::fs::write(&tpl, "x={{ op://Dev/Stripe/key }}\n").unwrap();
    sim.op_with(
        &[
            "inject",
            "--in-file",
            tpl.to_str().unwrap(),
            "--out-file",
            out.to_str().unwrap(),
        ],
        &env,
        None,
    )
    .ok();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "x=sk_test_4eC39HqLyjWDarjtT1zdp7dc\n"
    );
}

#[test]
fn run_resolves_masks_and_propagates_exit_status() {
    let (sim, s) = signed_in();
    let envfile = sim.home.path().join(".env");
    std::fs::write(
        &envfile,
        "STRIPE=op://Dev/Stripe/key\n# comment\nPLAIN=hello # inline\n",
    )
    .unwrap();
    let override_file = sim.home.path().join(".env.local");
    std::fs::write(
        &override_file,
        "PLAIN='from file two'\nDB=\"op://Dev/Database/password\"\n",
    )
    .unwrap();
    let ef1 = format!("--env-file={}", envfile.display());
    let ef2 = override_file.to_str().unwrap();
    let env = [
        (s.0.as_str(), s.1.as_str()),
        ("PLAIN", "from shell"),
        ("DIRECT", "op://Prod/Stripe/key"),
    ];
    let script = "echo \"$STRIPE|$PLAIN|$DIRECT\"; printf 'err %s\\n' \"$DB\" >&2; exit 7";
    let r = sim.op_with(
        &["run", &ef1, "--env-file", ef2, "--", "sh", "-c", script],
        &env,
        None,
    );
    assert_eq!(r.code, 7);
    assert_eq!(
        r.stdout,
        "<concealed by 1Password>|from file two|<concealed by 1Password>\n"
    );
    assert_eq!(r.stderr, "err <concealed by 1Password>\n");
    let r = sim.op_with(
        &[
            "run",
            "--no-masking",
            &ef1,
            "--",
            "sh",
            "-c",
            "echo $STRIPE",
        ],
        &env,
        None,
    );
    assert_eq!(r.ok(), "sk_test_4eC39HqLyjWDarjtT1zdp7dc\n");
    let mut env2 = env.to_vec();
    env2.push(("OP_RUN_NO_MASKING", "true"));
    let r = sim.op_with(&["run", "--", "printenv", "DIRECT"], &env2, None);
    assert_eq!(r.ok(), "sk_live_51ProdOnlyKeyDoNotLeak9\n");
    // A failing reference: the child never starts.
    let marker = sim.home.path().join("started");
    let env3 = [(s.0.as_str(), s.1.as_str()), ("BAD", "op://Dev/Nope/key")];
    let r = sim.op_with(
        &["run", "--", "touch", marker.to_str().unwrap()],
        &env3,
        None,
    );
    assert!(
        r.error()
            .starts_with("could not read secret 'op://Dev/Nope/key'")
    );
    assert!(!marker.exists());
}

#[test]
fn run_forwards_sigterm_to_the_child() {
    let (sim, s) = signed_in();
    let mut cmd = sim.command(OP);
    cmd.args([
        "run",
        "--",
        "sh",
        "-c",
        "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done",
    ])
    .env(&s.0, &s.1)
    .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(rest, "got-term\n");
    assert_eq!(status.code(), Some(42));
}

//! Issue 12: `op-session mcp`, an MCP server that shares the daemon's session and is opaque by
//! default. Driven with rmcp's own client, over stdio and over Streamable HTTP, against
//! fake-op: every tool, every result and notification scanned for the fixture's secrets,
//! policy and `run_allow` refusals, a missing session, HTTP without the bearer token or with
//! a foreign Origin, malformed JSON-RPC, and the server still serving after each.

// Logging notifications are deprecated in the current spec; a server may still send them, so
// the recorder still listens.
#![allow(clippy::unwrap_used, clippy::expect_used, deprecated)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use op_session_e2e::{World, bins, detach_from_terminal};
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, CustomNotification, Implementation,
    LoggingMessageNotificationParam, ProgressNotificationParam, ResourceUpdatedNotificationParam,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

const MY_PASSWORD: &[u8] = b"correct horse battery staple\n";
const STRIPE: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
const DB_PASSWORD: &str = "p@ss w0rd $HOME \"dq\" 'sq' #hash `tick` \\back";
const ACK: &str = "I_UNDERSTAND_THIS_RETURNS_SECRET_PLAINTEXT";
const CONCEALED: &str = "<concealed by 1Password>";

/// Every CONCEALED and OTP value in the fixture (and the account password).
fn fixture_secrets() -> Vec<String> {
    let text = std::fs::read_to_string(op_session_e2e::fixture("basic.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                let secret_type = m
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t == "CONCEALED" || t == "OTP");
                if secret_type && let Some(s) = m.get("value").and_then(Value::as_str) {
                    out.push(s.to_string());
                }
                if let Some(p) = m.get("password").and_then(Value::as_str) {
                    out.push(p.to_string());
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&v, &mut out);
    assert!(out.iter().any(|s| s == STRIPE), "fixture changed");
    out
}

fn assert_opaque(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        // Report which one by position only: never print a secret.
        assert!(
            !text.contains(s.as_str()),
            "{what}: a fixture secret (#{} of {}) leaked",
            secrets.iter().position(|x| x == s).unwrap_or(0),
            secrets.len()
        );
    }
}

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

/// Records every notification the server sends, as JSON.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn push(&self, v: impl serde::Serialize) {
        self.seen
            .lock()
            .unwrap()
            .push(serde_json::to_string(&v).unwrap());
    }
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("e2e-agent", "1.0.0"),
        )
    }
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.push(params);
    }
    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.push(params);
    }
    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.push(params);
    }
    async fn on_custom_notification(
        &self,
        n: CustomNotification,
        _: NotificationContext<RoleClient>,
    ) {
        self.push(json!({"method": n.method, "params": n.params}));
    }
}

type Client = RunningService<RoleClient, Recorder>;

/// One tool result: whether it is an error, its text and its structured content.
#[derive(Debug)]
struct Res {
    is_error: bool,
    text: String,
    json: Value,
}

/// Collects every result, for the opaqueness scan.
#[derive(Default)]
struct Session {
    transcript: Vec<String>,
}

impl Session {
    async fn call(&mut self, c: &Client, name: &str, args: Value) -> Res {
        let params = CallToolRequestParams::new(name.to_string())
            .with_arguments(args.as_object().cloned().unwrap());
        let r = within(name, c.call_tool(params))
            .await
            .expect("a tool result, not a protocol error");
        let text: String = r
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect::<Vec<_>>()
            .join("\n");
        self.transcript.push(serde_json::to_string(&r).unwrap());
        Res {
            is_error: r.is_error.unwrap_or(false),
            text,
            json: r.structured_content.unwrap_or(Value::Null),
        }
    }
}

/// `f`, or a panic naming `what` once the test deadline has passed: no wait on the server is
/// open-ended.
async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(op_session_e2e::DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {:?}", op_session_e2e::DEADLINE))
}

fn mcp_command(w: &World, args: &[&str]) -> Command {
    // Tests start the daemon explicitly (auto-start would read no config of this world's).
    if !args.contains(&"--print-config") {
        w.start_daemon();
    }
    let mut c = Command::new(&bins().client);
    c.arg("mcp")
        .args(args)
        .env_clear()
        .envs(w.env())
        // The world's root: the default `[mcp] roots` (templates, outputs, env files live there).
        .current_dir(w.dir.path());
    detach_from_terminal(&mut c);
    c
}

/// `op-session mcp` over stdio, with everything it writes to stdout also kept in `tee`.
async fn stdio_client(w: &World, tee: &Path) -> (Client, Recorder) {
    w.start_daemon();
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("\"$0\" mcp | tee \"$1\"")
        .arg(&bins().client)
        .arg(tee)
        .env_clear()
        .envs(w.env())
        // The world's root: the default `[mcp] roots` (templates, outputs, env files live there).
        .current_dir(w.dir.path());
    detach_from_terminal(&mut c);
    let transport =
        rmcp::transport::TokioChildProcess::new(tokio::process::Command::from(c)).unwrap();
    let rec = Recorder::default();
    let client = within("initialize", rec.clone().serve(transport))
        .await
        .expect("initializes");
    (client, rec)
}

fn audit_lines(w: &World) -> Vec<Value> {
    let p = w.state.join("op-session/audit.jsonl");
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The audit log once `done` holds for it (lines are written just after each response is
/// sent), or as it is after five seconds.
fn audit_when(w: &World, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut lines = audit_lines(w);
    op_session_e2e::wait_until(Duration::from_secs(5), || {
        lines = audit_lines(w);
        done(&lines)
    });
    lines
}

fn fake_state(w: &World) -> Value {
    serde_json::from_str(&w.ctl(&["state"])).unwrap()
}

/// The value of `field` in the first item titled `title` in fake-op's state.
/// Values the MCP suite writes into fields: they must reach `op` only on its stdin.
const FIELD_VALUES: [&str; 2] = ["mcp-field-value-7731", "mcp-edited-value-4410"];

fn stored_value(w: &World, title: &str, field: &str) -> Option<String> {
    let state = fake_state(w);
    let mut found = None;
    fn walk(v: &Value, title: &str, field: &str, found: &mut Option<String>) {
        match v {
            Value::Object(m) => {
                if m.get("title").and_then(Value::as_str) == Some(title)
                    && let Some(fields) = m.get("fields").and_then(Value::as_array)
                {
                    for f in fields {
                        if f.get("label").and_then(Value::as_str) == Some(field) {
                            *found = f.get("value").and_then(Value::as_str).map(str::to_string);
                        }
                    }
                }
                m.values().for_each(|x| walk(x, title, field, found));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, title, field, found)),
            _ => {}
        }
    }
    walk(&state, title, field, &mut found);
    found
}

const FULL_CONFIG: &str =
    "[policy]\nallow_destructive = true\n[mcp]\nrun_allow = [\"/bin/*\", \"/usr/bin/*\"]\n";

/// Every tool, with the checks that hold whichever transport carries them. Returns the
/// generated password of the item it created (to scan for it).
async fn exercise_every_tool(w: &World, c: &Client, s: &mut Session) -> String {
    let tools = within("tools/list", c.list_all_tools()).await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for want in [
        "status",
        "list_vaults",
        "list_items",
        "get_item",
        "check_reference",
        "run",
        "inject",
        "read_secret",
        "create_item",
        "edit_item",
        "delete_item",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for t in &tools {
        let a = t.annotations.as_ref().expect("annotations");
        assert!(
            a.read_only_hint.is_some() && a.destructive_hint.is_some(),
            "{}",
            t.name
        );
        assert!(t.description.as_ref().is_some_and(|d| !d.contains('\n')));
        assert_eq!(
            t.input_schema.get("type"),
            Some(&json!("object")),
            "{}",
            t.name
        );
    }
    let delete = tools.iter().find(|t| t.name == "delete_item").unwrap();
    assert_eq!(
        delete.annotations.as_ref().unwrap().destructive_hint,
        Some(true)
    );
    let get = tools.iter().find(|t| t.name == "get_item").unwrap();
    assert_eq!(get.annotations.as_ref().unwrap().read_only_hint, Some(true));

    let r = s.call(c, "status", json!({})).await;
    assert!(!r.is_error, "{}", r.text);
    assert_eq!(r.json["sessions"][0]["account"], "my", "{}", r.text);

    let r = s.call(c, "list_vaults", json!({})).await;
    assert!(!r.is_error, "{}", r.text);
    let vaults: Vec<&str> = r.json["vaults"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(
        vaults.contains(&"Dev") && vaults.contains(&"Prod"),
        "{vaults:?}"
    );

    let r = s.call(c, "list_items", json!({"vault": "Dev"})).await;
    assert!(!r.is_error, "{}", r.text);
    assert!(
        r.text.contains("Stripe") && r.text.contains("GitHub"),
        "{}",
        r.text
    );

    let r = s
        .call(c, "get_item", json!({"item": "GitHub", "vault": "Dev"}))
        .await;
    assert!(!r.is_error, "{}", r.text);
    let fields = r.json["fields"].as_array().unwrap();
    let pw = fields.iter().find(|f| f["label"] == "password").unwrap();
    assert_eq!(pw["value"], CONCEALED, "{pw}");
    assert_eq!(pw["type"], "CONCEALED");
    assert!(
        pw["reference"]
            .as_str()
            .unwrap()
            .starts_with("op://Dev/GitHub/"),
        "{pw}"
    );
    let user = fields.iter().find(|f| f["label"] == "username").unwrap();
    assert_eq!(user["value"], "wendy-appleseed");
    assert!(
        r.text.contains("Security"),
        "sections are shown: {}",
        r.text
    );

    let r = s
        .call(
            c,
            "check_reference",
            json!({"reference": "op://Dev/Stripe/key"}),
        )
        .await;
    assert!(!r.is_error, "{}", r.text);
    assert_eq!(r.json["resolves"], true);
    assert_eq!(r.json["vault"], "Dev");
    assert_eq!(r.json["item"], "Stripe");
    assert_eq!(r.json["field"], "key");
    assert_eq!(r.json["type"], "CONCEALED", "{}", r.text);
    let r = s
        .call(
            c,
            "check_reference",
            json!({"reference": "op://Dev/Stripe/key"}),
        )
        .await;
    assert_eq!(r.json["cached"], true, "{}", r.text);
    let r = s
        .call(
            c,
            "check_reference",
            json!({"reference": "op://Dev/Nope/key"}),
        )
        .await;
    // Answered, not failed: it does not resolve, and why (op's own words).
    assert!(!r.is_error, "{}", r.text);
    assert_eq!(r.json["resolves"], false, "{}", r.text);
    assert_eq!(r.json["reference"], "op://Dev/Nope/key");
    assert!(
        r.json["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("Nope"),
        "{}",
        r.text
    );

    let r = s
        .call(
            c,
            "run",
            json!({
                "command": ["sh", "-c", "printf 'out:%s\\n' \"$STRIPE\"; printf 'err:%s\\n' \"$DB\" >&2; exit 3"],
                "env": {"STRIPE": "op://Dev/Stripe/key", "DB": "op://Dev/Database/password"},
            }),
        )
        .await;
    assert!(!r.is_error, "{}", r.text);
    assert_eq!(r.json["exit_code"], 3);
    // Compared without printing: on failure these would hold the values.
    assert!(
        r.json["stdout"] == format!("out:{CONCEALED}\n"),
        "stdout not masked"
    );
    assert!(
        r.json["stderr"] == format!("err:{CONCEALED}\n"),
        "stderr not masked"
    );
    assert_eq!(r.json["references"], 2);

    // The value really reached the child: it can use it, it just cannot show it.
    let r = s
        .call(
            c,
            "run",
            json!({
                "command": ["sh", "-c", "test \"$STRIPE\" = \"$WANT\" && echo same"],
                "env": {"STRIPE": "op://Dev/Stripe/key"},
            }),
        )
        .await;
    // WANT is unset, so the comparison fails: the exit code is the child's.
    assert_eq!(r.json["exit_code"], 1, "{}", r.text);

    let envfile = w.dir.path().join("app.env");
    std::fs::write(&envfile, "GH=op://Dev/GitHub/password\n").unwrap();
    let r = s
        .call(
            c,
            "run",
            json!({
                "command": ["sh", "-c", "printf %s \"$GH\" | wc -c"],
                "env_files": [envfile.display().to_string()],
                "cwd": w.dir.path().display().to_string(),
            }),
        )
        .await;
    assert_eq!(
        r.json["stdout"].as_str().unwrap().trim(),
        "16",
        "{}",
        r.text
    );

    let r = s
        .call(
            c,
            "run",
            json!({"command": ["sh", "-c", "head -c 1100000 /dev/zero | tr '\\0' a; echo big >&2"]}),
        )
        .await;
    assert_eq!(r.json["stdout"].as_str().unwrap().len(), 1024 * 1024);
    assert!(
        r.text.contains("stdout was cut at 1 MiB"),
        "{}",
        &r.text[r.text.len() - 300..]
    );

    let started = Instant::now();
    let r = s
        .call(
            c,
            "run",
            json!({"command": ["sh", "-c", "sleep 30 & sleep 30"], "timeout_s": 1}),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout killed the group"
    );
    assert_eq!(r.json["timed_out"], true, "{}", r.text);
    assert!(r.json["exit_code"].as_i64().unwrap() >= 128, "{}", r.text);

    let tpl = w.dir.path().join("db.tpl");
    let out = w.dir.path().join("db.conf");
    std::fs::write(
        &tpl,
        "password = {{ op://Dev/Database/password }}\nuser = dbadmin\n",
    )
    .unwrap();
    let r = s
        .call(
            c,
            "inject",
            json!({"template_path": tpl.display().to_string(), "output_path": out.display().to_string()}),
        )
        .await;
    assert!(!r.is_error, "{}", r.text);
    assert_eq!(r.json["references"], 1);
    assert_eq!(r.json["path"], out.display().to_string());
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.contains(DB_PASSWORD), "the file has the value");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let r = s
        .call(
            c,
            "inject",
            json!({"template_path": tpl.display().to_string(), "output_path": out.display().to_string()}),
        )
        .await;
    assert!(r.is_error && r.text.contains("overwrite"), "{}", r.text);

    let r = s
        .call(
            c,
            "read_secret",
            json!({"reference": "op://Dev/Stripe/key", "acknowledge": ACK}),
        )
        .await;
    assert!(r.is_error, "reveal is off by default: {}", r.text);
    assert!(r.text.contains("reveal = false"), "{}", r.text);

    let title = format!("CI Token {}", std::process::id());
    let r = s
        .call(
            c,
            "create_item",
            json!({"vault": "Dev", "title": title, "category": "Login",
                   "fields": ["username=ci-bot", format!("Deploy.api key[password]={}", FIELD_VALUES[0])]}),
        )
        .await;
    assert!(!r.is_error, "{}", r.text);
    // The value reached op (on its stdin, as a template: see the argv scan below).
    assert_eq!(
        stored_value(w, &title, "api key").as_deref(),
        Some(FIELD_VALUES[0])
    );
    assert!(!r.text.contains(FIELD_VALUES[0]), "{}", r.text);
    let generated = stored_value(w, &title, "password").expect("a generated password");
    assert!(generated.len() >= 8);
    assert!(
        !r.text.contains(&generated),
        "the generated password came back"
    );
    assert!(r.text.contains(CONCEALED), "{}", r.text);

    let r = s
        .call(
            c,
            "edit_item",
            json!({"item": title, "vault": "Dev",
                   "fields": ["username=ci-bot-2", format!("Deploy.api key={}", FIELD_VALUES[1])]}),
        )
        .await;
    assert!(!r.is_error, "{}", r.text);
    assert!(r.text.contains("ci-bot-2"), "{}", r.text);
    assert_eq!(
        stored_value(w, &title, "api key").as_deref(),
        Some(FIELD_VALUES[1])
    );
    // The edit kept what it did not name: the generated password is still there.
    assert_eq!(stored_value(w, &title, "password"), Some(generated.clone()));
    // A write drops the account's cached values, so nothing stale is served after it.
    let r = s
        .call(
            c,
            "check_reference",
            json!({"reference": "op://Dev/Stripe/key"}),
        )
        .await;
    assert_eq!(r.json["cached"], false, "{}", r.text);

    let r = s
        .call(c, "delete_item", json!({"item": title, "vault": "Dev"}))
        .await;
    assert!(!r.is_error, "{}", r.text);
    assert!(stored_value(w, &title, "username").is_none(), "deleted");

    // Unknown tools are protocol errors; bad arguments are tool errors. Both keep serving.
    let bad = within(
        "no_such_tool",
        c.call_tool(CallToolRequestParams::new("no_such_tool")),
    )
    .await;
    assert!(bad.is_err());
    let r = s.call(c, "get_item", json!({"itme": "typo"})).await;
    assert!(
        r.is_error && r.text.contains("invalid arguments"),
        "{}",
        r.text
    );
    let r = s.call(c, "status", json!({})).await;
    assert!(!r.is_error, "still serving: {}", r.text);
    generated
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_every_tool_works_and_nothing_secret_reaches_the_transcript() {
    let w = world(FULL_CONFIG);
    let tee = w.dir.path().join("mcp-stdout.log");
    let (client, rec) = stdio_client(&w, &tee).await;
    let mut s = Session::default();
    let generated = exercise_every_tool(&w, &client, &mut s).await;
    within("cancel", client.cancel()).await.unwrap();

    let mut secrets = fixture_secrets();
    secrets.push(generated);
    for (i, t) in s.transcript.iter().enumerate() {
        assert_opaque(&format!("result {i}"), t, &secrets);
    }
    for (i, n) in rec.seen.lock().unwrap().iter().enumerate() {
        assert_opaque(&format!("notification {i}"), n, &secrets);
    }
    // Everything the server wrote to stdout, byte for byte (results, notifications, errors).
    let wire = std::fs::read_to_string(&tee).unwrap();
    assert!(wire.contains("check_reference") || wire.contains("\"resolves\""));
    assert_opaque("the stdio stream", &wire, &secrets);

    // The audit says who relayed each call, and which client.
    let audit = audit_when(&w, |a| a.iter().any(|l| l["verb"] == "op item delete"));
    let via: Vec<&Value> = audit.iter().filter(|l| l["via"] == "mcp").collect();
    assert!(via.len() >= 10, "{audit:?}");
    assert!(
        via.iter().all(|l| l["client_name"] == "e2e-agent"),
        "{via:?}"
    );
    for verb in [
        "check",
        "run",
        "inject",
        "op item get",
        "op item create",
        "op item delete",
    ] {
        assert!(
            via.iter().any(|l| l["verb"] == verb),
            "no audit line for {verb}"
        );
    }
    let text = std::fs::read_to_string(w.state.join("op-session/audit.jsonl")).unwrap();
    assert_opaque("the audit log", &text, &secrets);
    // The MCP process never saw a token: apart from `op-session init`'s own sign-in, fake-op
    // was only ever run by the daemon.
    let daemon = w.daemon_pid().unwrap();
    let calls = w.calls();
    assert!(calls.len() > 5);
    assert!(
        calls
            .iter()
            .filter(|c| c["command"] != "signin")
            .all(|c| c["ppid"] == daemon),
        "op ran outside the daemon"
    );
    assert!(
        calls.iter().all(|c| c["secret_in_argv"] == false),
        "a secret on op's argv"
    );
    // No value on any argv: every op command line fake-op logged during the suite, scanned for
    // the values the tools wrote and every secret of the fixture.
    let mut values: Vec<String> = FIELD_VALUES.iter().map(|v| v.to_string()).collect();
    values.extend(secrets.iter().cloned());
    for c in &calls {
        let argv = c["argv"].to_string();
        for v in &values {
            assert!(!argv.contains(v.as_str()), "{v:?} on op's argv: {argv}");
        }
    }
    assert!(
        calls
            .iter()
            .any(|c| c["command"] == "item create" && c["argv"].to_string().contains("\"-\"")),
        "create_item passes its template on stdin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_secret_needs_reveal_in_config_and_the_acknowledgement() {
    let w = world("[mcp]\nreveal = true\n");
    let tee = w.dir.path().join("mcp-stdout.log");
    let (c, _) = stdio_client(&w, &tee).await;
    let mut s = Session::default();
    let r = s
        .call(
            &c,
            "read_secret",
            json!({"reference": "op://Dev/Stripe/key"}),
        )
        .await;
    assert!(r.is_error && r.text.contains(ACK), "{}", r.text);
    let r = s
        .call(
            &c,
            "read_secret",
            json!({"reference": "op://Dev/Stripe/key", "acknowledge": "yes"}),
        )
        .await;
    assert!(r.is_error, "{}", r.text);
    let r = s
        .call(
            &c,
            "read_secret",
            json!({"reference": "op://Dev/Stripe/key", "acknowledge": ACK}),
        )
        .await;
    assert!(!r.is_error, "{}", r.text);
    assert_eq!(r.json["value"], STRIPE);
    // run_allow is empty: run is refused, naming the rule, and nothing ran.
    let r = s.call(&c, "run", json!({"command": ["true"]})).await;
    assert!(r.is_error && r.text.contains("run_allow"), "{}", r.text);
    within("cancel", c.cancel()).await.unwrap();
    let audit = audit_when(&w, |a| a.iter().any(|l| l["verb"] == "run"));
    let reveals: Vec<&Value> = audit.iter().filter(|l| l["reveal"] == true).collect();
    assert_eq!(reveals.len(), 1, "{audit:?}");
    assert_eq!(reveals[0]["via"], "mcp");
    assert_eq!(reveals[0]["references"], json!(["op://Dev/Stripe/key"]));
    // `op-session audit` shows it to the person too.
    let out = w.run(&["audit", "-n", "50"]);
    assert!(
        out.stdout.contains("[via mcp: e2e-agent] [value revealed]"),
        "{}",
        out.stdout
    );
    assert_opaque("op-session audit", &out.stdout, &fixture_secrets());
}

/// The MCP `run` masks what `op-session run` masks: a value the command prints encoded (base64,
/// wrapped or not, and hex) comes back concealed, since the model's transcript is what masking
/// protects. With exact-only masking each of these would reach the transcript.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_masks_encoded_forms_of_values_as_op_session_run_does() {
    let w = world(FULL_CONFIG);
    let tee = w.dir.path().join("mcp-stdout.log");
    let (c, _) = stdio_client(&w, &tee).await;
    let mut s = Session::default();
    for (form, script) in [
        ("base64", r#"printf %s "$X" | base64"#),
        ("base64 -w 20", r#"printf %s "$X" | base64 -w 20"#),
        ("hex", r#"printf %s "$X" | od -An -v -tx1 | tr -d ' \n'"#),
    ] {
        let r = s
            .call(
                &c,
                "run",
                json!({"command": ["sh", "-c", script], "env": {"X": "op://Dev/Stripe/key"}}),
            )
            .await;
        assert!(!r.is_error, "{form}: {}", r.text);
        assert_eq!(r.json["exit_code"], 0, "{form}: {}", r.text);
        let stdout = r.json["stdout"].as_str().unwrap_or_default();
        // Compared without printing the output: on failure it would hold the encoded value.
        assert!(
            stdout.contains(CONCEALED),
            "{form}: the encoded value was not masked"
        );
    }
    c.cancel().await.unwrap();
    let encoded = encoded_forms(STRIPE);
    for (i, t) in s.transcript.iter().enumerate() {
        assert_opaque(&format!("result {i}"), &t.replace("\\n", ""), &encoded);
    }
}

/// The value base64-encoded and hex-encoded, as the commands above print them.
fn encoded_forms(value: &str) -> Vec<String> {
    let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in value.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    vec![value.to_string(), hex, b64]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_denials_and_run_allow_refusals_name_their_rule_and_the_server_keeps_serving() {
    let w = world(
        "[policy]\nvaults = [\"Dev\"]\ndeny = [\"item edit\"]\n[mcp]\nrun_allow = [\"/opt/only-this\"]\n",
    );
    let tee = w.dir.path().join("mcp-stdout.log");
    let (c, _) = stdio_client(&w, &tee).await;
    let names: Vec<String> = within("tools/list", c.list_all_tools())
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.contains(&"create_item".to_string()), "{names:?}");
    assert!(
        !names.contains(&"edit_item".to_string()),
        "denied verb offered: {names:?}"
    );
    assert!(
        !names.contains(&"delete_item".to_string()),
        "destructive offered: {names:?}"
    );
    let mut s = Session::default();
    let checks: Vec<(&str, Value, &str)> = vec![
        (
            "get_item",
            json!({"item": "Stripe", "vault": "Prod"}),
            "vault \"Prod\"",
        ),
        ("get_item", json!({"item": "Stripe"}), "rule: vaults"),
        (
            "check_reference",
            json!({"reference": "op://Prod/Stripe/key"}),
            "rule: vaults",
        ),
        ("run", json!({"command": ["true"]}), "run_allow"),
        (
            "run",
            json!({"command": ["sh", "-c", "env"], "env": {"K": "op://Dev/Stripe/key"}}),
            "run_allow",
        ),
        (
            "inject",
            json!({"template_path": "/etc/hostname", "output_path": "relative"}),
            "absolute",
        ),
        (
            "edit_item",
            json!({"item": "Stripe", "vault": "Dev", "title": "x"}),
            "not offered",
        ),
        (
            "delete_item",
            json!({"item": "Stripe", "vault": "Dev"}),
            "not offered",
        ),
    ];
    for (tool, args, says) in checks {
        let r = s.call(&c, tool, args).await;
        assert!(r.is_error, "{tool} should fail: {}", r.text);
        assert!(r.text.contains(says), "{tool}: {}", r.text);
        assert!(r.text.contains("fix:"), "{tool} says the fix: {}", r.text);
        let st = s.call(&c, "status", json!({})).await;
        assert!(!st.is_error, "still serving after {tool}");
    }
    // The list of vaults is the allowed ones only.
    let r = s.call(&c, "list_vaults", json!({})).await;
    let vaults: Vec<&str> = r.json["vaults"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(vaults, ["Dev"]);
    within("cancel", c.cancel()).await.unwrap();
    let audit = audit_when(&w, |a| a.iter().any(|l| l["verb"] == "op vault list"));
    assert!(
        audit
            .iter()
            .any(|l| l["via"] == "mcp" && l["decision"] == "deny" && l["verb"] == "run"),
        "{audit:?}"
    );
}

/// `run_allow` matches as a person wrote it: a rule naming a program through a directory link
/// (as `/bin/sh` on merged /usr) allows it, and a refusal shows the path asked for and its
/// resolved form. The link is made here, so the test holds on any system.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_allow_matches_the_path_a_person_wrote_through_a_directory_link() {
    let base = tempfile::Builder::new().prefix("ra").tempdir().unwrap();
    let real = base.path().join("real-bin");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink("/bin/sh", real.join("sh")).unwrap();
    std::fs::copy("/bin/true", real.join("true")).unwrap();
    let link = base.path().join("bin");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let w = world(&format!("[mcp]\nrun_allow = [\"{}/sh\"]\n", link.display()));
    let tee = w.dir.path().join("mcp-stdout.log");
    let (c, _) = stdio_client(&w, &tee).await;
    let mut s = Session::default();
    // Asked through the link and through the resolved directory: the same rule allows both.
    for program in [link.join("sh"), real.join("sh")] {
        let r = s
            .call(
                &c,
                "run",
                json!({"command": [program.display().to_string(), "-c", "exit 0"]}),
            )
            .await;
        assert!(!r.is_error, "{}: {}", program.display(), r.text);
    }
    let r = s
        .call(
            &c,
            "run",
            json!({"command": [link.join("true").display().to_string()]}),
        )
        .await;
    assert!(r.is_error, "{}", r.text);
    let asked = link.join("true").display().to_string();
    let resolved = real
        .canonicalize()
        .unwrap()
        .join("true")
        .display()
        .to_string();
    assert!(
        r.text.contains(&format!("{asked} (resolved: {resolved})")),
        "{}",
        r.text
    );
    within("cancel", c.cancel()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_session_tools_say_run_init_and_do_not_hang() {
    let w = World::new("[mcp]\nrun_allow = [\"*\"]\n");
    w.load_basic();
    let tee = w.dir.path().join("mcp-stdout.log");
    let (c, _) = stdio_client(&w, &tee).await;
    let mut s = Session::default();
    let started = Instant::now();
    for (tool, args) in [
        (
            "check_reference",
            json!({"reference": "op://Dev/Stripe/key"}),
        ),
        ("get_item", json!({"item": "Stripe", "vault": "Dev"})),
        ("list_vaults", json!({})),
        (
            "run",
            json!({"command": ["true"], "env": {"K": "op://Dev/Stripe/key"}}),
        ),
    ] {
        let r = s.call(&c, tool, args).await;
        assert!(r.is_error, "{tool}: {}", r.text);
        assert!(r.text.contains("op-session init"), "{tool}: {}", r.text);
    }
    let r = s.call(&c, "status", json!({})).await;
    assert!(!r.is_error);
    assert!(r.text.contains("op-session init"), "{}", r.text);
    assert!(started.elapsed() < Duration::from_secs(10));
    within("cancel", c.cancel()).await.unwrap();
}

/// Malformed JSON-RPC on stdio gets an error, and the next request is still answered.
#[test]
fn stdio_malformed_json_rpc_is_answered_and_the_server_keeps_serving() {
    let w = world("");
    let mut child = mcp_command(&w, &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Every read below blocks until the server writes: past the deadline it is killed, and
    // the reads end.
    let _watchdog = op_session_e2e::Watchdog::new(child.id(), op_session_e2e::DEADLINE);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut send = |s: &str| {
        stdin.write_all(s.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    };
    send(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#,
    );
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("\"id\":1"), "{line}");
    send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    send("{this is not json");
    send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/nope"}"#);
    send(
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"status","arguments":{}}}"#,
    );
    let mut answers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !answers.iter().any(|l: &String| l.contains("\"id\":3")) {
        let mut l = String::new();
        if stdout.read_line(&mut l).unwrap() == 0 {
            break;
        }
        answers.push(l);
    }
    let all = answers.join("");
    assert!(
        all.contains("\"id\":2") && all.contains("\"error\""),
        "{all}"
    );
    assert!(
        all.contains("\"id\":3") && all.contains("sessions"),
        "{all}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// A running `op-session mcp --http`, killed on drop.
struct HttpServer {
    child: std::process::Child,
    addr: String,
    token: String,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_server(w: &World) -> HttpServer {
    let token_file = w.config_home.join("op-session/mcp-token");
    let mut child = mcp_command(w, &["--http", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    {
        // The first line (the address) comes once it listens, or never: bounded.
        let _watchdog = op_session_e2e::Watchdog::new(child.id(), op_session_e2e::DEADLINE);
        err.read_line(&mut line).unwrap();
    }
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
    });
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split("/mcp").next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(!line.contains(&token), "the token was printed");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    HttpServer { child, addr, token }
}

/// One raw HTTP/1.1 POST; returns the status code and body.
fn post(addr: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, resp)
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

#[test]
fn http_refuses_missing_or_wrong_bearer_and_foreign_origins_and_keeps_serving() {
    let w = world("");
    let srv = http_server(&w);
    let bearer = format!("Bearer {}", srv.token);
    let wrong = format!("Bearer {}x", srv.token);
    let (code, body) = post(&srv.addr, &[], INIT);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("WWW-Authenticate") || body.to_lowercase().contains("www-authenticate"));
    let (code, _) = post(&srv.addr, &[("Authorization", &wrong)], INIT);
    assert_eq!(code, 401);
    let (code, _) = post(&srv.addr, &[("Authorization", "Basic Zm9vOmJhcg==")], INIT);
    assert_eq!(code, 401);
    let (code, body) = post(
        &srv.addr,
        &[
            ("Authorization", &bearer),
            ("Origin", "http://evil.example"),
        ],
        INIT,
    );
    assert_eq!(code, 403, "{body}");
    let (code, _) = post(&srv.addr, &[("Origin", "http://evil.example")], INIT);
    assert_eq!(
        code, 403,
        "a foreign Origin is refused before the token is even looked at"
    );
    let (code, body) = post(&srv.addr, &[("Authorization", &bearer)], "{not json");
    assert!((400..500).contains(&code), "{code} {body}");
    let (code, body) = post(
        &srv.addr,
        &[
            ("Authorization", &bearer),
            ("Origin", "http://127.0.0.1:3000"),
        ],
        INIT,
    );
    assert_eq!(code, 200, "a local Origin with the token is served: {body}");
    assert!(body.contains("op-session"), "{body}");
    assert!(!body.contains(&srv.token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_every_tool_works_with_the_bearer_token_and_nothing_secret_comes_back() {
    let w = world(FULL_CONFIG);
    let srv = http_server(&w);
    // The workspace builds reqwest without a crypto provider; plain HTTP still needs one set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            format!("http://{}/mcp", srv.addr),
        )
        .auth_header(srv.token.clone()),
    );
    let rec = Recorder::default();
    let client = within("initialize over HTTP", rec.clone().serve(transport))
        .await
        .expect("initializes over HTTP");
    let mut s = Session::default();
    let generated = exercise_every_tool(&w, &client, &mut s).await;
    within("cancel", client.cancel()).await.unwrap();
    let mut secrets = fixture_secrets();
    secrets.push(generated);
    for (i, t) in s.transcript.iter().enumerate() {
        assert_opaque(&format!("result {i}"), t, &secrets);
    }
    for (i, n) in rec.seen.lock().unwrap().iter().enumerate() {
        assert_opaque(&format!("notification {i}"), n, &secrets);
    }
    assert!(
        audit_when(&w, |a| a
            .iter()
            .any(|l| l["via"] == "mcp" && l["client_name"] == "e2e-agent"))
        .iter()
        .any(|l| l["via"] == "mcp" && l["client_name"] == "e2e-agent"),
        "HTTP calls are audited with the client's name"
    );
}

#[test]
fn print_config_names_this_binary_and_mcp_and_never_a_token() {
    let w = World::new("");
    w.without_daemon();
    let exe = bins().client.canonicalize().unwrap();
    let entry = json!({"command": exe.display().to_string(), "args": ["mcp"]});
    for kind in ["claude-desktop", "cursor"] {
        let out = w.run(&["mcp", "--print-config", kind]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["mcpServers"]["op-session"], entry);
    }
    // Claude Code: exactly what `claude mcp add-json op-session JSON` accepts (the entry, not
    // a whole file), with how to use it (and .mcp.json) on stderr.
    let out = w.run(&["mcp", "--print-config", "claude-code"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v, entry);
    assert!(
        out.stderr.contains("claude mcp add-json op-session"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(".mcp.json"), "{}", out.stderr);
    let out = w.run(&["mcp", "--print-config", "codex"]);
    assert_eq!(out.code, 0);
    assert_eq!(
        out.stdout,
        format!(
            "[mcp_servers.op-session]\ncommand = \"{}\"\nargs = [\"mcp\"]\nenv_vars = [\"XDG_RUNTIME_DIR\", \"OPSESSION_SOCKET\"]\n",
            exe.display()
        )
    );
    assert!(!out.stdout.to_lowercase().contains("token"));
    let out = w.run(&["mcp", "--print-config", "vim"]);
    assert_eq!(out.code, 64);
    // HTTP on anything but loopback is refused before a daemon or server starts.
    for addr in ["0.0.0.0:8765", "192.0.2.1:80", "localhost"] {
        let out = w.run(&["mcp", "--http", addr]);
        assert_eq!(out.code, 64, "{addr}: {}", out.stderr);
        assert!(out.stderr.contains("loopback"), "{}", out.stderr);
    }
    assert!(w.daemon_pid().is_none(), "nothing started");
}

/// The current spec (2026-07-28) is stateless: no `initialize`, the version and the client's
/// identity travel in each request's `_meta`. The client's name still reaches the audit.
#[test]
fn http_speaks_the_stateless_2026_07_28_spec_and_audits_the_client_name() {
    let w = world("");
    let srv = http_server(&w);
    let bearer = format!("Bearer {}", srv.token);
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "stateless-agent", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let call = json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "check_reference", "arguments": {"reference": "op://Dev/Stripe/key"}, "_meta": meta},
    });
    let (code, body) = post(
        &srv.addr,
        &[
            ("Authorization", &bearer),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "check_reference"),
        ],
        &call.to_string(),
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("\"resolves\"") && body.contains("CONCEALED"),
        "{body}"
    );
    assert_opaque("a stateless response", &body, &fixture_secrets());
    assert!(
        audit_when(&w, |a| a.iter().any(
            |l| l["verb"] == "check" && l["client_name"] == "stateless-agent"
        ))
        .iter()
        .any(|l| l["verb"] == "check" && l["client_name"] == "stateless-agent"),
        "the audit names the stateless client"
    );
}

/// The resolving tools' answers (values kept only where the tool returns them), for comparing
/// modes: `check_reference`, `read_secret`, `run` and `inject`, in success and failure.
async fn resolving_tool_answers(w: &World) -> Vec<(String, bool, Value)> {
    let tee = w.dir.path().join("mcp-stdout.log");
    let (c, _) = stdio_client(w, &tee).await;
    let mut s = Session::default();
    let tpl = w.dir.path().join("modes.tpl");
    std::fs::write(
        &tpl,
        "key={{ op://Dev/Stripe/key }}\ndb={{ op://Dev/Database/password }}\n",
    )
    .unwrap();
    let out = w.dir.path().join("modes.out");
    let calls: Vec<(&str, Value)> = vec![
        (
            "check_reference",
            json!({"reference": "op://Dev/Stripe/key"}),
        ),
        (
            "check_reference",
            json!({"reference": "op://Dev/Database/password"}),
        ),
        ("check_reference", json!({"reference": "op://Dev/Nope/key"})),
        (
            "check_reference",
            json!({"reference": "op://Nope/Stripe/key"}),
        ),
        (
            "read_secret",
            json!({"reference": "op://Dev/Stripe/key", "acknowledge": ACK}),
        ),
        (
            "read_secret",
            json!({"reference": "op://Dev/GitHub/one-time password?attribute=type", "acknowledge": ACK}),
        ),
        (
            "read_secret",
            json!({"reference": "op://Dev/Nope/key", "acknowledge": ACK}),
        ),
        (
            "run",
            json!({
                "command": ["sh", "-c", "printf 'out:%s\\n' \"$K\"; test \"$DB\" = \"$WANT\" && echo same; exit 3"],
                "env": {"K": "op://Dev/Stripe/key", "DB": "op://Dev/Database/password"},
            }),
        ),
        (
            "run",
            json!({"command": ["true"], "env": {"K": "op://Dev/Nope/key"}}),
        ),
        (
            "inject",
            json!({"template_path": tpl.display().to_string(), "output_path": out.display().to_string()}),
        ),
    ];
    let mut answers = Vec::new();
    for (name, mut args) in calls {
        if name == "run"
            && let Some(env) = args.get_mut("env").and_then(Value::as_object_mut)
            && env.contains_key("DB")
        {
            // The child compares the value itself; the output shows only the verdict.
            args["command"] = json!([
                "sh",
                "-c",
                format!(
                    "printf 'out:%s\\n' \"$K\"; test \"$DB\" = '{}' && echo same; exit 3",
                    DB_PASSWORD.replace('\'', "'\\''")
                )
            ]);
        }
        let r = s.call(&c, name, args).await;
        let mut json = r.json.clone();
        if let Some(o) = json.as_object_mut() {
            // Timings, cache state and the session's name differ by nature between the modes.
            for k in ["duration_ms", "cached", "elapsed_ms", "account"] {
                o.remove(k);
            }
            // Each world has its own directory: compare the file's name only.
            if let Some(Value::String(p)) = o.get_mut("path") {
                *p = Path::new(p.as_str())
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
            }
        }
        // Errors compare by their first line without the time stamp.
        let text = if r.is_error {
            let line = r.text.lines().next().unwrap_or("").to_string();
            match line.strip_prefix("[ERROR] ") {
                Some(rest) if rest.len() > 20 => format!("[ERROR] <ts> {}", &rest[20..]),
                _ => line,
            }
        } else {
            String::new()
        };
        answers.push((format!("{name} {text}"), r.is_error, json));
    }
    answers.push((
        "inject output".into(),
        false,
        json!(std::fs::read_to_string(&out).unwrap_or_default()),
    ));
    within("cancel", c.cancel()).await.unwrap();
    answers
}

#[test]
fn in_connect_mode_the_resolving_tools_answer_as_in_token_mode() {
    let config = "[mcp]\nreveal = true\nrun_allow = [\"/bin/*\", \"/usr/bin/*\"]\n";
    let token = world(config);
    // fake-connect runs its own runtime, so this test drives the MCP client on another.
    let connect = op_session_e2e::connect::Connect::started(config);
    assert_eq!(connect.w.status()["sessions"][0]["mode"], "connect");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let want = rt.block_on(resolving_tool_answers(&token));
    let got = rt.block_on(resolving_tool_answers(&connect.w));
    assert_eq!(want.len(), got.len());
    let differ: Vec<String> = want
        .iter()
        .zip(&got)
        .filter(|(w, g)| w != g)
        .map(|(w, g)| format!("token: {w:?}\nconnect: {g:?}"))
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n\n"));
    // The values really went through: the revealed one, the run's masked output, the file.
    assert_eq!(got[4].2["value"], STRIPE);
    assert!(got[7].2.to_string().contains(CONCEALED), "{:?}", got[7]);
    assert!(got[7].2.to_string().contains("same"), "{:?}", got[7]);
    assert!(got[10].2.as_str().unwrap().contains(STRIPE));
    token.run(&["stop"]);
    connect.w.run(&["stop"]);
}

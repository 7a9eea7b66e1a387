//! A person confirms each use of a sensitive secret (`[confirm]`), through a stand-in askpass
//! program that records its argument and environment and answers from a control file: yes,
//! no, never (the timeout), or only once released (so concurrent requests can pile up).
//!
//! Every wait has a deadline; the durations the daemon is given are short (1–2 s).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use op_session_e2e::{Out, World, bins, processes, wait_until};

const MY_PASSWORD: &[u8] = b"correct horse battery staple\n";
const PROD_KEY: &str = "sk_live_51ProdOnlyKeyDoNotLeak9";
const PROD_REF: &str = "op://Prod/Stripe/key";

/// The stand-in askpass: a shell script under the world's directory.
struct Askpass {
    dir: PathBuf,
    script: PathBuf,
}

const SCRIPT: &str = r#"#!/bin/sh
# Stand-in askpass for the op-session tests: record, then answer from the control file.
d="$(dirname "$0")"
printf '%s\t%s\t%s\n' "$#" "$SSH_ASKPASS_PROMPT" "$1" >> "$d/calls"
env > "$d/env"
case "$(cat "$d/answer" 2>/dev/null)" in
  yes) exit 0 ;;
  never) exec sleep 300 ;;
  release) while [ ! -e "$d/released" ]; do sleep 0.05; done; exit 0 ;;
  *) exit 1 ;;
esac
"#;

impl Askpass {
    fn new(w: &World) -> Askpass {
        use std::os::unix::fs::PermissionsExt;
        let dir = w.dir.path().join("askpass");
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("askpass-stub");
        std::fs::write(&script, SCRIPT).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        Askpass { dir, script }
    }

    fn answer(&self, a: &str) {
        std::fs::write(self.dir.join("answer"), a).unwrap();
    }

    fn release(&self) {
        std::fs::write(self.dir.join("released"), "").unwrap();
    }

    /// Each call's (argument count, `SSH_ASKPASS_PROMPT`, prompt).
    fn calls(&self) -> Vec<(String, String, String)> {
        std::fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let mut f = l.splitn(3, '\t').map(str::to_string);
                (
                    f.next().unwrap_or_default(),
                    f.next().unwrap_or_default(),
                    f.next().unwrap_or_default(),
                )
            })
            .collect()
    }

    fn env(&self) -> String {
        std::fs::read_to_string(self.dir.join("env")).unwrap_or_default()
    }

    /// How many stand-in askpass processes of this world are alive.
    fn running(&self) -> usize {
        processes(&self.script.display().to_string(), None)
    }
}

/// A signed-in world with `[confirm]` set to `confirm` plus `askpass` = the stand-in (unless
/// `with_askpass` is false).
fn world(confirm: &str, with_askpass: bool, extra: &str) -> (World, Askpass) {
    let w = World::new(extra);
    let a = Askpass::new(&w);
    let mut cfg = std::fs::read_to_string(&w.config).unwrap();
    cfg.push_str(&format!("[confirm]\n{confirm}\n"));
    if with_askpass {
        cfg.push_str(&format!("askpass = \"{}\"\n", a.script.display()));
    }
    std::fs::write(&w.config, cfg).unwrap();
    w.load_basic();
    let out = w.run_with_stdin(
        &["init", "--account", "my", "--password-stdin"],
        MY_PASSWORD,
    );
    assert_eq!(out.code, 0, "init: {}", out.stderr);
    (w, a)
}

fn audit(w: &World) -> Vec<serde_json::Value> {
    std::fs::read_to_string(w.state.join("op-session/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The confirm part of the last audit record with this verb, once it is written.
fn last_confirm(w: &World, verb: &str, n: usize) -> serde_json::Value {
    let mut found = serde_json::Value::Null;
    assert!(
        wait_until(Duration::from_secs(5), || {
            let recs: Vec<_> = audit(w).into_iter().filter(|r| r["verb"] == verb).collect();
            if recs.len() >= n {
                found = recs[n - 1]["confirm"].clone();
                true
            } else {
                false
            }
        }),
        "no audit record {n} for {verb}: {:?}",
        audit(w)
    );
    found
}

fn fake_reads(w: &World) -> u64 {
    w.counters()["invocations"].as_u64().unwrap_or(0)
}

#[test]
fn yes_serves_no_refuses_and_cached_values_still_ask() {
    let (w, a) = world("refs = [\"op://Prod/*\"]\ntimeout = \"20s\"", true, "");
    a.answer("yes");
    let out = w
        .client(&["read", PROD_REF])
        .env("CALLER_MARK", "agent-chose-this")
        .output()
        .unwrap();
    let out = Out::from(out);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{PROD_KEY}\n"));
    let calls = a.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (argc, mode, prompt) = &calls[0];
    assert_eq!(argc, "1", "the prompt is the only argument");
    assert_eq!(mode, "confirm", "SSH_ASKPASS_PROMPT=confirm");
    assert!(
        prompt.contains("op-session ("),
        "names the caller: {prompt}"
    );
    assert!(prompt.contains(&format!("wants {PROD_REF}")), "{prompt}");
    assert!(prompt.contains("account my"), "{prompt}");
    assert!(prompt.contains(" > "), "shows the parent chain: {prompt}");
    let env = a.env();
    assert!(env.contains("SSH_ASKPASS_PROMPT=confirm"), "{env}");
    assert!(
        !env.contains("CALLER_MARK"),
        "a caller's environment never reaches askpass"
    );
    assert!(
        !env.contains("OP_SESSION"),
        "no credential in askpass's environment"
    );
    let rec = last_confirm(&w, "read", 1);
    assert_eq!(rec["channel"], "askpass");
    assert_eq!(rec["decision"], "allow");

    // A reference no rule names never asks.
    let out = w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(a.calls().len(), 1);

    // Cached: no op call, but the person is asked again.
    let reads = fake_reads(&w);
    let out = w.run(&["read", PROD_REF]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(fake_reads(&w), reads, "served from the cache");
    assert_eq!(
        a.calls().len(),
        2,
        "the cache saves op calls, not approvals"
    );

    a.answer("no");
    let out = w.run(&["read", PROD_REF]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(
        out.stderr.contains("denied by the person"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains(PROD_KEY) && !out.stderr.contains(PROD_KEY));
    let rec = last_confirm(&w, "read", 4);
    assert_eq!(rec["decision"], "deny");

    // run and inject go through the same gate.
    let envfile = w.home.join(".env");
    std::fs::write(&envfile, format!("K={PROD_REF}\n")).unwrap();
    let out = w.run(&["run", "--env-file", envfile.to_str().unwrap(), "--", "true"]);
    assert_eq!(out.code, 78, "run: {}", out.stderr);
    let out = w.run_with_stdin(&["inject"], format!("k: {{{{ {PROD_REF} }}}}\n").as_bytes());
    assert_eq!(out.code, 78, "inject: {}", out.stderr);
    assert!(!out.stdout.contains(PROD_KEY));
    assert_eq!(a.calls().len(), 5);
}

#[test]
fn no_answer_in_time_is_77_and_the_prompt_is_taken_down() {
    let (w, a) = world("vaults = [\"Prod\"]\ntimeout = \"1s\"", true, "");
    a.answer("never");
    let started = Instant::now();
    let out = w.run(&["read", PROD_REF]);
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(
        out.stderr.contains("not confirmed within 1s"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        wait_until(Duration::from_secs(5), || a.running() == 0),
        "the askpass program is killed at the timeout"
    );
    assert_eq!(last_confirm(&w, "read", 1)["decision"], "timeout");
}

#[test]
fn with_no_channel_a_matching_read_fails_at_once_naming_how_to_set_one_up() {
    let (w, _a) = world("refs = [\"op://Prod/*\"]", false, "");
    let started = Instant::now();
    let out = w.run(&["read", PROD_REF]);
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(5), "at once");
    assert!(
        out.stderr.contains("askpass"),
        "names the fix: {}",
        out.stderr
    );
    let st = w.status();
    assert_eq!(st["confirm"]["channel"], "none", "{st}");
    assert_eq!(st["confirm"]["refs"][0], "op://Prod/*");
    // Other references are served as before.
    assert_eq!(w.run(&["read", "op://Dev/Stripe/key"]).code, 0);
}

/// The number of descriptors the daemon holds.
fn daemon_fds(w: &World) -> usize {
    let pid = w.daemon_pid().unwrap();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn sixteen_concurrent_reads_of_one_caller_share_one_prompt() {
    let (w, a) = world("refs = [\"op://Prod/*\"]\ntimeout = \"30s\"", true, "");
    a.answer("release");
    let before = daemon_fds(&w);
    let kids: Vec<_> = (0..16)
        .map(|_| {
            w.client(&["read", PROD_REF])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Every client is connected and waiting before the person answers.
    assert!(
        wait_until(Duration::from_secs(20), || daemon_fds(&w) >= before + 16),
        "16 clients waiting"
    );
    assert!(wait_until(Duration::from_secs(10), || a.calls().len() == 1));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.status()["confirm"]["prompts_open"], 1);
    a.release();
    for k in kids {
        let out = Out::from(k.wait_with_output().unwrap());
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout, format!("{PROD_KEY}\n"));
    }
    assert_eq!(a.calls().len(), 1, "one prompt for all 16: {:?}", a.calls());
    assert_eq!(w.status()["confirm"]["prompts_open"], 0);
}

/// `op-session ARGS` started by another agent process (python3), so it is another caller.
fn as_other_agent(w: &World, args: &[&str]) -> Out {
    let mut c = Command::new("python3");
    c.env_clear()
        .envs(w.env())
        .current_dir(&w.home)
        .stdin(Stdio::null())
        .arg("-c")
        .arg("import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)")
        .arg(&bins().client)
        .args(args);
    Out::from(c.output().unwrap())
}

#[test]
fn remember_covers_the_same_caller_until_it_expires_and_never_another_caller() {
    let (w, a) = world(
        "refs = [\"op://Prod/*\"]\ntimeout = \"20s\"\nremember = \"2s\"",
        true,
        "",
    );
    a.answer("yes");
    let approved_at = Instant::now();
    assert_eq!(w.run(&["read", PROD_REF]).code, 0);
    assert_eq!(a.calls().len(), 1);
    assert!(a.calls()[0].2.contains("for 2s"), "{:?}", a.calls());
    let rec = last_confirm(&w, "read", 1);
    assert!(rec["remembered_until"].is_string(), "{rec}");
    a.answer("no");
    // Same caller, same reference (another spelling): remembered.
    let out = w.run(&["read", "op://prod/stripe/KEY"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(a.calls().len(), 1, "no new prompt");
    assert_eq!(last_confirm(&w, "read", 2)["channel"], "remembered");
    let list = w.run(&["approvals", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["reference"], "op://prod/stripe/key");
    // Another reference is asked about.
    assert_eq!(w.run(&["read", "op://Prod/Database/password"]).code, 78);
    // Another caller is asked, and the person's no holds.
    let out = as_other_agent(&w, &["read", PROD_REF]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert_eq!(a.calls().len(), 3);
    // Expiry.
    let wait = Duration::from_millis(2300).saturating_sub(approved_at.elapsed());
    std::thread::sleep(wait);
    let out = w.run(&["read", PROD_REF]);
    assert_eq!(out.code, 78, "expired: {}", out.stderr);
    assert_eq!(a.calls().len(), 4);
    let list = w.run(&["approvals", "--json"]);
    assert_eq!(list.stdout.trim(), "[]");
}

#[test]
fn lock_and_forget_drop_remembered_approvals() {
    let (w, a) = world("refs = [\"op://Prod/*\"]\nremember = \"5m\"", true, "");
    a.answer("yes");
    assert_eq!(w.run(&["read", PROD_REF]).code, 0);
    let out = w.run(&["approvals"]);
    assert!(
        out.stdout.contains("op://prod/stripe/key"),
        "{}",
        out.stdout
    );
    assert_eq!(w.status()["confirm"]["approvals"], 1);
    // --forget only removes.
    assert_eq!(w.run(&["approvals", "--forget"]).code, 0);
    assert_eq!(w.run(&["approvals", "--json"]).stdout.trim(), "[]");
    assert_eq!(w.run(&["read", PROD_REF]).code, 0, "asked again, said yes");
    assert_eq!(a.calls().len(), 2);
    // Lock, then a new session: nothing carries over.
    assert_eq!(w.run(&["lock"]).code, 0);
    assert_eq!(w.run(&["approvals", "--json"]).stdout.trim(), "[]");
    let out = w.run_with_stdin(
        &["init", "--account", "my", "--password-stdin"],
        MY_PASSWORD,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    a.answer("no");
    assert_eq!(w.run(&["read", PROD_REF]).code, 78);
    assert_eq!(a.calls().len(), 3);
}

/// Open a grant; returns its socket.
fn grant(w: &World, args: &[&str]) -> PathBuf {
    let mut v = vec!["grant"];
    v.extend_from_slice(args);
    let out = w.run(&v);
    assert_eq!(out.code, 0, "grant: {}", out.stderr);
    PathBuf::from(out.stdout.lines().next().unwrap())
}

fn via(w: &World, socket: &Path, args: &[&str]) -> Out {
    w.client(args)
        .env("OPSESSION_SOCKET", socket)
        .output()
        .unwrap()
        .into()
}

#[test]
fn grants_inherit_the_rules_and_grant_confirm_asks_for_every_read() {
    let (w, a) = world("refs = [\"op://Prod/*\"]", true, "");
    let plain = grant(&w, &["plain"]);
    let asking = grant(&w, &["asking", "--vault", "Dev", "--confirm"]);
    let out = w.run(&["grants", "--json"]);
    assert!(out.stdout.contains("\"confirm\": true"), "{}", out.stdout);
    a.answer("no");
    assert_eq!(via(&w, &plain, &["read", PROD_REF]).code, 78);
    assert_eq!(via(&w, &plain, &["read", "op://Dev/Stripe/key"]).code, 0);
    assert_eq!(a.calls().len(), 1);
    let out = via(&w, &asking, &["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert_eq!(a.calls().len(), 2);
    a.answer("yes");
    let out = via(&w, &asking, &["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Nothing through a grant lists or forgets approvals.
    assert_eq!(via(&w, &asking, &["approvals", "--forget"]).code, 78);
}

/// Send one request frame the way `op-session mcp` does and read the answer.
fn raw(w: &World, json: &str) -> serde_json::Value {
    let mut s = std::os::unix::net::UnixStream::connect(&w.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(&op_session_e2e::raw_request(json)).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn mcp_reads_and_passthrough_item_get_go_through_the_same_gate() {
    let (w, a) = world("refs = [\"op://Prod/*\"]", true, "[mcp]\nreveal = true\n");
    let req = format!(
        r#"{{"version":2,"type":"resolve","refs":["{PROD_REF}"],"purpose":"read","via":{{"channel":"mcp"}},"reveal":true}}"#
    );
    a.answer("no");
    let r = raw(&w, &req);
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["code"], "confirm_denied", "{r}");
    a.answer("yes");
    let r = raw(&w, &req);
    assert_eq!(r["type"], "values", "{r}");
    assert_eq!(a.calls().len(), 2);
    // The get_item tool shows an item's fields (concealed ones masked): it asks too.
    a.answer("no");
    let r = raw(
        &w,
        r#"{"version":2,"type":"item","op":"get_item","item":"Stripe","vault":"Prod","via":{"channel":"mcp"}}"#,
    );
    assert_eq!(r["code"], "confirm_denied", "{r}");
    let r = raw(
        &w,
        r#"{"version":2,"type":"item","op":"get_item","item":"Stripe","vault":"Dev","via":{"channel":"mcp"}}"#,
    );
    assert_eq!(r["type"], "item", "{r}");
    assert_eq!(a.calls().len(), 3, "{:?}", a.calls());

    // `op item get` of a matching item prints its fields: it asks too.
    a.answer("no");
    let out = w.run(&["op", "item", "get", "Stripe", "--vault", "Prod", "--reveal"]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(!out.stdout.contains(PROD_KEY));
    assert_eq!(a.calls().len(), 4);
    assert!(
        a.calls()[3].2.contains("op://Prod/Stripe"),
        "{:?}",
        a.calls()
    );
    // Without --vault the daemon cannot tell the item is not in Prod: it asks.
    assert_eq!(w.run(&["op", "item", "get", "Stripe"]).code, 78);
    assert_eq!(w.run(&["op", "read", PROD_REF]).code, 78);
    // An item in another vault does not.
    let out = w.run(&["op", "item", "get", "Stripe", "--vault", "Dev"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(a.calls().len(), 6);
}

#[test]
fn a_prompt_closes_when_its_last_waiting_client_goes_away() {
    let (w, a) = world("refs = [\"op://Prod/*\"]\ntimeout = \"60s\"", true, "");
    a.answer("release");
    let mut kid = w
        .client(&["read", PROD_REF])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || a.running() == 1));
    kid.kill().unwrap();
    kid.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || a.running() == 0),
        "the askpass program is ended with its last client"
    );
    assert!(wait_until(Duration::from_secs(5), || w.status()["confirm"]
        ["prompts_open"]
        == 0));
    // The daemon serves on.
    assert_eq!(w.run(&["read", "op://Dev/Stripe/key"]).code, 0);
}

#[test]
fn bad_confirm_config_stops_the_daemon_naming_the_key() {
    for (cfg, key) in [
        ("[confirm]\nrefs = [\"Prod/*\"]\n", "confirm.refs"),
        (
            "[confirm]\naskpass = \"/nonexistent/ssh-askpass\"\n",
            "confirm.askpass",
        ),
        (
            "hard_timeout = \"1h\"\n[confirm]\nremember = \"2h\"\n",
            "confirm.remember",
        ),
        ("[confirm]\nremembr = \"1m\"\n", "remembr"),
    ] {
        let w = World::new(cfg);
        let out: Out = w.daemon(&["--foreground"]).output().unwrap().into();
        assert_ne!(out.code, 0, "{cfg}");
        assert!(out.stderr.contains(key), "{cfg}: {}", out.stderr);
    }
}

#[test]
fn nothing_on_the_socket_answers_a_pending_prompt() {
    let (w, a) = world(
        "refs = [\"op://Prod/*\"]\ntimeout = \"30s\"\nremember = \"5m\"",
        true,
        "",
    );
    a.answer("release");
    let mut kid = w
        .client(&["read", PROD_REF])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || a.calls().len() == 1));
    // Everything a client (or a grant holder) can send, including fields no request has.
    let g = grant(&w, &["side"]);
    for args in [
        &["status", "--json"][..],
        &["approvals", "--json"],
        &["approvals", "--forget"],
        &["grants"],
    ] {
        w.run(args);
        via(&w, &g, args);
    }
    for json in [
        r#"{"version":2,"type":"approvals","forget":false,"approve":true,"reference":"op://Prod/Stripe/key"}"#,
        r#"{"version":2,"type":"approve","reference":"op://Prod/Stripe/key"}"#,
        r#"{"version":2,"type":"confirm","answer":"yes"}"#,
    ] {
        let r = raw(&w, json);
        assert_ne!(r["type"], "values", "{r}");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        kid.try_wait().unwrap().is_none(),
        "the read was answered from the socket"
    );
    assert_eq!(w.status()["confirm"]["prompts_open"], 1);
    assert_eq!(w.run(&["approvals", "--json"]).stdout.trim(), "[]");
    // Only the person's answer serves it.
    a.release();
    let out = Out::from(kid.wait_with_output().unwrap());
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn a_client_that_only_shut_its_sending_side_still_gets_its_answer() {
    let (w, a) = world("refs = [\"op://Prod/*\"]\ntimeout = \"30s\"", true, "");
    a.answer("yes");
    // raw-frame sends the request, then shuts its writing side while it waits.
    let req = format!(r#"{{"version":2,"type":"resolve","refs":["{PROD_REF}"]}}"#);
    let out = Command::new(env!("CARGO_BIN_EXE_raw-frame"))
        .arg(&w.socket)
        .arg(op_session_e2e::hex(&op_session_e2e::raw_request(&req)))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"type\":\"values\""), "{text}");
    assert_eq!(a.calls().len(), 1);
}

#[test]
fn sleep_drops_remembered_approvals_even_when_the_session_is_kept() {
    use op_session_e2e::dbus::{Bus, FakeLogind};
    let mut w = World::new("[presence]\non_sleep = \"keep\"\n");
    let system_bus = Bus::start(w.dir.path(), "system");
    let logind = FakeLogind::start(&system_bus.address, nix::unistd::getuid().as_raw());
    w.extra_env
        .push(("DBUS_SYSTEM_BUS_ADDRESS".into(), system_bus.address.clone()));
    let a = Askpass::new(&w);
    let mut cfg = std::fs::read_to_string(&w.config).unwrap();
    cfg.push_str(&format!(
        "[confirm]\nrefs = [\"op://Prod/*\"]\nremember = \"5m\"\naskpass = \"{}\"\n",
        a.script.display()
    ));
    std::fs::write(&w.config, cfg).unwrap();
    w.load_basic();
    let out = w.run_with_stdin(
        &["init", "--account", "my", "--password-stdin"],
        MY_PASSWORD,
    );
    assert_eq!(out.code, 0, "init: {}", out.stderr);
    assert!(
        wait_until(Duration::from_secs(15), || w
            .daemon_log()
            .contains("watching sleep")),
        "the daemon never watched logind: {}",
        w.daemon_log()
    );
    a.answer("yes");
    assert_eq!(w.run(&["read", PROD_REF]).code, 0);
    assert_eq!(w.status()["confirm"]["approvals"], 1);
    logind.prepare_for_sleep(true);
    assert!(
        wait_until(
            Duration::from_secs(10),
            || w.status()["confirm"]["approvals"] == 0
        ),
        "sleep left an approval behind"
    );
    assert_eq!(
        w.status()["sessions"].as_array().unwrap().len(),
        1,
        "the session itself is kept (on_sleep = keep)"
    );
    a.answer("no");
    assert_eq!(w.run(&["read", PROD_REF]).code, 78);
    assert_eq!(a.calls().len(), 2);
}

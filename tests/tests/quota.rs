//! Issue 22: a service account's rate limit is never burned. A loop reading a missing item
//! costs one `op` call per `negative_ttl`; the request budget stops at its limit with exit 75
//! and the time it frees up, and survives a daemon restart (it is persisted); a 429 from `op`
//! or from Connect holds every call back until its retry time; a caller looping on errors is
//! answered from memory only; `status` shows the budget.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use op_session_e2e::connect::Connect;
use op_session_e2e::{World, raw_request, wait_until};

const MISSING: &str = "op://Dev/NoSuchItem/password";
const STRIPE: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

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

/// A world holding a service-account session of fake-op's `name`.
fn sa_world(name: &str, config: &str) -> (World, String) {
    let w = World::new(config);
    w.load_basic();
    let token = sa_token(&w, name);
    let out = w.run_with_stdin(&["init", "--mode", "service-account"], token.as_bytes());
    assert_eq!(out.code, 0, "service-account init failed: {}", out.stderr);
    (w, token)
}

/// fake-op invocations whose command is `cmd`.
fn op_calls(w: &World, cmd: &str) -> usize {
    w.calls().iter().filter(|c| c["command"] == cmd).count()
}

/// One resolve request straight over the socket (a loop of 10,000 client processes would
/// measure process start-up, not the daemon); the parsed response.
fn resolve_raw(w: &World, reference: &str) -> serde_json::Value {
    let mut s = UnixStream::connect(&w.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&raw_request(&format!(
        r#"{{"version":2,"type":"resolve","purpose":"read","refs":["{reference}"]}}"#
    )))
    .unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

fn audit_lines(w: &World) -> Vec<serde_json::Value> {
    std::fs::read_to_string(w.state.join("op-session/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn ten_thousand_reads_of_a_missing_item_cost_one_op_call_per_negative_ttl() {
    // The brake is off here, so the negative cache alone is measured.
    let (w, _) = sa_world(
        "ci",
        "negative_ttl = \"1s\"\n[quota]\ncaller_errors_per_minute = 0\nreads_per_hour = 0\nreads_per_day = 0\n",
    );
    // What a caller sees: op's own words, exit 1, the same the second time, at once.
    let first = w.run(&["read", MISSING]);
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert!(first.stderr.contains("isn't an item"), "{}", first.stderr);
    let second = w.run(&["read", MISSING]);
    assert_eq!(second.code, 1);
    assert_eq!(
        second.stderr.lines().next(),
        first.stderr.lines().next(),
        "the remembered answer reads like op's"
    );
    let before = op_calls(&w, "read");
    assert_eq!(before, 1, "the second read was remembered");

    let started = Instant::now();
    for i in 0..10_000 {
        let r = resolve_raw(&w, MISSING);
        assert_eq!(r["type"], "error", "{i}: {r}");
        assert_eq!(r["code"], "op_failed", "{i}: {r}");
        assert!(r["message"].as_str().unwrap().contains("isn't an item"));
    }
    let elapsed = started.elapsed();
    let calls = op_calls(&w, "read") - before;
    // At most one call per negative_ttl (1 s) that began during the loop, plus the edge.
    let allowed = elapsed.as_secs() as usize + 2;
    assert!(
        calls <= allowed,
        "{calls} op calls in {elapsed:?} (at most {allowed})"
    );
    eprintln!("10,000 reads of a missing item in {elapsed:?}: {calls} op calls");
    // The audit says which answers came from memory.
    let audit = audit_lines(&w);
    let remembered = audit.iter().filter(|r| r["negative_cache"] == true).count();
    assert!(remembered >= 10_000 - calls, "{remembered} marked");
    assert!(
        audit
            .iter()
            .filter(|r| r["references"][0] == MISSING)
            .any(|r| r.get("negative_cache").is_none()),
        "the answers that did call op are not marked"
    );
    // Once the item exists (a write through the daemon drops the account's caches), it is
    // found at once.
    let out = w.run(&[
        "op",
        "item",
        "create",
        "--vault",
        "Dev",
        "--title",
        "NoSuchItem",
        "--category",
        "login",
        "password=now-it-exists",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = w.run(&["read", MISSING]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "now-it-exists\n");
}

#[test]
fn the_budget_stops_at_its_limit_with_exit_75_and_survives_a_restart() {
    let (w, token) = sa_world("ci", "cache_ttl = \"0s\"\n[quota]\nreads_per_hour = 3\n");
    for _ in 0..3 {
        let out = w.run(&["read", "op://Dev/Stripe/key"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let calls = op_calls(&w, "read");
    let out = w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("3 reads per hour") && out.stderr.contains("frees up in 1h"),
        "{}",
        out.stderr
    );
    assert_eq!(op_calls(&w, "read"), calls, "refused without calling op");
    // The passthrough is counted against the same budget.
    let out = w.run(&["op", "item", "get", "Stripe", "--vault", "Dev"]);
    assert_eq!(out.code, 75, "{}", out.stderr);

    // status: used and left per window, in JSON and in one line.
    let s = w.status();
    let q = &s["sessions"][0]["quota"];
    assert_eq!(q["reads_per_hour"]["used"], 3, "{s}");
    assert_eq!(q["reads_per_hour"]["limit"], 3);
    assert_eq!(q["reads_per_hour"]["left"], 0);
    assert_eq!(q["writes_per_hour"]["limit"], 100, "Teams default");
    assert_eq!(q["per_day"]["limit"], 5000, "Teams default");
    assert!(q["warning"].is_string(), "{q}");
    let human = w.run(&["status"]).stdout;
    assert!(
        human.contains("quota: reads 3/3 this hour, writes 0/100 this hour, 3/5000 today"),
        "{human}"
    );

    // Persisted: 0600 in the private state directory, and nothing secret in it.
    let file = w.state.join("op-session/quota.json");
    let meta = std::fs::metadata(&file).expect("the budget is saved");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&token) && !text.contains("ops_"), "{text}");
    assert!(!text.contains("op://") && !text.contains(STRIPE), "{text}");

    // A new daemon remembers what 1Password still counts.
    assert_eq!(w.run(&["stop"]).code, 0);
    let out = w.run_with_stdin(&["init", "--mode", "service-account"], token.as_bytes());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(
        out.code, 75,
        "the restarted daemon forgot the budget: {}",
        out.stderr
    );
    assert_eq!(op_calls(&w, "read"), calls);
}

#[test]
fn people_have_no_budget() {
    let w = World::new("cache_ttl = \"0s\"\n[quota]\nreads_per_hour = 1\n");
    w.load_basic();
    let out = w.run_with_stdin(
        &["init", "--account", "my", "--password-stdin"],
        b"correct horse battery staple\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    for _ in 0..3 {
        assert_eq!(w.run(&["read", "op://Dev/Stripe/key"]).code, 0);
    }
    assert!(w.status()["sessions"][0].get("quota").is_none());
}

#[test]
fn a_429_from_op_holds_every_call_back_until_its_time() {
    // fake-op's `limited` service account may read 6 times an hour; our own budget is off so
    // 1Password's 429 is what stops it.
    let (w, _) = sa_world(
        "limited",
        "cache_ttl = \"0s\"\n[quota]\nreads_per_hour = 0\n",
    );
    let mut last = None;
    for _ in 0..10 {
        let out = w.run(&["read", "op://Dev/Stripe/key"]);
        if out.code != 0 {
            last = Some(out);
            break;
        }
    }
    let out = last.expect("fake-op answered 429");
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.stderr.contains("(429)"), "{}", out.stderr);
    let invocations = w.counters()["invocations"].as_u64().unwrap();
    // Until the retry time, nothing reaches op, and the message says how long.
    for _ in 0..3 {
        let out = w.run(&["read", "op://Dev/Stripe/key"]);
        assert_eq!(out.code, 75, "{}", out.stderr);
        assert!(
            out.stderr.contains("sends nothing for another"),
            "{}",
            out.stderr
        );
    }
    let out = w.run(&["op", "vault", "list"]);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert_eq!(
        w.counters()["invocations"].as_u64().unwrap(),
        invocations,
        "op was called during the 429's wait"
    );
    let retry = w.status()["sessions"][0]["quota"]["retry_after_s"]
        .as_u64()
        .expect("status shows the retry time");
    assert!(retry > 50 * 60 && retry <= 3600, "{retry}");
}

#[test]
fn a_429_from_connect_holds_calls_back_until_retry_after() {
    // The brake is off: the wait below polls faster than a looping caller may fail.
    let c = Connect::started("cache_ttl = \"0s\"\n[quota]\ncaller_errors_per_minute = 0\n");
    c.server
        .knobs()
        .limit
        .store(4, std::sync::atomic::Ordering::SeqCst);
    c.server
        .knobs()
        .limit_window_s
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let mut refused = None;
    for _ in 0..6 {
        let out = c.w.run(&["read", "op://Dev/Stripe/key"]);
        if out.code != 0 {
            refused = Some(out);
            break;
        }
    }
    let out = refused.expect("fake-connect answered 429");
    assert_eq!(out.code, 75, "{}", out.stderr);
    let served = c.server.requests().len();
    let out = c.w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.stderr.contains("sends nothing"), "{}", out.stderr);
    assert_eq!(c.server.requests().len(), served, "a request was sent");
    // Connect sessions are counted (no limit by default) and show the retry time.
    let q = c.w.status()["sessions"][0]["quota"].clone();
    assert!(q["reads_per_hour"]["used"].as_u64().unwrap() >= 4, "{q}");
    assert_eq!(q["reads_per_hour"]["limit"], 0);
    assert!(q["retry_after_s"].as_u64().is_some(), "{q}");
    // After Retry-After, calls go through again.
    let mut last = String::new();
    assert!(
        wait_until(Duration::from_secs(6), || {
            let out = c.w.run(&["read", "op://Dev/Stripe/key"]);
            last = out.stderr;
            out.code == 0
        }),
        "{last}"
    );
}

#[test]
fn a_connect_budget_stops_before_the_server_is_asked() {
    let c = Connect::started("cache_ttl = \"0s\"\n[quota]\nreads_per_hour = 4\n");
    let mut refused = None;
    for _ in 0..6 {
        let out = c.w.run(&["read", "op://Dev/Stripe/key"]);
        if out.code != 0 {
            refused = Some(out);
            break;
        }
    }
    let out = refused.expect("the budget ran out");
    assert_eq!(out.code, 75, "{}", out.stderr);
    assert!(out.stderr.contains("4 reads per hour"), "{}", out.stderr);
    let v1 = c.server.count("GET /v1/");
    assert!(
        v1 <= 4 + 1,
        "{v1} requests reached the server (the init's proof is one)"
    );
    assert_eq!(c.w.run(&["read", "op://Dev/Stripe/key"]).code, 75);
    assert_eq!(c.server.count("GET /v1/"), v1);
}

#[test]
fn a_caller_looping_on_errors_is_answered_from_memory_only() {
    // No negative cache: without the brake every try would be an op call.
    let (w, _) = sa_world(
        "ci",
        "negative_ttl = \"0s\"\n[quota]\ncaller_errors_per_minute = 3\n",
    );
    for _ in 0..20 {
        let r = resolve_raw(&w, MISSING);
        assert_eq!(r["type"], "error");
    }
    assert_eq!(
        op_calls(&w, "read"),
        4,
        "more than 3 errors in a row brake the caller"
    );
    let r = resolve_raw(&w, MISSING);
    assert_eq!(r["code"], "rate_limited", "{r}");
    assert!(r["message"].as_str().unwrap().contains("looping"), "{r}");
    assert_eq!(r["retry_after_s"], 60);
    // Another caller (a client process under a different parent) is not braked.
    let out = w.run(&["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn a_braked_caller_still_gets_op_s_words_for_a_remembered_miss() {
    let (w, _) = sa_world(
        "ci",
        "negative_ttl = \"30s\"\n[quota]\ncaller_errors_per_minute = 2\n",
    );
    for _ in 0..5 {
        resolve_raw(&w, MISSING);
    }
    let r = resolve_raw(&w, MISSING);
    assert_eq!(r["code"], "op_failed", "{r}");
    assert!(r["message"].as_str().unwrap().contains("isn't an item"));
    assert!(r["fix"].as_str().unwrap().contains("looping"), "{r}");
    assert_eq!(r["remembered"], true);
    assert_eq!(op_calls(&w, "read"), 1);
    // A reference it never asked for is not looked up while it loops.
    let r = resolve_raw(&w, "op://Dev/Stripe/key");
    assert_eq!(r["code"], "rate_limited", "{r}");
}

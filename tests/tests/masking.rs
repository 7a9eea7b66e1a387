//! Issue 14, part 2: `op-session run` conceals a value printed base64-encoded, hex-encoded,
//! percent-encoded or JSON-escaped, and one written half to stdout and half to stderr when the
//! two go to the same place; `--mask=exact` keeps `op run`'s behaviour, and short values are
//! masked only as they are.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::process::Stdio;

use op_session_e2e::Finish as _;
use op_session_e2e::{Out, World};

const MY_PASSWORD: &[u8] = b"correct horse battery staple\n";
const STRIPE: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
const CONCEALED: &str = "<concealed by 1Password>";

fn world() -> World {
    let w = World::new("");
    w.load_basic();
    let out = w.run_with_stdin(
        &["init", "--account", "my", "--password-stdin"],
        MY_PASSWORD,
    );
    assert_eq!(out.code, 0, "init: {}", out.stderr);
    w
}

/// `op-session run [flags] -- sh -c SCRIPT` with `K` holding the Stripe key's reference.
fn run_script(w: &World, flags: &[&str], script: &str) -> Out {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "sh", "-c", script]);
    w.client(&args)
        .env("K", "op://Dev/Stripe/key")
        .env("U", "op://Dev/Database/username")
        .finish()
        .unwrap()
        .into()
}

/// Each line of the script prints the key in one encoding, made by the usual tools.
const ENCODINGS: &str = r#"
printf '%s' "$K" | base64 -w0; echo
printf '%s' "$K" | base64 -w0 | tr '+/' '-_' | tr -d '='; echo
printf 'Authorization: Basic '; printf 'user:%s' "$K" | base64 -w0; echo
printf 'xy%s' "$K" | base64 -w0; echo
printf '%s' "$K" | od -An -tx1 | tr -d ' \n'; echo
printf '%s' "$K" | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F'; echo
python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1] + "/?&", safe=""))' "$K"
python3 -c 'import sys, json; print(json.dumps({"key": sys.argv[1] + "\n\"q\""}))' "$K"
"#;

#[test]
fn run_conceals_base64_hex_percent_and_json_forms_of_a_value() {
    let w = world();
    let out = run_script(&w, &[], ENCODINGS);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{}", out.stdout);
    for line in &lines[..2] {
        assert_eq!(*line, CONCEALED);
    }
    // "user:" + key is 37 bytes: the characters that mix "user:" and the key stay.
    assert!(
        lines[2].starts_with("Authorization: Basic dXNlcj") && lines[2].contains(CONCEALED),
        "{}",
        lines[2]
    );
    assert!(lines[3].contains(CONCEALED), "{}", lines[3]);
    assert_eq!(lines[4], CONCEALED);
    assert_eq!(lines[5], CONCEALED);
    assert_eq!(lines[6], format!("{CONCEALED}%2F%3F%26"));
    assert_eq!(
        lines[7],
        format!("{{\"key\": \"{CONCEALED}\\n\\\"q\\\"\"}}")
    );

    // With --mask=exact (op run's behaviour) the base64 and hex forms pass; the last two
    // lines hold the key's own bytes (it has nothing to escape), so they are still masked.
    let exact = run_script(&w, &["--mask=exact"], ENCODINGS);
    assert_eq!(exact.code, 0, "{}", exact.stderr);
    let exact_lines: Vec<&str> = exact.stdout.lines().collect();
    assert_eq!(exact_lines.len(), 8);
    for line in &exact_lines[..6] {
        assert!(!line.contains(CONCEALED), "{line}");
    }
    assert_eq!(exact_lines[6..], lines[6..]);
    // And a minimum above the key's length turns the encoded forms off as well, by flag or
    // by environment.
    let long = run_script(&w, &["--mask-min-encoded", "64"], ENCODINGS);
    assert_eq!(long.stdout, exact.stdout);
    let by_env: Out = w
        .client(&["run", "--", "sh", "-c", ENCODINGS])
        .env("K", "op://Dev/Stripe/key")
        .env("OPSESSION_MASK_MIN_ENCODED", "64")
        .finish()
        .unwrap()
        .into();
    assert_eq!(by_env.stdout, exact.stdout);
    let bad: Out = w
        .client(&["run", "--", "true"])
        .env("K", "op://Dev/Stripe/key")
        .env("OPSESSION_MASK_MIN_ENCODED", "eight")
        .finish()
        .unwrap()
        .into();
    assert_eq!(bad.code, 64, "{}", bad.stderr);
    w.run(&["stop"]);
}

#[test]
fn a_short_value_is_masked_as_it_is_but_not_in_encoded_forms() {
    let w = world();
    // "dbadmin" is 7 bytes, under the default minimum of 8.
    let out = run_script(&w, &[], r#"echo "$U"; printf '%s' "$U" | base64"#);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{CONCEALED}\nZGJhZG1pbg==\n"));
    let out = run_script(
        &w,
        &["--mask-min-encoded", "4"],
        r#"printf '%s' "$U" | base64"#,
    );
    assert_eq!(out.stdout, format!("{CONCEALED}\n"));
    w.run(&["stop"]);
}

#[test]
fn a_value_split_between_stdout_and_stderr_into_one_pipe_is_masked() {
    let w = world();
    let script = "printf 'key=sk_test_4eC3' ; sleep 0.1; printf '9HqLyjWDarjtT1zdp7dc!\\n' >&2; \
                  printf '%s' \"$K\" | base64 -w0 | head -c 20; sleep 0.1; \
                  printf '%s' \"$K\" | base64 -w0 | tail -c +21 >&2; echo";
    let (mut reader, writer) = std::io::pipe().unwrap();
    let mut child = w
        .client(&["run", "--", "sh", "-c", script])
        .env("K", "op://Dev/Stripe/key")
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap();
    let mut both = String::new();
    reader.read_to_string(&mut both).unwrap();
    assert!(op_session_e2e::wait_status(&mut child, op_session_e2e::DEADLINE).success());
    assert_eq!(both, format!("key={CONCEALED}!\n{CONCEALED}\n"));
    assert!(!both.contains(STRIPE));

    // Separate destinations keep separate streams: each half stays where it was written, and
    // neither holds the value.
    let out: Out = w
        .client(&["run", "--", "sh", "-c", script])
        .env("K", "op://Dev/Stripe/key")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .finish()
        .unwrap()
        .into();
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("key=sk_test_4eC3"), "{}", out.stdout);
    assert!(
        out.stderr.starts_with("9HqLyjWDarjtT1zdp7dc!"),
        "{}",
        out.stderr
    );
    w.run(&["stop"]);
}

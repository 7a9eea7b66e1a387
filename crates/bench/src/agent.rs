//! Scenario 2, the agent: 100 tool calls with no TTY, each a fresh `sh -c`, reading five
//! distinct references round-robin, done three ways:
//!
//! - (a) `op read` directly in each call, with the session variable a person exported once
//!   (`eval $(op signin)`) in the agent's environment;
//! - (b) the op-session skill's way: every call runs `op whoami --session <token>` and then
//!   `op --session <token> read …`, the token read from `~/.op-session-token` (written once by
//!   `op signin --raw`), so the token is on argv twice per call ([`SKILL_SCRIPT`]);
//! - (c) `op-session read`, after one `op-session init`.
//!
//! Counts come from fake-op's counters and call log. Biometric prompts are counted in a second
//! pair of worlds whose app-integration account holds the same vaults, at zero latency (a
//! prompt does not depend on latency). The skill's way needs a token, so it has no app mode.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::fixture::{AGENT_REFS, Fixtures};
use crate::report::{Outcome, Section, Table, Target};
use crate::stats::{fmt_duration, fmt_ratio, ratio};
use crate::world::{Bins, Counters, MY_PASSWORD, TEAM, World};

/// Tool calls per way.
pub const CALLS: usize = 100;

/// (a): `op` runs as a child of the tool call's shell (`; exit $?` keeps the shell from
/// exec-ing it, as an agent's wrapper around the command line does).
const DIRECT: &str = r#""$OP" read "$1"; exit $?"#;

/// (c): the same call through op-session.
const THROUGH_OP_SESSION: &str = r#""$OPS" read "$1"; exit $?"#;

/// (b): what the op-session skill runs in every tool call.
pub const SKILL_SCRIPT: &str = r#"# The op-session skill's way, once per tool call: check the session with `op whoami`, then
# read with the token on argv. A person wrote the token file once with
# `op signin --raw > ~/.op-session-token`; no TTY here, so an expired session is an error.
token=$(cat "$HOME/.op-session-token") || exit 1
if ! "$OP" whoami --session "$token" >/dev/null; then
    echo "the 1Password session expired: run op signin --raw > ~/.op-session-token" >&2
    exit 1
fi
"$OP" --session "$token" read "$1"
"#;

/// How one way did.
#[derive(Debug, Default)]
struct Way {
    /// The one-time sign-in before the calls.
    setup: Duration,
    /// The 100 calls.
    calls: Duration,
    /// Calls that failed or printed the wrong value.
    errors: usize,
    /// The first failure, for the notes.
    first_error: Option<String>,
    /// `op` invocations of the sign-in and the calls.
    total: Counters,
    /// `op` invocations of the calls alone.
    during_calls: Counters,
    /// Invocations whose argv held the token (or another secret).
    argv_secret: usize,
}

/// Run the tool calls; `call(reference)` builds one call's command.
fn tool_calls(w: &World, way: &mut Way, call: impl Fn(&str) -> Command) -> Result<()> {
    let before = w.counters()?;
    let started = Instant::now();
    for i in 0..CALLS {
        let (reference, value) = AGENT_REFS[i % AGENT_REFS.len()];
        let out = call(reference).output().context("spawning a tool call")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || stdout != format!("{value}\n") {
            way.errors += 1;
            if way.first_error.is_none() {
                way.first_error = Some(format!(
                    "{reference}: {} {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    way.calls = started.elapsed();
    way.during_calls = w.counters()?.since(&before);
    Ok(())
}

fn shell(w: &World, script: &str, reference: &str, extra: &[(String, String)]) -> Command {
    let mut c = w.command("sh");
    c.args(["-c", script, "sh", reference])
        .env("OP", &w.bins.fake_op)
        .env("OPS", &w.bins.client)
        .envs(extra.iter().cloned());
    c
}

/// `op signin --account my [--raw]` with the password on stdin; returns stdout.
fn signin(w: &World, raw: bool) -> Result<String> {
    let mut args = op_grammar::OpCall::signin().account(Some("my")).args();
    if raw {
        args.push("--raw".into());
    }
    let mut cmd = w.command(&w.bins.fake_op);
    cmd.args(&args);
    let out = w.run_with_stdin(cmd, format!("{MY_PASSWORD}\n").as_bytes())?;
    if out.code != 0 {
        bail!("op signin failed: {}", out.stderr.trim());
    }
    Ok(out.stdout)
}

/// (a) in token mode.
fn direct(bins: &Bins, fx: &Fixtures, latency_ms: u64) -> Result<Way> {
    let w = World::new(bins, fx.basic())?;
    w.set_latency(latency_ms)?;
    let mut way = Way::default();
    let t = Instant::now();
    let export = signin(&w, false)?;
    way.setup = t.elapsed();
    // `export OP_SESSION_<USERUUID>="<token>"`, as `eval $(op signin)` would apply it.
    let (var, token) = export
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("export "))
        .and_then(|l| l.split_once('='))
        .context("op signin printed no export line")?;
    let session = vec![(var.to_string(), token.trim_matches('"').to_string())];
    tool_calls(&w, &mut way, |r| shell(&w, DIRECT, r, &session))?;
    way.total = w.counters()?;
    way.argv_secret = w.argv_with_secret();
    Ok(way)
}

/// (b): the skill's script.
fn skill(bins: &Bins, fx: &Fixtures, latency_ms: u64) -> Result<Way> {
    use std::os::unix::fs::OpenOptionsExt;
    let w = World::new(bins, fx.basic())?;
    w.set_latency(latency_ms)?;
    let script = w.dir.path().join("op-skill.sh");
    std::fs::write(&script, SKILL_SCRIPT)?;
    let mut way = Way::default();
    let t = Instant::now();
    let token = signin(&w, true)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(w.home.join(".op-session-token"))?;
    std::io::Write::write_all(&mut file, token.as_bytes())?;
    way.setup = t.elapsed();
    tool_calls(&w, &mut way, |r| {
        let mut c = w.command("sh");
        c.arg(&script).arg(r).env("OP", &w.bins.fake_op);
        c
    })?;
    way.total = w.counters()?;
    way.argv_secret = w.argv_with_secret();
    Ok(way)
}

/// (c) in token mode.
fn op_session(bins: &Bins, fx: &Fixtures, latency_ms: u64) -> Result<Way> {
    let w = World::new(bins, fx.basic())?;
    w.set_latency(latency_ms)?;
    let mut way = Way::default();
    let t = Instant::now();
    w.init_token("my")?;
    way.setup = t.elapsed();
    tool_calls(&w, &mut way, |r| shell(&w, THROUGH_OP_SESSION, r, &[]))?;
    way.total = w.counters()?;
    way.argv_secret = w.argv_with_secret();
    w.stop()?;
    Ok(way)
}

/// (a) or (c) against the app-integration account: prompts and invocations.
fn app_mode(bins: &Bins, fx: &Fixtures, through_op_session: bool) -> Result<Way> {
    let w = World::new(bins, &fx.app)?;
    w.set_latency(0)?;
    let mut way = Way::default();
    let account = vec![("OP_ACCOUNT".to_string(), TEAM.to_string())];
    if through_op_session {
        let t = Instant::now();
        w.init_app(TEAM)?;
        way.setup = t.elapsed();
    }
    let script = if through_op_session {
        THROUGH_OP_SESSION
    } else {
        DIRECT
    };
    tool_calls(&w, &mut way, |r| shell(&w, script, r, &account))?;
    way.total = w.counters()?;
    way.argv_secret = w.argv_with_secret();
    w.stop()?;
    Ok(way)
}

/// Run scenario 2 with `latency_ms` per `op` invocation.
pub fn run(bins: &Bins, fx: &Fixtures, latency_ms: u64) -> Result<Outcome> {
    eprintln!("  (a) direct op read, token mode…");
    let a = direct(bins, fx, latency_ms)?;
    eprintln!("  (b) the op-session skill's script, token mode…");
    let b = skill(bins, fx, latency_ms)?;
    eprintln!("  (c) op-session read, token mode…");
    let c = op_session(bins, fx, latency_ms)?;
    eprintln!("  (a) and (c) in app mode (prompts)…");
    let a_app = app_mode(bins, fx, false)?;
    let c_app = app_mode(bins, fx, true)?;

    let mut table = Table::new(&[
        "way",
        "sign-in (once)",
        "100 tool calls",
        "per call",
        "`op` invocations (sign-in + calls)",
        "errors",
        "argv holding the token",
        "prompts, app mode",
    ]);
    let rows: [(&str, &Way, Option<&Way>); 3] = [
        ("(a) `op read` directly", &a, Some(&a_app)),
        ("(b) op-session skill (`whoami` + `--session`)", &b, None),
        ("(c) `op-session read`", &c, Some(&c_app)),
    ];
    for (name, way, app) in rows {
        table.row(vec![
            name.to_string(),
            fmt_duration(way.setup),
            fmt_duration(way.calls),
            fmt_duration(way.calls / CALLS as u32),
            way.total.describe(),
            way.errors.to_string(),
            way.argv_secret.to_string(),
            app.map(|x| x.total.prompts.to_string())
                .unwrap_or_else(|| "n/a (needs a token)".into()),
        ]);
    }
    let mut notes = vec![
        format!(
            "Every `op` invocation sleeps {latency_ms} ms first (fake-op's latency, standing in \
             for the round trip to 1Password). Each tool call is a fresh `sh -c` with no TTY and \
             stdin `/dev/null`, reading {} distinct references round-robin; a call counts as an \
             error unless it exits 0 and prints exactly the value.",
            AGENT_REFS.len()
        ),
        "(a) gets the session variable a person exported once (`eval $(op signin)`), so it \
         needs no `whoami`; its sign-in is counted. (b) runs this script per call, the token \
         file written once by `op signin --raw`:"
            .into(),
        format!("```sh\n{}```", SKILL_SCRIPT),
        format!(
            "(c) signs in once with `op-session init --account my --password-stdin`; the \
             daemon then runs `op` only for cache misses. `op-session stop` (which revokes the \
             session with `op signout`) runs after the counts are taken. `op` invocations during \
             the 100 calls alone: (a) {}, (b) {}, (c) {}.",
            a.during_calls.describe(),
            b.during_calls.describe(),
            c.during_calls.describe()
        ),
        format!(
            "Prompts: the same calls against the app-integration account `{TEAM}` (holding the \
             same vaults), at 0 ms latency because a prompt does not depend on it. `op` \
             invocations there: (a) {}, (c) {} including `op-session init`. fake-op ties an \
             approval to the calling terminal, or without one to the parent process, as the \
             desktop app does: each fresh shell prompts again, the long-lived daemon once. The \
             skill's way has no app mode (it needs a token for `--session`).",
            a_app.total.describe(),
            c_app.total.describe()
        ),
        "\"argv holding the token\" counts fake-op call-log lines with `secret_in_argv` (a live \
         token, a password or a stored secret anywhere in argv)."
            .into(),
    ];
    for (name, way) in [
        ("(a)", &a),
        ("(b)", &b),
        ("(c)", &c),
        ("(a) app", &a_app),
        ("(c) app", &c_app),
    ] {
        if let Some(e) = &way.first_error {
            notes.push(format!("{name}: {} errors, the first: {e}", way.errors));
        }
    }

    let calls_ratio = ratio(
        b.during_calls.invocations as f64,
        c.during_calls.invocations as f64,
    );
    let total_ratio = ratio(b.total.invocations as f64, c.total.invocations as f64);
    let targets = vec![
        Target {
            what: "agent: `op` invocations in the 100 tool calls, (b) skill ÷ (c) op-session"
                .into(),
            goal: "≥ 40×".into(),
            measured: format!(
                "{} ({} vs {})",
                fmt_ratio(calls_ratio),
                b.during_calls.invocations,
                c.during_calls.invocations
            ),
            pass: calls_ratio >= 40.0 && c.errors == 0,
        },
        Target {
            what: "agent: the same, counting each way's one-time sign-in".into(),
            goal: "≥ 40×".into(),
            measured: format!(
                "{} ({} vs {})",
                fmt_ratio(total_ratio),
                b.total.invocations,
                c.total.invocations
            ),
            pass: total_ratio >= 40.0 && c.errors == 0,
        },
        Target {
            what: "agent, app mode: biometric prompts through op-session".into(),
            goal: "exactly 1".into(),
            measured: format!(
                "{} (direct `op`: {})",
                c_app.total.prompts, a_app.total.prompts
            ),
            pass: c_app.total.prompts == 1 && c_app.errors == 0,
        },
    ];
    Ok(Outcome {
        sections: vec![Section {
            title: "2. The agent scenario".into(),
            intro: format!(
                "{CALLS} TTY-less tool calls reading {} distinct references, three ways.",
                AGENT_REFS.len()
            ),
            table,
            notes,
        }],
        targets,
    })
}

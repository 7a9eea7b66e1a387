//! `fake-op-ctl`: the test harness's hand on the simulator.
//!
//! Every subcommand takes the same state lock as `fake-op`, so it is safe to run while
//! invocations are in flight. Usage (the home directory is `$FAKE_OP_HOME`, else
//! `$HOME/.fake-op`):
//!
//! ```text
//! fake-op-ctl load FIXTURE.json          replace the state with a fixture; clear the call log
//! fake-op-ctl advance DURATION           move the simulated clock (31m, 2s, 13h, 1h30m, -5m)
//! fake-op-ctl revoke [--account A]       end token sessions (all, or one account's)
//! fake-op-ctl revoke --service-account N delete a service account on the "server"
//! fake-op-ctl app lock|unlock|quit|start lock the desktop app (revokes all authorizations),
//!                                        or make it unreachable / reachable
//! fake-op-ctl prompt approve|deny|timeout [--always] [--delay MS]
//!                                        answer the next prompt (or all, with --always)
//! fake-op-ctl latency MS                 per-invocation delay (FAKE_OP_LATENCY_MS wins)
//! fake-op-ctl counters                   counters as JSON
//! fake-op-ctl calls                      the call log (JSON lines)
//! fake-op-ctl state                      the whole state as JSON
//! fake-op-ctl token NAME                 a service account's ops_ token
//! ```

use std::path::Path;

use crate::state::{Answer, State};
use crate::{auth, clock, fixture, store};

/// Usage text.
pub const USAGE: &str = "usage: fake-op-ctl <command>
  load FIXTURE.json
  advance DURATION                       (e.g. 31m, 2s, 13h, 1h30m)
  revoke [--account A] [--service-account NAME]
  app lock|unlock|quit|start
  prompt approve|deny|timeout [--always] [--delay MS]
  latency MS
  counters
  calls
  state
  token SERVICE_ACCOUNT_NAME
";

/// Run a ctl command; returns what to print on success.
pub fn run(home: &Path, args: &[String]) -> Result<String, String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["load", path] => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            let state = fixture::load(&text).map_err(|e| format!("{path}: {e}"))?;
            change(home, |s| {
                *s = state;
                Ok(())
            })?;
            let calls = store::calls_path(home);
            if calls.exists() {
                std::fs::write(&calls, b"").map_err(|e| e.to_string())?;
            }
            Ok(String::new())
        }
        ["advance", d] => {
            let ms = clock::parse_duration(d).ok_or_else(|| format!("invalid duration {d:?}"))?;
            change(home, |s| {
                s.clock_offset_ms += ms;
                Ok(())
            })
        }
        ["revoke", rest @ ..] => revoke(home, rest),
        ["app", what] => change(home, |s| {
            match *what {
                "lock" => {
                    s.app.locked = true;
                    s.authorizations.clear();
                }
                "unlock" => s.app.locked = false,
                "quit" => {
                    s.app.running = false;
                    s.authorizations.clear();
                }
                "start" => s.app.running = true,
                other => return Err(format!("unknown app action {other:?}")),
            }
            Ok(())
        }),
        ["prompt", answer, rest @ ..] => {
            let answer = match *answer {
                "approve" => Answer::Approve,
                "deny" => Answer::Deny,
                "timeout" => Answer::Timeout,
                other => return Err(format!("unknown prompt answer {other:?}")),
            };
            let mut always = false;
            let mut delay = None;
            let mut it = rest.iter();
            while let Some(flag) = it.next() {
                match *flag {
                    "--always" => always = true,
                    "--delay" => {
                        let v = it.next().ok_or("--delay needs milliseconds")?;
                        delay = Some(v.parse::<u64>().map_err(|e| format!("--delay: {e}"))?);
                    }
                    other => return Err(format!("unknown flag {other:?}")),
                }
            }
            change(home, |s| {
                if always {
                    s.prompt.default = answer;
                    s.prompt.next.clear();
                } else {
                    s.prompt.next.push(answer);
                }
                if let Some(d) = delay {
                    s.prompt.delay_ms = d;
                }
                Ok(())
            })
        }
        ["latency", ms] => {
            let ms: u64 = ms.parse().map_err(|e| format!("latency: {e}"))?;
            change(home, |s| {
                s.latency_ms = ms;
                Ok(())
            })
        }
        ["counters"] => {
            let state = store::peek(home).map_err(|e| e.to_string())?;
            serde_json::to_string_pretty(&state.counters)
                .map(|s| s + "\n")
                .map_err(|e| e.to_string())
        }
        ["calls"] => match std::fs::read_to_string(store::calls_path(home)) {
            Ok(s) => Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(e.to_string()),
        },
        ["state"] => {
            let state = store::peek(home).map_err(|e| e.to_string())?;
            serde_json::to_string_pretty(&state)
                .map(|s| s + "\n")
                .map_err(|e| e.to_string())
        }
        ["token", name] => {
            let state = store::peek(home).map_err(|e| e.to_string())?;
            state
                .service_accounts
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(name))
                .map(|s| format!("{}\n", s.token))
                .ok_or_else(|| format!("no service account named {name:?}"))
        }
        _ => Err(USAGE.to_string()),
    }
}

fn change(home: &Path, f: impl FnOnce(&mut State) -> Result<(), String>) -> Result<String, String> {
    let mut locked = store::Locked::open(home).map_err(|e| e.to_string())?;
    f(&mut locked.state)?;
    locked.save().map_err(|e| e.to_string())?;
    Ok(String::new())
}

fn revoke(home: &Path, rest: &[&str]) -> Result<String, String> {
    match rest {
        [] => change(home, |s| {
            s.sessions.clear();
            Ok(())
        }),
        ["--account", a] => change(home, |s| {
            let account = s
                .accounts
                .iter()
                .find(|acc| auth::account_matches(acc, a))
                .ok_or_else(|| format!("no account matches {a:?}"))?;
            let uuid = account.user_uuid.clone();
            s.sessions.retain(|x| x.user_uuid != uuid);
            s.authorizations.retain(|x| x.user_uuid != uuid);
            Ok(())
        }),
        ["--service-account", name] => change(home, |s| {
            let sa = s
                .service_accounts
                .iter_mut()
                .find(|x| x.name.eq_ignore_ascii_case(name) || x.email == *name)
                .ok_or_else(|| format!("no service account named {name:?}"))?;
            sa.revoked = true;
            Ok(())
        }),
        _ => Err(USAGE.to_string()),
    }
}

//! `op signin` and `op signout` (docs/op-behaviour.md §1.2, §1.3, §1.5).
//!
//! Token mode: the password comes from stdin when it is not a terminal (from `/dev/tty`
//! otherwise), a new 43-character token is stored as a server-side session, and the export
//! line plus three comment lines (or the bare token with `--raw`) go to stdout. Sign-in is
//! idempotent: a live token in the environment is handed back without asking again.
//! App mode: authorize this session credential (one prompt) and print nothing.

use std::io::{BufRead, Read, Write};

use crate::auth::{self, Mode};
use crate::encoding::session_token;
use crate::error::{self, OpError};
use crate::invocation::{Ctx, Outcome};
use crate::state::{Session, State};

/// `op signin [--account A] [--raw] [-f]`.
pub fn signin(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    super::exact_args(ctx, 0)?;
    if auth::sa_token(ctx).is_some() {
        // With a service-account token op never prompts and ignores sign-in (docs/op-behaviour.md §6).
        return Ok(Outcome::default());
    }
    let account = auth::select_account(ctx, state).map_err(|e| e.for_command())?;
    let raw = ctx.args.bool("raw");
    match auth::mode_of(ctx, &state.accounts[account]) {
        Mode::App => {
            auth::authorize_app(ctx, state, account).map_err(|e| e.for_command())?;
            state.latest_signin = Some(state.accounts[account].user_uuid.clone());
            Ok(Outcome::default())
        }
        Mode::Token => {
            if ctx.stdout_tty && !raw && !ctx.args.bool("force") {
                return Err(OpError::new(
                    "Output of 'op signin' is meant to be executed by your terminal. Please run 'eval $(op signin)'. You can use the '-f' flag to override this warning.",
                ));
            }
            let existing = if auth::check_token(ctx, state, account, true).is_ok() {
                ctx.args.value("session").map(str::to_string).or_else(|| {
                    ctx.env
                        .get(&format!("OP_SESSION_{}", state.accounts[account].user_uuid))
                        .cloned()
                })
            } else {
                None
            };
            let token = match existing {
                Some(t) => t,
                None => new_session(ctx, state, account)?,
            };
            let acct = &state.accounts[account];
            state.latest_signin = Some(acct.user_uuid.clone());
            let out = if raw {
                format!("{token}\n")
            } else {
                format!(
                    "export OP_SESSION_{}=\"{token}\"\n# This command is meant to be used with your shell's eval function.\n{}\n# Use the --raw flag to only output the session token.\n",
                    acct.user_uuid,
                    state.quirks.signin_hint.replace("{account}", &acct.label()),
                )
            };
            crate::config::write(ctx, state);
            Ok(Outcome::text(out))
        }
    }
}

fn new_session(ctx: &Ctx, state: &mut State, account: usize) -> Result<String, OpError> {
    let acct = &state.accounts[account];
    let password = match read_password(ctx, &acct.email, acct.host()) {
        Some(p) => p,
        None => {
            state.counters.signin_failures += 1;
            return Err(OpError::new(error::NO_TERMINAL));
        }
    };
    if password != acct.password || acct.password.is_empty() {
        state.counters.signin_failures += 1;
        return Err(OpError::new(error::WRONG_PASSWORD));
    }
    let token = session_token();
    state.sessions.push(Session {
        token: token.clone(),
        user_uuid: acct.user_uuid.clone(),
        created_ms: ctx.now,
        last_used_ms: ctx.now,
    });
    state.counters.signins += 1;
    Ok(token)
}

/// The password: stdin's first line when stdin is not a terminal (nothing at all means there
/// was no one to ask), else a no-echo prompt on `/dev/tty`.
fn read_password(ctx: &Ctx, email: &str, host: &str) -> Option<String> {
    if !ctx.stdin_tty {
        let mut buf = Vec::new();
        std::io::stdin().lock().read_to_end(&mut buf).ok()?;
        if buf.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&buf);
        return Some(text.lines().next().unwrap_or("").to_string());
    }
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let mut writer = tty.try_clone().ok()?;
    let _ = write!(writer, "Enter the password for {email} at {host}: ");
    let saved = nix::sys::termios::tcgetattr(&tty).ok();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet
            .local_flags
            .remove(nix::sys::termios::LocalFlags::ECHO);
        let _ = nix::sys::termios::tcsetattr(&tty, nix::sys::termios::SetArg::TCSANOW, &quiet);
    }
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    if let Some(t) = &saved {
        let _ = nix::sys::termios::tcsetattr(&tty, nix::sys::termios::SetArg::TCSANOW, t);
    }
    let _ = writeln!(writer);
    read.ok()?;
    Some(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `op signout [--account A] [--all] [--forget]`: revokes server sessions and app
/// authorizations. Signing out without a live session succeeds quietly (assumed).
pub fn signout(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    super::exact_args(ctx, 0)?;
    if auth::sa_token(ctx).is_some() {
        return Ok(Outcome::default());
    }
    let forget = ctx.args.bool("forget");
    if ctx.args.bool("all") {
        let offered: Vec<String> = ctx
            .env
            .iter()
            .filter(|(k, _)| k.starts_with("OP_SESSION_"))
            .map(|(_, v)| v.clone())
            .chain(ctx.args.value("session").map(str::to_string))
            .collect();
        let before = state.sessions.len() + state.authorizations.len();
        state.sessions.retain(|s| !offered.contains(&s.token));
        state.authorizations.clear();
        state.counters.signouts += (before - state.sessions.len()) as u64;
        if forget {
            state.accounts.iter_mut().for_each(|a| a.forgotten = true);
            state.latest_signin = None;
        }
        return Ok(Outcome::default());
    }
    let account = auth::select_account(ctx, state).map_err(|e| e.for_command())?;
    let uuid = state.accounts[account].user_uuid.clone();
    match auth::mode_of(ctx, &state.accounts[account]) {
        Mode::Token => {
            let token = ctx
                .args
                .value("session")
                .map(str::to_string)
                .or_else(|| ctx.env.get(&format!("OP_SESSION_{uuid}")).cloned());
            if let Some(token) = token {
                let before = state.sessions.len();
                state
                    .sessions
                    .retain(|s| !(s.token == token && s.user_uuid == uuid));
                state.counters.signouts += (before - state.sessions.len()) as u64;
            }
        }
        Mode::App => {
            let before = state.authorizations.len();
            state
                .authorizations
                .retain(|a| !(a.credential == ctx.credential && a.user_uuid == uuid));
            state.counters.signouts += (before - state.authorizations.len()) as u64;
        }
    }
    if forget {
        state.accounts[account].forgotten = true;
        state.sessions.retain(|s| s.user_uuid != uuid);
        if state.latest_signin.as_deref() == Some(uuid.as_str()) {
            state.latest_signin = None;
        }
    }
    Ok(Outcome::default())
}

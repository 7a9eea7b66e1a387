//! `op-session init`: start a session in token, app or service-account mode.
//!
//! Token mode runs `op signin` here, in the person's terminal (a child of the daemon has no
//! controlling terminal and could not prompt), captures the export line from its stdout, sends
//! the variable name and token to the daemon, and wipes its copy. Which `op` to run is asked of
//! the daemon, so both sides use the same binary. Without a terminal (an agent), it asks the
//! daemon for app mode directly, so a person can approve on the desktop.

use std::io::{IsTerminal, Read, Write};
use std::process::{Command, Stdio};

use op_session_protocol::{InitRequest, Mode, Request, Response, exit};
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::cli::{InitArgs, ModeArg};
use crate::conn::{Target, request};
use crate::error::{Failure, Result};
use crate::status::{print_session, unexpected_response};

/// Parse `export OP_SESSION_<ID>="<token>"` from `op signin`'s stdout (or a bare `--raw`
/// token, which has no variable name).
pub fn parse_export(out: &str) -> Option<(String, Zeroizing<String>)> {
    for line in out.lines() {
        let Some(rest) = line.trim().strip_prefix("export ") else {
            continue;
        };
        let (var, val) = rest.split_once('=')?;
        if !var.starts_with("OP_SESSION_") {
            continue;
        }
        let val = val.trim().trim_matches('"').trim_matches('\'');
        if val.is_empty() {
            return None;
        }
        return Some((var.to_string(), Zeroizing::new(val.to_string())));
    }
    None
}

/// The `op` binary the daemon runs (so both sides use the same one), and whether a person
/// named it with `op_path`. Names the daemon's config file on stderr, so the person sees
/// where `op_path` came from before the password goes anywhere.
pub fn op_path(t: &Target) -> Result<(String, bool)> {
    match request(t, &Request::OpPath)? {
        Response::OpPath {
            path,
            configured,
            config,
        } => {
            if let Some(c) = config {
                eprintln!("op-session: the daemon's config file is {c}");
            }
            Ok((path, configured))
        }
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected_response(&other)),
    }
}

/// Who besides root could replace `path`: its owner if not root, or anyone with write
/// permission on it or on its directory. `None` when only root can.
pub fn writable_by_others(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let mut problems = Vec::new();
    let dir = path.parent().unwrap_or(std::path::Path::new("/"));
    for (what, p) in [("the binary", path), ("its directory", dir)] {
        match std::fs::metadata(p) {
            Ok(m) => {
                if m.uid() != 0 {
                    problems.push(format!("{what} is owned by uid {}", m.uid()));
                }
                if m.mode() & 0o022 != 0 {
                    problems.push(format!("{what} is group- or world-writable"));
                }
            }
            Err(e) => problems.push(format!("cannot check {what}: {e}")),
        }
    }
    (!problems.is_empty()).then(|| problems.join(", "))
}

/// Name the `op` binary that will receive the password, and warn (asking, in a terminal) when
/// someone other than root could have replaced it, unless the person named it with `op_path`.
fn vet_op_binary(op: &str, configured: bool, interactive: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let path = std::path::Path::new(op);
    let owner = std::fs::metadata(path)
        .map(|m| match m.uid() {
            0 => "root".to_string(),
            uid => format!("uid {uid}"),
        })
        .unwrap_or_else(|_| "unknown".into());
    eprintln!("op-session: signing in with {op} (owner {owner})");
    if configured {
        return Ok(());
    }
    let Some(problems) = writable_by_others(path) else {
        return Ok(());
    };
    eprintln!(
        "op-session: warning: {problems}; whoever can write there can read your password. \
         Set op_path in the op-session config to a binary only root can change."
    );
    if !interactive {
        return Ok(());
    }
    eprint!("Continue and give this op your password? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if answer.trim().eq_ignore_ascii_case("y") || answer.trim().eq_ignore_ascii_case("yes") {
        Ok(())
    } else {
        Err(Failure::usage(
            format!("did not sign in with {op}"),
            "set op_path in the op-session config to the op binary you trust",
        ))
    }
}

/// Hand a session to the daemon and print what it holds.
pub fn send_init(t: &Target, req: InitRequest) -> Result<i32> {
    match request(t, &Request::Init(req))? {
        Response::Session(s) => {
            outln!(
                "op-session: signed in to {} ({} mode); the daemon holds the session",
                s.account,
                s.mode
            );
            print_session(&s);
            Ok(exit::OK)
        }
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected_response(&other)),
    }
}

pub(crate) fn read_secret_stdin(what: &str) -> Result<Zeroizing<String>> {
    let mut buf = Zeroizing::new(String::new());
    std::io::stdin().read_to_string(&mut buf).map_err(|e| {
        Failure::usage(
            format!("cannot read the {what} from stdin: {e}"),
            "pipe it in",
        )
    })?;
    let trimmed = Zeroizing::new(buf.trim().to_string());
    if trimmed.is_empty() {
        return Err(Failure::usage(
            format!("no {what} on stdin"),
            format!("pipe the {what} in, e.g. `op-session init ... < file`"),
        ));
    }
    Ok(trimmed)
}

/// A token from `--token-file`, trimmed.
pub(crate) fn read_token_file(f: &std::path::Path) -> Result<Zeroizing<String>> {
    let raw = Zeroizing::new(std::fs::read_to_string(f).map_err(|e| {
        Failure::usage(
            format!("cannot read {}: {e}", f.display()),
            "check the path",
        )
    })?);
    Ok(Zeroizing::new(raw.trim().to_string()))
}

/// `init`.
pub fn init(t: &Target, args: InitArgs) -> Result<i32> {
    let account = crate::cli::account_or_env(args.account.clone());
    if args.import_skill_session {
        return crate::migrate::import_skill_session(t, account);
    }
    if args.mode == Some(ModeArg::Connect) || args.host.is_some() {
        return crate::connect::init(t, account, &args);
    }
    if args.mode == Some(ModeArg::ServiceAccount) || args.token_file.is_some() {
        let token = match &args.token_file {
            Some(f) => read_token_file(f)?,
            None if std::io::stdin().is_terminal() => {
                return Err(Failure::usage(
                    "a service-account token is read from stdin or --token-file, never from the command line",
                    "op-session init --mode service-account < token-file",
                ));
            }
            None => read_secret_stdin("service-account token")?,
        };
        return send_init(
            t,
            InitRequest {
                account,
                mode: Some(Mode::ServiceAccount),
                session_var: None,
                token: Some(SecretString::from(token.as_str())),
                host: None,
            },
        );
    }
    let tty = std::io::stdin().is_terminal();
    let sign_in_here = args.mode != Some(ModeArg::App) && (tty || args.password_stdin);
    if !sign_in_here {
        if args.mode == Some(ModeArg::Token) {
            return Err(Failure::usage(
                "token mode needs a terminal (or --password-stdin) to run `op signin`",
                "run `op-session init --mode token` in a terminal, or pipe the password with --password-stdin",
            ));
        }
        // No terminal: let the daemon sign its own process in through the desktop app.
        return send_init(
            t,
            InitRequest {
                account,
                mode: Some(Mode::App).filter(|_| args.mode == Some(ModeArg::App)),
                session_var: None,
                token: None,
                host: None,
            },
        );
    }
    let (op, configured) = op_path(t)?;
    vet_op_binary(
        &op,
        configured,
        !args.password_stdin && std::io::stdin().is_terminal(),
    )?;
    let password = if args.password_stdin {
        Some(read_secret_stdin("password")?)
    } else {
        None
    };
    let mut cmd = Command::new(&op);
    cmd.args(
        op_grammar::OpCall::signin()
            .account(account.as_deref())
            .args(),
    );
    // A fresh session that the daemon will own, not one inherited from this shell (nor a
    // service-account or Connect token that would take its place).
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(op_grammar::env::is_credential_var) {
            cmd.env_remove(k);
        }
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    cmd.stdin(if password.is_some() {
        Stdio::piped()
    } else {
        Stdio::inherit()
    });
    let mut child = cmd.spawn().map_err(|e| {
        Failure::new(
            exit::CONFIG,
            format!("cannot run {op}: {e}"),
            "install the 1Password CLI or set op_path",
        )
    })?;
    if let (Some(mut w), Some(p)) = (child.stdin.take(), &password) {
        let mut line = Zeroizing::new(p.as_bytes().to_vec());
        line.push(b'\n');
        let _ = w.write_all(&line);
    }
    let mut out = Zeroizing::new(Vec::new());
    if let Some(mut r) = child.stdout.take() {
        let _ = r.read_to_end(&mut out);
    }
    let status = child
        .wait()
        .map_err(|e| Failure::new(exit::FAILED, format!("op signin failed: {e}"), "retry"))?;
    if !status.success() {
        // op already printed its error on the terminal.
        return Err(Failure::new(
            exit::PERSON_MUST_ACT,
            "op signin did not sign in",
            "check the password and account, then run `op-session init` again",
        ));
    }
    let text = Zeroizing::new(String::from_utf8_lossy(&out).into_owned());
    match parse_export(&text) {
        Some((var, token)) => {
            if args.mode == Some(ModeArg::App) {
                return Err(Failure::usage(
                    "op signin printed a token: this account signs in with a password, not the app",
                    "run `op-session init --mode token`",
                ));
            }
            send_init(
                t,
                InitRequest {
                    account,
                    mode: Some(Mode::Token),
                    session_var: Some(var),
                    token: Some(SecretString::from(token.as_str())),
                    host: None,
                },
            )
        }
        None if text.trim().is_empty() => {
            if args.mode == Some(ModeArg::Token) {
                return Err(Failure::usage(
                    "op signin printed no token: this account uses the 1Password app integration",
                    "run `op-session init --mode app`",
                ));
            }
            send_init(
                t,
                InitRequest {
                    account,
                    mode: Some(Mode::App),
                    session_var: None,
                    token: None,
                    host: None,
                },
            )
        }
        None => Err(Failure::new(
            exit::FAILED,
            "could not find the OP_SESSION_ export line in op signin's output",
            "run `op signin` by hand to see what it prints, and report it",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_op_binary_others_can_replace_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let op = dir.path().join("op");
        std::fs::write(&op, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&op, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let root = nix::unistd::geteuid().is_root();
        assert_eq!(
            writable_by_others(&op).is_none(),
            root,
            "root-owned 0755 is fine"
        );
        std::fs::set_permissions(&op, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let why = writable_by_others(&op).expect("flagged");
        assert!(
            why.contains("the binary is group- or world-writable"),
            "{why}"
        );
        std::fs::set_permissions(&op, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let why = writable_by_others(&op).expect("flagged");
        assert!(
            why.contains("its directory is group- or world-writable"),
            "{why}"
        );
    }

    #[test]
    fn parses_the_export_line() {
        let out = "export OP_SESSION_QAXFAARFSVGTTOAHF37M76FDT4=\"gXKhaUdTwsmM1ESz4Q6cakpvtXMAEom7AAw04_xB39s\"\n# This command is meant to be used with your shell's eval function.\n";
        let (var, tok) = parse_export(out).expect("parses");
        assert_eq!(var, "OP_SESSION_QAXFAARFSVGTTOAHF37M76FDT4");
        assert_eq!(tok.as_str(), "gXKhaUdTwsmM1ESz4Q6cakpvtXMAEom7AAw04_xB39s");
        assert!(parse_export("").is_none());
        assert!(parse_export("export PATH=/bin").is_none());
    }
}

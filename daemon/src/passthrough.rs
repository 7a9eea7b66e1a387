//! `op ARGS` on the caller's behalf, with the caller's own stdin, stdout and stderr.
//!
//! The command line is parsed once, here where it enters the daemon, with the one grammar of
//! `op` (crates/op-grammar); the policy, the account choice, the write check, the audit verb
//! and the spawned argv all read that typed command, and the argv that runs is its canonical
//! rendering, so what was checked is what runs. What the grammar cannot read is refused,
//! never forwarded. Commands that start programs or print credentials never run here, and
//! neither does anything that touches more than 1Password ([`check_touches`]): `op` gets a
//! credential only when every input is typed data the daemon checked and every output is
//! 1Password data for the caller. So `op inject`, `-o`/`--out-file`, `--file-mode`, `--force`,
//! `-i`/`--in-file`, `--template`, `document create FILE` and `-` (stdin items) are refused
//! with the client-side way to do the same (docs/architecture.md, "The passthrough boundary").
//!
//! Owns: the child's environment (the daemon's own plus the caller's presentation variables,
//! never the caller's PATH, loader, proxy or credentials), its working directory (a fixed
//! directory of the daemon's, never the caller's), forwarding the caller's signals to `op`'s
//! process group, killing that group when the caller vanishes, and ending the session when
//! `op` reports it gone. stdout and stderr are relayed with every held credential scrubbed.
//! Writes drop the account's cache so later reads cannot return stale values.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use op_grammar::{Effect, OpCommand, Touch};
use op_session_protocol::{ClientEvent, PassthroughRequest};
use tokio::net::UnixStream;

use crate::connection::read_event;
use crate::error::Error;
use crate::oprun::{Auth, ChildIo, EventSource};
use crate::policy;
use crate::session::Lease;
use crate::state::Daemon;

/// Global flags a caller may not pass: a token on argv, another config directory, debug
/// output that may print session internals.
const REFUSED_FLAGS: &[&str] = &["session", "config", "debug"];

/// Reads [`ClientEvent`]s from the connection while `op` runs.
struct ConnEvents<'a> {
    stream: &'a mut UnixStream,
}

impl EventSource for ConnEvents<'_> {
    fn next_event(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<i32>> + Send + '_>> {
        Box::pin(async move {
            match read_event(self.stream).await {
                Ok(Some(ClientEvent::Signal { signal })) => Some(signal),
                Ok(None) | Err(_) => None,
            }
        })
    }
}

fn refused(what: String, fix: &str) -> Error {
    Error::bad_request(what).with_fix(fix)
}

/// Read a passthrough's arguments with the grammar; the error names the word it could not
/// read. Nothing unreadable is forwarded.
pub(crate) fn parse(args: &[String]) -> Result<OpCommand, Error> {
    op_grammar::parse(args).map_err(|e| {
        refused(
            format!(
                "op-session does not know `{}` in this op command line ({e}); it is refused, not forwarded",
                e.word()
            ),
            "check the spelling against `op --help`; op-session passes only commands and flags it can read",
        )
    })
}

/// Decide whether a parsed passthrough may run at all (before any session is touched). The
/// error names the rule that refused it.
pub(crate) fn check(policy: &policy::Policy, cmd: &OpCommand) -> Result<(), Error> {
    if let Some((f, _)) = cmd
        .flags
        .iter()
        .find(|(f, _)| REFUSED_FLAGS.contains(&f.long))
    {
        return Err(refused(
            format!("`--{}` is not passed through op-session", f.long),
            "drop the flag: op-session supplies the session and op's configuration itself",
        ));
    }
    let verb = cmd.verb().to_string();
    match cmd.effect() {
        Effect::Executes if verb == "run" => {
            return Err(refused(
                "`op run` is not run with the daemon's session".into(),
                "use `op-session run -- COMMAND` (the `op` shim does this for you)",
            ));
        }
        Effect::Executes => {
            return Err(refused(
                format!("`op {verb}` starts programs and is never run with the daemon's session"),
                "run it with your own `op` in a terminal",
            ));
        }
        Effect::RevealsCredential if verb == "signin" => {
            return Err(refused(
                "`op signin` is not run through the daemon's session".into(),
                "use `op-session init` to sign in",
            ));
        }
        Effect::RevealsCredential => {
            return Err(refused(
                format!(
                    "`op {verb}` prints a credential and is never run with the daemon's session"
                ),
                "run it with your own `op` in a terminal",
            ));
        }
        Effect::SessionControl => {
            return Err(refused(
                format!("`op {verb}` would end the daemon's session behind its back"),
                "use `op-session lock` (it signs out and wipes the token)",
            ));
        }
        Effect::Read | Effect::Write | Effect::Destructive | Effect::Local => {}
    }
    check_touches(cmd)?;
    policy::check_command(policy, cmd)?;
    policy::check_passthrough_vaults(policy, cmd)
}

/// The rule a passthrough runs by: `op` gets a credential only when every input is typed data
/// the daemon checked and every output is 1Password data for the caller. A command that would
/// read or write a file, read a template or items from standard input, or expand the
/// environment (all in [`OpCommand::touches`]) is refused with the client-side way to do it,
/// where the caller's own permissions and sandbox apply.
pub(crate) fn check_touches(cmd: &OpCommand) -> Result<(), Error> {
    let verb = cmd.verb();
    if verb == "inject" {
        return Err(refused(
            "`op inject` is not run with the daemon's session: it reads a template the daemon \
             cannot check, expands op's environment and may read or write any file"
                .into(),
            "use `op-session inject [-i TEMPLATE] [-o FILE]`: it resolves only the references in \
             the template and reads and writes files itself, with your permissions",
        ));
    }
    let Some(t) = cmd.touches().into_iter().next() else {
        return Ok(());
    };
    let via = t.via();
    let (what, fix) = match (&t, verb) {
        (Touch::WritesFile { .. } | Touch::FileOption { .. }, "read") => (
            format!("`op read {via}` would have the daemon write a file"),
            "use `op-session read REFERENCE -o FILE [--file-mode MODE] [--force]` (it writes the \
             file itself, with your permissions), or a shell redirect: `op read REFERENCE > FILE`"
                .to_string(),
        ),
        (Touch::WritesFile { .. } | Touch::FileOption { .. }, _) => (
            format!("`op {verb} {via}` would have the daemon write a file"),
            format!("drop {via} and redirect standard output: `op {verb} … > FILE`"),
        ),
        (Touch::ReadsFile { .. }, "item create" | "item edit") => (
            format!("`op {verb} {via}` would have the daemon read a file"),
            format!("give the fields as assignments instead: `op {verb} … 'label=value'`"),
        ),
        (Touch::ReadsFile { .. } | Touch::ReadsStdin { what: "a document" }, _) => (
            format!("`op {verb}` would have the daemon read a file or standard input"),
            "op-session does not upload files: run it with your own `op` in a terminal".to_string(),
        ),
        (Touch::ReadsStdin { what }, _) => (
            format!(
                "`op {verb} -` would read {what} from standard input, which the daemon cannot check"
            ),
            "name it on the command line instead of `-`".to_string(),
        ),
        (Touch::UsesDirectory { .. }, _) => (
            format!("`op {verb} {via}` would have op use a directory of the caller's choosing"),
            "drop the flag: op-session supplies op's configuration itself".to_string(),
        ),
        (Touch::ExpandsTemplate | Touch::ExpandsEnvironment, _) => (
            format!("`op {verb}` expands the environment the daemon's session is in"),
            "use `op-session inject` or `op-session run`".to_string(),
        ),
    };
    Err(refused(
        format!("{what}; it is refused, not forwarded"),
        &fix,
    ))
}

/// The `op://` references a command names (for the audit record).
pub(crate) fn references(cmd: &OpCommand) -> Vec<String> {
    match cmd.spec.map(|s| s.vault) {
        Some(op_grammar::VaultArg::Reference) => cmd.positionals.iter().take(1).cloned().collect(),
        _ => Vec::new(),
    }
}

/// Whether the command changes items or vaults (so cached values may be stale).
pub(crate) fn is_write(cmd: &OpCommand) -> bool {
    matches!(cmd.effect(), Effect::Write | Effect::Destructive)
}

/// The child's environment: the daemon's base environment plus the caller's presentation
/// variables. Nothing else of the caller's reaches a child that holds a token.
fn child_env(daemon: &Daemon, caller: &[(String, String)]) -> Vec<(OsString, OsString)> {
    let mut env = daemon.op.base_env();
    for (k, v) in caller {
        if op_grammar::env::CALLER_PRESENTATION_VARS.contains(&k.as_str()) && !v.contains('\0') {
            env.retain(|(n, _)| n != k.as_str());
            env.push((k.into(), v.into()));
        }
    }
    env
}

/// Where every passthrough's `op` runs: the directory of the daemon's socket (private, ours),
/// else `/`.
fn workdir(daemon: &Daemon) -> std::path::PathBuf {
    daemon
        .info
        .socket
        .parent()
        .filter(|d| d.is_dir())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

/// Run a checked passthrough. `lease` is `None` for commands that need no account (help,
/// `--version`, completion), which run without any credential. Returns `op`'s exit code.
pub(crate) async fn run(
    daemon: &Arc<Daemon>,
    lease: Option<&Lease>,
    mut cmd: OpCommand,
    req: &PassthroughRequest,
    fds: Vec<OwnedFd>,
    stream: &mut UnixStream,
) -> Result<i32, Error> {
    let fds: [OwnedFd; 3] = fds.try_into().map_err(|_| {
        Error::bad_request("a passthrough must pass exactly stdin, stdout and stderr")
    })?;
    // The account op uses is the one the session was chosen by: one `--account`, the session's.
    if let Some(l) = lease {
        cmd.set_account(l.account_arg.as_deref());
    }
    if let Some(l) = lease {
        crate::lifecycle::charge(daemon, l, cmd.effect())?;
    }
    let args = cmd.to_args();
    let env = child_env(daemon, &req.env);
    // A fixed directory of the daemon's own (the socket's private directory), never the
    // caller's: no relative path on the line could name a file of the caller's choosing.
    let cwd = workdir(daemon);
    let mut events = ConnEvents { stream };
    let mut secrets = daemon.sessions.credentials();
    if let Some(c) = lease.and_then(|l| l.credential.token().cloned())
        && !secrets.iter().any(|s| Arc::ptr_eq(s, &c))
    {
        secrets.push(c);
    }
    let out = daemon
        .op
        .run_with(
            &args,
            lease.map(Lease::auth).unwrap_or(Auth::None),
            env,
            Some(&cwd),
            None,
            ChildIo::Passed { fds, secrets },
            Some(&mut events),
        )
        .await?;
    let Some(lease) = lease else {
        return Ok(out.code);
    };
    if out.success() {
        daemon
            .sessions
            .touch(&lease.name, lease.generation, daemon.clock.now());
    } else {
        // The caller already saw op's (scrubbed) message; this ends the session if op said
        // it is gone, so no cached value outlives it.
        let _ = crate::lifecycle::failure(daemon, lease, &out);
    }
    if is_write(&cmd) {
        let n = daemon.cache.drop_account(&lease.name);
        tracing::debug!(account = %lease.name, dropped = n, "write through passthrough dropped the cache");
    }
    Ok(out.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn every_spelling_of_a_forbidden_command_is_refused() {
        let p = crate::policy::Policy::default();
        for line in [
            "--cache run -- env",
            "--cache=false run -- env",
            "run -- env",
            "--cache signin --raw",
            "signin",
            "plugin run -- aws",
            "update",
            "account add --signin --raw",
            "service-account create ci --raw",
            "connect token create t --server s",
            "signout --all",
            "--session abc whoami",
            "--config /tmp/x whoami",
            "inject",
            "inject -i /proc/self/environ",
            "--cache inject --in-file=t",
            "read op://Dev/s/password -o /tmp/x",
            "read --out-file=/tmp/x op://Dev/s/password",
            "--cache read -fo/tmp/x op://Dev/s/password",
            "read op://Dev/s/password --file-mode 0700",
            "read op://Dev/s/password --force -o x",
            "item template get login -o /tmp/x",
            "document get d --vault Dev --out-file /tmp/x",
            "document create /etc/passwd --vault Dev",
            "document create --vault Dev",
            "document edit d - --vault Dev",
            "item create --template t.json --vault Dev",
            "item edit x --template=t.json --vault Dev",
            "item get - --vault Dev",
            "item create - --vault Dev",
            "frobnicate",
            "item get x --nope",
            "item --frob get x",
        ] {
            let e = parse(&a(line)).and_then(|c| check(&p, &c)).expect_err(line);
            assert!(matches!(e, Error::BadRequest(_)), "{line}: {e}");
        }
    }

    #[test]
    fn writes_and_accounts_are_recognized() {
        let p = crate::policy::Policy::compile(&crate::config::PolicyConfig {
            allow_destructive: true,
            ..Default::default()
        })
        .expect("compiles");
        let ok = |line: &str| {
            let c = parse(&a(line)).expect("parses");
            check(&p, &c).expect("allowed");
            c
        };
        assert!(is_write(&ok("item edit foo password=x")));
        assert!(is_write(&ok("--account my item create --category login")));
        assert!(!is_write(&ok("item get foo")));
        assert_eq!(ok("--account A --account B whoami").account(), Some("B"));
    }
}

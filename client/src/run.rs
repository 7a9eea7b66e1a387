//! `op-session run -- CMD ARGS…`: `op run` semantics with the daemon resolving the values.
//!
//! Owns: building the environment (shell env, then `--env-file`s in order, later wins, files
//! over the shell), finding every variable whose value holds secret references, resolving
//! them all in one request, starting CMD ourselves, masking every resolved value in its stdout
//! and stderr as `<concealed by 1Password>` (streaming: a value split across writes is still
//! masked) unless `--no-masking`/`OP_RUN_NO_MASKING`, forwarding SIGINT, SIGTERM and SIGHUP (each
//! one our parent did not ignore: an ignored one stays ignored, for us and CMD alike), and
//! exiting with CMD's status (128+N for signal N). If any reference fails, CMD never starts.
//!
//! Masking covers each value's encoded forms too (`--mask=encoded`, the default: base64, hex,
//! percent-encoding, JSON escaping, for values of at least `--mask-min-encoded` bytes), or only
//! the exact bytes as `op run` does (`--mask=exact`). When our stdout and stderr are the same
//! file or pipe (`2>&1`, one terminal), CMD gets one pipe for both and one masker reads it, so a
//! value written half to stdout and half to stderr is masked where the two halves meet; when
//! they go to different places, neither place ever holds the whole value.

use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill};
use nix::unistd::Pid;
use op_session_protocol::{ResolvePurpose, exit};
use run_inject::mask::pump;
use run_inject::{EnvPlan, Masking, Values};

use crate::cli::account_or_env;
use crate::cli::{MaskArg, RunArgs};
use crate::conn::Target;
use crate::error::{Failure, Result};
use crate::values::resolve;

/// Signals forwarded to the child.
pub const FORWARDED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// Whether `sig` is ignored (`SIG_IGN`) in this process: as the parent left it, since nothing
/// here installs a handler for the forwarded signals.
fn ignored(sig: Signal) -> bool {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current disposition into `old`.
    let rc = unsafe { libc::sigaction(sig as libc::c_int, std::ptr::null(), old.as_mut_ptr()) };
    // SAFETY: sigaction filled `old` when it returned 0; zeroed memory is a valid sigaction.
    rc == 0 && unsafe { old.assume_init() }.sa_sigaction == libc::SIG_IGN
}

/// Block the forwarded signals in this thread (and threads spawned after), returning the set.
///
/// A signal our parent ignored stays ignored (POSIX: an ignored signal is inherited as ignored
/// across exec, and `nohup` relies on it): it is not in the set, so it is neither waited for nor
/// forwarded, and the command inherits it as ignored too (docs/architecture.md, "run").
pub fn block_forwarded() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        if !ignored(s) {
            set.add(s);
        }
    }
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
    set
}

/// A thread that waits for the blocked signals and hands each to `deliver`.
pub fn forward_signals(set: SigSet, deliver: impl Fn(Signal) + Send + 'static) {
    std::thread::spawn(move || {
        loop {
            match set.wait() {
                Ok(sig) => deliver(sig),
                Err(_) => return,
            }
        }
    });
}

/// A pipeline error as the client reports it: reading env files is a usage error, the rest a
/// failure.
pub fn pipeline_failure(e: run_inject::Error) -> Failure {
    let fix = e.fix();
    match e {
        run_inject::Error::ReadEnvFile { .. }
        | run_inject::Error::EnvFile { .. }
        | run_inject::Error::BadName(_)
        | run_inject::Error::MinEncoded(_) => Failure::usage(e.to_string(), fix),
        run_inject::Error::Template(_) | run_inject::Error::Render(_) => {
            Failure::new(exit::FAILED, e.to_string(), fix)
        }
    }
}

/// `run`.
pub fn run(t: &Target, a: RunArgs) -> Result<i32> {
    if a.environment.is_some() {
        // A 1Password Environment is in no vault: the `vaults` rule cannot scope it, and its
        // values would reach the command unchecked (docs/op-behaviour.md §10.3).
        return Err(Failure::usage(
            "run --environment is not supported: a 1Password Environment is in no vault, so \
             op-session's vault rules cannot scope it",
            "put op:// references in an --env-file, or run `op run --environment ID -- CMD` \
             yourself in a terminal",
        ));
    }
    let plan = EnvPlan::build(std::env::vars().collect(), &a.env_files, Vec::new())
        .map_err(pipeline_failure)?;
    let values = if plan.refs().is_empty() {
        Values::new(Vec::new())
    } else {
        Values::new(resolve(
            t,
            account_or_env(a.account.clone()),
            plan.refs().to_vec(),
            a.no_cache,
            ResolvePurpose::Run,
        )?)
    };
    let env = plan.render(&values).map_err(pipeline_failure)?;
    let forms = masking(&a).forms().map_err(pipeline_failure)?;
    let mask = forms.is_some() && !values.is_empty();
    let secrets = values.secrets();
    drop(values);

    let set = block_forwarded();
    let mut cmd = Command::new(&a.command[0]);
    cmd.args(&a.command[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    // One pipe for both streams when they end up in the same place (see the module docs).
    let mut merged = None;
    if mask && stdout_is_stderr() {
        let (reader, writer) = std::io::pipe()
            .map_err(|e| Failure::new(exit::FAILED, format!("cannot make a pipe: {e}"), "retry"))?;
        let second = writer
            .try_clone()
            .map_err(|e| Failure::new(exit::FAILED, format!("cannot make a pipe: {e}"), "retry"))?;
        cmd.stdout(writer).stderr(second);
        merged = Some(reader);
    } else if mask {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let unblock = set;
    // SAFETY: only async-signal-safe work (sigprocmask) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&unblock), None)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        Failure::new(
            exit::FAILED,
            format!("cannot start {}: {e}", a.command[0]),
            "check the command name and PATH",
        )
    })?;
    // The command holds our copies of the pipe's write ends: drop them, or no EOF.
    drop(cmd);
    drop(env);
    let pid = Pid::from_raw(child.id() as i32);
    forward_signals(set, move |sig| {
        let _ = kill(pid, sig);
    });
    let mut pumps = Vec::new();
    if let Some(forms) = forms.filter(|_| mask) {
        let masker = || secrets.masker(forms);
        if let Some(both) = merged {
            let m = masker();
            pumps.push(std::thread::spawn(move || pump(both, std::io::stdout(), m)));
        }
        if let Some(out) = child.stdout.take() {
            let m = masker();
            pumps.push(std::thread::spawn(move || pump(out, std::io::stdout(), m)));
        }
        if let Some(err) = child.stderr.take() {
            let m = masker();
            pumps.push(std::thread::spawn(move || pump(err, std::io::stderr(), m)));
        }
    }
    drop(secrets);
    let status = child
        .wait()
        .map_err(|e| Failure::new(exit::FAILED, format!("lost the command: {e}"), "retry"))?;
    for p in pumps {
        let _ = p.join();
    }
    Ok(exit::child_status(status).unwrap_or(exit::FAILED))
}

/// What to mask, as asked: nothing with `--no-masking` or `OP_RUN_NO_MASKING` (as `op run`
/// reads it), else `--mask` and `--mask-min-encoded`.
fn masking(a: &RunArgs) -> Masking {
    let no_masking = a.no_masking
        || op_grammar::env::run_no_masking(
            std::env::var(op_grammar::env::RUN_NO_MASKING)
                .ok()
                .as_deref(),
        );
    if no_masking {
        Masking::Off
    } else if a.mask == MaskArg::Exact {
        Masking::Exact
    } else {
        Masking::Encoded(a.mask_min_encoded)
    }
}

/// Whether our stdout and stderr are the same file, pipe or terminal (so a person reading one
/// reads both, interleaved).
fn stdout_is_stderr() -> bool {
    let stat = |fd: std::os::fd::BorrowedFd<'_>| nix::sys::stat::fstat(fd).ok();
    match (
        stat(std::io::stdout().as_fd()),
        stat(std::io::stderr().as_fd()),
    ) {
        (Some(out), Some(err)) => out.st_dev == err.st_dev && out.st_ino == err.st_ino,
        _ => false,
    }
}

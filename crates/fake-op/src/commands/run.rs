//! `op run [--env-file F]... [--no-masking] -- <command>...` (docs/op-behaviour.md §4.2).
//!
//! `prepare` runs under the state lock: it merges env files over the environment (file beats
//! shell, later file beats earlier; dotenv rules from `secret-ref`), resolves every value that
//! is a secret reference (and template syntax in env-file values), and fails before any child
//! starts if one does not resolve. `execute` runs after the lock is released: it starts the
//! child with the resolved environment, masks resolved values on its stdout and stderr unless
//! masking is off (`--no-masking`, `OP_RUN_NO_MASKING`, or nothing to mask), forwards SIGINT,
//! SIGTERM and SIGHUP, and returns the child's exit status (128+N for signal N).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};

use secret_ref::{Masker, envfile, template};

use crate::error::OpError;
use crate::invocation::{Ctx, Outcome, error_line};
use crate::state::State;

use super::inject::{io_text, resolve_all};

/// What `execute` needs.
#[derive(Debug)]
pub struct Plan {
    /// The command.
    program: String,
    /// Its arguments.
    args: Vec<String>,
    /// The child's complete environment.
    env: Vec<(String, String)>,
    /// Resolved values to mask.
    secrets: Vec<String>,
    /// Mask (pipe) the child's stdout and stderr.
    masking: bool,
}

/// Resolve everything and plan the child.
pub fn prepare(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    let Some((program, args)) = ctx.args.rest.split_first() else {
        return Err(OpError::new(
            "expected a command to run: op run [flags] -- <command> [args...]",
        ));
    };
    let mut files = Vec::new();
    let mut from_files = BTreeSet::new();
    for path in ctx.args.values("env-file") {
        let text = std::fs::read_to_string(path)
            .map_err(|e| OpError::new(format!("open {path}: {}", io_text(&e))))?;
        let env = ctx.env.clone();
        let entries = envfile::parse(&text, move |k| env.get(k).cloned())
            .map_err(|e| OpError::new(format!("could not parse env file {path}: {e}")))?;
        from_files.extend(entries.iter().map(|(k, _)| k.clone()));
        files.push(entries);
    }
    let merged = envfile::merge(ctx.env.clone(), &files);

    // Which values need resolving: whole-value references anywhere, templates only in files.
    let lookup = secret_ref::vars::case_insensitive_lookup(ctx.env.clone());
    let mut templated: Vec<(usize, Vec<template::Segment>)> = Vec::new();
    let mut refs: Vec<String> = Vec::new();
    for (i, (key, value)) in merged.iter().enumerate() {
        let segments = if secret_ref::looks_like_reference(value.trim()) {
            let expanded = secret_ref::vars::expand(value.trim(), &lookup);
            vec![template::Segment::Ref(expanded)]
        } else if from_files.contains(key) && value.contains("op://") {
            template::parse(value).map_err(|e| OpError::new(e.to_string()))?
        } else {
            continue;
        };
        for r in template::references(&segments) {
            if !refs.iter().any(|x| x == r) {
                refs.push(r.to_string());
            }
        }
        templated.push((i, segments));
    }
    let values = resolve_all(ctx, state, &refs)?;
    let mut env = merged;
    for (i, segments) in templated {
        env[i].1 = template::render(&segments, |r| values.get(r).map(String::as_str))
            .map_err(|e| OpError::new(e.to_string()))?;
    }
    let no_masking = ctx.args.bool("no-masking")
        || op_grammar::env::run_no_masking(
            ctx.env
                .get(op_grammar::env::RUN_NO_MASKING)
                .map(String::as_str),
        );
    let secrets: Vec<String> = values.into_values().filter(|v| !v.is_empty()).collect();
    Ok(Outcome {
        stdout: Vec::new(),
        run: Some(Plan {
            program: program.clone(),
            args: args.to_vec(),
            env,
            masking: !no_masking && !secrets.is_empty(),
            secrets,
        }),
    })
}

/// The running child's pid, for the signal handler.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// A signal that arrived after the handler was installed but before the child's pid was
/// known; delivered as soon as it is.
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid == 0 {
        PENDING.store(sig, Ordering::SeqCst);
    } else if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe; a stale pid only risks ESRCH.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

fn install_forwarding() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(forward),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only reads an atomic and calls kill(2).
        let _ = unsafe { sigaction(sig, &action) };
    }
}

fn pump(mut from: impl Read, mut to: impl Write, secrets: Vec<String>) {
    let mut masker = Masker::new(secrets);
    let mut buf = vec![0u8; 8192];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let out = masker.push(&buf[..n]);
                if to.write_all(&out).and_then(|()| to.flush()).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = to.write_all(&masker.finish());
    let _ = to.flush();
}

/// Start the child and wait for it; returns the exit code op exits with.
pub fn execute(plan: Plan, ctx: &Ctx) -> i32 {
    let mut cmd = Command::new(&plan.program);
    cmd.args(&plan.args)
        .env_clear()
        .envs(plan.env.iter().cloned());
    if plan.masking {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    install_forwarding();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let msg = if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "exec: \"{}\": executable file not found in $PATH",
                    plan.program
                )
            } else {
                format!("fork/exec {}: {}", plan.program, io_text(&e))
            };
            eprint!("{}", error_line(ctx.now, &msg));
            return 1;
        }
    };
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    let early = PENDING.swap(0, Ordering::SeqCst);
    if early != 0 {
        forward(early);
    }
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        let secrets = plan.secrets.clone();
        pumps.push(std::thread::spawn(move || {
            pump(out, std::io::stdout(), secrets)
        }));
    }
    if let Some(err) = child.stderr.take() {
        let secrets = plan.secrets.clone();
        pumps.push(std::thread::spawn(move || {
            pump(err, std::io::stderr(), secrets)
        }));
    }
    let status = child.wait();
    for p in pumps {
        let _ = p.join();
    }
    CHILD.store(0, Ordering::SeqCst);
    match status {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
        }
        Err(_) => 1,
    }
}

//! `op-session op ARGS…` and the `op` shim: run `op` through the daemon's session with this
//! process's own stdin, stdout and stderr.
//!
//! Owns handing the three descriptors to the daemon (SCM_RIGHTS in the preamble), sending the
//! working directory and the caller's presentation variables (nothing else of its environment), forwarding SIGINT/SIGTERM/SIGHUP
//! to `op`, and exiting with `op`'s exit code. If this process dies, the daemon sees the socket
//! close and kills `op`'s process group.

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use op_session_protocol::{
    ClientEvent, MAX_REQUEST_FRAME, PassthroughRequest, Request, Response, encode_event, exit,
    frame,
};

use crate::conn::{Target, connect, receive, send};
use crate::error::{Failure, Result};
use crate::run::{block_forwarded, forward_signals};
use crate::status::unexpected_response;

/// `op run …` through the shim is done here, as `op-session run`: the daemon never starts a
/// command of the caller's choosing with the session variable in its environment (`op run --
/// env` would print the token). The line was read by the one grammar of `op`, so every
/// spelling (`op --cache run`, `--cache=false`, flags after `run`) lands here.
fn op_run(t: &Target, cmd: &op_grammar::OpCommand) -> Result<i32> {
    if cmd.rest.is_empty() {
        return Err(Failure::usage(
            "`op run` needs a command to run",
            "op run [--env-file FILE] -- COMMAND [ARGS…]",
        ));
    }
    crate::run::run(
        t,
        crate::cli::RunArgs {
            account: cmd.account().map(str::to_string),
            env_files: cmd.values("env-file").into_iter().map(Into::into).collect(),
            no_masking: cmd.bool("no-masking"),
            mask: crate::cli::MaskArg::Encoded,
            mask_min_encoded: None,
            no_cache: false,
            environment: cmd.values("environment").into_iter().next().map(Into::into),
            command: cmd.rest.clone(),
        },
    )
}

/// `op inject …` through the shim is done here, as `op-session inject`: the daemon never runs
/// `op inject` (it would expand op's environment, which holds the token, and read and write
/// files with the daemon's hands). Here the template is read, and the output written, by this
/// process with the caller's own permissions; only the references go to the daemon.
fn op_inject(t: &Target, cmd: &op_grammar::OpCommand) -> Result<i32> {
    crate::values::inject(
        t,
        crate::cli::InjectArgs {
            in_file: cmd.value("in-file").map(Into::into),
            out: out_file(cmd)?,
            account: cmd.account().map(str::to_string),
        },
    )
}

/// `op read REF -o FILE …` through the shim is done here, as `op-session read -o`: the file is
/// written by this process, with the caller's own permissions, never by the daemon.
fn op_read_to_file(t: &Target, cmd: &op_grammar::OpCommand) -> Result<i32> {
    crate::values::read(
        t,
        crate::cli::ReadArgs {
            refs: cmd.positionals.clone(),
            account: cmd.account().map(str::to_string),
            no_newline: cmd.bool("no-newline"),
            out: out_file(cmd)?,
            no_cache: false,
            json: false,
        },
    )
}

/// `--out-file`, `--file-mode` and `--force` as op's own command line gave them.
fn out_file(cmd: &op_grammar::OpCommand) -> Result<crate::cli::OutFileArgs> {
    let file_mode = match cmd.value("file-mode") {
        None => op_grammar::FileMode::default(),
        Some(m) => m
            .parse()
            .map_err(|e: op_grammar::file_mode::FileModeError| {
                Failure::usage(e.to_string(), "give --file-mode an octal mode such as 0600")
            })?,
    };
    Ok(crate::cli::OutFileArgs {
        out_file: cmd.value("out-file").map(Into::into),
        file_mode,
        force: cmd.bool("force"),
    })
}

/// Run `op args` through the daemon. The daemon reads the line again and decides (it is the
/// trust boundary); the client only takes over `op run`, `op inject` and `op read -o` (which
/// it does itself, with the caller's permissions) and points `op signin` at `init`.
pub fn passthrough(t: &Target, args: Vec<String>) -> Result<i32> {
    if let Ok(cmd) = op_grammar::parse(&args) {
        match cmd.verb() {
            "run" => return op_run(t, &cmd),
            "inject" if !cmd.bool("help") => return op_inject(t, &cmd),
            "read" if cmd.has("out-file") && cmd.positionals.len() == 1 => {
                return op_read_to_file(t, &cmd);
            }
            "signin" => {
                return Err(Failure::usage(
                    "`op signin` through op-session would hand out the daemon's session",
                    "sign in with `op-session init`",
                ));
            }
            _ => {}
        }
    }
    // Only the variables that change how op presents its output travel; the daemon's op child
    // gets the daemon's own environment for everything else.
    let env: Vec<(String, String)> = op_grammar::env::CALLER_PRESENTATION_VARS
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/".into());
    let account = crate::cli::account_or_env(None);
    let req = Request::Passthrough(PassthroughRequest {
        account,
        args,
        cwd,
        env,
    });
    let set = block_forwarded();
    let mut stream = connect(t)?;
    send(&mut stream, &req, Some([0, 1, 2]))?;
    let writer: Arc<Mutex<UnixStream>> =
        Arc::new(Mutex::new(stream.try_clone().map_err(|e| {
            Failure::new(exit::UNAVAILABLE, e.to_string(), "retry")
        })?));
    forward_signals(set, move |sig| {
        let ev = ClientEvent::Signal { signal: sig as i32 };
        if let Ok(payload) = encode_event(&ev)
            && let Ok(f) = frame::encode(&payload, MAX_REQUEST_FRAME)
            && let Ok(mut w) = writer.lock()
        {
            use std::io::Write;
            let _ = w.write_all(&f);
        }
    });
    match receive(&mut stream)? {
        Response::Exit { code } => Ok(code),
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected_response(&other)),
    }
}

/// `op-session shim install [DIR]`.
pub fn shim_install(dir: Option<std::path::PathBuf>) -> Result<i32> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let dir = match dir.or_else(|| home.map(|h| h.join(".local/bin"))) {
        Some(d) => d,
        None => {
            return Err(Failure::usage(
                "HOME is not set",
                "name the directory: op-session shim install DIR",
            ));
        }
    };
    let me = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| {
            Failure::new(
                exit::FAILED,
                format!("cannot find op-session itself: {e}"),
                "reinstall op-session",
            )
        })?;
    std::fs::create_dir_all(&dir).map_err(|e| {
        Failure::new(
            exit::FAILED,
            format!("cannot create {}: {e}", dir.display()),
            "check permissions",
        )
    })?;
    let link = dir.join("op");
    match std::fs::symlink_metadata(&link) {
        Ok(m) if m.file_type().is_symlink() => {
            let target = std::fs::read_link(&link)
                .ok()
                .and_then(|t| dir.join(t).canonicalize().ok());
            if target.as_deref() == Some(me.as_path()) {
                outln!("{} already points to {}", link.display(), me.display());
            } else {
                return Err(Failure::new(
                    exit::FAILED,
                    format!("{} already exists and points elsewhere", link.display()),
                    "remove it first if you want the shim there",
                ));
            }
        }
        Ok(_) => {
            return Err(Failure::new(
                exit::FAILED,
                format!("{} exists and is not a link (the real op?)", link.display()),
                "choose another directory: op-session shim install DIR",
            ));
        }
        Err(_) => {
            std::os::unix::fs::symlink(&me, &link).map_err(|e| {
                Failure::new(
                    exit::FAILED,
                    format!("cannot create {}: {e}", link.display()),
                    "check permissions",
                )
            })?;
            outln!("installed {} -> {}", link.display(), me.display());
        }
    }
    outln!("{}", path_advice(&dir, &me));
    Ok(exit::OK)
}

/// Whether `dir` comes before the real `op` on PATH.
fn path_advice(dir: &std::path::Path, me: &std::path::Path) -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<_> = std::env::split_paths(&path).collect();
    let canon = |p: &std::path::Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let shim_pos = dirs.iter().position(|d| canon(d) == canon(dir));
    let real = dirs.iter().enumerate().find(|(_, d)| {
        let c = d.join("op");
        c.is_file() && c.canonicalize().ok().as_deref() != Some(me)
    });
    match (shim_pos, real) {
        (None, _) => format!(
            "{} is not on PATH: add it first, e.g. export PATH=\"{}:$PATH\"",
            dir.display(),
            dir.display()
        ),
        (Some(s), Some((r, rd))) if r < s => format!(
            "{} comes AFTER the real op in {}: move it earlier on PATH so `op` goes through op-session",
            dir.display(),
            rd.display()
        ),
        (Some(_), Some((_, rd))) => format!(
            "{} comes before the real op in {}: `op` now goes through op-session",
            dir.display(),
            rd.display()
        ),
        (Some(_), None) => format!(
            "{} is on PATH; no real op was found on PATH (the daemon needs one: install the 1Password CLI or set op_path)",
            dir.display()
        ),
    }
}

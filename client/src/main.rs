//! `op-session`: the thin, synchronous client of `op-sessiond`.
//!
//! Starts in about a millisecond (std + nix, no async runtime), sends one request, prints the
//! answer, and exits with a code an agent can branch on: 0 ok, 1 `op` or the command failed,
//! 64 usage, 69 daemon unavailable, 75 retry later, 76 protocol mismatch, 77 a person must act,
//! 78 denied by policy. Every error is one line on stderr: what happened, and the fix.
//! Invoked as `op` (a symlink made by `op-session shim install`), it passes every argument to
//! `op` through the daemon.
//!
//! The program starts at a C `main` of its own (`#![no_main]`), not at Rust's `lang_start`:
//! the agent runs this binary once per tool call, and `lang_start`'s set-up (reading
//! `/proc/self/maps` to place the main thread's stack guard, mapping an alternate signal
//! stack and installing SIGSEGV/SIGBUS handlers for the stack-overflow message, 19 system
//! calls in all) was a measurable share of a whole run (docs/BENCHMARKS.md, issue 23). What
//! the program relies on from it is kept in [`main`]: SIGPIPE ignored (so a socket or a
//! child's pipe that closes is an `EPIPE` error with our message, and children still start
//! with the default, as std's `Command` restores it; the program's own stdout is written
//! through `outln!`, which ends the program by SIGPIPE when its reader has gone), a panic exits 101 after its message, and `std::process::exit`
//! flushes stdout. What is given up: a stack overflow is a plain SIGSEGV without std's
//! one-line message, and a panic names the thread `<unnamed>` instead of `main`.

// The unit tests get the test harness's own `main`.
#![cfg_attr(not(test), no_main)]

/// `println!` for the program's output. A reader that has gone away (`op-session status |
/// head -1`) ends the program as a closed pipe ends `op` or `cat`, by SIGPIPE and without a
/// word, where std's `println!` would panic (SIGPIPE is ignored here; see [`main`]).
macro_rules! outln {
    () => {
        $crate::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for the program's output, as `outln!` does it.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*))
    };
}

mod agent;
mod audit;
mod cli;
mod conn;
mod connect;
mod doctor;
mod error;
mod fast;
mod grant;
mod init;
mod mcp;
mod migrate;
mod passthrough;
mod run;
mod service;
mod status;
mod values;

use clap::{CommandFactory, Parser};
use op_session_protocol::exit;

use cli::{Cli, Command, CompletionShell, ShimAction};
use conn::Target;
use error::Result;

fn invoked_as_op() -> bool {
    std::env::args_os()
        .next()
        .and_then(|a| std::path::Path::new(&a).file_name().map(|n| n == "op"))
        .unwrap_or(false)
}

/// The process entry point (see the module doc for why it is not Rust's).
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread exists is what std's
    // own start-up does; no handler runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // Unwinding out of an `extern "C"` function aborts, so a panic stops here: its message
    // was printed by the panic hook, and the exit code is std's for a panicking main.
    let code = std::panic::catch_unwind(run).unwrap_or(101);
    std::process::exit(code)
}

/// The whole program: the exit code.
#[cfg_attr(test, allow(dead_code))]
fn run() -> i32 {
    if invoked_as_op() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        finish(passthrough::passthrough(&Target::new(None, false), args))
    } else if let Some(cli) = fast::parse(&std::env::args_os().skip(1).collect::<Vec<_>>()) {
        // The agent's per-call commands skip building clap's command tree (see fast.rs).
        finish(dispatch(cli))
    } else {
        match Cli::try_parse() {
            Ok(cli) => finish(dispatch(cli)),
            Err(e) => {
                let code = match e.kind() {
                    clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayVersion => exit::OK,
                    _ => exit::USAGE,
                };
                let _ = e.print();
                code
            }
        }
    }
}

std::thread_local! {
    /// Output held back by [`batched`], written in one piece when it returns.
    static BATCH: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

/// Run `f` with its `outln!`/`out!` output gathered and written to stdout in one `write` when
/// it returns, not a system call (and a wake-up of the reader) per line: stdout is
/// line-buffered, and `status` prints ten lines on every call an agent makes.
fn batched<T>(f: impl FnOnce() -> T) -> T {
    BATCH.with(|b| *b.borrow_mut() = Some(Vec::new()));
    let r = f();
    if let Some(out) = BATCH.with(|b| b.borrow_mut().take()) {
        write_stdout_bytes(&out);
    }
    r
}

/// Write formatted output to stdout (or to the batch being gathered); see `outln!` for what
/// a closed reader does.
fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let held = BATCH.with(|b| match b.borrow_mut().as_mut() {
        Some(buf) => {
            // Writing into a Vec cannot fail.
            let _ = buf.write_fmt(args);
            true
        }
        None => false,
    });
    if !held && let Err(e) = std::io::stdout().lock().write_fmt(args) {
        stdout_failed(&e)
    }
}

/// Write bytes to stdout and flush; see `outln!` for what a closed reader does.
fn write_stdout_bytes(bytes: &[u8]) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(bytes).and_then(|_| stdout.flush()) {
        stdout_failed(&e)
    }
}

/// The program's stdout failed: a reader that went away ends it by SIGPIPE, as the default
/// disposition would have; any other error is said on stderr, with exit code 1.
fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        // SAFETY: restoring the default disposition and raising the signal at ourselves is
        // what the kernel would have done on the write had SIGPIPE not been ignored.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::raise(libc::SIGPIPE);
        }
    }
    eprintln!("op-session: cannot write to stdout: {e}; fix: check where stdout goes");
    std::process::exit(exit::FAILED)
}

fn finish(r: Result<i32>) -> i32 {
    match r {
        Ok(code) => code,
        Err(f) => {
            f.print();
            f.code
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    let t = Target::new(cli.socket.as_deref(), cli.no_autostart);
    match cli.command {
        Command::Status { json } => status::status(&t, json),
        Command::Stop => status::stop(&t),
        Command::Grant(a) => grant::grant(&t, a),
        Command::Grants { json } => grant::list(&t, json),
        Command::Revoke { name } => grant::revoke(&t, name),
        Command::Approvals { json, forget } => grant::approvals(&t, json, forget),
        Command::Mcp(a) => mcp::mcp(&t, a),
        Command::Lock { account, all } => status::lock(&t, account, all),
        Command::Init(a) => init::init(&t, a),
        Command::Read(a) => values::read(&t, a),
        Command::Inject(a) => values::inject(&t, a),
        Command::Run(a) => run::run(&t, a),
        Command::Op { args } => passthrough::passthrough(&t, args),
        Command::Shim {
            action: ShimAction::Install { dir },
        } => passthrough::shim_install(dir),
        Command::Audit {
            lines,
            json,
            follow,
        } => audit::audit(lines, json, follow),
        Command::Service { action } => service::run(&action),
        Command::Agent { action } => agent::run(&action),
        Command::Doctor { json } => doctor::doctor(&t, json),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            let shell = match shell {
                CompletionShell::Bash => clap_complete::Shell::Bash,
                CompletionShell::Zsh => clap_complete::Shell::Zsh,
                CompletionShell::Fish => clap_complete::Shell::Fish,
            };
            // Made whole first: clap_complete panics on a failed write.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "op-session", &mut script);
            write_stdout_bytes(&script);
            Ok(exit::OK)
        }
        Command::Man => {
            let man = clap_mangen::Man::new(Cli::command());
            let mut page = Vec::new();
            man.render(&mut page).map_err(|e| {
                error::Failure::new(
                    exit::FAILED,
                    format!("cannot write the man page: {e}"),
                    "retry",
                )
            })?;
            write_stdout_bytes(&page);
            Ok(exit::OK)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `batched` gathers is held until it returns, and nothing is held after.
    #[test]
    fn batched_output_is_held_until_the_end() {
        let held = batched(|| {
            outln!("one");
            out!("two {}", 2);
            outln!();
            BATCH.with(|b| b.borrow().clone())
        });
        assert_eq!(held.as_deref(), Some(&b"one\ntwo 2\n"[..]));
        assert!(BATCH.with(|b| b.borrow().is_none()));
    }
}

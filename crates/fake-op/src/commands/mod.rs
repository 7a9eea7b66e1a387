//! The commands, one module per group, each taking the parsed invocation and the locked
//! state and returning what to print (or op's error).

pub mod account;
pub mod inject;
pub mod item;
pub mod read;
pub mod run;
pub mod service_account;
pub mod signin;
pub mod vault;

use crate::args;
use crate::error::OpError;
use crate::invocation::{Ctx, Outcome};
use crate::state::State;

/// Run the command named by `ctx.args.command`.
pub fn dispatch(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    let command = ctx.args.command.as_str();
    if command == "--version" {
        return Ok(Outcome::text(format!("{}\n", state.version)));
    }
    let leaf = args::command(command);
    if command == "help" || ctx.args.bool("help") || leaf.is_none() {
        let path = if command == "help" { "" } else { command };
        return Ok(Outcome::text(args::usage(leaf, path) + "\n"));
    }
    crate::config::check(ctx)?;
    match command {
        "signin" => signin::signin(ctx, state),
        "signout" => signin::signout(ctx, state),
        "whoami" => account::whoami(ctx, state),
        "account list" => account::list(ctx, state),
        "account forget" => account::forget(ctx, state),
        "read" => read::read(ctx, state),
        "inject" => inject::inject(ctx, state),
        "run" => run::prepare(ctx, state),
        "item get" => item::get(ctx, state),
        "item list" => item::list(ctx, state),
        "item create" => item::create(ctx, state),
        "item edit" => item::edit(ctx, state),
        "item delete" => item::delete(ctx, state),
        "vault list" => vault::list(ctx, state),
        "vault get" => vault::get(ctx, state),
        "service-account ratelimit" => service_account::ratelimit(ctx, state),
        other => Err(OpError::new(format!(
            "unknown command \"{other}\" for \"op\""
        ))),
    }
}

/// cobra's `ExactArgs(n)` error.
pub fn exact_args(ctx: &Ctx, n: usize) -> Result<(), OpError> {
    let got = ctx.args.positionals.len();
    if got != n {
        return Err(OpError::new(format!("accepts {n} arg(s), received {got}")));
    }
    Ok(())
}

/// cobra's `MaximumNArgs(n)` error.
pub fn max_args(ctx: &Ctx, n: usize) -> Result<(), OpError> {
    let got = ctx.args.positionals.len();
    if got > n {
        return Err(OpError::new(format!(
            "accepts at most {n} arg(s), received {got}"
        )));
    }
    Ok(())
}

/// `--file-mode`, default 0600.
pub fn file_mode(ctx: &Ctx) -> Result<op_grammar::FileMode, OpError> {
    ctx.args
        .value("file-mode")
        .map_or(Ok(op_grammar::FileMode::PRIVATE), |m| {
            m.parse()
                .map_err(|e: op_grammar::file_mode::FileModeError| OpError::new(e.to_string()))
        })
}

/// Write an output file for `read -o` / `inject -o`: refuses to overwrite without `--force`,
/// and sets the mode even on an existing file.
pub fn write_out_file(ctx: &Ctx, path: &str, content: &[u8]) -> Result<(), OpError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mode = file_mode(ctx)?.bits();
    let p = std::path::Path::new(path);
    if p.exists() && !ctx.args.bool("force") {
        return Err(OpError::new(format!(
            "file \"{path}\" already exists; use --force to overwrite it"
        )));
    }
    let io = |e: std::io::Error| OpError::new(format!("open {path}: {e}"));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(mode)
        .open(p)
        .map_err(io)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    std::io::Write::write_all(&mut f, content).map_err(io)
}

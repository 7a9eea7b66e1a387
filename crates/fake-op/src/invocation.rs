//! One run of `fake-op`, from argv to exit code.
//!
//! Order of events: parse arguments; sleep for the configured latency (without the lock, so
//! concurrent calls overlap as they would against a server); lock the state, count the call,
//! run the command against the state, save, unlock; then print (stdout only on success, one
//! `[ERROR]` line only on failure), run `op run`'s child if there is one, and append the call
//! log line. Nothing is printed while the lock is held, so a slow reader of our stdout cannot
//! stall other invocations.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::args::{self, Parsed};
use crate::error::OpError;
use crate::{calllog, clock, commands, credential, store};

/// What a command sees of its invocation.
#[derive(Debug)]
pub struct Ctx {
    /// The parsed command line.
    pub args: Parsed,
    /// The environment, lossily decoded.
    pub env: BTreeMap<String, String>,
    /// Simulated now (ms).
    pub now: i64,
    /// The session credential (see `crate::credential`).
    pub credential: String,
    /// `--format json` / `OP_FORMAT=json`.
    pub json: bool,
    /// `--iso-timestamps` / `OP_ISO_TIMESTAMPS`.
    pub iso: bool,
    /// Whether stdin is a terminal.
    pub stdin_tty: bool,
    /// Whether stdout is a terminal.
    pub stdout_tty: bool,
    /// The fake-op home directory.
    pub home: PathBuf,
    /// stdin, read before the lock for commands that consume it (`inject` without `-i`).
    pub stdin_data: Option<Vec<u8>>,
}

/// What a successful command leaves to do after the state is unlocked.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Bytes for stdout.
    pub stdout: Vec<u8>,
    /// `op run`'s child, to start once the lock is released.
    pub run: Option<crate::commands::run::Plan>,
}

impl Outcome {
    /// Print `text` and do nothing else.
    pub fn text(text: impl Into<String>) -> Self {
        Outcome {
            stdout: text.into().into_bytes(),
            run: None,
        }
    }
}

/// `[ERROR] YYYY/MM/DD HH:MM:SS <message>` (docs/op-behaviour.md §8).
pub fn error_line(now_ms: i64, message: &str) -> String {
    format!("[ERROR] {} {message}\n", clock::error_timestamp(now_ms))
}

fn latency(env: &BTreeMap<String, String>, home: &std::path::Path) -> u64 {
    match env
        .get("FAKE_OP_LATENCY_MS")
        .and_then(|v| v.trim().parse().ok())
    {
        Some(ms) => ms,
        None => store::peek(home).map(|s| s.latency_ms).unwrap_or(0),
    }
}

/// Run fake-op with `argv` (including argv[0]); returns the exit code.
pub fn main(argv: Vec<String>) -> i32 {
    let started = Instant::now();
    let home = store::home_dir();
    let env: BTreeMap<String, String> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let parsed = args::parse(argv.get(1..).unwrap_or(&[]));
    let sleep = latency(&env, &home);
    if sleep > 0 {
        std::thread::sleep(Duration::from_millis(sleep));
    }
    let mut ctx = Ctx {
        args: Parsed::default(),
        json: false,
        iso: false,
        now: clock::now_ms(0),
        credential: credential::current(),
        stdin_tty: std::io::stdin().is_terminal(),
        stdout_tty: std::io::stdout().is_terminal(),
        home: home.clone(),
        env,
        stdin_data: None,
    };
    // stdin is read before the lock by the commands that consume it: `inject` without `-i`,
    // `item create -` and an item template read from `/dev/stdin` (docs/op-behaviour.md §7).
    let reads_stdin = |p: &Parsed| {
        let stdin_path = |f: &str| f == "/dev/stdin" || f == "-";
        match p.command.as_str() {
            "inject" => p.value("in-file").is_none_or(stdin_path),
            "item create" => {
                p.positionals.iter().any(|a| a == "-")
                    || p.value("template").is_some_and(stdin_path)
            }
            "item edit" => p.value("template").is_some_and(stdin_path),
            _ => false,
        }
    };
    if let Ok(p) = &parsed
        && !p.bool("help")
        && reads_stdin(p)
    {
        let mut data = Vec::new();
        if std::io::Read::read_to_end(&mut std::io::stdin(), &mut data).is_ok() {
            ctx.stdin_data = Some(data);
        }
    }
    let command_name = match &parsed {
        Ok(p) => p.command.clone(),
        Err(_) => "(invalid)".to_string(),
    };

    let mut locked = match store::Locked::open(&home) {
        Ok(l) => l,
        Err(e) => {
            eprint!(
                "{}",
                error_line(
                    ctx.now,
                    &format!("fake-op: cannot use state in {}: {e}", home.display())
                )
            );
            return 1;
        }
    };
    let state = &mut locked.state;
    ctx.now = clock::now_ms(state.clock_offset_ms);
    state.counters.invocations += 1;
    *state
        .counters
        .commands
        .entry(command_name.clone())
        .or_default() += 1;
    let result = parsed.and_then(|p| {
        ctx.args = p;
        globals(&mut ctx)?;
        commands::dispatch(&ctx, state)
    });
    if result.is_err() {
        state.counters.failures += 1;
    }
    let secret_in_argv = calllog::secret_in_argv(&argv, state, &ctx.env);
    let now = ctx.now;
    if let Err(e) = locked.save() {
        eprint!(
            "{}",
            error_line(now, &format!("fake-op: cannot save state: {e}"))
        );
        return 1;
    }
    drop(locked);

    let code = match result {
        Ok(outcome) => {
            let mut out = std::io::stdout().lock();
            // A closed stdout is the reader's business, as with op.
            let _ = out.write_all(&outcome.stdout);
            let _ = out.flush();
            drop(out);
            match outcome.run {
                Some(plan) => commands::run::execute(plan, &ctx),
                None => 0,
            }
        }
        Err(e) => {
            eprint!("{}", error_line(now, &e.message));
            e.code
        }
    };
    calllog::record(&calllog::Entry {
        home: &home,
        now,
        argv: &argv,
        env: &ctx.env,
        credential: &ctx.credential,
        command: &command_name,
        exit_code: code,
        duration_ms: started.elapsed().as_millis() as u64,
        secret_in_argv,
    });
    code
}

/// Resolve the global flags and their environment fallbacks (docs/op-behaviour.md §5.1).
fn globals(ctx: &mut Ctx) -> Result<(), OpError> {
    let format = ctx
        .args
        .value("format")
        .map(str::to_string)
        .or_else(|| ctx.env.get("OP_FORMAT").cloned())
        .filter(|f| !f.is_empty());
    ctx.json = match format.as_deref() {
        None | Some("human-readable") => false,
        Some("json") => true,
        Some(other) => {
            return Err(OpError::new(format!(
                "invalid output format \"{other}\": use 'human-readable' or 'json'"
            )));
        }
    };
    ctx.iso = ctx.args.bool("iso-timestamps")
        || ctx
            .env
            .get("OP_ISO_TIMESTAMPS")
            .is_some_and(|v| args::parse_bool(v) == Some(true));
    if let Some(enc) = ctx.args.value("encoding")
        && !["utf-8", "shift_jis", "gbk"].contains(&enc.to_lowercase().as_str())
    {
        return Err(OpError::new(format!(
            "\"{enc}\" isn't a supported encoding. Supported encodings: UTF-8, SHIFT_JIS, gbk"
        )));
    }
    Ok(())
}

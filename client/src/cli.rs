//! The command line of `op-session`, as a clap definition (also used for completions and the
//! man page).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run the 1Password CLI from agents, scripts and services with no terminal: one sign-in,
/// held by a per-user daemon, serves every call until your own limits say stop.
#[derive(Debug, Parser)]
#[command(name = "op-session", version, about, propagate_version = true)]
pub struct Cli {
    /// Socket of the daemon [env: OPSESSION_SOCKET] [default: $XDG_RUNTIME_DIR/op-session/agent.sock].
    #[arg(long, global = true)]
    pub socket: Option<PathBuf>,
    /// Do not start op-sessiond when it is not running [env: OPSESSION_NO_AUTOSTART=1].
    #[arg(long, global = true)]
    pub no_autostart: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the daemon, its protections, and every held session with its time left.
    Status {
        /// Print the stable JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sign in and hand the session to the daemon.
    Init(InitArgs),
    /// Wipe and revoke a session (the default account's, one account's, or all).
    Lock {
        /// The account to lock.
        #[arg(long, conflicts_with = "all")]
        account: Option<String>,
        /// Lock every account.
        #[arg(long)]
        all: bool,
    },
    /// Print secret values, as `op read` does.
    Read(ReadArgs),
    /// Run a command with secret references in its environment resolved, as `op run` does.
    Run(RunArgs),
    /// Fill secret references into a template, as `op inject` does.
    Inject(InjectArgs),
    /// Run `op ARGS…` through the daemon's session (what the `op` shim does).
    #[command(disable_help_flag = true)]
    Op {
        /// Arguments for op.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Manage the `op` shim (a symlink that routes `op` through op-session).
    Shim {
        /// Shim action.
        #[command(subcommand)]
        action: ShimAction,
    },
    /// Show the audit log: who read what, when, and the outcome.
    Audit {
        /// How many of the latest records.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// Print raw JSON lines.
        #[arg(long)]
        json: bool,
        /// Keep printing new records as they arrive.
        #[arg(long)]
        follow: bool,
    },
    /// Install, remove or inspect the systemd user service or launchd agent.
    Service {
        /// Service action.
        #[command(subcommand)]
        action: ServiceAction,
    },
    /// Stop the daemon (wipes and revokes every session).
    Stop,
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: CompletionShell,
    },
    /// Print the man page (roff).
    Man,
}

/// Shells for completions.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompletionShell {
    /// bash
    Bash,
    /// zsh
    Zsh,
    /// fish
    Fish,
}

/// `shim` actions.
#[derive(Debug, Subcommand)]
pub enum ShimAction {
    /// Make DIR/op a link to op-session and say whether DIR comes before the real op on PATH.
    Install {
        /// Where to put the link [default: ~/.local/bin].
        dir: Option<PathBuf>,
    },
}

/// `service` actions.
#[derive(Debug, Subcommand)]
pub enum ServiceAction {
    /// Write the unit files (or plist) and enable the socket.
    Install {
        /// Print what would be written and run; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Stop and remove the units (or plist).
    Uninstall {
        /// Print what would be removed and run; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show whether the service is installed and running.
    Status,
}

/// Session modes on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// A token from `op signin` (password sign-in).
    Token,
    /// The 1Password desktop app's integration.
    App,
    /// A service-account token.
    ServiceAccount,
    /// A 1Password Connect server (needs --host; the token comes from stdin or --token-file).
    Connect,
}

/// `init` flags.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The account (shorthand, sign-in address, account or user ID) [env: OP_ACCOUNT].
    #[arg(long)]
    pub account: Option<String>,
    /// Force a mode instead of detecting it.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Read the password from stdin and feed it to `op signin`.
    #[arg(long)]
    pub password_stdin: bool,
    /// Read a service-account (or, with --mode connect, a Connect) token from this file.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Connect mode: the Connect server's base URL, https://….
    #[arg(long)]
    pub host: Option<String>,
}

/// `read` flags.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Secret references (op://vault/item[/section]/field).
    #[arg(required = true)]
    pub refs: Vec<String>,
    /// The account [env: OP_ACCOUNT].
    #[arg(long)]
    pub account: Option<String>,
    /// Do not print a newline after the value.
    #[arg(short = 'n', long)]
    pub no_newline: bool,
    /// Write the value to this file (mode 0600 unless --file-mode) and print its path.
    #[arg(short = 'o', long)]
    pub out_file: Option<PathBuf>,
    /// Mode of the --out-file file.
    #[arg(long, default_value = "0600")]
    pub file_mode: String,
    /// Overwrite --out-file if it exists.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Ask 1Password even if the value is cached.
    #[arg(long)]
    pub no_cache: bool,
    /// Print {"<ref>": "<value>"} as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The account [env: OP_ACCOUNT].
    #[arg(long)]
    pub account: Option<String>,
    /// Read environment variables from a dotenv file (repeatable; later files win).
    #[arg(long = "env-file")]
    pub env_files: Vec<PathBuf>,
    /// Do not conceal secret values in the command's output [env: OP_RUN_NO_MASKING].
    #[arg(long)]
    pub no_masking: bool,
    /// Ask 1Password even for cached values.
    #[arg(long)]
    pub no_cache: bool,
    /// The command and its arguments (after --).
    #[arg(required = true, last = true)]
    pub command: Vec<String>,
}

/// `inject` flags.
#[derive(Debug, Args)]
pub struct InjectArgs {
    /// The template [default: stdin].
    #[arg(short = 'i', long)]
    pub in_file: Option<PathBuf>,
    /// Write the result here [default: stdout].
    #[arg(short = 'o', long)]
    pub out_file: Option<PathBuf>,
    /// Mode of the --out-file file.
    #[arg(long, default_value = "0600")]
    pub file_mode: String,
    /// Overwrite --out-file if it exists.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// The account [env: OP_ACCOUNT].
    #[arg(long)]
    pub account: Option<String>,
}

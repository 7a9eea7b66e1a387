//! The command line of `op-session`, as a clap definition (also used for completions and the
//! man page).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use op_grammar::FileMode;

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
    /// Open a scoped grant: a second socket limited to some vaults, references and verbs,
    /// for a sub-agent, a container or a remote machine. Prints its OPSESSION_SOCKET line.
    Grant(GrantArgs),
    /// List live grants with their scope, time left and reads used.
    Grants {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// End a grant and remove its socket.
    Revoke {
        /// The grant's name.
        name: String,
    },
    /// List the confirmations a person gave that are still remembered ([confirm] remember),
    /// or forget them all. Nothing here approves anything.
    Approvals {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Drop every remembered approval: the next use asks again.
        #[arg(long)]
        forget: bool,
    },
    /// Serve MCP tools (stdio, or loopback HTTP) that share the daemon's session; no value is
    /// returned unless [mcp] reveal allows it.
    Mcp(McpArgs),
    /// Stop the daemon (wipes and revokes every session).
    Stop,
    /// Check the op binary, daemon, service, socket directory, config, shim, agent
    /// integrations and leftover token files; say how to fix each problem (exit 1 if any).
    Doctor {
        /// Print a JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set an AI agent up to use op-session (instructions, a command, the MCP server), or
    /// take that out again.
    Agent {
        /// Agent action.
        #[command(subcommand)]
        action: AgentAction,
    },
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

/// `agent` actions.
#[derive(Debug, Subcommand)]
pub enum AgentAction {
    /// Write the agent's instructions and MCP server entry (again: no change).
    Install(AgentArgs),
    /// Remove exactly what `install` wrote, and nothing else.
    Uninstall(AgentArgs),
}

/// The agents `agent` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AgentKind {
    /// Claude Code: a skill, the /op-session command and the MCP server.
    ClaudeCode,
    /// Codex: an AGENTS.md section and the MCP server in config.toml.
    Codex,
    /// Cursor: a rule (with --project) and the MCP server in mcp.json.
    Cursor,
}

/// `agent install|uninstall` flags.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The agent.
    #[arg(value_enum)]
    pub agent: AgentKind,
    /// Set up this project directory instead of your user-wide configuration.
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Print what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
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
    /// Move the session the "op-session" Claude Code skill left in ~/.op-claude-session into
    /// the daemon, then overwrite and remove that file.
    #[arg(long, conflicts_with_all = ["mode", "password_stdin", "token_file"])]
    pub import_skill_session: bool,
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
    /// Where the output goes.
    #[command(flatten)]
    pub out: OutFileArgs,
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
    /// Which forms of each value to conceal in the command's output.
    #[arg(long, value_enum, default_value_t = MaskArg::Encoded, conflicts_with = "no_masking")]
    pub mask: MaskArg,
    /// Values shorter than this many bytes are concealed as they are but not in encoded forms
    /// [env: OPSESSION_MASK_MIN_ENCODED] [default: 8].
    #[arg(long, value_name = "BYTES")]
    pub mask_min_encoded: Option<usize>,
    /// Ask 1Password even for cached values.
    #[arg(long)]
    pub no_cache: bool,
    /// `op run --environment ID`: not supported, refused with the reason
    /// (docs/op-behaviour.md §10.3).
    #[arg(long, value_name = "ID", hide = true)]
    pub environment: Option<String>,
    /// The command and its arguments (after --).
    #[arg(required = true, last = true)]
    pub command: Vec<String>,
}

/// `grant` flags.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The grant's name (letters, digits, '-', '_', '.').
    pub name: String,
    /// A vault it may read from (repeatable) [default: any the policy allows].
    #[arg(long = "vault")]
    pub vaults: Vec<String>,
    /// A reference it may resolve (repeatable) [default: any in its vaults].
    #[arg(long = "ref")]
    pub refs: Vec<String>,
    /// A verb it may use, e.g. "read" or "item get" (repeatable) [default: read, run, inject].
    /// A passthrough verb must be named here.
    #[arg(long)]
    pub allow: Vec<String>,
    /// How long it lives, e.g. 15m, 1h [default: 1h].
    #[arg(long)]
    pub ttl: Option<String>,
    /// End it after this many values are handed out.
    #[arg(long)]
    pub max_reads: Option<u64>,
    /// Refuse every `op` passthrough, whatever --allow says.
    #[arg(long)]
    pub no_passthrough: bool,
    /// Every value handed out through it waits for a person's confirmation ([confirm]).
    #[arg(long)]
    pub confirm: bool,
    /// Where to put its socket [default: <socket dir>/grants/NAME/agent.sock].
    // Not named `socket`: clap would take it for the global --socket (same id) and send the
    // request to a daemon auto-started on the grant's path.
    #[arg(long = "grant-socket", value_name = "PATH")]
    pub grant_socket: Option<PathBuf>,
    /// The account whose session it draws on [env: OP_ACCOUNT].
    #[arg(long)]
    pub account: Option<String>,
}

/// What `run --mask` conceals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MaskArg {
    /// Each value, and its base64, hex, percent-encoded and JSON-escaped forms.
    Encoded,
    /// Each value exactly as it is, as `op run` does.
    Exact,
}

/// `--out-file`, `--file-mode` and `--force`, as `op read` and `op inject` take them.
#[derive(Debug, Args)]
pub struct OutFileArgs {
    /// Write to this file instead of stdout (mode 0600 unless --file-mode) and print its path.
    #[arg(short = 'o', long)]
    pub out_file: Option<PathBuf>,
    /// Mode of the --out-file file (octal).
    #[arg(long, default_value = "0600")]
    pub file_mode: FileMode,
    /// Overwrite --out-file if it exists.
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// `inject` flags.
#[derive(Debug, Args)]
pub struct InjectArgs {
    /// The template [default: stdin].
    #[arg(short = 'i', long)]
    pub in_file: Option<PathBuf>,
    /// Where the output goes.
    #[command(flatten)]
    pub out: OutFileArgs,
    /// The account [env: OP_ACCOUNT].
    #[arg(long)]
    pub account: Option<String>,
}

/// MCP clients `--print-config` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum McpClientKind {
    /// Claude Code (`.mcp.json`).
    ClaudeCode,
    /// Claude Desktop (`claude_desktop_config.json`).
    ClaudeDesktop,
    /// Cursor (`.cursor/mcp.json`).
    Cursor,
    /// Codex (`~/.codex/config.toml`).
    Codex,
}

/// `mcp` flags.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// Serve Streamable HTTP on this loopback address (e.g. 127.0.0.1:8765) instead of stdio.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Bearer token file for --http (must be 0600; generated if missing)
    /// [default: $XDG_CONFIG_HOME/op-session/mcp-token].
    #[arg(long, value_name = "PATH", requires = "http")]
    pub token_file: Option<PathBuf>,
    /// Print the MCP server entry for this client's config and exit.
    #[arg(long, value_enum, value_name = "CLIENT", conflicts_with_all = ["http", "token_file"])]
    pub print_config: Option<McpClientKind>,
}

/// The account from `--account`, else `OP_ACCOUNT` (unset and empty are the same), as `op`
/// reads it; every command that names an account goes through here.
pub fn account_or_env(flag: Option<String>) -> Option<String> {
    flag.or_else(|| std::env::var("OP_ACCOUNT").ok().filter(|a| !a.is_empty()))
}

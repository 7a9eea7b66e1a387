//! `op-session agent install|uninstall <claude-code|codex|cursor> [--project DIR] [--dry-run]`:
//! wire an AI agent up to op-session, and take exactly that wiring out again.
//!
//! Owns which files each agent reads (docs/agents.md says where each fact comes from) and the
//! plan of edits for one agent and scope. Like `service install`, it first plans, then carries
//! the plan out, so `--dry-run` costs nothing. The edits themselves live in [`edit`]: whole
//! files we own (marked, and removed only while they still carry the mark), our entry in a
//! shared JSON or TOML config (other entries untouched), and a marked section in a shared
//! Markdown file such as `AGENTS.md`.
//!
//! Installing twice changes nothing. Nothing written holds a token or a secret: MCP entries
//! run `op-session mcp` by absolute path, and the instructions name commands only.

pub(crate) mod edit;
mod jsontext;

use std::path::{Path, PathBuf};

use op_session_protocol::exit;

use crate::cli::{AgentAction, AgentArgs, AgentKind};
use crate::error::{Failure, Result};
use edit::{Edit, McpFormat};

/// The name of our MCP server entry, skill, command and rule.
pub const NAME: &str = "op-session";

/// The Claude Code skill.
const SKILL: &str = include_str!("agent/text/skill.md");
/// The Claude Code `/op-session` command.
const COMMAND: &str = include_str!("agent/text/command.md");
/// The Cursor rule.
const RULE: &str = include_str!("agent/text/rule.mdc");
/// The section for Codex's `AGENTS.md`.
const AGENTS_SECTION: &str = include_str!("agent/text/agents-section.md");

/// Where the agent's files go: the person's home (the agent's user-wide configuration) or a
/// project directory.
#[derive(Debug, Clone)]
pub enum Scope {
    /// User-wide, under `home` (and `codex_home` for Codex).
    User {
        /// `$HOME`.
        home: PathBuf,
        /// `$CODEX_HOME`, else `~/.codex`.
        codex_home: PathBuf,
    },
    /// One project, under its directory.
    Project(PathBuf),
}

impl Scope {
    /// The scope from `--project`, else from the environment.
    fn from_args(project: Option<&Path>) -> Result<Scope> {
        if let Some(dir) = project {
            if !dir.is_dir() {
                return Err(Failure::usage(
                    format!("--project {}: no such directory", dir.display()),
                    "pass the project's root directory",
                ));
            }
            let dir = std::fs::canonicalize(dir).map_err(|e| {
                Failure::usage(
                    format!("--project {}: {e}", dir.display()),
                    "check the path",
                )
            })?;
            return Ok(Scope::Project(dir));
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| Failure::usage("HOME is not set", "set HOME, or pass --project DIR"))?;
        let codex_home = std::env::var_os("CODEX_HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".codex"));
        Ok(Scope::User { home, codex_home })
    }

    /// The directory no cleanup ever goes above.
    fn base(&self) -> &Path {
        match self {
            Scope::User { home, .. } => home,
            Scope::Project(dir) => dir,
        }
    }
}

/// The edits that wire `agent` up in `scope`, its MCP entry running `op_session mcp`.
pub fn plan(agent: AgentKind, scope: &Scope, op_session: &Path) -> Vec<Edit> {
    let server = |path: PathBuf, format: McpFormat| Edit::McpServer {
        path,
        format,
        command: op_session.to_path_buf(),
    };
    match (agent, scope) {
        (AgentKind::ClaudeCode, Scope::User { home, .. }) => vec![
            Edit::owned(home.join(".claude/skills/op-session/SKILL.md"), SKILL),
            Edit::owned(home.join(".claude/commands/op-session-status.md"), COMMAND),
            server(home.join(".claude.json"), McpFormat::ClaudeCode),
        ],
        (AgentKind::ClaudeCode, Scope::Project(dir)) => vec![
            Edit::owned(dir.join(".claude/skills/op-session/SKILL.md"), SKILL),
            Edit::owned(dir.join(".claude/commands/op-session-status.md"), COMMAND),
            server(dir.join(".mcp.json"), McpFormat::ClaudeCode),
        ],
        (AgentKind::Codex, Scope::User { codex_home, .. }) => vec![
            Edit::section(codex_home.join("AGENTS.md"), AGENTS_SECTION),
            server(codex_home.join("config.toml"), McpFormat::Codex),
        ],
        (AgentKind::Codex, Scope::Project(dir)) => vec![
            Edit::section(dir.join("AGENTS.md"), AGENTS_SECTION),
            server(dir.join(".codex/config.toml"), McpFormat::Codex),
        ],
        // Cursor reads rule files per project only (user rules live in its settings).
        (AgentKind::Cursor, Scope::User { home, .. }) => {
            vec![server(home.join(".cursor/mcp.json"), McpFormat::Cursor)]
        }
        (AgentKind::Cursor, Scope::Project(dir)) => vec![
            Edit::owned(dir.join(".cursor/rules/op-session.mdc"), RULE),
            server(dir.join(".cursor/mcp.json"), McpFormat::Cursor),
        ],
    }
}

/// What the agent's name is on the command line (for messages).
fn agent_name(agent: AgentKind) -> &'static str {
    match agent {
        AgentKind::ClaudeCode => "claude-code",
        AgentKind::Codex => "codex",
        AgentKind::Cursor => "cursor",
    }
}

/// Whether an executable called `name` is on PATH.
fn on_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(name))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The absolute path of this `op-session`, which the MCP entries run.
fn this_binary() -> Result<PathBuf> {
    std::env::current_exe().map_err(|e| {
        Failure::new(
            exit::FAILED,
            format!("cannot tell where op-session is installed: {e}"),
            "run op-session by its full path",
        )
    })
}

/// `agent install|uninstall`.
pub fn run(action: &AgentAction) -> Result<i32> {
    let (args, installing): (&AgentArgs, bool) = match action {
        AgentAction::Install(a) => (a, true),
        AgentAction::Uninstall(a) => (a, false),
    };
    let scope = Scope::from_args(args.project.as_deref())?;
    let edits = plan(args.agent, &scope, &this_binary()?);
    let mut changes = Vec::new();
    for e in &edits {
        let change = if installing {
            e.install()
        } else {
            e.uninstall()
        };
        changes.push(change.map_err(|err| Failure::new(exit::FAILED, err.to_string(), err.fix()))?);
    }
    let name = agent_name(args.agent);
    let mut changed = 0;
    for c in &changes {
        if c.is_noop() {
            continue;
        }
        changed += 1;
        let verb = c.verb(args.dry_run);
        outln!("{verb} {}", c.path.display());
        if !args.dry_run {
            c.apply(scope.base()).map_err(|e| {
                Failure::new(
                    exit::FAILED,
                    format!("cannot change {}: {e}", c.path.display()),
                    "check the file's permissions, then run the command again",
                )
            })?;
        }
    }
    match (changed, installing, args.dry_run) {
        (0, true, _) => outln!("op-session: {name} is already set up; nothing to change"),
        (0, false, _) => outln!("op-session: nothing of op-session's is set up for {name}"),
        (_, _, true) => outln!("op-session: dry run; nothing was changed"),
        (_, true, false) => outln!(
            "op-session: {name} is set up; `op-session agent uninstall {name}{}` takes it out again",
            match &scope {
                Scope::Project(dir) => format!(" --project {}", dir.display()),
                Scope::User { .. } => String::new(),
            }
        ),
        (_, false, false) => outln!("op-session: removed what op-session had set up for {name}"),
    }
    if installing && !args.dry_run && !on_path(NAME) {
        outln!(
            "note: the instructions call `op-session` by name, and it is not on PATH; add {} \
             to the PATH your agent runs with",
            this_binary()?
                .parent()
                .map_or_else(String::new, |d| d.display().to_string())
        );
    }
    if installing
        && !args.dry_run
        && let (AgentKind::Codex, Scope::Project(dir)) = (args.agent, &scope)
    {
        outln!(
            "note: Codex reads {} only once the project is trusted; trust {} in Codex (it asks \
             when you first open it, or set projects.\"{}\".trust_level = \"trusted\" in \
             ~/.codex/config.toml)",
            dir.join(".codex/config.toml").display(),
            dir.display(),
            dir.display()
        );
    }
    if installing
        && matches!(
            (args.agent, &scope),
            (AgentKind::Cursor, Scope::User { .. })
        )
    {
        outln!(
            "note: Cursor reads rule files per project; add the rule with \
             `op-session agent install cursor --project DIR`"
        );
    }
    Ok(exit::OK)
}
/// How far an agent's integration is set up (for `doctor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Everything install writes is in place and current.
    Current,
    /// Nothing of ours is there.
    Absent,
    /// Some of it is there, or it is out of date (the binary moved, the text changed).
    Stale,
}

/// How far `agent`'s integration is set up in `scope`.
pub fn presence(agent: AgentKind, scope: &Scope) -> Presence {
    let Ok(binary) = this_binary() else {
        return Presence::Absent;
    };
    let edits = plan(agent, scope, &binary);
    if edits
        .iter()
        .all(|e| e.install().is_ok_and(|change| change.is_noop()))
    {
        Presence::Current
    } else if edits
        .iter()
        .all(|e| e.uninstall().is_ok_and(|change| change.is_noop()))
    {
        Presence::Absent
    } else {
        Presence::Stale
    }
}

/// The user-wide scope, for `doctor`.
pub fn user_scope() -> Option<Scope> {
    Scope::from_args(None).ok()
}

//! `op-session mcp`: start the MCP server, or print a client's config entry for it.
//!
//! The server is a separate binary, `op-session-mcp` (beside this one, else on PATH;
//! `OPSESSION_MCP` overrides), so this synchronous client never links tokio or rmcp and its
//! start-up stays what it was (see docs/BENCHMARKS.md). Before exec'ing it, the daemon is
//! reached once (auto-starting it as any command would), so the first tool call does not pay
//! for the start and a daemon that cannot start is reported here, in the person's terminal.
//!
//! `--print-config` prints the exact entry for an MCP client: the absolute path of this
//! binary plus `["mcp"]` (for Codex also `env_vars`, the variables it must pass on; for Claude
//! Code the bare entry `claude mcp add-json` reads). It never includes a token.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use op_session_protocol::exit;

use crate::cli::{McpArgs, McpClientKind};
use crate::conn::{Target, connect};
use crate::error::{Failure, Result};

/// The MCP server to exec: `OPSESSION_MCP`, else beside this binary, else on PATH.
fn server_binary() -> PathBuf {
    crate::conn::companion_binary("OPSESSION_MCP", "op-session-mcp")
}

/// The config entry for `kind`, naming `exe` (an absolute path).
pub fn config_entry(kind: McpClientKind, exe: &str) -> String {
    match kind {
        McpClientKind::Codex => {
            let quoted = serde_json::Value::String(exe.to_string()).to_string();
            let vars = serde_json::json!(crate::agent::edit::CODEX_ENV_VARS).to_string();
            let vars = vars.replace(',', ", ");
            format!(
                "[mcp_servers.op-session]\ncommand = {quoted}\nargs = [\"mcp\"]\nenv_vars = {vars}\n"
            )
        }
        // What `claude mcp add-json NAME JSON` takes: the server entry alone.
        McpClientKind::ClaudeCode => {
            let v = serde_json::json!({ "command": exe, "args": ["mcp"] });
            let mut s = serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string());
            s.push('\n');
            s
        }
        McpClientKind::ClaudeDesktop | McpClientKind::Cursor => {
            let v = serde_json::json!({
                "mcpServers": {
                    "op-session": { "command": exe, "args": ["mcp"] }
                }
            });
            let mut s = serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string());
            s.push('\n');
            s
        }
    }
}

/// `mcp`.
pub fn mcp(t: &Target, a: McpArgs) -> Result<i32> {
    if let Some(kind) = a.print_config {
        let exe = std::env::current_exe()
            .and_then(|p| p.canonicalize())
            .map_err(|e| {
                Failure::new(
                    exit::FAILED,
                    format!("cannot tell where op-session is installed: {e}"),
                    "run it by its absolute path",
                )
            })?;
        out!("{}", config_entry(kind, &exe.display().to_string()));
        if kind == McpClientKind::ClaudeCode {
            // On stderr, so stdout stays exactly what `claude mcp add-json` reads.
            eprintln!(
                "add it with: claude mcp add-json op-session \"$(op-session mcp --print-config claude-code)\"\n\
                 (in a project's .mcp.json the entry goes under \"mcpServers\": {{\"op-session\": …}};\n\
                 `op-session agent install claude-code --project DIR` writes it there)"
            );
        }
        return Ok(exit::OK);
    }
    // Refuse a non-loopback address here, in the person's terminal, before anything starts.
    if let Some(h) = &a.http {
        let ok = h
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|addr| addr.ip().is_loopback());
        if !ok {
            return Err(Failure::usage(
                format!("--http {h} is not a loopback address and port"),
                "use 127.0.0.1:PORT or [::1]:PORT; op-session mcp serves this machine only",
            ));
        }
    }
    // Reach (or start) the daemon once; the server itself never starts it.
    drop(connect(t)?);
    let bin = server_binary();
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg("--socket").arg(&t.socket);
    if let Some(h) = &a.http {
        cmd.arg("--http").arg(h);
    }
    if let Some(f) = &a.token_file {
        cmd.arg("--token-file").arg(f);
    }
    let err = cmd.exec();
    Err(Failure::new(
        exit::UNAVAILABLE,
        format!("cannot start {}: {err}", bin.display()),
        "install op-session-mcp next to op-session or on PATH, or set OPSESSION_MCP",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_name_the_binary_and_mcp_and_no_token() {
        // Claude Code: the bare entry, as `claude mcp add-json op-session JSON` takes it.
        let s = config_entry(McpClientKind::ClaudeCode, "/opt/bin/op-session");
        let v: serde_json::Value = serde_json::from_str(&s).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"command": "/opt/bin/op-session", "args": ["mcp"]})
        );
        for kind in [McpClientKind::ClaudeDesktop, McpClientKind::Cursor] {
            let s = config_entry(kind, "/opt/bin/op-session");
            let v: serde_json::Value = serde_json::from_str(&s).expect("json");
            assert_eq!(
                v["mcpServers"]["op-session"]["command"],
                "/opt/bin/op-session"
            );
            assert_eq!(
                v["mcpServers"]["op-session"]["args"],
                serde_json::json!(["mcp"])
            );
        }
        let s = config_entry(McpClientKind::Codex, "/opt/bin/op-session");
        assert!(s.contains("[mcp_servers.op-session]"), "{s}");
        assert!(s.contains("command = \"/opt/bin/op-session\""), "{s}");
        assert!(s.contains("args = [\"mcp\"]"), "{s}");
        let v: toml_edit::DocumentMut = s.parse().expect("toml");
        assert_eq!(
            v["mcp_servers"]["op-session"]["env_vars"]
                .to_string()
                .trim(),
            r#"["XDG_RUNTIME_DIR", "OPSESSION_SOCKET"]"#
        );
        assert!(!s.to_lowercase().contains("token"));
    }
}

//! `op-session-mcp`: the MCP server binary. `op-session mcp` execs it after making sure the
//! daemon runs; it can also be started directly with `--socket`.
//!
//! Parses flags, builds a single-threaded tokio runtime (small and idle-cheap: every tool
//! waits on the daemon or a child anyway), and serves stdio (default) or Streamable HTTP.
//! Logs go to stderr only (stdout is the MCP stream) and never hold a value or the token.
//! Core dumps are off and, on Linux, the process is not dumpable (no ptrace by same-uid
//! processes), since it briefly holds values for `run` and `inject`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use op_session_mcp::daemon::DaemonClient;
use op_session_mcp::http;
use op_session_mcp::server::OpSessionMcp;
use rmcp::ServiceExt;

/// The op-session MCP server (normally started as `op-session mcp`).
#[derive(Debug, Parser)]
#[command(name = "op-session-mcp", version)]
struct Args {
    /// The daemon's socket [default: as op-session finds it].
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Serve Streamable HTTP on this loopback address (e.g. 127.0.0.1:8765) instead of stdio.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// The bearer token file for --http (0600; generated if missing)
    /// [default: $XDG_CONFIG_HOME/op-session/mcp-token].
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("op-session mcp: {e:#}");
        std::process::exit(1);
    }
}

/// The process briefly holds values for `run`, `inject` and an allowed `read_secret`: keep
/// other same-user processes from reading its memory, and write no core dump. Best effort,
/// like the daemon's own (docs/MCP.md).
fn harden() {
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_dumpable(false);
}

fn real_main() -> Result<()> {
    harden();
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OPSESSION_MCP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let socket = op_session_paths::socket_path(args.socket.as_deref());
    let server = OpSessionMcp::new(DaemonClient::new(socket));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        match args.http {
            None => {
                let running = server
                    .serve(rmcp::transport::stdio())
                    .await
                    .context("cannot start MCP over stdio")?;
                running.waiting().await.context("MCP over stdio ended")?;
                Ok(())
            }
            Some(addr) => {
                // Refused before anything is written (the token file) or bound.
                if !addr.ip().is_loopback() {
                    return Err(http::HttpError::NotLoopback(addr).into());
                }
                let path = args
                    .token_file
                    .or_else(http::default_token_path)
                    .context("no token file: pass --token-file")?;
                let (token, created) = http::load_or_create_token(&path)?;
                let shutdown = tokio_util::sync::CancellationToken::new();
                let stop = shutdown.clone();
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .context("cannot watch SIGTERM")?;
                tokio::spawn(async move {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                    stop.cancel();
                });
                let hint = token.hint();
                http::serve(addr, token, server, shutdown, |bound| {
                    eprintln!(
                        "op-session mcp: serving http://{bound}/mcp; bearer token {} ({hint}) in {}",
                        if created { "generated" } else { "read" },
                        path.display()
                    );
                })
                .await?;
                Ok(())
            }
        }
    })
}

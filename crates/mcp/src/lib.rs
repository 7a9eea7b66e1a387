//! `op-session mcp`: a Model Context Protocol server that is one more client of op-sessiond.
//!
//! It holds no 1Password credential: every tool is a request over the daemon's socket, so the
//! daemon's policy, vault rules, cache, single-flight and audit apply, and the audit line says
//! `via: "mcp"` with the MCP client's name. It returns no secret value unless the person set
//! `[mcp] reveal = true` in the daemon's config and the call acknowledges it.
//!
//! Module map: [`daemon`] (the socket client), [`server`] (tools and the rmcp handler),
//! [`runner`] (the `run` and `inject` tools), [`roots`] (where those may read and write), [`http`] (Streamable HTTP with bearer token and
//! Origin checks). The binary (`main.rs`) picks stdio or HTTP. See docs/MCP.md.
//!
//! This is a separate binary, exec'd by `op-session mcp`, so the synchronous client never
//! loads tokio or rmcp (its start-up is the product; see docs/BENCHMARKS.md).

pub mod daemon;
pub mod http;
pub mod roots;
pub mod runner;
pub mod server;

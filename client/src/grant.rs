//! `op-session grant`, `grants` and `revoke`: scoped second sockets for sub-agents, containers
//! and remote machines.
//!
//! The daemon opens, scopes and ends grants; this module only asks and prints. A grant's
//! socket is handed to whoever should use it as an `OPSESSION_SOCKET=…` line.

use op_session_protocol::{GrantInfo, GrantRequest, Request, Response, RevokeRequest, exit};

use crate::cli::GrantArgs;
use crate::conn::{Target, request};
use crate::error::Result;
use crate::status::unexpected_response;

fn describe(g: &GrantInfo) -> String {
    let list = |v: &[String], all: &str| {
        if v.is_empty() {
            all.to_string()
        } else {
            v.join(", ")
        }
    };
    let reads = match g.max_reads {
        Some(m) => format!("{}/{m} reads", g.reads_used),
        None => format!("{} reads", g.reads_used),
    };
    format!(
        "{}  account {}  vaults {}  refs {}  verbs {}{}{}  {} left  {}\n  socket {}",
        g.name,
        g.account,
        list(&g.vaults, "any"),
        list(&g.refs, "any"),
        list(&g.allow, "read, run, inject"),
        if g.passthrough {
            ""
        } else {
            " (no passthrough)"
        },
        if g.confirm {
            "  (confirm each read)"
        } else {
            ""
        },
        op_session_protocol::human::duration(g.expires_in_s),
        reads,
        g.socket
    )
}

/// `op-session grant NAME …`.
pub fn grant(t: &Target, a: GrantArgs) -> Result<i32> {
    let req = Request::Grant(GrantRequest {
        name: a.name,
        account: crate::cli::account_or_env(a.account),
        vaults: a.vaults,
        refs: a.refs,
        allow: a.allow,
        ttl: a.ttl,
        max_reads: a.max_reads,
        no_passthrough: a.no_passthrough,
        confirm: a.confirm,
        socket: a
            .grant_socket
            .map(|p| std::path::absolute(&p).unwrap_or(p).display().to_string()),
    });
    match request(t, &req)? {
        Response::Grant(g) => {
            eprintln!("op-session: opened grant {}", describe(&g));
            outln!("{}", g.socket);
            outln!("OPSESSION_SOCKET={}", g.socket);
            Ok(exit::OK)
        }
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected_response(&other)),
    }
}

/// `op-session grants [--json]`.
pub fn list(t: &Target, json: bool) -> Result<i32> {
    match request(t, &Request::Grants)? {
        Response::GrantList { grants } => {
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&grants).unwrap_or_else(|_| "[]".into())
                );
            } else if grants.is_empty() {
                outln!("no grants");
            } else {
                for g in &grants {
                    outln!("{}", describe(g));
                }
            }
            Ok(exit::OK)
        }
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected_response(&other)),
    }
}

/// `op-session approvals [--json] [--forget]`: what a person's remembered confirmations
/// cover. Listing and forgetting never approve anything.
pub fn approvals(t: &Target, json: bool, forget: bool) -> Result<i32> {
    let req = Request::Approvals(op_session_protocol::ApprovalsRequest { forget });
    match request(t, &req)? {
        Response::Approvals { approvals } => {
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&approvals).unwrap_or_else(|_| "[]".into())
                );
            } else if forget {
                outln!("op-session: remembered approvals forgotten; the next use asks again");
            } else if approvals.is_empty() {
                outln!("no remembered approvals");
            } else {
                for a in &approvals {
                    outln!(
                        "{}  account {}  caller {}{}  {} left",
                        a.reference,
                        a.account,
                        a.exe,
                        a.agent
                            .as_deref()
                            .map(|g| format!(" under {g}"))
                            .unwrap_or_default(),
                        op_session_protocol::human::duration(a.expires_in_s)
                    );
                }
            }
            Ok(exit::OK)
        }
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected_response(&other)),
    }
}

/// `op-session revoke NAME`.
pub fn revoke(t: &Target, name: String) -> Result<i32> {
    match request(t, &Request::Revoke(RevokeRequest { name }))? {
        Response::Done { message } => {
            outln!("op-session: {message}");
            Ok(exit::OK)
        }
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected_response(&other)),
    }
}

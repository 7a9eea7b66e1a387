//! The op-session wire protocol, shared by `op-sessiond` and `op-session`.
//!
//! This crate owns everything both ends must agree on, and nothing else: no I/O policy, and
//! tokio only behind the `tokio` feature (the async frame reader the daemon and the MCP server
//! use), so the synchronous client, which leaves it off, stays small and fast.
//!
//! # A connection, byte by byte
//!
//! 1. **Preamble** (client → daemon): exactly one byte, sent with `sendmsg`. `0x00` for a plain
//!    request; `0x01` when the client passes its stdin, stdout and stderr as `SCM_RIGHTS`
//!    ancillary data (only for [`Request::Passthrough`]). The daemon reads it with `recvmsg`
//!    *before* any buffered reader touches the socket, because buffered readers silently drop
//!    ancillary data. See [`fdpass`].
//! 2. **Request frame** (client → daemon): a 4-byte big-endian length, then that many bytes of
//!    JSON: an object with `"version": PROTOCOL_VERSION` and a `"type"` tag naming the request
//!    (see [`Request`]). Request frames are capped at [`MAX_REQUEST_FRAME`] (64 KiB).
//! 3. **Response frame(s)** (daemon → client): the same framing, JSON with a `"type"` tag (see
//!    [`Response`]), capped at [`MAX_RESPONSE_FRAME`]. Every request gets exactly one final
//!    response. During a passthrough the client may send further [`ClientEvent`] frames
//!    (signals to forward); the daemon answers with a final [`Response::Exit`].
//!
//! A connection carries one request, except after the preamble [`PREAMBLE_REUSE`] (`0x02`):
//! then it carries a sequence of request frames, each answered by exactly one response frame
//! before the next is sent, for a long-lived client (the MCP server) that would otherwise
//! connect once per request. Such a connection takes no descriptors and no passthrough, and
//! the daemon closes it after [`REUSE_IDLE`] without a request; a client stops reusing one
//! after half that, so it never sends into a connection the daemon is closing.
//!
//! The version travels in every request, so the first exchange always carries it. A daemon that speaks another version answers
//! [`ErrorCode::VersionMismatch`] with its own version, pid and how it was started, so a client
//! can restart a daemon it auto-started and otherwise tell the person what to do.
//!
//! # Errors
//! Every failure the daemon reports is an [`ErrorBody`]: a stable [`ErrorCode`], one line saying
//! what happened, and one line saying the fix. Each code maps to the client's exit code
//! ([`ErrorCode::exit_code`]), which is what agents branch on.
//!
//! # Secrets
//! Session and service-account tokens cross this protocol once, client → daemon, in
//! [`InitRequest::token`], as a [`secrecy::SecretString`] (its `Debug` prints a placeholder).
//! Resolved secret values cross daemon → client in [`ResolvedValue`], also as `SecretString`.
//! Frame buffers that may hold either are [`zeroize::Zeroizing`].

pub mod audit;
pub mod confirm;
pub mod error;
pub mod exit;
pub mod fdpass;
pub mod frame;
pub mod grant;
pub mod human;
pub mod mcp;
pub mod message;
pub mod presence;
pub mod status;
pub mod wire_name;

pub use audit::{AuditRecord, Decision};
pub use confirm::{ApprovalInfo, ApprovalsRequest, ConfirmRecord, ConfirmStatus};
pub use error::{DaemonIdentity, ErrorBody, ErrorCode};
pub use frame::{FrameError, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
pub use grant::{GrantInfo, GrantRequest, RevokeRequest};
pub use mcp::{CheckReport, CheckRequest, ItemOp, ItemRequest, McpInfo, RelayedResolve, Via};
pub use message::*;
pub use presence::{PresenceEvent, PresenceStatus};
pub use status::*;

/// The protocol version. Bump it whenever a request or response changes shape.
pub const PROTOCOL_VERSION: u32 = 2;

/// Preamble byte of a plain request (no file descriptors attached).
pub const PREAMBLE_PLAIN: u8 = 0x00;
/// Preamble byte of a request that carries stdin, stdout and stderr as `SCM_RIGHTS`.
pub const PREAMBLE_FDS: u8 = 0x01;
/// Preamble byte of a reused connection: request frames one after another, each answered
/// before the next; no descriptors, no passthrough.
pub const PREAMBLE_REUSE: u8 = 0x02;
/// How long the daemon keeps a reused connection open without a request. Clients reuse a
/// connection only while it has been idle for less than half of this.
pub const REUSE_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

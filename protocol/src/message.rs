//! Requests, responses and their JSON encoding.
//!
//! Each request is one JSON object `{"version": N, "type": "<name>", ...fields}`; each response
//! is `{"type": "<name>", ...fields}`. Decoding a request checks the version *before* the rest,
//! so a daemon can answer a client of another version with a clear
//! [`ErrorCode::VersionMismatch`] even when it cannot parse that client's request.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::PROTOCOL_VERSION;
use crate::error::{ErrorBody, ErrorCode};
use crate::frame::FrameError;
use crate::mcp::{CheckReport, CheckRequest, ItemRequest, McpInfo, RelayedResolve};
use crate::status::{SessionStatus, StatusReport};

/// How a session authenticates `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A token from `op signin`, handed to `op` in `OP_SESSION_<USERUUID>`.
    Token,
    /// The desktop app's integration: the daemon's own process is authorized.
    App,
    /// A service-account token, handed to `op` in `OP_SERVICE_ACCOUNT_TOKEN`.
    ServiceAccount,
    /// A 1Password Connect server's token: the daemon resolves over Connect's REST API, and
    /// hands `op` `OP_CONNECT_HOST` and `OP_CONNECT_TOKEN` for the few commands it forwards.
    Connect,
}

impl Mode {
    /// The name used on the command line and in status.
    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serialize a secret by exposing it: only for fields that must cross the socket.
pub fn expose_secret<S: Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose_secret())
}

/// Serialize an optional secret by exposing it.
pub fn expose_opt_secret<S: Serializer>(
    s: &Option<SecretString>,
    ser: S,
) -> Result<S::Ok, S::Error> {
    match s {
        Some(s) => ser.serialize_some(s.expose_secret()),
        None => ser.serialize_none(),
    }
}

fn de_opt_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(s.map(|s| SecretString::from(Zeroizing::new(s).as_str())))
}

fn de_secret<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    let s: Zeroizing<String> = Zeroizing::new(String::deserialize(d)?);
    Ok(SecretString::from(s.as_str()))
}

/// A request from a client. One per connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Report the daemon and its sessions. Never counts as use.
    Status,
    /// Wipe and revoke every session, then exit.
    Stop,
    /// Which `op` binary the daemon runs, so `op-session init` runs the same one.
    OpPath,
    /// Establish a session.
    Init(InitRequest),
    /// Wipe and revoke one account's session, or all.
    Lock(LockRequest),
    /// Resolve secret references (for `read`, `run` and `inject`).
    Resolve(ResolveRequest),
    /// Run `op ARGS` with the caller's stdio (passed as fds) and presentation variables.
    Passthrough(PassthroughRequest),
    /// Open a scoped grant socket.
    Grant(crate::grant::GrantRequest),
    /// List live grants.
    Grants,
    /// End a grant and remove its socket.
    Revoke(crate::grant::RevokeRequest),
    /// Check that a reference resolves and say where it points; never the value.
    Check(CheckRequest),
    /// Run a fixed, typed `op` item or vault command built by the daemon (`op-session mcp`).
    Item(ItemRequest),
    /// What `op-session mcp` may offer under the daemon's config and policy.
    McpInfo,
    /// List remembered confirmations, or forget them (never approve: see [`crate::confirm`]).
    Approvals(crate::confirm::ApprovalsRequest),
}

impl Request {
    /// The request's name, for logs and audit.
    pub fn name(&self) -> &'static str {
        // Written out, not read from serde as the unit enums' `as_str` are: a request with data
        // has no unit-variant name, and serializing it to learn the tag would copy its fields
        // (an init's password among them). A unit test checks each against the wire form.
        match self {
            Request::Status => "status",
            Request::Stop => "stop",
            Request::OpPath => "op_path",
            Request::Init(_) => "init",
            Request::Lock(_) => "lock",
            Request::Resolve(_) => "resolve",
            Request::Passthrough(_) => "passthrough",
            Request::Grant(_) => "grant",
            Request::Grants => "grants",
            Request::Revoke(_) => "revoke",
            Request::Check(_) => "check",
            Request::Item(_) => "item",
            Request::McpInfo => "mcp_info",
            Request::Approvals(_) => "approvals",
        }
    }
}

/// Start a session.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InitRequest {
    /// The account as `op --account` accepts it; `None` lets `op` choose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The mode; `None` asks the daemon for app mode (the no-terminal path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Token mode: the variable `op signin` named, `OP_SESSION_<USERUUID>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_var: Option<String>,
    /// Token mode: the session token; service-account mode: the `ops_…` token; connect
    /// mode: the Connect token.
    #[serde(
        default,
        serialize_with = "expose_opt_secret",
        deserialize_with = "de_opt_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub token: Option<SecretString>,
    /// Connect mode: the server's base URL, `https://…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// Lock one account or all.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct LockRequest {
    /// The account; `None` with `all == false` means the default account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Lock every account.
    #[serde(default)]
    pub all: bool,
}

/// What a resolution is for (audit and policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ResolvePurpose {
    /// `op-session read`.
    #[default]
    Read,
    /// `op-session run`.
    Run,
    /// `op-session inject`.
    Inject,
}

impl ResolvePurpose {
    /// The verb as audit records it.
    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }
}

/// Resolve a batch of `op://` references.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ResolveRequest {
    /// The account; `None` means `OP_ACCOUNT`/default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// References exactly as the caller wrote them.
    pub refs: Vec<String>,
    /// Bypass the cache (the values are still cached afterwards).
    #[serde(default)]
    pub no_cache: bool,
    /// What the values are for.
    #[serde(default)]
    pub purpose: ResolvePurpose,
    /// What `op-session mcp` adds when it relays the request (`via`, `reveal`, `program`
    /// beside the fields above); `None` for the CLI.
    #[serde(flatten)]
    pub relayed: Option<RelayedResolve>,
}

/// Run `op` on the caller's behalf.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct PassthroughRequest {
    /// The account picked with `--account`/`OP_ACCOUNT` by the client, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Arguments after `op`.
    pub args: Vec<String>,
    /// The caller's working directory: informational only. `op` runs in a fixed directory of
    /// the daemon's, never this one (a relative path could otherwise name a caller's file).
    pub cwd: String,
    /// The caller's presentation variables (`OP_FORMAT` …). The daemon takes nothing else
    /// from a caller's environment, whatever is sent here.
    pub env: Vec<(String, String)>,
}

/// A frame the client may send while a passthrough runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientEvent {
    /// Forward this signal number to `op`'s process group.
    Signal {
        /// The signal number.
        signal: i32,
    },
}

/// A response from the daemon.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// Answer to [`Request::Status`].
    Status(StatusReport),
    /// A request that needs no data back succeeded.
    Done {
        /// One line for a person.
        message: String,
    },
    /// A session was established.
    Session(SessionStatus),
    /// The `op` binary the daemon runs.
    OpPath {
        /// Absolute path.
        path: String,
        /// Whether a person named it (`op_path` in the config) rather than the daemon finding
        /// it on the fixed system path.
        #[serde(default)]
        configured: bool,
        /// The config file the daemon read (so `init` can name where `op_path` came from).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config: Option<String>,
    },
    /// Resolved values, in the order requested.
    Values(Values),
    /// A grant was opened.
    Grant(crate::grant::GrantInfo),
    /// The live grants.
    GrantList {
        /// One per grant.
        grants: Vec<crate::grant::GrantInfo>,
    },
    /// A passthrough finished with this exit code.
    Exit {
        /// `op`'s exit code (128+N if killed by signal N).
        code: i32,
    },
    /// Answer to [`Request::Check`].
    Checked(CheckReport),
    /// Answer to [`Request::Item`]: JSON built by the daemon, concealed values masked.
    Item {
        /// The result.
        json: serde_json::Value,
    },
    /// Answer to [`Request::McpInfo`].
    McpInfo(McpInfo),
    /// Answer to [`Request::Approvals`]: what is remembered (after forgetting, if asked).
    Approvals {
        /// One per remembered approval.
        approvals: Vec<crate::confirm::ApprovalInfo>,
    },
    /// The request failed.
    Error(ErrorBody),
}

/// Resolved references.
#[derive(Debug, Serialize, Deserialize)]
pub struct Values {
    /// The account that resolved them.
    pub account: String,
    /// One entry per requested reference, in request order.
    pub values: Vec<ResolvedValue>,
}

impl Values {
    /// Each reference with its value in a buffer wiped on drop, in request order.
    pub fn into_pairs(self) -> Vec<(String, zeroize::Zeroizing<String>)> {
        use secrecy::ExposeSecret;
        self.values
            .into_iter()
            .map(|r| {
                (
                    r.reference,
                    zeroize::Zeroizing::new(r.value.expose_secret().to_string()),
                )
            })
            .collect()
    }
}

/// One resolved reference.
#[derive(Debug, Serialize, Deserialize)]
pub struct ResolvedValue {
    /// The reference as requested.
    pub reference: String,
    /// The secret value.
    #[serde(serialize_with = "expose_secret", deserialize_with = "de_secret")]
    pub value: SecretString,
    /// Whether it came from the daemon's cache.
    #[serde(default)]
    pub cached: bool,
}

/// Why a request frame could not become a [`Request`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The client speaks another version.
    #[error("client speaks protocol {client}, daemon speaks {PROTOCOL_VERSION}")]
    Version {
        /// The client's version.
        client: u32,
    },
    /// Not a request of this protocol.
    #[error("{0}")]
    Malformed(String),
}

impl DecodeError {
    /// The error to send back.
    pub fn to_body(&self) -> ErrorBody {
        match self {
            DecodeError::Version { .. } => {
                ErrorBody::new(ErrorCode::VersionMismatch, self.to_string())
            }
            DecodeError::Malformed(m) => {
                ErrorBody::new(ErrorCode::BadRequest, format!("malformed request: {m}"))
            }
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    version: u32,
    #[serde(flatten)]
    request: &'a Request,
}

/// Encode a request with this crate's version.
pub fn encode_request(req: &Request) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    serde_json::to_vec(&Envelope {
        version: PROTOCOL_VERSION,
        request: req,
    })
    .map(Zeroizing::new)
    .map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Decode a request payload: the version first, then the rest.
pub fn decode_request(payload: &[u8]) -> Result<Request, DecodeError> {
    #[derive(Deserialize)]
    struct VersionOnly {
        version: Option<u32>,
    }
    let v: VersionOnly = serde_json::from_slice(payload)
        .map_err(|e| DecodeError::Malformed(short(e.to_string())))?;
    match v.version {
        None => return Err(DecodeError::Malformed("missing \"version\"".into())),
        Some(client) if client != PROTOCOL_VERSION => {
            return Err(DecodeError::Version { client });
        }
        Some(_) => {}
    }
    serde_json::from_slice(payload).map_err(|e| DecodeError::Malformed(short(e.to_string())))
}

/// Encode a response.
pub fn encode_response(resp: &Response) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    serde_json::to_vec(resp)
        .map(Zeroizing::new)
        .map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Decode a response payload.
pub fn decode_response(payload: &[u8]) -> Result<Response, FrameError> {
    serde_json::from_slice(payload).map_err(|e| FrameError::Malformed(short(e.to_string())))
}

/// Encode a client event.
pub fn encode_event(ev: &ClientEvent) -> Result<Vec<u8>, FrameError> {
    serde_json::to_vec(ev).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Decode a client event.
pub fn decode_event(payload: &[u8]) -> Result<ClientEvent, FrameError> {
    serde_json::from_slice(payload).map_err(|e| FrameError::Malformed(short(e.to_string())))
}

/// serde_json errors can quote input; keep them to one short line.
fn short(mut s: String) -> String {
    if let Some(i) = s.find('\n') {
        s.truncate(i);
    }
    if s.len() > 200 {
        let mut cut = 200;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests;

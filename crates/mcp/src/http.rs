//! The Streamable HTTP transport: loopback only, a bearer token, and an `Origin` check.
//!
//! Owns three rules, checked on every request before rmcp sees it:
//! 1. the listener binds a loopback address only (refused otherwise, before binding);
//! 2. a request carrying an `Origin` that is not a loopback origin gets 403 (a web page the
//!    person visits must not drive the server: DNS rebinding, cross-site POSTs);
//! 3. a request without `Authorization: Bearer <token>`, or with another token, gets 401.
//!
//! The token comes from a file that must be ours and mode 0600, or is generated (32 random
//! bytes, hex) and written to a new 0600 file. It is never printed in full and never taken
//! from argv. It is compared in constant time.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::server::OpSessionMcp;

/// Why the HTTP transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Not a loopback address.
    #[error("--http {0} is not a loopback address; op-session mcp serves 127.0.0.1 or [::1] only")]
    NotLoopback(SocketAddr),
    /// The token file is unsafe or unreadable.
    #[error("token file {path}: {message}")]
    Token {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Binding failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
}

/// The bearer token, wiped on drop, never printed.
pub struct Token(Zeroizing<String>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([REDACTED])")
    }
}

impl Token {
    /// The first characters, for telling a person which token is in use.
    pub fn hint(&self) -> String {
        format!("{}…", self.0.chars().take(4).collect::<String>())
    }

    /// Whether `presented` is this token, in time independent of where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let want = self.0.as_bytes();
        if presented.len() != want.len() {
            return false;
        }
        presented
            .iter()
            .zip(want)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// The default token file: `$XDG_CONFIG_HOME/op-session/mcp-token`.
pub fn default_token_path() -> Option<PathBuf> {
    op_session_paths::config_path(None)
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("mcp-token")))
}

/// Read the token from `path` (ours, 0600, not a link), or generate one and write it there.
/// Returns the token and whether it was generated.
pub fn load_or_create_token(path: &Path) -> Result<(Token, bool), HttpError> {
    use std::io::{Read, Write};
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
    let err = |message: String| HttpError::Token {
        path: path.to_path_buf(),
        message,
    };
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(mut f) => {
            let meta = f.metadata().map_err(|e| err(e.to_string()))?;
            if meta.uid() != nix::unistd::getuid().as_raw() {
                return Err(err("is not owned by you".into()));
            }
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(err(format!(
                    "has mode {:o}; it must be 0600 (chmod 600 it)",
                    meta.permissions().mode() & 0o777
                )));
            }
            let mut text = Zeroizing::new(String::new());
            f.read_to_string(&mut text)
                .map_err(|e| err(e.to_string()))?;
            let t = text.trim();
            if t.len() < 16 {
                return Err(err("holds no token of at least 16 characters".into()));
            }
            Ok((Token(Zeroizing::new(t.to_string())), false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // The file is what must be private (0600); a missing directory is made 0700.
            if let Some(dir) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| err(e.to_string()))?;
            }
            let mut raw = Zeroizing::new([0u8; 32]);
            getrandom::fill(&mut raw[..]).map_err(|e| err(e.to_string()))?;
            let mut hex = Zeroizing::new(String::with_capacity(64));
            for b in raw.iter() {
                hex.push_str(&format!("{b:02x}"));
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
                .map_err(|e| err(e.to_string()))?;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .and_then(|_| f.write_all(hex.as_bytes()))
                .and_then(|_| f.write_all(b"\n"))
                .map_err(|e| err(e.to_string()))?;
            Ok((Token(hex), true))
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// Whether an `Origin` header value names this machine's loopback (any port, http or https).
pub fn origin_is_loopback(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, tail)) if tail.is_empty() || tail.starts_with(':') => h,
            _ => return false,
        }
    } else {
        match rest.split_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            Some(_) => return false,
            None => rest,
        }
    };
    matches!(host, "127.0.0.1" | "localhost" | "::1")
}

type Body = BoxBody<Bytes, std::convert::Infallible>;

fn refuse(status: StatusCode, message: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{message}\n"))).boxed());
    *r.status_mut() = status;
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer realm=\"op-session\""),
        );
    }
    r
}

/// The checks every request passes before it reaches MCP: `Some` is the refusal to send.
pub fn refusal<B>(req: &Request<B>, token: &Token) -> Option<Response<Body>> {
    if let Some(origin) = req.headers().get(hyper::header::ORIGIN) {
        let ok = origin.to_str().is_ok_and(origin_is_loopback);
        if !ok {
            return Some(refuse(
                StatusCode::FORBIDDEN,
                "forbidden: Origin is not this machine",
            ));
        }
    }
    let presented = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    match presented {
        Some(t) if token.matches(t) => None,
        _ => Some(refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized: send Authorization: Bearer <token from the token file>",
        )),
    }
}

/// Serve MCP over Streamable HTTP at `addr` until `shutdown` is cancelled. `on_ready`
/// receives the bound address.
pub async fn serve(
    addr: SocketAddr,
    token: Token,
    server: OpSessionMcp,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), HttpError> {
    if !addr.ip().is_loopback() {
        return Err(HttpError::NotLoopback(addr));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    let config = StreamableHttpServerConfig::default()
        .with_cancellation_token(shutdown.child_token())
        .with_legacy_session_mode(true)
        .with_allowed_hosts(["localhost", "127.0.0.1", "::1", "[::1]"]);
    let service = Arc::new(StreamableHttpService::new(
        move || Ok(server.clone()),
        LocalSessionManager::default().into(),
        config,
    ));
    let token = Arc::new(token);
    on_ready(bound);
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let service = service.clone();
        let token = token.clone();
        let conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let service = service.clone();
                let token = token.clone();
                async move {
                    if let Some(resp) = refusal(&req, &token) {
                        return Ok::<_, std::convert::Infallible>(resp);
                    }
                    Ok(service.handle(req).await.map(|b| b.boxed()))
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = conn_shutdown.cancelled() => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins_only() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost",
            "https://localhost:3000",
            "http://[::1]:9",
        ] {
            assert!(origin_is_loopback(ok), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil:80",
            "null",
            "http://localhost:80@evil",
            "file://",
        ] {
            assert!(!origin_is_loopback(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_are_generated_0600_and_unsafe_files_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("cfg/mcp-token");
        let (t, created) = load_or_create_token(&p).expect("creates");
        assert!(created);
        assert_eq!(
            std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        let (again, created) = load_or_create_token(&p).expect("reads");
        assert!(!created);
        assert!(again.matches(t.0.as_bytes()));
        assert!(!again.matches(b"nope"));
        assert!(!format!("{t:?}").contains(t.0.as_str()));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = load_or_create_token(&p).expect_err("0644 refused");
        assert!(e.to_string().contains("0600"), "{e}");
    }
}

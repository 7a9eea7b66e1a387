//! The listening side: TLS on 127.0.0.1 and an ephemeral port, one tokio runtime of its own
//! (so synchronous tests can start it), fault knobs, and a log of what was asked.
//!
//! Never binds beyond loopback. The request log holds method, path and query only: the
//! `Authorization` header is checked, never stored.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_op::state::State;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::api::{self, Answer};
use crate::pki::Pki;

/// Faults a test can switch on while the server runs.
#[derive(Debug, Default)]
pub struct Knobs {
    /// Close every new connection at once (the server looks down).
    pub down: AtomicBool,
    /// Answer every `/v1` request with this status (0: off), and its error body.
    pub status: AtomicU16,
    /// `Retry-After` seconds sent with a forced status (0: none).
    pub retry_after: AtomicU64,
    /// Wait this long before answering anything.
    pub delay_ms: AtomicU64,
    /// Answer `/v1` requests 200 with a body that is not JSON.
    pub garbage: AtomicBool,
    /// A rate limit: at most this many `/v1` requests per window (0: none). Past it, 429 with
    /// `Retry-After` giving the seconds until the window ends. The window starts at the first
    /// request counted, like 1Password's hourly service-account window.
    pub limit: AtomicU64,
    /// The rate limit's window in seconds (0: one hour).
    pub limit_window_s: AtomicU64,
}

impl Knobs {
    /// Back to a healthy server.
    pub fn reset(&self) {
        self.down.store(false, Ordering::SeqCst);
        self.status.store(0, Ordering::SeqCst);
        self.retry_after.store(0, Ordering::SeqCst);
        self.delay_ms.store(0, Ordering::SeqCst);
        self.garbage.store(false, Ordering::SeqCst);
        self.limit.store(0, Ordering::SeqCst);
        self.limit_window_s.store(0, Ordering::SeqCst);
    }
}

struct App {
    state: State,
    token: String,
    knobs: Arc<Knobs>,
    log: Mutex<Vec<String>>,
    /// The rate limit's window: when it started and how many requests it counted.
    window: Mutex<(Option<std::time::Instant>, u64)>,
}

/// A running simulator. Dropping it stops the server.
pub struct FakeConnect {
    addr: SocketAddr,
    app: Arc<App>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for FakeConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeConnect")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Why the simulator could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

fn tls_config(pki: &Pki) -> Result<rustls::ServerConfig, StartError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let err = |e: &dyn std::fmt::Display| StartError(format!("TLS setup: {e}"));
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| err(&e))?;
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).map_err(|e| err(&e))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| err(&e))
}

impl FakeConnect {
    /// Serve `state` (a loaded fake-op fixture) to holders of `token`, over TLS with `pki`'s
    /// server certificate, on 127.0.0.1 and a port the kernel picks.
    pub fn start(state: State, token: &str, pki: &Pki) -> Result<FakeConnect, StartError> {
        let config = tls_config(pki)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| StartError(e.to_string()))?;
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .map_err(|e| StartError(format!("bind 127.0.0.1:0: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError(e.to_string()))?;
        let app = Arc::new(App {
            state,
            token: token.to_string(),
            knobs: Arc::new(Knobs::default()),
            log: Mutex::new(Vec::new()),
            window: Mutex::new((None, 0)),
        });
        let acceptor = TlsAcceptor::from(Arc::new(config));
        runtime.spawn(accept_loop(listener, acceptor, app.clone()));
        Ok(FakeConnect {
            addr,
            app,
            runtime: Some(runtime),
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// `https://localhost:PORT` (the certificate names both).
    pub fn url_by_name(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// The address it listens on (always 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The fault knobs.
    pub fn knobs(&self) -> &Knobs {
        &self.app.knobs
    }

    /// Every request served so far, as `GET /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.app.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// How many requests so far started with `prefix` (e.g. `GET /v1/vaults`).
    pub fn count(&self, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with(prefix))
            .count()
    }

    /// Stop listening (later connections are refused) and end every connection.
    pub fn stop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for FakeConnect {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, app: Arc<App>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        if app.knobs.down.load(Ordering::SeqCst) {
            drop(tcp);
            continue;
        }
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return; // a client that does not trust our CA ends here
            };
            let svc = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move {
                    // Going down also drops connections a client keeps alive in its pool.
                    if app.knobs.down.load(Ordering::SeqCst) {
                        return Err(std::io::Error::other("fake-connect is down"));
                    }
                    Ok(handle(&app, req).await)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
        });
    }
}

/// Count one `/v1` request against the `limit` knob; `Some(seconds to wait)` when over it.
fn over_limit(app: &App) -> Option<u64> {
    let limit = app.knobs.limit.load(Ordering::SeqCst);
    if limit == 0 {
        return None;
    }
    let window = match app.knobs.limit_window_s.load(Ordering::SeqCst) {
        0 => Duration::from_secs(3600),
        s => Duration::from_secs(s),
    };
    let now = std::time::Instant::now();
    let mut w = app.window.lock().unwrap_or_else(|e| e.into_inner());
    if w.0.is_none_or(|start| now.duration_since(start) >= window) {
        *w = (Some(now), 0);
    }
    if w.1 >= limit {
        let left = w.0.map_or(window, |start| {
            window.saturating_sub(now.duration_since(start))
        });
        return Some(left.as_secs_f64().ceil().max(1.0) as u64);
    }
    w.1 += 1;
    None
}

fn respond(a: Answer, retry_after: Option<u64>) -> Response<Full<Bytes>> {
    let mut b = Response::builder()
        .status(a.status)
        .header("content-type", a.content_type);
    if let Some(s) = retry_after {
        b = b.header("retry-after", s.to_string());
    }
    b.body(Full::new(Bytes::from(a.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn handle(app: &App, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let line = match &query {
        Some(q) => format!("{} {path}?{q}", req.method()),
        None => format!("{} {path}", req.method()),
    };
    if let Ok(mut log) = app.log.lock() {
        log.push(line);
    }
    let knobs = &app.knobs;
    let delay = knobs.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if req.method() != hyper::Method::GET {
        return respond(
            Answer::error(405, "Method not allowed in this simulator"),
            None,
        );
    }
    let v1 = path.starts_with("/v1/");
    let forced = knobs.status.load(Ordering::SeqCst);
    if v1 && forced != 0 {
        let message = match forced {
            401 => "Invalid token signature",
            403 => "Unauthorized access",
            429 => "Too Many Requests: rate limit exceeded",
            s if s >= 500 => "Internal server error",
            _ => "Forced error",
        };
        let retry = knobs.retry_after.load(Ordering::SeqCst);
        return respond(Answer::error(forced, message), (retry > 0).then_some(retry));
    }
    if v1 && let Some(wait) = over_limit(app) {
        return respond(
            Answer::error(429, "Too Many Requests: rate limit exceeded"),
            Some(wait),
        );
    }
    if v1 && knobs.garbage.load(Ordering::SeqCst) {
        return respond(
            Answer {
                status: 200,
                content_type: "application/json",
                body: b"{\"id\": \"oops\", <html>not json".to_vec(),
            },
            None,
        );
    }
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == app.token);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    respond(
        api::get(&app.state, &path, query.as_deref(), authorized, now_ms),
        None,
    )
}

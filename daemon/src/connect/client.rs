//! The HTTP side of connect mode: one `reqwest` client per session, TLS always verified.
//!
//! Owns: building the client (rustls with the ring provider; the platform's roots plus the
//! config's `connect_ca_file`; no proxy, no redirects, every request bounded by `op_timeout`),
//! the few GET requests resolution needs (docs/connect.md, "Endpoints"), and turning a failed
//! exchange into a typed [`ConnectError`]: the status, the server's `{status, message}` body,
//! `Retry-After`, or why the server could not be reached.
//!
//! There is deliberately no way to turn certificate verification off. The token travels only
//! in the `Authorization` header, marked sensitive so it never shows in a `Debug` print; it is
//! never logged, and error texts from the server are scrubbed by the caller before they leave
//! the daemon.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Most bytes one response may have (items with long notes stay far below this).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Why a Connect request failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The host given at init is not an `https://` URL.
    #[error("{0}")]
    BadHost(String),
    /// `connect_ca_file` could not be read or holds no certificate.
    #[error("connect_ca_file {path}: {reason}")]
    CaFile {
        /// The configured path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// No connection (refused, DNS, TLS verification, reset).
    #[error("cannot reach the Connect server at {host}: {reason}")]
    Unreachable {
        /// The base URL.
        host: String,
        /// The transport's reason, outermost first.
        reason: String,
    },
    /// The server did not answer within `op_timeout`.
    #[error("the Connect server at {host} did not answer within {}s", .after.as_secs_f32())]
    Timeout {
        /// The base URL.
        host: String,
        /// The limit.
        after: Duration,
    },
    /// The server answered with an error status.
    #[error("({status}) {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The body's `message` (or the status's reason when the body had none). Unscrubbed.
        message: String,
        /// `Retry-After`, in seconds, when the server sent one.
        retry_after: Option<u64>,
    },
    /// The session's request budget refused the request; nothing was sent.
    #[error("{message}")]
    OverBudget {
        /// Which limit, and when it frees up.
        message: String,
        /// Seconds until a retry may succeed.
        retry_after: u64,
    },
    /// The server answered 2xx with a body that is not what the API describes.
    #[error("the Connect server sent a response that is not valid JSON for {what}: {reason}")]
    Garbage {
        /// The request, e.g. `GET /v1/vaults`.
        what: String,
        /// The parser's reason.
        reason: String,
    },
}

/// `{status, message}`, Connect's error body.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
}

/// What `/health` reports.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Health {
    /// The server's name (`1Password Connect API`).
    #[serde(default)]
    pub name: Option<String>,
    /// Its version.
    #[serde(default)]
    pub version: Option<String>,
}

/// A vault as `GET /v1/vaults` lists it (only what resolution reads).
#[derive(Debug, Clone, Deserialize)]
pub struct VaultSummary {
    /// 26 lower-case letters and digits.
    pub id: String,
    /// The vault's name.
    #[serde(default)]
    pub name: String,
}

/// An item as `GET /v1/vaults/{id}/items` lists it (no fields).
#[derive(Debug, Clone, Deserialize)]
pub struct ItemSummary {
    /// 26 lower-case letters and digits.
    pub id: String,
    /// The item's title.
    #[serde(default)]
    pub title: String,
}

/// A section of a full item.
#[derive(Debug, Clone, Deserialize)]
pub struct Section {
    /// The section's ID.
    pub id: String,
    /// Its label (may be absent).
    #[serde(default)]
    pub label: Option<String>,
}

/// A field's reference to its section.
#[derive(Debug, Clone, Deserialize)]
pub struct SectionRef {
    /// The section's ID.
    pub id: String,
}

/// A field of a full item. Values are `SecretString`s, so `Debug` never shows them.
#[derive(Debug, Clone, Deserialize)]
pub struct Field {
    /// The field's ID.
    pub id: String,
    /// Its label.
    #[serde(default)]
    pub label: Option<String>,
    /// `STRING`, `CONCEALED`, `OTP`, …
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// `USERNAME`, `PASSWORD`, `NOTES`.
    #[serde(default)]
    pub purpose: Option<String>,
    /// The value (absent for empty fields).
    #[serde(default)]
    pub value: Option<secrecy::SecretString>,
    /// Its section, if any.
    #[serde(default)]
    pub section: Option<SectionRef>,
    /// The current one-time password, for OTP fields.
    #[serde(default)]
    pub totp: Option<secrecy::SecretString>,
}

/// A file attachment of a full item.
#[derive(Debug, Clone, Deserialize)]
pub struct File {
    /// The file's ID.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// Its section, if any.
    #[serde(default)]
    pub section: Option<SectionRef>,
}

/// A full item, `GET /v1/vaults/{vault}/items/{item}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    /// 26 lower-case letters and digits.
    pub id: String,
    /// Its title.
    #[serde(default)]
    pub title: String,
    /// Its sections.
    #[serde(default)]
    pub sections: Vec<Section>,
    /// Its fields.
    #[serde(default)]
    pub fields: Vec<Field>,
    /// Its file attachments.
    #[serde(default)]
    pub files: Vec<File>,
}

/// Counts a session's requests (the daemon's request budget, `crate::quota`): asked before
/// each request is sent, told about each 429.
pub trait Meter: Send + Sync + std::fmt::Debug {
    /// Count one request about to be sent, or refuse it: `(message, seconds to retry)`.
    fn charge(&self) -> Result<(), (String, u64)>;
    /// The server answered 429, with its `Retry-After` if it sent one.
    fn rate_limited(&self, retry_after: Option<u64>);
}

/// A Connect server, as one session talks to it.
#[derive(Debug, Clone)]
pub struct ConnectClient {
    http: reqwest::Client,
    base: reqwest::Url,
    timeout: Duration,
    meter: Option<std::sync::Arc<dyn Meter>>,
}

/// The base URL: `https://` only, no credentials, query or fragment; trailing `/` dropped.
pub(crate) fn parse_host(host: &str) -> Result<reqwest::Url, ConnectError> {
    let bad = |why: &str| ConnectError::BadHost(format!("the Connect host {host:?} {why}"));
    let url = reqwest::Url::parse(host.trim()).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(bad(
            "is not an https:// URL; the token is only ever sent over verified TLS",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("carries credentials; give the token on stdin instead"));
    }
    if url.query().is_some() || url.fragment().is_some() || url.host_str().is_none() {
        return Err(bad(
            "must be a plain base URL such as https://connect.example.com",
        ));
    }
    Ok(url)
}

impl ConnectClient {
    /// A client for `host`, trusting the platform's roots plus the certificates in `ca_file`.
    pub fn new(
        host: &str,
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<ConnectClient, ConnectError> {
        let base = parse_host(host)?;
        // reqwest is built without a bundled provider; pick ring (pure Rust plus a little C,
        // no cmake). Installing twice is harmless: the first one stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("op-session/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_file {
            let ca_err = |reason: String| ConnectError::CaFile {
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ca_err(format!("not PEM certificates ({e})")))?;
            if certs.is_empty() {
                return Err(ca_err("holds no PEM certificate".into()));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|e| ConnectError::Unreachable {
            host: base.to_string(),
            reason: chain(&e),
        })?;
        Ok(ConnectClient {
            http,
            base,
            timeout,
            meter: None,
        })
    }

    /// The same client, with every later request counted by `meter`.
    pub fn metered(mut self, meter: std::sync::Arc<dyn Meter>) -> ConnectClient {
        self.meter = Some(meter);
        self
    }

    /// The base URL, as shown in status.
    pub fn host(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    fn url(&self, path: &[&str], filter: Option<&str>) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty();
            segs.extend(path);
        }
        if let Some(f) = filter {
            url.query_pairs_mut().append_pair("filter", f);
        }
        url
    }

    /// GET `path` and return the body. `token` is `None` for the unauthenticated endpoints.
    async fn get(
        &self,
        path: &[&str],
        filter: Option<&str>,
        token: Option<&str>,
    ) -> Result<Vec<u8>, ConnectError> {
        if let Some(m) = &self.meter {
            m.charge()
                .map_err(|(message, retry_after)| ConnectError::OverBudget {
                    message,
                    retry_after,
                })?;
        }
        let url = self.url(path, filter);
        let mut req = self.http.get(url);
        if let Some(t) = token {
            let bearer = zeroize::Zeroizing::new(format!("Bearer {t}"));
            let mut value = HeaderValue::from_str(&bearer).map_err(|_| {
                ConnectError::BadHost(
                    "the Connect token holds characters no header may carry".into(),
                )
            })?;
            value.set_sensitive(true);
            req = req.header(AUTHORIZATION, value);
        }
        let mut resp = req.send().await.map_err(|e| self.transport(&e))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(&e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(ConnectError::Garbage {
                    what: format!("GET /{}", path.join("/")),
                    reason: format!("the response is larger than {MAX_BODY} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok(body);
        }
        if status.as_u16() == 429
            && let Some(m) = &self.meter
        {
            m.rate_limited(retry_after);
        }
        let message = serde_json::from_slice::<ErrorBody>(&body)
            .ok()
            .and_then(|b| b.message)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
        Err(ConnectError::Status {
            status: status.as_u16(),
            message,
            retry_after,
        })
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &[&str],
        filter: Option<&str>,
        token: &str,
    ) -> Result<T, ConnectError> {
        let body = zeroize::Zeroizing::new(self.get(path, filter, Some(token)).await?);
        serde_json::from_slice(&body).map_err(|e| ConnectError::Garbage {
            what: format!("GET /{}", path.join("/")),
            reason: e.to_string(),
        })
    }

    fn transport(&self, e: &reqwest::Error) -> ConnectError {
        if e.is_timeout() {
            ConnectError::Timeout {
                host: self.host(),
                after: self.timeout,
            }
        } else {
            ConnectError::Unreachable {
                host: self.host(),
                reason: chain(e),
            }
        }
    }

    /// `GET /health`: the server's name and version.
    pub async fn health(&self) -> Result<Health, ConnectError> {
        let body = self.get(&["health"], None, None).await?;
        serde_json::from_slice(&body).map_err(|e| ConnectError::Garbage {
            what: "GET /health".into(),
            reason: e.to_string(),
        })
    }

    /// `GET /heartbeat`: any 2xx answer is a live server.
    pub async fn heartbeat(&self) -> Result<(), ConnectError> {
        self.get(&["heartbeat"], None, None).await.map(|_| ())
    }

    /// `GET /v1/vaults`, optionally filtered by name.
    pub async fn vaults(
        &self,
        token: &str,
        name: Option<&str>,
    ) -> Result<Vec<VaultSummary>, ConnectError> {
        let filter = name.map(|n| format!("name eq {}", quote(n)));
        self.get_json(&["v1", "vaults"], filter.as_deref(), token)
            .await
    }

    /// `GET /v1/vaults/{vault}/items?filter=title eq "…"`.
    pub async fn items_titled(
        &self,
        token: &str,
        vault_id: &str,
        title: &str,
    ) -> Result<Vec<ItemSummary>, ConnectError> {
        let filter = format!("title eq {}", quote(title));
        self.get_json(&["v1", "vaults", vault_id, "items"], Some(&filter), token)
            .await
    }

    /// `GET /v1/vaults/{vault}/items/{item}`: the full item with values.
    pub async fn item(
        &self,
        token: &str,
        vault_id: &str,
        item_id: &str,
    ) -> Result<Item, ConnectError> {
        self.get_json(&["v1", "vaults", vault_id, "items", item_id], None, token)
            .await
    }

    /// `GET /v1/vaults/{vault}/items/{item}/files/{file}/content`.
    pub async fn file_content(
        &self,
        token: &str,
        vault_id: &str,
        item_id: &str,
        file_id: &str,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, ConnectError> {
        let path = [
            "v1", "vaults", vault_id, "items", item_id, "files", file_id, "content",
        ];
        self.get(&path, None, Some(token))
            .await
            .map(zeroize::Zeroizing::new)
    }
}

/// A SCIM string literal. Names in references cannot hold `"` or `\`, but escape anyway.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// An error and its causes on one line, outermost first (reqwest's own text alone says only
/// "error sending request"; the cause says "invalid peer certificate: UnknownIssuer").
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_https_base_urls_are_hosts() {
        assert!(parse_host("https://connect.example.com").is_ok());
        assert!(parse_host("https://10.0.0.5:8443/").is_ok());
        for bad in [
            "http://connect.example.com",
            "connect.example.com",
            "https://user:pw@connect.example.com",
            "https://connect.example.com/?x=1",
        ] {
            assert!(parse_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_escape_segments_and_filters() {
        let c = ConnectClient::new("https://c.example.com/base/", None, Duration::from_secs(1))
            .expect("client");
        let u = c.url(&["v1", "vaults", "a b"], Some("name eq \"Dev Ops\""));
        assert_eq!(
            u.as_str(),
            "https://c.example.com/base/v1/vaults/a%20b?filter=name+eq+%22Dev+Ops%22"
        );
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn field_debug_hides_values() {
        let f: Field = serde_json::from_str(
            r#"{"id":"password","label":"password","type":"CONCEALED","value":"hunter2-secret"}"#,
        )
        .expect("field");
        assert!(!format!("{f:?}").contains("hunter2"));
    }
}

//! Resolving batches of `op://` references: cache first, then one `op` call for the misses.
//!
//! Owns the resolution strategy of DESIGN.md: cache hits first; misses that another request
//! is already resolving are awaited, not re-run; the remaining misses of one request go to a
//! single `op inject` call whose template separates references with random boundaries (a
//! value cannot forge a boundary it never saw); if that call fails, one `op read` per
//! reference names the one that failed. One reference alone uses `op read` directly.
//!
//! Never logs a value. Values leave this module only inside `SecretString`s.

use std::sync::Arc;

use op_session_protocol::{ErrorBody, ErrorCode};
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::cache::{Claim, follow};
use crate::lifecycle::call_op;
use crate::session::Lease;
use crate::state::Daemon;

/// One resolved reference.
#[derive(Debug)]
pub struct Resolved {
    /// As requested.
    pub reference: String,
    /// The value.
    pub value: Arc<SecretString>,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// The cache key of a reference: its normalized form, or the raw text if it does not parse
/// (then `op` reports the error in its own words).
pub fn cache_key(reference: &str) -> String {
    secret_ref::reference::parse(reference)
        .map(|r| r.normalized())
        .unwrap_or_else(|_| reference.to_string())
}

/// Resolve `refs` for `lease`. Fails with the first failing reference's error.
pub async fn resolve(
    daemon: &Arc<Daemon>,
    lease: &Lease,
    refs: &[String],
    no_cache: bool,
) -> Result<Vec<Resolved>, ErrorBody> {
    let now = daemon.clock.now();
    let account = lease.name.as_str();
    let keys: Vec<String> = refs.iter().map(|r| cache_key(r)).collect();

    let mut found: Vec<Option<(Arc<SecretString>, bool)>> = vec![None; refs.len()];
    let mut leads: Vec<(usize, tokio::sync::watch::Sender<crate::cache::Shared>)> = Vec::new();
    let mut follows = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (i, key) in keys.iter().enumerate() {
        if let Some(&j) = seen.get(key) {
            // Duplicate within this request: filled from the first occurrence below.
            let _ = j;
            continue;
        }
        seen.insert(key.clone(), i);
        if !no_cache && let Some(v) = daemon.cache.get(account, key, now) {
            found[i] = Some((v, true));
            continue;
        }
        match daemon.cache.claim(account, key) {
            Claim::Lead(tx) => leads.push((i, tx)),
            Claim::Follow(rx) => follows.push((i, rx)),
        }
    }

    // Resolve what we lead; publish every result (success or error) so followers wake.
    let mut first_err: Option<(usize, ErrorBody)> = None;
    if !leads.is_empty() {
        let lead_refs: Vec<&str> = leads.iter().map(|(i, _)| refs[*i].as_str()).collect();
        let results = fetch(daemon, lease, &lead_refs).await;
        let now = daemon.clock.now();
        for ((i, tx), r) in leads.iter().zip(results) {
            let r = r.map(Arc::new);
            daemon.cache.publish(account, &keys[*i], tx, r.clone(), now);
            match r {
                Ok(v) => found[*i] = Some((v, false)),
                Err(e) => {
                    if first_err.as_ref().is_none_or(|(j, _)| i < j) {
                        first_err = Some((*i, e));
                    }
                }
            }
        }
    }
    for (i, rx) in follows {
        match follow(rx).await {
            Ok(v) => found[i] = Some((v, false)),
            Err(e) => {
                if first_err.as_ref().is_none_or(|(j, _)| i < *j) {
                    first_err = Some((i, e));
                }
            }
        }
    }
    if let Some((_, e)) = first_err {
        return Err(e);
    }
    let mut out = Vec::with_capacity(refs.len());
    for (i, r) in refs.iter().enumerate() {
        let first = seen.get(&keys[i]).copied().unwrap_or(i);
        let (value, cached) = found[first].clone().ok_or_else(|| {
            ErrorBody::new(ErrorCode::Internal, format!("no value resolved for {r}"))
        })?;
        out.push(Resolved {
            reference: r.clone(),
            value,
            cached,
        });
    }
    Ok(out)
}

/// Whether a reference can ride in an inject template without changing meaning.
fn template_safe(r: &str) -> bool {
    !r.contains(['{', '}', '$', '\n', '\r', '"'])
}

/// One `op` call for all of `refs` when possible; per-reference `op read` otherwise.
async fn fetch(
    daemon: &Arc<Daemon>,
    lease: &Lease,
    refs: &[&str],
) -> Vec<Result<SecretString, ErrorBody>> {
    if refs.len() > 1 && refs.iter().all(|r| template_safe(r)) {
        match inject_batch(daemon, lease, refs).await {
            Ok(values) => return values.into_iter().map(Ok).collect(),
            Err(e) if is_session_error(&e) => return refs.iter().map(|_| Err(e.clone())).collect(),
            Err(_) => {} // fall through: name the reference that failed
        }
    }
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        out.push(read_one(daemon, lease, r).await);
    }
    out
}

fn is_session_error(e: &ErrorBody) -> bool {
    !matches!(e.code, ErrorCode::OpFailed)
}

async fn read_one(
    daemon: &Arc<Daemon>,
    lease: &Lease,
    reference: &str,
) -> Result<SecretString, ErrorBody> {
    let args = vec!["read".into(), "--no-newline".into(), reference.to_string()];
    let out = call_op(daemon, lease, args, None).await?;
    let text = std::str::from_utf8(&out.stdout).map_err(|_| {
        ErrorBody::new(
            ErrorCode::OpFailed,
            format!("the value of {reference} is not UTF-8 text"),
        )
        .with_fix("use `op read --out-file` through `op-session op` for binary files")
    })?;
    Ok(SecretString::from(text))
}

fn boundary() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Fall back to the clock and pid: still unknown to op's output for this call.
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ u128::from(std::process::id());
        b = n.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn inject_batch(
    daemon: &Arc<Daemon>,
    lease: &Lease,
    refs: &[&str],
) -> Result<Vec<SecretString>, ErrorBody> {
    let b = boundary();
    let mut template = Zeroizing::new(String::new());
    for (i, r) in refs.iter().enumerate() {
        template.push_str(&format!("<<{b}:{i}>>{{{{ {r} }}}}"));
    }
    template.push_str(&format!("<<{b}:end>>"));
    let out = call_op(
        daemon,
        lease,
        vec!["inject".into()],
        Some(template.as_bytes()),
    )
    .await?;
    let text = std::str::from_utf8(&out.stdout)
        .map_err(|_| ErrorBody::new(ErrorCode::OpFailed, "op inject printed non-UTF-8 output"))?;
    let mut values = Vec::with_capacity(refs.len());
    for i in 0..refs.len() {
        let start_tag = format!("<<{b}:{i}>>");
        let end_tag = if i + 1 == refs.len() {
            format!("<<{b}:end>>")
        } else {
            format!("<<{b}:{}>>", i + 1)
        };
        let start = text.find(&start_tag).map(|s| s + start_tag.len());
        let end = text.find(&end_tag);
        match (start, end) {
            (Some(s), Some(e)) if s <= e => values.push(SecretString::from(&text[s..e])),
            _ => {
                return Err(ErrorBody::new(
                    ErrorCode::OpFailed,
                    "op inject's output did not keep the template's boundaries",
                ));
            }
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive() {
        assert_eq!(
            cache_key("op://Dev/Stripe/Key"),
            cache_key("op://dev/stripe/key")
        );
        assert_eq!(cache_key("not a ref"), "not a ref");
    }

    #[test]
    fn boundaries_are_random() {
        assert_ne!(boundary(), boundary());
        assert_eq!(boundary().len(), 32);
    }
}

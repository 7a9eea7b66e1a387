//! Resolving batches of `op://` references: cache first, then one `op` call for the misses.
//!
//! Owns the resolution strategy of docs/architecture.md ("Resolving references"): cache hits first; misses that another request
//! is already resolving are awaited, not re-run; the remaining misses of one request go to a
//! single `op inject` call whose template separates references with random boundaries (a
//! value cannot forge a boundary it never saw); if that call fails, one `op read` per
//! reference names the one that failed. One reference alone uses `op read` directly. A
//! reference that recently named nothing is answered from the negative cache with the same
//! error, without an `op` call; a caller the brake stopped ([`crate::brake`]) is answered
//! from the caches only ([`from_memory`]).
//!
//! Never logs a value. Values leave this module only inside `SecretString`s.

use std::sync::Arc;

use op_grammar::OpCall;
use secrecy::SecretString;
use secret_ref::Requested;
use zeroize::Zeroizing;

use op_session_protocol::Mode;

use crate::cache::{Claim, Lead, follow};
use crate::error::{Detail, Error};
use crate::lifecycle::{self, call_op};
use crate::session::Lease;
use crate::state::Daemon;

/// One resolved reference.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// As requested.
    pub reference: String,
    /// The value.
    pub value: Arc<SecretString>,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// Where one distinct reference's value comes from.
enum Source<'a> {
    /// The cache, for this session generation.
    Hit(Arc<SecretString>),
    /// The negative cache: a recent "not found" for this session generation.
    Missing(Error),
    /// This request resolves it.
    Lead(Lead<'a>),
    /// Another request is resolving it.
    Follow(tokio::sync::watch::Receiver<crate::cache::Shared>),
}

/// A distinct reference's value and whether it came from the cache, or why it failed.
type Found = Result<(Arc<SecretString>, bool), Error>;

/// The error for a value whose session ended while it was being resolved.
fn ended(lease: &Lease) -> Error {
    Error::Expired(Detail::new(format!(
        "the session for account {} ended while this request was resolving it",
        lease.name
    )))
    .with_fix(format!(
        "run `op-session init --account {}` in a terminal",
        lease.name
    ))
}

/// Resolve `refs` (parsed once where the request entered) for `lease`. Fails with the first
/// failing reference's error (in request order). Nothing outlives the session: cached values
/// belong to the lease's generation, an app session's cached values are served only while its
/// authorization is confirmed, and a value resolved after the session ended is neither
/// published nor returned.
pub(crate) async fn resolve(
    daemon: &Arc<Daemon>,
    lease: &Lease,
    refs: &[Requested],
    no_cache: bool,
) -> Result<Vec<Resolved>, Error> {
    let now = daemon.clock.now();
    let (account, generation) = (lease.name.as_str(), lease.generation);

    // One plan entry per distinct key, in first-seen order.
    let mut plan: Vec<(&str, &str, Source<'_>)> = Vec::new();
    for Requested {
        text: reference,
        key,
        ..
    } in refs
    {
        if plan.iter().any(|(k, _, _)| *k == key.as_str()) {
            continue;
        }
        let hit = (!no_cache)
            .then(|| daemon.cache.get(account, generation, key, now))
            .flatten();
        let miss = (!no_cache && hit.is_none())
            .then(|| daemon.cache.get_miss(account, generation, key, now))
            .flatten();
        let source = match (hit, miss) {
            (Some(v), _) => Source::Hit(v),
            (None, Some(e)) => Source::Missing(e),
            (None, None) => match daemon.cache.claim(account, generation, key) {
                Claim::Lead(l) => Source::Lead(l),
                Claim::Follow(rx) => Source::Follow(rx),
            },
        };
        plan.push((key, reference, source));
    }
    if lease.mode() == Mode::App
        && plan
            .iter()
            .any(|(_, _, s)| matches!(s, Source::Hit(_) | Source::Missing(_)))
    {
        // A locked app revokes every authorization at once: confirm before serving a value
        // from memory. On failure the leads are dropped, which releases their followers.
        lifecycle::confirm_app(daemon, lease).await?;
    }

    let lead_refs: Vec<&str> = plan
        .iter()
        .filter(|(_, _, s)| matches!(s, Source::Lead(_)))
        .map(|(_, r, _)| *r)
        .collect();
    let mut fetched = if lead_refs.is_empty() {
        Vec::new()
    } else {
        fetch(daemon, lease, &lead_refs).await
    }
    .into_iter();
    let now = daemon.clock.now();
    let current = daemon.sessions.is_current(account, generation, now);

    let mut results: Vec<(&str, Found)> = Vec::with_capacity(plan.len());
    for (key, _, source) in plan {
        let r = match source {
            Source::Hit(v) => Ok((v, true)),
            Source::Missing(e) => Err(e),
            Source::Lead(lead) => {
                let r = match fetched.next() {
                    Some(Ok(_)) if !current => Err(ended(lease)),
                    Some(r) => r.map(Arc::new),
                    None => Err(Error::internal("a value went missing")),
                };
                if let Err(e) = &r
                    && current
                {
                    // Only a "not found" is kept (cache::is_not_found).
                    daemon.cache.put_miss(account, generation, key, e, now);
                }
                lead.publish(r.clone(), current, now);
                r.map(|v| (v, false))
            }
            Source::Follow(rx) => follow(rx).await.map(|v| (v, false)),
        };
        results.push((key, r));
    }
    let mut out = Vec::with_capacity(refs.len());
    for Requested {
        text: reference,
        key,
        ..
    } in refs
    {
        let found = results.iter().find(|(k, _)| *k == key.as_str());
        match found.map(|(_, r)| r) {
            Some(Ok((value, cached))) => out.push(Resolved {
                reference: reference.clone(),
                value: value.clone(),
                cached: *cached,
            }),
            Some(Err(e)) => return Err(e.clone()),
            None => {
                return Err(Error::internal(format!(
                    "no value resolved for {reference}"
                )));
            }
        }
    }
    Ok(out)
}

/// Resolve `refs` for a caller the brake stopped: from the value and negative caches only,
/// never with an `op` call (an app session's cache is still confirmed first). A remembered
/// "not found" keeps `op`'s words and says the caller is looping; anything else fails with
/// `rate_limited` (exit 75) until the caller has been quiet for a minute.
pub(crate) async fn from_memory(
    daemon: &Arc<Daemon>,
    lease: &Lease,
    refs: &[Requested],
    caller: &str,
) -> Result<Vec<Resolved>, Error> {
    let now = daemon.clock.now();
    let (account, generation) = (lease.name.as_str(), lease.generation);
    let looping = format!(
        "{caller} is looping (more than {} errors in a row within a minute): op-session answers it from memory only, without calling 1Password, until it stops for a minute",
        daemon.brake.limit()
    );
    let mut out = Vec::with_capacity(refs.len());
    let mut confirmed = lease.mode() != Mode::App;
    for Requested {
        text: reference,
        key,
        ..
    } in refs
    {
        if !confirmed {
            lifecycle::confirm_app(daemon, lease).await?;
            confirmed = true;
        }
        if let Some(value) = daemon.cache.get(account, generation, key, now) {
            out.push(Resolved {
                reference: reference.clone(),
                value,
                cached: true,
            });
            continue;
        }
        if let Some(mut e) = daemon.cache.get_miss(account, generation, key, now) {
            e.detail_mut().fix = Some(looping);
            return Err(e);
        }
        return Err(Error::RateLimited(Detail {
            message: format!("{reference} was not looked up: {looping}"),
            fix: Some("fix the caller, then retry after a minute without requests".into()),
            retry_after_s: Some(crate::brake::WINDOW.as_secs()),
            ..Detail::default()
        }));
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
) -> Vec<Result<SecretString, Error>> {
    // Connect mode resolves over the server's REST API instead of running `op`.
    if let Some(link) = lease.credential.link() {
        return crate::connect::resolve::fetch(daemon, lease, link, refs)
            .await
            .into_iter()
            .map(|r| r.map_err(Error::from))
            .collect();
    }
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

fn is_session_error(e: &Error) -> bool {
    !matches!(e, Error::OpFailed(_))
}

async fn read_one(
    daemon: &Arc<Daemon>,
    lease: &Lease,
    reference: &str,
) -> Result<SecretString, Error> {
    let out = call_op(daemon, lease, OpCall::read(reference), None).await?;
    let text = std::str::from_utf8(&out.stdout).map_err(|_| {
        Error::OpFailed(Detail::new(format!(
            "the value of {reference} is not UTF-8 text"
        )))
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
) -> Result<Vec<SecretString>, Error> {
    let b = boundary();
    let mut template = Zeroizing::new(String::new());
    for (i, r) in refs.iter().enumerate() {
        template.push_str(&format!("<<{b}:{i}>>{{{{ {r} }}}}"));
    }
    template.push_str(&format!("<<{b}:end>>"));
    let out = call_op(daemon, lease, OpCall::inject(), Some(template.as_bytes())).await?;
    let text = std::str::from_utf8(&out.stdout)
        .map_err(|_| Error::OpFailed(Detail::new("op inject printed non-UTF-8 output")))?;
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
                return Err(Error::OpFailed(Detail::new(
                    "op inject's output did not keep the template's boundaries",
                )));
            }
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_random() {
        assert_ne!(boundary(), boundary());
        assert_eq!(boundary().len(), 32);
    }
}

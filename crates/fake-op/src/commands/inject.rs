//! `op inject [-i in] [-o out] [--file-mode m] [-f]` (docs/op-behaviour.md §4.1).
//!
//! Template syntax and variable expansion come from `secret-ref`. Every reference is resolved
//! before anything is written, so a failure leaves no partial output (stdout or file).

use std::collections::BTreeMap;

use secret_ref::template;

use crate::auth::{self, Quota};
use crate::error::OpError;
use crate::invocation::{Ctx, Outcome};
use crate::reference;
use crate::state::State;

use super::read::READS_PER_REFERENCE;

/// `op inject`.
pub fn inject(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    super::exact_args(ctx, 0)?;
    let text = match (ctx.args.value("in-file"), &ctx.stdin_data) {
        (Some(path), _) if path != "/dev/stdin" && path != "-" => std::fs::read_to_string(path)
            .map_err(|e| OpError::new(format!("open {path}: {}", io_text(&e))))?,
        (_, Some(data)) => String::from_utf8_lossy(data).into_owned(),
        (_, None) => String::new(),
    };
    let lookup = secret_ref::vars::case_insensitive_lookup(ctx.env.clone());
    let expanded = template::expand_vars(&text, lookup);
    let segments = template::parse(&expanded).map_err(|e| OpError::new(e.to_string()))?;
    let refs: Vec<String> = template::references(&segments)
        .into_iter()
        .map(str::to_string)
        .collect();
    let values = resolve_all(ctx, state, &refs)?;
    let rendered = template::render(&segments, |r| values.get(r).map(String::as_str))
        .map_err(|e| OpError::new(e.to_string()))?;
    if let Some(path) = ctx.args.value("out-file") {
        super::write_out_file(ctx, path, rendered.as_bytes())?;
        return Ok(Outcome::default());
    }
    Ok(Outcome::text(rendered))
}

/// Resolve distinct references (authenticating only if there are any); errors are worded like
/// `op read`'s, naming the first reference that failed.
pub fn resolve_all(
    ctx: &Ctx,
    state: &mut State,
    refs: &[String],
) -> Result<BTreeMap<String, String>, OpError> {
    let mut values = BTreeMap::new();
    if refs.is_empty() {
        return Ok(values);
    }
    let mut parsed = Vec::with_capacity(refs.len());
    for raw in refs {
        let r = reference::parse(raw)
            .map_err(|e| OpError::new(format!("invalid secret reference '{raw}': {e}")))?;
        parsed.push((raw, r));
    }
    let principal = auth::authenticate(ctx, state).map_err(|e| e.for_command())?;
    let cost = READS_PER_REFERENCE * parsed.len() as u64;
    auth::charge(ctx, state, principal, Quota::Read, cost).map_err(|e| e.for_command())?;
    for (raw, r) in parsed {
        let value = reference::resolve(state, principal, &r, ctx.now)
            .map_err(|e| e.prefixed(&format!("could not read secret '{raw}': ")))?;
        values.insert(raw.clone(), value);
    }
    state.counters.secrets_resolved += values.len() as u64;
    Ok(values)
}

/// Go's wording for common I/O errors (`no such file or directory`).
pub fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

//! `op read <reference> [-n] [-o path] [--file-mode m] [-f]` (docs/op-behaviour.md §3.2, §3.3).
//!
//! Every failure after parsing is worded `could not read secret '<ref as given>': …`.

use crate::auth::{self, Quota};
use crate::error::OpError;
use crate::invocation::{Ctx, Outcome};
use crate::reference;
use crate::state::State;

/// Service-account requests one reference costs (vault lookup, item lookup, item get).
pub const READS_PER_REFERENCE: u64 = 3;

/// `op read`.
pub fn read(ctx: &Ctx, state: &mut State) -> Result<Outcome, OpError> {
    super::exact_args(ctx, 1)?;
    let raw = ctx.args.positionals[0].as_str();
    let parsed = reference::parse(raw)
        .map_err(|e| OpError::new(format!("invalid secret reference '{raw}': {e}")))?;
    let principal = auth::authenticate(ctx, state).map_err(|e| e.for_read(raw))?;
    auth::charge(ctx, state, principal, Quota::Read, READS_PER_REFERENCE)
        .map_err(|e| e.for_read(raw))?;
    let value = reference::resolve(state, principal, &parsed, ctx.now)
        .map_err(|e| e.prefixed(&format!("could not read secret '{raw}': ")))?;
    state.counters.secrets_resolved += 1;
    if let Some(path) = ctx.args.value("out-file") {
        super::write_out_file(ctx, path, value.as_bytes())?;
        return Ok(Outcome::text(format!("{path}\n")));
    }
    let newline = if ctx.args.bool("no-newline") {
        ""
    } else {
        "\n"
    };
    Ok(Outcome::text(format!("{value}{newline}")))
}

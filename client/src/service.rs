//! `op-session service`: the systemd user service / launchd agent (being written).

use op_session_protocol::exit;

use crate::cli::ServiceAction;
use crate::error::{Failure, Result};

/// Run a service action.
pub fn run(_action: &ServiceAction) -> Result<i32> {
    Err(Failure::new(
        exit::FAILED,
        "service management is not built yet",
        "install the units from systemd/ by hand",
    ))
}

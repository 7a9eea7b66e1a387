//! Per-key async locks that coalesce concurrent work on one account: app-mode sign-ins (a
//! fan-out of agents raises one authorization prompt, not one each) and app confirmations
//! (one cheap `op` call shared by the requests that arrive together).
//!
//! A leaf: the shared [`crate::state::Daemon`] holds one [`AuthGate`], and the session code
//! takes locks from it. The map only grows by one entry per account name ever used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Per-key locks; a key is compared without regard to ASCII case.
#[derive(Debug, Default)]
pub struct AuthGate {
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl AuthGate {
    /// The lock for `key`, made on first use.
    pub fn gate(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.gates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_ascii_lowercase())
            .or_default()
            .clone()
    }
}

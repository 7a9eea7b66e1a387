//! fake-connect: a 1Password Connect server simulator, for tests only.
//!
//! Written from Connect's published API description (see docs/connect.md in the repository
//! root for what it covers and where each fact comes from). It serves the same vaults and
//! items as fake-op, because it loads the same fixture through fake-op's own loader: a
//! reference resolves to the same value whether a test goes through `op` or through Connect.
//!
//! Layout: [`pki`] makes a test CA and a server certificate (rcgen); [`api`] answers requests
//! (`/health`, `/heartbeat`, vaults and items with `filter`, file content, `{status,
//! message}` error bodies); [`server`] listens on 127.0.0.1 only, on an ephemeral port, over
//! TLS, and exposes the fault knobs (down, a forced status with `Retry-After`, slow, garbage
//! JSON, a request limit per window answered with 429 and `Retry-After`) and a log of the
//! requests it served (paths only, never a header).

pub mod api;
pub mod pki;
pub mod server;

pub use pki::Pki;
pub use server::{FakeConnect, Knobs};

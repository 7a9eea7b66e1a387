//! 1Password secret references and the text formats that carry them.
//!
//! Owns the grammar `op` accepts, so that the daemon, the client and the `op` simulator agree on
//! it byte for byte:
//!
//! - [`mod@reference`]: one `op://vault/item[/section]/field[?query]` reference, its validation, its
//!   canonical form and its case-insensitive cache key;
//! - [`vars`]: `$VAR`, `${VAR}` and `${VAR:-default}` expansion;
//! - [`template`]: the `op inject` template syntax (enclosed, unenclosed, escaped);
//! - [`envfile`]: the dotenv dialect of `op run --env-file` and how files merge with the shell;
//! - [`pick`]: which field or file of an item a reference names, and the attribute asked of it;
//! - [`mask`]: the streaming replacement of secret values, and of their encoded forms, on
//!   `op run`'s output.
//!
//! Pure std apart from `thiserror` and `zeroize`: the client that links this crate must start in
//! about a millisecond. Nothing here performs I/O, and no error or `Debug` output ever contains a
//! secret value (references and variable names are not secret; resolved values are).

pub mod attribute;
pub mod envfile;
pub mod mask;
pub mod pick;
pub mod reference;
pub mod run_env;
pub mod template;
pub mod vars;

pub use attribute::Attribute;
pub use mask::{CONCEALED, Forms, Masker};
pub use reference::{RefError, Requested, SecretRef, looks_like_reference};

//! The `op-session` binary answers `--version` and `--help` and refuses an unknown flag with
//! EX_USAGE (64), without a daemon. Being an integration test of this package also makes
//! `cargo test --workspace` build the plain `target/debug/op-session`, which the end-to-end
//! tests in tests/ drive.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_op-session"));
    c.env_clear().env("PATH", "/usr/bin:/bin");
    c
}

#[test]
fn version_help_and_an_unknown_flag() {
    let out = bin().arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("op-session "), "{text}");
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");

    let out = bin().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: op-session"));

    let out = bin().arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}

//! `op-session-mcp --http` listens on loopback only: any other address is refused before a
//! socket is opened, the daemon is asked or a token file is written. Being an integration test of this package also
//! makes `cargo test --workspace` build the plain `target/debug/op-session-mcp`, which the
//! end-to-end tests in tests/ drive.

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn http_refuses_an_address_beyond_loopback() {
    let home = tempfile::tempdir().unwrap();
    for addr in ["0.0.0.0:8765", "[::]:8765", "192.0.2.1:8765"] {
        let out = Command::new(env!("CARGO_BIN_EXE_op-session-mcp"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", home.path())
            .args(["--http", addr, "--socket", "/nonexistent/agent.sock"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{addr}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not a loopback address"), "{addr}: {err}");
    }
    let written: Vec<_> = walk(home.path());
    assert!(written.is_empty(), "a refused server wrote {written:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

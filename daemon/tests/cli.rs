//! `op-sessiond --check-config` answers for a config file without starting a daemon: 0 and the
//! path when it is valid, 1 and the offending key when it is not. Being an integration test of
//! this package also makes `cargo test --workspace` build the plain `target/debug/op-sessiond`,
//! which the end-to-end tests in tests/ drive.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn check(config: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_op-sessiond"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .arg("--check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap()
}

#[test]
fn check_config_says_valid_or_names_the_key() {
    let out = check("op_path = \"/bin/true\"\n");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("is valid"));

    let out = check("op_path = \"/bin/true\"\nno_such_key = 1\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_key"));
}

//! Shared harness: a fresh `FAKE_OP_HOME` per test, the basic fixture loaded, and helpers that
//! run the real binaries the way callers do (no controlling terminal, a clean environment).

#![allow(dead_code)]

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

pub const OP: &str = env!("CARGO_BIN_EXE_fake-op");
pub const CTL: &str = env!("CARGO_BIN_EXE_fake-op-ctl");
pub const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/basic.json");

pub const MY_PASSWORD: &str = "correct horse battery staple";
pub const NOT_SIGNED_IN: &str =
    "You are not currently signed in. Please run `op signin --help` for instructions";

/// One isolated simulator.
pub struct Sim {
    pub home: tempfile::TempDir,
}

/// What one invocation produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The message of a single `[ERROR] <ts> <msg>` stderr line, checking the shape.
    pub fn error(&self) -> String {
        assert_eq!(self.code, 1, "expected failure: {self:?}");
        assert!(
            self.stdout.is_empty(),
            "stdout must be empty on error: {self:?}"
        );
        error_message(&self.stderr)
    }

    /// Assert success: exit 0 and nothing on stderr.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        assert!(
            self.stderr.is_empty(),
            "stderr must be empty on success: {self:?}"
        );
        &self.stdout
    }
}

/// Check `[ERROR] YYYY/MM/DD HH:MM:SS ` and return what follows (without the final newline).
pub fn error_message(stderr: &str) -> String {
    let rest = stderr
        .strip_prefix("[ERROR] ")
        .unwrap_or_else(|| panic!("no [ERROR] prefix: {stderr:?}"));
    let ts = &rest[..19];
    let shape = ts.char_indices().all(|(i, c)| match i {
        4 | 7 => c == '/',
        10 => c == ' ',
        13 | 16 => c == ':',
        _ => c.is_ascii_digit(),
    });
    assert!(shape, "bad timestamp {ts:?} in {stderr:?}");
    assert_eq!(&rest[19..20], " ");
    assert!(stderr.ends_with('\n'));
    rest[20..stderr.len() - 8 - 1].to_string()
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Sim {
    /// A simulator with the basic fixture loaded.
    pub fn new() -> Sim {
        let sim = Sim::empty();
        sim.ctl(&["load", FIXTURE]);
        sim
    }

    /// A simulator with no state at all.
    pub fn empty() -> Sim {
        Sim {
            home: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// A clean command: only PATH, HOME (inside the sim) and FAKE_OP_HOME, no controlling
    /// terminal (setsid), stdin from /dev/null unless given.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("FAKE_OP_HOME", self.home.path())
            .stdin(Stdio::null());
        // SAFETY: setsid is async-signal-safe; it detaches the child from our terminal so the
        // session credential is the parent process, as for an agent.
        unsafe {
            cmd.pre_exec(|| {
                let _ = nix::unistd::setsid();
                Ok(())
            });
        }
        cmd
    }

    /// Run fake-op with args and extra env; stdin from `input` if given.
    pub fn op_with(&self, args: &[&str], env: &[(&str, &str)], input: Option<&str>) -> Run {
        let mut cmd = self.command(OP);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd, input)
    }

    /// Run fake-op with args only.
    pub fn op(&self, args: &[&str]) -> Run {
        self.op_with(args, &[], None)
    }

    /// Run fake-op from a fresh `sh -c` parent each time (an agent's shell tool).
    pub fn op_via_sh(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let mut cmd = self.command("sh");
        cmd.arg("-c").arg(format!("'{OP}' {}", quoted.join(" ")));
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd, None)
    }

    /// Run fake-op-ctl; panics on failure.
    pub fn ctl(&self, args: &[&str]) -> String {
        let mut cmd = self.command(CTL);
        cmd.args(args);
        let r = run(cmd, None);
        assert_eq!(r.code, 0, "fake-op-ctl {args:?}: {r:?}");
        r.stdout
    }

    /// Counters as JSON.
    pub fn counters(&self) -> serde_json::Value {
        serde_json::from_str(&self.ctl(&["counters"])).expect("counters json")
    }

    /// The whole state as JSON.
    pub fn state(&self) -> serde_json::Value {
        serde_json::from_str(&self.ctl(&["state"])).expect("state json")
    }

    /// The call log lines.
    pub fn calls(&self) -> Vec<serde_json::Value> {
        self.ctl(&["calls"])
            .lines()
            .map(|l| serde_json::from_str(l).expect("call json"))
            .collect()
    }

    /// Sign in to `account` with `password`; returns (variable name, token).
    pub fn signin(&self, account: &str, password: &str) -> (String, String) {
        let r = self.op_with(&["signin", "--account", account], &[], Some(password));
        let out = r.ok();
        let line = out.lines().next().expect("export line");
        let rest = line.strip_prefix("export ").expect("export");
        let (name, value) = rest.split_once('=').expect("=");
        (name.to_string(), value.trim_matches('"').to_string())
    }

    /// The `ops_` token of a fixture service account.
    pub fn sa_token(&self, name: &str) -> String {
        self.ctl(&["token", name]).trim_end().to_string()
    }
}

fn run(mut cmd: Command, input: Option<&str>) -> Run {
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(text) = input {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write stdin");
    }
    finish(child.wait_with_output().expect("wait"))
}

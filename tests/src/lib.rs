//! Shared helpers for the end-to-end tests: build the real binaries once, give each test a
//! private world (HOME, XDG dirs, socket, fake-op state) in a temporary directory, and run the
//! client, the daemon, fake-op and fake-op-ctl inside it.
//!
//! Tests start their daemons explicitly, with `--config` naming the world's config: a client's
//! auto-start never takes a config from its caller's environment (it reads the one in the home
//! directory the password database names), so [`World::client`] starts the world's daemon the
//! way auto-start would (`--started-by autostart`), plus `--config`, before each command that
//! would auto-start one. [`World::without_daemon`] turns that off for tests of auto-start itself
//! and of a daemon that is not running.
//!
//! Nothing here listens beyond Unix sockets in the test's own temporary directory, except
//! [`connect`]'s Connect stand-in, which binds 127.0.0.1 only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod connect;
pub mod dbus;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Paths of the built binaries.
#[derive(Debug)]
pub struct Bins {
    /// op-session
    pub client: PathBuf,
    /// op-sessiond
    pub daemon: PathBuf,
    /// fake-op
    pub fake_op: PathBuf,
    /// fake-op-ctl
    pub ctl: PathBuf,
    /// op-session-mcp (exec'd by `op-session mcp`)
    pub mcp: PathBuf,
}

/// The one `cargo` command that builds the binaries the end-to-end tests run: the build of
/// `cargo test --workspace` itself, so features resolve exactly as for that run
/// (dev-dependencies included). Building only the four binary packages resolved fewer
/// features, so each side rebuilt the binaries (and their dependencies) the other had just
/// built, in the middle of a test run. Inside `cargo test --workspace` this is a no-op.
pub const BUILD_ARGS: &[&str] = &["test", "-q", "--workspace", "--no-run"];

/// Whether `name` is one of the variables cargo sets for the crate it compiles or the test it
/// runs (the package's manifest directory, name and version, the crate's name, the built
/// binaries' paths, …), rather than the user's own configuration (`CARGO_HOME`,
/// `CARGO_TARGET_DIR`, `CARGO_BUILD_*`, …).
pub fn set_by_cargo_for_the_crate(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_EXE_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}

/// `cargo BUILD_ARGS` in the workspace root, without the variables cargo set for this test
/// process ([`set_by_cargo_for_the_crate`]). A build script may watch them: ring's declares
/// `rerun-if-env-changed` for `CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME` and the version parts, so
/// a build that inherited this package's values re-ran it and rebuilt ring, rustls, reqwest and
/// every binary above them (a minute or more on the 2-CPU test machine), and the next plain
/// `cargo test` rebuilt them all back: a no-op build became two full rebuilds per test run.
pub fn build_command() -> Command {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(cargo);
    c.current_dir(root).args(BUILD_ARGS);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_the_crate) {
            c.env_remove(name);
        }
    }
    c
}

/// Build the binaries once per test process (cargo's own lock serializes concurrent builds).
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let st = build_command().status().expect("cargo build runs");
        assert!(st.success(), "building the binaries failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let dir = target.join("debug");
        // `cargo test` builds a package's plain binaries only for that package's own
        // integration tests: client/, daemon/ and crates/mcp each keep one (tests/cli.rs) so
        // that these exist on a clean checkout.
        for name in [
            "op-session",
            "op-sessiond",
            "op-session-mcp",
            "fake-op",
            "fake-op-ctl",
        ] {
            assert!(
                dir.join(name).is_file(),
                "{} was not built by `cargo {}`",
                dir.join(name).display(),
                BUILD_ARGS.join(" ")
            );
        }
        Bins {
            client: dir.join("op-session"),
            daemon: dir.join("op-sessiond"),
            fake_op: dir.join("fake-op"),
            ctl: dir.join("fake-op-ctl"),
            mcp: dir.join("op-session-mcp"),
        }
    })
}

/// Say, where a person reading the test output sees it, that part of a test did not run and why.
/// Only for checks that need root (another uid, a foreign owner): a missing tool is a failure
/// (scripts/test installs every tool), never a skip. Written to the process's stderr directly,
/// past libtest's capture, so a passing run still shows what it left out.
pub fn skipped(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {what}");
}

/// The fixture shipped with fake-op.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("crates/fake-op/fixtures")
        .join(name)
}

/// The directories of a private world, and the environment that points a program at them:
/// what the e2e tests' [`World`] and the bench's world share (tests/src/lib.rs owns it, the
/// bench depends on this crate). Each world derefs to its `WorldDirs`.
#[derive(Debug)]
pub struct WorldDirs {
    /// Keeps the directory alive; removed on drop.
    pub dir: tempfile::TempDir,
    /// $HOME
    pub home: PathBuf,
    /// $XDG_RUNTIME_DIR (0700; the socket lives below it)
    pub runtime: PathBuf,
    /// $XDG_STATE_HOME
    pub state: PathBuf,
    /// $XDG_CONFIG_HOME
    pub config_home: PathBuf,
    /// The config file (runs `fake_op` as `op`).
    pub config: PathBuf,
    /// The socket.
    pub socket: PathBuf,
    /// fake-op's state (outside HOME: it plays 1Password's servers).
    pub fake_home: PathBuf,
}

impl WorldDirs {
    /// A temporary directory named `prefix…` holding a world whose config runs `fake_op` as
    /// `op`, plus `extra_config` lines.
    pub fn create(prefix: &str, fake_op: &Path, extra_config: &str) -> std::io::Result<WorldDirs> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        let root = dir.path().to_path_buf();
        let config_home = root.join("config");
        let w = WorldDirs {
            home: root.join("home"),
            runtime: root.join("run"),
            state: root.join("state"),
            config: config_home.join("op-session/config.toml"),
            config_home,
            fake_home: root.join("fakeop"),
            socket: root.join("run/op-session/agent.sock"),
            dir,
        };
        for d in [
            &w.home,
            &w.runtime,
            &w.state,
            &w.config_home.join("op-session"),
            &w.fake_home,
        ] {
            std::fs::create_dir_all(d)?;
        }
        std::fs::set_permissions(&w.runtime, std::fs::Permissions::from_mode(0o700))?;
        std::fs::write(
            &w.config,
            format!(
                "op_path = \"{}\"\nop_env = {{ FAKE_OP_HOME = \"{}\" }}\n{extra_config}\n",
                fake_op.display(),
                w.fake_home.display()
            ),
        )?;
        Ok(w)
    }

    /// The environment every command of the world gets (and nothing else).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("HOME".into(), self.home.display().to_string()),
            ("XDG_RUNTIME_DIR".into(), self.runtime.display().to_string()),
            ("XDG_STATE_HOME".into(), self.state.display().to_string()),
            (
                "XDG_CONFIG_HOME".into(),
                self.config_home.display().to_string(),
            ),
            ("FAKE_OP_HOME".into(), self.fake_home.display().to_string()),
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("LANG".into(), "C.UTF-8".into()),
            ("TZ".into(), "UTC".into()),
        ]
    }
}

/// One test's private world.
#[derive(Debug)]
pub struct World {
    /// Its directories (fields reached through `Deref`: `w.home`, `w.socket`, …).
    pub dirs: WorldDirs,
    /// Extra environment for every command.
    pub extra_env: Vec<(String, String)>,
    /// Whether [`World::client`] leaves starting a daemon to the client (see the module doc).
    manual: std::cell::Cell<bool>,
}

impl std::ops::Deref for World {
    type Target = WorldDirs;
    fn deref(&self) -> &WorldDirs {
        &self.dirs
    }
}

impl World {
    /// A world whose config uses fake-op as `op`, plus `extra_config` lines.
    pub fn new(extra_config: &str) -> World {
        World {
            dirs: WorldDirs::create("ops-", &bins().fake_op, extra_config).unwrap(),
            extra_env: Vec::new(),
            manual: std::cell::Cell::new(false),
        }
    }

    /// From now on, [`World::client`] starts no daemon: the client auto-starts one (which reads
    /// no config of this world's) or finds none.
    pub fn without_daemon(&self) -> &World {
        self.manual.set(true);
        self
    }

    /// Start this world's daemon explicitly (detaching, as auto-start does, with `--config`)
    /// unless one already answers on its socket; wait until it serves.
    pub fn start_daemon(&self) {
        if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
            return;
        }
        let socket = self.socket.display().to_string();
        let config = self.config.display().to_string();
        let mut c = self.cmd(&bins().daemon);
        c.args([
            "--started-by",
            "autostart",
            "--socket",
            &socket,
            "--config",
            &config,
        ])
        .current_dir("/")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // The detaching daemon's first process exits once the server is ready (or failed).
        let _ = c.status();
        wait_until(Duration::from_secs(10), || {
            std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
        });
    }

    /// Whether a client command with these arguments would auto-start a daemon for this
    /// world's socket.
    fn would_autostart(&self, args: &[&str]) -> bool {
        let env_says = |k: &str| self.extra_env.iter().any(|(n, _)| n == k);
        !self.manual.get()
            && !env_says("OPSESSION_NO_AUTOSTART")
            && !env_says("OPSESSION_SOCKET")
            && !args
                .iter()
                .any(|a| *a == "--no-autostart" || *a == "--socket" || a.starts_with("--socket="))
            && args.first() != Some(&"stop")
    }

    /// The environment every command of this world gets: the directories', then
    /// [`World::extra_env`].
    pub fn env(&self) -> Vec<(String, String)> {
        let mut v = self.dirs.env();
        v.extend(self.extra_env.iter().cloned());
        v
    }

    fn cmd(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .envs(self.env())
            .current_dir(&self.home)
            .stdin(Stdio::null());
        detach_from_terminal(&mut c);
        c
    }

    /// `op-session ARGS` (no TTY, stdin /dev/null), with this world's daemon started first
    /// where the client would auto-start one (see the module doc).
    pub fn client(&self, args: &[&str]) -> Command {
        if self.would_autostart(args) {
            self.start_daemon();
        }
        let mut c = self.cmd(&bins().client);
        c.args(args);
        c
    }

    /// Run `op-session ARGS` and collect its output.
    pub fn run(&self, args: &[&str]) -> Out {
        Out::from(self.client(args).finish().unwrap())
    }

    /// Run `op-session ARGS` with `stdin` bytes.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Out {
        use std::io::Write;
        let mut c = self.client(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        // A command that refuses before reading its stdin closes it: that is its answer, not
        // the test's failure (the exit code and stderr say what happened).
        match child.stdin.take().unwrap().write_all(stdin) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            r => r.unwrap(),
        }
        Out::from(wait_output(child, DEADLINE))
    }

    /// Run `op-session ARGS` `n` times at once (all spawned before any is awaited).
    pub fn run_parallel(&self, n: usize, args: &[&str]) -> Vec<Out> {
        let kids: Vec<_> = (0..n)
            .map(|_| {
                self.client(args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        kids.into_iter()
            .map(|k| Out::from(wait_output(k, DEADLINE)))
            .collect()
    }

    /// How many of this world's `fake-op` processes running `subcommand` are alive.
    pub fn fake_ops_running(&self, subcommand: &str) -> usize {
        let ours = format!("FAKE_OP_HOME={}", self.fake_home.display());
        processes(&format!("fake-op\0{subcommand}"), Some(&ours))
    }

    /// `op-sessiond ARGS`, with `--config` naming this world's config unless ARGS name one.
    pub fn daemon(&self, args: &[&str]) -> Command {
        let mut c = self.cmd(&bins().daemon);
        c.args(args);
        if !args.iter().any(|a| a.starts_with("--config")) {
            c.arg("--config").arg(&self.config);
        }
        c
    }

    /// `fake-op ARGS` directly (as an agent without op-session would).
    pub fn fake_op(&self, args: &[&str]) -> Command {
        let mut c = self.cmd(&bins().fake_op);
        c.args(args);
        c
    }

    /// `fake-op-ctl ARGS`, asserting success; returns stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = Out::from(self.cmd(&bins().ctl).args(args).finish().unwrap());
        assert_eq!(out.code, 0, "fake-op-ctl {args:?} failed: {}", out.stderr);
        out.stdout
    }

    /// Load the basic fixture into fake-op.
    pub fn load_basic(&self) {
        self.ctl(&["load", fixture("basic.json").to_str().unwrap()]);
    }

    /// fake-op's counters as JSON.
    pub fn counters(&self) -> serde_json::Value {
        serde_json::from_str(&self.ctl(&["counters"])).unwrap()
    }

    /// fake-op's call log, one JSON value per invocation.
    pub fn calls(&self) -> Vec<serde_json::Value> {
        let path = self.fake_home.join("calls.jsonl");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// `status --json`, parsed.
    pub fn status(&self) -> serde_json::Value {
        let out = self.run(&["status", "--json"]);
        assert_eq!(out.code, 0, "status failed: {}", out.stderr);
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// The daemon's pid from the lock file beside the socket, if any.
    pub fn daemon_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.socket.with_file_name("agent.sock.lock"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Every file under the world (for leak scans).
    pub fn all_files(&self) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    let path = e.path();
                    match e.file_type() {
                        Ok(t) if t.is_dir() => walk(&path, out),
                        Ok(t) if t.is_file() => out.push(path),
                        _ => {}
                    }
                }
            }
        }
        let mut v = Vec::new();
        walk(self.dir.path(), &mut v);
        v
    }

    /// The daemon's log (auto-started daemons log to the state dir).
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.state.join("op-session/op-sessiond.log")).unwrap_or_default()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(pid) = self.daemon_pid() {
            let pid = nix::unistd::Pid::from_raw(pid);
            if nix::sys::signal::kill(pid, None).is_ok() {
                // Only a daemon of this world holds this lock file's pid; still check cmdline.
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains("op-sessiond") {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
    }
}

/// A finished command.
#[derive(Debug, Clone)]
pub struct Out {
    /// Exit code (128+N for signal N).
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl From<Output> for Out {
    fn from(o: Output) -> Out {
        use std::os::unix::process::ExitStatusExt;
        Out {
            code: o
                .status
                .code()
                .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0)),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// How long one command of a test may run: past it the test kills the command's process group
/// and fails, rather than wait with no end (a forwarded signal the command ignores, a daemon
/// that never answers). Generous: the machine may be busy building.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// `output()` and `status()` with [`DEADLINE`]: every wait for a command in the tests ends.
pub trait Finish {
    /// As `Command::output` (stdout and stderr captured), failing the test past the deadline.
    fn finish(&mut self) -> std::io::Result<Output>;
    /// As `Command::status` (stdio inherited), failing the test past the deadline.
    fn finish_status(&mut self) -> std::io::Result<std::process::ExitStatus>;
}

impl Finish for Command {
    fn finish(&mut self) -> std::io::Result<Output> {
        let child = self.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        Ok(wait_output(child, DEADLINE))
    }

    fn finish_status(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let mut child = self.spawn()?;
        Ok(wait_status(&mut child, DEADLINE))
    }
}

/// Wait for `child` at most `limit`; past it, kill its process group and panic.
pub fn wait_status(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st,
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let pid = child.id() as i32;
                // The harness starts commands in their own session (detach_from_terminal), so
                // the group is theirs; the child itself too, in case it is not a group leader.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(-pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = child.kill();
                let _ = child.wait();
                panic!("pid {pid} still running after {limit:?}: killed it");
            }
            Err(e) => panic!("waiting for pid {}: {e}", child.id()),
        }
    }
}

/// `Child::wait_with_output` with a deadline: the pipes are read on threads while the child is
/// waited for at most `limit` (then its process group is killed and the test fails).
pub fn wait_output(mut child: std::process::Child, limit: Duration) -> Output {
    use std::io::Read;
    fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    }
    drop(child.stdin.take());
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = wait_status(&mut child, limit);
    // A grandchild may still hold a pipe; give it the rest of a short grace, then go on.
    let join = |h: std::thread::JoinHandle<Vec<u8>>| {
        if wait_until(Duration::from_secs(10), || h.is_finished()) {
            h.join().unwrap_or_default()
        } else {
            panic!("a process the command started still holds its output open");
        }
    };
    Output {
        status,
        stdout: join(out),
        stderr: join(err),
    }
}

/// Kill process `pid` once `limit` has passed, unless dropped first: a test reading a child's
/// pipe (which blocks until the child writes or exits) then sees end-of-file at the deadline
/// instead of hanging.
pub struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Watchdog {
    /// Start watching `pid`.
    pub fn new(pid: u32, limit: Duration) -> Watchdog {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit)
                && let Ok(pid) = i32::try_from(pid)
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        });
        Watchdog(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// Poll `f` until it is true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Hex-encode bytes for raw-frame.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A preamble byte plus one frame holding `json`.
pub fn raw_request(json: &str) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend_from_slice(&(json.len() as u32).to_be_bytes());
    v.extend_from_slice(json.as_bytes());
    v
}

/// A connection that opens with the reuse preamble and carries request after request, as
/// `op-session mcp` keeps them.
pub struct Reused {
    stream: std::os::unix::net::UnixStream,
    opened: bool,
}

impl Reused {
    /// Connect to the daemon's socket (or a grant's); the preamble goes with the first request.
    pub fn connect(socket: &Path) -> Reused {
        let stream = std::os::unix::net::UnixStream::connect(socket).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Reused {
            stream,
            opened: false,
        }
    }

    /// Send `json` and read its answer; `None` when the daemon closed the connection instead.
    pub fn ask(&mut self, json: &str) -> Option<serde_json::Value> {
        use std::io::{Read, Write};
        let mut bytes = if self.opened { vec![] } else { vec![2u8] };
        self.opened = true;
        bytes.extend_from_slice(&(json.len() as u32).to_be_bytes());
        bytes.extend_from_slice(json.as_bytes());
        self.stream.write_all(&bytes).ok()?;
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).ok()?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).expect("a whole answer");
        Some(serde_json::from_slice(&body).expect("JSON"))
    }

    /// Whether the daemon has closed the connection (read until the end, within 30 s).
    pub fn ended(&mut self) -> bool {
        use std::io::Read;
        let mut rest = Vec::new();
        match self.stream.read_to_end(&mut rest) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

/// The read, run and inject cases of the differential tests: `op-session` through the shim
/// against `op` itself (token mode), and connect mode against token mode. `envfile` holds
/// `STRIPE=op://Dev/Stripe/key`, `PLAIN=hello` and `DB="op://Dev/Database/password"`.
pub fn differential_cases(envfile: &str) -> Vec<(Vec<String>, Option<&'static str>)> {
    let cases: Vec<(Vec<&str>, Option<&'static str>)> = vec![
        (vec!["read", "op://Dev/Stripe/key"], None),
        (vec!["read", "-n", "op://Dev/Database/password"], None),
        (vec!["read", "op://dev/stripe/KEY"], None),
        (vec!["read", "op://Dev/Stripe/key?attribute=type"], None),
        (vec!["read", "op://Dev/GitHub/Security/recovery code"], None),
        (vec!["read", "op://Dev/Nope/key"], None),
        (vec!["read", "op://Dev/Stripe/nope"], None),
        (vec!["read", "op://Nope/Stripe/key"], None),
        (vec!["read", "op://Dev/Deploy Key/password"], None),
        (vec!["read", "op://Dev/Stri(pe/key"], None),
        (vec!["read", "op://a/b/c/d/e"], None),
        (
            vec!["inject"],
            Some(
                "db: {{ op://Dev/Database/username }}@{{ op://Dev/Database/host }}\nkey: op://Dev/Stripe/key\n",
            ),
        ),
        (vec!["inject"], Some("broken: {{ op://Dev/Nope/key }}\n")),
        (
            vec![
                "run",
                "--env-file",
                envfile,
                "--",
                "printenv",
                "STRIPE",
                "PLAIN",
                "DB",
            ],
            None,
        ),
        (
            vec![
                "run",
                "--no-masking",
                "--env-file",
                envfile,
                "--",
                "printenv",
                "STRIPE",
            ],
            None,
        ),
        (vec!["run", "--", "sh", "-c", "exit 3"], None),
    ];
    cases
        .into_iter()
        .map(|(a, s)| (a.into_iter().map(str::to_string).collect(), s))
        .collect()
}

/// Run the command in a new session, without a controlling terminal, as an agent's tool call
/// runs (and so the tests behave the same when run from a terminal).
pub fn detach_from_terminal(c: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches only the child.
    unsafe {
        c.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
}

/// Start the command with SIGINT, SIGTERM and SIGHUP at their default disposition and unblocked,
/// except those in `ignored`, which it starts with ignored: a test about signals sets what it
/// depends on rather than inherit the test runner's (under `nohup`, SIGHUP arrives ignored).
pub fn signal_dispositions(c: &mut Command, ignored: &'static [nix::sys::signal::Signal]) {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
    use std::os::unix::process::CommandExt;
    // SAFETY: signal and sigprocmask are async-signal-safe and touch only the child.
    unsafe {
        c.pre_exec(move || {
            let mut set = SigSet::empty();
            for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
                let h = if ignored.contains(&s) {
                    SigHandler::SigIgn
                } else {
                    SigHandler::SigDfl
                };
                signal(s, h).map_err(std::io::Error::from)?;
                set.add(s);
            }
            sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None).map_err(std::io::Error::from)
        });
    }
}

/// How many live processes have `cmd` in their NUL-separated command line (and `env`, if
/// given, in their environment).
pub fn processes(cmd: &str, env: Option<&str>) -> usize {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    let p = e.path();
                    let c = std::fs::read(p.join("cmdline")).unwrap_or_default();
                    String::from_utf8_lossy(&c).contains(cmd)
                        && env.is_none_or(|env| {
                            let e = std::fs::read(p.join("environ")).unwrap_or_default();
                            String::from_utf8_lossy(&e).contains(env)
                        })
                })
                .count()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_drops_what_cargo_set_for_this_test_and_keeps_the_users_settings() {
        // `cargo test` set these for this very process (ring's build script watches them):
        // the nested build must not see them.
        let c = build_command();
        let removed: Vec<String> = c
            .get_envs()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
        ] {
            assert!(
                std::env::var_os(name).is_some(),
                "cargo sets {name} for tests"
            );
            assert!(removed.iter().any(|r| r == name), "{name}: {removed:?}");
        }
        assert!(c.get_envs().all(|(_, v)| v.is_none()), "nothing is set");
        for kept in [
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_JOBS",
            "CARGO_INCREMENTAL",
            "CARGO_TERM_COLOR",
            "PATH",
        ] {
            assert!(!set_by_cargo_for_the_crate(kept), "{kept}");
        }
    }
}

//! A private world per scenario: HOME, XDG dirs, socket and fake-op state in a temporary
//! directory (the e2e harness's `World`, tests/src/lib.rs), driving the release binaries.
//!
//! Owns building and finding the binaries, running them with exactly the world's environment,
//! reading fake-op's counters and call log, and stopping the world's daemon: `op-session stop`
//! normally, SIGKILL from `Drop` (or the watchdog) if a scenario failed half way. Nothing here
//! listens beyond the Unix socket inside the world's own directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The account password in fake-op's basic fixture.
pub const MY_PASSWORD: &str = "correct horse battery staple";

/// The app-integration account of the basic fixture.
pub const TEAM: &str = "team.1password.com";

/// Paths of the release binaries.
#[derive(Debug, Clone)]
pub struct Bins {
    /// `op-session`.
    pub client: PathBuf,
    /// `op-sessiond`.
    pub daemon: PathBuf,
    /// `fake-op`, which plays `op`.
    pub fake_op: PathBuf,
    /// `fake-op-ctl`.
    pub ctl: PathBuf,
    /// `op-session-mcp` (exec'd by `op-session mcp`).
    pub mcp: PathBuf,
}

/// The workspace root (the bench runs from its source tree, as `cargo run` does).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| here.to_path_buf())
}

impl Bins {
    /// Build the release binaries (unless `build` is false) and find them.
    pub fn prepare(build: bool) -> Result<Bins> {
        let root = workspace_root();
        if build {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            eprintln!(
                "building the release binaries (cargo build --release -p op-session -p op-sessiond -p op-session-mcp -p fake-op)…"
            );
            let st = Command::new(cargo)
                .current_dir(&root)
                .args([
                    "build",
                    "--release",
                    "-q",
                    "-p",
                    "op-session",
                    "-p",
                    "op-sessiond",
                    "-p",
                    "op-session-mcp",
                    "-p",
                    "fake-op",
                    "--bins",
                ])
                .status()
                .context("running cargo build")?;
            if !st.success() {
                bail!("cargo build --release of the binaries failed ({st})");
            }
            // Measure the client as install.sh installs it: on Linux/glibc, linked statically.
            if let Some(host) = static_client_target() {
                eprintln!("building the static client as install.sh does (--target {host})…");
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let st = Command::new(cargo)
                    .current_dir(&root)
                    .env(
                        "RUSTFLAGS",
                        "-C target-feature=+crt-static -C relocation-model=static",
                    )
                    .args([
                        "build",
                        "--release",
                        "-q",
                        "-p",
                        "op-session",
                        "--target",
                        &host,
                    ])
                    .status()
                    .context("running cargo build")?;
                if !st.success() {
                    bail!("cargo build of the static client failed ({st})");
                }
            }
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let dir = target.join("release");
        let client_dir = match static_client_target() {
            Some(host) => target.join(host).join("release"),
            None => dir.clone(),
        };
        let bins = Bins {
            client: client_dir.join("op-session"),
            daemon: dir.join("op-sessiond"),
            fake_op: dir.join("fake-op"),
            ctl: dir.join("fake-op-ctl"),
            mcp: dir.join("op-session-mcp"),
        };
        for p in [
            &bins.client,
            &bins.daemon,
            &bins.fake_op,
            &bins.ctl,
            &bins.mcp,
        ] {
            if !p.is_file() {
                bail!(
                    "{} is missing: build it with `cargo build --release -p op-session -p op-sessiond -p op-session-mcp -p fake-op`, or drop --no-build",
                    p.display()
                );
            }
        }
        Ok(bins)
    }
}

impl Bins {
    /// The debug binaries in target/debug (built first when `build`): for scenarios that
    /// count calls rather than time them (the crash loop), where the profile changes nothing.
    pub fn debug(build: bool) -> Result<Bins> {
        let root = workspace_root();
        if build {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            eprintln!("building the debug binaries…");
            let st = Command::new(cargo)
                .current_dir(&root)
                .args([
                    "build",
                    "-q",
                    "-p",
                    "op-session",
                    "-p",
                    "op-sessiond",
                    "-p",
                    "fake-op",
                    "--bins",
                ])
                .status()
                .context("running cargo build")?;
            if !st.success() {
                bail!("cargo build of the binaries failed ({st})");
            }
        }
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"))
            .join("debug");
        let bins = Bins {
            client: dir.join("op-session"),
            daemon: dir.join("op-sessiond"),
            fake_op: dir.join("fake-op"),
            ctl: dir.join("fake-op-ctl"),
            mcp: dir.join("op-session-mcp"),
        };
        for p in [&bins.client, &bins.daemon, &bins.fake_op, &bins.ctl] {
            if !p.is_file() {
                bail!("{} is missing: drop --no-build", p.display());
            }
        }
        Ok(bins)
    }
}

/// The target triple install.sh builds a static client for (Linux with glibc), if this is one.
fn static_client_target() -> Option<String> {
    let out = Command::new("rustc").arg("-vV").output().ok()?;
    let host = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))?;
    host.ends_with("-linux-gnu").then_some(host)
}

/// Sockets of every live world, so the watchdog can kill their daemons.
static LIVE_WORLDS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// SIGKILL the daemon serving `socket`, if it answers and is an `op-sessiond`.
///
/// The pid comes from the daemon's own status report: the lock file beside the socket names
/// the process that took the lock, which for a detaching daemon is the parent that exits.
fn kill_daemon_at(socket: &Path) {
    let Some(pid) = crate::wire::daemon_pid(socket) else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if String::from_utf8_lossy(&cmdline).contains("op-sessiond") {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Kill every live world's daemon (the watchdog's last act).
pub fn kill_all_daemons() {
    let sockets = LIVE_WORLDS.lock().map(|l| l.clone()).unwrap_or_default();
    for socket in sockets {
        kill_daemon_at(&socket);
    }
}

/// A finished command (shared with the end-to-end test harness).
pub use op_session_e2e::{Out, WorldDirs};

/// fake-op's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Every `op` invocation.
    pub invocations: u64,
    /// Biometric prompts the "desktop app" showed.
    pub prompts: u64,
    /// Invocations per command (`read`, `whoami`, `signin`, …).
    pub commands: BTreeMap<String, u64>,
}

impl Counters {
    /// What happened between `before` and `self`.
    pub fn since(&self, before: &Counters) -> Counters {
        let mut commands = BTreeMap::new();
        for (k, v) in &self.commands {
            let d = v.saturating_sub(before.commands.get(k).copied().unwrap_or(0));
            if d > 0 {
                commands.insert(k.clone(), d);
            }
        }
        Counters {
            invocations: self.invocations.saturating_sub(before.invocations),
            prompts: self.prompts.saturating_sub(before.prompts),
            commands,
        }
    }

    /// `7 (signin 1, whoami 1, read 5)`.
    pub fn describe(&self) -> String {
        if self.commands.is_empty() {
            return self.invocations.to_string();
        }
        let parts: Vec<String> = self
            .commands
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!("{} ({})", self.invocations, parts.join(", "))
    }
}

/// One scenario's private world: the e2e harness's directories ([`WorldDirs`], reached
/// through `Deref`) and the release binaries.
#[derive(Debug)]
pub struct World {
    /// Its directories (`w.home`, `w.socket`, … through `Deref`).
    pub dirs: WorldDirs,
    /// The binaries.
    pub bins: Bins,
}

impl std::ops::Deref for World {
    type Target = WorldDirs;
    fn deref(&self) -> &WorldDirs {
        &self.dirs
    }
}

impl World {
    /// A world whose config runs fake-op as `op`, with `fixture` loaded.
    pub fn new(bins: &Bins, fixture: &Path) -> Result<World> {
        let w = World {
            dirs: WorldDirs::create("ops-bench-", &bins.fake_op, "")
                .context("creating the world's directories")?,
            bins: bins.clone(),
        };
        if let Ok(mut live) = LIVE_WORLDS.lock() {
            live.push(w.socket.clone());
        }
        w.ctl(&["load", &fixture.display().to_string()])?;
        Ok(w)
    }

    /// The environment every command of this world gets, and nothing else: the directories'.
    pub fn env(&self) -> Vec<(String, String)> {
        self.dirs.env()
    }

    /// `program` with the world's environment, in HOME, stdin `/dev/null`.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .envs(self.env())
            .current_dir(&self.home)
            .stdin(Stdio::null());
        c
    }

    /// `op-session ARGS`, with this world's daemon started first where the client would
    /// auto-start one: auto-start reads the config under the passwd home, never this world's
    /// (docs/architecture.md, "Where things live"), so the world starts its own with `--config`.
    pub fn client(&self, args: &[&str]) -> Command {
        if args.first() != Some(&"stop") && self.daemon_pid().is_none() {
            // A failure shows in the command's own answer ("no daemon"), where the caller looks.
            let _ = self.start_daemon();
        }
        let mut c = self.command(&self.bins.client);
        c.args(args);
        c
    }

    /// Run `op-session ARGS` and collect its output.
    pub fn run(&self, args: &[&str]) -> Result<Out> {
        Ok(self
            .client(args)
            .output()
            .context("running op-session")?
            .into())
    }

    /// Run `cmd` with `stdin` bytes and collect its output.
    pub fn run_with_stdin(&self, mut cmd: Command, stdin: &[u8]) -> Result<Out> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().context("spawning")?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin).context("writing stdin")?;
        }
        Ok(child.wait_with_output()?.into())
    }

    /// `fake-op-ctl ARGS`; fails unless it succeeds. Returns stdout.
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        let out: Out = self
            .command(&self.bins.ctl)
            .args(args)
            .output()
            .context("running fake-op-ctl")?
            .into();
        if out.code != 0 {
            bail!("fake-op-ctl {args:?} failed: {}", out.stderr.trim());
        }
        Ok(out.stdout)
    }

    /// Every `op` invocation from now on sleeps `ms` first (the server round trip).
    pub fn set_latency(&self, ms: u64) -> Result<()> {
        self.ctl(&["latency", &ms.to_string()]).map(drop)
    }

    /// fake-op's counters now.
    pub fn counters(&self) -> Result<Counters> {
        let v: serde_json::Value =
            serde_json::from_str(&self.ctl(&["counters"])?).context("parsing counters")?;
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        let commands = v["commands"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, c)| (k.clone(), c.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Counters {
            invocations: n("invocations"),
            prompts: n("biometric_prompts"),
            commands,
        })
    }

    /// fake-op's call log: one JSON value per invocation.
    pub fn calls(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.fake_home.join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// How many invocations so far had a token (or another secret) in their argv.
    pub fn argv_with_secret(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| c["secret_in_argv"] == true)
            .count()
    }

    /// `op-session init --account ACCOUNT --password-stdin` (token mode).
    pub fn init_token(&self, account: &str) -> Result<()> {
        let out = self.run_with_stdin(
            self.client(&["init", "--account", account, "--password-stdin"]),
            format!("{MY_PASSWORD}\n").as_bytes(),
        )?;
        if out.code != 0 {
            bail!(
                "op-session init failed: {}{}",
                out.stdout,
                out.stderr.trim()
            );
        }
        Ok(())
    }

    /// `op-session init --account ACCOUNT` with no terminal: the daemon asks the app.
    pub fn init_app(&self, account: &str) -> Result<()> {
        let out = self.run(&["init", "--account", account])?;
        if out.code != 0 {
            bail!("op-session init (app) failed: {}", out.stderr.trim());
        }
        Ok(())
    }

    /// Start `op-sessiond` (it detaches once it serves) and return its pid.
    pub fn start_daemon(&self) -> Result<i32> {
        let st = self
            .command(&self.bins.daemon)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--config")
            .arg(&self.config)
            .current_dir("/")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running op-sessiond")?;
        if !st.success() {
            bail!(
                "op-sessiond failed to start ({st}); see {}",
                self.state.display()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(pid) = self.daemon_pid() {
                return Ok(pid);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("op-sessiond did not come up within 5 s")
    }

    /// The pid of the daemon serving this world's socket, if one answers.
    pub fn daemon_pid(&self) -> Option<i32> {
        crate::wire::daemon_pid(&self.socket)
    }

    /// `op-session stop`, then wait (at most 5 s) until the daemon is gone.
    pub fn stop(&self) -> Result<()> {
        let Some(pid) = self.daemon_pid() else {
            return Ok(());
        };
        let out = self.run(&["stop"])?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "op-sessiond (pid {pid}) did not stop after `op-session stop`: {}",
            out.stderr.trim()
        )
    }
}

impl Drop for World {
    fn drop(&mut self) {
        kill_daemon_at(&self.socket);
        if let Ok(mut live) = LIVE_WORLDS.lock() {
            live.retain(|l| l != &self.socket);
        }
    }
}

#[cfg(test)]
mod tests;

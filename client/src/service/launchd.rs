//! launchd (macOS): the LaunchAgent's path, rendering the shipped plist, and the `launchctl`
//! steps that load, unload and report it.
//!
//! The plist listens on the path clients compute when installing (`op_session_paths::
//! socket_path`, `$TMPDIR/op-session-<uid>/agent.sock` on macOS). launchd binds that socket but
//! does not create its directory, so install creates it 0700; should macOS clean it out of
//! `$TMPDIR`, `status` says so and `install` repairs it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use op_session_protocol::exit;

use super::{ServiceManager, Step, WRITTEN_BY, capture};
use crate::error::{Failure, Result};

/// The shipped plist; `service install` writes it, filled in.
const PLIST: &str = include_str!("../../../launchd/com.op-session.op-sessiond.plist");
/// The LaunchAgent's label (and file name, with `.plist`).
pub const LABEL: &str = "com.op-session.op-sessiond";
/// launchd's PATH is /usr/bin:/bin:/usr/sbin:/sbin; `op` usually lives in one of these.
const LAUNCHD_PATH: &str = "/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

/// `~/Library/LaunchAgents/com.op-session.op-sessiond.plist`.
#[derive(Debug)]
pub struct Launchd {
    /// The plist, with the content install writes.
    files: Vec<(PathBuf, String)>,
    /// The socket launchd listens on.
    socket: PathBuf,
    /// Our uid (launchd's `gui/<uid>` domain).
    uid: u32,
}

/// Where this user's LaunchAgent goes.
pub fn plist_path(home: &Path) -> PathBuf {
    home.join("Library")
        .join("LaunchAgents")
        .join(format!("{LABEL}.plist"))
}

impl Launchd {
    /// The LaunchAgent for this user, running `daemon`.
    pub fn new(home: &Path, daemon: &Path, uid: u32) -> Result<Launchd> {
        let socket = op_session_paths::socket_path(None);
        op_session_paths::check_socket_len(&socket)
            .map_err(|e| Failure::new(exit::CONFIG, e.to_string(), "set a shorter TMPDIR"))?;
        let log = home.join("Library").join("Logs").join("op-sessiond.log");
        let plist = render_plist(daemon, &socket, &log, &launchd_path())?;
        Ok(Launchd {
            files: vec![(plist_path(home), plist)],
            socket,
            uid,
        })
    }

    fn domain(&self) -> String {
        format!("gui/{}", self.uid)
    }

    fn service_target(&self) -> String {
        format!("gui/{}/{LABEL}", self.uid)
    }

    /// Whether launchd has our agent loaded (only asked where launchd runs).
    fn loaded(&self, manager_runs: bool) -> bool {
        manager_runs
            && capture(&["launchctl", "print", &self.service_target()]).is_some_and(|(ok, _)| ok)
    }
}

impl ServiceManager for Launchd {
    fn describe(&self) -> &'static str {
        "launchd agent"
    }

    fn files(&self) -> &[(PathBuf, String)] {
        &self.files
    }

    fn socket(&self) -> &Path {
        &self.socket
    }

    fn absent_reason(&self) -> Option<String> {
        if cfg!(target_os = "macos") {
            None
        } else {
            Some("launchd runs only on macOS".into())
        }
    }

    fn socket_dir_needed(&self) -> Option<&Path> {
        self.socket
            .parent()
            .filter(|dir| op_session_paths::verify_private_dir(dir).is_err())
    }

    fn install_steps(&self, manager_runs: bool, changed: bool) -> Vec<Step> {
        let mut steps = Vec::new();
        let plist = self.files[0].0.display().to_string();
        let loaded = self.loaded(manager_runs);
        if loaded && changed {
            steps.push(Step::Note(
                "the agent is loaded with older settings: booting it out stops a running op-sessiond (its sessions are wiped)".into(),
            ));
            steps.push(Step::Run(launchctl(&["bootout", &self.service_target()])));
        }
        if !loaded || changed {
            steps.push(Step::Run(launchctl(&["enable", &self.service_target()])));
            steps.push(Step::Run(launchctl(&["bootstrap", &self.domain(), &plist])));
        }
        steps
    }

    fn uninstall_steps(&self, manager_runs: bool, installed: &[&PathBuf]) -> Vec<Step> {
        let mut steps = Vec::new();
        // Where launchd runs, ask; elsewhere print the command a Mac would need.
        if self.loaded(manager_runs) || (!manager_runs && !installed.is_empty()) {
            steps.push(Step::Run(launchctl(&["bootout", &self.service_target()])));
        }
        steps.extend(installed.iter().map(|p| Step::Remove(p.to_path_buf())));
        steps
    }

    fn report(&self) -> bool {
        match capture(&["launchctl", "print", &self.service_target()]) {
            Some((true, out)) => {
                let state = out
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("state = "))
                    .unwrap_or("unknown")
                    .to_string();
                outln!("launchd: {LABEL} loaded (state: {state})");
                true
            }
            _ => {
                outln!("launchd: {LABEL} not loaded");
                false
            }
        }
    }

    fn socket_dir_ok(&self) -> bool {
        match self
            .socket
            .parent()
            .map(op_session_paths::verify_private_dir)
        {
            Some(Err(e)) => {
                outln!(
                    "socket directory: {e}; launchd cannot listen there (run `op-session service install` to repair it)"
                );
                false
            }
            _ => true,
        }
    }
}

fn launchctl(args: &[&str]) -> Vec<String> {
    std::iter::once("launchctl")
        .chain(args.iter().copied())
        .map(str::to_string)
        .collect()
}

fn render_plist(daemon: &Path, socket: &Path, log: &Path, path_var: &str) -> Result<String> {
    let text = |p: &Path| {
        p.to_str().map(xml_escape).ok_or_else(|| {
            Failure::new(
                exit::CONFIG,
                format!("{p:?} is not UTF-8 and cannot be written into a plist"),
                "use paths that are valid UTF-8",
            )
        })
    };
    // The template's comment explains the placeholders; the installed file says who wrote it.
    let body = match (PLIST.find("<!--"), PLIST.find("-->")) {
        (Some(start), Some(end)) if start < end => format!(
            "{}<!-- {WRITTEN_BY} -->{}",
            &PLIST[..start],
            &PLIST[end + 3..]
        ),
        _ => PLIST.to_string(),
    };
    Ok(body
        .replace("@OPSESSIOND@", &text(daemon)?)
        .replace("@SOCKET@", &text(socket)?)
        .replace("@LOG@", &text(log)?)
        .replace("@PATH@", &xml_escape(path_var)))
}

/// launchd's PATH for the daemon: Homebrew's bins and the system's, with the directory of the
/// `op` found on our PATH first when it is elsewhere (our own `op` shim does not count).
fn launchd_path() -> String {
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok());
    let op_dir = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .filter(|d| d.is_absolute())
            .find(|d| {
                let op = d.join("op");
                let real = op.canonicalize().ok();
                op.metadata()
                    .is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
                    && real.is_some()
                    && real != me
            })
    });
    match op_dir.and_then(|d| d.to_str().map(str::to_string)) {
        Some(d) if !d.contains(':') && !LAUNCHD_PATH.split(':').any(|p| p == d) => {
            format!("{d}:{LAUNCHD_PATH}")
        }
        _ => LAUNCHD_PATH.to_string(),
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plist_gets_every_placeholder_filled_and_escaped() {
        let plist = render_plist(
            Path::new("/Users/a&b/bin/op-sessiond"),
            Path::new("/tmp/op-session-501/agent.sock"),
            Path::new("/Users/a&b/Library/Logs/op-sessiond.log"),
            LAUNCHD_PATH,
        )
        .expect("renders");
        assert!(!plist.contains('@'), "{plist}");
        assert!(plist.contains("<string>/Users/a&amp;b/bin/op-sessiond</string>"));
        assert_eq!(plist.matches("/tmp/op-session-501/agent.sock").count(), 2);
        assert!(plist.contains("<integer>384</integer>"));
    }
}

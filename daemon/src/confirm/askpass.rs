//! The askpass channel: ask with a program, as OpenSSH's `ssh-add -c` does.
//!
//! The program gets the prompt as its only argument and `SSH_ASKPASS_PROMPT=confirm` in its
//! environment; exit status 0 means yes, anything else no. It runs with the daemon's session
//! environment (display, session bus, locale: never a caller's), the fixed system `PATH`, in
//! its own process group, and is killed with its group when the prompt ends without it (the
//! timeout, or the last waiting client going away). What it prints is ignored.

use std::path::Path;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Command;

use super::Answer;

/// Ends the askpass program's process group when dropped.
struct Group(Option<i32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Why the program could not ask.
#[derive(Debug)]
pub(crate) struct Unavailable(pub String);

/// Run `program` with `prompt` and wait for its answer. Cancellation (dropping the future)
/// kills it.
pub(crate) async fn ask(program: &Path, prompt: &str) -> Result<Answer, Unavailable> {
    let mut cmd = Command::new(program);
    cmd.arg(prompt)
        .env_clear()
        .envs(
            std::env::vars_os()
                .filter(|(k, _)| k.to_str().is_some_and(op_session_paths::is_session_var)),
        )
        .env("PATH", op_session_paths::SYSTEM_PATH)
        .env("SSH_ASKPASS_PROMPT", "confirm")
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| Unavailable(format!("cannot run {}: {e}", program.display())))?;
    let mut group = Group(child.id().and_then(|p| i32::try_from(p).ok()));
    let status = child
        .wait()
        .await
        .map_err(|e| Unavailable(format!("{} failed: {e}", program.display())))?;
    // Reaped: its pid (and group id) may be reused from now on.
    group.0 = None;
    Ok(if status.success() {
        Answer::Allow { remember: true }
    } else {
        Answer::Deny
    })
}

//! A child in its own process group, so that what it starts dies with it: at the deadline the
//! group gets SIGTERM, then SIGKILL after a grace period, and dropping the [`Group`] (the call
//! was cancelled, or it is over and grandchildren still hold the pipes) kills the group.

use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// How long the group has between SIGTERM and SIGKILL at the deadline.
pub const GRACE: Duration = Duration::from_secs(2);

/// A running child leading its own process group.
#[derive(Debug)]
pub struct Group {
    /// The child (its pipes may be taken).
    pub child: Child,
    pgid: Option<Pid>,
}

/// How the child ended.
#[derive(Debug)]
pub struct Ended {
    /// Its status, if it could be collected.
    pub status: Option<ExitStatus>,
    /// The deadline passed and the group was killed.
    pub timed_out: bool,
}

impl Group {
    /// Start `cmd` as the leader of a new process group (and killed if the handle is lost).
    ///
    /// # Errors
    ///
    /// The spawn's own error.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Group> {
        let child = cmd.process_group(0).kill_on_drop(true).spawn()?;
        let pgid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .map(Pid::from_raw);
        Ok(Group { child, pgid })
    }

    fn signal(&self, sig: Signal) {
        if let Some(pg) = self.pgid {
            let _ = killpg(pg, sig);
        }
    }

    /// Wait for the child until `timeout`; past it, SIGTERM the group, and SIGKILL it after
    /// [`GRACE`].
    pub async fn wait(&mut self, timeout: Duration) -> Ended {
        if let Ok(s) = tokio::time::timeout(timeout, self.child.wait()).await {
            return Ended {
                status: s.ok(),
                timed_out: false,
            };
        }
        self.signal(Signal::SIGTERM);
        let status = match tokio::time::timeout(GRACE, self.child.wait()).await {
            Ok(s) => s.ok(),
            Err(_) => {
                self.signal(Signal::SIGKILL);
                self.child.wait().await.ok()
            }
        };
        Ended {
            status,
            timed_out: true,
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pg) = self.pgid.take() {
            let _ = killpg(pg, Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn the_deadline_kills_the_whole_group() {
        let started = Instant::now();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30 & sleep 30"])
            .stdout(std::process::Stdio::piped());
        let mut g = Group::spawn(&mut cmd).expect("spawns");
        let out = g.child.stdout.take().expect("pipe");
        let ended = g.wait(Duration::from_millis(200)).await;
        assert!(ended.timed_out);
        drop(g);
        // The backgrounded sleep held the pipe: EOF means it died with the group.
        let kept = crate::mask::collect(out, secret_ref::Masker::new([b"unused-value"]), 16).await;
        assert!(kept.bytes.is_empty());
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}

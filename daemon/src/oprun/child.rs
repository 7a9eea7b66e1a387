//! The `op` child once it runs: relaying and capping what it prints, waiting for it within
//! the deadline, and ending its process group (SIGTERM, a grace period, SIGKILL).
//!
//! Never logs what the child printed; stderr relayed to a caller is scrubbed line by line.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;
use zeroize::Zeroizing;

use super::error::{MAX_OP_OUTPUT, OpError};
use crate::securemem::SecretToken;

/// Copy a passthrough's stderr to the caller's descriptor a line at a time, scrubbing the
/// session's token from each line (a partial line waits for its newline, up to 4 KiB). Returns
/// what was relayed (capped), already scrubbed, for classifying an auth failure.
pub(super) async fn relay_scrubbed<R: tokio::io::AsyncRead + Unpin>(
    mut r: R,
    sink: OwnedFd,
    secrets: Vec<Arc<SecretToken>>,
) -> Result<Zeroizing<Vec<u8>>, OpError> {
    const HOLD: usize = 4096;
    let mut sink = tokio::fs::File::from_std(std::fs::File::from(sink));
    let mut kept = Zeroizing::new(Vec::new());
    let mut pending = Zeroizing::new(Vec::new());
    let mut chunk = Zeroizing::new([0u8; 4096]);
    let strs: Vec<&str> = secrets.iter().map(|s| s.expose_secret().as_str()).collect();
    let emit = |line: &[u8], kept: &mut Vec<u8>| -> Vec<u8> {
        let text = crate::scrub::scrub(&String::from_utf8_lossy(line), &strs).into_bytes();
        if kept.len() < 64 * 1024 {
            kept.extend_from_slice(&text);
        }
        text
    };
    let mut sink_ok = true;
    loop {
        let n = match r.read(&mut chunk[..]).await {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        if n == 0 {
            if !pending.is_empty() {
                let out = emit(&pending, &mut kept);
                if sink_ok {
                    let _ = sink.write_all(&out).await;
                }
            }
            let _ = sink.flush().await;
            return Ok(kept);
        }
        pending.extend_from_slice(&chunk[..n]);
        let cut = match pending.iter().rposition(|b| *b == b'\n') {
            Some(i) => i + 1,
            None if pending.len() >= HOLD => pending.len(),
            None => continue,
        };
        let line: Zeroizing<Vec<u8>> = Zeroizing::new(pending.drain(..cut).collect());
        let out = emit(&line, &mut kept);
        // A caller whose stderr is gone still gets op run to completion.
        if sink_ok && sink.write_all(&out).await.is_err() {
            sink_ok = false;
        }
        if sink_ok {
            let _ = sink.flush().await;
        }
    }
}

/// Copy a passthrough's stdout to the caller's descriptor as it comes, through `masker` (every
/// held credential and its encoded forms), so `op` never prints a token to a caller. Binary
/// output (a document) passes unchanged apart from a masked pattern. Returns nothing: the
/// daemon never keeps a passthrough's output.
pub(super) async fn relay_masked<R: tokio::io::AsyncRead + Unpin>(
    mut r: R,
    sink: OwnedFd,
    mut masker: secret_ref::Masker,
) -> Result<Zeroizing<Vec<u8>>, OpError> {
    let mut sink = tokio::fs::File::from_std(std::fs::File::from(sink));
    let mut chunk = Zeroizing::new([0u8; 8192]);
    let mut sink_ok = true;
    loop {
        let n = match r.read(&mut chunk[..]).await {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        let out = Zeroizing::new(if n == 0 {
            masker.finish()
        } else {
            masker.push(&chunk[..n])
        });
        // A caller whose stdout is gone still gets op run to completion.
        if sink_ok && !out.is_empty() && sink.write_all(&out).await.is_err() {
            sink_ok = false;
        }
        if sink_ok {
            let _ = sink.flush().await;
        }
        if n == 0 {
            return Ok(Zeroizing::new(Vec::new()));
        }
    }
}

/// Something that delivers passthrough events: `Some(signal)` to forward, `None` when the
/// client has gone.
pub trait EventSource {
    /// Wait for the next event.
    fn next_event(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<i32>> + Send + '_>>;
}

pub(super) async fn read_capped<R: tokio::io::AsyncRead + Unpin>(
    mut r: R,
) -> Result<Zeroizing<Vec<u8>>, OpError> {
    let mut buf = Zeroizing::new(Vec::new());
    let mut chunk = Zeroizing::new([0u8; 8192]);
    loop {
        match r.read(&mut chunk[..]).await {
            Ok(0) => return Ok(buf),
            Ok(n) => {
                if buf.len() + n > MAX_OP_OUTPUT {
                    return Err(OpError::TooMuchOutput);
                }
                // Grow into a fresh zeroizing buffer so no unwiped copy is left behind.
                if buf.capacity() < buf.len() + n {
                    let mut bigger = Zeroizing::new(Vec::with_capacity((buf.len() + n) * 2));
                    bigger.extend_from_slice(&buf);
                    buf = bigger;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(_) => return Ok(buf),
        }
    }
}

pub(super) fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => 1,
    }
}

pub(super) async fn wait_child(
    child: &mut Child,
    pgid: Option<Pid>,
    timeout: Duration,
    mut events: Option<&mut (dyn EventSource + Send)>,
) -> Result<i32, OpError> {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut client_gone = false;
    loop {
        let ev = async {
            match events.as_deref_mut() {
                Some(e) if !client_gone => e.next_event().await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            st = child.wait() => {
                return st.map(exit_code).map_err(|source| OpError::Spawn { path: PathBuf::from("op"), source });
            }
            _ = &mut deadline => {
                terminate(child, pgid).await;
                return Err(OpError::Timeout(timeout));
            }
            e = ev => {
                match e {
                    Some(sig) => {
                        if let (Some(pg), Ok(sig)) = (pgid, Signal::try_from(sig)) {
                            let _ = killpg(pg, sig);
                        }
                    }
                    None => {
                        // The caller vanished: nobody will read the output. End the group now.
                        client_gone = true;
                        if let Some(pg) = pgid {
                            let _ = killpg(pg, Signal::SIGKILL);
                        }
                    }
                }
            }
        }
    }
}

/// SIGTERM the group, give it two seconds, then SIGKILL, and reap.
pub(super) async fn terminate(child: &mut Child, pgid: Option<Pid>) {
    if let Some(pg) = pgid {
        let _ = killpg(pg, Signal::SIGTERM);
    }
    if tokio::time::timeout(Duration::from_secs(2), child.wait())
        .await
        .is_err()
    {
        if let Some(pg) = pgid {
            let _ = killpg(pg, Signal::SIGKILL);
        }
        let _ = child.wait().await;
    }
}

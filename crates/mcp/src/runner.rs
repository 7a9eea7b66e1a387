//! The `run` and `inject` tools: values go into a child's environment or a 0600 file, never
//! into a tool result.
//!
//! `run` owns: finding the program (its absolute path is what the daemon checks against
//! `[mcp] run_allow`), building the child's environment (this process's, then env files, then
//! the tool's `env` map), starting the child in its own process group, masking every resolved
//! value in stdout and stderr (streaming, see `secret_ref::mask`), capping each stream at
//! [`MAX_STREAM`] with a note, and killing the whole group at the timeout.
//!
//! `inject` owns writing the rendered template atomically with mode 0600 (a temporary file
//! beside the target, renamed into place) and returning only the path and a count.
//!
//! Never logs or returns a value; resolved values live in `Zeroizing` buffers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use op_session_protocol::{
    ErrorBody, ErrorCode, RelayedResolve, Request, ResolvePurpose, ResolveRequest, Response, Via,
};
use secret_ref::mask::Masker;
use serde::Serialize;
use tokio::io::AsyncReadExt;
use zeroize::Zeroizing;

use crate::daemon::DaemonClient;

/// Most bytes of stdout (and, separately, of stderr) a `run` returns.
pub const MAX_STREAM: usize = 1024 * 1024;
/// The default and the longest `run` timeout.
pub const DEFAULT_TIMEOUT_S: u64 = 60;
/// The longest timeout a call may ask for.
pub const MAX_TIMEOUT_S: u64 = 600;
/// Largest template `inject` reads.
const MAX_TEMPLATE: u64 = 1024 * 1024;

fn bad(message: impl Into<String>, fix: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadRequest, message).with_fix(fix)
}

/// Resolve references through the daemon for `purpose`.
pub async fn resolve(
    daemon: &DaemonClient,
    via: &Via,
    account: Option<String>,
    refs: Vec<String>,
    purpose: ResolvePurpose,
    program: Option<String>,
    reveal: bool,
) -> Result<Vec<(String, Zeroizing<String>)>, ErrorBody> {
    let req = Request::Resolve(ResolveRequest {
        account,
        refs,
        no_cache: false,
        purpose,
        relayed: Some(RelayedResolve {
            via: via.clone(),
            reveal,
            program,
        }),
    });
    match daemon.request(&req).await? {
        Response::Values(v) => Ok(v.into_pairs()),
        Response::Error(e) => Err(e),
        _ => Err(ErrorBody::new(
            ErrorCode::Internal,
            "op-sessiond sent an unexpected answer",
        )),
    }
}

/// Find `program` as a shell would: with a slash, relative to `cwd`; else on `PATH`.
pub fn find_program(program: &str, cwd: &Path) -> Result<PathBuf, ErrorBody> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.is_empty() {
        return Err(bad(
            "command is empty",
            "pass the program and its arguments as an array",
        ));
    }
    if program.contains('/') {
        // The absolute path as asked: the daemon compares it with `run_allow` both as asked and
        // with its directory resolved, and names both in a refusal.
        let p = cwd.join(program);
        return if executable(&p) {
            Ok(p)
        } else {
            Err(bad(
                format!("{} is not an executable file", p.display()),
                "check the path",
            ))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_absolute() && executable(p))
        .ok_or_else(|| {
            bad(
                format!("{program} was not found on PATH"),
                "pass the program's absolute path",
            )
        })
}

/// The arguments of a `run`.
#[derive(Debug)]
pub struct RunSpec {
    /// Program and arguments.
    pub command: Vec<String>,
    /// Working directory (absolute), else this process's.
    pub cwd: Option<PathBuf>,
    /// NAME → `op://` reference (or any value; references inside are resolved).
    pub env: BTreeMap<String, String>,
    /// dotenv files, later ones win; `env` wins over them.
    pub env_files: Vec<PathBuf>,
    /// Seconds before the process group is killed.
    pub timeout_s: u64,
    /// The account.
    pub account: Option<String>,
}

/// What a `run` returns: no value, masked output.
#[derive(Debug, Serialize)]
pub struct RunResult {
    /// The program that ran.
    pub program: String,
    /// Exit code (128+N when killed by signal N).
    pub exit_code: i32,
    /// The timeout killed it.
    pub timed_out: bool,
    /// stdout, masked.
    pub stdout: String,
    /// stderr, masked.
    pub stderr: String,
    /// Notes (truncation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// How many references were resolved into the environment.
    pub references: usize,
}

/// Run a command with references resolved into its environment only.
pub async fn run(
    daemon: &DaemonClient,
    via: &Via,
    roots: &crate::roots::Roots,
    spec: RunSpec,
) -> Result<RunResult, ErrorBody> {
    let Some(program) = spec.command.first() else {
        return Err(bad(
            "command is empty",
            "pass the program and its arguments as an array",
        ));
    };
    let cwd = match &spec.cwd {
        Some(c) if c.is_absolute() && c.is_dir() => c.clone(),
        Some(c) => {
            return Err(bad(
                format!("cwd {} is not an absolute directory", c.display()),
                "pass an absolute directory",
            ));
        }
        None => std::env::current_dir().map_err(|e| {
            ErrorBody::new(ErrorCode::Internal, format!("no working directory: {e}"))
        })?,
    };
    let cwd = roots.check("cwd", &cwd, true)?;
    let min_encoded = std::env::var(secret_ref::mask::ENV_MIN_ENCODED).ok();
    let forms = secret_ref::mask::run_forms(min_encoded.as_deref()).map_err(|e| {
        bad(
            e.to_string(),
            "set it to a whole number such as 8, or unset it",
        )
    })?;
    let exe = find_program(program, &cwd)?;
    // Environment: ours, then env files in order, then the tool's map.
    let mut parsed: Vec<Vec<(String, String)>> = Vec::new();
    for f in &spec.env_files {
        let f = if f.is_absolute() {
            f.clone()
        } else {
            cwd.join(f)
        };
        let f = roots.check("env file", &f, true)?;
        let text = Zeroizing::new(std::fs::read_to_string(&f).map_err(|e| {
            bad(
                format!("cannot read env file {}: {e}", f.display()),
                "check the path",
            )
        })?);
        let vars = secret_ref::run_env::parse_env_file(&text, &parsed, |k| std::env::var(k).ok())
            .map_err(|e| bad(format!("env file {}: {e}", f.display()), "fix the file"))?;
        parsed.push(vars);
    }
    parsed.push(
        spec.env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    for (k, _) in parsed.last().into_iter().flatten() {
        if !secret_ref::vars::is_valid_name(k) {
            return Err(bad(
                format!("{k:?} is not a valid environment variable name"),
                "use letters, digits and underscores",
            ));
        }
    }
    let env = secret_ref::run_env::RunEnv::new(secret_ref::envfile::merge(
        std::env::vars().collect::<Vec<_>>(),
        &parsed,
    ));
    let refs = env.refs().to_vec();
    // Ask the daemon even with no references: it decides whether this program may run.
    let values = resolve(
        daemon,
        via,
        spec.account.clone(),
        refs,
        ResolvePurpose::Run,
        Some(exe.display().to_string()),
        false,
    )
    .await?;
    let env = env
        .render(|r| values.iter().find(|(k, _)| k == r).map(|(_, v)| v.as_str()))
        .map_err(|e| bad(e.to_string(), "check the reference"))?;
    let secrets: Vec<Zeroizing<Vec<u8>>> = values
        .iter()
        .map(|(_, v)| Zeroizing::new(v.as_bytes().to_vec()))
        .collect();
    let references = values.len();
    drop(values);

    let mut cmd = tokio::process::Command::new(&exe);
    cmd.args(&spec.command[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(&cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        ErrorBody::new(
            ErrorCode::OpFailed,
            format!("cannot start {}: {e}", exe.display()),
        )
        .with_fix("check the command")
    })?;
    drop(cmd);
    drop(env);
    let pgid = child.id().map(|p| Pid::from_raw(p as i32));
    // If this call is cancelled (the MCP client gave up), the whole group dies with it.
    let group = GroupGuard(pgid);
    // The same forms `op-session run` masks by default (base64, hex, percent, JSON…).
    let masker = || Masker::with_forms(secrets.iter().map(|s| s.as_slice()), forms);
    let out = child.stdout.take().map(|r| {
        let m = masker();
        tokio::spawn(pump(r, m))
    });
    let err = child.stderr.take().map(|r| {
        let m = masker();
        tokio::spawn(pump(r, m))
    });
    drop(secrets);
    let timeout = Duration::from_secs(spec.timeout_s.clamp(1, MAX_TIMEOUT_S));
    let (status, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(s) => (s.ok(), false),
        Err(_) => {
            if let Some(pg) = pgid {
                let _ = killpg(pg, Signal::SIGTERM);
            }
            let s = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
                Ok(s) => s.ok(),
                Err(_) => {
                    if let Some(pg) = pgid {
                        let _ = killpg(pg, Signal::SIGKILL);
                    }
                    child.wait().await.ok()
                }
            };
            (s, true)
        }
    };
    // Grandchildren may still hold the pipes open: end the group before collecting output.
    drop(group);
    let collect = |t: Option<tokio::task::JoinHandle<(Vec<u8>, bool)>>| async move {
        match t {
            Some(t) => t.await.unwrap_or_default(),
            None => (Vec::new(), false),
        }
    };
    let (stdout, out_cut) = collect(out).await;
    let (stderr, err_cut) = collect(err).await;
    let mut notes = Vec::new();
    for (cut, name) in [(out_cut, "stdout"), (err_cut, "stderr")] {
        if cut {
            notes.push(format!(
                "{name} was cut at {} MiB; the rest was discarded",
                MAX_STREAM / (1024 * 1024)
            ));
        }
    }
    if timed_out {
        notes.push(format!(
            "the command ran past {}s and its process group was killed",
            timeout.as_secs()
        ));
    }
    let exit_code = status
        .and_then(op_session_protocol::exit::child_status)
        .unwrap_or(-1);
    Ok(RunResult {
        program: exe.display().to_string(),
        exit_code,
        timed_out,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        notes,
        references,
    })
}

/// Kills a process group when dropped.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pg) = self.0.take() {
            let _ = killpg(pg, Signal::SIGKILL);
        }
    }
}

/// Read a stream to its end, masking, keeping at most [`MAX_STREAM`] masked bytes (the rest
/// is read and dropped so the child never blocks on a full pipe). Returns the bytes and
/// whether they were cut.
async fn pump<R: tokio::io::AsyncRead + Unpin>(mut r: R, mut masker: Masker) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut cut = false;
    let mut buf = Zeroizing::new(vec![0u8; 16 * 1024]);
    let keep = |bytes: Vec<u8>, kept: &mut Vec<u8>, cut: &mut bool| {
        let room = MAX_STREAM.saturating_sub(kept.len());
        if bytes.len() > room {
            *cut = true;
        }
        kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
    };
    loop {
        match r.read(&mut buf[..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let masked = masker.push(&buf[..n]);
                keep(masked, &mut kept, &mut cut);
            }
        }
    }
    let rest = masker.finish();
    keep(rest, &mut kept, &mut cut);
    (kept, cut)
}

/// What `inject` returns: never the content.
#[derive(Debug, Serialize)]
pub struct InjectResult {
    /// The file written.
    pub path: String,
    /// How many references were filled in.
    pub references: usize,
}

/// Render `template` into `output` (0600, atomic).
pub async fn inject(
    daemon: &DaemonClient,
    via: &Via,
    account: Option<String>,
    roots: &crate::roots::Roots,
    template: &Path,
    output: &Path,
    overwrite: bool,
) -> Result<InjectResult, ErrorBody> {
    for (what, p) in [("template_path", template), ("output_path", output)] {
        if !p.is_absolute() {
            return Err(bad(
                format!("{what} {} is not absolute", p.display()),
                "pass absolute paths",
            ));
        }
    }
    let template = &roots.check("template_path", template, true)?;
    let output = &roots.check("output_path", output, false)?;
    let meta = std::fs::metadata(template).map_err(|e| {
        bad(
            format!("cannot read {}: {e}", template.display()),
            "check the path",
        )
    })?;
    if meta.len() > MAX_TEMPLATE {
        return Err(bad(
            format!("{} is larger than 1 MiB", template.display()),
            "inject smaller templates",
        ));
    }
    let text = Zeroizing::new(std::fs::read_to_string(template).map_err(|e| {
        bad(
            format!("cannot read {}: {e}", template.display()),
            "check the path",
        )
    })?);
    if !overwrite && output.exists() {
        return Err(bad(
            format!("{} already exists", output.display()),
            "pass overwrite: true to replace it",
        ));
    }
    let lookup = secret_ref::vars::case_insensitive_lookup(std::env::vars());
    let expanded = Zeroizing::new(secret_ref::template::expand_vars(&text, lookup));
    let segments = secret_ref::template::parse(&expanded).map_err(|e| {
        bad(
            format!("template {}: {e}", template.display()),
            "fix the template",
        )
    })?;
    let refs: Vec<String> = secret_ref::template::references(&segments)
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut distinct = refs.clone();
    distinct.sort();
    distinct.dedup();
    let values = if refs.is_empty() {
        Vec::new()
    } else {
        resolve(
            daemon,
            via,
            account,
            refs,
            ResolvePurpose::Inject,
            None,
            false,
        )
        .await?
    };
    let rendered = Zeroizing::new(
        secret_ref::template::render(&segments, |r| {
            values.iter().find(|(k, _)| k == r).map(|(_, v)| v.as_str())
        })
        .map_err(|e| bad(e.to_string(), "check the template"))?,
    );
    drop(values);
    op_session_paths::write_atomic(output, rendered.as_bytes(), Some(0o600)).map_err(|e| {
        bad(
            format!("cannot write {}: {e}", output.display()),
            "check the directory",
        )
    })?;
    Ok(InjectResult {
        path: output.display().to_string(),
        references: distinct.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pump_masks_across_chunks_and_caps() {
        let secret = b"sk_test_4eC39HqLyjWDarjtT1zdp7dc".to_vec();
        let mut data = b"key=".to_vec();
        data.extend_from_slice(&secret);
        data.extend(std::iter::repeat_n(b'x', MAX_STREAM + 10));
        let (out, cut) = pump(&data[..], Masker::new([secret.as_slice()])).await;
        assert!(cut);
        assert_eq!(out.len(), MAX_STREAM);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("key=<concealed by 1Password>"),
            "{}",
            &text[..40]
        );
    }
}

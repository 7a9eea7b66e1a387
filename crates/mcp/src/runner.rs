//! The `run` and `inject` tools: values go into a child's environment or a 0600 file, never
//! into a tool result.
//!
//! The pipeline itself (the environment with env files and the tool's `env` map, templates,
//! masking every encoded form, the child's process group killed at the timeout) is
//! `run_inject`'s, shared with `op-session run` and `op-session inject`.
//!
//! `run` owns: finding the program (its absolute path is what the daemon checks against
//! `[mcp] run_allow`), keeping its working directory and env files under the roots, capping
//! each stream at [`MAX_STREAM`] with a note, and the tool's answer.
//!
//! `inject` owns reading the template under the roots, writing the result atomically with mode
//! 0600 (a temporary file beside the target, renamed into place) and returning only the path and
//! a count.
//!
//! Never logs or returns a value; resolved values live in `Zeroizing` buffers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use op_session_protocol::{
    ErrorBody, ErrorCode, RelayedResolve, Request, ResolvePurpose, ResolveRequest, Response, Via,
};
use run_inject::group::Group;
use run_inject::mask::{Capped, collect};
use run_inject::{EnvPlan, Masking, TemplatePlan, Values};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::daemon::DaemonClient;

/// Most bytes of stdout (and, separately, of stderr) a `run` returns.
pub const MAX_STREAM: usize = 1024 * 1024;
/// The `run` timeout when the call names none.
pub const DEFAULT_TIMEOUT_S: u64 = 60;
/// The longest timeout a call may ask for.
pub const MAX_TIMEOUT_S: u64 = 600;
/// Largest template `inject` reads.
const MAX_TEMPLATE: u64 = 1024 * 1024;

fn bad(message: impl Into<String>, fix: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadRequest, message).with_fix(fix)
}

/// A pipeline error as a tool error: the call asked for something that cannot be done.
fn pipeline_error(e: run_inject::Error) -> ErrorBody {
    bad(e.to_string(), e.fix())
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
    // The same forms `op-session run` masks by default (base64, hex, percent, JSON…), always.
    let forms = Masking::Encoded(None)
        .forms()
        .map_err(pipeline_error)?
        .unwrap_or_default();
    let exe = find_program(program, &cwd)?;
    // Environment: ours, then env files in order (each under the roots), then the tool's map.
    let mut files = Vec::with_capacity(spec.env_files.len());
    for f in &spec.env_files {
        let f = if f.is_absolute() {
            f.clone()
        } else {
            cwd.join(f)
        };
        files.push(roots.check("env file", &f, true)?);
    }
    let plan = EnvPlan::build(
        std::env::vars().collect(),
        &files,
        spec.env.into_iter().collect(),
    )
    .map_err(pipeline_error)?;
    // Ask the daemon even with no references: it decides whether this program may run.
    let values = Values::new(
        resolve(
            daemon,
            via,
            spec.account.clone(),
            plan.refs().to_vec(),
            ResolvePurpose::Run,
            Some(exe.display().to_string()),
            false,
        )
        .await?,
    );
    let env = plan.render(&values).map_err(pipeline_error)?;
    let secrets = values.secrets();
    let references = values.len();
    drop(values);

    let mut cmd = tokio::process::Command::new(&exe);
    cmd.args(&spec.command[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(&cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // In its own process group: if this call is cancelled (the MCP client gave up), the whole
    // group dies with it.
    let mut group = Group::spawn(&mut cmd).map_err(|e| {
        ErrorBody::new(
            ErrorCode::OpFailed,
            format!("cannot start {}: {e}", exe.display()),
        )
        .with_fix("check the command")
    })?;
    drop(cmd);
    drop(env);
    let out = group.child.stdout.take().map(|r| {
        let m = secrets.masker(forms);
        tokio::spawn(collect(r, m, MAX_STREAM))
    });
    let err = group.child.stderr.take().map(|r| {
        let m = secrets.masker(forms);
        tokio::spawn(collect(r, m, MAX_STREAM))
    });
    drop(secrets);
    let timeout = Duration::from_secs(spec.timeout_s.clamp(1, MAX_TIMEOUT_S));
    let ended = group.wait(timeout).await;
    // Grandchildren may still hold the pipes open: end the group before collecting output.
    drop(group);
    let gather = |t: Option<tokio::task::JoinHandle<Capped>>| async move {
        match t {
            Some(t) => t.await.unwrap_or_default(),
            None => Capped::default(),
        }
    };
    let stdout = gather(out).await;
    let stderr = gather(err).await;
    let mut notes = Vec::new();
    for (cut, name) in [(stdout.cut, "stdout"), (stderr.cut, "stderr")] {
        if cut {
            notes.push(format!(
                "{name} was cut at {} MiB; the rest was discarded",
                MAX_STREAM / (1024 * 1024)
            ));
        }
    }
    if ended.timed_out {
        notes.push(format!(
            "the command ran past {}s and its process group was killed",
            timeout.as_secs()
        ));
    }
    let exit_code = ended
        .status
        .and_then(op_session_protocol::exit::child_status)
        .unwrap_or(-1);
    Ok(RunResult {
        program: exe.display().to_string(),
        exit_code,
        timed_out: ended.timed_out,
        stdout: String::from_utf8_lossy(&stdout.bytes).into_owned(),
        stderr: String::from_utf8_lossy(&stderr.bytes).into_owned(),
        notes,
        references,
    })
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
    let plan = TemplatePlan::new(&text, std::env::vars()).map_err(|e| match e {
        run_inject::Error::Template(e) => bad(
            format!("template {}: {e}", template.display()),
            "fix the template",
        ),
        e => pipeline_error(e),
    })?;
    let values = if plan.refs().is_empty() {
        Values::new(Vec::new())
    } else {
        Values::new(
            resolve(
                daemon,
                via,
                account,
                plan.refs().to_vec(),
                ResolvePurpose::Inject,
                None,
                false,
            )
            .await?,
        )
    };
    let rendered = plan.render(&values).map_err(pipeline_error)?;
    drop(values);
    op_session_paths::write_atomic(output, rendered.as_bytes(), Some(0o600)).map_err(|e| {
        bad(
            format!("cannot write {}: {e}", output.display()),
            "check the directory",
        )
    })?;
    Ok(InjectResult {
        path: output.display().to_string(),
        references: plan.refs().len(),
    })
}

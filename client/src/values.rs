//! `op-session read` and `op-session inject`: resolve references through the daemon and
//! print or write them with `op read` / `op inject` semantics.
//!
//! Owns writing secret files atomically (a temporary file beside the target, created 0600 or
//! `--file-mode`, renamed into place; nothing partial is ever left). Values live in
//! `Zeroizing` buffers here; they are never logged.

use std::io::Read;
use std::path::Path;

use op_grammar::FileMode;
use op_session_protocol::{Request, ResolvePurpose, ResolveRequest, Response, exit};
use run_inject::{TemplatePlan, Values};
use zeroize::Zeroizing;

use crate::cli::{InjectArgs, ReadArgs, account_or_env};
use crate::conn::{Target, request};
use crate::error::{Failure, Result};
use crate::status::unexpected_response;

/// Resolve references; values in request order.
pub fn resolve(
    t: &Target,
    account: Option<String>,
    refs: Vec<String>,
    no_cache: bool,
    purpose: ResolvePurpose,
) -> Result<Vec<(String, Zeroizing<String>)>> {
    let req = Request::Resolve(ResolveRequest {
        account,
        refs,
        no_cache,
        purpose,
        ..ResolveRequest::default()
    });
    match request(t, &req)? {
        Response::Values(v) => Ok(v.into_pairs()),
        Response::Error(e) => Err(e.into()),
        other => Err(unexpected_response(&other)),
    }
}

/// Write `data` to `path` atomically with `mode`; refuse to replace an existing file unless
/// `force`.
pub fn write_secret_file(path: &Path, data: &[u8], mode: FileMode, force: bool) -> Result<()> {
    if !force && path.exists() {
        return Err(Failure::new(
            exit::FAILED,
            format!("{} already exists", path.display()),
            "pass -f/--force to overwrite it",
        ));
    }
    op_session_paths::write_atomic(path, data, Some(mode.bits())).map_err(|e| {
        Failure::new(
            exit::FAILED,
            format!("cannot write {}: {e}", path.display()),
            "check the directory and its permissions",
        )
    })
}

/// `read`.
pub fn read(t: &Target, a: ReadArgs) -> Result<i32> {
    let account = account_or_env(a.account.clone());
    let values = resolve(t, account, a.refs.clone(), a.no_cache, ResolvePurpose::Read)?;
    let mut out = Zeroizing::new(Vec::new());
    if a.json {
        let mut map = serde_json::Map::new();
        for (r, v) in &values {
            map.insert(r.clone(), serde_json::Value::String(v.to_string()));
        }
        let text = Zeroizing::new(serde_json::Value::Object(map).to_string());
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
        // Wipe the map's copies too.
        drop(text);
    } else if values.len() == 1 {
        out.extend_from_slice(values[0].1.as_bytes());
        if !a.no_newline {
            out.push(b'\n');
        }
    } else {
        for (r, v) in &values {
            if v.contains('\n') {
                return Err(Failure::usage(
                    format!(
                        "the value of {r} holds a newline, so one value per line would be ambiguous"
                    ),
                    "read it on its own, or use --json",
                ));
            }
        }
        for (i, (_, v)) in values.iter().enumerate() {
            out.extend_from_slice(v.as_bytes());
            if i + 1 < values.len() || !a.no_newline {
                out.push(b'\n');
            }
        }
    }
    if let Some(path) = &a.out.out_file {
        write_secret_file(path, &out, a.out.file_mode, a.out.force)?;
        outln!("{}", path.display());
        return Ok(exit::OK);
    }
    crate::write_stdout_bytes(&out);
    Ok(exit::OK)
}

/// Render a template through the shared pipeline (`run_inject::TemplatePlan`): expand variables
/// from the environment, resolve its references in one request, substitute. Nothing is returned unless every reference resolved.
pub fn render_template(
    t: &Target,
    account: Option<String>,
    template: &str,
    purpose: ResolvePurpose,
    no_cache: bool,
) -> Result<Zeroizing<String>> {
    let plan = TemplatePlan::new(template, std::env::vars()).map_err(|e| match e {
        run_inject::Error::Template(e) => Failure {
            code: exit::FAILED,
            message: format!("[ERROR] {} {e}", op_timestamp()),
            fix: None,
            verbatim: true,
            reach: crate::error::Reach::Other,
        },
        e => crate::run::pipeline_failure(e),
    })?;
    let values = if plan.refs().is_empty() {
        Values::new(Vec::new())
    } else {
        Values::new(resolve(
            t,
            account,
            plan.refs().to_vec(),
            no_cache,
            purpose,
        )?)
    };
    plan.render(&values).map_err(crate::run::pipeline_failure)
}

/// `inject`.
pub fn inject(t: &Target, a: InjectArgs) -> Result<i32> {
    let mut template = Zeroizing::new(String::new());
    match &a.in_file {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                Failure::new(
                    exit::FAILED,
                    format!("cannot read {}: {e}", p.display()),
                    "check the path",
                )
            })?;
            template.push_str(&text);
        }
        None => {
            std::io::stdin()
                .read_to_string(&mut template)
                .map_err(|e| {
                    Failure::new(
                        exit::FAILED,
                        format!("cannot read the template from stdin: {e}"),
                        "pipe a template in",
                    )
                })?;
        }
    }
    let rendered = render_template(
        t,
        account_or_env(a.account.clone()),
        &template,
        ResolvePurpose::Inject,
        false,
    )?;
    match &a.out.out_file {
        Some(path) => {
            write_secret_file(path, rendered.as_bytes(), a.out.file_mode, a.out.force)?;
            outln!("{}", path.display());
        }
        None => crate::write_stdout_bytes(rendered.as_bytes()),
    }
    Ok(exit::OK)
}

/// `YYYY/MM/DD HH:MM:SS` in local time, as op prints in its `[ERROR]` lines.
pub fn op_timestamp() -> String {
    jiff::ZonedDateTime::now()
        .strftime("%Y/%m/%d %H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn secret_files_are_atomic_and_0600() {
        let d = std::env::temp_dir().join(format!("ops-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("dir");
        let p = d.join("secret.txt");
        write_secret_file(&p, b"v", FileMode::PRIVATE, false).expect("writes");
        assert_eq!(
            std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        assert!(
            write_secret_file(&p, b"w", FileMode::PRIVATE, false).is_err(),
            "no overwrite without -f"
        );
        write_secret_file(&p, b"w", "0640".parse().expect("octal"), true).expect("forced");
        assert_eq!(std::fs::read(&p).expect("read"), b"w");
        assert_eq!(
            std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(
            std::fs::read_dir(&d).expect("ls").count(),
            1,
            "no temp files left"
        );
        std::fs::remove_dir_all(&d).expect("cleanup");
    }

    #[test]
    fn the_timestamp_has_ops_shape() {
        let t = op_timestamp();
        let shape: String = t
            .chars()
            .map(|c| if c.is_ascii_digit() { 'd' } else { c })
            .collect();
        assert_eq!(shape, "dddd/dd/dd dd:dd:dd", "{t}");
    }
}

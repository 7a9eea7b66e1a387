//! Where the `inject` and `run` tools may read and write: under `[mcp] roots` (default: the
//! directory `op-session mcp` was started in), never through a symlink, never inside
//! op-session's own config, state or runtime directories.
//!
//! Why: an MCP client that may write only its project must not be able to overwrite the
//! op-session config (and turn on `reveal` and `run_allow = ["*"]`) or plant a file anywhere
//! the person can write, with `inject`'s `overwrite: true`; nor read a template or env file
//! from outside the project. Every refusal names the rule.

use std::path::{Component, Path, PathBuf};

use op_session_protocol::{ErrorBody, ErrorCode};

/// The directories the tools may use.
#[derive(Debug, Clone)]
pub struct Roots {
    /// Canonical root directories.
    roots: Vec<PathBuf>,
    /// Canonical directories that are never used, even under a root.
    forbidden: Vec<PathBuf>,
}

fn refused(message: String) -> ErrorBody {
    ErrorBody::new(ErrorCode::PolicyDenied, message).with_fix(
        "use a path under [mcp] roots in the op-session config (default: the directory \
         `op-session mcp` was started in), not through a symlink, and outside op-session's own \
         config and state directories",
    )
}

/// `p` with `.` and `..` taken out lexically (no filesystem access).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl Roots {
    /// From the daemon's `[mcp] roots` (absolute directories); empty means the directory this
    /// process was started in. Roots that do not exist are left out.
    pub fn new(configured: &[String]) -> Roots {
        let mut dirs: Vec<PathBuf> = configured
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .collect();
        if configured.is_empty()
            && let Ok(cwd) = std::env::current_dir()
        {
            dirs.push(cwd);
        }
        let roots = dirs.iter().filter_map(|d| d.canonicalize().ok()).collect();
        let mut own: Vec<PathBuf> = Vec::new();
        for p in [
            op_session_paths::standard_config_path().ok(),
            op_session_paths::config_path(None).ok(),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(d) = p.parent() {
                own.push(d.to_path_buf());
            }
        }
        own.extend(op_session_paths::state_dir().ok());
        if let Some(d) = op_session_paths::socket_path(None).parent() {
            own.push(d.to_path_buf());
        }
        let forbidden = own
            .into_iter()
            .map(|d| d.canonicalize().unwrap_or(normalize(&d)))
            .collect();
        Roots { roots, forbidden }
    }

    /// Check a path `what` names (`output_path`, `cwd`…); `must_exist` for inputs. Returns the
    /// path to use.
    pub fn check(&self, what: &str, p: &Path, must_exist: bool) -> Result<PathBuf, ErrorBody> {
        if !p.is_absolute() {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                format!("{what} {} is not absolute", p.display()),
            )
            .with_fix("pass absolute paths"));
        }
        let lexical = normalize(p);
        // No symlink anywhere: the file itself (if it exists) and every directory above it.
        if let Ok(m) = std::fs::symlink_metadata(&lexical)
            && m.file_type().is_symlink()
        {
            return Err(refused(format!(
                "{what} {} is a symlink (rule: [mcp] roots, never a symlink)",
                p.display()
            )));
        }
        let real = match lexical.canonicalize() {
            Ok(r) => r,
            Err(_) if !must_exist => {
                let parent = lexical.parent().unwrap_or(Path::new("/"));
                let name = lexical.file_name().map(PathBuf::from).unwrap_or_default();
                match parent.canonicalize() {
                    Ok(d) => d.join(name),
                    Err(e) => {
                        return Err(ErrorBody::new(
                            ErrorCode::BadRequest,
                            format!("cannot use {what} {}: {e}", p.display()),
                        )
                        .with_fix("check the path"));
                    }
                }
            }
            Err(e) => {
                return Err(ErrorBody::new(
                    ErrorCode::BadRequest,
                    format!("cannot read {what} {}: {e}", p.display()),
                )
                .with_fix("check the path"));
            }
        };
        if real != lexical {
            return Err(refused(format!(
                "{what} {} goes through a symlink (to {}) (rule: [mcp] roots, never a symlink)",
                p.display(),
                real.display()
            )));
        }
        if let Some(d) = self.forbidden.iter().find(|d| real.starts_with(d)) {
            return Err(refused(format!(
                "{what} {} is inside op-session's own directory {} (rule: [mcp] roots)",
                p.display(),
                d.display()
            )));
        }
        if !self.roots.iter().any(|r| real.starts_with(r)) {
            let list: Vec<String> = self.roots.iter().map(|r| r.display().to_string()).collect();
            return Err(refused(format!(
                "{what} {} is outside the MCP roots {list:?} (rule: [mcp] roots)",
                p.display()
            )));
        }
        Ok(real)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_paths_under_a_root_pass() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().canonicalize().expect("canonical").join("proj");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("t.tpl"), "x").expect("write");
        let outside = t.path().canonicalize().expect("canonical").join("out");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::os::unix::fs::symlink(&outside, root.join("link")).expect("symlink");
        std::os::unix::fs::symlink(outside.join("f"), root.join("flink")).expect("symlink");
        let r = Roots::new(&[root.display().to_string()]);
        assert!(r.check("template_path", &root.join("t.tpl"), true).is_ok());
        assert!(r.check("output_path", &root.join("sub/new"), false).is_ok());
        assert!(
            r.check("output_path", &root.join("../out/x"), false)
                .is_err()
        );
        assert!(r.check("output_path", &outside.join("x"), false).is_err());
        assert!(r.check("output_path", &root.join("link/x"), false).is_err());
        assert!(r.check("output_path", &root.join("flink"), false).is_err());
        assert!(r.check("output_path", Path::new("rel"), false).is_err());
        let e = r
            .check("output_path", &outside.join("x"), false)
            .expect_err("outside");
        assert!(e.message.contains("[mcp] roots"), "{}", e.message);
    }
}

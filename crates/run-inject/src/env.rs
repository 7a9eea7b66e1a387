//! The environment a `run` child gets: the shell's variables, then each env file in order
//! (`$VAR` in a file reads the files before it, then the shell), then the caller's own map
//! (the MCP tool's `env`), a later layer beating an earlier one (docs/op-behaviour.md §4.2).
//!
//! Owns reading the env files (zeroized once parsed) and checking the caller's own names; which
//! values hold references, and rendering them, is `secret_ref::run_env`'s rule. A front that
//! limits where files may be read (the MCP server's roots) checks the paths before calling.

use std::path::PathBuf;

use secret_ref::run_env::{RunEnv, parse_env_file};
use zeroize::Zeroizing;

use crate::{Error, Values};

/// An environment with the variables holding references picked out, not yet resolved.
#[derive(Debug)]
pub struct EnvPlan {
    env: RunEnv,
}

impl EnvPlan {
    /// Layer `files` (read in order) and then `own` over `shell`.
    ///
    /// # Errors
    ///
    /// A file that cannot be read or has a malformed line; a name in `own` that is not a
    /// variable name.
    pub fn build(
        shell: Vec<(String, String)>,
        files: &[PathBuf],
        own: Vec<(String, String)>,
    ) -> Result<EnvPlan, Error> {
        if let Some((bad, _)) = own
            .iter()
            .find(|(k, _)| !secret_ref::vars::is_valid_name(k))
        {
            return Err(Error::BadName(bad.clone()));
        }
        let mut layers: Vec<Vec<(String, String)>> = Vec::with_capacity(files.len() + 1);
        for path in files {
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
                Error::ReadEnvFile {
                    path: path.clone(),
                    source,
                }
            })?);
            let shell_var = |k: &str| shell.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let vars =
                parse_env_file(&text, &layers, shell_var).map_err(|source| Error::EnvFile {
                    path: path.clone(),
                    source,
                })?;
            layers.push(vars);
        }
        if !own.is_empty() {
            layers.push(own);
        }
        Ok(EnvPlan {
            env: RunEnv::new(secret_ref::envfile::merge(shell, &layers)),
        })
    }

    /// The distinct references to resolve, in first-seen order.
    #[must_use]
    pub fn refs(&self) -> &[String] {
        self.env.refs()
    }

    /// The environment with every reference replaced by its value. The result holds values:
    /// drop it as soon as the child has it.
    ///
    /// # Errors
    ///
    /// A reference `values` has no value for.
    pub fn render(self, values: &Values) -> Result<Vec<(String, String)>, Error> {
        self.env.render(|r| values.get(r)).map_err(Error::Render)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn files_beat_the_shell_and_the_callers_map_beats_the_files() {
        let dir = std::env::temp_dir().join(format!("run-inject-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let a = dir.join("a.env");
        let b = dir.join("b.env");
        std::fs::write(&a, "A=op://V/a/f\nB=from-a\nHOME2=${HOME}/x\n").expect("a");
        std::fs::write(&b, "B=${B}-then-b\nC=file\n").expect("b");
        let plan = EnvPlan::build(
            pairs(&[("HOME", "/h"), ("A", "shell"), ("C", "shell")]),
            &[a, b],
            pairs(&[("C", "op://V/c/f")]),
        )
        .expect("plan");
        assert_eq!(plan.refs(), ["op://V/a/f", "op://V/c/f"]);
        let values = Values::new(vec![
            ("op://V/a/f".into(), Zeroizing::new("AV".into())),
            ("op://V/c/f".into(), Zeroizing::new("CV".into())),
        ]);
        let env = plan.render(&values).expect("renders");
        assert_eq!(
            env,
            pairs(&[
                ("HOME", "/h"),
                ("A", "AV"),
                ("C", "CV"),
                ("B", "from-a-then-b"),
                ("HOME2", "/h/x"),
            ])
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn bad_names_and_unreadable_files_are_refused() {
        assert!(matches!(
            EnvPlan::build(vec![], &[], pairs(&[("1X", "v")])),
            Err(Error::BadName(n)) if n == "1X"
        ));
        let missing = PathBuf::from("/nonexistent/run-inject.env");
        let e = EnvPlan::build(vec![], &[missing], vec![]).expect_err("missing");
        assert!(
            e.to_string()
                .starts_with("cannot read env file /nonexistent"),
            "{e}"
        );
        assert_eq!(e.fix(), "check the path");
    }
}

//! Which values of an `op run` environment hold secret references, and the environment with
//! them resolved: `op-session run` and the MCP server's `run` tool share this rule.
//!
//! A value that is exactly one reference (after trimming; it may contain spaces, as in
//! `op://V/My Item/f`) is resolved whole; any other value holding `op://` is read as a
//! template (`postgres://{{ op://V/db/user }}@…`), and one that does not parse as a template
//! passes unchanged. See docs/op-behaviour.md §4.2. No I/O: the caller resolves the values.

use crate::envfile::{self, EnvFileError};
use crate::template::{self, Segment, TemplateError};

/// An environment, with the variables whose values hold references picked out.
#[derive(Debug)]
pub struct RunEnv {
    /// Every variable, in order, before resolution.
    env: Vec<(String, String)>,
    /// The variables that hold references: their index in `env` and their parsed value.
    templated: Vec<(usize, Vec<Segment>)>,
    /// Each distinct reference, in first-seen order.
    refs: Vec<String>,
}

/// The references a value holds (as segments to render), or `None` if it holds none.
pub fn references_in(value: &str) -> Option<Vec<Segment>> {
    if !value.contains("op://") {
        return None;
    }
    let whole = value.trim();
    let segs = if crate::reference::parse(whole).is_ok() {
        vec![Segment::Ref(whole.to_string())]
    } else {
        template::parse(value).ok()?
    };
    (!template::references(&segs).is_empty()).then_some(segs)
}

/// Parse the next of several `--env-file`s: `$VAR` in it reads the files parsed before it
/// (`earlier`, the last one first), then `shell` (normally the process environment).
///
/// # Errors
///
/// The file's first malformed line, as [`envfile::parse`] says.
pub fn parse_env_file(
    text: &str,
    earlier: &[Vec<(String, String)>],
    shell: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, EnvFileError> {
    let lookup = |k: &str| {
        earlier
            .iter()
            .rev()
            .flat_map(|v| v.iter())
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .or_else(|| shell(k))
    };
    envfile::parse(text, lookup)
}

impl RunEnv {
    /// Pick out the variables of `env` that hold references.
    pub fn new(env: Vec<(String, String)>) -> RunEnv {
        let mut templated = Vec::new();
        let mut refs: Vec<String> = Vec::new();
        for (i, (_, v)) in env.iter().enumerate() {
            if let Some(segs) = references_in(v) {
                for r in template::references(&segs) {
                    if !refs.iter().any(|x| x == r) {
                        refs.push(r.to_string());
                    }
                }
                templated.push((i, segs));
            }
        }
        RunEnv {
            env,
            templated,
            refs,
        }
    }

    /// The distinct references to resolve, in first-seen order.
    pub fn refs(&self) -> &[String] {
        &self.refs
    }

    /// The environment with every reference replaced by its value from `value`.
    pub fn render<'v>(
        self,
        value: impl Fn(&str) -> Option<&'v str>,
    ) -> Result<Vec<(String, String)>, TemplateError> {
        let mut env = self.env;
        for (i, segs) in &self.templated {
            env[*i].1 = template::render(segs, &value)?;
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_references_and_templates_are_resolved_and_the_rest_passes() {
        let env = vec![
            ("A".to_string(), " op://V/My Item/f ".to_string()),
            (
                "B".to_string(),
                "x={{ op://V/db/user }}@{{ op://V/My Item/f }}".to_string(),
            ),
            ("C".to_string(), "plain".to_string()),
            ("D".to_string(), "x {{ op://V/a/b".to_string()),
        ];
        let run = RunEnv::new(env);
        assert_eq!(run.refs(), ["op://V/My Item/f", "op://V/db/user"]);
        let env = run
            .render(|r| Some(if r.ends_with("/f") { "F" } else { "U" }))
            .expect("renders");
        assert_eq!(env[0].1, "F");
        assert_eq!(env[1].1, "x=U@F");
        assert_eq!(env[2].1, "plain");
        assert_eq!(env[3].1, "x {{ op://V/a/b");
    }
}

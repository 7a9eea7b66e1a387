//! An `op inject` template through the pipeline: `$VAR`s expanded from the environment (names
//! matched case-insensitively, as `op` does), the template parsed, its references picked out,
//! and after resolution rendered whole or not at all (docs/op-behaviour.md §4.3).
//!
//! Reading the template and writing the result stay with the fronts (stdin or a file in the
//! client, a file under the MCP roots in the server); both write through
//! `op_session_paths::write_atomic`.

use secret_ref::template::Segment;
use zeroize::Zeroizing;

use crate::{Error, Values};

/// A parsed template whose references are not yet resolved.
#[derive(Debug)]
pub struct TemplatePlan {
    segments: Vec<Segment>,
    refs: Vec<String>,
}

impl TemplatePlan {
    /// Expand `template`'s variables from `env` and parse it.
    ///
    /// # Errors
    ///
    /// [`Error::Template`] when the template does not parse.
    pub fn new(
        template: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<TemplatePlan, Error> {
        let lookup = secret_ref::vars::case_insensitive_lookup(env);
        let expanded = Zeroizing::new(secret_ref::template::expand_vars(template, lookup));
        let segments = secret_ref::template::parse(&expanded).map_err(Error::Template)?;
        let refs = secret_ref::template::references(&segments)
            .into_iter()
            .map(str::to_string)
            .collect();
        Ok(TemplatePlan { segments, refs })
    }

    /// The distinct references to resolve, in first-seen order.
    #[must_use]
    pub fn refs(&self) -> &[String] {
        &self.refs
    }

    /// The rendered text (it holds values).
    ///
    /// # Errors
    ///
    /// A reference `values` has no value for; nothing partial is returned.
    pub fn render(&self, values: &Values) -> Result<Zeroizing<String>, Error> {
        secret_ref::template::render(&self.segments, |r| values.get(r))
            .map(Zeroizing::new)
            .map_err(Error::Render)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_then_references_resolve() {
        let plan = TemplatePlan::new(
            "user={{ op://V/$item/user }} pw={{ op://V/db/pw }} again={{ op://V/db/pw }}",
            [("ITEM".to_string(), "db".to_string())],
        )
        .expect("parses");
        assert_eq!(plan.refs(), ["op://V/db/user", "op://V/db/pw"]);
        let values = Values::new(vec![
            ("op://V/db/user".into(), Zeroizing::new("u".into())),
            ("op://V/db/pw".into(), Zeroizing::new("p".into())),
        ]);
        assert_eq!(
            plan.render(&values).expect("renders").as_str(),
            "user=u pw=p again=p"
        );
        let partial = Values::new(vec![("op://V/db/user".into(), Zeroizing::new("u".into()))]);
        assert!(matches!(plan.render(&partial), Err(Error::Render(_))));
    }

    #[test]
    fn a_broken_template_is_refused() {
        assert!(matches!(
            TemplatePlan::new("x {{ op://V/i/f", []),
            Err(Error::Template(_))
        ));
    }
}

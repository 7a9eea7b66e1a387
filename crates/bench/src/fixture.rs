//! The data the scenarios read: fake-op's basic fixture, and a copy of it in which the
//! app-integration account (`team.1password.com`) holds the same vaults as `my`, so the
//! agent scenario reads the same five references in token and in app mode.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::world::{TEAM, workspace_root};

/// The five distinct references of the agent scenario, with their values in the fixture.
pub const AGENT_REFS: [(&str, &str); 5] = [
    ("op://Dev/Stripe/key", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"),
    ("op://Dev/GitHub/password", "gh-Pa55word-7Hq2"),
    ("op://Dev/Database/username", "dbadmin"),
    ("op://Prod/Database/password", "prod-db-Secret-991"),
    ("op://Private/Bank/password", "bank-Private-4242"),
];

/// Fixture files, kept in a temporary directory for the whole run.
#[derive(Debug)]
pub struct Fixtures {
    _dir: tempfile::TempDir,
    /// fake-op's basic fixture, as shipped.
    pub basic: PathBuf,
    /// The basic fixture with the app account's vaults replaced by `my`'s.
    pub app: PathBuf,
}

/// Copy the vaults of the account named `from` (shorthand) to the account at `to` (URL).
pub fn share_vaults(fixture: &mut serde_json::Value, from: &str, to: &str) -> Result<()> {
    let accounts = fixture["accounts"]
        .as_array_mut()
        .context("the fixture has no accounts")?;
    let vaults = accounts
        .iter()
        .find(|a| a["shorthand"] == from)
        .map(|a| a["vaults"].clone())
        .with_context(|| format!("the fixture has no account {from}"))?;
    let Some(target) = accounts.iter_mut().find(|a| a["url"] == to) else {
        bail!("the fixture has no account at {to}");
    };
    target["vaults"] = vaults;
    Ok(())
}

impl Fixtures {
    /// Write both fixtures.
    pub fn prepare() -> Result<Fixtures> {
        let source = workspace_root().join("crates/fake-op/fixtures/basic.json");
        let text = std::fs::read_to_string(&source)
            .with_context(|| format!("reading {}", source.display()))?;
        let mut app: serde_json::Value = serde_json::from_str(&text)?;
        share_vaults(&mut app, "my", TEAM)?;
        let dir = tempfile::Builder::new()
            .prefix("ops-bench-fixtures-")
            .tempdir()?;
        let basic = dir.path().join("basic.json");
        std::fs::write(&basic, &text)?;
        let app_path = dir.path().join("app.json");
        std::fs::write(&app_path, serde_json::to_string_pretty(&app)?)?;
        Ok(Fixtures {
            _dir: dir,
            basic,
            app: app_path,
        })
    }

    /// The basic fixture.
    pub fn basic(&self) -> &Path {
        &self.basic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_account_gets_a_copy_of_my_vaults() {
        let mut f = serde_json::json!({"accounts": [
            {"shorthand": "my", "url": "my.1password.com", "vaults": [{"name": "Dev"}]},
            {"url": "team.1password.com", "vaults": []}
        ]});
        share_vaults(&mut f, "my", "team.1password.com").unwrap();
        assert_eq!(f["accounts"][1]["vaults"][0]["name"], "Dev");
        assert!(share_vaults(&mut f, "nobody", "team.1password.com").is_err());
    }
}

//! The arguments of each MCP tool: what a call may carry (unknown fields refused), and, through
//! their doc comments, the JSON Schema every client is shown.

use std::collections::BTreeMap;

use rmcp::schemars::JsonSchema;
use serde::Deserialize;

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(super) struct NoArgs {}

/// Optional account.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(super) struct AccountArgs {
    /// The 1Password account (shorthand, sign-in address or ID); omit for the default.
    #[serde(default)]
    pub(super) account: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(super) struct ListItemsArgs {
    /// Only items in this vault (name or ID).
    #[serde(default)]
    pub(super) vault: Option<String>,
    /// Only these categories, e.g. ["Login", "API Credential"].
    #[serde(default)]
    pub(super) categories: Vec<String>,
    /// Only items with these tags.
    #[serde(default)]
    pub(super) tags: Vec<String>,
    /// The account; omit for the default.
    #[serde(default)]
    pub(super) account: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(super) struct GetItemArgs {
    /// Item title or ID.
    pub(super) item: String,
    /// The item's vault (name or ID).
    #[serde(default)]
    pub(super) vault: Option<String>,
    /// The account; omit for the default.
    #[serde(default)]
    pub(super) account: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(super) struct ReferenceArgs {
    /// A secret reference: op://vault/item[/section]/field.
    pub(super) reference: String,
    /// The account; omit for the default.
    #[serde(default)]
    pub(super) account: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(super) struct ReadSecretArgs {
    /// A secret reference: op://vault/item[/section]/field.
    pub(super) reference: String,
    /// Must be exactly "I_UNDERSTAND_THIS_RETURNS_SECRET_PLAINTEXT".
    #[serde(default)]
    pub(super) acknowledge: Option<String>,
    /// The account; omit for the default.
    #[serde(default)]
    pub(super) account: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(super) struct RunArgs {
    /// The program and its arguments, e.g. ["npm", "test"].
    pub(super) command: Vec<String>,
    /// Absolute working directory.
    #[serde(default)]
    pub(super) cwd: Option<String>,
    /// Environment variables for the command: NAME -> "op://vault/item/field".
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    /// dotenv files whose op:// values are resolved too (later files win; `env` wins over them).
    #[serde(default)]
    pub(super) env_files: Vec<String>,
    /// Seconds before the command's process group is killed (default 60, at most 600).
    #[serde(default)]
    pub(super) timeout_s: Option<u64>,
    /// The account; omit for the default.
    #[serde(default)]
    pub(super) account: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(super) struct InjectArgs {
    /// Absolute path of a template with {{ op://vault/item/field }} references.
    pub(super) template_path: String,
    /// Absolute path of the file to write (mode 0600).
    pub(super) output_path: String,
    /// Replace output_path if it exists.
    #[serde(default)]
    pub(super) overwrite: bool,
    /// The account; omit for the default.
    #[serde(default)]
    pub(super) account: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(super) struct CreateItemArgs {
    /// Vault to create the item in.
    pub(super) vault: String,
    /// Item title.
    pub(super) title: String,
    /// Category, e.g. "Login", "Password", "API Credential" (default "Login").
    #[serde(default)]
    pub(super) category: Option<String>,
    /// Extra fields as op assignments, e.g. ["username=deploy", "notes[text]=for CI"].
    #[serde(default)]
    pub(super) fields: Vec<String>,
    /// Password recipe, e.g. "letters,digits,32"; the generated value is never returned.
    #[serde(default)]
    pub(super) password_recipe: Option<String>,
    /// Tags.
    #[serde(default)]
    pub(super) tags: Vec<String>,
    /// Website URL.
    #[serde(default)]
    pub(super) url: Option<String>,
    /// The account; omit for the default.
    #[serde(default)]
    pub(super) account: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(super) struct EditItemArgs {
    /// Item title or ID.
    pub(super) item: String,
    /// The item's vault.
    #[serde(default)]
    pub(super) vault: Option<String>,
    /// New title.
    #[serde(default)]
    pub(super) title: Option<String>,
    /// Field assignments, e.g. ["username=deploy"].
    #[serde(default)]
    pub(super) fields: Vec<String>,
    /// Generate a new password (never returned).
    #[serde(default)]
    pub(super) generate_password: bool,
    /// The account; omit for the default.
    #[serde(default)]
    pub(super) account: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteItemArgs {
    /// Item title or ID.
    pub(super) item: String,
    /// The item's vault.
    #[serde(default)]
    pub(super) vault: Option<String>,
    /// Archive instead of deleting permanently.
    #[serde(default)]
    pub(super) archive: bool,
    /// The account; omit for the default.
    #[serde(default)]
    pub(super) account: Option<String>,
}

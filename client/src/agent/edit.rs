//! The three kinds of edit `agent install` makes, each with its exact inverse.
//!
//! - A file we own whole (a skill, a command, a rule): it carries [`MARK`], and is replaced or
//!   removed only while it still does, so a file the person wrote is never touched.
//! - Our entry in the MCP server list of a shared JSON (`mcpServers`) or TOML
//!   (`[mcp_servers.op-session]`) config: other keys stay as they were; an entry of the same
//!   name that does not run `op-session mcp` is someone else's and is left alone. TOML keeps its
//!   comments and layout (toml_edit); JSON is edited in its own text (`jsontext`: key order,
//!   indentation and spacing stay the person's), never re-serialised. Uninstall removes only
//!   the keys install wrote.
//! - A section of a shared Markdown file (`AGENTS.md`) between [`BEGIN`] and [`END`].
//!
//! Each edit computes a [`Change`] (the file's text before and after) without touching the
//! disk; [`Change::apply`] writes it (through a temporary file and a rename) or removes the
//! file and the directories that removal left empty, up to the scope's base directory.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::NAME;
use super::jsontext;

/// Every file we own whole says this, so uninstall knows it is ours.
pub const MARK: &str = "Written by `op-session agent install";
/// Opens our section of a shared Markdown file.
pub const BEGIN: &str = "<!-- BEGIN op-session: written by `op-session agent install`; `op-session agent uninstall` removes it -->";
/// Closes it.
pub const END: &str = "<!-- END op-session -->";

/// Which agent's MCP entry shape to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpFormat {
    /// `{"mcpServers": {NAME: {"type": "stdio", "command", "args"}}}` (`.mcp.json`,
    /// `~/.claude.json`).
    ClaudeCode,
    /// `[mcp_servers.NAME] command, args` (Codex's `config.toml`).
    Codex,
    /// `{"mcpServers": {NAME: {"command", "args"}}}` (`.cursor/mcp.json`).
    Cursor,
}

/// One edit of one file.
#[derive(Debug, Clone)]
pub enum Edit {
    /// A file we own whole.
    Owned {
        /// Where.
        path: PathBuf,
        /// Its text (contains [`MARK`]).
        contents: &'static str,
    },
    /// Our section of a shared Markdown file.
    Section {
        /// Where.
        path: PathBuf,
        /// The section's text, without the markers.
        body: &'static str,
    },
    /// Our entry in a shared MCP config.
    McpServer {
        /// Where.
        path: PathBuf,
        /// Its shape.
        format: McpFormat,
        /// The `op-session` binary the entry runs (with `mcp`).
        command: PathBuf,
    },
}

/// Why an edit cannot be planned.
#[derive(Debug)]
pub enum EditError {
    /// The file exists but cannot be read.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Something of the same name is there and is not ours.
    NotOurs {
        /// The file.
        path: PathBuf,
        /// What is there.
        what: &'static str,
    },
    /// The config file does not parse, or has an unexpected shape.
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::Unreadable { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            EditError::NotOurs { path, what } => write!(
                f,
                "{} already has {what} that op-session did not write",
                path.display()
            ),
            EditError::Malformed { path, what } => write!(f, "{}: {what}", path.display()),
        }
    }
}

impl EditError {
    /// What the person can do about it.
    pub fn fix(&self) -> String {
        match self {
            EditError::Unreadable { .. } => "check the file's permissions".into(),
            EditError::NotOurs { path, .. } => format!(
                "move it away or rename your entry, then run the command again ({})",
                path.display()
            ),
            EditError::Malformed { .. } => "fix the file, then run the command again".into(),
        }
    }
}

/// A file's text before and after an edit (`None`: no file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The file.
    pub path: PathBuf,
    /// Its text now.
    pub before: Option<String>,
    /// Its text after the edit.
    pub after: Option<String>,
}

impl Edit {
    /// A file we own whole.
    pub fn owned(path: PathBuf, contents: &'static str) -> Edit {
        Edit::Owned { path, contents }
    }

    /// Our section of a shared Markdown file.
    pub fn section(path: PathBuf, body: &'static str) -> Edit {
        Edit::Section { path, body }
    }

    fn path(&self) -> &Path {
        match self {
            Edit::Owned { path, .. }
            | Edit::Section { path, .. }
            | Edit::McpServer { path, .. } => path,
        }
    }

    /// The change that installs this edit (a no-op when it is already in place).
    pub fn install(&self) -> Result<Change, EditError> {
        let path = self.path().to_path_buf();
        let before = read(&path)?;
        let after = match self {
            Edit::Owned { contents, .. } => {
                if before
                    .as_deref()
                    .is_some_and(|t| t != *contents && !t.contains(MARK))
                {
                    return Err(EditError::NotOurs {
                        path,
                        what: "a file of that name",
                    });
                }
                Some((*contents).to_string())
            }
            Edit::Section { body, .. } => Some(with_section(before.as_deref().unwrap_or(""), body)),
            Edit::McpServer {
                format, command, ..
            } => Some(match format {
                McpFormat::Codex => toml_install(&path, before.as_deref(), command)?,
                McpFormat::ClaudeCode | McpFormat::Cursor => {
                    json_install(&path, before.as_deref(), *format, command)?
                }
            }),
        };
        Ok(Change {
            path,
            before,
            after,
        })
    }

    /// The change that takes this edit out again (a no-op when nothing of ours is there).
    pub fn uninstall(&self) -> Result<Change, EditError> {
        let path = self.path().to_path_buf();
        let before = read(&path)?;
        let after = match (&before, self) {
            (None, _) => None,
            (Some(text), Edit::Owned { .. }) => Some(text.clone()).filter(|t| !t.contains(MARK)),
            (Some(text), Edit::Section { .. }) => without_section(text),
            (Some(text), Edit::McpServer { format, .. }) => match format {
                McpFormat::Codex => toml_uninstall(&path, text)?,
                McpFormat::ClaudeCode | McpFormat::Cursor => json_uninstall(&path, text)?,
            },
        };
        Ok(Change {
            path,
            before,
            after,
        })
    }
}

impl Change {
    /// Whether the file stays as it is.
    pub fn is_noop(&self) -> bool {
        self.before == self.after
    }

    /// What happens to the file, for the person.
    pub fn verb(&self, dry_run: bool) -> &'static str {
        match (self.before.is_some(), self.after.is_some(), dry_run) {
            (false, _, false) => "wrote  ",
            (false, _, true) => "would write  ",
            (true, true, false) => "updated",
            (true, true, true) => "would update ",
            (true, false, false) => "removed",
            (true, false, true) => "would remove ",
        }
    }

    /// Carry the change out. Directories a removal leaves empty are removed too, up to (not
    /// including) `base`.
    pub fn apply(&self, base: &Path) -> std::io::Result<()> {
        match &self.after {
            Some(text) => write_replacing(&self.path, text),
            None => {
                match std::fs::remove_file(&self.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                let mut dir = self.path.parent();
                while let Some(d) = dir {
                    if d == base || !d.starts_with(base) || std::fs::remove_dir(d).is_err() {
                        break;
                    }
                    dir = d.parent();
                }
                Ok(())
            }
        }
    }
}

/// The file's text, or `None` when there is no file.
fn read(path: &Path) -> Result<Option<String>, EditError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(EditError::Unreadable {
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// Write `text` to `path` through a temporary file and a rename, keeping an existing file's
/// permissions and writing through a symlink to its target (dotfile managers link configs).
fn write_replacing(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    std::fs::create_dir_all(target.parent().unwrap_or(Path::new(".")))?;
    let mode = std::fs::metadata(&target)
        .ok()
        .map(|meta| meta.permissions().mode() & 0o7777);
    op_session_paths::write_atomic(&target, text.as_bytes(), mode)
}

/// `text` with our section (replacing an earlier one, else appended after a blank line).
fn with_section(text: &str, body: &str) -> String {
    let block = format!("{BEGIN}\n{body}{END}\n");
    if let Some((start, end)) = section_span(text) {
        return format!("{}{block}{}", &text[..start], &text[end..]);
    }
    match text {
        "" => block,
        t if t.ends_with('\n') => format!("{t}\n{block}"),
        t => format!("{t}\n\n{block}"),
    }
}

/// `text` without our section and the blank line before it; `None` when nothing else is left.
fn without_section(text: &str) -> Option<String> {
    let Some((start, end)) = section_span(text) else {
        return Some(text.to_string());
    };
    let head = &text[..start];
    let head = head
        .strip_suffix("\n\n")
        .map_or(head.to_string(), |h| format!("{h}\n"));
    let rest = format!("{head}{}", &text[end..]);
    Some(rest).filter(|r| !r.trim().is_empty())
}

/// The byte range of our section, from [`BEGIN`] through the line ending after [`END`].
fn section_span(text: &str) -> Option<(usize, usize)> {
    let start = text.find(BEGIN)?;
    let end = start + text[start..].find(END)? + END.len();
    let end = if text[end..].starts_with('\n') {
        end + 1
    } else {
        end
    };
    Some((start, end))
}

/// Whether an MCP entry (as its command and arguments) runs `op-session mcp`: ours, even if
/// an earlier install wrote another path.
fn runs_op_session_mcp(command: Option<&str>, args: &[&str]) -> bool {
    command
        .and_then(|c| Path::new(c).file_name())
        .is_some_and(|n| n == NAME)
        && args == ["mcp"]
}

/// Our JSON entry.
fn json_entry(format: McpFormat, command: &Path) -> Value {
    let mut entry = Map::new();
    if format == McpFormat::ClaudeCode {
        entry.insert("type".into(), "stdio".into());
    }
    entry.insert("command".into(), command.display().to_string().into());
    entry.insert("args".into(), Value::Array(vec!["mcp".into()]));
    Value::Object(entry)
}

fn json_is_ours(entry: &Value) -> bool {
    let args: Vec<&str> = entry
        .get("args")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    runs_op_session_mcp(entry.get("command").and_then(Value::as_str), &args)
}

fn json_parse(path: &Path, text: Option<&str>) -> Result<Map<String, Value>, EditError> {
    let text = text.unwrap_or("").trim();
    if text.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(root)) => Ok(root),
        Ok(_) => Err(EditError::Malformed {
            path: path.to_path_buf(),
            what: "the top level is not a JSON object".into(),
        }),
        Err(e) => Err(EditError::Malformed {
            path: path.to_path_buf(),
            what: format!("not valid JSON ({e})"),
        }),
    }
}

fn json_render(root: &Map<String, Value>) -> String {
    let mut text = serde_json::to_string_pretty(root).unwrap_or_default();
    text.push('\n');
    text
}

/// The keys of our JSON entry: uninstall takes these and nothing the person added.
const JSON_KEYS: [&str; 3] = ["type", "command", "args"];

/// Install our entry by editing the file's text in place ([`jsontext`]): everything else,
/// key order and indentation included, stays byte for byte as it was.
fn json_install(
    path: &Path,
    before: Option<&str>,
    format: McpFormat,
    command: &Path,
) -> Result<String, EditError> {
    let mut root = json_parse(path, before)?;
    let entry = json_entry(format, command);
    let servers = root
        .entry("mcpServers")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(servers) = servers.as_object_mut() else {
        return Err(EditError::Malformed {
            path: path.to_path_buf(),
            what: "`mcpServers` is not an object".into(),
        });
    };
    let replacing = match servers.get(NAME) {
        Some(existing) if *existing == entry => {
            return Ok(before.unwrap_or_default().to_string());
        }
        Some(existing) if !json_is_ours(existing) => {
            return Err(EditError::NotOurs {
                path: path.to_path_buf(),
                what: "an MCP server named op-session",
            });
        }
        Some(_) => true,
        None => false,
    };
    let text = before.unwrap_or_default();
    let malformed = || EditError::Malformed {
        path: path.to_path_buf(),
        what: "not a JSON object".into(),
    };
    if text.trim().is_empty() {
        servers.insert(NAME.into(), entry);
        return Ok(json_render(&root));
    }
    let unit = jsontext::indent_unit(text);
    let top = jsontext::object_at(text, 0).ok_or_else(malformed)?;
    let Some(m) = top.members.iter().find(|m| m.key == "mcpServers") else {
        let value = jsontext::render(&serde_json::json!({ NAME: entry }), &unit, 1);
        return Ok(jsontext::insert_last(
            text,
            &top,
            "mcpServers",
            &value,
            &unit,
            1,
        ));
    };
    let obj = jsontext::object_at(text, m.value_start).ok_or_else(malformed)?;
    let value = jsontext::render(&entry, &unit, 2);
    match obj.members.iter().find(|m| m.key == NAME) {
        Some(ours) if replacing => Ok(format!(
            "{}{value}{}",
            &text[..ours.value_start],
            &text[ours.end..]
        )),
        _ => Ok(jsontext::insert_last(text, &obj, NAME, &value, &unit, 2)),
    }
}

/// Take out what install wrote, and only that: our entry (or, if the person added keys to it,
/// only our keys), and `mcpServers` when ours was its only server. The file's other bytes are
/// untouched, so an install followed by an uninstall gives the file back as it was.
fn json_uninstall(path: &Path, text: &str) -> Result<Option<String>, EditError> {
    let root = json_parse(path, Some(text))?;
    let Some(servers) = root.get("mcpServers").and_then(Value::as_object) else {
        return Ok(Some(text.to_string()));
    };
    if !servers.get(NAME).is_some_and(json_is_ours) {
        return Ok(Some(text.to_string()));
    }
    let malformed = || EditError::Malformed {
        path: path.to_path_buf(),
        what: "not a JSON object".into(),
    };
    let top = jsontext::object_at(text, 0).ok_or_else(malformed)?;
    let at_servers = top
        .members
        .iter()
        .position(|m| m.key == "mcpServers")
        .ok_or_else(malformed)?;
    let obj =
        jsontext::object_at(text, top.members[at_servers].value_start).ok_or_else(malformed)?;
    let at = obj
        .members
        .iter()
        .position(|m| m.key == NAME)
        .ok_or_else(malformed)?;
    let entry = jsontext::object_at(text, obj.members[at].value_start).ok_or_else(malformed)?;
    if entry
        .members
        .iter()
        .any(|m| !JSON_KEYS.contains(&m.key.as_str()))
    {
        // The person added to our entry: leave their keys (and so the entry) in place.
        let mut out = text.to_string();
        loop {
            let top = jsontext::object_at(&out, 0).ok_or_else(malformed)?;
            let servers_at = top.members[at_servers].value_start;
            let obj = jsontext::object_at(&out, servers_at).ok_or_else(malformed)?;
            let entry_at = obj.members[at].value_start;
            let entry = jsontext::object_at(&out, entry_at).ok_or_else(malformed)?;
            match entry
                .members
                .iter()
                .position(|m| JSON_KEYS.contains(&m.key.as_str()))
            {
                Some(i) => out = jsontext::remove(&out, &entry, i),
                None => return Ok(Some(out)),
            }
        }
    }
    let out = if obj.members.len() == 1 {
        jsontext::remove(text, &top, at_servers)
    } else {
        jsontext::remove(text, &obj, at)
    };
    let empty = jsontext::object_at(&out, 0).is_some_and(|o| o.members.is_empty());
    Ok(Some(out).filter(|_| !empty))
}

fn toml_parse(path: &Path, text: &str) -> Result<toml_edit::DocumentMut, EditError> {
    text.parse()
        .map_err(|e: toml_edit::TomlError| EditError::Malformed {
            path: path.to_path_buf(),
            what: format!("not valid TOML ({})", e.message()),
        })
}

fn toml_is_ours(entry: &toml_edit::Item) -> bool {
    let args: Vec<&str> = entry
        .get("args")
        .and_then(toml_edit::Item::as_array)
        .map(|a| a.iter().filter_map(toml_edit::Value::as_str).collect())
        .unwrap_or_default();
    runs_op_session_mcp(
        entry.get("command").and_then(toml_edit::Item::as_str),
        &args,
    )
}

/// What Codex passes on to `op-session mcp` from its own environment (it starts MCP servers
/// with a trimmed one): where the socket is, when the person's session says so. Without them
/// the socket is still found at `/run/user/<uid>` (op-session-paths `socket_path`).
pub const CODEX_ENV_VARS: [&str; 2] = ["XDG_RUNTIME_DIR", "OPSESSION_SOCKET"];

fn toml_install(path: &Path, before: Option<&str>, command: &Path) -> Result<String, EditError> {
    let before = before.unwrap_or("");
    let mut doc = toml_parse(path, before)?;
    let servers = doc.entry("mcp_servers").or_insert_with(|| {
        let mut t = toml_edit::Table::new();
        t.set_implicit(true);
        toml_edit::Item::Table(t)
    });
    let Some(servers) = servers.as_table_mut() else {
        return Err(EditError::Malformed {
            path: path.to_path_buf(),
            what: "`mcp_servers` is not a table".into(),
        });
    };
    let command = command.display().to_string();
    if let Some(existing) = servers.get(NAME) {
        if existing.get("command").and_then(toml_edit::Item::as_str) == Some(command.as_str())
            && toml_is_ours(existing)
        {
            return Ok(before.to_string());
        }
        if !toml_is_ours(existing) {
            return Err(EditError::NotOurs {
                path: path.to_path_buf(),
                what: "an MCP server named op-session",
            });
        }
    }
    let mut entry = toml_edit::Table::new();
    entry.insert("command", toml_edit::value(command));
    entry.insert(
        "args",
        toml_edit::value(toml_edit::Array::from_iter(["mcp"])),
    );
    entry.insert(
        "env_vars",
        toml_edit::value(toml_edit::Array::from_iter(CODEX_ENV_VARS.iter().copied())),
    );
    servers.insert(NAME, toml_edit::Item::Table(entry));
    Ok(doc.to_string())
}

fn toml_uninstall(path: &Path, text: &str) -> Result<Option<String>, EditError> {
    let mut doc = toml_parse(path, text)?;
    let Some(servers) = doc
        .get_mut("mcp_servers")
        .and_then(toml_edit::Item::as_table_mut)
    else {
        return Ok(Some(text.to_string()));
    };
    if !servers.get(NAME).is_some_and(toml_is_ours) {
        return Ok(Some(text.to_string()));
    }
    // Only the keys install wrote: a key the person added keeps the table.
    if let Some(entry) = servers
        .get_mut(NAME)
        .and_then(toml_edit::Item::as_table_like_mut)
    {
        for key in ["command", "args", "env_vars"] {
            entry.remove(key);
        }
        if !entry.is_empty() {
            return Ok(Some(doc.to_string()));
        }
    }
    servers.remove(NAME);
    if servers.is_empty() {
        doc.remove("mcp_servers");
    }
    let rest = doc.to_string();
    Ok(Some(rest).filter(|r| !r.trim().is_empty()))
}

#[cfg(test)]
mod tests;

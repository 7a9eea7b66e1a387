//! Typed builders for the `op` calls op-session makes itself (whoami, vault list, read,
//! inject, signin, signout, and the MCP item tools' item list/get/create/edit/delete), so no
//! argv is written by hand anywhere else.
//!
//! Each builder produces an [`OpCommand`] from the table, and its argv is
//! [`OpCommand::to_args`], the same rendering a checked passthrough gets.

use crate::parse::{OpCommand, command};
use crate::table::{Flag, GLOBAL_FLAGS};

/// A call op-session makes on its own behalf.
#[derive(Debug, Clone)]
pub struct OpCall {
    cmd: OpCommand,
}

impl OpCall {
    fn new(path: &'static str) -> OpCall {
        let spec = command(path);
        debug_assert!(spec.is_some(), "{path} is not in the table");
        OpCall {
            cmd: OpCommand {
                spec,
                path: path.to_string(),
                flags: Vec::new(),
                positionals: Vec::new(),
                rest: Vec::new(),
            },
        }
    }

    fn flag(mut self, long: &str, value: &str) -> OpCall {
        let own: &[Flag] = self.cmd.spec.map(|s| s.flags).unwrap_or(&[]);
        let spec = own
            .iter()
            .chain(GLOBAL_FLAGS.iter())
            .find(|f| f.long == long);
        debug_assert!(
            spec.is_some(),
            "--{long} is not a flag of {}",
            self.cmd.path
        );
        if let Some(spec) = spec {
            self.cmd.flags.push((spec, value.to_string()));
        }
        self
    }

    /// `op whoami`.
    pub fn whoami() -> OpCall {
        OpCall::new("whoami")
    }

    /// `op vault list`: the cheapest call that makes the desktop app authorize.
    pub fn vault_list() -> OpCall {
        OpCall::new("vault list")
    }

    /// `op item create - [--vault VAULT]`: the item (title, category, fields and their values)
    /// comes as a JSON template on stdin ([`crate::template::create`]), never on the argv.
    pub fn item_create(vault: Option<&str>) -> OpCall {
        let mut c = OpCall::new("item create");
        if let Some(v) = vault {
            c = c.flag("vault", v);
        }
        c.cmd.positionals.push("-".to_string());
        c
    }

    /// `op item edit ITEM [--vault VAULT]`; with [`OpCall::template_on_stdin`] the item's new
    /// title, sections and fields come as a JSON template on stdin.
    pub fn item_edit(item: &str, vault: Option<&str>) -> OpCall {
        let mut c = OpCall::new("item edit");
        if let Some(v) = vault {
            c = c.flag("vault", v);
        }
        c.cmd.positionals.push(item.to_string());
        c
    }

    /// `op item get ITEM [--vault VAULT]`, the vault optional.
    pub fn item_get_in(item: &str, vault: Option<&str>) -> OpCall {
        let mut c = OpCall::new("item get");
        if let Some(v) = vault {
            c = c.flag("vault", v);
        }
        c.cmd.positionals.push(item.to_string());
        c
    }

    /// `op item list [--vault VAULT] [--categories=A,B] [--tags=A,B]`.
    pub fn item_list(vault: Option<&str>, categories: &[String], tags: &[String]) -> OpCall {
        let mut c = OpCall::new("item list");
        if let Some(v) = vault {
            c = c.flag("vault", v);
        }
        if !categories.is_empty() {
            c = c.flag("categories", &categories.join(","));
        }
        c.tags(tags)
    }

    /// `op item delete ITEM [--vault VAULT] [--archive]`.
    pub fn item_delete(item: &str, vault: Option<&str>, archive: bool) -> OpCall {
        let mut c = OpCall::new("item delete");
        if let Some(v) = vault {
            c = c.flag("vault", v);
        }
        if archive {
            c = c.flag("archive", "true");
        }
        c.cmd.positionals.push(item.to_string());
        c
    }

    /// `--template=/dev/stdin`: `op item edit` reads its template from a file path only (the
    /// reference lists no `-` for it); this path is the daemon's own pipe to the child, never
    /// a path a caller chose.
    pub fn template_on_stdin(self) -> OpCall {
        self.flag("template", "/dev/stdin")
    }

    /// `--generate-password[=RECIPE]`.
    pub fn generate_password(self, recipe: Option<&str>) -> OpCall {
        self.flag("generate-password", recipe.unwrap_or(""))
    }

    /// `--tags=a,b` (not secret: tags are listed by `item list`).
    pub fn tags(self, tags: &[String]) -> OpCall {
        if tags.is_empty() {
            return self;
        }
        self.flag("tags", &tags.join(","))
    }

    /// `--url=URL`.
    pub fn url(self, url: Option<&str>) -> OpCall {
        match url {
            Some(u) => self.flag("url", u),
            None => self,
        }
    }

    /// `op item get ITEM --vault VAULT`.
    pub fn item_get(item: &str, vault: &str) -> OpCall {
        let mut c = OpCall::new("item get").flag("vault", vault);
        c.cmd.positionals.push(item.to_string());
        c
    }

    /// A command read with the grammar (a call op-session composes from typed parts, such as
    /// the MCP item tools), to be run as its canonical argv.
    pub fn from_command(cmd: OpCommand) -> OpCall {
        OpCall { cmd }
    }

    /// `op account list` (needs no session).
    pub fn account_list() -> OpCall {
        OpCall::new("account list")
    }

    /// `op read --no-newline REFERENCE`.
    pub fn read(reference: &str) -> OpCall {
        let mut c = OpCall::new("read").flag("no-newline", "true");
        c.cmd.positionals.push(reference.to_string());
        c
    }

    /// `op inject` (template on stdin, result on stdout).
    pub fn inject() -> OpCall {
        OpCall::new("inject")
    }

    /// `op signin`.
    pub fn signin() -> OpCall {
        OpCall::new("signin")
    }

    /// `op signout`.
    pub fn signout() -> OpCall {
        OpCall::new("signout")
    }

    /// `--format=json`.
    pub fn json(self) -> OpCall {
        self.flag("format", "json")
    }

    /// `--account=A` when `account` is given.
    pub fn account(mut self, account: Option<&str>) -> OpCall {
        self.cmd.set_account(account);
        self
    }

    /// The typed command.
    pub fn command(&self) -> &OpCommand {
        &self.cmd
    }

    /// The argv (without `argv[0]`).
    pub fn args(&self) -> Vec<String> {
        self.cmd.to_args()
    }
}

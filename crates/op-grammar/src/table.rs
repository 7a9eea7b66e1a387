//! The table: every `op` v2 command, its aliases, its flags, what it does and where it names a
//! vault. Data only; [`crate::parse`] reads it.
//!
//! Sources are recorded in docs/op-behaviour.md ("Command line"). A command that is missing
//! here is refused by every reader (the daemon, the shim, fake-op), so adding one is a
//! deliberate act: give it an [`Effect`] and a [`VaultArg`].

/// How a flag takes its value (pflag's three shapes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--x`, `--x=true|false`; never takes the next word.
    Bool,
    /// `--x v`, `--x=v`.
    Value,
    /// `--x` alone means the default; a value only with `=` (pflag's NoOptDefVal).
    OptionalValue,
}

/// One flag.
#[derive(Debug, PartialEq, Eq)]
pub struct Flag {
    /// Long name without dashes.
    pub long: &'static str,
    /// One-letter alias.
    pub short: Option<char>,
    /// How it takes a value.
    pub kind: FlagKind,
    /// `"valuename   description"` for value flags, the description for booleans (usage text).
    pub help: &'static str,
}

/// What running a command does, for the daemon's decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Reads items, vaults, accounts or metadata.
    Read,
    /// Creates or changes items, documents, vaults, groups or users.
    Write,
    /// Deletes, archives, moves out of reach, or changes who may access what.
    Destructive,
    /// Starts another program (or replaces `op` itself): never with a session's token.
    Executes,
    /// Prints a credential (a session token, a service-account or Connect token).
    RevealsCredential,
    /// Starts or ends the session itself (`op signout`); the daemon owns that.
    SessionControl,
    /// Needs no account at all (shell completion).
    Local,
}

/// Where a command names the vault it works in, for the `vaults` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultArg {
    /// It works on the account, not inside a vault (whoami, vault list, users, groups).
    NoVault,
    /// The values of these flags; without any of them the vault cannot be known.
    Flags(&'static [&'static str]),
    /// The values of these flags when given (`user list --vault X` works inside that vault);
    /// without them it works on the account.
    FlagsOrAccount(&'static [&'static str]),
    /// Its positional arguments are vault names or IDs.
    Positionals,
    /// `--vault` if given, else its positional arguments.
    FlagOrPositionals,
    /// Its first positional is an `op://` reference.
    Reference,
    /// It reads a template the daemon does not see (`op inject`).
    Template,
}

/// A leaf command.
#[derive(Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// Canonical space-separated path, e.g. `item delete`.
    pub path: &'static str,
    /// Other names for the last word (`rm`, `remove`).
    pub aliases: &'static [&'static str],
    /// The `Usage:` line after `op `.
    pub usage: &'static str,
    /// Its own flags (the globals come on top).
    pub flags: &'static [Flag],
    /// False for `run` and `plugin run`: the first positional ends flag parsing.
    pub interspersed: bool,
    /// What it does.
    pub effect: Effect,
    /// Where it names a vault.
    pub vault: VaultArg,
}

/// A command group (`op item …`).
#[derive(Debug)]
pub struct Group {
    /// Canonical space-separated path, e.g. `vault user`.
    pub path: &'static str,
    /// Other names for the last word (`items`).
    pub aliases: &'static [&'static str],
}

const fn flag(long: &'static str, short: Option<char>, kind: FlagKind, help: &'static str) -> Flag {
    Flag {
        long,
        short,
        kind,
        help,
    }
}

const fn b(long: &'static str, help: &'static str) -> Flag {
    flag(long, None, FlagKind::Bool, help)
}

const fn v(long: &'static str, help: &'static str) -> Flag {
    flag(long, None, FlagKind::Value, help)
}

const fn cmd(
    path: &'static str,
    usage: &'static str,
    flags: &'static [Flag],
    effect: Effect,
    vault: VaultArg,
) -> CommandSpec {
    CommandSpec {
        path,
        aliases: &[],
        usage,
        flags,
        interspersed: true,
        effect,
        vault,
    }
}

const fn aka(mut c: CommandSpec, aliases: &'static [&'static str]) -> CommandSpec {
    c.aliases = aliases;
    c
}

use Effect::{Destructive, Executes, Local, Read, RevealsCredential, SessionControl, Write};
use FlagKind::{Bool, OptionalValue, Value};
use VaultArg::{
    FlagOrPositionals, Flags, FlagsOrAccount, NoVault, Positionals, Reference, Template,
};

const VAULT: &[&str] = &["vault"];
const RM: &[&str] = &["rm", "remove"];
const LS: &[&str] = &["ls"];

/// Flags every command accepts.
pub static GLOBAL_FLAGS: &[Flag] = &[
    v(
        "account",
        "account   Select the account to execute the command by account shorthand, sign-in address, account ID, or user ID.",
    ),
    b("cache", "Store and use cached information. (default true)"),
    v("config", "directory   Use this configuration directory."),
    b("debug", "Enable debug mode."),
    v(
        "encoding",
        "type   Use this character encoding type. Default: UTF-8. Supported: SHIFT_JIS, gbk.",
    ),
    v(
        "format",
        "string   Use this output format. Can be 'human-readable' or 'json'. (default \"human-readable\")",
    ),
    flag("help", Some('h'), Bool, "Get help for a command."),
    b(
        "iso-timestamps",
        "Format timestamps according to ISO 8601 / RFC 3339.",
    ),
    b("no-color", "Print output without color."),
    v("session", "token   Authenticate with this session token."),
];

/// `op --version`, accepted only before any command.
pub static ROOT_FLAGS: &[Flag] = &[flag("version", Some('v'), Bool, "Version for op.")];

/// Hidden flag aliases op accepts, per command: (command, alias, the flag it stands for). The
/// parser reads the alias as the flag, so checks and the canonical argv see one name.
pub static FLAG_ALIASES: &[(&str, &str, &str)] = &[
    ("item get", "field", "fields"),
    ("item share", "expiry", "expires-in"),
];

/// Command groups, each with its aliases.
pub static GROUPS: &[Group] = &[
    Group {
        path: "account",
        aliases: &["accounts"],
    },
    Group {
        path: "connect",
        aliases: &[],
    },
    Group {
        path: "connect group",
        aliases: &[],
    },
    Group {
        path: "connect server",
        aliases: &[],
    },
    Group {
        path: "connect token",
        aliases: &[],
    },
    Group {
        path: "connect vault",
        aliases: &[],
    },
    Group {
        path: "document",
        aliases: &["documents"],
    },
    Group {
        path: "events-api",
        aliases: &[],
    },
    Group {
        path: "group",
        aliases: &["groups"],
    },
    Group {
        path: "group user",
        aliases: &[],
    },
    Group {
        path: "item",
        aliases: &["items"],
    },
    Group {
        path: "environment",
        aliases: &[],
    },
    Group {
        path: "item template",
        aliases: &["templates"],
    },
    Group {
        path: "plugin",
        aliases: &["plugins"],
    },
    Group {
        path: "plugin credential",
        aliases: &[],
    },
    Group {
        path: "service-account",
        aliases: &[],
    },
    Group {
        path: "user",
        aliases: &["users"],
    },
    Group {
        path: "user recovery",
        aliases: &[],
    },
    Group {
        path: "vault",
        aliases: &["vaults"],
    },
    Group {
        path: "vault group",
        aliases: &[],
    },
    Group {
        path: "vault user",
        aliases: &[],
    },
];

const FILE_MODE: Flag = v(
    "file-mode",
    "filemode   Set filemode for the output file. It is ignored without the --out-file flag. (default 0600)",
);
const INCLUDE_ARCHIVE: Flag = b("include-archive", "Include items in the Archive.");
const DRY_RUN: Flag = b(
    "dry-run",
    "Perform a dry run of the command and output a preview of the resulting item.",
);
const REVEAL: Flag = b("reveal", "Don't conceal sensitive fields.");
const GENERATE_PASSWORD: Flag = flag(
    "generate-password",
    None,
    OptionalValue,
    "[=recipe]   Give the item a randomly generated password.",
);
const EXPIRES_IN: Flag = v("expires-in", "duration   Set how long until it expires.");
const PERMISSIONS: Flag = v(
    "permissions",
    "permissions   The permissions to grant or revoke.",
);
const NO_INPUT: Flag = b(
    "no-input",
    "Do not prompt for input on interactive terminal.",
);

/// Every leaf command of `op` v2.
pub static COMMANDS: &[CommandSpec] = &[
    // Sign-in and accounts.
    cmd(
        "signin",
        "signin [flags]",
        &[
            flag(
                "force",
                Some('f'),
                Bool,
                "Ignore warnings and print raw output from this command.",
            ),
            b("raw", "Only return the session token."),
        ],
        RevealsCredential,
        NoVault,
    ),
    cmd(
        "signout",
        "signout [flags]",
        &[
            b("all", "Sign out of all signed-in accounts."),
            b(
                "forget",
                "Remove the details for a 1Password account from this device.",
            ),
        ],
        SessionControl,
        NoVault,
    ),
    cmd("whoami", "whoami [flags]", &[], Read, NoVault),
    cmd(
        "account add",
        "account add [flags]",
        &[
            v("address", "string   The sign-in address for your account."),
            v(
                "email",
                "string   The email address associated with your account.",
            ),
            b("raw", "Only return the session token."),
            v(
                "shorthand",
                "string   Set a custom account shorthand for your account.",
            ),
            b("signin", "Immediately sign in to the added account."),
        ],
        RevealsCredential,
        NoVault,
    ),
    cmd("account get", "account get [flags]", &[], Read, NoVault),
    aka(
        cmd("account list", "account list [flags]", &[], Read, NoVault),
        LS,
    ),
    cmd(
        "account forget",
        "account forget [{ <shorthand> | <signinAddress> | <accountID> | <userID> }] [flags]",
        &[b("all", "Forget all authenticated accounts.")],
        // It edits the op configuration the daemon signs in with, as `signout --forget` does.
        SessionControl,
        NoVault,
    ),
    // Secrets.
    cmd(
        "read",
        "read <reference> [flags]",
        &[
            FILE_MODE,
            flag("force", Some('f'), Bool, "Do not prompt for confirmation."),
            flag(
                "no-newline",
                Some('n'),
                Bool,
                "Do not print a new line after the secret.",
            ),
            flag(
                "out-file",
                Some('o'),
                Value,
                "path   Write the secret to a file instead of stdout.",
            ),
        ],
        Read,
        Reference,
    ),
    cmd(
        "inject",
        "inject [flags]",
        &[
            FILE_MODE,
            flag("force", Some('f'), Bool, "Do not prompt for confirmation."),
            flag(
                "in-file",
                Some('i'),
                Value,
                "string   The filename of a template file to inject.",
            ),
            flag(
                "out-file",
                Some('o'),
                Value,
                "string   Write the injected template to a file instead of stdout.",
            ),
        ],
        Read,
        Template,
    ),
    CommandSpec {
        path: "run",
        aliases: &[],
        usage: "run -- <command>... [flags]",
        flags: &[
            v(
                "env-file",
                "stringArray   Enable Dotenv integration with specific Dotenv files to parse. For example: --env-file=.env",
            ),
            // Stable from op 2.41: the variables of a 1Password Environment (§10.3).
            v(
                "environment",
                "string   Load the variables of this 1Password Environment (ID).",
            ),
            b(
                "no-masking",
                "Disable masking of secrets on stdout and stderr.",
            ),
        ],
        interspersed: false,
        effect: Executes,
        vault: Template,
    },
    // Environments (beta): the values of an Environment, which belongs to no vault, so no
    // `vaults` rule can scope it: with `vaults` set it is refused (no vault flag = unknown).
    cmd(
        "environment read",
        "environment read <environmentID> [flags]",
        &[],
        Read,
        Flags(&[]),
    ),
    // Items.
    cmd(
        "item get",
        "item get [{ <itemName> | <itemID> | <shareLink> | - }] [flags]",
        &[
            v(
                "fields",
                "strings   Return data from specific fields. Use `label=` to get the field by name or `type=` to filter fields by type.",
            ),
            INCLUDE_ARCHIVE,
            b("otp", "Output the primary one-time password for this item."),
            REVEAL,
            b("share-link", "Get a shareable link for the item."),
            v("vault", "vault   Look for the item in this vault."),
        ],
        Read,
        Flags(VAULT),
    ),
    aka(
        cmd(
            "item list",
            "item list [flags]",
            &[
                v(
                    "categories",
                    "categories   Only list items in these categories (comma-separated).",
                ),
                b("favorite", "Only list favorite items"),
                INCLUDE_ARCHIVE,
                b("long", "Output a more detailed item list."),
                v(
                    "tags",
                    "tags   Only list items with these tags (comma-separated).",
                ),
                v("vault", "vault   Only list items in this vault."),
            ],
            Read,
            Flags(VAULT),
        ),
        LS,
    ),
    cmd(
        "item create",
        "item create [{ - | <assignment>... }] [flags]",
        &[
            v("category", "category   Set the item's category."),
            DRY_RUN,
            b("favorite", "Add item to favorites."),
            GENERATE_PASSWORD,
            REVEAL,
            // Takes a value (`--ssh-generate-key ed25519`), not an optional one: 1Password's
            // reference, op 2.39-2.41 (docs/op-behaviour.md §10.3).
            v(
                "ssh-generate-key",
                "type   Generate a new SSH key of this type (ed25519 or rsa).",
            ),
            v(
                "tags",
                "tags   Set the tags to the specified (comma-separated) values.",
            ),
            v(
                "template",
                "string   Specify the filepath to read an item template from.",
            ),
            v("title", "title   Set the item's title."),
            v(
                "url",
                "URL   Set the website where 1Password suggests and fills a Login, Password, or API Credential item.",
            ),
            v(
                "vault",
                "vault   Save the item in this vault. Default: Private.",
            ),
        ],
        Write,
        Flags(VAULT),
    ),
    cmd(
        "item edit",
        "item edit { <itemName> | <itemID> | <shareLink> } [{ <assignment>... }] [flags]",
        &[
            DRY_RUN,
            b(
                "favorite",
                "Whether this item is a favorite item. Options: true, false",
            ),
            GENERATE_PASSWORD,
            REVEAL,
            v(
                "tags",
                "tags   Set the tags to the specified (comma-separated) values. An empty value will remove all tags.",
            ),
            v(
                "template",
                "string   Specify the filepath to read an item template from.",
            ),
            v("title", "title   Set the item's title."),
            v("url", "URL   Set the URL associated with the item."),
            v("vault", "vault   Edit the item in this vault."),
        ],
        Write,
        Flags(VAULT),
    ),
    aka(
        cmd(
            "item delete",
            "item delete [{ <itemName> | <itemID> | <shareLink> | - }] [flags]",
            &[
                b("archive", "Move the item to the Archive."),
                v("vault", "vault   Look for the item in this vault."),
            ],
            Destructive,
            Flags(VAULT),
        ),
        RM,
    ),
    aka(
        cmd(
            "item move",
            "item move [{ <itemName> | <itemID> | <shareLink> | - }] [flags]",
            &[
                v(
                    "current-vault",
                    "string   Vault where the item is currently saved.",
                ),
                v(
                    "destination-vault",
                    "string   The vault you want to move the item to.",
                ),
                REVEAL,
            ],
            Destructive,
            Flags(&["current-vault", "destination-vault"]),
        ),
        &["mv"],
    ),
    cmd(
        "item share",
        "item share { <itemName> | <itemID> } [flags]",
        &[
            v("emails", "strings   Email addresses to share with."),
            EXPIRES_IN,
            v("vault", "string   The vault to look for the item in."),
            b("view-once", "Expire the link after a single view."),
        ],
        // A link that outlives the session (7 days by default) and gives anyone with it
        // access: refused unless allow_destructive (docs/op-behaviour.md §10.3).
        Destructive,
        Flags(VAULT),
    ),
    cmd(
        "item template get",
        "item template get [{ <category> | - }] [flags]",
        &[
            FILE_MODE,
            flag("force", Some('f'), Bool, "Do not prompt for confirmation."),
            flag(
                "out-file",
                Some('o'),
                Value,
                "path   Write the template to a file instead of stdout.",
            ),
        ],
        Read,
        NoVault,
    ),
    aka(
        cmd(
            "item template list",
            "item template list [flags]",
            &[],
            Read,
            NoVault,
        ),
        LS,
    ),
    // Documents.
    cmd(
        "document create",
        "document create [{ <file> | - }] [flags]",
        &[
            v("file-name", "name   Set the file's name."),
            v(
                "tags",
                "tags   Set the tags to the specified (comma-separated) values.",
            ),
            v("title", "title   Set the document item's title."),
            v("vault", "vault   Save the document in this vault."),
        ],
        Write,
        Flags(VAULT),
    ),
    cmd(
        "document get",
        "document get { <itemName> | <itemID> } [flags]",
        &[
            FILE_MODE,
            // No `-f`: only `--force` (1Password's reference, docs/op-behaviour.md §10.3).
            b("force", "Do not prompt for confirmation."),
            INCLUDE_ARCHIVE,
            flag(
                "out-file",
                Some('o'),
                Value,
                "path   Save the document to the file path instead of stdout.",
            ),
            v("vault", "vault   Look for the document in this vault."),
        ],
        Read,
        Flags(VAULT),
    ),
    cmd(
        "document edit",
        "document edit { <itemName> | <itemID> } [{ <file> | - }] [flags]",
        &[
            v("file-name", "name   Set the file's name."),
            v(
                "tags",
                "tags   Set the tags to the specified (comma-separated) values.",
            ),
            v("title", "title   Set the document item's title."),
            v("vault", "vault   Look up document in this vault."),
        ],
        Write,
        Flags(VAULT),
    ),
    aka(
        cmd(
            "document delete",
            "document delete [{ <itemName> | <itemID> | - }] [flags]",
            &[
                b("archive", "Move the document to the Archive."),
                v("vault", "vault   Delete the document in this vault."),
            ],
            Destructive,
            Flags(VAULT),
        ),
        RM,
    ),
    aka(
        cmd(
            "document list",
            "document list [flags]",
            &[
                INCLUDE_ARCHIVE,
                v("vault", "vault   Only list documents in this vault."),
            ],
            Read,
            Flags(VAULT),
        ),
        LS,
    ),
    // Vaults.
    cmd(
        "vault create",
        "vault create <name> [flags]",
        &[
            v(
                "allow-admins-to-manage",
                "true|false   Set whether administrators can manage the vault.",
            ),
            v("description", "description   Set the vault's description."),
            v("icon", "icon   Set the vault icon."),
        ],
        Write,
        NoVault,
    ),
    cmd(
        "vault get",
        "vault get { <vaultName> | <vaultID> | - } [flags]",
        &[],
        Read,
        Positionals,
    ),
    cmd(
        "vault edit",
        "vault edit { <vaultName> | <vaultID> | - } [flags]",
        &[
            v(
                "description",
                "description   Change the vault's description.",
            ),
            v("icon", "icon   Change the vault's icon."),
            v("name", "name   Change the vault's name."),
            v(
                "travel-mode",
                "on|off   Turn Travel Mode on or off for the vault.",
            ),
        ],
        Write,
        Positionals,
    ),
    aka(
        cmd(
            "vault delete",
            "vault delete { <vaultName> | <vaultID> | - } [flags]",
            &[],
            Destructive,
            Positionals,
        ),
        RM,
    ),
    aka(
        cmd(
            "vault list",
            "vault list [flags]",
            &[
                v("group", "group   List vaults a group has access to."),
                v(
                    "permission",
                    "permissions   List only vaults that the specified user/group has this permission for.",
                ),
                v(
                    "user",
                    "user   List vaults that a given user has access to.",
                ),
            ],
            Read,
            NoVault,
        ),
        LS,
    ),
    cmd(
        "vault group grant",
        "vault group grant [flags]",
        &[
            v("group", "group   The group to receive access."),
            NO_INPUT,
            PERMISSIONS,
            v("vault", "vault   The vault to grant group permissions to."),
        ],
        Destructive,
        Flags(VAULT),
    ),
    cmd(
        "vault group revoke",
        "vault group revoke [flags]",
        &[
            v("group", "group   The group to revoke access from."),
            NO_INPUT,
            PERMISSIONS,
            v("vault", "vault   The vault to revoke access to."),
        ],
        Destructive,
        Flags(VAULT),
    ),
    aka(
        cmd(
            "vault group list",
            "vault group list [{ <vault> | - }] [flags]",
            &[],
            Read,
            FlagOrPositionals,
        ),
        LS,
    ),
    cmd(
        "vault user grant",
        "vault user grant [flags]",
        &[
            NO_INPUT,
            PERMISSIONS,
            v("user", "user   The user to receive access."),
            v("vault", "vault   The vault to grant access to."),
        ],
        Destructive,
        Flags(VAULT),
    ),
    cmd(
        "vault user revoke",
        "vault user revoke [flags]",
        &[
            NO_INPUT,
            PERMISSIONS,
            v("user", "user   The user to revoke access from."),
            v("vault", "vault   The vault to revoke access to."),
        ],
        Destructive,
        Flags(VAULT),
    ),
    aka(
        cmd(
            "vault user list",
            "vault user list [{ <vault> | - }] [flags]",
            &[],
            Read,
            FlagOrPositionals,
        ),
        LS,
    ),
    // Users and groups.
    cmd(
        "user provision",
        "user provision [flags]",
        &[
            v("email", "string   Provide the user's email address."),
            v("language", "string   Provide the user's account language."),
            v("name", "string   Provide the user's name."),
        ],
        Destructive,
        NoVault,
    ),
    cmd(
        "user confirm",
        "user confirm [{ <email> | <name> | <userID> | - }] [flags]",
        &[b("all", "Confirm all unconfirmed users.")],
        Destructive,
        NoVault,
    ),
    cmd(
        "user get",
        "user get [{ <email> | <name> | <userID> | --me | - }] [flags]",
        &[
            b("fingerprint", "Get the user's public key fingerprint."),
            b("me", "Get the authenticated user's details."),
            b("public-key", "Get the user's public key."),
        ],
        Read,
        NoVault,
    ),
    cmd(
        "user edit",
        "user edit [{ <email> | <name> | <userID> | - }] [flags]",
        &[
            v("name", "string   Set the user's name."),
            v(
                "travel-mode",
                "on|off   Turn Travel Mode on or off for the user.",
            ),
        ],
        Destructive,
        NoVault,
    ),
    cmd(
        "user suspend",
        "user suspend [{ <email> | <name> | <userID> | - }] [flags]",
        &[v(
            "deauthorize-devices-after",
            "duration   Deauthorize the user's devices after a time.",
        )],
        Destructive,
        NoVault,
    ),
    // Starts account recovery for users: they lose access until they finish it (stable).
    cmd(
        "user recovery begin",
        "user recovery begin [{ <email> | <name> | <userID> }...] [flags]",
        &[],
        Destructive,
        NoVault,
    ),
    cmd(
        "user reactivate",
        "user reactivate [{ <email> | <name> | <userID> | - }] [flags]",
        &[],
        Destructive,
        NoVault,
    ),
    aka(
        cmd(
            "user delete",
            "user delete [{ <email> | <name> | <userID> | - }] [flags]",
            &[],
            Destructive,
            NoVault,
        ),
        RM,
    ),
    aka(
        cmd(
            "user list",
            "user list [flags]",
            &[
                v("group", "group   List users who belong to a group."),
                v(
                    "vault",
                    "vault   List users who have direct access to vault.",
                ),
            ],
            Read,
            FlagsOrAccount(VAULT),
        ),
        LS,
    ),
    cmd(
        "group create",
        "group create <name> [flags]",
        &[v("description", "string   Set the group's description.")],
        Destructive,
        NoVault,
    ),
    cmd(
        "group get",
        "group get [{ <groupName> | <groupID> | - }] [flags]",
        &[],
        Read,
        NoVault,
    ),
    cmd(
        "group edit",
        "group edit [{ <groupName> | <groupID> | - }] [flags]",
        &[
            v(
                "description",
                "description   Change the group's description.",
            ),
            v("name", "name   Change the group's name."),
        ],
        Destructive,
        NoVault,
    ),
    aka(
        cmd(
            "group delete",
            "group delete [{ <groupName> | <groupID> | - }] [flags]",
            &[],
            Destructive,
            NoVault,
        ),
        RM,
    ),
    aka(
        cmd(
            "group list",
            "group list [flags]",
            &[
                v("user", "user   List groups that a user belongs to."),
                v(
                    "vault",
                    "vault   List groups that have direct access to a vault.",
                ),
            ],
            Read,
            FlagsOrAccount(VAULT),
        ),
        LS,
    ),
    cmd(
        "group user grant",
        "group user grant [flags]",
        &[
            v("group", "string   The group to add a user to."),
            v("role", "string   The user's role in the group."),
            v("user", "string   The user to add to the group."),
        ],
        Destructive,
        NoVault,
    ),
    cmd(
        "group user revoke",
        "group user revoke [flags]",
        &[
            v("group", "string   The group to remove a user from."),
            v("user", "string   The user to remove from the group."),
        ],
        Destructive,
        NoVault,
    ),
    aka(
        cmd(
            "group user list",
            "group user list <group> [flags]",
            &[],
            Read,
            NoVault,
        ),
        LS,
    ),
    // Connect, events, service accounts.
    cmd(
        "connect group grant",
        "connect group grant [flags]",
        &[
            b(
                "all-servers",
                "Grant access to all current and future servers.",
            ),
            v("group", "group   The group to grant access to."),
            v("server", "server   The server to grant access to."),
        ],
        Destructive,
        NoVault,
    ),
    cmd(
        "connect group revoke",
        "connect group revoke [flags]",
        &[
            b(
                "all-servers",
                "Revoke access to all current and future servers.",
            ),
            v("group", "group   The group to revoke access from."),
            v("server", "server   The server to revoke access to."),
        ],
        Destructive,
        NoVault,
    ),
    cmd(
        "connect server create",
        "connect server create <name> [flags]",
        &[
            flag(
                "force",
                Some('f'),
                Bool,
                "Do not prompt for confirmation when overwriting credential files.",
            ),
            v(
                "vaults",
                "strings   Grant the Connect server access to these vaults.",
            ),
        ],
        RevealsCredential,
        NoVault,
    ),
    cmd(
        "connect server get",
        "connect server get [{ <serverName> | <serverID> | - }] [flags]",
        &[],
        Read,
        NoVault,
    ),
    cmd(
        "connect server edit",
        "connect server edit { <serverName> | <serverID> } [flags]",
        &[v("name", "name   Change the server's name.")],
        Write,
        NoVault,
    ),
    aka(
        cmd(
            "connect server delete",
            "connect server delete [{ <serverName> | <serverID> | - }] [flags]",
            &[],
            Destructive,
            NoVault,
        ),
        RM,
    ),
    aka(
        cmd(
            "connect server list",
            "connect server list [flags]",
            &[],
            Read,
            NoVault,
        ),
        LS,
    ),
    cmd(
        "connect token create",
        "connect token create <tokenName> [flags]",
        &[
            EXPIRES_IN,
            v("server", "string   Issue a token for this server."),
            v("vault", "stringArray   Issue a token for this vault."),
        ],
        RevealsCredential,
        NoVault,
    ),
    cmd(
        "connect token edit",
        "connect token edit <token> [flags]",
        &[
            v("name", "name   Change the token's name."),
            v("server", "string   The server the token belongs to."),
        ],
        Write,
        NoVault,
    ),
    aka(
        cmd(
            "connect token delete",
            "connect token delete <token> [flags]",
            &[v("server", "string   The server the token belongs to.")],
            Destructive,
            NoVault,
        ),
        RM,
    ),
    aka(
        cmd(
            "connect token list",
            "connect token list [flags]",
            &[v("server", "string   Only list tokens for this server.")],
            Read,
            NoVault,
        ),
        LS,
    ),
    cmd(
        "connect vault grant",
        "connect vault grant [flags]",
        &[
            v("server", "string   The server to grant access to."),
            v("vault", "string   The vault to grant access to."),
        ],
        Destructive,
        Flags(VAULT),
    ),
    cmd(
        "connect vault revoke",
        "connect vault revoke [flags]",
        &[
            v("server", "string   The server to revoke access from."),
            v("vault", "string   The vault to revoke access to."),
        ],
        Destructive,
        Flags(VAULT),
    ),
    cmd(
        "events-api create",
        "events-api create <name> [flags]",
        &[
            EXPIRES_IN,
            v("features", "features   Set the features the token can use."),
        ],
        RevealsCredential,
        NoVault,
    ),
    cmd(
        "service-account create",
        "service-account create <serviceAccountName> [flags]",
        &[
            b(
                "can-create-vaults",
                "Allow the service account to create new vaults.",
            ),
            EXPIRES_IN,
            b("raw", "Only return the service account token."),
            v("vault", "stringArray   Give access to this vault."),
        ],
        RevealsCredential,
        NoVault,
    ),
    aka(
        cmd(
            "service-account ratelimit",
            "service-account ratelimit [{ <serviceAccountName> | <serviceAccountID> }] [flags]",
            &[],
            Read,
            NoVault,
        ),
        &["ratelimits"],
    ),
    // Shell plugins: they run programs with credentials.
    aka(
        cmd(
            "plugin clear",
            "plugin clear <pluginName> [flags]",
            &[
                b("all", "Clear all configurations for this plugin."),
                flag("force", Some('f'), Bool, "Do not prompt for confirmation."),
            ],
            Executes,
            NoVault,
        ),
        &["reset"],
    ),
    cmd(
        "plugin init",
        "plugin init [<executable>] [flags]",
        &[],
        Executes,
        NoVault,
    ),
    aka(
        cmd(
            "plugin inspect",
            "plugin inspect [<pluginName>] [flags]",
            &[],
            Executes,
            NoVault,
        ),
        &["info"],
    ),
    aka(
        cmd("plugin list", "plugin list [flags]", &[], Executes, NoVault),
        LS,
    ),
    CommandSpec {
        path: "plugin run",
        aliases: &[],
        usage: "plugin run -- <command>... [flags]",
        flags: &[],
        interspersed: false,
        effect: Executes,
        vault: NoVault,
    },
    cmd(
        "plugin credential import",
        "plugin credential import <pluginName> [flags]",
        &[],
        Executes,
        NoVault,
    ),
    // The rest.
    cmd(
        "update",
        "update [flags]",
        &[
            v(
                "channel",
                "channel   Look for updates from a specific channel.",
            ),
            v("directory", "path   Download the update to this path."),
        ],
        Executes,
        NoVault,
    ),
    cmd(
        "completion",
        "completion <shell> [flags]",
        &[],
        Local,
        NoVault,
    ),
];

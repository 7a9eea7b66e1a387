//! The MCP tools: names, schemas, annotations, one-line descriptions, and what each asks the
//! daemon.
//!
//! Every tool is one or a few requests to op-sessiond over its socket; the daemon applies
//! policy, vault rules, the cache, single-flight and audit, and tags the audit line with
//! `via: "mcp"` and the MCP client's name. Results are JSON text (and `structuredContent`).
//! Secret values never appear in a result except from `read_secret`, which the daemon allows
//! only with `[mcp] reveal = true` and the call's acknowledgement. A failure is a tool result
//! with `isError` and the CLI's one line: what happened, and the fix.
//!
//! Write tools (`create_item`, `edit_item`, `delete_item`) are listed only when the daemon's
//! policy allows their verbs; the daemon enforces it again on every call.

use std::path::PathBuf;

use op_session_protocol::mcp::REVEAL_ACKNOWLEDGEMENT;
use op_session_protocol::{
    CheckRequest, ErrorBody, ErrorCode, ItemOp, ItemRequest, McpInfo, Request, ResolvePurpose,
    Response, Via,
};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::schemars::JsonSchema;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::daemon::DaemonClient;
use crate::runner;

mod args;
use args::*;

/// The MCP server: a handle on the daemon, nothing else.
#[derive(Debug, Clone)]
pub struct OpSessionMcp {
    daemon: DaemonClient,
}

/// Read-only, or changes things (and whether destructively).
#[derive(Clone, Copy)]
enum Effect {
    ReadOnly,
    Writes,
    Destroys,
}

fn tool<T: JsonSchema + 'static>(name: &'static str, description: &'static str, e: Effect) -> Tool {
    let annotations = match e {
        Effect::ReadOnly => ToolAnnotations::new().read_only(true).destructive(false),
        Effect::Writes => ToolAnnotations::new().read_only(false).destructive(false),
        Effect::Destroys => ToolAnnotations::new().read_only(false).destructive(true),
    };
    Tool::new(name, description, JsonObject::new())
        .with_input_schema::<T>()
        .with_annotations(annotations.open_world(false))
}

/// Every tool, given what the daemon allows.
pub fn tools(info: &McpInfo) -> Vec<Tool> {
    use Effect::*;
    let mut v = vec![
        tool::<NoArgs>(
            "status",
            "Show the 1Password sessions op-sessiond holds and how long each has left.",
            ReadOnly,
        ),
        tool::<AccountArgs>(
            "list_vaults",
            "List the 1Password vaults you may use (names and IDs).",
            ReadOnly,
        ),
        tool::<ListItemsArgs>(
            "list_items",
            "List items (title, ID, category, vault, tags), optionally filtered; never values.",
            ReadOnly,
        ),
        tool::<GetItemArgs>(
            "get_item",
            "Show an item's fields with label, type, section and op:// reference; concealed values are masked.",
            ReadOnly,
        ),
        tool::<ReferenceArgs>(
            "check_reference",
            "Check that an op:// reference resolves and which vault, item, field and type it names; never the value.",
            ReadOnly,
        ),
        tool::<RunArgs>(
            "run",
            "Run a command with op:// references resolved into its environment only; returns exit code and masked output.",
            Writes,
        ),
        tool::<InjectArgs>(
            "inject",
            "Fill op:// references in a template file into an output file (0600); returns the path and count, never content.",
            Writes,
        ),
        tool::<ReadSecretArgs>(
            "read_secret",
            "Return a secret's plaintext; refused unless the person enabled reveal and you pass the acknowledgement.",
            ReadOnly,
        ),
    ];
    if info.can_create {
        v.push(tool::<CreateItemArgs>(
            "create_item",
            "Create an item with a generated password (the value is never returned); returns its fields and references.",
            Writes,
        ));
    }
    if info.can_edit {
        v.push(tool::<EditItemArgs>(
            "edit_item",
            "Change an item's title or fields, or generate a new password (never returned).",
            Writes,
        ));
    }
    if info.can_delete {
        v.push(tool::<DeleteItemArgs>(
            "delete_item",
            "Delete (or archive) an item permanently.",
            Destroys,
        ));
    }
    v
}

/// `op`'s words without its `[ERROR] YYYY/MM/DD HH:MM:SS ` line prefixes: a model needs the
/// message, not `op`'s clock, and a message the daemon wrote itself (connect mode, a refused
/// reference) then reads the same as `op`'s.
fn without_op_stamps(message: &str) -> String {
    message
        .trim_end()
        .lines()
        .map(|l| match l.strip_prefix("[ERROR] ") {
            Some(rest) if rest.len() > 20 && rest.as_bytes().get(19) == Some(&b' ') => &rest[20..],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The CLI's one line for an error: what happened; fix: what to do.
pub fn error_line(e: &ErrorBody) -> String {
    let message = without_op_stamps(&e.message);
    if e.code == ErrorCode::OpFailed || e.fix.is_empty() {
        return message;
    }
    format!("{message}; fix: {}", e.fix)
}

fn fail(e: &ErrorBody) -> CallToolResult {
    let mut r = CallToolResult::error(vec![ContentBlock::text(error_line(e))]);
    r.structured_content = Some(json!({
        "error": e.code.as_str(),
        "message": without_op_stamps(&e.message),
        "fix": e.fix,
    }));
    r
}

fn ok(v: Value) -> CallToolResult {
    let text = serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string());
    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
    r.structured_content = Some(v);
    r
}

fn parse<T: for<'de> Deserialize<'de>>(args: Option<JsonObject>) -> Result<T, ErrorBody> {
    serde_json::from_value(Value::Object(args.unwrap_or_default())).map_err(|e| {
        ErrorBody::new(ErrorCode::BadRequest, format!("invalid arguments: {e}"))
            .with_fix("pass the arguments the tool's input schema describes")
    })
}

fn unexpected() -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, "op-sessiond sent an unexpected answer")
        .with_fix("restart op-sessiond with the same version as op-session")
}

impl OpSessionMcp {
    /// A server relaying to the daemon at `daemon`.
    pub fn new(daemon: DaemonClient) -> Self {
        OpSessionMcp { daemon }
    }

    /// What the daemon allows (falls back to nothing on failure, so write tools stay hidden).
    pub async fn info(&self) -> McpInfo {
        match self.daemon.request(&Request::McpInfo).await {
            Ok(Response::McpInfo(i)) => i,
            _ => McpInfo::default(),
        }
    }

    async fn item(
        &self,
        via: &Via,
        account: Option<String>,
        op: ItemOp,
    ) -> Result<Value, ErrorBody> {
        let req = Request::Item(ItemRequest {
            account,
            op,
            via: Some(via.clone()),
        });
        match self.daemon.request(&req).await? {
            Response::Item { json } => Ok(json),
            Response::Error(e) => Err(e),
            _ => Err(unexpected()),
        }
    }

    /// Run one tool. `Err` only for an unknown tool; every other failure is a result.
    pub async fn call(
        &self,
        name: &str,
        args: Option<JsonObject>,
        client_name: Option<String>,
    ) -> Option<CallToolResult> {
        let via = Via::mcp(client_name);
        let r = match name {
            "status" => self.status(args).await,
            // structuredContent must be an object: lists are wrapped.
            "list_vaults" => match parse::<AccountArgs>(args) {
                Ok(a) => self
                    .item(&via, a.account, ItemOp::ListVaults)
                    .await
                    .map(|v| json!({ "vaults": v })),
                Err(e) => Err(e),
            },
            "list_items" => match parse::<ListItemsArgs>(args) {
                Ok(a) => {
                    let op = ItemOp::ListItems {
                        vault: a.vault,
                        categories: a.categories,
                        tags: a.tags,
                    };
                    self.item(&via, a.account, op)
                        .await
                        .map(|v| json!({ "items": v }))
                }
                Err(e) => Err(e),
            },
            "get_item" => match parse::<GetItemArgs>(args) {
                Ok(a) => {
                    let op = ItemOp::GetItem {
                        item: a.item,
                        vault: a.vault,
                    };
                    self.item(&via, a.account, op).await
                }
                Err(e) => Err(e),
            },
            "check_reference" => self.check(&via, args).await,
            "run" => self.run(&via, args).await,
            "inject" => self.inject(&via, args).await,
            "read_secret" => self.read_secret(&via, args).await,
            "create_item" | "edit_item" | "delete_item" => self.write(&via, name, args).await,
            _ => return None,
        };
        Some(match r {
            Ok(v) => ok(v),
            Err(e) => fail(&e),
        })
    }

    async fn status(&self, args: Option<JsonObject>) -> Result<Value, ErrorBody> {
        parse::<NoArgs>(args)?;
        match self.daemon.request(&Request::Status).await? {
            Response::Status(s) => Ok(json!({
                "daemon_version": s.version,
                "default_account": s.default_account,
                "sessions": s.sessions.iter().map(|x| json!({
                    "account": x.account,
                    "mode": x.mode.as_str(),
                    "default": x.default,
                    "email": x.email,
                    "url": x.url,
                    "idle_remaining_s": x.idle_remaining_s,
                    "hard_remaining_s": x.hard_remaining_s,
                    "cache_entries": x.cache_entries,
                })).collect::<Vec<_>>(),
                "hint": if s.sessions.is_empty() {
                    Some("no session is held: a person must run `op-session init` in a terminal")
                } else {
                    None
                },
            })),
            Response::Error(e) => Err(e),
            _ => Err(unexpected()),
        }
    }

    async fn check(&self, via: &Via, args: Option<JsonObject>) -> Result<Value, ErrorBody> {
        let a: ReferenceArgs = parse(args)?;
        let reference = a.reference.clone();
        let req = Request::Check(CheckRequest {
            account: a.account,
            reference: a.reference,
            via: Some(via.clone()),
        });
        match self.daemon.request(&req).await? {
            Response::Checked(c) => Ok(json!({
                "resolves": true,
                "reference": c.reference,
                "account": c.account,
                "vault": c.vault,
                "item": c.item,
                "section": c.section,
                "field": c.field,
                "type": c.field_type,
                "cached": c.cached,
            })),
            // The question was answered: the reference does not resolve, and op said why (no
            // such vault, item or field). Refusals, a missing session and op failing to run
            // stay tool errors.
            Response::Error(e) if e.code == ErrorCode::OpFailed => Ok(json!({
                "resolves": false,
                "reference": reference,
                "reason": without_op_stamps(&e.message),
            })),
            Response::Error(e) => Err(e),
            _ => Err(unexpected()),
        }
    }

    async fn run(&self, via: &Via, args: Option<JsonObject>) -> Result<Value, ErrorBody> {
        let a: RunArgs = parse(args)?;
        let spec = runner::RunSpec {
            command: a.command,
            cwd: a.cwd.map(PathBuf::from),
            env: a.env,
            env_files: a.env_files.into_iter().map(PathBuf::from).collect(),
            timeout_s: a.timeout_s.unwrap_or(runner::DEFAULT_TIMEOUT_S),
            account: a.account,
        };
        let roots = crate::roots::Roots::new(&self.info().await.roots);
        let r = runner::run(&self.daemon, via, &roots, spec).await?;
        serde_json::to_value(r).map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))
    }

    async fn inject(&self, via: &Via, args: Option<JsonObject>) -> Result<Value, ErrorBody> {
        let a: InjectArgs = parse(args)?;
        let roots = crate::roots::Roots::new(&self.info().await.roots);
        let r = runner::inject(
            &self.daemon,
            via,
            a.account,
            &roots,
            &PathBuf::from(a.template_path),
            &PathBuf::from(a.output_path),
            a.overwrite,
        )
        .await?;
        serde_json::to_value(r).map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))
    }

    async fn read_secret(&self, via: &Via, args: Option<JsonObject>) -> Result<Value, ErrorBody> {
        let a: ReadSecretArgs = parse(args)?;
        // The daemon decides; the acknowledgement only says whether this call asks for it.
        let acknowledged = a.acknowledge.as_deref() == Some(REVEAL_ACKNOWLEDGEMENT);
        let values = runner::resolve(
            &self.daemon,
            via,
            a.account,
            vec![a.reference],
            ResolvePurpose::Read,
            None,
            acknowledged,
        )
        .await?;
        let Some((reference, value)) = values.into_iter().next() else {
            return Err(unexpected());
        };
        Ok(json!({ "reference": reference, "value": value.as_str() }))
    }

    async fn write(
        &self,
        via: &Via,
        name: &str,
        args: Option<JsonObject>,
    ) -> Result<Value, ErrorBody> {
        let info = self.info().await;
        let offered = match name {
            "create_item" => info.can_create,
            "edit_item" => info.can_edit,
            _ => info.can_delete,
        };
        if !offered {
            return Err(ErrorBody::new(
                ErrorCode::PolicyDenied,
                format!("{name} is not offered: the op-session policy does not allow it"),
            )
            .with_fix("a person may allow it under [policy] in the op-session config"));
        }
        let (account, op) = match name {
            "create_item" => {
                let a: CreateItemArgs = parse(args)?;
                (
                    a.account,
                    ItemOp::CreateItem {
                        vault: a.vault,
                        title: a.title,
                        category: a.category.unwrap_or_else(|| "Login".into()),
                        fields: a.fields,
                        password_recipe: a.password_recipe,
                        tags: a.tags,
                        url: a.url,
                    },
                )
            }
            "edit_item" => {
                let a: EditItemArgs = parse(args)?;
                (
                    a.account,
                    ItemOp::EditItem {
                        item: a.item,
                        vault: a.vault,
                        title: a.title,
                        fields: a.fields,
                        generate_password: a.generate_password,
                    },
                )
            }
            _ => {
                let a: DeleteItemArgs = parse(args)?;
                (
                    a.account,
                    ItemOp::DeleteItem {
                        item: a.item,
                        vault: a.vault,
                        archive: a.archive,
                    },
                )
            }
        };
        self.item(via, account, op).await
    }
}

impl ServerHandler for OpSessionMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("op-session", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "1Password through the person's op-sessiond session. Values never come back: \
                 use `run` (values go into the command's environment) or `inject` (into a 0600 \
                 file). If a tool says no session is held, ask the person to run \
                 `op-session init` in a terminal.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools(&self.info().await)))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // Self-reported and only for the audit line: keep it short.
        let client = context
            .client_info()
            .map(|i| i.name.chars().take(64).collect::<String>());
        match self.call(&request.name, request.arguments, client).await {
            Some(r) => Ok(r.into()),
            None => Err(ErrorData::invalid_params(
                format!("unknown tool {:?}", request.name),
                None,
            )),
        }
    }
}

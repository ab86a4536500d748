//! MCP servers for agent tasks: the `[mcp.NAME]` tables, and the checks
//! that tie a task's `mcp = ["NAME", ...]` to them.
//!
//! A server is a program the person running swarm chose, started over
//! stdio inside the sandbox of each attempt that uses it, in its worktree:
//! it can reach nothing the task cannot. A subtask request or a replan's
//! fix may only name servers its parent has (see `ceiling`), never
//! declare one.

#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::error::{PlanError, PlanErrorKind, Source, did_you_mean};
use super::schema::McpFields;

/// The longest server name: it prefixes each of its tools' names, which
/// the providers cap at 64 characters.
pub const MAX_NAME: usize = 20;

/// An `[mcp.NAME]` table, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpTable {
    pub name: String,
    /// The program (as written: a path, or a name to find on PATH) and
    /// its arguments.
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Where its table stands.
    pub span: Range<usize>,
}

/// Checks every `[mcp.NAME]` table: the valid ones, by name.
pub(super) fn resolve_servers(
    source: &Source,
    tables: &BTreeMap<String, Spanned<McpFields>>,
    errors: &mut Vec<PlanError>,
) -> BTreeMap<String, McpTable> {
    let mut servers = BTreeMap::new();
    for (name, table) in tables {
        match server(source, name, table) {
            Ok(s) => {
                servers.insert(name.clone(), s);
            }
            Err(e) => errors.push(e),
        }
    }
    servers
}

fn server(source: &Source, name: &str, table: &Spanned<McpFields>) -> Result<McpTable, PlanError> {
    let span = table.span();
    let fields = table.get_ref();
    let bad = |message: String, at: Range<usize>, help: &str| {
        source
            .error(PlanErrorKind::BadValue, message, Some(at), "in this server")
            .with_help(help.to_string())
    };
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        return Err(bad(
            format!("MCP server name `{name}` is not a short name"),
            span,
            &format!(
                "name it with a-z, 0-9, `-` and `_`, at most {MAX_NAME} characters (it prefixes its tools' names), e.g. [mcp.files]"
            ),
        ));
    }
    let command = fields.command.get_ref();
    if command.first().is_none_or(|p| p.trim().is_empty()) {
        return Err(bad(
            format!("MCP server `{name}` has no program in `command`"),
            fields.command.span(),
            "start `command` with the program, e.g. command = [\"npx\", \"-y\", \"@modelcontextprotocol/server-filesystem\", \".\"]",
        ));
    }
    if let Some(program) = command
        .first()
        .filter(|p| p.contains('/') && !p.starts_with('/'))
    {
        return Err(bad(
            format!("MCP server `{name}`'s program `{program}` is a relative path"),
            fields.command.span(),
            "give the program's absolute path, or a name found on PATH (its arguments run in the task's worktree)",
        ));
    }
    Ok(McpTable {
        name: name.to_string(),
        command: command.clone(),
        env: fields.env.clone().unwrap_or_default(),
        span,
    })
}

/// The servers a task names in `mcp`, if the plan has them all: their
/// names, in order, each once.
pub(super) fn pick_servers(
    source: &Source,
    servers: &BTreeMap<String, McpTable>,
    id: &str,
    names: &[Spanned<String>],
) -> Result<Vec<String>, PlanError> {
    let mut picked: Vec<String> = Vec::new();
    for name in names {
        let wanted = name.get_ref();
        if !servers.contains_key(wanted) {
            let error = source.error(
                PlanErrorKind::BadValue,
                format!("task `{id}` uses MCP server `{wanted}`, which the plan does not have"),
                Some(name.span()),
                "no such server",
            );
            return Err(
                match did_you_mean(wanted, servers.keys().map(String::as_str)) {
                    Some(close) => error.with_help(format!("did you mean `{close}`?")),
                    None => error.with_help(format!(
                        "declare it: [mcp.{wanted}] command = [\"program\", \"arg\", ...]"
                    )),
                },
            );
        }
        if !picked.contains(wanted) {
            picked.push(wanted.clone());
        }
    }
    Ok(picked)
}

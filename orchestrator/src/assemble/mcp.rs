//! The MCP servers of a run, found on this host: each `[mcp.NAME]` a task
//! uses, its program resolved (a path as given, or a name on PATH) and the
//! directory the sandbox shows it read-only, as for agent CLIs. A program
//! that is not there is a plan error at its table, so `swarm validate`
//! reports it before anything runs.

use std::collections::BTreeMap;

use swarm_protocol::agent::McpServer;

use super::agents::{find, install_dir, too_wide};
use super::{HostEnv, SetupError};
use crate::plan::{Plan, PlanErrorKind};
use crate::run::McpProgram;

/// The servers of `plan` that its tasks use, or that a subtask may name
/// (a table no task uses is looked for too; missing, it is no error).
pub fn mcp_programs(
    plan: &Plan,
    host: &HostEnv,
) -> Result<BTreeMap<String, McpProgram>, SetupError> {
    let mut found = BTreeMap::new();
    for (name, table) in &plan.mcp {
        let used = plan
            .tasks
            .iter()
            .any(|t| t.agent().is_some_and(|a| a.mcp.contains(name)));
        let Some(program) = table.command.first() else {
            continue;
        };
        let error = |message: String, help: &str| {
            let error = plan
                .source
                .error(
                    PlanErrorKind::BadValue,
                    message,
                    Some(table.span.clone()),
                    "this server",
                )
                .with_help(help.to_string());
            SetupError::Plan(Box::new(error))
        };
        let Some(resolved) = find(program, host) else {
            if !used {
                continue;
            }
            return Err(error(
                format!(
                    "MCP server `{name}` needs the program `{program}`, which is not {}",
                    if program.contains('/') {
                        "there (or not executable)"
                    } else {
                        "on PATH"
                    }
                ),
                "install it, or start `command` with its full path",
            ));
        };
        let grant = install_dir(&resolved);
        if too_wide(&grant, host) {
            return Err(error(
                format!(
                    "MCP server `{name}`'s program {} is installed in {}, which the sandbox would show whole",
                    resolved.display(),
                    grant.display()
                ),
                "install it in a directory of its own (npm install -g, or a prefix), and name that program",
            ));
        }
        let mut command = table.command.clone();
        command[0] = resolved.display().to_string();
        found.insert(
            name.clone(),
            McpProgram {
                server: McpServer {
                    name: name.clone(),
                    command,
                    env: table.env.clone(),
                },
                grant,
            },
        );
    }
    Ok(found)
}

//! Any other CLI (`kind = "command"`): its `command` with `{prompt}`, the
//! door's URL and the token in the variables its table names
//! (`base_url_env`, `token_env`), the task's MCP servers in
//! `$SWARM_MCP_CONFIG`. It prints no events swarm reads: its exit code is
//! its verdict, its answer anywhere in what it printed, and each repair
//! round starts it afresh with the task again.

use serde_json::Value;
use swarm_protocol::agent::McpServer;

use super::adapter::{Adapter, Events, Round, mcp_servers_json};
use crate::plan::AgentTask;
use crate::plan::agents::WireProtocol;
use crate::run::options::CliProgram;

pub(crate) struct Command;

impl Adapter for Command {
    fn environment(&self, cli: &CliProgram, _home: &str, token: &str) -> Vec<(String, String)> {
        vec![(cli.cli.token_env.clone(), token.into())]
    }

    fn task_environment(&self, _agent: &AgentTask, mcp: &[McpServer]) -> Vec<(String, String)> {
        // A CLI swarm does not know takes the common `mcpServers` file
        // format from here, if it wants it.
        match mcp.is_empty() {
            true => Vec::new(),
            false => vec![("SWARM_MCP_CONFIG".into(), mcp_servers_json(mcp).to_string())],
        }
    }

    fn url_vars(&self, cli: &CliProgram, url: &str) -> Vec<(String, String)> {
        let url = match cli.cli.protocol {
            WireProtocol::OpenaiResponses | WireProtocol::Openai => format!("{url}/v1"),
            WireProtocol::Anthropic => url.to_string(),
        };
        vec![(cli.cli.base_url_env.clone(), url)]
    }

    fn args(&self, round: &Round<'_>) -> Vec<String> {
        let program = round.cli.program.display().to_string();
        let mut args: Vec<String> = round
            .cli
            .cli
            .command
            .iter()
            .enumerate()
            .map(|(i, a)| match i {
                0 => program.clone(),
                _ => a.replace("{prompt}", round.prompt),
            })
            .collect();
        args.extend(round.cli.cli.args.iter().cloned());
        args
    }

    fn event(&self, _value: &Value, _events: &mut Events) {}

    fn fresh_each_round(&self) -> bool {
        true
    }

    fn has_events(&self) -> bool {
        false
    }
}

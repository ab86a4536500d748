//! What swarm knows of one kind of agent CLI ([`Adapter`]): how it starts
//! headless against the attempt's door, and how its event stream reads.
//! One file per kind beside this one (`claude_code.rs`, `codex.rs`,
//! `command.rs`); the rounds, the door and the verify loop around them are
//! the same for all (`cli_agent.rs`). Adding a kind: the book's "Adding an
//! agent CLI".

use std::path::Path;

use serde_json::Value;
use swarm_protocol::agent::McpServer;

use crate::plan::AgentTask;
use crate::run::options::CliProgram;

/// One round's command line, as its kind's [`Adapter::args`] makes it.
pub(crate) struct Round<'a> {
    pub cli: &'a CliProgram,
    /// The program's home (made by the `sh` that starts it).
    pub home: &'a Path,
    /// The door's URL, as the program reaches it.
    pub url: &'a str,
    /// The model's name at its provider.
    pub model: &'a str,
    pub prompt: &'a str,
    /// The session to resume (an id checked to be no flag).
    pub session: Option<&'a str>,
    pub agent: &'a AgentTask,
    pub mcp: &'a [McpServer],
}

/// What a round's event stream said.
#[derive(Debug, Default)]
pub(crate) struct Events {
    pub session: Option<String>,
    /// Its final result came (Claude's `result`, Codex's `turn.completed`).
    pub done: bool,
    pub is_error: bool,
    pub subtype: Option<String>,
    /// The final answer (Claude's `result`, Codex's last agent message).
    pub text: Option<String>,
    /// Why it failed, as it said.
    pub error: Option<String>,
    /// Claude Code's answer to `--json-schema`.
    pub structured: Option<Value>,
}

/// One kind of agent CLI.
pub(crate) trait Adapter: Sync {
    /// Its variables beside the ones every kind gets (a home of its own,
    /// telemetry off): where its settings go, and the attempt's `token`
    /// where its key would be.
    fn environment(&self, cli: &CliProgram, home: &str, token: &str) -> Vec<(String, String)>;

    /// What else the program is told of the task in its environment (its
    /// MCP servers, its answer's schema), when its command line cannot.
    fn task_environment(&self, _agent: &AgentTask, _mcp: &[McpServer]) -> Vec<(String, String)> {
        Vec::new()
    }

    /// The variables that carry the door's `url`.
    fn url_vars(&self, cli: &CliProgram, url: &str) -> Vec<(String, String)>;

    /// The program and its arguments for one round.
    fn args(&self, round: &Round<'_>) -> Vec<String>;

    /// Reads one JSON line of its event stream into `events`.
    fn event(&self, value: &Value, events: &mut Events);

    /// Whether a repair round goes on without a session: a program that
    /// starts afresh each round (then it is given the task again with
    /// what failed); else a round without a session id cannot repair.
    fn fresh_each_round(&self) -> bool {
        false
    }

    /// Whether it prints an event stream swarm reads (its end, session
    /// and answer); a program without one is judged by its exit code, and
    /// its answer is looked for in all it printed.
    fn has_events(&self) -> bool {
        true
    }
}

/// The end of a round's command line for a CLI that takes its prompt
/// last: the table's own `args`, then `--` and the prompt.
pub(crate) fn then_prompt(mut args: Vec<String>, round: &Round<'_>) -> Vec<String> {
    args.extend(round.cli.cli.args.iter().cloned());
    args.push("--".into());
    args.push(round.prompt.into());
    args
}

/// The `type` of an event line (empty when it has none).
pub(crate) fn kind_of(value: &Value) -> &str {
    value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The string `key` of `value`, if it has one.
pub(crate) fn str_of(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The task's MCP servers in the `mcpServers` JSON that Claude Code's
/// `--mcp-config` (and many other CLIs) read.
pub(crate) fn mcp_servers_json(servers: &[McpServer]) -> Value {
    let entries: serde_json::Map<String, Value> = servers
        .iter()
        .map(|s| {
            let (program, args) = s
                .command
                .split_first()
                .map_or(("", &[][..]), |(p, a)| (p.as_str(), a));
            (
                s.name.clone(),
                serde_json::json!({
                    "type": "stdio",
                    "command": program,
                    "args": args,
                    "env": s.env,
                }),
            )
        })
        .collect();
    serde_json::json!({ "mcpServers": entries })
}

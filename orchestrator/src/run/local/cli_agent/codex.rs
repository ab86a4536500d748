//! OpenAI's Codex CLI (`codex exec`): the Responses API through a provider
//! table of its own (`-c model_providers.swarm=...`), the token in
//! `SWARM_GATEWAY_TOKEN`, its events from `--json`, a session resumed with
//! `codex exec resume ID`.

use serde_json::Value;
use swarm_protocol::agent::McpServer;

use super::adapter::{Adapter, Events, Round, kind_of, str_of, then_prompt};
use crate::plan::AgentTask;
use crate::run::options::CliProgram;

pub(crate) struct Codex;

impl Adapter for Codex {
    fn environment(&self, _cli: &CliProgram, home: &str, token: &str) -> Vec<(String, String)> {
        vec![
            ("CODEX_HOME".into(), format!("{home}/.codex")),
            ("SWARM_GATEWAY_TOKEN".into(), token.into()),
        ]
    }

    fn task_environment(&self, agent: &AgentTask, _mcp: &[McpServer]) -> Vec<(String, String)> {
        // Written to a file by the `sh` that starts it (`--output-schema`
        // takes a path).
        agent
            .output_schema
            .iter()
            .map(|schema| ("SWARM_OUTPUT_SCHEMA".into(), schema.to_string()))
            .collect()
    }

    fn url_vars(&self, _cli: &CliProgram, url: &str) -> Vec<(String, String)> {
        // Its provider table names the URL; the variable is for tools.
        vec![("OPENAI_BASE_URL".into(), format!("{url}/v1"))]
    }

    fn args(&self, round: &Round<'_>) -> Vec<String> {
        let mut args = vec![round.cli.program.display().to_string(), "exec".into()];
        if let Some(id) = round.session {
            args.push("resume".into());
            args.push(id.into());
        }
        let provider = format!(
            "model_providers.swarm={{ name = \"swarm\", base_url = \"{}/v1\", env_key = \"SWARM_GATEWAY_TOKEN\", wire_api = \"responses\" }}",
            round.url
        );
        args.extend(
            [
                "--json",
                "--skip-git-repo-check",
                "--ignore-user-config",
                "--dangerously-bypass-approvals-and-sandbox",
                "-m",
                round.model,
                "-c",
                "model_provider=\"swarm\"",
                "-c",
                &provider,
                // Its usage metrics and plugin sync would wait for hosts it
                // cannot reach (5 s at every exit).
                "-c",
                "analytics.enabled=false",
                "--disable",
                "plugins",
            ]
            .map(String::from),
        );
        args.extend(mcp_overrides(round.mcp));
        if round.agent.output_schema.is_some() {
            // Written by the `sh` that starts it, from $SWARM_OUTPUT_SCHEMA.
            args.push("--output-schema".into());
            args.push(round.home.join("output-schema.json").display().to_string());
        }
        then_prompt(args, round)
    }

    fn event(&self, value: &Value, events: &mut Events) {
        match kind_of(value) {
            "thread.started" => events.session = str_of(value, "thread_id"),
            "item.completed" => {
                if let Some(item) = value.get("item")
                    && item.get("type").and_then(Value::as_str) == Some("agent_message")
                {
                    events.text = str_of(item, "text");
                }
            }
            "turn.completed" => events.done = true,
            "turn.failed" => {
                events.done = true;
                events.is_error = true;
                events.error = value
                    .get("error")
                    .and_then(|e| str_of(e, "message"))
                    .or(Some("the turn failed".into()));
            }
            "error" => {
                events.is_error = true;
                events.error = str_of(value, "message");
            }
            _ => {}
        }
    }
}

/// The task's MCP servers as Codex's `-c mcp_servers.NAME.KEY=VALUE`
/// overrides (values in TOML, quoted by the toml crate).
pub(crate) fn mcp_overrides(servers: &[McpServer]) -> Vec<String> {
    let mut args = Vec::new();
    for s in servers {
        let Some((program, rest)) = s.command.split_first() else {
            continue;
        };
        let array = toml::Value::Array(rest.iter().cloned().map(toml::Value::String).collect());
        let env = toml::Value::Table(
            s.env
                .iter()
                .map(|(k, v)| (k.clone(), toml::Value::String(v.clone())))
                .collect(),
        );
        for (key, value) in [
            ("command", toml::Value::String(program.clone())),
            ("args", array),
            ("env", env),
        ] {
            args.push("-c".to_string());
            args.push(format!("mcp_servers.{}.{key}={value}", s.name));
        }
    }
    args
}

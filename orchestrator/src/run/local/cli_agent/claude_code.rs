//! Anthropic's Claude Code (`claude -p`): the Messages API at
//! `ANTHROPIC_BASE_URL`, the token as `ANTHROPIC_API_KEY`, its events from
//! `--output-format stream-json`, a session resumed with `--resume ID`.

use serde_json::Value;

use super::adapter::{Adapter, Events, Round, kind_of, mcp_servers_json, str_of, then_prompt};
use crate::run::options::CliProgram;

pub(crate) struct ClaudeCode;

impl Adapter for ClaudeCode {
    fn environment(&self, _cli: &CliProgram, home: &str, token: &str) -> Vec<(String, String)> {
        vec![
            ("CLAUDE_CONFIG_DIR".into(), format!("{home}/.claude")),
            ("ANTHROPIC_API_KEY".into(), token.into()),
            // It refuses to skip its permission prompts as root unless told
            // it is in a sandbox; it is (and runs as nobody there anyway).
            ("IS_SANDBOX".into(), "1".into()),
        ]
    }

    fn url_vars(&self, _cli: &CliProgram, url: &str) -> Vec<(String, String)> {
        vec![("ANTHROPIC_BASE_URL".into(), url.into())]
    }

    fn args(&self, round: &Round<'_>) -> Vec<String> {
        let program = round.cli.program.display().to_string();
        let mut args: Vec<String> = [
            program.as_str(),
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--permission-mode",
            "bypassPermissions",
            "--model",
            round.model,
            // Only its own (empty) user settings: a checkout's
            // `.claude/settings.json` hooks do not run, and `.mcp.json`
            // servers are not started.
            "--setting-sources",
            "user",
            "--strict-mcp-config",
        ]
        .map(String::from)
        .to_vec();
        args.push("--max-turns".into());
        args.push(round.agent.max_turns.to_string());
        // With `--strict-mcp-config`, the task's servers and no other.
        if !round.mcp.is_empty() {
            args.push("--mcp-config".into());
            args.push(mcp_servers_json(round.mcp).to_string());
        }
        if let Some(schema) = &round.agent.output_schema {
            args.push("--json-schema".into());
            args.push(schema.to_string());
        }
        if let Some(id) = round.session {
            args.push("--resume".into());
            args.push(id.into());
        }
        then_prompt(args, round)
    }

    fn event(&self, value: &Value, events: &mut Events) {
        match kind_of(value) {
            "system" => {
                if let Some(id) = str_of(value, "session_id") {
                    events.session = Some(id);
                }
            }
            "result" => {
                events.done = true;
                events.session = str_of(value, "session_id").or(events.session.take());
                events.subtype = str_of(value, "subtype");
                events.is_error = value
                    .get("is_error")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    || events
                        .subtype
                        .as_deref()
                        .is_some_and(|s| s.starts_with("error"));
                events.text = str_of(value, "result");
                events.structured = value
                    .get("structured_output")
                    .filter(|v| !v.is_null())
                    .cloned();
                if events.is_error {
                    events.error = Some(
                        events
                            .text
                            .clone()
                            .filter(|t| !t.is_empty())
                            .or_else(|| events.subtype.clone())
                            .unwrap_or_else(|| "the agent reported an error".into()),
                    );
                }
            }
            _ => {}
        }
    }
}

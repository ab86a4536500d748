//! `swarm doctor --model NAME`: what a model of the configuration
//! `swarm plan` reads does for swarm, asked for real: whether it answers
//! (and how fast, and what it counted), whether it holds an answer to a
//! JSON schema (`swarm plan`, `output_schema`), and whether it calls a
//! tool when given one (swarm's agent works through tool calls). A local
//! server that answers but never calls a tool is the usual surprise.

use std::path::Path;
use std::time::Instant;

use anyhow::anyhow;
use serde_json::{Value, json};
use swarm_orchestrator::exit;
use swarm_orchestrator::gateway::tape::TapeSettings;
use swarm_orchestrator::gateway::{AnswerFormat, CompletionRequest, Gateway};
use swarm_protocol::agent::{Block, Message, Role, ToolSpec};

use crate::Failure;
use crate::common::open_repo;

/// Checks model `name` of the planner's configuration (`config`, else the
/// repository's `swarm.toml`, the user's or the built-in one); `trust`:
/// the repository's file is the person's. Exit 0 when the model answers,
/// 1 when it does not.
pub(crate) fn doctor_model(
    cwd: &Path,
    name: &str,
    config: Option<&Path>,
    trust: bool,
) -> Result<i32, Failure> {
    let repo = open_repo(cwd)?;
    let (template, path) = crate::planning::configuration(&repo, cwd, config, trust)?;
    let Some(model) = template.models.get(name) else {
        return Err(crate::planning::unknown_model(
            "doctor", name, &template, &path,
        ));
    };
    println!(
        "model             `{name}` of {}: {} `{}` at {}",
        path.display(),
        model.provider.as_str(),
        model.model,
        model.base_url
    );
    let used = std::collections::BTreeSet::from([name]);
    let mut notices = Vec::new();
    let gateway = swarm_orchestrator::assemble::gateway::for_planner(
        &template,
        &used,
        &crate::host::current(),
        &TapeSettings::default(),
        &mut notices,
    )?;
    crate::output::print_notices(&notices);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Internal(anyhow!("start the async runtime: {e}")))?;
    let answered = runtime.block_on(check(&gateway, name));
    Ok(if answered {
        exit::SUCCESS
    } else {
        exit::TASKS_FAILED
    })
}

/// The three questions, each its own call; whether the model answered the
/// first.
async fn check(gateway: &Gateway, name: &str) -> bool {
    let ask = |text: &str| CompletionRequest {
        model: name.to_string(),
        system: "You are checked by swarm doctor. Answer briefly.".into(),
        messages: vec![Message {
            role: Role::User,
            content: vec![Block::Text { text: text.into() }],
        }],
        max_tokens: Some(64),
        label: "doctor".into(),
        ..CompletionRequest::default()
    };
    let started = Instant::now();
    match gateway.complete(&ask("Say ok.")).await {
        Ok(answer) => println!(
            "answers           yes, in {:.2} s: {} tokens read, {} written ({})",
            started.elapsed().as_secs_f64(),
            answer.usage.input_tokens,
            answer.usage.output_tokens,
            quoted(&answer.text)
        ),
        Err(e) => {
            println!("answers           no: failed to {e}");
            return false;
        }
    }

    let schema = json!({
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
        "additionalProperties": false
    });
    let mut structured = ask("Is the sky blue? Answer in the JSON form asked for.");
    structured.format = Some(AnswerFormat {
        name: "check".into(),
        schema,
    });
    match gateway.complete(&structured).await {
        Ok(answer) => match serde_json::from_str::<Value>(answer.text.trim()) {
            Ok(v) if v.get("ok").is_some_and(Value::is_boolean) => println!(
                "JSON schema       yes: the answer held to its schema (`swarm plan`, `output_schema`)"
            ),
            _ => println!(
                "JSON schema       no: asked for a schema, it answered {} (`swarm plan` will need repair rounds; `output_schema` answers may be refused)",
                quoted(&answer.text)
            ),
        },
        Err(e) => println!("JSON schema       no: failed to {e}"),
    }

    let mut tooled = ask("Call the `report` tool with value \"ok\".");
    tooled.tools = vec![ToolSpec {
        name: "report".into(),
        description: "Reports a value.".into(),
        input_schema: json!({
            "type": "object",
            "properties": {"value": {"type": "string"}},
            "required": ["value"]
        }),
    }];
    match gateway.complete(&tooled).await {
        Ok(answer) if !answer.tool_calls.is_empty() => {
            println!("tool calls        yes: it called `report` (swarm's agent can work with it)")
        }
        Ok(answer) => println!(
            "tool calls        no: given a tool, it answered in text ({}); swarm's agent works through tool calls: try `tool_choice = \"required\"` in [models.{name}], or `tool_choice = \"schema\"` for a server that holds answers to a JSON schema (llama.cpp's llama-server)",
            quoted(&answer.text)
        ),
        Err(e) => println!("tool calls        no: failed to {e}"),
    }
    true
}

/// `text` on one line, cut to 60 characters, in quotes.
fn quoted(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = flat.chars().take(60).collect();
    if cut.len() < flat.len() {
        format!("\"{cut}...\"")
    } else {
        format!("\"{cut}\"")
    }
}

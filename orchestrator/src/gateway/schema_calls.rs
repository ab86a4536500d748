//! Tool calls asked for as a JSON schema (`[models.NAME] tool_choice =
//! "schema"`), for servers that hold an answer to a schema but not to a
//! required tool call: llama.cpp's `llama-server` turns a `response_format`
//! schema into a grammar, while it answers `tool_choice: "required"` in
//! prose for a model whose chat template has no tools (SmolLM2).
//!
//! The request lists the tools in the system prompt and asks for one JSON
//! object, `{"tool": NAME, "input": {...}}`, whose schema allows exactly
//! the tools and their inputs; the conversation so far is written as text
//! (a call as its JSON, a result as a user message naming it), which any
//! chat template renders. The answer's JSON is read back as a tool call,
//! so swarm's agent sees the same turn it would from a native call.

use serde_json::{Value, json};
use swarm_protocol::agent::{Block, StopReason, ToolSpec};

/// The schema of one answer: a call of one of `tools`.
pub(crate) fn call_schema(tools: &[ToolSpec]) -> Value {
    let calls: Vec<Value> = tools
        .iter()
        .map(|t| {
            json!({
                "type": "object",
                "properties": {
                    "tool": {"const": t.name},
                    "input": t.input_schema,
                },
                "required": ["tool", "input"],
            })
        })
        .collect();
    json!({"anyOf": calls})
}

/// What the system prompt says of `tools` and the form of an answer.
pub(crate) fn tools_prompt(tools: &[ToolSpec]) -> String {
    let mut text = String::from(
        "\n\nAnswer every turn with one JSON object that calls one of these tools: \
         {\"tool\": NAME, \"input\": {...}}. Tools:",
    );
    for t in tools {
        text.push_str(&format!(
            "\n- {}: {} Input schema: {}",
            t.name, t.description, t.input_schema
        ));
    }
    text
}

/// A call written back into the conversation as the model wrote it.
pub(crate) fn call_text(name: &str, input: &Value) -> String {
    json!({"tool": name, "input": input}).to_string()
}

/// A tool's result as the user's words.
pub(crate) fn result_text(id: &str, content: &str, is_error: bool) -> String {
    let what = if is_error { "failed" } else { "returned" };
    format!("The tool call {id} {what}:\n{content}")
}

/// Reads an answer's text as a call of one of `tools`: the text blocks of
/// `content` become one `ToolCall` (`id`) and `stop` becomes `ToolUse`,
/// when they hold such a call; otherwise both stay as they are (the agent
/// then treats the answer as text).
pub(crate) fn read_back(
    content: &mut Vec<Block>,
    stop: &mut StopReason,
    tools: &[ToolSpec],
    id: String,
) {
    if content.iter().any(|b| matches!(b, Block::ToolCall { .. })) {
        return;
    }
    let text: String = content
        .iter()
        .filter_map(|b| match b {
            Block::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let Ok(Value::Object(mut call)) = serde_json::from_str::<Value>(text.trim()) else {
        return;
    };
    let (Some(Value::String(name)), Some(input)) = (call.remove("tool"), call.remove("input"))
    else {
        return;
    };
    if !input.is_object() || !tools.iter().any(|t| t.name == name) {
        return;
    }
    *content = vec![Block::ToolCall {
        id,
        name,
        input,
        invalid_input: None,
    }];
    *stop = StopReason::ToolUse;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools() -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "bash".into(),
            description: "Runs a command.".into(),
            input_schema: json!({"type": "object", "properties": {"command": {"type": "string"}}}),
        }]
    }

    #[test]
    fn an_answer_in_the_schema_is_read_back_as_a_call() {
        let mut content = vec![Block::Text {
            text: " {\"tool\": \"bash\", \"input\": {\"command\": \"ls\"}} ".into(),
        }];
        let mut stop = StopReason::EndTurn;
        read_back(&mut content, &mut stop, &tools(), "call_1".into());
        assert_eq!(
            content,
            vec![Block::ToolCall {
                id: "call_1".into(),
                name: "bash".into(),
                input: json!({"command": "ls"}),
                invalid_input: None,
            }]
        );
        assert_eq!(stop, StopReason::ToolUse);
    }

    #[test]
    fn prose_an_unknown_tool_or_a_cut_answer_stays_text() {
        for text in [
            "I will run ls.",
            "{\"tool\": \"rm\", \"input\": {}}",
            "{\"tool\": \"bash\", \"input\": {\"comm",
            "{\"tool\": \"bash\", \"input\": \"ls\"}",
        ] {
            let mut content = vec![Block::Text { text: text.into() }];
            let mut stop = StopReason::MaxTokens;
            read_back(&mut content, &mut stop, &tools(), "c".into());
            assert!(matches!(&content[..], [Block::Text { .. }]), "{text}");
            assert_eq!(stop, StopReason::MaxTokens);
        }
    }

    #[test]
    fn the_schema_allows_each_tool_with_its_own_input() {
        let schema = call_schema(&tools());
        assert_eq!(schema["anyOf"][0]["properties"]["tool"]["const"], "bash");
        assert_eq!(
            schema["anyOf"][0]["properties"]["input"]["properties"]["command"]["type"],
            "string"
        );
        assert!(tools_prompt(&tools()).contains("- bash: Runs a command."));
    }
}

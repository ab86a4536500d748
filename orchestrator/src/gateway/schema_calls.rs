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
//!
//! A server may not hold the answer to the schema (it ignores
//! `response_format`, or cuts the grammar short), so the call read back is
//! checked against its tool's input schema: one that does not match goes
//! to the agent as a refused call (`invalid_input`, as arguments a native
//! call could not parse), which the model is told to make again, never as
//! input of the wrong type for the tool or MCP server to take.

use serde_json::{Value, json};
use swarm_protocol::agent::{Block, InvalidInput, StopReason, ToolSpec};

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
/// then treats the answer as text). A call whose input does not match its
/// tool's input schema is refused ([`checked`]).
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
    let Some(tool) = tools.iter().find(|t| t.name == name) else {
        return;
    };
    if !input.is_object() {
        return;
    }
    let (input, invalid_input) = checked(tool, input);
    *content = vec![Block::ToolCall {
        id,
        name,
        input,
        invalid_input,
    }];
    *stop = StopReason::ToolUse;
}

/// `input` of a call of `tool` if its input schema holds it; otherwise an
/// empty input and why it was refused (also when the schema cannot check
/// anything: a tool's schema is not swarm's, an MCP server may send any).
fn checked(tool: &ToolSpec, input: Value) -> (Value, Option<InvalidInput>) {
    match crate::output_schema::check(&tool.input_schema, &input) {
        Ok(()) => (input, None),
        Err(errors) => (
            Value::Object(Default::default()),
            Some(InvalidInput {
                raw: input.to_string(),
                error: format!(
                    "the input does not match the input schema of `{}`: {}",
                    tool.name,
                    errors.join("; ")
                ),
            }),
        ),
    }
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
    fn a_call_of_the_wrong_types_is_read_back_refused_never_passed_on() {
        let mut tools = tools();
        tools[0].input_schema["required"] = json!(["command"]);
        for (input, why) in [
            (
                json!({"command": 5}),
                "at /command: 5 is not of type \"string\"",
            ),
            (json!({"cmd": "ls"}), "\"command\" is a required property"),
        ] {
            let mut content = vec![Block::Text {
                text: call_text("bash", &input),
            }];
            let mut stop = StopReason::EndTurn;
            read_back(&mut content, &mut stop, &tools, "c".into());
            let [
                Block::ToolCall {
                    name,
                    input: passed,
                    invalid_input: Some(bad),
                    ..
                },
            ] = &content[..]
            else {
                panic!("{content:?}")
            };
            assert_eq!((name.as_str(), stop), ("bash", StopReason::ToolUse));
            assert_eq!(passed, &json!({}));
            assert_eq!(bad.raw, input.to_string());
            assert!(
                bad.error
                    .starts_with("the input does not match the input schema of `bash`: ")
                    && bad.error.contains(why),
                "{}",
                bad.error
            );
        }
        // A schema that checks nothing checks no call through.
        tools[0].input_schema = json!({"type": "object", "properties": {"n": {"type": "nope"}}});
        let mut content = vec![Block::Text {
            text: call_text("bash", &json!({"n": 1})),
        }];
        let mut stop = StopReason::EndTurn;
        read_back(&mut content, &mut stop, &tools, "c".into());
        assert!(
            matches!(
                &content[..],
                [Block::ToolCall {
                    invalid_input: Some(_),
                    ..
                }]
            ),
            "{content:?}"
        );
    }

    #[test]
    fn every_tool_of_swarms_agent_has_a_schema_that_checks_calls() {
        for tool in swarm_worker::agent::tools::Tools::specs() {
            assert_eq!(
                crate::output_schema::compile(&tool.input_schema),
                Ok(()),
                "{}",
                tool.name
            );
        }
        let finish = swarm_worker::agent::tools::Tools::specs()
            .into_iter()
            .find(|t| t.name == "finish")
            .unwrap();
        let (input, refused) = checked(&finish, json!({"summary": "done"}));
        assert_eq!((input, refused), (json!({"summary": "done"}), None));
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
